use std::fmt::Debug;

#[xray::step(step_type = "transform")]
fn repeat<T: serde::Serialize + Clone>(value: T, times: usize) -> Vec<T> {
    vec![value; times]
}

#[xray::step(step_type = "transform")]
fn unbounded<T>(value: T) -> T {
    value
}

#[xray::step(step_type = "retrieve")]
fn evens(source: impl Iterator<Item = u32>) -> impl Iterator<Item = u32> {
    source.filter(|n| n % 2 == 0)
}

#[xray::step(step_type = "generate")]
fn lifetimes<'a, T: Debug + ?Sized>(text: &'a str, extra: &T) -> &'a str {
    let _ = extra;
    text.trim()
}

#[xray::step(step_type = "select")]
fn where_clause<K, V>(map: std::collections::HashMap<K, V>) -> usize
where
    K: std::hash::Hash + Eq,
{
    map.len()
}

fn main() {
    let _guard = xray::init(xray::Config::builder().offline_mode(xray::OfflineMode::Silent).build());
    assert_eq!(repeat("x", 2), vec!["x", "x"]);
    assert_eq!(unbounded(3), 3);
    assert_eq!(evens(0..5).count(), 3);
    assert_eq!(lifetimes(" a ", "b"), "a");
    assert_eq!(where_clause(std::collections::HashMap::<u8, u8>::new()), 0);
}
