#[xray::step(step_type = "transform")]
const fn double(x: u32) -> u32 {
    x * 2
}

fn main() {}
