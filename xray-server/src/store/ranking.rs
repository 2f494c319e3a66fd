//! A rank step's ranking as stored: checked (positions from 1, finite scores, no more samples
//! than items), its cutoff defaulted to the step's output count, and the scores at the cut
//! derived from the kept items where the client left them out. Plain data: no SQL.

use super::validate::{invalid, ValidationError};
use xray_wire::{cut_scores, Ranking};

/// A ranking ready to store: its JSON text and its close-call margin.
pub struct StoredRanking {
    /// The ranking with its cutoff and scores at the cut filled in, as JSON text.
    pub json: String,
    /// The last item in's score minus the first item out's, when both are known.
    pub margin: Option<f64>,
    /// The kept items' hashes ([`super::packed::key`]), for the item index.
    pub keys: Vec<i64>,
}

/// Checks a step's ranking (`path` names the step) and fills in what can be derived.
pub fn check(
    path: &str,
    mut ranking: Ranking,
    output_count: Option<i64>,
) -> Result<StoredRanking, ValidationError> {
    let at = |field: &str| format!("{path}.ranking.{field}");
    if ranking.samples.len() as u64 > ranking.count {
        return Err(invalid(
            at("samples"),
            format!(
                "{} samples for a count of {}: a ranking keeps at most its count",
                ranking.samples.len(),
                ranking.count
            ),
        ));
    }
    let too_big = |n: u64| i64::try_from(n).is_err();
    if too_big(ranking.count) {
        return Err(invalid(at("count"), "must be at most 9223372036854775807"));
    }
    if ranking.cutoff.is_some_and(too_big) {
        return Err(invalid(at("cutoff"), "must be at most 9223372036854775807"));
    }
    for (i, s) in ranking.samples.iter().enumerate() {
        if s.position == 0 || too_big(s.position) {
            return Err(invalid(
                at(&format!("samples[{i}].position")),
                "positions start at 1 and are at most 9223372036854775807",
            ));
        }
        if !s.score.is_finite() {
            return Err(invalid(
                at(&format!("samples[{i}].score")),
                "must be a finite number",
            ));
        }
    }
    for (field, score) in [
        ("cutoff_score", ranking.cutoff_score),
        ("first_out_score", ranking.first_out_score),
    ] {
        if score.is_some_and(|s| !s.is_finite()) {
            return Err(invalid(at(field), "must be a finite number"));
        }
    }
    ranking.samples.sort_by_key(|s| s.position);
    ranking.cutoff = ranking
        .cutoff
        .or_else(|| output_count.and_then(|n| u64::try_from(n).ok()));
    let sorted: Vec<(u64, f64)> = ranking
        .samples
        .iter()
        .map(|s| (s.position, s.score))
        .collect();
    let (last_in, first_out) = cut_scores(&sorted, ranking.cutoff);
    ranking.cutoff_score = ranking.cutoff_score.or(last_in);
    ranking.first_out_score = ranking.first_out_score.or(first_out);
    let margin = match (ranking.cutoff_score, ranking.first_out_score) {
        (Some(last_in), Some(first_out)) => Some(last_in - first_out),
        _ => None,
    };
    let json = serde_json::to_string(&ranking)
        .map_err(|e| invalid(at(""), format!("cannot be stored: {e}")))?;
    let keys = ranking
        .samples
        .iter()
        .map(|s| super::packed::key(s.item_id.as_str()))
        .collect();
    Ok(StoredRanking { json, margin, keys })
}
