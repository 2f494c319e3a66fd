//! Hostile input, by hand, on SQLite and PostgreSQL: deep nesting, huge strings, bytes that are
//! not UTF-8, negative counts, numbers JSON cannot carry, ids with SQL and path characters, and
//! 10,000 reasons in one step, and method-override headers. Each is refused with a 4xx that names what is wrong, or stored as
//! sent and read back the same; either way the server stays up and serves what it had before.

mod support;

use serde_json::{json, Value};
use std::io::{Read, Write};
use support::*;

on_both_backends!(
    deep_nesting_is_stored_as_sent_or_refused_by_name,
    huge_strings_are_stored_up_to_the_body_limit_and_413_beyond,
    bytes_that_are_not_utf8_are_400,
    negative_counts_and_numbers_json_cannot_carry_are_400_naming_the_field,
    ids_with_sql_and_path_characters_are_stored_and_found,
    ten_thousand_reasons_in_one_step_read_back_exactly,
    extreme_times_and_durations_read_back_as_rfc3339,
    a_step_id_of_another_run_is_409_and_changes_nothing,
    method_override_headers_are_ignored,
);

/// A server with one run stored before the hostile requests, to check it is still served after.
struct Guarded {
    api: Api,
    before: Value,
}

impl Guarded {
    fn start(server: TestServer) -> Guarded {
        let api = Api::on(server);
        api.save(&seed_run("stored_before", 0));
        let before = api.ok("/runs/stored_before");
        Guarded { api, before }
    }

