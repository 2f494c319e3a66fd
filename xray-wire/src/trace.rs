//! Links to other systems: a caller's correlation id and a W3C Trace Context `traceparent`,
//! parsed and checked here only.
//!
//! A run can carry both, so "this run" links to "that request" in a tracing system (Jaeger,
//! Tempo, Honeycomb…): `GET /runs?trace_id=…` finds the runs a trace caused.

use std::fmt;

/// Longest correlation id accepted: a correlation id is a name ([`crate::MAX_NAME_LEN`]).
pub const MAX_CORRELATION_ID_LEN: usize = crate::MAX_NAME_LEN;

/// Why a `traceparent` or trace id is not valid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TraceError {
    /// Not `version-traceid-parentid-flags` with the right lengths.
    #[error("`{0}` is not a W3C traceparent (expected `00-<32 hex trace id>-<16 hex parent id>-<2 hex flags>`)")]
    Malformed(String),
    /// A field holds characters other than lowercase hex.
    #[error("`{0}` is not a W3C traceparent: fields must be lowercase hex")]
    NotHex(String),
    /// Version `ff` is forbidden by the spec.
    #[error("`{0}` is not a W3C traceparent: version `ff` is invalid")]
    BadVersion(String),
    /// An all-zero trace or parent id is invalid.
    #[error("`{0}` is not a W3C traceparent: the trace id and parent id must not be all zeros")]
    ZeroId(String),
    /// A trace id alone that is not 32 hex digits.
    #[error("`{0}` is not a trace id (expected 32 hex digits, not all zeros)")]
    BadTraceId(String),
}

/// A parsed W3C `traceparent` header (`00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceParent {
    /// The version byte (`00` today).
    pub version: u8,
    /// The trace id: 32 lowercase hex digits.
    pub trace_id: String,
    /// The caller's span id: 16 lowercase hex digits.
    pub parent_id: String,
    /// Trace flags (bit 0: sampled).
    pub flags: u8,
}

fn is_lower_hex(s: &str) -> bool {
    s.bytes()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

impl TraceParent {
    /// Parses a `traceparent` value per W3C Trace Context level 1 (surrounding spaces allowed;
    /// later versions may append fields after the flags, which are ignored).
    pub fn parse(text: &str) -> Result<TraceParent, TraceError> {
        let t = text.trim();
        let malformed = || TraceError::Malformed(text.to_string());
        let mut parts = t.split('-');
        let (Some(version), Some(trace_id), Some(parent_id), Some(flags)) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(malformed());
        };
        if version.len() != 2 || trace_id.len() != 32 || parent_id.len() != 16 || flags.len() != 2 {
            return Err(malformed());
        }
        if !(is_lower_hex(version)
            && is_lower_hex(trace_id)
            && is_lower_hex(parent_id)
            && is_lower_hex(flags))
        {
            return Err(TraceError::NotHex(text.to_string()));
        }
        if version == "ff" {
            return Err(TraceError::BadVersion(text.to_string()));
        }
        // Version 00 has exactly four fields; later versions may add more.
        if version == "00" && parts.next().is_some() {
            return Err(malformed());
        }
        if trace_id.bytes().all(|b| b == b'0') || parent_id.bytes().all(|b| b == b'0') {
            return Err(TraceError::ZeroId(text.to_string()));
        }
        let byte = |s: &str| u8::from_str_radix(s, 16).map_err(|_| malformed());
        Ok(TraceParent {
            version: byte(version)?,
            trace_id: trace_id.to_string(),
            parent_id: parent_id.to_string(),
            flags: byte(flags)?,
        })
    }
}

impl fmt::Display for TraceParent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:02x}-{}-{}-{:02x}",
            self.version, self.trace_id, self.parent_id, self.flags
        )
    }
}

/// Checks a bare trace id (32 hex digits, not all zeros) and returns it in lowercase.
pub fn normalize_trace_id(text: &str) -> Result<String, TraceError> {
    let t = text.trim().to_ascii_lowercase();
    if t.len() != 32 || !is_lower_hex(&t) || t.bytes().all(|b| b == b'0') {
        return Err(TraceError::BadTraceId(text.to_string()));
    }
    Ok(t)
}

/// The schema of a `traceparent` field: the version-00 form with ids that are not all zeros
/// (a last digit other than 0), every text of which [`TraceParent::parse`] takes; it also takes
/// surrounding spaces and later versions' extra fields, which the pattern leaves out.
#[cfg(feature = "openapi")]
pub(crate) fn traceparent_schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
    use utoipa::openapi::schema::{ObjectBuilder, SchemaType, Type};
    ObjectBuilder::new()
        .schema_type(SchemaType::from_iter([Type::String, Type::Null]))
        .pattern(Some(
            "^00-[0-9a-f]{31}[1-9a-f]-[0-9a-f]{15}[1-9a-f]-[0-9a-f]{2}$",
        ))
        .description(Some(
            "A W3C traceparent (`00-<32 hex trace id>-<16 hex parent id>-<2 hex flags>`).",
        ))
        .into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_spec_example() {
        let tp =
            TraceParent::parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01").unwrap();
        assert_eq!(tp.trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(tp.parent_id, "00f067aa0ba902b7");
        assert_eq!(tp.flags, 1);
        assert_eq!(
            tp.to_string(),
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
        );
    }

    #[test]
    fn refuses_what_the_spec_refuses() {
        for bad in [
            "",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
        ] {
            assert!(TraceParent::parse(bad).is_err(), "{bad}");
        }
        // A later version may carry more fields.
        assert!(
            TraceParent::parse("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-xyz")
                .is_ok()
        );
    }

    #[test]
    fn trace_ids_are_normalised() {
        assert_eq!(
            normalize_trace_id("4BF92F3577B34DA6A3CE929D0E0E4736").unwrap(),
            "4bf92f3577b34da6a3ce929d0e0e4736"
        );
        assert!(normalize_trace_id("00000000000000000000000000000000").is_err());
        assert!(normalize_trace_id("xyz").is_err());
    }
}
