//! `GET /runs/{id}/steps` (a page of a run's steps, without samples) and
//! `GET /runs/{id}/steps/{step_id}` (one step in full), on SQLite and on PostgreSQL; and the web
//! UI's files at `/` and `/ui/…`: content types, caching, and no clash with the API.

mod support;

use serde_json::{json, Value};
use support::*;

on_both_backends!(
    a_runs_steps_come_in_order_a_page_at_a_time_without_samples,
    one_step_reads_back_in_full_as_in_the_run,
    unknown_runs_and_steps_are_404_and_bad_queries_400,
);

fn a_runs_steps_come_in_order_a_page_at_a_time_without_samples(backend: Backend) {
    let api = Api::start(backend);
    api.ingest(run_events("paged", "p", 0, 7));
    api.save(&seed_run("run_abc123", 1));

    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let path = match &cursor {
            Some(c) => format!("/runs/paged/steps?limit=3&cursor={c}"),
            None => "/runs/paged/steps?limit=3".to_string(),
        };
        let page = api.ok(&path);
        pages += 1;
        assert_eq!(page["run"]["run_id"], "paged");
        assert_eq!(page["run"]["status"], "completed");
        assert_eq!(page["run"]["input"], json!({"q": "paged"}));
        assert!(
            page["run"].get("steps").is_none(),
            "the run comes without its steps"
        );
        for s in page["steps"].as_array().unwrap() {
            assert_eq!(s["run_id"], "paged");
            assert_eq!(
                s["rejections"],
                json!({"too_small": 6}),
                "exact counts by reason"
            );
            assert!(
                s.get("acceptances").is_none() && s.get("input").is_none(),
                "no samples: {s}"
            );
            seen.push(s["position"].as_u64().unwrap());
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(seen, [0, 1, 2, 3, 4, 5, 6]);

    let seed = api.ok("/runs/run_abc123/steps");
    let names: Vec<&str> = seed["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "generate_keywords",
            "search_products",
            "filter_candidates",
            "rank_by_relevance",
            "select_best"
        ]
    );
    let filter = &seed["steps"][2];
    assert_eq!(filter["step_id"], "run_abc123:2");
    assert_eq!(filter["input_count"], 127);
    assert_eq!(filter["output_count"], 23);
    assert_eq!(
        filter["rejections"],
        json!({"category_mismatch": 45, "price_too_high": 59})
    );
    assert_eq!(seed["steps"][4]["decision"]["selected"], "laptop_stand_42");
    assert_eq!(seed["next_cursor"], Value::Null);
}

fn one_step_reads_back_in_full_as_in_the_run(backend: Backend) {
    let api = Api::start(backend);
    api.save(&seed_run("run_abc123", 0));
    // An id with spaces, a colon and non-ASCII text, escaped in the path as a client would.
    let mut odd = seed_run("odd run", 1);
    odd["steps"][2]["step_id"] = json!("filter: prix élevé");
    api.save(&odd);

    let run = api.ok("/runs/run_abc123");
    for (i, want) in run["steps"].as_array().unwrap().iter().enumerate() {
        let got = api.ok(&format!("/runs/run_abc123/steps/run_abc123:{i}"));
        assert_eq!(&got, want, "step {i} reads back as in GET /runs/{{id}}");
    }
    let filter = api.ok("/runs/run_abc123/steps/run_abc123:2");
    assert_eq!(
        filter["rejections"]["price_too_high"]["samples"]
            .as_array()
            .unwrap()
            .len(),
        32
    );
    assert_eq!(
        filter["acceptances"]["samples"][0]["item_id"],
        "laptop_stand_42"
    );

    let odd_step = api.ok("/runs/odd%20run/steps/filter%3A%20prix%20%C3%A9lev%C3%A9");
    assert_eq!(odd_step["step_id"], "filter: prix élevé");
    assert_eq!(odd_step["rejected_count"], 104);
}

