//! The seed's pipeline: given a product title, find the best competing product in a catalog.
//!
//! generate keywords → search the catalog → filter candidates (category, price, rating) → rank
//! by relevance → select the best. It carries the seed's bug: the keyword table expands "case"
//! to "stand", which pulls laptop stands into the search, widens the category filter to let them
//! through, and ends with a laptop stand chosen as the competitor of an iPhone case. X-Ray shows
//! the trail; nothing here but the attributes and `step.reject/accept/decide` knows about it.

use crate::catalog::Product;
use serde::Serialize;
use serde_json::json;
use std::sync::atomic::{AtomicBool, Ordering};

/// What the pipeline chose.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Selection {
    /// The X-Ray run that recorded this selection.
    pub run_id: Option<String>,
    /// The chosen product.
    pub product_id: String,
    /// Its title.
    pub title: String,
    /// Its relevance score, 0 to 1.
    pub score: f64,
}

/// Why no product could be chosen.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SelectionError {
    /// Every candidate was filtered out.
    #[error("no candidate left after filtering")]
    NothingLeft,
}

const STOPWORDS: &[&str] = &["for", "the", "with", "and", "a", "of", "to"];

/// Related words added to a query. The bug: a case is not a stand.
const RELATED: &[(&str, &[&str])] = &[
    ("case", &["cover", "holder", "stand"]),
    ("charger", &["adapter", "power"]),
    ("cable", &["cord", "lightning"]),
    ("protector", &["glass", "film"]),
];

/// The table with the fix: a case is a cover or a holder, never a stand.
const RELATED_FIXED: &[(&str, &[&str])] = &[
    ("case", &["cover", "holder"]),
    ("charger", &["adapter", "power"]),
    ("cable", &["cord", "lightning"]),
    ("protector", &["glass", "film"]),
];

/// Whether the keyword fix is on (off: the seed's bug).
static KEYWORD_FIX: AtomicBool = AtomicBool::new(false);

/// Turns the keyword fix on or off for the whole process (the example turns it on when
/// `XRAY_EXAMPLE_FIX=1`): the change a replay checks on a recorded run before it ships.
pub fn use_keyword_fix(on: bool) {
    KEYWORD_FIX.store(on, Ordering::Relaxed);
}

fn related() -> &'static [(&'static str, &'static [&'static str])] {
    if KEYWORD_FIX.load(Ordering::Relaxed) {
        RELATED_FIXED
    } else {
        RELATED
    }
}

/// Which categories a keyword asks for.
const CATEGORIES: &[(&str, &[&str])] = &[
    ("case", &["phone_cases"]),
    ("cover", &["phone_cases"]),
    ("holder", &["phone_stands"]),
    ("stand", &["laptop_stands", "phone_stands"]),
    ("charger", &["chargers"]),
    ("cable", &["cables"]),
    ("cord", &["cables"]),
    ("protector", &["screen_protectors"]),
    ("glass", &["screen_protectors"]),
];

fn words(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric() && c != '-')
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .filter(|w| !STOPWORDS.contains(&w.as_str()))
        .collect()
}

/// Search keywords for a product title: its words and their related words. Replayable alone.
#[xray::step(step_type = "generate", replay)]
pub fn generate_keywords(product_title: &str) -> Vec<String> {
    let mut keywords = words(product_title);
    for (word, related) in related() {
        if keywords.iter().any(|k| k == word) {
            keywords.extend(related.iter().map(|r| r.to_string()));
        }
    }
    let mut seen = std::collections::HashSet::new();
    keywords.retain(|k| seen.insert(k.clone()));
    keywords
}

/// Every product whose title has one of the keywords.
#[xray::step(step_type = "retrieve", skip(catalog))]
pub fn search_products(keywords: &[String], catalog: &[Product]) -> Vec<Product> {
    // Searched: the catalog (the attribute would count the first collection, the keywords).
    step.set_input_count(catalog.len() as u64);
    catalog
        .iter()
        .filter(|p| words(&p.title).iter().any(|w| keywords.contains(w)))
        .cloned()
        .collect()
}

