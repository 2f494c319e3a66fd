//! The rule for names, ids and free text, defined once: the server refuses what breaks it, and
//! the SDK fits what it sends to it, so a user's odd id or reason never costs them the event.
//!
//! A name (run id, step id, pipeline, step name, rejection reason, item id, selected item,
//! correlation id) is 1 to [`MAX_NAME_LEN`] bytes of UTF-8 with no NUL; free text (an error) has
//! no NUL (PostgreSQL's text columns cannot hold it). [`Name`] carries the rule in the wire's
//! types; this module must not know about the events that use it.

use serde::de::{Deserializer, Error as _};
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;

/// Longest run id, step id, pipeline, step name, rejection reason, item id or correlation id
/// accepted, in bytes.
pub const MAX_NAME_LEN: usize = 512;

/// What [`fit_name`] makes of an empty name.
pub const EMPTY_NAME: &str = "(empty)";

/// What [`fit_name`] puts at the end of a name it cut.
pub const CUT_MARK: &str = "…";

/// What [`fit_name`] and [`fit_text`] put in place of a NUL.
pub const NUL_REPLACEMENT: char = '\u{FFFD}';

/// A name: 1 to [`MAX_NAME_LEN`] bytes of UTF-8, no NUL. Checked when deserialised, so a
/// request that holds one holds a valid one; the SDK makes one with [`Name::fit`].
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct Name(String);

/// Why a text is not a valid [`Name`]; said after the field's path (`run_id: must not be empty`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    /// It holds a NUL.
    #[error("must not contain NUL (\\u0000) characters")]
    Nul,
    /// It is empty.
    #[error("must not be empty")]
    Empty,
    /// It is over [`MAX_NAME_LEN`] bytes long (its length).
    #[error("is {0} bytes long; at most {MAX_NAME_LEN} are accepted")]
    TooLong(usize),
}

impl Name {
    /// `value` as a name, or why it is not one.
    pub fn new(value: impl Into<String>) -> Result<Name, NameError> {
        let value = value.into();
        Name::check(&value)?;
        Ok(Name(value))
    }

    /// `value` made a valid name by [`fit_name`]; allocates only when it is not one already.
    pub fn fit(value: impl Into<String>) -> Name {
        let mut value = value.into();
        fit_name_in_place(&mut value);
        Name(value)
    }

