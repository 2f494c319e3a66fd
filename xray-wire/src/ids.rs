//! Item identifiers: strings or integers on the way in, strings on the way out. A string id
//! follows the name rule of [`crate::names`]; this module must not define a rule of its own.

use serde::{Deserialize, Deserializer, Serialize};
use std::fmt;

/// The id of an item a step saw (a product, a document, a draft).
///
/// Accepted on the wire as a JSON string or integer; always stored and returned as a string, so
/// `42` and `"42"` name the same item. A string id is a name ([`crate::Name`]'s rule, checked
/// when deserialised); the SDK fits the ids it sends ([`crate::fit_name`]).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct ItemId(pub String);

impl ItemId {
    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ItemId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

macro_rules! from_display {
    ($($t:ty),*) => {$(
        impl From<$t> for ItemId {
            fn from(v: $t) -> Self {
                ItemId(v.to_string())
            }
        }
    )*};
}
from_display!(&str, String, &String, i32, i64, u32, u64, usize, &i32, &i64, &u32, &u64, &usize);

impl From<&ItemId> for ItemId {
    fn from(v: &ItemId) -> Self {
        v.clone()
    }
}

#[cfg(feature = "openapi")]
impl utoipa::PartialSchema for ItemId {
    /// A string (a [`crate::Name`]) or an integer on the way in; always a string on the way out.
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, Type};
        OneOfBuilder::new()
            .item(<crate::Name as utoipa::PartialSchema>::schema())
            .item(
                ObjectBuilder::new()
                    .schema_type(Type::Integer)
                    .minimum(Some(i64::MIN))
                    .maximum(Some(u64::MAX)),
            )
            .description(Some(
                "An item id: a string or an integer (`42` and `\"42\"` name the same item); answers always give a string.",
            ))
            .into()
    }
}

#[cfg(feature = "openapi")]
impl utoipa::ToSchema for ItemId {}

impl<'de> Deserialize<'de> for ItemId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = ItemId;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an item id (a string or an integer)")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<ItemId, E> {
                crate::Name::check(v).map_err(E::custom)?;
                Ok(ItemId(v.to_string()))
            }
            fn visit_string<E: serde::de::Error>(self, v: String) -> Result<ItemId, E> {
                crate::Name::check(&v).map_err(E::custom)?;
                Ok(ItemId(v))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<ItemId, E> {
                Ok(ItemId(v.to_string()))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<ItemId, E> {
                Ok(ItemId(v.to_string()))
            }
            /// An integer written with a zero fraction (`42.0`, JSON Schema's `integer`) is
            /// that integer, where the float is exact ([`crate::json::exact_whole`]).
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<ItemId, E> {
                match crate::json::exact_whole(v) {
                    Some(w) => self.visit_i64(w),
                    None => Err(E::invalid_type(serde::de::Unexpected::Float(v), &self)),
                }
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_and_integers_are_the_same_id() {
        let a: ItemId = serde_json::from_str("42").unwrap();
        let b: ItemId = serde_json::from_str("\"42\"").unwrap();
        assert_eq!(a, b);
        assert_eq!(serde_json::to_string(&a).unwrap(), "\"42\"");
        assert!(serde_json::from_str::<ItemId>("1.5").is_err());
        assert_eq!(serde_json::from_str::<ItemId>("42.0").unwrap(), a);
        assert_eq!(
            serde_json::from_str::<ItemId>("-7e2").unwrap().as_str(),
            "-700"
        );
        assert!(serde_json::from_str::<ItemId>("3.4e22").is_err());
        assert!(serde_json::from_str::<ItemId>("-9223372036854775809").is_err());
        assert!(serde_json::from_str::<ItemId>("null").is_err());
        let empty = serde_json::from_str::<ItemId>("\"\"").unwrap_err();
        assert!(empty.to_string().contains("must not be empty"), "{empty}");
    }
}
