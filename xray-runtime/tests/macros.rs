//! `#[xray::run]` and `#[xray::step]` on real functions, recorded through the default client to a
//! real server: nesting, order, inputs and outputs, inferred counts, errors, panics, async.

mod support;

use serde::Serialize;
use serde_json::{json, Value};
use std::sync::OnceLock;
use std::time::Duration;
use support::*;

const WAIT: Duration = Duration::from_secs(10);

/// One server for this test binary, and the default client pointed at it.
fn server() -> &'static str {
    static URL: OnceLock<String> = OnceLock::new();
    URL.get_or_init(|| {
        let server = TestServer::start(Backend::Sqlite);
        let url = server.url.clone();
        std::mem::forget(server); // lives as long as the test process
        let spool = std::env::temp_dir().join(format!("xray-macro-tests-{}", std::process::id()));
        let config = xray::Config::builder()
            .endpoint(&url)
            .offline_mode(xray::OfflineMode::Fail)
            .spool_dir(spool)
            .batch_interval(Duration::from_millis(5))
            .build();
        std::mem::forget(xray::init(config).expect("first init"));
        url
    })
}

/// The only run of `pipeline`, with its steps, after delivering everything.
fn only_run(pipeline: &str) -> Value {
    let url = server();
    xray::flush(WAIT).expect("delivered");
    let runs = runs(url, pipeline);
    assert_eq!(runs.len(), 1, "{runs:?}");
    run(url, runs[0]["run_id"].as_str().unwrap())
}

