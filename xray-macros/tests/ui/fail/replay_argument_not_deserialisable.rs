//! A `replay` function's recorded arguments are read back at replay time: each must be
//! `Serialize + DeserializeOwned`, and the error points at the one that is not.

#[derive(Debug, Clone, serde::Serialize)]
struct Query {
    title: String,
}

struct Opaque;

#[xray::run(pipeline = "search", replay)]
fn search(query: &Query, limit: usize, handle: Opaque) -> usize {
    let _ = (query, handle);
    limit
}

fn main() {}
