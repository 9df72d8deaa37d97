//! How long to wait before reconnecting, and which statuses are worth a retry at all.
//!
//! The WHATWG model waits exactly the stream's reconnection time (the last valid `retry:` the
//! server sent, kept across connections; 3 s until then) before every reconnection. On top of
//! it, repeated failures back off: the first reconnection after a working stream waits only the
//! reconnection time, each further failure in a row adds an exponentially growing, jittered delay
//! up to a cap, and a successful open starts over. [`Backoff::none`] turns the extra off.

use std::time::{Duration, SystemTime};

use http::{HeaderMap, StatusCode, header::RETRY_AFTER};
use rand::Rng;

/// The reconnection time a stream starts with, until the server sends `retry:` (3 s).
pub const DEFAULT_RECONNECTION_TIME: Duration = Duration::from_secs(3);

/// The extra delay added on repeated failures: exponential, jittered and capped.
///
/// The delay before a reconnection is the stream's reconnection time, plus, when the previous
/// attempt failed too, `initial × 2^(failures − 2)` capped at `max_extra` (so the second failure
/// in a row adds `initial`, the third twice that), of which a random part (up to half) is taken
/// off when jitter is on, so that many clients do not come back in lockstep.
///
/// ```
/// use std::time::Duration;
/// use herald_client::Backoff;
///
/// let backoff = Backoff::exponential().initial(Duration::from_millis(100)).jitter(false);
/// let retry = Duration::from_millis(50);
/// assert_eq!(backoff.delay(retry, 0), retry); // first failure: the reconnection time only
/// assert_eq!(backoff.delay(retry, 1), Duration::from_millis(150));
/// assert_eq!(backoff.delay(retry, 2), Duration::from_millis(250));
/// assert_eq!(Backoff::none().delay(retry, 9), retry);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub struct Backoff {
    initial: Duration,
    max_extra: Duration,
    jitter: bool,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff::exponential()
    }
}

impl Backoff {
    /// The default: 1 s extra on the second failure in a row, doubling up to 30 s, jittered.
    pub fn exponential() -> Backoff {
        Backoff {
            initial: Duration::from_secs(1),
            max_extra: Duration::from_secs(30),
            jitter: true,
        }
    }

    /// No extra delay: every reconnection waits exactly the reconnection time, as the spec has it.
    pub fn none() -> Backoff {
        Backoff {
            initial: Duration::ZERO,
            max_extra: Duration::ZERO,
            jitter: false,
        }
    }

    /// The extra delay on the second failure in a row (default 1 s).
    pub fn initial(mut self, extra: Duration) -> Backoff {
        self.initial = extra;
        self
    }

    /// The largest extra delay (default 30 s).
    pub fn max_extra(mut self, cap: Duration) -> Backoff {
        self.max_extra = cap;
        self
    }

    /// Whether a random part, up to half, is taken off the extra delay (default yes).
    pub fn jitter(mut self, jitter: bool) -> Backoff {
        self.jitter = jitter;
        self
    }

    /// The delay before the next attempt, given the stream's reconnection time and how many
    /// attempts in a row failed before the one that just failed (0 if it was the first failure
    /// since the stream last opened, or since the start).
    pub fn delay(&self, reconnection_time: Duration, earlier_failures: u32) -> Duration {
        if earlier_failures == 0 {
            return reconnection_time;
        }
        let factor = 1u32 << (earlier_failures - 1).min(20);
        let extra = self.initial.saturating_mul(factor).min(self.max_extra);
        let extra = if self.jitter && !extra.is_zero() {
            // Integer arithmetic: `mul_f64` would panic on a cap near `Duration::MAX`.
            let kept_per_mille = rand::rng().random_range(500..=1000u32);
            (extra / 1000).saturating_mul(kept_per_mille)
        } else {
            extra
        };
        reconnection_time.saturating_add(extra)
    }
}

