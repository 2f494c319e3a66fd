//! What a replay cannot call: a method (no `self`), a generic or async function, an
//! `impl Trait` or destructured argument; and `replay` takes no value.

struct Searcher;

impl Searcher {
    #[xray::step(step_type = "retrieve", replay)]
    fn search(&self, query: String) -> Vec<String> {
        vec![query]
    }
}

#[xray::step(step_type = "filter", replay)]
fn generic<T: Clone>(items: Vec<T>) -> Vec<T> {
    items
}

#[xray::step(step_type = "filter", replay)]
async fn later(items: Vec<u32>, (low, high): (u32, u32), more: impl Iterator<Item = u32>) -> Vec<u32> {
    let _ = (low, high, more);
    items
}

#[xray::run(pipeline = "p", replay = true)]
fn valued(items: Vec<u32>) -> Vec<u32> {
    items
}

fn main() {}
