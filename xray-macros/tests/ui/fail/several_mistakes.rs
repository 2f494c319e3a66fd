#[xray::step(step_typ = "filter", capture = "some", skip(nothing))]
fn filter(items: Vec<u32>) -> Vec<u32> {
    items
}

fn main() {}
