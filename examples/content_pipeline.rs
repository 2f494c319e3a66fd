//! An async, LLM-style pipeline run for several topics in parallel on a multi-threaded runtime.
//!
//! ```sh
//! cargo run -p xray-server &
//! cargo run --example content_pipeline
//! ```

use std::time::Duration;
use xray_examples::content_pipeline::write_post;

#[tokio::main(flavor = "multi_thread", worker_threads = 4)]
async fn main() {
    let _xray = xray::init(xray::Config::from_env());
    let endpoint = xray::Config::from_env().endpoint;
    let topics = [
        ("rust", 30),
        ("observability", 30),
        ("model timeout drills", 30),
        ("sourdough", 12),
        ("pipelines", 4),
        ("tracing", 30),
    ];
    let tasks: Vec<_> = topics
        .iter()
        .map(|(topic, max_words)| tokio::spawn(write_post(topic.to_string(), *max_words)))
        .collect();
    for ((topic, _), task) in topics.iter().zip(tasks) {
        match task.await {
            Ok(Ok(post)) => println!("{topic:<22} → {} (score {:.2})", post.draft_id, post.score),
            Ok(Err(e)) => println!("{topic:<22} → failed: {e}"),
            Err(e) => println!("{topic:<22} → panicked: {e}"),
        }
    }
    if let Err(e) = xray::flush(Duration::from_secs(10)) {
        eprintln!("X-Ray could not deliver the runs: {e}");
    }
    println!("try: curl '{endpoint}/runs?pipeline=content_pipeline&status=failed'");
    println!("     curl '{endpoint}/steps?step_type=select&score_lt=0.5'");
}