    /// Why `value` is not a valid name, if it is not.
    pub fn check(value: &str) -> Result<(), NameError> {
        if !text_is_valid(value) {
            Err(NameError::Nul)
        } else if value.is_empty() {
            Err(NameError::Empty)
        } else if value.len() > MAX_NAME_LEN {
            Err(NameError::TooLong(value.len()))
        } else {
            Ok(())
        }
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The name's text, owned.
    pub fn into_string(self) -> String {
        self.0
    }
}

impl std::ops::Deref for Name {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for Name {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl std::borrow::Borrow<str> for Name {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<Name> for String {
    fn from(name: Name) -> String {
        name.0
    }
}

impl PartialEq<str> for Name {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialEq<&str> for Name {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

impl<'de> Deserialize<'de> for Name {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Name::new(String::deserialize(d)?).map_err(D::Error::custom)
    }
}

#[cfg(feature = "openapi")]
impl utoipa::PartialSchema for Name {
    /// A string of 1 to 512 bytes without NUL (the length is counted in characters by JSON
    /// Schema, so 512 is the most a valid name can have; the server counts bytes).
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        name_schema().into()
    }
}

/// [`Name`]'s schema as an object schema (also what a map's keys are, where they are names).
#[cfg(feature = "openapi")]
pub(crate) fn name_schema() -> utoipa::openapi::schema::Object {
    use utoipa::openapi::schema::{ObjectBuilder, Type};
    ObjectBuilder::new()
        .schema_type(Type::String)
        .min_length(Some(1))
        .max_length(Some(MAX_NAME_LEN))
        .pattern(Some("^[^\\u0000]*$"))
        .description(Some(
            "A name: 1 to 512 bytes of UTF-8, without NUL (\\u0000).",
        ))
        .build()
}

#[cfg(feature = "openapi")]
impl utoipa::ToSchema for Name {}

/// Deserialises a step's rejections, refusing a reason that is not a valid [`Name`] (the map's
/// keys stay `String`: the SDK fits and merges them on its shipper thread, see `xray::fit`).
pub(crate) fn reasons<'de, D, V>(d: D) -> Result<BTreeMap<String, V>, D::Error>
where
    D: Deserializer<'de>,
    V: Deserialize<'de>,
{
    let map = BTreeMap::<String, V>::deserialize(d)?;
    for reason in map.keys() {
        if let Err(e) = Name::check(reason) {
            let shown: String = reason.chars().take(40).collect();
            let more = if shown.len() < reason.len() {
                "…"
            } else {
                ""
            };
            return Err(D::Error::custom(format_args!(
                "the reason {shown:?}{more} {e}"
            )));
        }
    }
    Ok(map)
}

/// Whether `value` is a valid name: 1 to [`MAX_NAME_LEN`] bytes, no NUL.
pub fn name_is_valid(value: &str) -> bool {
    Name::check(value).is_ok()
}

/// Whether `value` is valid free text: no NUL.
pub fn text_is_valid(value: &str) -> bool {
    !value.as_bytes().contains(&0)
}

/// `value` made a valid name: as it is when valid; empty becomes [`EMPTY_NAME`], a NUL becomes
/// U+FFFD, and a name over [`MAX_NAME_LEN`] bytes is cut at a character boundary and ends with
/// [`CUT_MARK`], within the limit.
pub fn fit_name(value: &str) -> Cow<'_, str> {
    if name_is_valid(value) {
        return Cow::Borrowed(value);
    }
    if value.is_empty() {
        return Cow::Borrowed(EMPTY_NAME);
    }
    let text = fit_text(value);
    if text.len() <= MAX_NAME_LEN {
        return Cow::Owned(text.into_owned());
    }
    let mut end = MAX_NAME_LEN - CUT_MARK.len();
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let mut cut = String::with_capacity(end + CUT_MARK.len());
    cut.push_str(&text[..end]);
    cut.push_str(CUT_MARK);
    Cow::Owned(cut)
}

/// `value` made valid free text: each NUL becomes U+FFFD.
pub fn fit_text(value: &str) -> Cow<'_, str> {
    if text_is_valid(value) {
        Cow::Borrowed(value)
    } else {
        Cow::Owned(value.replace('\0', NUL_REPLACEMENT.encode_utf8(&mut [0; 4])))
    }
}

/// [`fit_name`] in place: allocates only when `value` is not a valid name.
pub fn fit_name_in_place(value: &mut String) {
    if !name_is_valid(value) {
        *value = fit_name(value).into_owned();
    }
}

/// [`fit_text`] in place: allocates only when `value` holds a NUL.
pub fn fit_text_in_place(value: &mut String) {
    if !text_is_valid(value) {
        *value = fit_text(value).into_owned();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_valid_name_is_left_as_it_is() {
        for name in ["a", "price_too_high", "é", &"x".repeat(MAX_NAME_LEN)] {
            assert!(matches!(fit_name(name), Cow::Borrowed(n) if n == name));
        }
    }

    #[test]
    fn an_empty_name_becomes_the_placeholder() {
        assert_eq!(fit_name(""), EMPTY_NAME);
        assert!(name_is_valid(EMPTY_NAME));
        let mut s = String::new();
        fit_name_in_place(&mut s);
        assert_eq!(s, "(empty)");
    }

    #[test]
    fn a_nul_becomes_the_replacement_character() {
        assert_eq!(fit_name("bad\0thing"), "bad\u{FFFD}thing");
        assert_eq!(fit_name("\0"), "\u{FFFD}");
        assert_eq!(fit_text("bad\0thing\0"), "bad\u{FFFD}thing\u{FFFD}");
        assert!(matches!(fit_text("fine"), Cow::Borrowed("fine")));
        let mut s = String::from("a\0b");
        fit_text_in_place(&mut s);
        assert_eq!(s, "a\u{FFFD}b");
    }

    #[test]
    fn a_long_name_is_cut_with_a_mark_within_the_limit() {
        let long = "y".repeat(600);
        let fitted = fit_name(&long);
        assert_eq!(fitted.len(), MAX_NAME_LEN);
        assert!(fitted.ends_with(CUT_MARK));
        assert!(fitted.starts_with(&"y".repeat(MAX_NAME_LEN - CUT_MARK.len())));
        assert!(name_is_valid(&fitted));
        // One byte over is cut too.
        assert!(name_is_valid(&fit_name(&"z".repeat(MAX_NAME_LEN + 1))));
    }

    #[test]
    fn a_cut_falls_on_a_character_boundary() {
        // Every offset of a multi-byte character against the cut (2, 3 and 4 bytes).
        for c in ['é', '€', '😀'] {
            for pad in 0..4 {
                let value = format!("{}{}", "a".repeat(pad), c.to_string().repeat(300));
                let fitted = fit_name(&value);
                assert!(fitted.len() <= MAX_NAME_LEN, "{c} {pad}: {}", fitted.len());
                assert!(fitted.len() > MAX_NAME_LEN - CUT_MARK.len() - 4);
                assert!(fitted.ends_with(CUT_MARK));
                assert!(value.starts_with(fitted.strip_suffix(CUT_MARK).unwrap()));
                assert!(name_is_valid(&fitted));
            }
        }
    }

    #[test]
    fn nuls_that_push_a_name_over_the_limit_are_cut_too() {
        // 400 NULs are 400 bytes; as U+FFFD they are 1200.
        let fitted = fit_name(&"\0".repeat(400)).into_owned();
        assert!(name_is_valid(&fitted), "{}", fitted.len());
        assert!(fitted.starts_with('\u{FFFD}'));
        assert!(fitted.ends_with(CUT_MARK));
    }

    #[test]
    fn a_name_is_checked_when_deserialised_and_says_why() {
        let name: Name = serde_json::from_str("\"p\"").unwrap();
        assert_eq!(name, "p");
        assert_eq!(serde_json::to_string(&name).unwrap(), "\"p\"");
        for (json, why) in [
            ("\"\"".to_string(), "must not be empty"),
            ("\"a\\u0000b\"".to_string(), "must not contain NUL"),
            (
                format!("\"{}\"", "x".repeat(513)),
                "is 513 bytes long; at most 512",
            ),
        ] {
            let err = serde_json::from_str::<Name>(&json).unwrap_err().to_string();
            assert!(err.contains(why), "{json}: {err}");
        }
        assert_eq!(Name::check(&"x".repeat(MAX_NAME_LEN)), Ok(()));
        assert_eq!(Name::new(""), Err(NameError::Empty));
        assert_eq!(Name::fit(""), EMPTY_NAME);
        assert_eq!(Name::fit("ok").into_string(), "ok");
    }

    #[test]
    fn a_bad_reason_is_refused_by_name() {
        #[derive(Debug, Deserialize)]
        struct Step {
            #[serde(deserialize_with = "reasons")]
            rejections: BTreeMap<String, u32>,
        }
        let ok: Step = serde_json::from_str(r#"{"rejections":{"a":1}}"#).unwrap();
        assert_eq!(ok.rejections["a"], 1);
        let err = serde_json::from_str::<Step>(r#"{"rejections":{"a":1,"":2}}"#)
            .unwrap_err()
            .to_string();
        assert!(err.contains(r#"the reason "" must not be empty"#), "{err}");
        let long = format!(r#"{{"rejections":{{"{}":1}}}}"#, "r".repeat(600));
        let err = serde_json::from_str::<Step>(&long).unwrap_err().to_string();
        assert!(err.contains("is 600 bytes long"), "{err}");
        assert!(err.len() < 200, "{err}");
    }

    #[test]
    fn fitting_is_idempotent() {
        for value in ["", "\0", "ok", &"é".repeat(400), &"q\0".repeat(300)] {
            let once = fit_name(value).into_owned();
            assert!(matches!(fit_name(&once), Cow::Borrowed(_)), "{value:?}");
        }
    }
}
