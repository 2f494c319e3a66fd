#[xray::step(step_type = "filter", captur = "full")]
fn filter(items: Vec<u32>) -> Vec<u32> {
    items
}

fn main() {}
