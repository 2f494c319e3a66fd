//! Two costs a pipeline sees with the server down (buffer mode, spooling to disk):
//!
//! 1. closing a step that recorded 5,000 rejections over 3 reasons: the latency of the guard's
//!    drop, p50 / p99 / max over 2,000 steps;
//! 2. a whole pipeline with X-Ray against the same pipeline without it: a competitor-selection
//!    pipeline over 5,000 catalog items as a search service returns them (one JSON document per
//!    item: parse it, score its title against the query, filter by price, rating and category,
//!    rank, pick one), run alternately with and without recording; the ratio of the medians, and
//!    what X-Ray adds per item. X-Ray records one accept or reject (typed details) per item.
//!
//! ```sh
//! cargo bench -p xray-runtime --bench step_close
//! ```

use serde_json::json;
use std::hint::black_box;
use std::time::{Duration, Instant};
use xray::{OfflineMode, StepType, XRay};

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

#[derive(serde::Deserialize)]
struct Item {
    id: u64,
    title: String,
    price: f64,
    rating: f64,
    category: String,
}

/// The search service's answer: one JSON document per item.
fn catalog() -> Vec<String> {
    let words = [
        "case", "stand", "holder", "cover", "iphone", "laptop", "charger", "cable", "slim",
        "leather",
    ];
    let categories = ["phone_cases", "laptop_stands", "chargers", "cables"];
    (0..5000u64)
        .map(|i| {
            let title: Vec<&str> = (0..6)
                .map(|k| words[((i * 7 + k * 13) % 10) as usize])
                .collect();
            json!({
                "id": i, "title": title.join(" "), "price": (i % 200) as f64,
                "rating": (i % 50) as f64 / 10.0, "category": categories[(i % 4) as usize],
                "seller": {"name": format!("seller {}", i % 97), "country": "US"},
            })
            .to_string()
        })
        .collect()
}

/// Relevance of a title to the query: shared words, with a little string work per word.
fn relevance(query: &[&str], title: &str) -> f64 {
    let hits = title
        .split(' ')
        .filter(|w| query.iter().any(|q| q.eq_ignore_ascii_case(w)))
        .count();
    hits as f64 / 6.0
}

/// Why an item was dropped, as a pipeline would compute it anyway.
enum Drop {
    Price(f64),
    Rating(f64),
    Category(String),
}

/// Typed details: serialised only when X-Ray keeps the event.
#[derive(serde::Serialize)]
struct PriceDetails {
    price: f64,
    threshold: f64,
}

/// The pipeline; compiled twice: with X-Ray's calls (`X`), and without them at all, as the
/// pipeline was before it was instrumented (no branches on whether to record).
fn pipeline<const X: bool>(documents: &[String], xray: Option<&XRay>) -> u64 {
    let query = ["iphone", "case", "cover"];
    let run = xray
        .filter(|_| X)
        .map(|x| x.run(json!({"product_title": "iPhone 15 Case"})));
    let step = run
        .as_ref()
        .map(|r| r.step("filter_candidates", StepType::Filter));
    let mut kept: Vec<(u64, f64)> = Vec::new();
    for document in documents {
        let Ok(item) = serde_json::from_str::<Item>(document) else {
            continue;
        };
        let score = relevance(&query, &item.title);
        let dropped = if item.price > 120.0 {
            Some(Drop::Price(item.price))
        } else if item.rating < 1.0 {
            Some(Drop::Rating(item.rating))
        } else if item.category != "phone_cases" {
            Some(Drop::Category(item.category.clone()))
        } else {
            None
        };
        match dropped {
            None => {
                if let Some(step) = &step {
                    step.accept(item.id);
                }
                kept.push((item.id, score));
            }
            Some(why) => {
                if let Some(step) = &step {
                    match why {
                        Drop::Price(price) => step.reject(
                            item.id,
                            "price_too_high",
                            PriceDetails {
                                price,
                                threshold: 120.0,
                            },
                        ),
                        Drop::Rating(rating) => {
                            step.reject(item.id, "low_rating", ("rating", rating))
                        }
                        Drop::Category(category) => {
                            step.reject(item.id, "category_mismatch", ("category", &category))
                        }
                    }
                }
            }
        }
    }
    drop(step);
    kept.sort_by(|a, b| b.1.total_cmp(&a.1));
    let best = kept.first().map_or(0, |k| k.0);
    if let Some(run) = &run {
        let select = run.step("select_best", StepType::Select);
        select.decide(
            best,
            kept.first().map_or(0.0, |k| k.1),
            ("candidates", kept.len()),
        );
    }
    best
}

fn main() {
    let spool = tempfile::tempdir().expect("temp dir");
    let xray = XRay::builder()
        .endpoint("http://127.0.0.1:9") // nothing listens: the server is down
        .offline_mode(OfflineMode::Buffer)
        .spool_dir(spool.path())
        .max_attempts(1)
        .http_timeout(Duration::from_millis(100))
        .client("bench");
    let run = xray.run(());
    let reasons = ["price_too_high", "low_rating", "category_mismatch"];

    let mut closes = Vec::with_capacity(2000);
    for _ in 0..2000 {
        let step = run.step("filter", StepType::Filter);
        for i in 0..5000u64 {
            step.reject(
                i,
                reasons[(i % 3) as usize],
                PriceDetails {
                    price: (100 + i) as f64,
                    threshold: 100.0,
                },
            );
        }
        let t = Instant::now();
        drop(black_box(step));
        closes.push(t.elapsed());
    }
    closes.sort();
    println!(
        "close a step of 5,000 rejections (server down, buffer mode): p50 {:.1} µs, p99 {:.1} µs, max {:.1} µs ({} steps)",
        percentile(&closes, 0.5).as_secs_f64() * 1e6,
        percentile(&closes, 0.99).as_secs_f64() * 1e6,
        closes[closes.len() - 1].as_secs_f64() * 1e6,
        closes.len()
    );

    let items = catalog();
    let (mut with, mut without) = (Vec::new(), Vec::new());
    for round in 0..400 {
        // Alternate which goes first, so drift and warm-up hit both alike.
        let order: [bool; 2] = if round % 2 == 0 {
            [true, false]
        } else {
            [false, true]
        };
        for instrumented in order {
            let t = Instant::now();
            if instrumented {
                black_box(pipeline::<true>(&items, Some(&xray)));
            } else {
                black_box(pipeline::<false>(&items, None));
            }
            if instrumented {
                with.push(t.elapsed())
            } else {
                without.push(t.elapsed())
            }
        }
    }
    with.sort();
    without.sort();
    let (w, wo) = (percentile(&with, 0.5), percentile(&without, 0.5));
    println!(
        "pipeline over 5,000 items: without X-Ray {:.1} µs, with X-Ray {:.1} µs (medians of 400): {:.3}×, {:.0} ns added per item",
        wo.as_secs_f64() * 1e6,
        w.as_secs_f64() * 1e6,
        w.as_secs_f64() / wo.as_secs_f64(),
        (w.as_secs_f64() - wo.as_secs_f64()) * 1e9 / 5000.0
    );
    drop(run);
    let _ = xray.shutdown(Duration::from_secs(10));
    println!("events: {:?}", xray.stats());
}
