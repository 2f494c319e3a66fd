//! Reading OTLP attributes: a key's value as text, a whole number, a number, or any JSON. It owns
//! how an OTLP value becomes a plain one, not what a key means.

use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue};
use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::{Map, Number, Value as Json};
use xray_wire::JsonText;

/// The value of `key` among `attrs` (the last one, if sent twice).
pub fn get<'a>(attrs: &'a [KeyValue], key: &str) -> Option<&'a Value> {
    attrs
        .iter()
        .rev()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref())
        .and_then(|v| v.value.as_ref())
}

/// A value as text: a string as it is, a number or boolean written out.
pub fn text(value: &Value) -> Option<String> {
    match value {
        Value::StringValue(s) => Some(s.clone()),
        Value::IntValue(i) => Some(i.to_string()),
        Value::DoubleValue(d) if d.is_finite() => Some(d.to_string()),
        Value::BoolValue(b) => Some(b.to_string()),
        _ => None,
    }
}

/// `Some` when [`text`] has a text for the value (so an item id can be read from it).
pub fn has_text(value: &Value) -> Option<()> {
    match value {
        Value::StringValue(_) | Value::IntValue(_) | Value::BoolValue(_) => Some(()),
        Value::DoubleValue(d) if d.is_finite() => Some(()),
        _ => None,
    }
}

/// A value as a whole number 0 or more: an integer, a whole double, or a string of digits.
pub fn count(value: &Value) -> Option<u64> {
    match value {
        Value::IntValue(i) => u64::try_from(*i).ok(),
        Value::DoubleValue(d) if d.is_finite() && d.fract() == 0.0 && *d >= 0.0 => {
            // Within u64 (checked above for sign): the cast saturates above it.
            Some(*d as u64)
        }
        Value::StringValue(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// A value as a finite number.
pub fn number(value: &Value) -> Option<f64> {
    match value {
        Value::IntValue(i) => Some(*i as f64),
        Value::DoubleValue(d) => Some(*d),
        Value::StringValue(s) => s.trim().parse().ok(),
        _ => None,
    }
    .filter(|f: &f64| f.is_finite())
}

/// A value as JSON: arrays and key-value lists become arrays and objects, bytes their hex text,
/// a non-finite double `null`.
pub fn json(value: &Value) -> Json {
    match value {
        Value::StringValue(s) => Json::String(s.clone()),
        Value::BoolValue(b) => Json::Bool(*b),
        Value::IntValue(i) => Json::Number((*i).into()),
        Value::DoubleValue(d) => Number::from_f64(*d).map_or(Json::Null, Json::Number),
        Value::ArrayValue(a) => Json::Array(a.values.iter().map(any_json).collect()),
        Value::KvlistValue(kv) => Json::Object(object(&kv.values, |_| true)),
        Value::BytesValue(b) => Json::String(b.iter().map(|x| format!("{x:02x}")).collect()),
        Value::StringValueStrindex(i) => Json::Number((*i).into()),
    }
}

fn any_json(value: &AnyValue) -> Json {
    value.value.as_ref().map_or(Json::Null, json)
}

/// The attributes whose key `keep` accepts, as a JSON object.
pub fn object(attrs: &[KeyValue], keep: impl Fn(&str) -> bool) -> Map<String, Json> {
    attrs
        .iter()
        .filter(|kv| keep(&kv.key))
        .map(|kv| {
            (
                kv.key.clone(),
                kv.value.as_ref().map_or(Json::Null, any_json),
            )
        })
        .collect()
}

/// The JSON text of [`object`], written straight from the attributes (no tree, no copies);
/// `None` when `keep` accepts none of them.
pub fn object_text(attrs: &[KeyValue], keep: impl Fn(&str) -> bool) -> Option<JsonText> {
    if !attrs.iter().any(|kv| keep(&kv.key)) {
        return None;
    }
    JsonText::of(&Object(attrs, keep))
}

/// Attributes serialised as a JSON object (see [`object_text`]).
struct Object<'a, F>(&'a [KeyValue], F);

impl<F: Fn(&str) -> bool> Serialize for Object<'_, F> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(None)?;
        for kv in self.0.iter().filter(|kv| (self.1)(&kv.key)) {
            let value = kv.value.as_ref().and_then(|v| v.value.as_ref());
            map.serialize_entry(&kv.key, &Plain(value))?;
        }
        map.end()
    }
}

/// A value serialised as [`json`] makes it.
struct Plain<'a>(Option<&'a Value>);

impl Serialize for Plain<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            None => s.serialize_none(),
            Some(Value::StringValue(v)) => s.serialize_str(v),
            Some(Value::BoolValue(b)) => s.serialize_bool(*b),
            Some(Value::IntValue(i)) => s.serialize_i64(*i),
            Some(Value::DoubleValue(d)) if d.is_finite() => s.serialize_f64(*d),
            Some(Value::DoubleValue(_)) => s.serialize_none(),
            Some(Value::StringValueStrindex(i)) => s.serialize_i32(*i),
            Some(other) => json(other).serialize(s),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kv(key: &str, value: Value) -> KeyValue {
        KeyValue {
            key: key.into(),
            value: Some(AnyValue { value: Some(value) }),
            ..Default::default()
        }
    }

    #[test]
    fn values_read_as_what_they_mean() {
        let attrs = vec![
            kv("n", Value::StringValue("12".into())),
            kv("d", Value::DoubleValue(3.0)),
            kv("neg", Value::IntValue(-1)),
            kv("n", Value::IntValue(7)),
        ];
        assert_eq!(get(&attrs, "n").and_then(count), Some(7));
        assert_eq!(get(&attrs, "d").and_then(count), Some(3));
        assert_eq!(get(&attrs, "neg").and_then(count), None);
        assert_eq!(get(&attrs, "missing"), None);
        let obj = object(&attrs, |k| k != "n");
        assert_eq!(Json::Object(obj), serde_json::json!({"d": 3.0, "neg": -1}));
        let written = object_text(&attrs, |k| k != "n").unwrap();
        assert_eq!(written.get(), r#"{"d":3.0,"neg":-1}"#);
        assert!(object_text(&attrs, |_| false).is_none());
        assert_eq!(text(&Value::DoubleValue(0.5)).as_deref(), Some("0.5"));
    }
}
