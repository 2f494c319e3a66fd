#[derive(Debug)]
struct ParseError(String);

impl std::fmt::Display for ParseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "cannot parse {}", self.0)
    }
}

impl From<std::num::ParseIntError> for ParseError {
    fn from(e: std::num::ParseIntError) -> Self {
        ParseError(e.to_string())
    }
}

#[xray::step(step_type = "transform")]
fn parse_all(texts: Vec<&str>) -> Result<Vec<u32>, ParseError> {
    if texts.is_empty() {
        return Ok(Vec::new());
    }
    let mut out = Vec::new();
    for t in texts {
        out.push(t.parse::<u32>()?);
    }
    Ok(out)
}

#[xray::run(pipeline = "parsing")]
fn run(texts: Vec<&str>) -> Result<u32, ParseError> {
    Ok(parse_all(texts)?.into_iter().sum())
}

fn main() {
    let _guard = xray::init(xray::Config::builder().offline_mode(xray::OfflineMode::Silent).build());
    assert_eq!(run(vec!["1", "2"]).unwrap(), 3);
    assert!(run(vec!["x"]).is_err());
    assert_eq!(run(vec![]).unwrap(), 0);
}
