//! The rule for names, ids and free text, defined once: the server refuses what breaks it, and
//! the SDK fits what it sends to it, so a user's odd id or reason never costs them the event.
//!
//! A name (run id, step id, pipeline, step name, rejection reason, item id, selected item,
//! correlation id) is 1 to [`MAX_NAME_LEN`] bytes of UTF-8 with no NUL; free text (an error) has
//! no NUL (PostgreSQL's text columns cannot hold it).

use std::borrow::Cow;

/// Longest run id, step id, pipeline, step name, rejection reason, item id or correlation id
/// accepted, in bytes.
pub const MAX_NAME_LEN: usize = 512;

/// What [`fit_name`] makes of an empty name.
pub const EMPTY_NAME: &str = "(empty)";

/// What [`fit_name`] puts at the end of a name it cut.
pub const CUT_MARK: &str = "…";

/// What [`fit_name`] and [`fit_text`] put in place of a NUL.
pub const NUL_REPLACEMENT: char = '\u{FFFD}';

/// Whether `value` is a valid name: 1 to [`MAX_NAME_LEN`] bytes, no NUL.
pub fn name_is_valid(value: &str) -> bool {
    !value.is_empty() && value.len() <= MAX_NAME_LEN && text_is_valid(value)
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
    fn fitting_is_idempotent() {
        for value in ["", "\0", "ok", &"é".repeat(400), &"q\0".repeat(300)] {
            let once = fit_name(value).into_owned();
            assert!(matches!(fit_name(&once), Cow::Borrowed(_)), "{value:?}");
        }
    }
}