fn step_names(run: &Value) -> Vec<String> {
    run["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap().to_string())
        .collect()
}

#[derive(Debug, Clone, Serialize)]
struct Candidate {
    id: String,
    title: String,
    price: f64,
}

#[xray::step(step_type = "generate")]
fn generate_keywords(title: &str) -> Vec<String> {
    let mut words: Vec<String> = title.split(' ').map(str::to_lowercase).collect();
    words.push("stand".into()); // the seed's bug
    words
}

#[xray::step(step_type = "retrieve", name = "search_catalog")]
fn search(keywords: &[String]) -> Vec<Candidate> {
    let catalog = [
        ("case_1", "slim case", 25.0),
        ("stand_42", "laptop stand", 39.0),
        ("case_2", "leather case", 150.0),
    ];
    catalog
        .iter()
        .filter(|(_, title, _)| keywords.iter().any(|k| title.contains(k.as_str())))
        .map(|(id, title, price)| Candidate {
            id: id.to_string(),
            title: title.to_string(),
            price: *price,
        })
        .collect()
}

fn check_price(c: &Candidate, max: f64) -> bool {
    // A helper with no handle: it records into the step it is called from.
    if c.price > max {
        xray::current_step().reject(
            &c.id,
            "price_too_high",
            json!({"price": c.price, "threshold": max}),
        );
        false
    } else {
        true
    }
}

#[xray::step(step_type = "filter", capture = "full")]
fn filter_candidates(candidates: Vec<Candidate>, max_price: f64) -> Vec<Candidate> {
    candidates
        .into_iter()
        .filter(|c| {
            let keep = check_price(c, max_price);
            if keep {
                step.accept(&c.id);
            }
            keep
        })
        .collect()
}

#[xray::step(step_type = "select")]
fn select_best(candidates: &[Candidate]) -> Result<String, String> {
    let Some(best) = candidates.iter().max_by(|a, b| a.price.total_cmp(&b.price)) else {
        return Err("no candidate left".to_string());
    };
    step.decide(&best.id, 0.87, json!({"why": "most expensive that passed"}));
    Ok(best.id.clone())
}

#[xray::run(pipeline = "macro_competitor_selection")]
fn select_competitor(title: &str, max_price: f64) -> Result<String, String> {
    let keywords = generate_keywords(title);
    let found = search(&keywords);
    let kept = filter_candidates(found, max_price);
    let best = select_best(&kept)?;
    Ok(best)
}

#[test]
fn a_pipeline_of_annotated_functions_is_recorded_in_order() {
    server();
    assert_eq!(
        select_competitor("Slim Case", 100.0),
        Ok("stand_42".to_string())
    );
    let run = only_run("macro_competitor_selection");
    assert_eq!(run["status"], "completed");
    assert_eq!(
        run["input"],
        json!({"title": "Slim Case", "max_price": 100.0})
    );
    assert_eq!(run["output"], "stand_42", "the Ok value of a Result");
    assert_eq!(
        step_names(&run),
        [
            "generate_keywords",
            "search_catalog",
            "filter_candidates",
            "select_best"
        ]
    );
    let steps = run["steps"].as_array().unwrap();
    let types: Vec<&str> = steps
        .iter()
        .map(|s| s["step_type"].as_str().unwrap())
        .collect();
    assert_eq!(types, ["generate", "retrieve", "filter", "select"]);
    assert_eq!(steps[0]["input"], json!({"title": "Slim Case"}));
    assert_eq!(steps[0]["output"], json!(["slim", "case", "stand"]));
    assert_eq!(
        steps[0]["output_count"], 3,
        "a returned Vec gives the output count"
    );
    assert_eq!(
        steps[1]["input_count"], 3,
        "a slice argument gives the input count"
    );
    assert_eq!(steps[1]["output_count"], 3);
    let filter = &steps[2];
    assert_eq!(filter["capture"], "full");
    assert_eq!(
        (
            filter["input_count"].as_u64(),
            filter["output_count"].as_u64()
        ),
        (Some(3), Some(2))
    );
    assert_eq!(filter["rejections"]["price_too_high"]["count"], 1);
    assert_eq!(
        filter["rejections"]["price_too_high"]["samples"][0]["item_id"],
        "case_2"
    );
    assert_eq!(filter["acceptances"]["count"], 2);
    assert_eq!(filter["input"]["max_price"], 100.0);
    assert_eq!(steps[3]["decision"]["selected"], "stand_42");
    assert_eq!(steps[3]["output"], "stand_42");
}

#[xray::run(pipeline = "macro_failing_run")]
fn failing_run(max_price: f64) -> Result<String, String> {
    let kept = filter_candidates(Vec::new(), max_price);
    select_best(&kept)
}

#[test]
fn an_err_fails_the_step_and_the_run_with_its_text() {
    server();
    assert_eq!(failing_run(1.0), Err("no candidate left".to_string()));
    let run = only_run("macro_failing_run");
    assert_eq!(run["status"], "failed");
    assert_eq!(run["error"], "no candidate left");
    assert_eq!(run["steps"][1]["error"], "no candidate left");
    assert_eq!(run["steps"][0]["error"], Value::Null);
}

#[xray::step(step_type = "transform")]
fn explode(n: u32) -> u32 {
    if n > 1 {
        panic!("boom at {n}");
    }
    n
}

#[xray::run(pipeline = "macro_panicking_run")]
fn panicking_run() -> u32 {
    explode(1) + explode(2)
}

#[test]
fn a_panic_fails_the_run_and_still_propagates() {
    server();
    let caught = std::panic::catch_unwind(panicking_run);
    assert!(caught.is_err(), "the panic propagates");
    let run = only_run("macro_panicking_run");
    assert_eq!(run["status"], "failed");
    assert_eq!(run["error"], "panicked: boom at 2");
    assert_eq!(run["steps"][1]["error"], "panicked: boom at 2");
    assert_eq!(run["steps"][0]["output"], 1);
}

/// Neither Serialize nor Debug.
struct Opaque;

#[derive(Debug)]
struct DebugOnly {
    #[allow(dead_code)]
    level: u8,
}

struct Ranker {
    weight: f64,
    calls: u32,
}

impl Ranker {
    #[xray::step(step_type = "rank")]
    fn score(&self, items: Vec<u32>) -> Vec<f64> {
        items.into_iter().map(|i| i as f64 * self.weight).collect()
    }

    #[xray::step(step_type = "rank", skip(secret))]
    fn count_call(&mut self, secret: &str) -> u32 {
        let _ = secret;
        self.calls += 1;
        self.calls
    }

    #[xray::step(step_type = "transform")]
    fn into_weight(self) -> f64 {
        self.weight
    }
}

#[xray::step(step_type = "transform")]
fn generic<T: Serialize + Clone>(value: T, times: usize) -> Vec<T> {
    vec![value; times]
}

#[xray::step(step_type = "retrieve")]
fn evens(limit: u32, source: impl Iterator<Item = u32>) -> impl Iterator<Item = u32> {
    source
        .take_while(move |n| *n < limit)
        .filter(|n| n % 2 == 0)
}

#[xray::step(step_type = "filter", skip_all)]
fn early(
    values: Vec<i64>,
    opaque: Opaque,
    debug: DebugOnly,
) -> Result<Vec<i64>, std::num::TryFromIntError> {
    let _ = (opaque, debug);
    if values.is_empty() {
        return Ok(Vec::new());
    }
    let _small: u8 = u8::try_from(values[0])?;
    Ok(values)
}

#[xray::step(step_type = "transform")]
fn unrecordable(opaque: Opaque, debug: DebugOnly) -> Opaque {
    let _ = debug;
    opaque
}

#[xray::run(pipeline = "macro_function_forms")]
fn function_forms() -> f64 {
    let mut ranker = Ranker {
        weight: 0.5,
        calls: 0,
    };
    let scores = ranker.score(vec![1, 2, 3]);
    ranker.count_call("hunter2");
    let doubled = generic("x", 2);
    let found: Vec<u32> = evens(7, 0..100).collect();
    let _ = early(vec![1, 2], Opaque, DebugOnly { level: 1 });
    let _ = early(vec![], Opaque, DebugOnly { level: 2 });
    let _ = early(vec![1000], Opaque, DebugOnly { level: 3 });
    let _ = unrecordable(Opaque, DebugOnly { level: 4 });
    scores[2] + doubled.len() as f64 + found.len() as f64 + ranker.into_weight()
}

#[test]
fn methods_generics_impl_trait_early_return_and_question_mark() {
    server();
    assert_eq!(function_forms(), 1.5 + 2.0 + 4.0 + 0.5);
    let run = only_run("macro_function_forms");
    assert_eq!(
        step_names(&run),
        [
            "score",
            "count_call",
            "generic",
            "evens",
            "early",
            "early",
            "early",
            "unrecordable",
            "into_weight"
        ]
    );
    let s = run["steps"].as_array().unwrap();
    assert_eq!(
        s[0]["input"],
        json!({"items": [1, 2, 3]}),
        "self is not recorded"
    );
    assert_eq!(s[0]["output"], json!([0.5, 1.0, 1.5]));
    assert_eq!(
        s[1]["input"],
        Value::Null,
        "skip(secret) leaves nothing to record"
    );
    assert_eq!(s[1]["output"], 1);
    assert_eq!(s[2]["input"], json!({"value": "x", "times": 2}));
    assert_eq!(s[2]["output_count"], 2);
    assert_eq!(s[3]["input"]["limit"], 7);
    assert!(s[3]["input"]["source"]
        .as_str()
        .unwrap()
        .contains("neither Serialize nor Debug"));
    assert_eq!(s[4]["input"], Value::Null, "skip_all");
    assert_eq!(s[4]["output"], json!([1, 2]));
    assert_eq!(s[4]["output_count"], 2, "the Ok value of a Result counts");
    assert_eq!(s[5]["output"], json!([]), "early return");
    assert_eq!(
        s[6]["error"].as_str().unwrap(),
        "out of range integral type conversion attempted",
        "? with From"
    );
    assert_eq!(
        s[7]["input"]["debug"], "DebugOnly { level: 4 }",
        "Debug when not Serialize"
    );
    assert!(s[7]["input"]["opaque"]
        .as_str()
        .unwrap()
        .contains("Opaque is neither Serialize nor Debug"));
    assert_eq!(s[8]["output"], 0.5, "self by value");
}

#[xray::step(step_type = "generate")]
async fn draft(topic: String, n: u64) -> Vec<String> {
    tokio::time::sleep(Duration::from_millis(n % 3)).await;
    tokio::task::yield_now().await;
    (0..n).map(|i| format!("{topic} draft {i}")).collect()
}

async fn validate_one(text: &str) -> bool {
    tokio::task::yield_now().await;
    // A helper after an .await, on whatever worker thread: still this step's.
    if text.ends_with('0') {
        xray::current_step().reject(text, "too_long", ());
        false
    } else {
        xray::current_step().accept(text);
        true
    }
}

#[xray::step(step_type = "filter")]
async fn validate(drafts: Vec<String>) -> Vec<String> {
    let mut kept = Vec::new();
    for d in drafts {
        if validate_one(&d).await {
            kept.push(d);
        }
    }
    kept
}

#[xray::run(pipeline = "macro_content")]
async fn content_pipeline(topic: String) -> Result<usize, String> {
    let drafts = draft(topic.clone(), 12).await;
    let kept = validate(drafts).await;
    if topic.contains("bad") {
        return Err(format!("nothing usable about {topic}"));
    }
    Ok(kept.len())
}

#[test]
fn async_runs_on_a_multi_threaded_runtime_keep_their_own_steps() {
    server();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_time()
        .build()
        .unwrap();
    let results = rt.block_on(async {
        let tasks: Vec<_> = (0..8)
            .map(|i| {
                let topic = if i == 3 {
                    "bad topic 3".to_string()
                } else {
                    format!("topic {i}")
                };
                tokio::spawn(content_pipeline(topic))
            })
            .collect();
        let mut out = Vec::new();
        for t in tasks {
            out.push(t.await.unwrap());
        }
        out
    });
    assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 7);
    xray::flush(WAIT).unwrap();
    let runs = runs(server(), "macro_content");
    assert_eq!(runs.len(), 8);
    for summary in &runs {
        let run = run(server(), summary["run_id"].as_str().unwrap());
        let topic = run["input"]["topic"].as_str().unwrap().to_string();
        assert_eq!(step_names(&run), ["draft", "validate"], "{topic}");
        let validate = &run["steps"][1];
        assert_eq!(validate["rejections"]["too_long"]["count"], 2, "{topic}");
        assert_eq!(validate["acceptances"]["count"], 10, "{topic}");
        assert_eq!(validate["input_count"], 12);
        assert_eq!(validate["output_count"], 10);
        for sample in validate["acceptances"]["samples"].as_array().unwrap() {
            let item = sample["item_id"].as_str().unwrap();
            assert!(
                item.starts_with(&topic),
                "{item} leaked into the run about {topic}"
            );
        }
        if topic.contains("bad") {
            assert_eq!(run["status"], "failed");
            assert_eq!(run["error"], "nothing usable about bad topic 3");
        } else {
            assert_eq!(run["status"], "completed");
            assert_eq!(run["output"], 10);
        }
    }
}

