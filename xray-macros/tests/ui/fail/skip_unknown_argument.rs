#[xray::step(step_type = "filter", skip(item))]
fn filter(items: Vec<u32>, threshold: u32) -> Vec<u32> {
    items.into_iter().filter(|i| *i < threshold).collect()
}

fn main() {}
