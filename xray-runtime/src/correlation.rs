//! Linking runs to the requests that caused them: a correlation id and a W3C `traceparent`.
//!
//! A run takes its links from, in order: what its [`RunBuilder`](crate::RunBuilder) was given;
//! the current context ([`Correlation::in_scope`], or a future instrumented with
//! [`Context::with_correlation`](crate::Context::with_correlation)); the run it was started in;
//! and finally the process environment (`XRAY_CORRELATION_ID`, and `TRACEPARENT` as set by
//! tools that propagate W3C trace context to child processes).
//!
//! ```
//! // In a web handler: the request's id and its `traceparent` header.
//! let links = xray::Correlation::new()
//!     .id("req-7f3a")
//!     .traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
//! links.in_scope(|| {
//!     // Every run started in here (by `#[xray::run]` or by hand) carries both.
//! });
//! ```

use crate::config::env;
use crate::context::Context;
use once_cell::sync::Lazy;
use xray_wire::TraceParent;

/// A run's links to another system: the caller's correlation id and W3C trace.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Correlation {
    id: Option<String>,
    traceparent: Option<TraceParent>,
}

static FROM_ENV: Lazy<Correlation> = Lazy::new(|| {
    let mut c = Correlation::new();
    if let Some(id) = env::<String>("XRAY_CORRELATION_ID") {
        c = c.id(id);
    }
    if let Some(tp) = env::<String>("TRACEPARENT") {
        c = c.traceparent(&tp);
    }
    c
});

impl Correlation {
    /// No links.
    pub fn new() -> Correlation {
        Correlation::default()
    }

    /// Sets the correlation id (a request id, an order number…). One the server would refuse
    /// (empty, over 512 bytes, or holding NUL) is ignored with a warning: it must never cost the
    /// run.
    pub fn id(mut self, id: impl Into<String>) -> Correlation {
        let id = id.into();
        if !xray_wire::name_is_valid(&id) {
            tracing::warn!(
                "X-Ray: ignoring a correlation id of {} bytes (1 to {} without NUL are kept)",
                id.len(),
                xray_wire::MAX_CORRELATION_ID_LEN
            );
        } else {
            self.id = Some(id);
        }
        self
    }

    /// Sets the W3C `traceparent` header value. An invalid one is ignored with a warning: it
    /// must never cost the run (the server would refuse it).
    pub fn traceparent(mut self, header: &str) -> Correlation {
        match TraceParent::parse(header) {
            Ok(tp) => self.traceparent = Some(tp),
            Err(e) => tracing::warn!("X-Ray: ignoring traceparent: {e}"),
        }
        self
    }

    /// The links in `XRAY_CORRELATION_ID` and `TRACEPARENT`, read once per process.
    pub fn from_env() -> Correlation {
        FROM_ENV.clone()
    }

    /// The correlation id.
    pub fn correlation_id(&self) -> Option<&str> {
        self.id.as_deref()
    }

    /// The parsed `traceparent`.
    pub fn trace_parent(&self) -> Option<&TraceParent> {
        self.traceparent.as_ref()
    }

    /// The W3C trace id (32 hex digits).
    pub fn trace_id(&self) -> Option<&str> {
        self.traceparent.as_ref().map(|t| t.trace_id.as_str())
    }

    /// True when neither link is set.
    pub fn is_empty(&self) -> bool {
        self.id.is_none() && self.traceparent.is_none()
    }

    /// Each link of `self`, or else of `other`.
    pub(crate) fn or(self, other: &Correlation) -> Correlation {
        Correlation {
            id: self.id.or_else(|| other.id.clone()),
            traceparent: self.traceparent.or_else(|| other.traceparent.clone()),
        }
    }

    /// The `traceparent` as sent on the wire.
    pub(crate) fn traceparent_text(&self) -> Option<String> {
        self.traceparent.as_ref().map(|t| t.to_string())
    }

    /// Runs `f` with these links current: runs started inside carry them.
    pub fn in_scope<R>(self, f: impl FnOnce() -> R) -> R {
        Context::current().with_correlation(self).in_scope(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_invalid_traceparent_is_dropped_not_sent() {
        let c = Correlation::new().id("r").traceparent("not-a-traceparent");
        assert_eq!(c.correlation_id(), Some("r"));
        assert_eq!(c.trace_id(), None);
    }

    #[test]
    fn an_id_the_server_would_refuse_is_dropped_not_sent() {
        for bad in [String::new(), "x".repeat(513), "a\0b".to_string()] {
            assert_eq!(Correlation::new().id(bad).correlation_id(), None);
        }
        assert_eq!(
            Correlation::new()
                .id("x".repeat(512))
                .correlation_id()
                .map(str::len),
            Some(512)
        );
    }

    #[test]
    fn explicit_links_win_link_by_link() {
        let tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let outer = Correlation::new().id("outer").traceparent(tp);
        let c = Correlation::new().id("inner").or(&outer);
        assert_eq!(c.correlation_id(), Some("inner"));
        assert_eq!(c.trace_id(), Some("4bf92f3577b34da6a3ce929d0e0e4736"));
    }
}
