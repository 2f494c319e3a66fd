//! What `#[xray::step]` costs over the same recording written by hand with the guards, and over
//! no recording at all: a filter step over 1,000 candidates that rejects or accepts each.
//!
//! ```sh
//! cargo bench -p xray-runtime --bench macros
//! ```
//!
//! The hand-written version records exactly what the attribute records: the arguments as input,
//! the return value as output, the counts, and the step's events.
//!
//! `replay_capture`: the same step over 10,000 candidates (~233 KB of input JSON), with and
//! without `replay` — cut at the 32 KiB preview, or recorded whole for a replay.

use criterion::{criterion_group, criterion_main, Criterion};
use serde::Serialize;
use std::hint::black_box;
use std::time::Duration;
use xray::{OfflineMode, StepType, XRay};

#[derive(Clone, Serialize, serde::Deserialize)]
struct Candidate {
    id: u64,
    price: u64,
}

#[derive(Serialize)]
struct Price {
    price: u64,
    threshold: u64,
}

fn plain(candidates: &[Candidate], max_price: u64) -> Vec<u64> {
    candidates
        .iter()
        .filter(|c| c.price <= max_price)
        .map(|c| c.id)
        .collect()
}

fn by_hand(candidates: &[Candidate], max_price: u64) -> Vec<u64> {
    #[derive(Serialize)]
    struct Input<'a> {
        candidates: &'a [Candidate],
        max_price: u64,
    }
    let step = xray::step("filter", StepType::Filter);
    step.set_input(Input {
        candidates,
        max_price,
    });
    step.set_input_count(candidates.len() as u64);
    let kept: Vec<u64> = {
        let _entered = step.enter();
        candidates
            .iter()
            .filter(|c| {
                if c.price > max_price {
                    step.reject(
                        c.id,
                        "price_too_high",
                        Price {
                            price: c.price,
                            threshold: max_price,
                        },
                    );
                    false
                } else {
                    step.accept(c.id);
                    true
                }
            })
            .map(|c| c.id)
            .collect()
    };
    step.set_output(&kept);
    step.set_output_count(kept.len() as u64);
    kept
}

#[xray::step(step_type = "filter")]
fn annotated(candidates: &[Candidate], max_price: u64) -> Vec<u64> {
    candidates
        .iter()
        .filter(|c| {
            if c.price > max_price {
                step.reject(
                    c.id,
                    "price_too_high",
                    Price {
                        price: c.price,
                        threshold: max_price,
                    },
                );
                false
            } else {
                step.accept(c.id);
                true
            }
        })
        .map(|c| c.id)
        .collect()
}

/// The body of the `replay_capture` pair.
fn filter_with(step: &xray::StepGuard, candidates: &[Candidate], max_price: u64) -> Vec<u64> {
    candidates
        .iter()
        .filter(|c| {
            let keep = c.price <= max_price;
            if keep {
                step.accept(c.id);
            } else {
                step.reject(c.id, "price_too_high", c.price);
            }
            keep
        })
        .map(|c| c.id)
        .collect()
}

#[xray::step(step_type = "filter")]
fn previewed(candidates: &[Candidate], max_price: u64) -> Vec<u64> {
    filter_with(&step, candidates, max_price)
}

#[xray::step(step_type = "filter", replay)]
fn replayable(candidates: &[Candidate], max_price: u64) -> Vec<u64> {
    filter_with(&step, candidates, max_price)
}

fn bench(c: &mut Criterion) {
    let xray = XRay::builder()
        .endpoint("http://127.0.0.1:9")
        .offline_mode(OfflineMode::Silent)
        .http_timeout(Duration::from_millis(50))
        .max_attempts(1)
        .client("bench");
    let run = xray.run(());
    let _entered = run.enter();
    let candidates: Vec<Candidate> = (0..1000)
        .map(|i| Candidate {
            id: i,
            price: (i * 37) % 200,
        })
        .collect();
    let mut group = c.benchmark_group("filter_1000_candidates");
    group.bench_function("no_instrumentation", |b| {
        b.iter(|| plain(black_box(&candidates), 100))
    });
    // Each recording variant starts with the shipper idle: the steps the one before left in
    // its queue would otherwise take the second core from the one measured after it.
    let _ = xray.flush(Duration::from_secs(60));
    group.bench_function("hand_written_guards", |b| {
        b.iter(|| by_hand(black_box(&candidates), 100))
    });
    let _ = xray.flush(Duration::from_secs(60));
    group.bench_function("xray_step_attribute", |b| {
        b.iter(|| annotated(black_box(&candidates), 100))
    });
    group.finish();

    let many: Vec<Candidate> = (0..10_000)
        .map(|i| Candidate {
            id: i,
            price: (i * 37) % 200,
        })
        .collect();
    let mut group = c.benchmark_group("replay_capture_10000_candidates");
    let _ = xray.flush(Duration::from_secs(60));
    group.bench_function("input_previewed", |b| {
        b.iter(|| previewed(black_box(&many), 100))
    });
    let _ = xray.flush(Duration::from_secs(60));
    group.bench_function("input_whole_for_replay", |b| {
        b.iter(|| replayable(black_box(&many), 100))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
