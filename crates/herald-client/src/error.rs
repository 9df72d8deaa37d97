//! The one error type of the crate: why a connection failed, dropped, or was never made.

use std::time::Duration;

use http::StatusCode;

/// Any error a connector or an HTTP client given to the builder may return.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Why an [`EventSource`](crate::EventSource) yielded an error, or could not be built.
///
/// An error in the stream does not by itself mean the source is finished: after a network error,
/// an end of stream or an idle timeout the source reconnects, as a browser does. Check
/// [`EventSource::ready_state`](crate::EventSource::ready_state) (or [`is_fatal`](Self::is_fatal))
/// to know whether more is to come.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct Error(Box<Kind>);

#[derive(Debug, thiserror::Error)]
pub(crate) enum Kind {
    #[error("invalid event source configuration: {0}")]
    Builder(String),
    #[error("connecting to the event source failed")]
    Connect(#[source] BoxError),
    #[error("no response from the event source within {0:?}")]
    ConnectTimeout(Duration),
    #[error("reading the event stream failed")]
    Body(#[source] BoxError),
    #[error("the server ended the event stream")]
    EndOfStream,
    #[error("no bytes from the event source for {0:?}")]
    IdleTimeout(Duration),
    #[error("the event source answered {status}{}", retry_note(*.retry))]
    Status { status: StatusCode, retry: bool },
    #[error("the event source answered 204 No Content: it asks not to reconnect")]
    NoContent,
    #[error("the event source's content type is {}, not text/event-stream", .0.as_deref().unwrap_or("missing"))]
    ContentType(Option<String>),
    #[error("following redirects failed: {0}")]
    Redirect(String),
    #[error("an event was dropped")]
    Decode(#[source] herald_codec::DecodeError),
}

fn retry_note(retry: bool) -> &'static str {
    if retry { " (will retry)" } else { "" }
}

impl Error {
    pub(crate) fn new(kind: Kind) -> Error {
        Error(Box::new(kind))
    }

    pub(crate) fn builder(message: impl Into<String>) -> Error {
        Error::new(Kind::Builder(message.into()))
    }

    /// The builder was given something invalid (a URL, a header, a certificate).
    pub fn is_builder(&self) -> bool {
        matches!(*self.0, Kind::Builder(_))
    }

    /// Connecting failed or the request could not be sent (DNS, refused connection, TLS, protocol
    /// error): a network error, after which the source reconnects.
    pub fn is_connect(&self) -> bool {
        matches!(*self.0, Kind::Connect(_) | Kind::ConnectTimeout(_))
    }

    /// Either timeout elapsed: the connect timeout or the idle timeout.
    pub fn is_timeout(&self) -> bool {
        matches!(*self.0, Kind::ConnectTimeout(_) | Kind::IdleTimeout(_))
    }

    /// The connection stayed silent (not even a comment) for longer than the idle timeout.
    pub fn is_idle_timeout(&self) -> bool {
        matches!(*self.0, Kind::IdleTimeout(_))
    }

    /// The connection broke, or the server ended the stream: the source reconnects.
    pub fn is_disconnect(&self) -> bool {
        matches!(*self.0, Kind::Body(_) | Kind::EndOfStream)
    }

    /// The server ended the response cleanly (the source reconnects, as browsers do).
    pub fn is_end_of_stream(&self) -> bool {
        matches!(*self.0, Kind::EndOfStream)
    }

    /// The server answered with a status other than 200 and 204.
    pub fn is_status(&self) -> bool {
        matches!(*self.0, Kind::Status { .. })
    }

    /// The status the server answered with, for [`is_status`](Self::is_status) and
    /// [`is_no_content`](Self::is_no_content) errors.
    pub fn status(&self) -> Option<StatusCode> {
        match *self.0 {
            Kind::Status { status, .. } => Some(status),
            Kind::NoContent => Some(StatusCode::NO_CONTENT),
            _ => None,
        }
    }

    /// The server answered `204 No Content`: the source is closed for good, as the server asked.
    pub fn is_no_content(&self) -> bool {
        matches!(*self.0, Kind::NoContent)
    }

    /// The response's content type was missing or not `text/event-stream`.
    pub fn is_content_type(&self) -> bool {
        matches!(*self.0, Kind::ContentType(_))
    }

    /// A redirect could not be followed: too many, a bad `Location`, or a scheme other than HTTP.
    pub fn is_redirect(&self) -> bool {
        matches!(*self.0, Kind::Redirect(_))
    }

    /// An event broke the decoder's size limits and was dropped; the stream goes on.
    pub fn is_decode(&self) -> bool {
        matches!(*self.0, Kind::Decode(_))
    }

    /// The source failed the connection and is closed for good: nothing more will be yielded.
    ///
    /// This is the case for a `204`, any other status (unless the
    /// [retry policy](crate::StatusPolicy) retries it), a wrong content type, a failed redirect,
    /// and a configuration error.
    pub fn is_fatal(&self) -> bool {
        match *self.0 {
            Kind::Builder(_) | Kind::NoContent | Kind::ContentType(_) | Kind::Redirect(_) => true,
            Kind::Status { retry, .. } => !retry,
            _ => false,
        }
    }
}
