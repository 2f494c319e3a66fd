//! The web UI: hand-written HTML, CSS and JavaScript modules compiled into the binary
//! (`xray-server/ui/`), served at `/` (the page) and `/ui/{file}` (its assets). The page routes
//! with the URL's fragment (`/#/runs/{id}`), so it never shadows an API path, and reads only the
//! JSON API.
//!
//! Asset URLs carry no content hash, so every answer says `no-cache` with an `ETag`: browsers
//! revalidate and get `304 Not Modified` until the server is upgraded.

use super::error::ApiError;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{web, HttpRequest, HttpResponse};

/// One embedded file.
struct Asset {
    /// Its name under `/ui/`.
    name: &'static str,
    /// Its `Content-Type`.
    content_type: &'static str,
    /// Its bytes.
    body: &'static str,
    /// A hash of its bytes, for the `ETag`.
    hash: u64,
}

/// FNV-1a, at compile time.
const fn fnv1a(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut i = 0;
    while i < bytes.len() {
        hash ^= bytes[i] as u64;
        hash = hash.wrapping_mul(0x100_0000_01b3);
        i += 1;
    }
    hash
}

macro_rules! asset {
    ($name:literal, $content_type:expr) => {
        Asset {
            name: $name,
            content_type: $content_type,
            body: include_str!(concat!("../../ui/", $name)),
            hash: fnv1a(include_str!(concat!("../../ui/", $name)).as_bytes()),
        }
    };
}

const JS: &str = "text/javascript; charset=utf-8";

/// The page itself, served at `/`.
const INDEX: Asset = asset!("index.html", "text/html; charset=utf-8");

/// Everything under `/ui/`.
const ASSETS: &[Asset] = &[
    asset!("style.css", "text/css; charset=utf-8"),
    asset!("favicon.svg", "image/svg+xml"),
    asset!("app.js", JS),
    asset!("api.js", JS),
    asset!("dom.js", JS),
    asset!("runs.js", JS),
    asset!("run.js", JS),
    asset!("item.js", JS),
    asset!("steps.js", JS),
    asset!("diff.js", JS),
    asset!("pipelines.js", JS),
    asset!("chart.js", JS),
    asset!("dashboard.js", JS),
    asset!("compare.js", JS),
];

/// What the page may load and run: only its own files and the API (no inline script, no
/// third-party origin), so text from the data can never become code.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// Registers `GET /` and `GET /ui/{file}`.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/", web::get().to(index))
        .route("/ui/{file}", web::get().to(asset));
}

/// `GET /`: the page.
pub async fn index(req: HttpRequest) -> HttpResponse {
    respond(&req, &INDEX)
}

/// `GET /ui/{file}`: a script, the style sheet or the icon.
pub async fn asset(req: HttpRequest, path: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let name = path.into_inner();
    ASSETS
        .iter()
        .find(|a| a.name == name)
        .map(|a| respond(&req, a))
        .ok_or_else(|| {
            let known: Vec<&str> = ASSETS.iter().map(|a| a.name).collect();
            ApiError::NotFound(format!(
                "no UI file `{name}`; files: {} (the UI itself is at /)",
                known.join(", ")
            ))
        })
}

fn respond(req: &HttpRequest, asset: &Asset) -> HttpResponse {
    let etag = format!("\"{:016x}\"", asset.hash);
    let fresh = req
        .headers()
        .get_all(header::IF_NONE_MATCH)
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|tag| {
            let tag = tag.trim();
            tag == "*" || tag.trim_start_matches("W/") == etag
        });
    let mut res = if fresh {
        HttpResponse::NotModified()
    } else {
        HttpResponse::Ok()
    };
    res.insert_header((header::ETAG, etag))
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header((header::REFERRER_POLICY, "no-referrer"));
    if asset.content_type.starts_with("text/html") {
        res.insert_header((header::CONTENT_SECURITY_POLICY, CSP))
            .insert_header((header::X_FRAME_OPTIONS, "DENY"));
    }
    if fresh {
        return res.finish();
    }
    res.insert_header((
        header::CONTENT_TYPE,
        HeaderValue::from_static(asset.content_type),
    ))
    .body(asset.body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_asset_the_page_and_scripts_name_is_served() {
        let names: Vec<&str> = ASSETS.iter().map(|a| a.name).collect();
        let texts = std::iter::once(INDEX.body).chain(ASSETS.iter().map(|a| a.body));
        for text in texts {
            for part in text.split("/ui/").skip(1) {
                let name: String = part
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '.' || *c == '_')
                    .collect();
                assert!(
                    names.contains(&name.as_str()),
                    "`/ui/{name}` is not embedded"
                );
            }
            for part in text.split("from './").skip(1) {
                let name = part.split('\'').next().unwrap_or_default();
                assert!(names.contains(&name), "module `./{name}` is not embedded");
            }
        }
    }

    #[test]
    fn hashes_differ_between_files() {
        let mut hashes: Vec<u64> = ASSETS.iter().map(|a| a.hash).collect();
        hashes.sort_unstable();
        hashes.dedup();
        assert_eq!(hashes.len(), ASSETS.len());
    }
}
