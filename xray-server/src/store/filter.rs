//! What a read asks for: filters, page size and keyset cursors. Plain data, built by the HTTP
//! layer and read by the store's queries; it must not hold SQL.

use std::fmt;
use xray_wire::{RunStatus, StepType};

/// A position in a newest-first listing: the last row's start time and id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    /// Start time of the last row returned (µs since the epoch).
    pub at: i64,
    /// Id of the last row returned.
    pub id: String,
}

/// A cursor that is not one this server handed out.
#[derive(Debug, thiserror::Error)]
#[error("is not a cursor returned by this server (pass `next_cursor` from the previous page)")]
pub struct BadCursor;

impl Cursor {
    /// Reads a cursor made by `Cursor::to_string` (its `Display`).
    pub fn parse(s: &str) -> Result<Cursor, BadCursor> {
        // The time may be negative (before 1970): the separator is the first `-` after it.
        let sign = usize::from(s.starts_with('-'));
        let dash = s[sign..].find('-').ok_or(BadCursor)? + sign;
        let (at, hex) = (&s[..dash], &s[dash + 1..]);
        let at = at.parse().map_err(|_| BadCursor)?;
        if hex.len() % 2 != 0 {
            return Err(BadCursor);
        }
        let bytes = (0..hex.len())
            .step_by(2)
            .map(|i| {
                hex.get(i..i + 2)
                    .and_then(|b| u8::from_str_radix(b, 16).ok())
            })
            .collect::<Option<Vec<u8>>>()
            .ok_or(BadCursor)?;
        // Any such text is a position to continue from, even one this server did not make (the
        // spec says so): bytes that are not UTF-8, and NUL, which no stored id holds, read as
        // U+FFFD.
        let id = String::from_utf8_lossy(&bytes).replace('\0', "\u{FFFD}");
        Ok(Cursor { at, id })
    }
}

impl fmt::Display for Cursor {
    /// `{µs}-{id as hex}`: opaque to clients, safe in a URL whatever the id holds.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-", self.at)?;
        for b in self.id.as_bytes() {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

/// `GET /runs` filters.
#[derive(Debug, Clone, Default)]
pub struct RunFilter {
    /// Only this pipeline.
    pub pipeline: Option<String>,
    /// Only this status.
    pub status: Option<RunStatus>,
    /// Only runs of this version of the pipeline's code.
    pub version: Option<String>,
    /// Only replays of this run or step.
    pub replay_of: Option<String>,
    /// Only runs with this correlation id.
    pub correlation_id: Option<String>,
    /// Only runs of this W3C trace (lowercase hex).
    pub trace_id: Option<String>,
    /// Started at or after (µs).
    pub since: Option<i64>,
    /// Started before (µs).
    pub until: Option<i64>,
    /// Page size.
    pub limit: i64,
    /// Continue after this row.
    pub cursor: Option<Cursor>,
}

/// `GET /steps` filters: every field narrows the search.
#[derive(Debug, Clone, Default)]
pub struct StepFilter {
    /// Only this step type.
    pub step_type: Option<StepType>,
    /// Only steps with this name.
    pub name: Option<String>,
    /// Only steps of this pipeline.
    pub pipeline: Option<String>,
    /// Rejection rate strictly above.
    pub rejection_rate_gt: Option<f64>,
    /// Rejection rate strictly below.
    pub rejection_rate_lt: Option<f64>,
    /// Duration strictly above (ms).
    pub duration_gt: Option<f64>,
    /// Duration strictly below (ms).
    pub duration_lt: Option<f64>,
    /// Decision score strictly above.
    pub score_gt: Option<f64>,
    /// Decision score strictly below.
    pub score_lt: Option<f64>,
    /// Rank steps whose close-call margin is below this.
    pub margin_lt: Option<f64>,
    /// Started at or after (µs).
    pub since: Option<i64>,
    /// Started before (µs).
    pub until: Option<i64>,
    /// Page size.
    pub limit: i64,
    /// Continue after this row.
    pub cursor: Option<Cursor>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_any_id() {
        for at in [1_764_000_000_000_000, -62_135_596_800_000_000, 0] {
            for id in ["run-1", "a~b-c/d?e=f&g", "ünïcode", ""] {
                let c = Cursor { at, id: id.into() };
                assert_eq!(Cursor::parse(&c.to_string()).unwrap(), c);
            }
        }
        for bad in ["", "abc", "12-zz", "12-6", "x-00", "-", "--12-00"] {
            assert!(Cursor::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn every_text_of_the_cursor_pattern_is_a_position() {
        // Bytes that are not UTF-8, and NUL, read as U+FFFD: the spec's pattern says what is
        // accepted, and a NUL could not reach PostgreSQL's text.
        let c = Cursor::parse("-5-ff00C3A9").unwrap();
        assert_eq!((c.at, c.id.as_str()), (-5, "\u{FFFD}\u{FFFD}é"));
    }
}
