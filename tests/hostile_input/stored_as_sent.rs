//! Hostile input stored as sent, on both backends: ids with SQL and path characters are found
//! again, 10,000 reasons in one step and extreme times read back exactly, and a step id that
//! belongs to another run is a 409 that changes nothing.

use super::support::*;
use super::{encode, ids, refused, Guarded};
use serde_json::{json, Value};

crate::on_both_backends!(
    ids_with_sql_and_path_characters_are_stored_and_found,
    ten_thousand_reasons_in_one_step_read_back_exactly,
    extreme_times_and_durations_read_back_as_rfc3339,
    a_step_id_of_another_run_is_409_and_changes_nothing,
);

fn ids_with_sql_and_path_characters_are_stored_and_found(backend: Backend) {
    let g = Guarded::start(TestServer::start(backend));
    let hostile = [
        "'; DROP TABLE runs;--",
        "\" OR 1=1 --",
        "../../etc/passwd",
        "..",
        ".",
        "a/b",
        "%2F",
        "%00",
        "run?x=1#frag",
        "a b+c&d=e",
        "\\",
        "ранъ 🚀 日本語 \u{202e}",
        "\u{feff}bom",
        "\t\n",
        &"x".repeat(512),
        &"é".repeat(256),
    ];
    for (n, id) in hostile.iter().enumerate() {
        let run = json!({
            "run_id": id, "pipeline": id, "started_at": at(n as u32, 0),
            "steps": [{"name": id, "step_type": "filter", "input_count": 2, "output_count": 1,
                       "rejections": {*id: {"count": 1, "samples": [{"item_id": id, "details": {"id": id}}]}},
                       "acceptances": {"count": 1, "samples": [{"item_id": format!("kept_{n}")}]}},
                      {"name": "pick", "step_type": "select", "decision": {"selected": id, "score": 0.25}}]
        });
        assert_eq!(g.api.save(&run)["run_ids"], json!([id]), "{id:?}");
        let back = g.api.ok(&format!("/runs/{}", encode(id)));
        assert_eq!(back["run_id"], *id);
        assert_eq!(back["pipeline"], *id);
        assert_eq!(back["steps"][0]["name"], *id);
        assert_eq!(
            back["steps"][0]["rejections"][id]["samples"][0]["item_id"],
            *id
        );
        assert_eq!(back["steps"][1]["decision"]["selected"], *id);
        let fate = g
            .api
            .ok(&format!("/runs/{}/items/{}", encode(id), encode(id)));
        assert_eq!(
            trail(&fate, "step_name"),
            [(*id, "rejected"), ("pick", "selected")],
            "{id:?}"
        );
        let history = g.api.ok(&format!("/items/{}", encode(id)));
        assert_eq!(history["events"].as_array().expect("events").len(), 2);
        let runs = g.api.ok(&format!("/runs?pipeline={}", encode(id)));
        assert_eq!(ids(&runs), [id.to_string()], "{id:?}");
        let steps = g.api.ok(&format!(
            "/steps?name={}&pipeline={}",
            encode(id),
            encode(id)
        ));
        assert_eq!(steps["steps"][0]["rejections"][id], 1, "{id:?}");
    }
    // Every table is still there and holds every run.
    let all = g.api.ok("/runs?limit=1000");
    assert_eq!(ids(&all).len(), hostile.len() + 1);
    // Too long, or not text a database can hold: refused, naming the field.
    refused(
        g.api.post(
            "/runs",
            &json!({"run_id": "x".repeat(513), "pipeline": "p"}),
        ),
        400,
        &["run_id", "513 bytes", "at most 512"],
    );
    refused(
        g.api.post(
            "/runs",
            &json!({"run_id": "y".repeat(100_000), "pipeline": "p"}),
        ),
        400,
        &["run_id", "100000 bytes"],
    );
    refused(
        g.api
            .post("/runs", &json!({"run_id": "a\u{0}b", "pipeline": "p"})),
        400,
        &["run_id", "NUL"],
    );
    refused(g.api.get("/runs/a%00b"), 400, &["run id", "NUL"]);
    refused(
        g.api.get(&format!("/runs/{}", "z".repeat(5000))),
        404,
        &["zzz"],
    );
    g.still_serves();
}

fn ten_thousand_reasons_in_one_step_read_back_exactly(backend: Backend) {
    let g = Guarded::start(TestServer::start(backend));
    let rejections: serde_json::Map<String, Value> = (0..10_000)
        .map(|i| {
            (
                format!("reason_{i:05}"),
                json!({"count": i + 1, "samples": [{"item_id": format!("item_{i}"), "details": {"i": i}}]}),
            )
        })
        .collect();
    let total: u64 = (1..=10_000).sum();
    let run = json!({"run_id": "many", "pipeline": "p", "steps": [
        {"name": "f", "step_type": "filter", "capture": "full", "rejections": rejections,
         "acceptances": {"count": 3}}]});
    g.api.save(&run);
    let back = g.api.ok("/runs/many");
    let step = &back["steps"][0];
    assert_eq!(step["rejected_count"], total);
    let got = step["rejections"].as_object().expect("rejections");
    assert_eq!(got.len(), 10_000);
    for (reason, summary) in &rejections {
        assert_eq!(got[reason], *summary, "{reason}");
    }
    let hit = g.api.ok("/steps?name=f");
    assert_eq!(
        hit["steps"][0]["rejections"]
            .as_object()
            .expect("counts")
            .len(),
        10_000
    );
    assert_eq!(hit["steps"][0]["rejections"]["reason_09999"], 10_000);
    let fate = g.api.ok("/runs/many/items/item_9999");
    assert_eq!(fate["events"][0]["reason"], "reason_09999");
    // The same through /ingest, re-sent: stored once.
    let mut step = run["steps"][0].clone();
    step["step_id"] = json!("many2-s0");
    step["position"] = json!(0);
    step["started_at"] = json!(at(1, 0));
    let batch = vec![json!({"step_finished": {"run_id": "many2", "pipeline": "p", "step": step}})];
    g.api.ingest(batch.clone());
    g.api.ingest(batch);
    let back = g.api.ok("/runs/many2");
    assert_eq!(back["steps"].as_array().expect("steps").len(), 1);
    assert_eq!(back["steps"][0]["rejected_count"], total);
    g.still_serves();
}

