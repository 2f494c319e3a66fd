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
