//! The seed's walkthrough, for real: run the competitor-selection pipeline for a few product
//! titles against an X-Ray server, then go and ask it why.
//!
//! ```sh
//! cargo run -p xray-server &                       # the server, on 127.0.0.1:8000
//! cargo run --example competitor_selection         # XRAY_ENDPOINT to send elsewhere
//! ```
//!
//! Two versions of the pipeline, to compare (`xray compare competitor_selection version:1.0
//! version:1.1`, or the web UI's Pipelines page): `XRAY_VERSION=1.1` plays the release that
//! caps prices at 70% of the budget; any other version (or none) is the shipped one.
//!
//! ```sh
//! XRAY_VERSION=1.0 cargo run --example competitor_selection
//! XRAY_VERSION=1.1 cargo run --example competitor_selection
//! ```
//!
//! With `XRAY_EXAMPLE_FIX=1` it runs with the keyword fix; `xray replay RUN_ID -- cargo run
//! --example competitor_selection` (with the fix) replays a recorded run on it.

use std::time::Duration;
use xray_examples::catalog;
use xray_examples::competitor_selection::{select_competitor, use_keyword_fix};
use xray_replay::ReplayContext;

/// The share of a query's budget the price filter allows: 1.1 is the release that tightened it.
fn price_cap(version: Option<&str>) -> f64 {
    if version == Some("1.1") {
        0.7
    } else {
        1.0
    }
}

fn main() {
    let config = xray::Config::from_env();
    let endpoint = config.endpoint.clone();
    let cap = price_cap(config.version.as_deref());
    let _xray = xray::init(config);
    let catalog = catalog::shipped();
    // XRAY_EXAMPLE_FIX=1: the keyword table without the bug ("case" no longer means "stand").
    use_keyword_fix(std::env::var("XRAY_EXAMPLE_FIX").is_ok_and(|v| v == "1"));
    // XRAY_REPLAY=<run id> (set by `xray replay`): replay that run on today's code, then exit.
    xray_replay::from_env_with(|| ReplayContext::new().provide("catalog", catalog.clone()));
    println!(
        "catalog: {} products; X-Ray server: {endpoint}",
        catalog.len()
    );
    let queries = [
        ("iPhone 15 Case", 100.0),
        ("USB-C Charger 30W", 60.0),
        ("Braided Cable for iPhone 15", 20.0),
        ("Tempered Glass Protector for Pixel 8", 10.0),
        ("Galaxy S24 Cover", 25.0),
        ("MagSafe Wallet Case for Pixel 8 Pro Max", 80.0),
        ("Waterproof Pouch for iPhone 15", 50.0),
    ];
    for (title, budget) in queries {
        match select_competitor(title, budget * cap, &catalog) {
            Ok(s) => println!(
                "{title:<40} → {} ({}, score {:.2})\n{:<40}   {endpoint}/runs/{}",
                s.product_id,
                s.title,
                s.score,
                "",
                s.run_id.unwrap_or_default()
            ),
            Err(e) => println!("{title:<40} → failed: {e}"),
        }
    }
    if let Err(e) = xray::flush(Duration::from_secs(10)) {
        eprintln!("X-Ray could not deliver the runs: {e}");
    }
    let stats = xray::stats();
    println!(
        "events sent {}, spooled {} (re-sent when the server is back), dropped {}",
        stats.sent, stats.spooled, stats.dropped
    );
    println!("try: curl '{endpoint}/runs?pipeline=competitor_selection&status=completed'");
}
