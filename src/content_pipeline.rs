//! An LLM-style content pipeline, async: generate drafts → validate them (too long, off topic,
//! unsafe) → score → select. The "model" is simulated (deterministic text and latency from the
//! topic), so some runs fail (the model times out) and some end with a weak selection.

use serde::Serialize;
use serde_json::json;
use std::time::Duration;

/// A generated draft.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Draft {
    /// `draft-3`.
    pub id: String,
    /// The text.
    pub text: String,
}

/// A draft with its score.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Scored {
    /// The draft's id.
    pub id: String,
    /// 0 to 1.
    pub score: f64,
}

/// The post the pipeline publishes.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Post {
    /// The chosen draft.
    pub draft_id: String,
    /// Its score.
    pub score: f64,
}

/// Why no post came out.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ContentError {
    /// The simulated model did not answer in time.
    #[error("model timed out after {0} ms generating drafts about {1:?}")]
    ModelTimeout(u64, String),
    /// Validation rejected every draft.
    #[error("no draft passed validation")]
    NothingValid,
}

fn hash(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    })
}

const FILLER: &[&str] = &[
    "really",
    "quite",
    "remarkably",
    "truly",
    "notably",
    "simply",
];

/// Asks the "model" for `n` drafts about `topic`.
#[xray::step(step_type = "generate")]
pub async fn generate_drafts(topic: &str, n: usize) -> Result<Vec<Draft>, ContentError> {
    let h = hash(topic);
    let latency = 5 + h % 20;
    step.set_attribute("model", "sim-llm-1");
    tokio::time::sleep(Duration::from_millis(latency)).await;
    if topic.contains("timeout") {
        return Err(ContentError::ModelTimeout(latency, topic.to_string()));
    }
    Ok((0..n)
        .map(|i| {
            let k = (h >> (i % 16)) as usize + i;
            let mut words = vec![topic.to_string()];
            words.extend((0..(k % 40)).map(|j| FILLER[(k + j) % FILLER.len()].to_string()));
            if k.is_multiple_of(7) {
                words.push("(unsafe claim)".into());
            }
            if k.is_multiple_of(5) {
                words[0] = "something else entirely".into();
            }
            Draft {
                id: format!("draft-{i}"),
                text: words.join(" "),
            }
        })
        .collect())
}

/// Checks one draft, recording why it fails (called after an `.await`, on any worker thread).
async fn check(draft: &Draft, topic: &str, max_words: usize) -> bool {
    tokio::task::yield_now().await;
    let words = draft.text.split_whitespace().count();
    let step = xray::current_step();
    if draft.text.contains("unsafe") {
        step.reject(&draft.id, "unsafe", json!({"flag": "unsafe claim"}));
    } else if !draft.text.contains(topic) {
        step.reject(&draft.id, "off_topic", json!({"topic": topic}));
    } else if words > max_words {
        step.reject(
            &draft.id,
            "too_long",
            json!({"words": words, "max": max_words}),
        );
    } else {
        step.accept_with(&draft.id, json!({"words": words}));
        return true;
    }
    false
}

/// Keeps drafts that are safe, on topic and short enough.
#[xray::step(step_type = "filter", skip(drafts))]
pub async fn validate(drafts: Vec<Draft>, topic: &str, max_words: usize) -> Vec<Draft> {
    let mut kept = Vec::new();
    for draft in drafts {
        if check(&draft, topic, max_words).await {
            kept.push(draft);
        }
    }
    kept
}

/// Scores drafts: shorter is better, and the "judge" likes some topics less than others.
#[xray::step(step_type = "rank", skip(drafts))]
pub async fn score(drafts: Vec<Draft>, topic: &str) -> Vec<Scored> {
    tokio::time::sleep(Duration::from_millis(2)).await;
    let judge = 0.4 + (hash(topic) % 7) as f64 / 10.0;
    step.set_attribute("judge_factor", judge);
    let mut scored: Vec<Scored> = drafts
        .iter()
        .map(|d| {
            let words = d.text.split_whitespace().count() as f64;
            Scored {
                id: d.id.clone(),
                score: ((judge / (1.0 + words / 8.0)) * 1000.0).round() / 1000.0,
            }
        })
        .collect();
    scored.sort_by(|a, b| b.score.total_cmp(&a.score).then_with(|| a.id.cmp(&b.id)));
    scored
}

/// Picks the best-scored draft.
#[xray::step(step_type = "select", skip(scored))]
pub async fn select(scored: Vec<Scored>) -> Result<Scored, ContentError> {
    let best = scored.first().cloned().ok_or(ContentError::NothingValid)?;
    step.decide(&best.id, best.score, json!({"candidates": scored.len()}));
    Ok(best)
}

/// The whole pipeline for one topic.
#[xray::run(pipeline = "content_pipeline")]
pub async fn write_post(topic: String, max_words: usize) -> Result<Post, ContentError> {
    let drafts = generate_drafts(&topic, 12).await?;
    let valid = validate(drafts, &topic, max_words).await;
    let scored = score(valid, &topic).await;
    let best = select(scored).await?;
    Ok(Post {
        draft_id: best.id,
        score: best.score,
    })
}