#[async_trait::async_trait]
trait Scorer {
    async fn score(&self, items: Vec<u32>) -> Vec<u32>;
}

struct Doubler;

#[async_trait::async_trait]
impl Scorer for Doubler {
    #[xray::step(step_type = "rank", name = "async_trait_score")]
    async fn score(&self, items: Vec<u32>) -> Vec<u32> {
        tokio::task::yield_now().await;
        step.set_attribute("method", "doubling");
        items.into_iter().map(|i| i * 2).collect()
    }
}

#[xray::run(pipeline = "macro_async_trait")]
async fn async_trait_run() -> Vec<u32> {
    let scorer: Box<dyn Scorer + Send + Sync> = Box::new(Doubler);
    scorer.score(vec![1, 2, 3]).await
}

#[test]
fn async_trait_methods_are_steps() {
    server();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_time()
        .build()
        .unwrap();
    let out = rt.block_on(async { tokio::spawn(async_trait_run()).await.unwrap() });
    assert_eq!(out, vec![2, 4, 6]);
    let run = only_run("macro_async_trait");
    let step = &run["steps"][0];
    assert_eq!(step["name"], "async_trait_score");
    assert_eq!(step["input"], json!({"items": [1, 2, 3]}));
    assert_eq!(step["output"], json!([2, 4, 6]));
    assert_eq!(step["attributes"]["method"], "doubling");
}

