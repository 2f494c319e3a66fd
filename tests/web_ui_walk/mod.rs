//! The walk through every view of the UI (`web_ui.rs`'s first test), one module a view: each
//! opens its view, checks what is shown against the API's answers, and leaves the browser where
//! the next one expects it.

mod diff;
mod fate;
mod run;
mod runs;

use super::browser::Browser;
use super::support::Api;
use serde_json::Value;

/// What every view of the walk is checked against.
#[derive(Clone, Copy)]
pub struct Walk<'a> {
    /// The browser, on the server's UI.
    pub browser: &'a Browser,
    /// The server's API.
    pub api: &'a Api,
    /// The server's URL.
    pub base: &'a str,
    /// The laptop-stand run (price cap 100), as `GET /runs/{id}` answers.
    pub a: &'a Value,
    /// The same title with a cap of 30, as `GET /runs/{id}` answers.
    pub b: &'a Value,
    /// `a`'s id.
    pub a_id: &'a str,
    /// `b`'s id.
    pub b_id: &'a str,
    /// The content pipeline's failure, as its run recorded it.
    pub timeout: &'a str,
}

/// Every view, in the order a user would go.
pub async fn walk(w: Walk<'_>) {
    runs::list(w).await;
    run::timeline(w).await;
    fate::item_fate(w).await;
    fate::step_search(w).await;
    runs::failed(w).await;
    diff::diff(w).await;
    runs::pipelines(w).await;
    runs::replay(w).await;
}

/// `1,021`, as the UI writes counts.
pub fn count(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A score as the UI writes it: three decimals, a trailing zero dropped.
pub fn score(v: f64) -> String {
    let s = format!("{v:.3}");
    s.strip_suffix('0').map(str::to_string).unwrap_or(s)
}

pub fn step<'a>(run: &'a Value, name: &str) -> &'a Value {
    run["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .find(|s| s["name"] == name)
        .unwrap_or_else(|| panic!("no step {name}"))
}

/// Items a step kept, by outcome: `(accepted, rejected with reason)`.
pub fn kept(step: &Value) -> (Vec<String>, Vec<(String, String)>) {
    let accepted = step["acceptances"]["samples"]
        .as_array()
        .expect("samples")
        .iter()
        .map(|s| s["item_id"].as_str().expect("id").to_string())
        .collect();
    let mut rejected = Vec::new();
    for (reason, r) in step["rejections"].as_object().expect("rejections") {
        for s in r["samples"].as_array().expect("samples") {
            rejected.push((
                s["item_id"].as_str().expect("id").to_string(),
                reason.clone(),
            ));
        }
    }
    (accepted, rejected)
}
