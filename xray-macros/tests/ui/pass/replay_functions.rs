//! `replay` functions of every argument form a replay reads back: by value, `&str`, `&[T]`,
//! `&T`, `&mut T`, with lifetimes, and skipped ones given at replay time. Each registers under
//! its pipeline or step name; a replay with no server says so and stores nothing.

use std::borrow::Cow;

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct Product {
    id: String,
    price: f64,
}

#[xray::run(pipeline = "shop", replay, skip(catalog))]
fn choose(title: &str, budget: f64, catalog: &[Product]) -> Option<String> {
    let kept = keep_cheap(catalog.to_vec(), &budget);
    let _ = title;
    kept.first().map(|p| p.id.clone())
}

#[xray::step(step_type = "filter", replay)]
fn keep_cheap(items: Vec<Product>, budget: &f64) -> Vec<Product> {
    items.into_iter().filter(|p| p.price <= *budget).collect()
}

#[xray::step(step_type = "transform", name = "normalise", replay)]
fn normalise_words<'a>(words: &mut Vec<String>, sep: Cow<'a, str>, first: &'a Product) -> usize {
    words.push(sep.into_owned());
    words.len() + first.id.len()
}

#[xray::step(step_type = "generate", replay, skip_all)]
fn from_context(seed: u64, label: String) -> u64 {
    seed + label.len() as u64
}

fn main() {
    let registered: Vec<(xray_replay::ReplayKind, &str)> =
        xray_replay::hooks::inventory::iter::<xray_replay::Replayable>
            .into_iter()
            .map(|r| (r.kind, r.key))
            .collect();
    for expected in [
        (xray_replay::ReplayKind::Run, "shop"),
        (xray_replay::ReplayKind::Step, "keep_cheap"),
        (xray_replay::ReplayKind::Step, "normalise"),
        (xray_replay::ReplayKind::Step, "from_context"),
    ] {
        assert!(registered.contains(&expected), "{expected:?} in {registered:?}");
    }
    let _xray = xray::init(
        xray::Config::builder()
            .endpoint("http://127.0.0.1:9")
            .offline_mode(xray::OfflineMode::Silent)
            .build(),
    )
    .expect("init");
    let catalog = vec![Product { id: "a".into(), price: 1.0 }];
    assert_eq!(choose("t", 2.0, &catalog), Some("a".to_string()));
    let mut words = vec![];
    assert_eq!(normalise_words(&mut words, Cow::Borrowed("-"), &catalog[0]), 2);
    assert_eq!(from_context(1, "ab".into()), 3);
    let _ = xray::flush(std::time::Duration::from_secs(10));
    let before = xray::stats();
    let context = xray_replay::ReplayContext::new().provide("catalog", catalog);
    match xray_replay::run("some-run", &context) {
        Err(xray_replay::ReplayError::Unreachable { .. }) => {}
        other => panic!("expected the server to be unreachable: {other:?}"),
    }
    let _ = xray::flush(std::time::Duration::from_secs(10));
    let after = xray::stats();
    assert!(before.dropped > 0, "the calls above were recorded: {before:?}");
    assert_eq!(after.dropped, before.dropped, "the failed replay recorded nothing");
}