#[xray::step(step_type = "select")]
fn lonely_step(x: u32) -> u32 {
    x + 1
}

#[test]
fn a_step_outside_any_run_becomes_a_run_of_its_own() {
    server();
    assert_eq!(lonely_step(41), 42);
    xray::flush(WAIT).unwrap();
    let runs = runs(server(), "default");
    let found = runs.iter().any(|r| {
        let run = run(server(), r["run_id"].as_str().unwrap());
        run["steps"][0]["name"] == "lonely_step" && run["output"] == 42
    });
    assert!(found, "{runs:?}");
}

#[xray::step(step_type = "filter")]
fn huge_filter(ids: Vec<u64>) -> Vec<u64> {
    ids.into_iter().filter(|i| i % 1000 == 0).collect()
}

#[xray::run(pipeline = "macro_huge_input")]
fn huge_run(n: u64) -> usize {
    huge_filter((0..n).collect()).len()
}

#[test]
fn huge_arguments_are_capped_but_counted_exactly() {
    server();
    assert_eq!(huge_run(1_000_000), 1000);
    let run = only_run("macro_huge_input");
    let step = &run["steps"][0];
    assert_eq!(step["input_count"], 1_000_000, "the count is exact");
    assert_eq!(step["output_count"], 1000);
    let input = &step["input"]["ids"];
    assert_eq!(input["_xray_truncated"], true, "{input}");
    assert_eq!(input["limit_bytes"], 32 * 1024);
    assert!(input["preview"].as_str().unwrap().starts_with("[0,1,2,3"));
    assert_eq!(
        step["output"].as_array().unwrap().len(),
        1000,
        "small enough to keep whole"
    );
}
