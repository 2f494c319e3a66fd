"""The Python SDK's costs, against the targets of issue 24 (figures in docs/BENCHMARKS.md).

    pip install ./xray-python opentelemetry-sdk    # a release build, as users get it
    python xray-python/bench/bench.py              # --quick: tiny sizes (what the suite runs)

1. `step.reject(id, "price_too_high", details)` with a prebuilt dict, per call: steps of 5,000
   calls over 3 reasons (so the reservoirs keep what they keep in a real filter step), the
   median over many steps; beside it, in the same run, OpenTelemetry's
   `span.add_event(name, attributes)` on a recording SDK span, and the empty loop.
2. A Python pipeline over 5,000 catalog items (parse each item's JSON, score its title, filter
   by price, rating and category, rank, pick one), with X-Ray recording an accept or a reject
   (with details) per item, against the same pipeline without X-Ray: run alternately, the ratio
   of the medians.

The server is down in both (buffer mode, spooling to a temporary folder), as in the Rust
runtime's `step_close` bench.

Times are CPU time, so that other processes on a shared machine do not count: the calling
thread's for the per-call costs, the whole process's (X-Ray's shipper thread included) for the
pipeline, whose wall-clock ratio is printed beside it.
"""

from __future__ import annotations

import json
import random
import statistics
import sys
import tempfile
import time

from xray import XRay

QUICK = "--quick" in sys.argv
CALLS = 500 if QUICK else 5_000
STEPS = 3 if QUICK else 200
ROUNDS = 3 if QUICK else 41
REASONS = ("price_too_high", "low_rating", "category_mismatch")


def client(spool: str) -> XRay:
    return XRay(
        "bench",
        endpoint="http://127.0.0.1:9",  # nothing listens: the server is down
        offline_mode="buffer",
        spool_dir=spool,
        max_attempts=1,
        http_timeout_ms=100,
    )


def per_call(samples: list) -> float:
    """Median nanoseconds per call over the steps measured."""
    return statistics.median(samples) / CALLS


def bench_reject(xray: XRay) -> dict:
    ids = [f"case_{i:04d}" for i in range(CALLS)]
    reasons = [REASONS[i % 3] for i in range(CALLS)]
    details = {"price": 150.0, "threshold": 100}
    pairs = list(zip(ids, reasons))
    empty, reject, accept, minimal = [], [], [], []
    perf = time.thread_time_ns
    with xray.run(input={"bench": "reject"}) as run:
        for _ in range(STEPS):
            t0 = perf()
            for item_id, reason in pairs:
                pass
            empty.append(perf() - t0)
            with run.step("filter", step_type="filter") as step:
                t0 = perf()
                for item_id, reason in pairs:
                    step.reject(item_id, reason, details)
                reject.append(perf() - t0)
            with run.step("accept", step_type="filter") as step:
                t0 = perf()
                for item_id, reason in pairs:
                    step.accept(item_id)
                accept.append(perf() - t0)
            with run.step("minimal", step_type="filter", capture="minimal") as step:
                t0 = perf()
                for item_id, reason in pairs:
                    step.reject(item_id, reason, details)
                minimal.append(perf() - t0)
    return {
        "empty loop": per_call(empty),
        "step.reject, sample, prebuilt dict": per_call(reject),
        "step.accept, sample": per_call(accept),
        "step.reject, minimal": per_call(minimal),
    }


def bench_otel() -> float | None:
    try:
        from opentelemetry.sdk.trace import TracerProvider
    except ImportError:
        return None
    tracer = TracerProvider().get_tracer("bench")
    ids = [f"case_{i:04d}" for i in range(CALLS)]
    reasons = [REASONS[i % 3] for i in range(CALLS)]
    pairs = list(zip(ids, reasons))
    attributes = {"price": 150.0, "threshold": 100}
    samples = []
    perf = time.thread_time_ns
    for _ in range(STEPS):
        with tracer.start_as_current_span("filter") as span:
            t0 = perf()
            for item_id, reason in pairs:
                span.add_event(reason, attributes)
            samples.append(perf() - t0)
    return per_call(samples)


