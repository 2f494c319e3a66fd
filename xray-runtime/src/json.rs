//! Values as capped JSON text: serde_json writes into a buffer that stops at the cap, so a huge
//! value costs no more than its first bytes, and what is over the cap (or fails to serialise)
//! becomes a note saying so. Knows nothing of steps or runs.

use serde::Serialize;
use serde_json::Value;
use std::io;
use xray_wire::JsonText;

/// Collects serialised JSON at the end of a buffer and stops the serialiser once the value's
/// text would pass `end`.
struct Capped<'a> {
    buf: &'a mut Vec<u8>,
    end: usize,
    over: bool,
}

impl io::Write for Capped<'_> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.write_all(data).map(|()| data.len())
    }

    /// serde_json writes many small pieces per value (`{`, `"`, a key…): inlined, the
    /// one-byte ones become plain stores rather than calls to `memcpy`.
    #[inline(always)]
    fn write_all(&mut self, data: &[u8]) -> io::Result<()> {
        if self.buf.len() + data.len() > self.end {
            self.over = true;
            let room = self.end.saturating_sub(self.buf.len());
            self.buf.extend_from_slice(&data[..room]);
            return Err(io::Error::other("over the size limit"));
        }
        self.buf.extend_from_slice(data);
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Appends a value's JSON text to `buf`, capped at `max` bytes; returns how many bytes it took
/// (0 for `null`, which is no value).
///
/// A value that cannot be serialised becomes `{"_xray_error": "..."}`. A value whose JSON is
/// over `max` bytes becomes `{"_xray_truncated": true, "limit_bytes": max, "preview": "<its first
/// max/2 bytes>"}`; serialisation stops at the limit, so the cost is bounded too.
pub(crate) fn append_capped_json<T: Serialize + ?Sized>(
    buf: &mut Vec<u8>,
    value: &T,
    max: usize,
) -> usize {
    let start = buf.len();
    let mut ser = serde_json::Serializer::new(Capped {
        end: start.saturating_add(max),
        buf: &mut *buf,
        over: false,
    });
    let result = value.serialize(&mut ser);
    let over = ser.into_inner().over;
    match result {
        Err(e) => failed_json(buf, start, max, over, e),
        Ok(()) if &buf[start..] == b"null" => buf.truncate(start),
        Ok(()) => {}
    }
    buf.len() - start
}

/// Replaces a value's partial JSON text (from `start`) by the note that stands for it: the value
/// was over `max` bytes (`over`), or could not be serialised.
#[cold]
#[inline(never)]
fn failed_json(buf: &mut Vec<u8>, start: usize, max: usize, over: bool, e: serde_json::Error) {
    let note = if over {
        truncated(&String::from_utf8_lossy(&buf[start..]), max)
    } else {
        serde_json::json!({"_xray_error": format!("could not be serialised: {e}")})
    };
    buf.truncate(start);
    // Writing a `Value` to a `Vec` cannot fail.
    let _ = serde_json::to_writer(&mut *buf, &note);
}

/// The note that stands for a value whose JSON `text` is over `max` bytes.
pub fn truncated(text: &str, max: usize) -> Value {
    let preview = &text[..text.floor_char_boundary(max / 2)];
    serde_json::json!({"_xray_truncated": true, "limit_bytes": max, "preview": preview})
}

/// Whether capped JSON text is the note of a value over its cap.
pub fn is_truncated(text: &str) -> bool {
    text.starts_with("{\"_xray_truncated\":true")
}

/// A value as JSON text, capped at `max` bytes (see [`append_capped_json`]); `None` for `null`.
/// Item details are capped at `Config::max_details_bytes`, inputs and outputs at
/// `Config::max_io_bytes`.
pub(crate) fn capped_json<T: Serialize + ?Sized>(value: &T, max: usize) -> Option<Box<str>> {
    let mut buf = Vec::new();
    if append_capped_json(&mut buf, value, max) == 0 {
        return None;
    }
    String::from_utf8(buf).ok().map(String::into_boxed_str)
}

/// A value's `Debug` text as a JSON string, capped at `max` bytes (formatting stops there).
pub(crate) fn capped_debug<T: std::fmt::Debug + ?Sized>(value: &T, max: usize) -> Box<str> {
    struct Limit {
        text: String,
        max: usize,
    }
    impl std::fmt::Write for Limit {
        fn write_str(&mut self, s: &str) -> std::fmt::Result {
            if self.text.len() + s.len() > self.max {
                let room = s.floor_char_boundary(self.max.saturating_sub(self.text.len()));
                self.text.push_str(&s[..room]);
                return Err(std::fmt::Error);
            }
            self.text.push_str(s);
            Ok(())
        }
    }
    let mut out = Limit {
        text: String::new(),
        max,
    };
    if std::fmt::write(&mut out, format_args!("{value:?}")).is_err() && out.text.len() >= max {
        out.text.push('…');
    }
    serde_json::to_string(&out.text)
        .unwrap_or_default()
        .into_boxed_str()
}

/// JSON text this crate produced, checked and wrapped for the wire (on the shipper's thread).
pub(crate) fn to_json_text(text: Box<str>) -> JsonText {
    JsonText::parse(text.into_string()).unwrap_or_else(|e| {
        JsonText::of(&format!("<invalid JSON: {e}>"))
            .unwrap_or_else(|| JsonText(serde_json::value::RawValue::NULL.to_owned()))
    })
}

/// [`capped_json`] as a JSON value, for the few places that need one (decisions, attributes).
pub(crate) fn details_json<D: Serialize + ?Sized>(details: &D, max: usize) -> Option<Value> {
    capped_json(details, max).and_then(|text| serde_json::from_str(&text).ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn details_are_capped_and_never_fail() {
        let big = "é".repeat(5000);
        let v = details_json(&json!({"text": big}), 1000).unwrap();
        assert_eq!(v["_xray_truncated"], true);
        assert_eq!(v["limit_bytes"], 1000);
        assert!(v["preview"].as_str().unwrap().starts_with("{\"text\":\"éé"));
        assert!(v["preview"].as_str().unwrap().len() <= 500);
        let huge: Vec<u64> = (0..1_000_000).collect();
        let text = capped_json(&huge, 32 * 1024).unwrap();
        assert!(
            text.len() < 17 * 1024,
            "serialisation stopped at the limit: {}",
            text.len()
        );
        let debug = capped_debug(&huge, 100);
        assert!(debug.len() < 110 && debug.ends_with("…\""), "{debug}");
        assert_eq!(&*capped_debug(&Some(1), 100), "\"Some(1)\"");
        assert_eq!(details_json(&(), 10), None);
        let mut bad = std::collections::HashMap::new();
        bad.insert((1, 2), 3);
        assert!(details_json(&bad, 100).unwrap()["_xray_error"].is_string());
    }

    #[test]
    fn the_truncation_marker_appears_exactly_past_each_limit() {
        let value = json!({"name": "x".repeat(100), "n": [1.5, 2, 3]});
        let text = serde_json::to_string(&value).unwrap();
        for max in [
            0,
            1,
            2,
            10,
            64,
            text.len() - 1,
            text.len(),
            text.len() + 1,
            4096,
        ] {
            let got = capped_json(&value, max).unwrap();
            if text.len() <= max {
                assert_eq!(&*got, text, "limit {max}: kept whole");
                continue;
            }
            let note: Value = serde_json::from_str(&got).unwrap();
            assert_eq!(note["_xray_truncated"], true, "limit {max}");
            assert_eq!(note["limit_bytes"], max);
            let preview = note["preview"].as_str().unwrap();
            assert!(
                preview.len() <= max / 2 && text.starts_with(preview),
                "{max}"
            );
        }
    }
}
