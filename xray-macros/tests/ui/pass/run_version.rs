//! `version` takes any expression whose value is `Display`: a literal, `env!`, a constant.

const BUILD: u32 = 42;

#[xray::run(pipeline = "competitor_selection", version = "1.4.2")]
fn literal(title: &str) -> String {
    title.to_string()
}

#[xray::run(pipeline = "competitor_selection", version = env!("CARGO_PKG_VERSION"))]
fn from_cargo(title: &str) -> String {
    title.to_string()
}

#[xray::run(pipeline = "competitor_selection", version = BUILD)]
async fn from_a_constant(title: &str) -> String {
    title.to_string()
}

fn main() {
    let _ = (literal("a"), from_cargo("b"), from_a_constant("c"));
}
