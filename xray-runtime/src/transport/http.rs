//! One HTTP request: POST a batch to `/ingest` with ureq, and sort the answer into what to do
//! next. Must not retry or wait: the worker decides that.

use crate::config::ApiKey;
use std::collections::BTreeMap;
use std::time::Duration;
use xray_wire::IngestResponse;

/// How a POST ended.
#[derive(Debug)]
pub(crate) enum Delivery {
    /// Stored (2xx), but for the events the server refused (its `refused`, by index in the
    /// batch, with why; an older server never refuses part of a batch).
    Stored(BTreeMap<usize, String>),
    /// Nothing stored, and the server is away: no answer, a timeout, 502–504, 408, 429, or a
    /// 4xx that says the request went to the wrong place (401, 403, 404…): the events are fine.
    Away(String),
    /// Nothing stored: the server failed on this request (500 and the other 5xx). Maybe on
    /// everything for now, maybe on something in it; it is kept and sent again later.
    Failed(String),
    /// The body is over the server's limit (413): send it in smaller pieces.
    TooLarge(String),
    /// The server refused every event of the batch (400, 409, 422): sending them again cannot
    /// help.
    Refused(String),
}

/// Sends request bodies to one server.
pub(crate) struct Sender {
    agent: ureq::Agent,
    url: String,
    /// `Bearer <key>`, when a key is configured.
    authorization: Option<String>,
}

impl Sender {
    /// A sender to `endpoint`'s `/ingest`.
    pub(crate) fn new(endpoint: &str, api_key: Option<&ApiKey>) -> Sender {
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .into();
        Sender {
            agent,
            url: format!("{}/ingest", endpoint.trim_end_matches('/')),
            authorization: api_key.map(|k| format!("Bearer {}", k.expose())),
        }
    }

    /// POSTs one request body, allowing it `timeout` in all.
    pub(crate) fn post(&self, body: &[u8], timeout: Duration) -> Delivery {
        let mut request = self
            .agent
            .post(&self.url)
            .config()
            .timeout_global(Some(timeout))
            .build()
            .header("content-type", "application/json");
        if let Some(auth) = &self.authorization {
            request = request.header("authorization", auth);
        }
        let mut res = match request.send(body) {
            Ok(res) => res,
            Err(e) => return Delivery::Away(e.to_string()),
        };
        let status = res.status().as_u16();
        if (200..300).contains(&status) {
            // An answer that cannot be read still says the batch was stored.
            let answer = res.body_mut().read_json::<IngestResponse>();
            let refused = answer.map_or_else(
                |_| BTreeMap::new(),
                |a| a.refused.into_iter().map(|r| (r.index, r.error)).collect(),
            );
            return Delivery::Stored(refused);
        }
        let text = res
            .body_mut()
            .with_config()
            .limit(4096)
            .read_to_string()
            .unwrap_or_default();
        let message = format!("HTTP {status}: {}", text.trim());
        match status {
            413 => Delivery::TooLarge(message),
            400 | 409 | 422 => Delivery::Refused(message),
            502..=504 => Delivery::Away(message),
            500..=599 => Delivery::Failed(message),
            _ => Delivery::Away(message),
        }
    }
}
