#[xray::step]
fn filter(items: Vec<u32>) -> Vec<u32> {
    items
}

fn main() {}
