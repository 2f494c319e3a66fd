use serde_json::json;

#[derive(Debug, Clone, serde::Serialize)]
struct Candidate {
    id: String,
    price: f64,
}

#[xray::step(step_type = "filter")]
fn filter_candidates(candidates: Vec<Candidate>, max_price: f64) -> Vec<Candidate> {
    candidates
        .into_iter()
        .filter(|c| {
            if c.price > max_price {
                step.reject(&c.id, "price_too_high", json!({"price": c.price, "threshold": max_price}));
                false
            } else {
                step.accept(&c.id);
                true
            }
        })
        .collect()
}

#[xray::step(step_type = "select", name = "select_best", capture = "minimal")]
fn select(candidates: &[Candidate]) -> Option<&Candidate> {
    candidates.first()
}

#[xray::run(pipeline = "competitor_selection")]
fn select_competitor(title: &str) -> Result<String, String> {
    let candidates = vec![Candidate { id: title.into(), price: 10.0 }];
    let kept = filter_candidates(candidates, 100.0);
    let best = select(&kept).ok_or("none")?;
    Ok(best.id.clone())
}

fn main() {
    let _guard = xray::init(xray::Config::builder().offline_mode(xray::OfflineMode::Silent).build());
    assert_eq!(select_competitor("case").as_deref(), Ok("case"));
}
