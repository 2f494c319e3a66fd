//! One HTTP request: POST a batch to `/ingest` with ureq, and sort the answer into what to do
//! next. Must not retry or wait: the worker decides that.

use crate::config::ApiKey;
use std::collections::BTreeMap;
use std::time::Duration;
use ureq::RequestBuilder;
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

/// Talks to one server: `POST /ingest` for the shipper, `GET` for `xray-replay`.
pub(crate) struct Sender {
    agent: ureq::Agent,
    endpoint: String,
    /// `Bearer <key>`, when a key is configured.
    authorization: Option<String>,
}

impl Sender {
    /// A sender to `endpoint`.
    pub(crate) fn new(endpoint: &str, api_key: Option<&ApiKey>) -> Sender {
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .into();
        Sender {
            agent,
            endpoint: endpoint.trim_end_matches('/').to_string(),
            authorization: api_key.map(|k| format!("Bearer {}", k.expose())),
        }
    }

    /// `request` allowed `timeout` in all, with the API key.
    fn prepare<B>(&self, request: RequestBuilder<B>, timeout: Duration) -> RequestBuilder<B> {
        let request = request.config().timeout_global(Some(timeout)).build();
        match &self.authorization {
            Some(auth) => request.header("authorization", auth),
            None => request,
        }
    }

    /// GETs `path`: the answer's status and body.
    pub(crate) fn get(&self, path: &str, timeout: Duration) -> Result<(u16, String), ureq::Error> {
        let url = format!("{}{path}", self.endpoint);
        let mut res = self.prepare(self.agent.get(url), timeout).call()?;
        let text = res
            .body_mut()
            .with_config()
            .limit(u64::MAX)
            .read_to_string()?;
        Ok((res.status().as_u16(), text))
    }

    /// POSTs one request body to `/ingest`, allowing it `timeout` in all.
    pub(crate) fn post(&self, body: &[u8], timeout: Duration) -> Delivery {
        let url = format!("{}/ingest", self.endpoint);
        let request = self.prepare(self.agent.post(url), timeout);
        let request = request.header("content-type", "application/json");
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
