//! JSON carried as text: serialised once by whoever made it, stored and served without being
//! parsed into a tree again. It must not re-parse what it carries.

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use std::fmt;

/// A JSON value kept as its text (a `Box<RawValue>` that compares by text).
#[derive(Clone, Serialize, Deserialize)]
#[serde(transparent)]
pub struct JsonText(pub Box<RawValue>);

impl JsonText {
    /// The JSON text.
    pub fn get(&self) -> &str {
        self.0.get()
    }

    /// Serialises any value (`None` for `null` or if it cannot be serialised).
    pub fn of<T: Serialize + ?Sized>(value: &T) -> Option<JsonText> {
        serde_json::value::to_raw_value(value)
            .ok()
            .filter(|raw| raw.get() != "null")
            .map(JsonText)
    }

    /// Checks that `text` is JSON and keeps it.
    pub fn parse(text: String) -> Result<JsonText, serde_json::Error> {
        RawValue::from_string(text).map(JsonText)
    }

    /// The value as a tree.
    pub fn to_value(&self) -> serde_json::Value {
        serde_json::from_str(self.get()).unwrap_or(serde_json::Value::Null)
    }
}

#[cfg(feature = "openapi")]
impl utoipa::PartialSchema for JsonText {
    /// Any JSON value but `null` (a `null` field is an absent one: the fields are optional).
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{ObjectBuilder, SchemaType, Type};
        ObjectBuilder::new()
            .schema_type(SchemaType::from_iter([
                Type::Object,
                Type::Array,
                Type::String,
                Type::Number,
                Type::Integer,
                Type::Boolean,
            ]))
            .description(Some(
                "Any JSON value, stored and returned as sent (`null` means absent).",
            ))
            .into()
    }
}

#[cfg(feature = "openapi")]
impl utoipa::ToSchema for JsonText {}

impl PartialEq for JsonText {
    fn eq(&self, other: &Self) -> bool {
        self.get() == other.get()
    }
}

impl fmt::Debug for JsonText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.get())
    }
}

impl fmt::Display for JsonText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.get())
    }
}

/// A count or position (`u32`, `u64`) read from JSON: a whole number 0 or more, also when it is
/// written with a zero fraction (`15932901975.0`), which JSON Schema's `integer` allows.
pub(crate) trait Whole: TryFrom<u64> {
    /// The largest value.
    const MAX: u64;
}

impl Whole for u32 {
    const MAX: u64 = u32::MAX as u64;
}

impl Whole for u64 {
    const MAX: u64 = u64::MAX;
}

struct WholeVisitor<T>(std::marker::PhantomData<T>);

impl<T: Whole> serde::de::Visitor<'_> for WholeVisitor<T> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a whole number from 0 to {}", T::MAX)
    }

    fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<T, E> {
        T::try_from(v).map_err(|_| E::invalid_value(serde::de::Unexpected::Unsigned(v), &self))
    }

    fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<T, E> {
        match u64::try_from(v) {
            Ok(v) => self.visit_u64(v),
            Err(_) => Err(E::invalid_value(serde::de::Unexpected::Signed(v), &self)),
        }
    }

    fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<T, E> {
        match exact_whole(v) {
            Some(w) if w >= 0 => self.visit_u64(w as u64),
            _ => Err(E::invalid_value(serde::de::Unexpected::Float(v), &self)),
        }
    }
}

/// A float that is exactly a whole number, as that number: only below 2^53 in magnitude, where
/// every whole number is exact (`-9223372036854775809` reads as a float that rounds to `i64::MIN`,
/// and must not be taken for it).
pub(crate) fn exact_whole(v: f64) -> Option<i64> {
    const EXACT: f64 = 9_007_199_254_740_992.0; // 2^53
    (v.fract() == 0.0 && v.abs() < EXACT).then_some(v as i64)
}

/// Reads a [`Whole`] number (for `#[serde(deserialize_with)]`).
pub(crate) fn whole<'de, D: serde::Deserializer<'de>, T: Whole>(d: D) -> Result<T, D::Error> {
    // `any`, not `u64`: a value buffered by serde (inside an internally tagged enum) hands a
    // float to the visitor only when asked for anything.
    d.deserialize_any(WholeVisitor(std::marker::PhantomData))
}

/// Reads an optional [`Whole`] number (`null` or absent: `None`).
pub(crate) fn whole_opt<'de, D: serde::Deserializer<'de>, T: Whole>(
    d: D,
) -> Result<Option<T>, D::Error> {
    struct Some_<T>(T);
    impl<'de, T: Whole> Deserialize<'de> for Some_<T> {
        fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            whole(d).map(Some_)
        }
    }
    Ok(Option::<Some_<T>>::deserialize(d)?.map(|s| s.0))
}
