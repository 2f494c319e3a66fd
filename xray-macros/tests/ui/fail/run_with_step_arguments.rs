#[xray::run(pipeline = "competitor_selection", step_type = "select")]
fn select_competitor(title: &str) -> String {
    title.to_string()
}

fn main() {}