fn extreme_times_and_durations_read_back_as_rfc3339(backend: Backend) {
    let g = Guarded::start(TestServer::start(backend));
    g.api.save(&json!({
        "run_id": "late", "pipeline": "p", "started_at": "9999-12-31T23:59:59.999999Z",
        "steps": [{"name": "a", "step_type": "rank", "duration_ms": 1e300},
                  {"name": "b", "step_type": "rank"}]}));
    let run = g.api.ok("/runs/late");
    assert_eq!(run["steps"][0]["duration_ms"], 1e300);
    // The step after an endless one starts with it (not wrapped around to year -262143).
    assert_eq!(run["steps"][1]["started_at"], "9999-12-31T23:59:59.999999Z");
    g.api.save(&json!({
        "run_id": "early", "pipeline": "p", "started_at": "0000-01-01T00:00:00Z",
        "ended_at": "9999-12-31T23:59:59Z",
        "steps": [{"name": "a", "step_type": "rank", "started_at": "0000-01-01T00:00:00-23:59",
                   "ended_at": "9999-12-31T23:59:59+23:59"}]}));
    let run = g.api.ok("/runs/early");
    assert_eq!(run["started_at"], "0000-01-01T00:00:00Z");
    assert_eq!(run["steps"][0]["started_at"], "0000-01-01T23:59:00Z");
    assert_eq!(run["duration_ms"], 315_569_519_999_000.0);
    // Every time the server answers with is RFC 3339 with a four-digit year.
    for page in [
        "/runs?since=0000-01-01&until=9999-12-31T23:59:59Z",
        "/steps?limit=1000",
    ] {
        let (_, text) = g.get_text(page);
        let list: Value = serde_json::from_str(&text).expect("JSON");
        for item in list["runs"]
            .as_array()
            .or(list["steps"].as_array())
            .expect("a list")
        {
            let t = item["started_at"].as_str().expect("started_at");
            assert!(
                chrono_like_rfc3339(t),
                "{page}: `{t}` is not an RFC 3339 time"
            );
        }
    }
    refused(
        g.api.post(
            "/runs",
            &json!({"pipeline": "p", "started_at": "+10000-01-01T00:00:00Z"}),
        ),
        400,
        &["started_at", "RFC 3339"],
    );
    g.still_serves();
}

/// `YYYY-MM-DDTHH:MM:SS[.f]Z`: a four-digit year, no sign.
fn chrono_like_rfc3339(t: &str) -> bool {
    let b = t.as_bytes();
    b.len() >= 20
        && b[..4].iter().all(u8::is_ascii_digit)
        && b[4] == b'-'
        && b[10] == b'T'
        && t.ends_with('Z')
}

fn a_step_id_of_another_run_is_409_and_changes_nothing(backend: Backend) {
    let g = Guarded::start(TestServer::start(backend));
    let run = |run_id: &str, reasons: Value| {
        json!({"run_id": run_id, "pipeline": "p", "started_at": at(0, 0), "steps": [
            {"step_id": "shared", "name": "f", "step_type": "filter", "rejections": reasons}]})
    };
    g.api.save(&run(
        "first",
        json!({"r": {"count": 1, "samples": [{"item_id": "a1"}]}}),
    ));
    let first = g.api.ok("/runs/first");
    // Its counts and samples used to be added to the other run's step, and its own step lost.
    let second = run(
        "second",
        json!({"r": {"count": 3, "samples": [{"item_id": "b1"}, {"item_id": "b2"}]},
               "other": {"count": 1}}),
    );
    refused(
        g.api.post("/runs", &second),
        409,
        &["shared", "second", "first", "unique"],
    );
    let step = |run_id: &str| {
        json!({"step_finished": {"run_id": run_id, "pipeline": "p", "step": {
            "step_id": "shared", "position": 0, "name": "f", "step_type": "filter",
            "started_at": at(0, 0), "rejections": {"other": {"count": 2}}}}})
    };
    refused(
        g.api.post("/ingest", &json!({"events": [step("third")]})),
        409,
        &["shared", "third", "first"],
    );
    refused(
        g.api.post(
            "/ingest",
            &json!({"events": [step("fourth"), step("fifth")]}),
        ),
        409,
        &["shared"],
    );
    // Many such steps beside a good event cost no more than a few rounds: the batch is
    // refused whole.
    let mut many: Vec<Value> = (0..20).map(|i| step(&format!("thief{i}"))).collect();
    many.push(json!({"run_started": {"run_id": "sixth", "pipeline": "p", "started_at": at(0, 0)}}));
    refused(
        g.api.post("/ingest", &json!({ "events": many })),
        409,
        &["shared"],
    );
    assert_eq!(g.api.ok("/runs/first"), first);
    for other in [
        "second", "third", "fourth", "fifth", "sixth", "thief0", "thief19",
    ] {
        refused(g.api.get(&format!("/runs/{other}")), 404, &[other]);
    }
    // The same run re-sending its own step is still fine (stored once).
    g.api.save(&run(
        "first",
        json!({"r": {"count": 1, "samples": [{"item_id": "a1"}]}}),
    ));
    assert_eq!(g.api.ok("/runs/first"), first);
    g.still_serves();
}
