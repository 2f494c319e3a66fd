//! Writes the example catalog as JSON: `cargo run --example gen_catalog > examples/data/catalog.json`.

fn main() {
    let products = xray_examples::catalog::generate(170, 42);
    match serde_json::to_string_pretty(&products) {
        Ok(json) => println!("{json}"),
        Err(e) => {
            eprintln!("cannot serialise the catalog: {e}");
            std::process::exit(1);
        }
    }
}
