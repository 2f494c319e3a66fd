#[xray::step(name = "filter_candidates", capture = "full")]
fn filter(items: Vec<u32>) -> Vec<u32> {
    items
}

fn main() {}
