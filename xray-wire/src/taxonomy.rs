//! The fixed vocabularies: step types, run statuses, capture levels and stats buckets. A value outside them
//! is refused with the list of accepted ones.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// A string that is not one of a fixed set of names, with the nearest valid name when one is close.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {kind} `{given}`: expected one of {}{}", .expected.join(", "), .suggestion.map(|s| format!(" (did you mean `{s}`?)")).unwrap_or_default())]
pub struct ParseEnumError {
    /// What was being parsed ("step_type", "status", "capture").
    pub kind: &'static str,
    /// The text that was given.
    pub given: String,
    /// Every accepted name.
    pub expected: &'static [&'static str],
    /// The accepted name nearest to `given`, if it is close enough to be a likely typo.
    pub suggestion: Option<&'static str>,
}

fn parse_name<T: Copy>(
    kind: &'static str,
    given: &str,
    names: &'static [&'static str],
    values: &[T],
) -> Result<T, ParseEnumError> {
    if let Some(i) = names.iter().position(|n| *n == given) {
        return Ok(values[i]);
    }
    let lower = given.to_ascii_lowercase();
    let suggestion = names
        .iter()
        .map(|n| (strsim::damerau_levenshtein(&lower, n), *n))
        .filter(|(d, n)| *d <= 2.max(n.len() / 3) || n.starts_with(&lower) && !lower.is_empty())
        .min_by_key(|(d, _)| *d)
        .map(|(_, n)| n);
    Err(ParseEnumError {
        kind,
        given: given.to_string(),
        expected: names,
        suggestion,
    })
}

macro_rules! name_enum {
    ($(#[$meta:meta])* $name:ident, $kind:literal, { $($(#[$vmeta:meta])* $variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "&'static str")]
        pub enum $name {
            $($(#[$vmeta])* $variant),+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];
            /// Every accepted name, in declaration order.
            pub const NAMES: &'static [&'static str] = &[$($text),+];

            /// The canonical lowercase name.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }
        }

        impl FromStr for $name {
            type Err = ParseEnumError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                parse_name($kind, s, Self::NAMES, Self::ALL)
            }
        }

        impl TryFrom<String> for $name {
            type Error = ParseEnumError;
            fn try_from(s: String) -> Result<Self, Self::Error> {
                s.parse()
            }
        }

        impl From<$name> for &'static str {
            fn from(v: $name) -> Self {
                v.as_str()
            }
        }

        #[cfg(feature = "openapi")]
        impl utoipa::PartialSchema for $name {
            /// One of [`Self::NAMES`].
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                utoipa::openapi::ObjectBuilder::new()
                    .schema_type(utoipa::openapi::schema::Type::String)
                    .enum_values(Some(Self::NAMES.iter().copied()))
                    .into()
            }
        }

        #[cfg(feature = "openapi")]
        impl utoipa::ToSchema for $name {}

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

name_enum!(
    /// What a step does. Every step declares one, so steps can be searched across pipelines.
    StepType, "step_type", {
        /// Creates new data (an LLM call, keyword generation).
        Generate => "generate",
        /// Fetches from an external source (search, database).
        Retrieve => "retrieve",
        /// Removes items by criteria.
        Filter => "filter",
        /// Orders items by score.
        Rank => "rank",
        /// Chooses the final output.
        Select => "select",
        /// Changes the shape of data.
        Transform => "transform",
    }
);

name_enum!(
    /// Where a run is in its life.
    RunStatus, "status", {
        /// Started, not finished (or its end has not arrived yet).
        Running => "running",
        /// Finished normally.
        Completed => "completed",
        /// Finished with an error or a panic.
        Failed => "failed",
    }
);

name_enum!(
    /// How much item-level detail a step keeps. Counts per reason are always exact.
    Capture, "capture", {
        /// Counts only.
        Minimal => "minimal",
        /// Counts plus up to 50 samples per rejection reason and 500 acceptances (reservoir-sampled
        /// over the whole step).
        Sample => "sample",
        /// Every event.
        Full => "full",
    }
);

// `name_enum!` also makes enums with no default, so the default is written out here.
#[allow(clippy::derivable_impls)]
impl Default for Capture {
    fn default() -> Self {
        Capture::Sample
    }
}

name_enum!(
    /// How wide a stats bucket is (`bucket=hour|day`).
    BucketWidth, "bucket", {
        /// One hour, starting on the hour (UTC).
        Hour => "hour",
        /// One day, starting at midnight UTC.
        Day => "day",
    }
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_name_and_round_trips() {
        for t in StepType::ALL {
            assert_eq!(t.as_str().parse::<StepType>(), Ok(*t));
            let json = serde_json::to_string(t).unwrap();
            assert_eq!(serde_json::from_str::<StepType>(&json).unwrap(), *t);
        }
    }

    #[test]
    fn suggests_the_nearest_name() {
        let err = "filtre".parse::<StepType>().unwrap_err();
        assert_eq!(err.suggestion, Some("filter"));
        assert!(err.to_string().contains("did you mean `filter`"), "{err}");
        assert_eq!(
            "Rank".parse::<StepType>().unwrap_err().suggestion,
            Some("rank")
        );
        assert_eq!("xyzzy".parse::<StepType>().unwrap_err().suggestion, None);
        assert_eq!(
            "complete".parse::<RunStatus>().unwrap_err().suggestion,
            Some("completed")
        );
    }

    #[test]
    fn serde_error_names_the_accepted_values() {
        let err = serde_json::from_str::<Capture>("\"everything\"").unwrap_err();
        assert!(err.to_string().contains("minimal, sample, full"), "{err}");
    }
}
