//! A rank step's ranking: where each item landed, with what score, and where the cut was — the
//! rank step's answer to "why did item #12 miss the top 10?".

use crate::{ItemId, JsonText};
use serde::{Deserialize, Serialize};

/// How many of the top positions a `sample` capture keeps, besides a uniform sample of the rest.
pub const TOP_POSITIONS_KEPT: u64 = 50;
/// How many items below the top positions a `sample` capture keeps (a uniform reservoir).
pub const TAIL_KEPT: usize = 50;

/// What a rank step recorded of its ranking (`ranking` of a step).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Ranking {
    /// Items ranked (exact, whatever the capture level).
    #[serde(deserialize_with = "crate::json::whole")]
    #[cfg_attr(feature = "openapi", schema(maximum = 9223372036854775807_i64))]
    pub count: u64,
    /// How many went on: positions `1..=cutoff` made it (default: the step's output count).
    #[serde(default, deserialize_with = "crate::json::whole_opt")]
    #[cfg_attr(feature = "openapi", schema(maximum = 9223372036854775807_i64))]
    pub cutoff: Option<u64>,
    /// The score at the cutoff position: the last item in (derived from the samples if absent).
    #[serde(default)]
    pub cutoff_score: Option<f64>,
    /// The score of the first item out, at position `cutoff + 1` (derived from the samples if
    /// absent). The step's close-call margin is `cutoff_score - first_out_score`.
    #[serde(default)]
    pub first_out_score: Option<f64>,
    /// The items kept: none at `minimal`; at `sample` the top 50 positions and a uniform sample
    /// of 50 of the rest; all at `full`. In order of position.
    #[serde(default)]
    pub samples: Vec<RankSample>,
}

/// One ranked item.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct RankSample {
    /// The item.
    pub item_id: ItemId,
    /// Where it landed, from 1.
    #[serde(deserialize_with = "crate::json::whole")]
    #[cfg_attr(
        feature = "openapi",
        schema(minimum = 1, maximum = 9223372036854775807_i64)
    )]
    pub position: u64,
    /// Its score.
    pub score: f64,
    /// Free-form details, as JSON text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<JsonText>,
}

/// The scores at the cut: of the last item in (at `cutoff`) and of the first item out (at
/// `cutoff + 1`), from `(position, score)` pairs sorted by position. One definition for the
/// SDK, the OTLP mapping and the server.
pub fn cut_scores(sorted: &[(u64, f64)], cutoff: Option<u64>) -> (Option<f64>, Option<f64>) {
    let score_at = |position: u64| {
        let i = sorted.partition_point(|&(p, _)| p < position);
        sorted
            .get(i)
            .filter(|&&(p, _)| p == position)
            .map(|&(_, score)| score)
    };
    match cutoff {
        Some(c) => (score_at(c), c.checked_add(1).and_then(score_at)),
        None => (None, None),
    }
}