def catalog() -> list:
    rng = random.Random(7)
    words = ["iphone", "case", "cover", "stand", "laptop", "charger", "usb", "holder", "15", "pro"]
    cats = ["phone_cases", "phone_cases", "laptop_stands", "chargers"]
    return [
        json.dumps(
            {
                "id": i,
                "title": " ".join(rng.choice(words) for _ in range(6)),
                "price": round(rng.uniform(5, 200), 2),
                "rating": round(rng.uniform(0, 5), 1),
                "category": rng.choice(cats),
            }
        )
        for i in range(5_000)
    ]


QUERY = ("iphone", "case", "cover")


def relevance(title: str) -> float:
    return sum(1 for w in title.split(" ") if w.lower() in QUERY) / 6.0


def pipeline_plain(documents: list) -> int:
    kept = []
    for document in documents:
        item = json.loads(document)
        score = relevance(item["title"])
        if item["price"] > 120.0:
            continue
        if item["rating"] < 1.0:
            continue
        if item["category"] != "phone_cases":
            continue
        kept.append((item["id"], score))
    kept.sort(key=lambda k: k[1], reverse=True)
    return kept[0][0] if kept else 0


def pipeline_xray(documents: list, xray: XRay) -> int:
    kept = []
    with xray.run(input={"product_title": "iPhone 15 Case"}) as run:
        with run.step("filter_candidates", step_type="filter") as step:
            for document in documents:
                item = json.loads(document)
                score = relevance(item["title"])
                if item["price"] > 120.0:
                    step.reject(item["id"], "price_too_high", {"price": item["price"], "threshold": 120.0})
                    continue
                if item["rating"] < 1.0:
                    step.reject(item["id"], "low_rating", {"rating": item["rating"]})
                    continue
                if item["category"] != "phone_cases":
                    step.reject(item["id"], "category_mismatch", {"category": item["category"]})
                    continue
                step.accept(item["id"])
                kept.append((item["id"], score))
        kept.sort(key=lambda k: k[1], reverse=True)
        best = kept[0][0] if kept else 0
        with run.step("select_best", step_type="select") as select:
            select.decide(best, kept[0][1] if kept else 0.0, {"candidates": len(kept)})
        run.set_output({"selected": best})
    return best


def bench_pipeline(xray: XRay) -> tuple:
    documents = catalog()
    plain, with_xray, plain_wall, with_xray_wall = [], [], [], []
    cpu, wall = time.process_time_ns, time.perf_counter_ns
    for _ in range(ROUNDS):
        t0, w0 = cpu(), wall()
        a = pipeline_plain(documents)
        plain.append(cpu() - t0)
        plain_wall.append(wall() - w0)
        t0, w0 = cpu(), wall()
        b = pipeline_xray(documents, xray)
        with_xray.append(cpu() - t0)
        with_xray_wall.append(wall() - w0)
        assert a == b
    p, x = statistics.median(plain), statistics.median(with_xray)
    wall_ratio = statistics.median(with_xray_wall) / statistics.median(plain_wall)
    return p / 1e3, x / 1e3, x / p, (x - p) / len(documents), wall_ratio


def main() -> None:
    with tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as spool:
        xray = client(spool)
        costs = bench_reject(xray)
        otel = bench_otel()
        for name, ns in costs.items():
            print(f"{name:40s} {ns:8.1f} ns per call")
        reject = costs["step.reject, sample, prebuilt dict"]
        print(f"{'  net of the empty loop':40s} {reject - costs['empty loop']:8.1f} ns per call")
        if otel is None:
            print("OpenTelemetry: not installed (pip install opentelemetry-sdk)")
        else:
            print(f"{'OpenTelemetry span.add_event':40s} {otel:8.1f} ns per call")
            print(f"reject / add_event: 1/{otel / reject:.1f}")
        plain_us, xray_us, ratio, added, wall_ratio = bench_pipeline(xray)
        print(
            f"pipeline over 5,000 items: without X-Ray {plain_us:.0f} µs, with X-Ray {xray_us:.0f} µs "
            f"(CPU, medians of {ROUNDS} runs): {ratio:.3f}x, {added:.0f} ns added per item "
            f"(wall clock: {wall_ratio:.3f}x)"
        )
        xray.flush(10.0)  # everything spooled before the spool folder goes


if __name__ == "__main__":
    main()