fn unknown_runs_and_steps_are_404_and_bad_queries_400(backend: Backend) {
    let api = Api::start(backend);
    api.save(&seed_run("run_abc123", 0));
    api.save(&seed_run("other", 1));

    let (status, body) = api.get("/runs/nope/steps");
    assert_eq!((status, body["code"].as_str()), (404, Some("not_found")));
    assert!(body["error"].as_str().unwrap().contains("`nope`"), "{body}");
    let (status, body) = api.get("/runs/run_abc123/steps/nope");
    assert_eq!(status, 404);
    assert_eq!(body["error"], "no step with id `nope` in run `run_abc123`");
    // A step of another run is not this run's.
    let (status, _) = api.get("/runs/run_abc123/steps/other:2");
    assert_eq!(status, 404);

    for (query, names) in [
        ("limit=0", "`limit`"),
        ("limit=1001", "`limit`"),
        ("cursor=zz", "`cursor`"),
        ("limt=5", "did you mean `limit`"),
    ] {
        let (status, body) = api.get(&format!("/runs/run_abc123/steps?{query}"));
        assert_eq!(status, 400, "{query}: {body}");
        assert!(
            body["error"].as_str().unwrap().contains(names),
            "{query}: {body}"
        );
    }
    let (status, body) = api.get("/runs/run_abc123/steps/run_abc123:0?verbose=1");
    assert_eq!(status, 400, "{body}");
}

/// A GET answered as it is: status, headers and body text.
fn raw(
    server: &TestServer,
    path: &str,
    etag: Option<&str>,
) -> (u16, ureq::http::HeaderMap, String) {
    let mut req = agent().get(server.at(path));
    if let Some(tag) = etag {
        req = req.header("if-none-match", tag);
    }
    let mut res = req.call().expect("GET");
    let status = res.status().as_u16();
    let headers = res.headers().clone();
    let body = res.body_mut().read_to_string().expect("body");
    (status, headers, body)
}

fn header<'a>(h: &'a ureq::http::HeaderMap, name: &str) -> &'a str {
    h.get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_else(|| panic!("no {name} header"))
}

#[test]
fn the_web_ui_is_served_at_the_root_with_its_files() {
    let server = TestServer::start(Backend::Sqlite);

    let (status, h, page) = raw(&server, "/", None);
    assert_eq!(status, 200);
    assert_eq!(header(&h, "content-type"), "text/html; charset=utf-8");
    assert_eq!(header(&h, "cache-control"), "no-cache");
    assert_eq!(header(&h, "x-content-type-options"), "nosniff");
    let csp = header(&h, "content-security-policy");
    assert!(
        csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"),
        "{csp}"
    );
    assert!(
        page.contains(r#"<script type="module" src="/ui/app.js"></script>"#),
        "{page}"
    );

    for (path, kind, needle) in [
        ("/ui/app.js", "text/javascript; charset=utf-8", "hashchange"),
        (
            "/ui/run.js",
            "text/javascript; charset=utf-8",
            "export async function runView",
        ),
        ("/ui/style.css", "text/css; charset=utf-8", ".timeline"),
        ("/ui/favicon.svg", "image/svg+xml", "<svg"),
    ] {
        let (status, h, body) = raw(&server, path, None);
        assert_eq!(status, 200, "{path}");
        assert_eq!(header(&h, "content-type"), kind, "{path}");
        assert_eq!(header(&h, "cache-control"), "no-cache", "{path}");
        assert!(body.contains(needle), "{path}");
        // Revalidation: the same ETag answers 304 with no body; another one gets the file.
        let etag = header(&h, "etag").to_string();
        let (status, h2, body) = raw(&server, path, Some(&etag));
        assert_eq!((status, body.as_str()), (304, ""), "{path}");
        assert_eq!(header(&h2, "etag"), etag);
        let (status, _, _) = raw(&server, path, Some("\"stale\""));
        assert_eq!(status, 200, "{path}");
    }

    let (status, _, body) = raw(&server, "/ui/nope.js", None);
    assert_eq!(status, 404);
    let body: Value = serde_json::from_str(&body).expect("a JSON error");
    assert!(body["error"].as_str().unwrap().contains("app.js"), "{body}");
    // The API keeps its paths and answers JSON.
    let (status, h, _) = raw(&server, "/runs", None);
    assert_eq!(status, 200);
    assert_eq!(header(&h, "content-type"), "application/json");
}
