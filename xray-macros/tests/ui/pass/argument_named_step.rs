/// An argument named `step` stays the caller's: no handle shadows it.
#[xray::step(step_type = "transform")]
fn advance(step: u32) -> u32 {
    step + 1
}

fn main() {
    let _guard = xray::init(xray::Config::builder().offline_mode(xray::OfflineMode::Silent).build());
    assert_eq!(advance(1), 2);
}
