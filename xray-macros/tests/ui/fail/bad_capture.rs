#[xray::step(step_type = "filter", capture = "everything")]
fn filter(items: Vec<u32>) -> Vec<u32> {
    items
}

fn main() {}
