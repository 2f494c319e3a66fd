#[async_trait::async_trait]
trait Scorer {
    async fn score(&self, items: Vec<u32>) -> Vec<u32>;
    async fn best(&self, items: Vec<u32>) -> Result<u32, String>;
}

struct Doubler;

#[async_trait::async_trait]
impl Scorer for Doubler {
    #[xray::step(step_type = "rank")]
    async fn score(&self, items: Vec<u32>) -> Vec<u32> {
        items.into_iter().map(|i| i * 2).collect()
    }

    #[xray::step(step_type = "select")]
    async fn best(&self, items: Vec<u32>) -> Result<u32, String> {
        let best = items.into_iter().max().ok_or("empty")?;
        step.decide(best, 1.0, ());
        Ok(best)
    }
}

fn main() {
    let _guard = xray::init(xray::Config::builder().offline_mode(xray::OfflineMode::Silent).build());
    let rt = tokio::runtime::Builder::new_multi_thread().build().unwrap();
    let scorer: Box<dyn Scorer + Send + Sync> = Box::new(Doubler);
    assert_eq!(rt.block_on(scorer.score(vec![1])), vec![2]);
    assert_eq!(rt.block_on(scorer.best(vec![1, 5])), Ok(5));
}
