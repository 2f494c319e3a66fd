//! `xray pipelines` and `xray compare` against a real server holding two versions of a pipeline.

mod support;

use serde_json::json;
use support::{ok, xray};
use xray_server::testing::{Backend, TestServer};

/// A run of version `v` whose filter drops `price` of 100 items for price and 5 for rating.
fn run(id: &str, v: &str, minute: u32, price: u64, failed: bool) -> serde_json::Value {
    json!({"run_id": id, "pipeline": "competitor_selection", "version": v,
    "status": if failed { "failed" } else { "completed" },
    "started_at": format!("2026-11-20T10:{minute:02}:00Z"),
    "steps": [
        {"name": "filter_candidates", "step_type": "filter", "duration_ms": 10.0,
         "input_count": 100, "output_count": 95 - price,
         "rejections": {"price_too_high": {"count": price, "samples": []},
                        "low_rating": {"count": 5, "samples": []}}},
        {"name": "select_best", "step_type": "select", "duration_ms": 1.0,
         "decision": {"selected": format!("{id}-x"), "score": 0.5}}
    ]})
}

#[test]
fn pipelines_and_compare_read_as_tables() {
    let server = TestServer::start(Backend::Sqlite);
    let url = server.url.as_str();
    assert_eq!(ok(url, &["pipelines"]).trim(), "no pipelines");
    for (id, v, minute, price, failed) in [
        ("a1", "1.0", 1, 10, false),
        ("a2", "1.0", 2, 10, true),
        ("b1", "1.1", 3, 58, false),
        ("b2", "1.1", 4, 58, false),
    ] {
        let res = ureq::post(server.at("/runs"))
            .send_json(run(id, v, minute, price, failed))
            .expect("POST /runs");
        assert_eq!(res.status().as_u16(), 201);
    }

    let list = ok(url, &["pipelines"]);
    let lines: Vec<&str> = list.lines().collect();
    assert!(
        lines[0].starts_with("PIPELINE") && lines[0].contains("VERSIONS"),
        "{list}"
    );
    for needle in [
        "competitor_selection",
        "  4  ",
        "  1  ",
        "2026-11-20 10:01",
        "1.0, 1.1",
    ] {
        assert!(
            lines[1].contains(needle),
            "`{needle}` missing from:\n{list}"
        );
    }

    let cmp = ok(
        url,
        &["compare", "competitor_selection", "1.0", "version:1.1"],
    );
    let lines: Vec<&str> = cmp.lines().collect();
    assert_eq!(
        lines[0], "filter_candidates: price_too_high 10% → 58% of input",
        "{cmp}"
    );
    assert_eq!(
        lines[1],
        "competitor_selection: A = version:1.0 (2 runs), B = version:1.1 (2 runs)"
    );
    assert!(lines[3].starts_with("STEP"), "{cmp}");
    // The step that moved first, then its reasons, the one that moved first.
    assert!(
        lines[4].starts_with("filter_candidates") && lines[4].contains("15% → 63%"),
        "{cmp}"
    );
    assert!(
        lines[5].contains("price_too_high") && lines[5].contains("20 → 116"),
        "{cmp}"
    );
    assert!(lines[5].contains("10% → 58% of input"), "{cmp}");
    assert!(
        lines[6].contains("low_rating") && lines[6].contains("5% → 5% of input"),
        "{cmp}"
    );
    assert!(
        lines[7].starts_with("select_best") && lines[7].contains("0.50 → 0.50"),
        "{cmp}"
    );

    let json: serde_json::Value = serde_json::from_str(&ok(
        url,
        &["--json", "compare", "competitor_selection", "1.0", "1.1"],
    ))
    .expect("--json prints JSON");
    assert_eq!(json["steps"][0]["reasons"][0]["b_count"], 116);

    // A malformed selector is the server's 400, one line naming it.
    let out = xray(
        url,
        &["compare", "competitor_selection", "since:soon", "1.1"],
    );
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("400") && err.contains("`a: since`"), "{err}");
}
