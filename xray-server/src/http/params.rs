//! Query-string parsing with messages that name the parameter and what it accepts. An unknown
//! or repeated parameter, or a value it cannot read, is refused, never ignored.

use super::error::ApiError;
use crate::store::filter::Cursor;
use chrono::{DateTime, NaiveDate, Utc};
use std::collections::HashMap;
use std::str::FromStr;
use xray_wire::ParseEnumError;

/// Largest page size.
pub const MAX_LIMIT: i64 = 1000;
/// Page size when `limit` is absent.
pub const DEFAULT_LIMIT: i64 = 50;

/// The OpenAPI schema of a time parameter (`since`, `until`): what [`Params::time`] accepts,
/// an RFC 3339 time or a date.
pub struct TimeParam;

impl utoipa::PartialSchema for TimeParam {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{
            KnownFormat, ObjectBuilder, OneOfBuilder, SchemaFormat, Type,
        };
        let string = |format| {
            ObjectBuilder::new()
                .schema_type(Type::String)
                .format(Some(SchemaFormat::KnownFormat(format)))
        };
        OneOfBuilder::new()
            .item(string(KnownFormat::DateTime))
            .item(string(KnownFormat::Date))
            .description(Some(
                "An RFC 3339 time (`2026-11-26T12:00:00Z`) or a date (`2026-11-26`).",
            ))
            .into()
    }
}

impl utoipa::ToSchema for TimeParam {}

/// The OpenAPI schema of a compare selector (`a`, `b` of `/pipelines/{p}/compare`): a version,
/// or a window of dates (the endpoint also takes RFC 3339 times, which a pattern cannot say
/// without also allowing impossible ones).
pub struct SelectorParam;

impl utoipa::PartialSchema for SelectorParam {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{ObjectBuilder, Type};
        const DATE: &str = "20[0-9]{2}-(0[1-9]|1[0-2])-(0[1-9]|1[0-9]|2[0-8])";
        ObjectBuilder::new()
            .schema_type(Type::String)
            .pattern(Some(format!(
                "^(version:[^\\x00]+|(since|until):{DATE}|since:{DATE},until:{DATE})$"
            )))
            .description(Some(
                "`version:1.4.2`, or `since:<t>,until:<t>` (either part may be left out; times RFC 3339 or dates).",
            ))
            .into()
    }
}

impl utoipa::ToSchema for SelectorParam {}

/// The OpenAPI schema of a `cursor` parameter: the shape of a [`Cursor`]'s text, every string
/// of which [`Params::cursor`] accepts.
pub struct CursorParam;

impl utoipa::PartialSchema for CursorParam {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{ObjectBuilder, Type};
        ObjectBuilder::new()
            .schema_type(Type::String)
            .pattern(Some("^-?[0-9]{1,18}-([0-9a-fA-F]{2})*$"))
            .description(Some("The previous page's `next_cursor`."))
            .into()
    }
}

impl utoipa::ToSchema for CursorParam {}

/// A time given as `name`: RFC 3339 (`2026-11-26T12:00:00Z`) or a date (`2026-11-26`,
/// midnight UTC); as µs.
pub fn parse_time(name: &str, v: &str) -> Result<i64, ApiError> {
    DateTime::parse_from_rfc3339(v)
        .map(|t| t.with_timezone(&Utc))
        .ok()
        .or_else(|| {
            NaiveDate::parse_from_str(v, "%Y-%m-%d")
                .ok()
                .and_then(|d| d.and_hms_opt(0, 0, 0))
                .map(|t| t.and_utc())
        })
        .map(|t| t.timestamp_micros())
        .ok_or_else(|| {
            ApiError::BadRequest(format!(
                "`{name}` must be an RFC 3339 time such as 2026-11-26T12:00:00Z or a date such as 2026-11-26, got `{v}`"
            ))
        })
}

/// Refuses a NUL character in a path segment or query value: no stored name can contain one
/// (PostgreSQL text cannot), so asking for one is a client error, not a server failure.
pub fn check_segment(name: &str, value: &str) -> Result<(), ApiError> {
    if value.contains('\0') {
        return Err(ApiError::BadRequest(format!(
            "`{name}` must not contain NUL (%00) characters"
        )));
    }
    Ok(())
}

/// Refuses a path whose percent-encoded bytes are not UTF-8 (`/runs/%FF`): ids are text, and the
/// router would otherwise read such bytes as U+FFFD and look up a different id.
pub fn check_path_utf8(path: &str) -> Result<(), ApiError> {
    let hex = |b: u8| (b as char).to_digit(16);
    let raw = path.as_bytes();
    let mut bytes = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        match (
            raw[i],
            raw.get(i + 1).and_then(|b| hex(*b)),
            raw.get(i + 2).and_then(|b| hex(*b)),
        ) {
            (b'%', Some(hi), Some(lo)) => {
                bytes.push((hi * 16 + lo) as u8);
                i += 3;
            }
            (b, _, _) => {
                bytes.push(b);
                i += 1;
            }
        }
    }
    match std::str::from_utf8(&bytes) {
        Ok(_) => Ok(()),
        Err(e) => Err(ApiError::BadRequest(format!(
            "the path `{path}` is not UTF-8 once percent-decoded (byte {} is not text); ids are UTF-8 text",
            e.valid_up_to()
        ))),
    }
}

/// A query string checked against the parameters an endpoint accepts.
#[derive(Debug)]
pub struct Params {
    values: HashMap<String, String>,
}

