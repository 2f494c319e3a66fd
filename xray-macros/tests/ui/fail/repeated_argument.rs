#[xray::step(step_type = "filter", step_type = "rank")]
fn filter(items: Vec<u32>) -> Vec<u32> {
    items
}

fn main() {}
