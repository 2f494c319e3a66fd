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
//! The pipeline spends ~270 ns per item, so where the machine code lands moves its time by a
//! few percent (the same source measured ±3% between builds that differ elsewhere). Each
//! variant is therefore compiled as [`COPIES`] copies at different addresses, each recording
//! through X-Ray code of its own (its details are types of its own, so the generic recording
//! functions are compiled once per copy), all run in turn, and the ratio is taken over all of
//! them: the spread between copies is printed beside it.
//!
//! ```sh
//! cargo bench -p xray-runtime --bench step_close
//! XRAY_CAPTURE=minimal cargo bench -p xray-runtime --bench step_close   # counts only
//! scripts/bench-instructions   # instructions per item under callgrind (no timing noise)
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
enum Drop<'a> {
    Price(f64),
    Rating(f64),
    Category(&'a str),
}

/// Typed details: serialised only when X-Ray keeps the event. `C` names the pipeline copy (see
/// [`COPIES`]) that records them, so that each copy calls recording code of its own.
#[derive(serde::Serialize)]
struct PriceDetails<const C: usize = 0> {
    price: f64,
    threshold: f64,
}

/// Details given as a tuple, serialised as the tuple; `C` as for [`PriceDetails`].
#[derive(serde::Serialize)]
#[serde(transparent)]
struct Copy<T, const C: usize>(T);

/// Copies of each variant of the pipeline, at different addresses.
const COPIES: usize = 4;

/// Runs of the pipeline with `XRAY_PIPELINE_ONLY` set.
const INSTRUCTION_RUNS: usize = 20;

/// One variant of the pipeline: with X-Ray's calls (`X`), or without them at all, as the
/// pipeline was before it was instrumented (no branches on whether to record); `COPY` makes
/// each copy a function of its own (identical functions would be merged into one).
fn pipeline<const X: bool, const COPY: usize>(documents: &[String], xray: Option<&XRay>) -> u64 {
    if black_box(COPY) == usize::MAX {
        return 0;
    }
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
            Some(Drop::Category(&item.category))
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
                            PriceDetails::<COPY> {
                                price,
                                threshold: 120.0,
                            },
                        ),
                        Drop::Rating(rating) => {
                            step.reject(item.id, "low_rating", Copy::<_, COPY>(("rating", rating)))
                        }
                        Drop::Category(category) => step.reject(
                            item.id,
                            "category_mismatch",
                            Copy::<_, COPY>(("category", category)),
                        ),
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
        // `sample` (the default) unless `XRAY_CAPTURE` says otherwise: `XRAY_CAPTURE=minimal`
        // shows what counting alone costs, and so what keeping samples adds.
        .capture(
            std::env::var("XRAY_CAPTURE")
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(xray::Capture::Sample),
        )
        .http_timeout(Duration::from_millis(100))
        .client("bench");
    if let Ok(only) = std::env::var("XRAY_PIPELINE_ONLY") {
        // Only the pipeline's first copy, with X-Ray or without, a few times and nothing else:
        // what `scripts/bench-instructions` counts the instructions of under callgrind.
        let items = catalog();
        for _ in 0..INSTRUCTION_RUNS {
            black_box(match only.as_str() {
                "with" => pipeline::<true, 0>(&items, Some(&xray)),
                _ => pipeline::<false, 0>(&items, None),
            });
        }
        let _ = xray.shutdown(Duration::from_secs(10));
        return;
    }
    let run = xray.run(());
    let reasons = ["price_too_high", "low_rating", "category_mismatch"];

    let mut closes = Vec::with_capacity(2000);
    for _ in 0..2000 {
        let step = run.step("filter", StepType::Filter);
        for i in 0..5000u64 {
            step.reject(
                i,
                reasons[(i % 3) as usize],
                PriceDetails::<0> {
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
    type Variant = fn(&[String], Option<&XRay>) -> u64;
    let variants: [(bool, Variant); 2 * COPIES] = [
        (false, pipeline::<false, 0>),
        (true, pipeline::<true, 0>),
        (false, pipeline::<false, 1>),
        (true, pipeline::<true, 1>),
        (false, pipeline::<false, 2>),
        (true, pipeline::<true, 2>),
        (false, pipeline::<false, 3>),
        (true, pipeline::<true, 3>),
    ];
    let rounds = 500;
    let mut times = vec![Vec::with_capacity(rounds); variants.len()];
    for round in 0..rounds {
        // Rotate which goes first, so drift and warm-up hit all alike.
        for k in 0..variants.len() {
            let v = (k + round) % variants.len();
            let (instrumented, run_pipeline) = variants[v];
            let t = Instant::now();
            black_box(run_pipeline(&items, instrumented.then_some(&xray)));
            times[v].push(t.elapsed());
        }
    }
    let median = |mut all: Vec<Duration>| {
        all.sort();
        percentile(&all, 0.5).as_secs_f64()
    };
    let pooled = |instrumented: bool| {
        let all = variants
            .iter()
            .zip(&times)
            .filter(|((x, _), _)| *x == instrumented)
            .flat_map(|(_, t)| t.iter().copied())
            .collect();
        median(all)
    };
    let copies = |instrumented: bool| {
        variants
            .iter()
            .zip(&times)
            .filter(|((x, _), _)| *x == instrumented)
            .map(|(_, t)| format!("{:.0}", median(t.clone()) * 1e6))
            .collect::<Vec<_>>()
            .join(" / ")
    };
    let (w, wo) = (pooled(true), pooled(false));
    println!(
        "pipeline over 5,000 items: without X-Ray {:.1} µs, with X-Ray {:.1} µs (medians of {} runs over {COPIES} copies each): {:.3}×, {:.1} ns added per item",
        wo * 1e6,
        w * 1e6,
        rounds * COPIES,
        w / wo,
        (w - wo) * 1e9 / 5000.0
    );
    println!(
        "  medians per copy, µs: without {}; with {}",
        copies(false),
        copies(true)
    );
    drop(run);
    let _ = xray.shutdown(Duration::from_secs(10));
    println!("events: {:?}", xray.stats());
}
