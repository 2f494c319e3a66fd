//! The cost of recording one event, beside what a Rust user would otherwise do: one
//! `tracing::info!` event with the same fields through a `tracing-subscriber` JSON layer writing
//! to a `tracing-appender` non-blocking file writer.
//!
//! ```sh
//! cargo bench -p xray-runtime --bench record
//! ```
//!
//! Each iteration records 5,000 events (a step's worth, over 3 reasons); criterion reports the
//! time per iteration and the throughput: divide by 5,000 for the cost of one call.

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use serde_json::json;
use std::hint::black_box;
use std::time::Duration;
use xray::{Capture, OfflineMode, StepType, XRay};

const EVENTS: u64 = 5_000;
const REASONS: [&str; 3] = ["price_too_high", "low_rating", "category_mismatch"];

fn client() -> XRay {
    // Nothing listens there, and silent mode drops what cannot be sent: no network, no disk.
    XRay::builder()
        .endpoint("http://127.0.0.1:9")
        .offline_mode(OfflineMode::Silent)
        .http_timeout(Duration::from_millis(50))
        .max_attempts(1)
        .client("bench")
}

/// The same fields as JSON would give, typed: serialised only if the event is kept.
#[derive(serde::Serialize)]
struct PriceDetails {
    price: u64,
    threshold: u64,
}

fn record(c: &mut Criterion) {
    let xray = client();
    let run = xray.run(());
    let mut group = c.benchmark_group("5000_events");
    group.throughput(Throughput::Elements(EVENTS));

    for (label, capture) in [
        ("xray_reject_sample", Capture::Sample),
        ("xray_reject_minimal", Capture::Minimal),
        ("xray_reject_full", Capture::Full),
    ] {
        // Each variant starts with the shipper idle (see the macros bench).
        let _ = xray.flush(Duration::from_secs(60));
        group.bench_function(label, |b| {
            b.iter_batched(
                || run.step_with_capture("filter", StepType::Filter, capture),
                |step| {
                    for i in 0..EVENTS {
                        let details = PriceDetails {
                            price: 100 + i,
                            threshold: 100,
                        };
                        step.reject(black_box(i), REASONS[(i % 3) as usize], details);
                    }
                    step // closed outside the timing
                },
                BatchSize::PerIteration,
            )
        });
    }

    // Through a handle (what other threads and `current_step()` use): the step's lock, taken
    // per event.
    let _ = xray.flush(Duration::from_secs(60));
    group.bench_function("xray_reject_sample_handle", |b| {
        b.iter_batched(
            || run.step("filter", StepType::Filter),
            |step| {
                let handle = step.handle();
                for i in 0..EVENTS {
                    let details = PriceDetails {
                        price: 100 + i,
                        threshold: 100,
                    };
                    handle.reject(black_box(i), REASONS[(i % 3) as usize], details);
                }
                step
            },
            BatchSize::PerIteration,
        )
    });

    // Details built as a `serde_json::Value` at the call site: the caller pays for building it
    // on every call, kept or not.
    let _ = xray.flush(Duration::from_secs(60));
    group.bench_function("xray_reject_sample_json_value", |b| {
        b.iter_batched(
            || run.step("filter", StepType::Filter),
            |step| {
                for i in 0..EVENTS {
                    let price = 100 + i;
                    step.reject(
                        black_box(i),
                        REASONS[(i % 3) as usize],
                        json!({"price": price, "threshold": 100}),
                    );
                }
                step
            },
            BatchSize::PerIteration,
        )
    });

    let _ = xray.flush(Duration::from_secs(60));
    group.bench_function("xray_accept_sample", |b| {
        b.iter_batched(
            || run.step("filter", StepType::Filter),
            |step| {
                for i in 0..EVENTS {
                    step.accept(black_box(i));
                }
                step
            },
            BatchSize::PerIteration,
        )
    });

    let _ = xray.flush(Duration::from_secs(60));
    group.bench_function("xray_rank_sample", |b| {
        b.iter_batched(
            || run.step("rank", StepType::Rank),
            |step| {
                for i in 0..EVENTS {
                    step.rank(black_box(i), i + 1, 1.0 - i as f64 / EVENTS as f64);
                }
                step
            },
            BatchSize::PerIteration,
        )
    });

    let dir = tempfile::tempdir().expect("temp dir");
    let appender = tracing_appender::rolling::never(dir.path(), "events.json");
    let (writer, _flush_guard) = tracing_appender::non_blocking(appender);
    let subscriber = tracing_subscriber::fmt()
        .json()
        .with_writer(writer)
        .finish();
    tracing::subscriber::with_default(subscriber, || {
        group.bench_function("tracing_info_json_nonblocking", |b| {
            b.iter(|| {
                for i in 0..EVENTS {
                    let price = 100 + i;
                    tracing::info!(
                        item_id = black_box(i),
                        reason = REASONS[(i % 3) as usize],
                        price,
                        threshold = 100,
                        "rejected"
                    );
                }
            })
        });
    });
    group.finish();
}

criterion_group!(benches, record);
criterion_main!(benches);
