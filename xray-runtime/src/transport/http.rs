//! One HTTP request: POST a batch to `/ingest` with ureq, and sort the answer into what to do next.

use crate::config::ApiKey;
use std::time::Duration;

/// How a POST ended.
#[derive(Debug)]
pub(crate) enum Delivery {
    /// Stored (2xx).
    Stored,
    /// Worth trying again later: no connection, a timeout, 408, 429, 502-504, or a 4xx that
    /// says the request went to the wrong place (401, 403, 404…): the events are fine.
    Retry(String),
    /// The server failed on this batch (500 and other 5xx): maybe failing on everything for
    /// now, maybe on one event it cannot store; the worker retries, then keeps the batch for
    /// later, and the spool finds an event the server fails on while it stores the others.
    ServerError(String),
    /// The body is over the server's limit (413): send it in smaller pieces.
    TooLarge(String),
    /// The server refused the events themselves (other 4xx): sending them again cannot help.
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
    pub(crate) fn new(endpoint: &str, timeout: Duration, api_key: Option<&ApiKey>) -> Sender {
        let agent = ureq::Agent::config_builder()
            .timeout_global(Some(timeout))
            .http_status_as_error(false)
            .build()
            .into();
        Sender {
            agent,
            url: format!("{}/ingest", endpoint.trim_end_matches('/')),
            authorization: api_key.map(|k| format!("Bearer {}", k.expose())),
        }
    }

    pub(crate) fn post(&self, body: &[u8]) -> Delivery {
        let mut request = self
            .agent
            .post(&self.url)
            .header("content-type", "application/json");
        if let Some(auth) = &self.authorization {
            request = request.header("authorization", auth);
        }
        let result = request.send(body);
        let mut res = match result {
            Ok(res) => res,
            Err(e) => return Delivery::Retry(e.to_string()),
        };
        let status = res.status().as_u16();
        if (200..300).contains(&status) {
            return Delivery::Stored;
        }
        let text = res
            .body_mut()
            .with_config()
            .limit(4096)
            .read_to_string()
            .unwrap_or_default();
        let message = format!("HTTP {status}: {}", text.trim());
        match status {
            502..=504 => Delivery::Retry(message),
            500..=599 => Delivery::ServerError(message),
            413 => Delivery::TooLarge(message),
            400 | 422 => Delivery::Refused(message),
            _ => Delivery::Retry(message),
        }
    }
}
