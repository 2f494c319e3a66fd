#[xray::step(step_type = "generate")]
async fn draft(topic: String) -> Result<String, std::io::Error> {
    if topic.is_empty() {
        return Err(std::io::Error::other("empty topic"));
    }
    Ok(format!("about {topic}"))
}

#[xray::run(pipeline = "content")]
async fn pipeline(topic: String) -> Result<usize, std::io::Error> {
    let text = draft(topic).await?;
    Ok(text.len())
}

struct Service;

impl Service {
    #[xray::step(step_type = "rank")]
    async fn score(&self, text: &str) -> usize {
        text.len()
    }
}

fn main() {
    let _guard = xray::init(xray::Config::builder().offline_mode(xray::OfflineMode::Silent).build());
    let rt = tokio::runtime::Builder::new_multi_thread().build().unwrap();
    // The futures are Send: they can be spawned on a multi-threaded runtime.
    let n = rt.block_on(async { tokio::spawn(pipeline("cats".into())).await.unwrap() });
    assert_eq!(n.unwrap(), 10);
    assert_eq!(rt.block_on(Service.score("abc")), 3);
}
