//! A product catalog of a few categories, made by a seeded generator so it is the same every
//! time (`cargo run --example gen_catalog > examples/data/catalog.json` rewrites the shipped copy).

use serde::{Deserialize, Serialize};

/// One product.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Product {
    /// Stable id (`case_0042`).
    pub id: String,
    /// What a shop would call it.
    pub title: String,
    /// `phone_cases`, `laptop_stands`, `phone_stands`, `chargers`, `cables`, `screen_protectors`.
    pub category: String,
    /// Price in dollars.
    pub price: f64,
    /// Average rating, 1 to 5.
    pub rating: f64,
}

/// The catalog shipped with the examples.
pub fn shipped() -> Vec<Product> {
    serde_json::from_str(include_str!("../examples/data/catalog.json"))
        .unwrap_or_else(|e| panic!("examples/data/catalog.json is not a catalog: {e}"))
}

/// A small deterministic generator (xorshift64*).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn pick<'a>(&mut self, from: &[&'a str]) -> &'a str {
        from[(self.next() % from.len() as u64) as usize]
    }
    fn between(&mut self, low: f64, high: f64) -> f64 {
        let unit = (self.next() % 10_000) as f64 / 10_000.0;
        ((low + unit * (high - low)) * 100.0).round() / 100.0
    }
}

const PHONES: &[&str] = &[
    "iPhone 15",
    "iPhone 15 Pro",
    "iPhone 14",
    "Galaxy S24",
    "Pixel 8",
    "iPhone 13",
];
const LAPTOPS: &[&str] = &[
    "MacBook Air",
    "MacBook Pro",
    "Laptop",
    "Notebook",
    "Chromebook",
];

/// Generates the catalog: `per_category` products in each of six categories, plus the seed's
/// `laptop_stand_42`, a laptop stand whose title shares many words with phone-case searches.
pub fn generate(per_category: usize, seed: u64) -> Vec<Product> {
    let mut rng = Rng(seed | 1);
    let mut products = Vec::new();
    let mut add =
        |prefix: &str, category: &str, i: usize, title: String, price: f64, rating: f64| {
            products.push(Product {
                id: format!("{prefix}_{i:04}"),
                title,
                category: category.to_string(),
                price,
                rating,
            })
        };
    for i in 0..per_category {
        let style = rng.pick(&[
            "Slim", "Clear", "Leather", "Rugged", "Silicone", "MagSafe", "Wallet",
        ]);
        let kind = rng.pick(&["Case", "Case", "Cover", "Folio Case", "Bumper Case"]);
        let phone = rng.pick(PHONES);
        let (price, rating) = (rng.between(8.0, 160.0), rng.between(2.0, 5.0));
        add(
            "case",
            "phone_cases",
            i,
            format!("{style} {kind} for {phone}"),
            price,
            rating,
        );
    }
    for i in 0..per_category {
        let style = rng.pick(&[
            "Aluminum",
            "Adjustable",
            "Foldable",
            "Ergonomic",
            "Portable",
            "Wooden",
        ]);
        let laptop = rng.pick(LAPTOPS);
        let (price, rating) = (rng.between(15.0, 120.0), rng.between(2.5, 5.0));
        add(
            "laptop_stand",
            "laptop_stands",
            i,
            format!("{style} Laptop Stand for {laptop}"),
            price,
            rating,
        );
    }
    for i in 0..per_category {
        let style = rng.pick(&["Desk", "Adjustable", "Car Vent", "Bedside", "Foldable"]);
        let kind = rng.pick(&["Phone Stand", "Phone Holder", "Phone Mount"]);
        let (price, rating) = (rng.between(6.0, 60.0), rng.between(2.0, 5.0));
        add(
            "phone_stand",
            "phone_stands",
            i,
            format!("{style} {kind}"),
            price,
            rating,
        );
    }
    for i in 0..per_category {
        let watts = rng.pick(&["20W", "30W", "45W", "65W", "100W"]);
        let kind = rng.pick(&[
            "USB-C Wall Charger",
            "GaN Charger",
            "Car Charger",
            "Wireless Charger Pad",
        ]);
        let (price, rating) = (rng.between(9.0, 90.0), rng.between(2.0, 5.0));
        add(
            "charger",
            "chargers",
            i,
            format!("{watts} {kind}"),
            price,
            rating,
        );
    }
    for i in 0..per_category {
        let length = rng.pick(&["0.5m", "1m", "2m", "3m"]);
        let kind = rng.pick(&[
            "USB-C to Lightning Cable",
            "USB-C to USB-C Cable",
            "Braided Lightning Cable",
        ]);
        let (price, rating) = (rng.between(5.0, 40.0), rng.between(2.0, 5.0));
        add(
            "cable",
            "cables",
            i,
            format!("{length} {kind}"),
            price,
            rating,
        );
    }
    for i in 0..per_category {
        let phone = rng.pick(PHONES);
        let kind = rng.pick(&[
            "Tempered Glass Screen Protector",
            "Privacy Screen Protector",
            "Matte Screen Film",
        ]);
        let (price, rating) = (rng.between(5.0, 35.0), rng.between(2.0, 5.0));
        add(
            "protector",
            "screen_protectors",
            i,
            format!("{kind} for {phone}"),
            price,
            rating,
        );
    }
    // The seed's culprit: a laptop stand that also holds a phone and says so at length.
    products.push(Product {
        id: "laptop_stand_42".into(),
        title: "Adjustable Laptop Stand with Phone Holder, Case Friendly Cover Pad".into(),
        category: "laptop_stands".into(),
        price: 39.0,
        rating: 4.8,
    });
    products
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_catalog_is_the_generated_one() {
        let shipped = shipped();
        assert_eq!(
            shipped,
            generate(170, 42),
            "regenerate with: cargo run --example gen_catalog"
        );
        assert!(shipped.len() >= 1000);
        let categories: std::collections::BTreeSet<&str> =
            shipped.iter().map(|p| p.category.as_str()).collect();
        assert_eq!(categories.len(), 6);
    }
}
