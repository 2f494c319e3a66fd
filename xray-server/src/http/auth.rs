//! API keys: when any are configured, every request but `/health` (and the spec and UI pages)
//! needs `Authorization: Bearer <key>` with a key of the right scope. A key must never be
//! logged nor kept in clear.
//!
//! Scopes: `ingest` (POST /runs, POST /ingest, POST /v1/traces), `read` (every GET of data), `admin` (alert
//! rules and their firings, /admin; an admin key may also ingest and read). The scope is decided
//! on the percent-decoded path, the one the router matches. No key: 401. A key of another scope:
//! 403. Keys are kept only as SHA-256 digests, compared in constant time, and never logged.

use super::error::ApiError;
use actix_web::http::{header, Method};
use sha2::{Digest, Sha256};
use std::fmt;
use std::str::FromStr;
use subtle::ConstantTimeEq;

/// What a key may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Send runs and events.
    Ingest,
    /// Read runs, steps, items, alerts.
    Read,
    /// Manage alert rules and see retention; implies the other two.
    Admin,
}

impl Scope {
    fn as_str(self) -> &'static str {
        match self {
            Scope::Ingest => "ingest",
            Scope::Read => "read",
            Scope::Admin => "admin",
        }
    }
}

/// A key as given in the config: never printed.
#[derive(Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// The key's text.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"***\"")
    }
}

impl FromStr for Secret {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Secret(s.to_string()))
    }
}

type Digest32 = [u8; 32];

fn digest(key: &[u8]) -> Digest32 {
    Sha256::digest(key).into()
}

/// The configured keys, by scope, as digests.
#[derive(Clone, Default)]
pub struct ApiKeys {
    keys: Vec<(Scope, Digest32)>,
}

impl fmt::Debug for ApiKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ApiKeys({} keys)", self.keys.len())
    }
}

/// Where a request needs no key (a `HEAD` probe of a public page is as public as its `GET`).
fn is_public(method: &Method, path: &str) -> bool {
    (method == Method::GET || method == Method::HEAD)
        && (path == "/"
            || path == "/health"
            || path == "/openapi.json"
            || path.starts_with("/ui/")
            || path.starts_with("/assets/"))
}

/// The scope a request needs, or `None` when it is public.
pub fn required_scope(method: &Method, path: &str) -> Option<Scope> {
    if is_public(method, path) {
        return None;
    }
    // Alert rules carry webhook URLs, which often hold a token: admin only, reads included.
    if path.starts_with("/admin") || path.starts_with("/alerts") {
        Some(Scope::Admin)
    } else if method == Method::POST
        && (path == "/runs" || path == "/ingest" || path == "/v1/traces")
    {
        Some(Scope::Ingest)
    } else {
        Some(Scope::Read)
    }
}

impl ApiKeys {
    /// Keys for each scope (empty lists: none). Empty keys are ignored.
    pub fn new(ingest: &[Secret], read: &[Secret], admin: &[Secret]) -> ApiKeys {
        let mut keys = Vec::new();
        for (scope, list) in [
            (Scope::Ingest, ingest),
            (Scope::Read, read),
            (Scope::Admin, admin),
        ] {
            keys.extend(
                list.iter()
                    .filter(|k| !k.0.is_empty())
                    .map(|k| (scope, digest(k.0.as_bytes()))),
            );
        }
        ApiKeys { keys }
    }

    /// Whether any key is configured (if not, the API is open).
    pub fn enabled(&self) -> bool {
        !self.keys.is_empty()
    }

    /// The scopes of `key`: every configured key is compared, in constant time.
    fn scopes_of(&self, key: &str) -> Vec<Scope> {
        let given = digest(key.as_bytes());
        self.keys
            .iter()
            .filter(|(_, d)| bool::from(d.ct_eq(&given)))
            .map(|(s, _)| *s)
            .collect()
    }

    /// Lets the request through, or says why not (401 without a usable key, 403 for a key
    /// without the scope).
    pub fn check(
        &self,
        method: &Method,
        path: &str,
        authorization: Option<&header::HeaderValue>,
    ) -> Result<(), ApiError> {
        if !self.enabled() {
            return Ok(());
        }
        let Some(scope) = required_scope(method, path) else {
            return Ok(());
        };
        let Some(value) = authorization else {
            return Err(ApiError::Unauthorized(format!(
                "{method} {path} needs an API key with the `{}` scope: send `Authorization: Bearer <key>`",
                scope.as_str()
            )));
        };
        let key = value
            .to_str()
            .ok()
            .and_then(|v| {
                let (scheme, rest) = v.trim().split_once(' ')?;
                scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
            })
            .ok_or_else(|| {
                ApiError::Unauthorized(
                    "the Authorization header must be `Bearer <key>`".to_string(),
                )
            })?;
        let scopes = self.scopes_of(key);
        if scopes.is_empty() {
            return Err(ApiError::Unauthorized("unknown API key".to_string()));
        }
        if scopes.contains(&scope) || scopes.contains(&Scope::Admin) {
            Ok(())
        } else {
            Err(ApiError::Forbidden(format!(
                "this key has the `{}` scope; {method} {path} needs `{}`",
                scopes[0].as_str(),
                scope.as_str()
            )))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> ApiKeys {
        ApiKeys::new(
            &["in-1".parse().unwrap()],
            &["read-1".parse().unwrap()],
            &["adm".parse().unwrap()],
        )
    }

    fn bearer(k: &str) -> header::HeaderValue {
        header::HeaderValue::from_str(&format!("Bearer {k}")).unwrap()
    }

    #[test]
    fn each_scope_opens_its_routes_only() {
        let k = keys();
        let post = Method::POST;
        let get = Method::GET;
        assert!(k.check(&post, "/ingest", Some(&bearer("in-1"))).is_ok());
        assert!(k.check(&post, "/v1/traces", Some(&bearer("in-1"))).is_ok());
        assert!(matches!(
            k.check(&post, "/v1/traces", Some(&bearer("read-1"))),
            Err(ApiError::Forbidden(_))
        ));
        assert!(matches!(
            k.check(&get, "/runs", Some(&bearer("in-1"))),
            Err(ApiError::Forbidden(_))
        ));
        assert!(k.check(&get, "/runs", Some(&bearer("read-1"))).is_ok());
        assert!(matches!(
            k.check(&post, "/runs", Some(&bearer("read-1"))),
            Err(ApiError::Forbidden(_))
        ));
        assert!(matches!(
            k.check(&post, "/alerts", Some(&bearer("read-1"))),
            Err(ApiError::Forbidden(_))
        ));
        assert!(matches!(
            k.check(&get, "/alerts", Some(&bearer("read-1"))),
            Err(ApiError::Forbidden(_))
        ));
        for (m, p) in [(&post, "/alerts"), (&get, "/runs"), (&post, "/ingest")] {
            assert!(k.check(m, p, Some(&bearer("adm"))).is_ok(), "{m} {p}");
        }
        assert!(matches!(
            k.check(&get, "/steps", None),
            Err(ApiError::Unauthorized(_))
        ));
        assert!(matches!(
            k.check(&get, "/steps", Some(&bearer("read-2"))),
            Err(ApiError::Unauthorized(_))
        ));
        assert!(k.check(&get, "/health", None).is_ok());
    }

    #[test]
    fn no_keys_means_open_and_secrets_do_not_print() {
        assert!(ApiKeys::default()
            .check(&Method::POST, "/ingest", None)
            .is_ok());
        let s: Secret = "hunter2".parse().unwrap();
        assert_eq!(format!("{s:?}"), "\"***\"");
        assert!(!format!("{:?}", keys()).contains("in-1"));
    }
}
