#[xray::run(pipeline = "competitor_selection", version = vec![1, 4, 2])]
fn select_competitor(title: &str) -> String {
    title.to_string()
}

fn main() {}