    /// The server answers and still serves the run stored first, unchanged.
    fn still_serves(&self) {
        assert_eq!(self.api.ok("/health")["status"], "ok");
        assert_eq!(self.api.ok("/runs/stored_before"), self.before);
        // As text: a run stored by the test may be deeper than a JSON tree reader allows.
        let (status, runs) = self.get_text("/runs?limit=1000");
        assert_eq!(status, 200);
        assert!(runs.contains(r#""run_id":"stored_before""#));
    }

    /// GET, returning status and the body as text (for answers too deep for a JSON tree).
    fn get_text(&self, path: &str) -> (u16, String) {
        let mut res = agent().get(self.api.server.at(path)).call().expect("GET");
        let text = res.body_mut().read_to_string().expect("read body");
        (res.status().as_u16(), text)
    }
}

fn ids(runs: &Value) -> Vec<String> {
    runs["runs"]
        .as_array()
        .expect("runs")
        .iter()
        .map(|r| r["run_id"].as_str().expect("run_id").to_string())
        .collect()
}

/// Asserts a 4xx `status` whose message contains every needle.
fn refused(answer: (u16, Value), status: u16, needles: &[&str]) {
    let (got, body) = answer;
    assert_eq!(got, status, "{body}");
    assert!(body["code"].is_string(), "{body}");
    let message = body["error"].as_str().expect("an error message");
    for needle in needles {
        assert!(
            message.contains(needle),
            "`{message}` should mention `{needle}`"
        );
    }
}

/// Percent-encodes all but letters, digits, `-` and `_`, for a path segment or query value.
fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn deep_nesting_is_stored_as_sent_or_refused_by_name(backend: Backend) {
    let g = Guarded::start(TestServer::start(backend));
    let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    // Free-form JSON (input, output, details, attributes) is kept as its text: stored as sent.
    let body = format!(
        r#"{{"run_id":"deep","pipeline":"p","input":{deep},"steps":[{{"name":"f","step_type":"filter","attributes":{{"a":{deep}}},
            "rejections":{{"r":{{"count":1,"samples":[{{"item_id":"i","details":{deep}}}]}}}}}}]}}"#
    );
    let (status, answer) = g.api.post_raw("/runs", body.as_bytes());
    assert_eq!(status, 201, "{answer}");
    let (status, text) = g.get_text("/runs/deep");
    assert_eq!(status, 200);
    assert!(
        text.contains(&format!(r#""input":{deep},"#)),
        "input as sent"
    );
    assert!(
        text.contains(&format!(r#""details":{deep}}}"#)),
        "details as sent"
    );
    assert!(text.contains(&format!(r#""attributes":{{"a":{deep}}}"#)));
    let (status, text) = g.get_text("/runs/deep/items/i");
    assert_eq!(status, 200);
    assert!(text.contains(&deep));
    let (status, text) = g.get_text("/runs?pipeline=p");
    assert_eq!(status, 200);
    assert!(text.contains(&deep));

    // A decision's details are read as a tree: too deep is refused, naming where.
    let body = format!(
        r#"{{"pipeline":"p","steps":[{{"name":"s","step_type":"select","decision":{{"selected":"a","details":{deep}}}}}]}}"#
    );
    refused(
        g.api.post_raw("/runs", body.as_bytes()),
        400,
        &["steps[0].decision.details", "recursion limit"],
    );
    // Nesting where an event or a step belongs.
    refused(
        g.api
            .post_raw("/ingest", format!(r#"{{"events":{deep}}}"#).as_bytes()),
        400,
        &["events[0]"],
    );
    refused(
        g.api.post_raw(
            "/runs",
            format!(r#"{{"pipeline":"p","steps":{deep}}}"#).as_bytes(),
        ),
        400,
        &["steps[0]"],
    );
    g.still_serves();
}

fn huge_strings_are_stored_up_to_the_body_limit_and_413_beyond(backend: Backend) {
    const LIMIT: usize = 4 * 1024 * 1024;
    let g = Guarded::start(TestServer::start_with(backend, LIMIT));
    let shell = json!({"run_id": "huge", "pipeline": "p", "input": "", "error": "e"});
    let room = LIMIT - serde_json::to_vec(&shell).expect("json").len();
    // Input and error together fill the body to the byte.
    let mut run = shell.clone();
    run["input"] = json!("é".repeat(room / 4));
    run["error"] = json!("x".repeat(room - 2 * (room / 4) + 1));
    let body = serde_json::to_vec(&run).expect("json");
    assert_eq!(body.len(), LIMIT);
    let (status, answer) = g.api.post_raw("/runs", &body);
    assert_eq!(status, 201, "{answer}");
    let back = g.api.ok("/runs/huge");
    assert_eq!(back["input"], run["input"]);
    assert_eq!(back["error"], run["error"]);

    // One byte more is 413, declared or streamed, and nothing of it is stored.
    let mut over = run.clone();
    over["run_id"] = json!("hugeX");
    let body = serde_json::to_vec(&over).expect("json");
    assert_eq!(body.len(), LIMIT + 1);
    refused(
        g.api.post_raw("/runs", &body),
        413,
        &["limit", &LIMIT.to_string()],
    );
    let (status, text) = post_chunked(&g.api.server, "/runs", &body);
    assert_eq!(status, 413, "{text}");
    assert!(text.contains(&LIMIT.to_string()), "{text}");
    refused(g.api.get("/runs/hugeX"), 404, &["hugeX"]);

    // Names have a limit of their own, said in the message.
    let long = json!({"pipeline": "p".repeat(1_000_000)});
    refused(
        g.api.post("/runs", &long),
        400,
        &["pipeline", "1000000 bytes", "at most 512"],
    );
    g.still_serves();
}

/// POSTs `body` as JSON in chunked transfer encoding (no declared length) over a raw socket;
/// returns the status and the answer's text.
fn post_chunked(server: &TestServer, path: &str, body: &[u8]) -> (u16, String) {
    let addr = server.url.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(addr).expect("connect");
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
         Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).expect("write head");
    for chunk in body.chunks(64 * 1024) {
        // The server may answer 413 and close before the whole body is sent.
        if write!(stream, "{:x}\r\n", chunk.len()).is_err()
            || stream.write_all(chunk).is_err()
            || stream.write_all(b"\r\n").is_err()
        {
            break;
        }
    }
    let _ = stream.write_all(b"0\r\n\r\n");
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    let answer = String::from_utf8_lossy(&answer).into_owned();
    let status = answer
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no HTTP status in {answer:?}"));
    (status, answer)
}

fn bytes_that_are_not_utf8_are_400(backend: Backend) {
    let g = Guarded::start(TestServer::start(backend));
    refused(
        g.api.post_raw("/runs", b"{\"pipeline\": \"p\xff\xfe\"}"),
        400,
        &["invalid JSON body at pipeline", "unicode"],
    );
    refused(
        g.api.post_raw(
            "/runs",
            b"{\"pipeline\": \"p\", \"input\": {\"a\": \"\xc3\x28\"}}",
        ),
        400,
        &["invalid JSON body at input", "unicode"],
    );
    refused(
        g.api.post_raw("/ingest", b"\xef\xbb\xbf{\"events\": []}"),
        400,
        &["invalid JSON body"],
    );
    // An escaped lone surrogate is not text: refused where the server reads text...
    refused(
        g.api
            .post_raw("/runs", br#"{"pipeline": "p\ud800", "steps": []}"#),
        400,
        &["invalid JSON body at pipeline", "escape"],
    );
    // ...and kept as sent where it keeps JSON as text.
    let (status, answer) = g.api.post_raw(
        "/runs",
        br#"{"run_id": "sur", "pipeline": "p", "input": "\ud800x"}"#,
    );
    assert_eq!(status, 201, "{answer}");
    let (_, text) = g.get_text("/runs/sur");
    assert!(text.contains(r#""input":"\ud800x""#), "{text}");
    // Bytes that are not UTF-8 in the path or the query: a JSON answer, not a failure.
    // (Read as U+FFFD they would name another id: refused instead.)
    g.api
        .save(&json!({"run_id": "\u{fffd}\u{fffd}", "pipeline": "p"}));
    for path in ["/runs/%FF%FE", "/runs/%FF%FE/items/x", "/items/a%C3"] {
        refused(g.api.get(path), 400, &["not UTF-8"]);
    }
    assert_eq!(
        g.api.ok("/runs/%EF%BF%BD%EF%BF%BD")["run_id"],
        "\u{fffd}\u{fffd}"
    );
    let (status, text) = g.get_text("/runs?pipeline=%FF");
    assert_eq!(status, 200, "{text}");
    g.still_serves();
}

fn negative_counts_and_numbers_json_cannot_carry_are_400_naming_the_field(backend: Backend) {
    let g = Guarded::start(TestServer::start(backend));
    let step = |fields: &str| {
        format!(r#"{{"pipeline":"p","steps":[{{"name":"s","step_type":"select",{fields}}}]}}"#)
    };
    for (fields, needles) in [
        (r#""input_count":-1"#, &["steps[0].input_count", "-1"][..]),
        (
            r#""rejections":{"r":{"count":-5}}"#,
            &["steps[0].rejections.r.count", "-5"],
        ),
        (
            r#""acceptances":{"count":-1}"#,
            &["steps[0].acceptances.count"],
        ),
        (r#""position":-1"#, &["steps[0].position"]),
        (r#""input_count":1.5"#, &["steps[0].input_count"]),
        // A struct is an object, not an array of its fields (serde alone takes both).
        (
            r#""decision":[null,null]"#,
            &["steps[0].decision", "invalid type: sequence"],
        ),
        (
            r#""decision":{"score":NaN}"#,
            &["steps[0].decision.score", "invalid JSON"],
        ),
        (
            r#""decision":{"score":Infinity}"#,
            &["steps[0].decision.score", "invalid JSON"],
        ),
        (
            r#""decision":{"score":1e999}"#,
            &["steps[0].decision.score", "out of range", "finite"],
        ),
        (
            r#""decision":{"score":-1e999}"#,
            &["steps[0].decision.score", "out of range"],
        ),
        (
            r#""duration_ms":1e400"#,
            &["steps[0].duration_ms", "out of range"],
        ),
        (
            r#""duration_ms":-5"#,
            &["steps[0].duration_ms", "0 or more"],
        ),
        (
            r#""input_count":18446744073709551616"#,
            &["steps[0].input_count"],
        ),
        (
            r#""output_count":9223372036854775808"#,
            &["steps[0].output_count", "at most 9223372036854775807"],
        ),
    ] {
        refused(
            g.api.post_raw("/runs", step(fields).as_bytes()),
            400,
            needles,
        );
    }
    // A whole number written with a zero fraction is the number (JSON Schema's `integer`).
    let body = br#"{"run_id":"whole","pipeline":"p","steps":[{"name":"s","step_type":"filter",
        "position":0.0,"input_count":5.0,"acceptances":{"count":4119.0},"rejections":{"r":{"count":15932901975.0}}}]}"#;
    let (status, answer) = g.api.post_raw("/runs", body);
    assert_eq!(status, 201, "{answer}");
    let step = &g.api.ok("/runs/whole")["steps"][0];
    assert_eq!(
        (
            &step["input_count"],
            &step["acceptances"]["count"],
            &step["rejections"]["r"]["count"]
        ),
        (&json!(5), &json!(4119), &json!(15932901975_u64))
    );
    // Tiny numbers round to zero; free-form JSON keeps whatever number text was sent.
    let body = br#"{"run_id":"num","pipeline":"p","input":{"big":1e999,"neg":-0.0,"long":123456789012345678901234567890},
        "steps":[{"name":"s","step_type":"select","decision":{"selected":"a","score":1e-999}}]}"#;
    let (status, answer) = g.api.post_raw("/runs", body);
    assert_eq!(status, 201, "{answer}");
    let (_, text) = g.get_text("/runs/num");
    assert!(
        text.contains(r#""input":{"big":1e999,"neg":-0.0,"long":123456789012345678901234567890}"#),
        "{text}"
    );
    assert!(text.contains(r#""score":0.0"#), "{text}");
    let hits = g.api.ok("/steps?score_lt=0.5&pipeline=p");
    assert_eq!(hits["steps"][0]["decision"]["score"], 0.0);
    g.still_serves();
}

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

/// `X-HTTP-Method-Override` and its cousins change nothing: a GET stays a read (it deletes
/// nothing) and a POST stays a write; the route, and so the key scope, is the real method's.
fn method_override_headers_are_ignored(backend: Backend) {
    let g = Guarded::start(TestServer::start(backend));
    let (status, rule) = g.api.post(
        "/alerts",
        &json!({"name": "failures", "webhook_url": "http://127.0.0.1:9/hook",
                "condition": {"kind": "run_failed", "pipeline": "p"}}),
    );
    assert_eq!(status, 201, "{rule}");
    let rule_path = format!("/alerts/{}", rule["alert_id"].as_str().expect("alert_id"));
    let overrides = [
        "X-HTTP-Method-Override",
        "X-HTTP-Method",
        "X-Method-Override",
    ];
    for header in overrides {
        for path in [rule_path.as_str(), "/runs/stored_before"] {
            let mut res = agent()
                .get(g.api.server.at(path))
                .header(header, "DELETE")
                .call()
                .expect("GET");
            let body = res.body_mut().read_to_string().expect("read body");
            assert_eq!(
                res.status().as_u16(),
                200,
                "GET {path} with {header}: {body}"
            );
        }
        let run_id = format!("posted_with_{}", header.to_ascii_lowercase());
        let mut res = agent()
            .post(g.api.server.at("/runs"))
            .header(header, "GET")
            .send_json(seed_run(&run_id, 1))
            .expect("POST");
        let body = res.body_mut().read_to_string().expect("read body");
        assert_eq!(
            res.status().as_u16(),
            201,
            "POST /runs with {header}: {body}"
        );
        assert_eq!(
            g.api.ok(&format!("/runs/{run_id}"))["run_id"],
            run_id.as_str()
        );
    }
    assert_eq!(g.api.ok(&rule_path)["alert_id"], rule["alert_id"]);
    g.still_serves();
}