/// Keeps candidates in a category the keywords ask for, within budget and well rated.
#[xray::step(step_type = "filter", skip(candidates))]
pub fn filter_candidates(
    candidates: Vec<Product>,
    keywords: &[String],
    max_price: f64,
    min_rating: f64,
) -> Vec<Product> {
    let mut allowed: Vec<&str> = CATEGORIES
        .iter()
        .filter(|(word, _)| keywords.iter().any(|k| k == word))
        .flat_map(|(_, categories)| categories.iter().copied())
        .collect();
    allowed.sort_unstable();
    allowed.dedup();
    step.set_attribute("allowed_categories", &allowed);
    candidates
        .into_iter()
        .filter(|p| {
            if !allowed.contains(&p.category.as_str()) {
                step.reject(
                    &p.id,
                    "category_mismatch",
                    json!({"category": p.category, "allowed": allowed}),
                );
                false
            } else if p.price > max_price {
                step.reject(
                    &p.id,
                    "price_too_high",
                    json!({"price": p.price, "threshold": max_price}),
                );
                false
            } else if p.rating < min_rating {
                step.reject(
                    &p.id,
                    "low_rating",
                    json!({"rating": p.rating, "minimum": min_rating}),
                );
                false
            } else {
                step.accept_with(&p.id, json!({"category": p.category, "price": p.price}));
                true
            }
        })
        .collect()
}

/// A candidate and its relevance.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Ranked {
    /// The product's id.
    pub id: String,
    /// Its title.
    pub title: String,
    /// Share of the keywords its title has, plus a little for its rating.
    pub score: f64,
}

/// Orders candidates by the share of keywords in their titles (ties: better rated first).
#[xray::step(step_type = "rank", skip(candidates))]
pub fn rank_by_relevance(candidates: Vec<Product>, keywords: &[String]) -> Vec<Ranked> {
    let mut ranked: Vec<Ranked> = candidates
        .into_iter()
        .map(|p| {
            let title = words(&p.title);
            let hits = keywords.iter().filter(|k| title.contains(k)).count();
            let score = hits as f64 / keywords.len().max(1) as f64 + p.rating / 100.0;
            Ranked {
                id: p.id,
                title: p.title,
                score: (score * 1000.0).round() / 1000.0,
            }
        })
        .collect();
    ranked.sort_by(|a, b| b.score.total_cmp(&a.score).then_with(|| a.id.cmp(&b.id)));
    // Where each candidate landed; only the first goes on to be picked, so the cut is at 1 and
    // the step's margin is the pick's lead over the runner-up.
    for (i, r) in ranked.iter().enumerate() {
        step.rank(&r.id, i as u64 + 1, r.score);
    }
    step.set_cutoff(1);
    ranked
}

/// Chooses the best-ranked candidate.
#[xray::step(step_type = "select", skip(ranked))]
pub fn select_best(ranked: &[Ranked]) -> Result<Ranked, SelectionError> {
    let best = ranked.first().ok_or(SelectionError::NothingLeft)?;
    step.decide(
        &best.id,
        best.score,
        json!({
            "why": "highest keyword relevance",
            "title": best.title,
            "runner_up": ranked.get(1).map(|r| json!({"id": r.id, "score": r.score})),
        }),
    );
    if let Some(second) = ranked.get(1) {
        step.set_runner_up(&second.id, second.score);
    }
    Ok(best.clone())
}

/// The whole pipeline: the best competitor in `catalog` for `product_title`. Replayable: a
/// replay gives the catalog with `ReplayContext::new().provide("catalog", catalog)`.
#[xray::run(pipeline = "competitor_selection", replay, skip(catalog))]
pub fn select_competitor(
    product_title: &str,
    max_price: f64,
    catalog: &[Product],
) -> Result<Selection, SelectionError> {
    let keywords = generate_keywords(product_title);
    let candidates = search_products(&keywords, catalog);
    let kept = filter_candidates(candidates, &keywords, max_price, 3.5);
    let ranked = rank_by_relevance(kept, &keywords);
    let best = select_best(&ranked)?;
    Ok(Selection {
        run_id: xray::current_run().id().map(str::to_string),
        product_id: best.id,
        title: best.title,
        score: best.score,
    })
}
