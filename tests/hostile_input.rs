//! Hostile input, by hand, on SQLite and PostgreSQL: deep nesting, huge strings, bytes that are
//! not UTF-8, negative counts, numbers JSON cannot carry, ids with SQL and path characters, and
//! 10,000 reasons in one step, and method-override headers. Each is refused with a 4xx that names what is wrong, or stored as
//! sent and read back the same; either way the server stays up and serves what it had before.

mod support;

use serde_json::{json, Value};
use std::io::{Read, Write};
use support::*;

/// Ids with SQL and path characters, 10,000 reasons, extreme times, a step id of another run.
#[path = "hostile_input/stored_as_sent.rs"]
mod stored_as_sent;

on_both_backends!(
    deep_nesting_is_stored_as_sent_or_refused_by_name,
    huge_strings_are_stored_up_to_the_body_limit_and_413_beyond,
    bytes_that_are_not_utf8_are_400,
    negative_counts_and_numbers_json_cannot_carry_are_400_naming_the_field,
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
