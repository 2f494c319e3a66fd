//! Timestamps on the wire: RFC 3339 text, with an error that shows the expected form.
//! It must not accept a time without its offset.

use crate::Timestamp;
use serde::{Deserialize, Deserializer};

fn parse<E: serde::de::Error>(text: &str) -> Result<Timestamp, E> {
    chrono::DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&chrono::Utc))
        .map_err(|e| {
            E::custom(format!(
                "expected an RFC 3339 time such as 2026-11-26T12:00:00Z, got `{text}` ({e})"
            ))
        })
}

/// Reads a required timestamp.
pub fn required<'de, D: Deserializer<'de>>(d: D) -> Result<Timestamp, D::Error> {
    let text = std::borrow::Cow::<str>::deserialize(d)?;
    parse(&text)
}

/// Reads an optional timestamp (`null` or absent is `None`).
pub fn optional<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Timestamp>, D::Error> {
    Option::<std::borrow::Cow<str>>::deserialize(d)?
        .map(|text| parse(&text))
        .transpose()
}
