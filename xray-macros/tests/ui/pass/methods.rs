struct Ranker {
    weight: f64,
}

impl Ranker {
    #[xray::step(step_type = "rank")]
    fn by_ref(&self, items: Vec<f64>) -> Vec<f64> {
        items.iter().map(|i| i * self.weight).collect()
    }

    #[xray::step(step_type = "rank")]
    fn by_mut(&mut self, factor: f64) {
        self.weight *= factor;
    }

    #[xray::step(step_type = "transform")]
    fn by_value(self) -> f64 {
        self.weight
    }

    #[xray::step(step_type = "transform")]
    fn boxed(self: Box<Self>) -> f64 {
        self.weight
    }

    #[xray::step(step_type = "generate")]
    fn associated(weight: f64) -> Self {
        Ranker { weight }
    }
}

fn main() {
    let _guard = xray::init(xray::Config::builder().offline_mode(xray::OfflineMode::Silent).build());
    let mut r = Ranker::associated(2.0);
    r.by_mut(2.0);
    assert_eq!(r.by_ref(vec![1.0]), vec![4.0]);
    assert_eq!(Box::new(Ranker { weight: 1.0 }).boxed(), 1.0);
    assert_eq!(r.by_value(), 4.0);
}
