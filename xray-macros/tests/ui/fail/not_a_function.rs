#[xray::step(step_type = "filter")]
struct Filter {
    threshold: u32,
}

fn main() {}