/// Which HTTP statuses make the source reconnect instead of failing.
///
/// The WHATWG model fails the connection, for good, on any status but 200 (and closes quietly on
/// 204). Streaming APIs (LLM services among them) answer 429 and 5xx for transient overload and
/// expect clients to retry, often telling when with `Retry-After`:
/// [`StatusPolicy::RetryTransient`] does that. It is an opt-in, and a departure from browsers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum StatusPolicy {
    /// As browsers: every status other than 200 fails the connection (the default).
    #[default]
    Spec,
    /// Also reconnect after `429 Too Many Requests` and any `5xx`, waiting at least what the
    /// response's `Retry-After` asks (seconds or an HTTP date), and otherwise as after a network
    /// error (reconnection time plus backoff).
    RetryTransient,
}

impl StatusPolicy {
    /// Whether a response with this status is retried under this policy.
    pub fn retries(self, status: StatusCode) -> bool {
        match self {
            StatusPolicy::Spec => false,
            StatusPolicy::RetryTransient => {
                status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error()
            }
        }
    }
}

/// The delay a `Retry-After` header asks for: delta-seconds or an HTTP date (RFC 9110 §10.2.3).
pub(crate) fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if !value.is_empty() && value.bytes().all(|byte| byte.is_ascii_digit()) {
        return Some(Duration::from_secs(value.parse().unwrap_or(u64::MAX)));
    }
    let date = httpdate::parse_http_date(value).ok()?;
    Some(
        date.duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    const RT: Duration = Duration::from_millis(50);

    #[test]
    fn first_failure_waits_the_reconnection_time_only() {
        assert_eq!(Backoff::exponential().delay(RT, 0), RT);
    }

    #[test]
    fn repeated_failures_grow_up_to_the_cap_with_jitter() {
        let backoff = Backoff::exponential()
            .initial(Duration::from_millis(100))
            .max_extra(Duration::from_millis(400));
        for _ in 0..50 {
            let second = backoff.delay(RT, 1);
            assert!(
                second >= RT + Duration::from_millis(50)
                    && second <= RT + Duration::from_millis(100)
            );
            let fourth = backoff.delay(RT, 3);
            assert!(
                fourth >= RT + Duration::from_millis(200)
                    && fourth <= RT + Duration::from_millis(400)
            );
            let many = backoff.delay(RT, 30);
            assert!(
                many >= RT + Duration::from_millis(200) && many <= RT + Duration::from_millis(400)
            );
        }
    }

    #[test]
    fn a_huge_backoff_cap_does_not_panic() {
        let backoff = Backoff::exponential()
            .initial(Duration::MAX)
            .max_extra(Duration::MAX);
        for failures in [1, 2, 40, u32::MAX] {
            let delay = backoff.delay(RT, failures);
            assert!(delay >= Duration::MAX / 2, "{delay:?}");
        }
        let plain = backoff.jitter(false).delay(RT, 3);
        assert_eq!(plain, Duration::MAX);
    }

    #[test]
    fn none_is_the_spec() {
        assert_eq!(Backoff::none().delay(RT, 5), RT);
    }

    #[test]
    fn transient_statuses() {
        assert!(!StatusPolicy::Spec.retries(StatusCode::SERVICE_UNAVAILABLE));
        assert!(StatusPolicy::RetryTransient.retries(StatusCode::SERVICE_UNAVAILABLE));
        assert!(StatusPolicy::RetryTransient.retries(StatusCode::TOO_MANY_REQUESTS));
        assert!(!StatusPolicy::RetryTransient.retries(StatusCode::NOT_FOUND));
    }

    #[test]
    fn retry_after_seconds_and_dates() {
        let mut headers = HeaderMap::new();
        assert_eq!(retry_after(&headers), None);
        headers.insert(RETRY_AFTER, HeaderValue::from_static("2"));
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(2)));
        headers.insert(
            RETRY_AFTER,
            HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT"),
        );
        assert_eq!(retry_after(&headers), Some(Duration::ZERO));
        let later = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(100));
        headers.insert(RETRY_AFTER, HeaderValue::from_str(&later).expect("a date"));
        let delay = retry_after(&headers).expect("a delay");
        assert!(delay > Duration::from_secs(95) && delay <= Duration::from_secs(100));
        headers.insert(RETRY_AFTER, HeaderValue::from_static("soon"));
        assert_eq!(retry_after(&headers), None);
    }
}