impl Params {
    /// Parses `query`, refusing parameters not in `allowed` (with a suggestion) and repeats.
    /// Empty values (`pipeline=`) count as absent.
    pub fn parse(query: &str, allowed: &[&str]) -> Result<Params, ApiError> {
        let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query)
            .map_err(|e| ApiError::BadRequest(format!("malformed query string: {e}")))?;
        let mut values = HashMap::new();
        for (key, value) in pairs {
            if !allowed.contains(&key.as_str()) {
                let hint = allowed
                    .iter()
                    .map(|a| (strsim::damerau_levenshtein(&key, a), *a))
                    .filter(|(d, a)| *d <= 2.max(a.len() / 4))
                    .min_by_key(|(d, _)| *d)
                    .map(|(_, a)| format!(" (did you mean `{a}`?)"))
                    .unwrap_or_default();
                let accepted = if allowed.is_empty() {
                    "this endpoint takes no query parameters".to_string()
                } else {
                    format!("accepted: {}", allowed.join(", "))
                };
                return Err(ApiError::BadRequest(format!(
                    "unknown query parameter `{key}`{hint}; {accepted}"
                )));
            }
            if values.contains_key(&key) {
                return Err(ApiError::BadRequest(format!(
                    "query parameter `{key}` is given more than once"
                )));
            }
            check_segment(&key, &value)?;
            if !value.is_empty() {
                values.insert(key, value);
            }
        }
        Ok(Params { values })
    }

    /// A text parameter.
    pub fn text(&self, name: &str) -> Option<String> {
        self.values.get(name).cloned()
    }

    /// A finite number.
    pub fn number(&self, name: &str) -> Result<Option<f64>, ApiError> {
        self.values
            .get(name)
            .map(|v| match v.parse::<f64>() {
                Ok(n) if n.is_finite() => Ok(n),
                _ => Err(ApiError::BadRequest(format!(
                    "`{name}` must be a number (such as 0.9 or 5000), got `{v}`"
                ))),
            })
            .transpose()
    }

    /// One of a fixed set of names (step type, status).
    pub fn name<T: FromStr<Err = ParseEnumError>>(
        &self,
        name: &str,
    ) -> Result<Option<T>, ApiError> {
        self.values
            .get(name)
            .map(|v| {
                v.parse::<T>()
                    .map_err(|e| ApiError::BadRequest(format!("`{name}`: {e}")))
            })
            .transpose()
    }

    /// A time: RFC 3339 (`2026-11-26T12:00:00Z`) or a date (`2026-11-26`, midnight UTC); as µs.
    pub fn time(&self, name: &str) -> Result<Option<i64>, ApiError> {
        self.values
            .get(name)
            .map(|v| parse_time(name, v))
            .transpose()
    }

    /// The page size: 1..=1000, 50 by default (or `default`).
    pub fn limit(&self, default: i64) -> Result<i64, ApiError> {
        match self.values.get("limit") {
            None => Ok(default),
            Some(v) => match v.parse::<i64>() {
                Ok(n) if (1..=MAX_LIMIT).contains(&n) => Ok(n),
                _ => Err(ApiError::BadRequest(format!(
                    "`limit` must be a whole number from 1 to {MAX_LIMIT}, got `{v}`"
                ))),
            },
        }
    }

    /// The keyset cursor from a previous page.
    pub fn cursor(&self) -> Result<Option<Cursor>, ApiError> {
        self.values
            .get("cursor")
            .map(|v| Cursor::parse(v).map_err(|e| ApiError::BadRequest(format!("`cursor` {e}"))))
            .transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use xray_wire::StepType;

    const ALLOWED: &[&str] = &["step_type", "rejection_rate_gt", "limit", "since"];

    fn err(r: Result<impl std::fmt::Debug, ApiError>) -> String {
        r.unwrap_err().to_string()
    }

    #[test]
    fn unknown_and_repeated_parameters_are_refused_with_a_hint() {
        let e = err(Params::parse("rejecton_rate_gt=0.9", ALLOWED));
        assert!(
            e.contains("`rejecton_rate_gt`") && e.contains("did you mean `rejection_rate_gt`"),
            "{e}"
        );
        let e = err(Params::parse("limit=1&limit=2", ALLOWED));
        assert!(e.contains("more than once"), "{e}");
    }

    #[test]
    fn paths_must_decode_to_utf8() {
        for ok in [
            "/runs/a%2Fb",
            "/runs/%E2%82%AC",
            "/runs/100%",
            "/runs/%G1",
            "/items/%",
        ] {
            assert!(check_path_utf8(ok).is_ok(), "{ok}");
        }
        for bad in ["/runs/%FF", "/runs/%e2%82", "/runs/x/items/%C3%28"] {
            assert!(err(check_path_utf8(bad)).contains("not UTF-8"), "{bad}");
        }
    }

    #[test]
    fn values_are_checked_and_named() {
        let p = Params::parse(
            "rejection_rate_gt=abc&step_type=filtr&limit=0&since=yesterday",
            ALLOWED,
        )
        .unwrap();
        assert!(err(p.number("rejection_rate_gt")).contains("`rejection_rate_gt` must be a number"));
        assert!(err(p.name::<StepType>("step_type")).contains("did you mean `filter`"));
        assert!(err(p.limit(50)).contains("`limit` must be a whole number from 1 to 1000"));
        assert!(err(p.time("since")).contains("`since` must be an RFC 3339 time"));
        let p = Params::parse("since=2026-11-26&rejection_rate_gt=NaN", ALLOWED).unwrap();
        assert_eq!(p.time("since").unwrap(), Some(1_795_651_200_000_000));
        assert!(p.number("rejection_rate_gt").is_err());
    }
}
