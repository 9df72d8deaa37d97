//! The bound on open connections per client address (`max_connections_per_ip`), so that one
//! client cannot take every place that `max_connections` leaves for all of them.
//!
//! An IPv4 address counts as itself; an IPv6 address counts by its /64 network, since one
//! client is commonly given a whole /64 and could otherwise open each connection from a new
//! address. An IPv4 address mapped into IPv6 counts as the IPv4 address.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::{Arc, Mutex, PoisonError};

/// What connections are counted by: an IPv4 address or an IPv6 /64 network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Client {
    V4(u32),
    V6(u64),
}

impl Client {
    fn of(ip: IpAddr) -> Client {
        match ip {
            IpAddr::V4(v4) => Client::V4(u32::from(v4)),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => Client::V4(u32::from(v4)),
                None => Client::V6(network(v6)),
            },
        }
    }
}

/// The /64 network of an IPv6 address.
fn network(v6: Ipv6Addr) -> u64 {
    (u128::from(v6) >> 64) as u64
}

/// Counts the open connections of each client address against a bound.
#[derive(Debug)]
pub(super) struct PerAddress {
    max: usize,
    open: Mutex<HashMap<Client, usize>>,
}

/// One counted connection: the count goes down when this is dropped, however the connection
/// ends.
#[derive(Debug)]
pub(super) struct Held {
    counts: Arc<PerAddress>,
    client: Client,
}

impl PerAddress {
    /// A bound of `max` open connections per address; `None` for zero (no bound).
    pub(super) fn new(max: usize) -> Option<Arc<PerAddress>> {
        (max != 0).then(|| {
            Arc::new(PerAddress {
                max,
                open: Mutex::new(HashMap::new()),
            })
        })
    }

    /// Counts one more connection from `ip`, or `None` when its address already holds the
    /// most it may.
    pub(super) fn hold(self: &Arc<Self>, ip: IpAddr) -> Option<Held> {
        let client = Client::of(ip);
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        let count = open.entry(client).or_insert(0);
        if *count >= self.max {
            return None;
        }
        *count += 1;
        Some(Held {
            counts: Arc::clone(self),
            client,
        })
    }

    #[cfg(test)]
    fn addresses(&self) -> usize {
        self.open
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        let mut open = self
            .counts
            .open
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(count) = open.get_mut(&self.client) {
            *count -= 1;
            if *count == 0 {
                // An address that left takes no room.
                open.remove(&self.client);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("address")
    }

    #[test]
    fn an_address_holds_at_most_the_bound_and_gets_its_places_back() {
        let counts = PerAddress::new(2).expect("bounded");
        let a = counts.hold(ip("192.0.2.1")).expect("first");
        let _b = counts.hold(ip("192.0.2.1")).expect("second");
        assert!(counts.hold(ip("192.0.2.1")).is_none(), "third refused");
        assert!(counts.hold(ip("192.0.2.2")).is_some(), "another address");
        drop(a);
        assert!(counts.hold(ip("192.0.2.1")).is_some(), "a place freed");
    }

    #[test]
    fn ipv6_counts_by_its_64_network_and_mapped_ipv4_as_ipv4() {
        let counts = PerAddress::new(1).expect("bounded");
        let _a = counts.hold(ip("2001:db8:1:2::1")).expect("first");
        assert!(
            counts.hold(ip("2001:db8:1:2:ffff::9")).is_none(),
            "same /64"
        );
        assert!(counts.hold(ip("2001:db8:1:3::1")).is_some(), "another /64");
        let _v4 = counts.hold(ip("198.51.100.7")).expect("v4");
        assert!(counts.hold(ip("::ffff:198.51.100.7")).is_none(), "mapped");
    }

    #[test]
    fn addresses_that_left_take_no_room() {
        let counts = PerAddress::new(3).expect("bounded");
        for n in 0..100u8 {
            drop(counts.hold(IpAddr::from([10, 0, 0, n])).expect("held"));
        }
        assert_eq!(counts.addresses(), 0);
    }

    #[test]
    fn zero_is_no_bound() {
        assert!(PerAddress::new(0).is_none());
    }
}
