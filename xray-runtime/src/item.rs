//! What can name an item: strings and integers, written straight into the step's buffer when
//! the event is kept, so an integer id costs no allocation and no `Display` formatting.

use std::borrow::Cow;
use std::sync::Arc;
use xray_wire::ItemId;

/// Anything that names an item: `&str`, `String`, integers (and references to them), [`ItemId`].
///
/// The text is only asked for when an event is kept, so recording an event that the sampler
/// skips does no work for its id. A type of your own can implement this trait (one method), or
/// be passed as an [`ItemId`] (`ItemId::from(...)`).
pub trait IntoItemId {
    /// Calls `f` with the id's text.
    fn with_id_text<R>(self, f: impl FnOnce(&str) -> R) -> R;

    /// The id as a number, when it is a non-negative integer: a kept event then stores the
    /// number and writes its text only when the step ships (the default: `None`, use the text).
    #[inline]
    fn as_number(&self) -> Option<u64> {
        None
    }

    /// The id as an owned [`ItemId`].
    fn into_item_id(self) -> ItemId
    where
        Self: Sized,
    {
        self.with_id_text(|text| ItemId(text.to_owned()))
    }
}

macro_rules! text_ids {
    ($($t:ty),*) => {$(
        impl IntoItemId for $t {
            #[inline]
            fn with_id_text<R>(self, f: impl FnOnce(&str) -> R) -> R {
                f(AsRef::<str>::as_ref(&self))
            }
        }
    )*};
}
text_ids!(&str, &&str, &String, Box<str>, Arc<str>, Cow<'_, str>);

impl IntoItemId for String {
    #[inline]
    fn with_id_text<R>(self, f: impl FnOnce(&str) -> R) -> R {
        f(&self)
    }
    fn into_item_id(self) -> ItemId {
        ItemId(self)
    }
}

impl IntoItemId for ItemId {
    #[inline]
    fn with_id_text<R>(self, f: impl FnOnce(&str) -> R) -> R {
        f(&self.0)
    }
    fn into_item_id(self) -> ItemId {
        self
    }
}

impl IntoItemId for &ItemId {
    #[inline]
    fn with_id_text<R>(self, f: impl FnOnce(&str) -> R) -> R {
        f(&self.0)
    }
}

macro_rules! integer_ids {
    ($($t:ty),*) => {$(
        impl IntoItemId for $t {
            #[inline]
            fn with_id_text<R>(self, f: impl FnOnce(&str) -> R) -> R {
                f(itoa::Buffer::new().format(self))
            }
            #[inline]
            #[allow(irrefutable_let_patterns, clippy::unnecessary_fallible_conversions)]
            fn as_number(&self) -> Option<u64> {
                u64::try_from(*self).ok()
            }
        }
        impl IntoItemId for &$t {
            #[inline]
            fn with_id_text<R>(self, f: impl FnOnce(&str) -> R) -> R {
                f(itoa::Buffer::new().format(*self))
            }
            #[inline]
            #[allow(clippy::unnecessary_fallible_conversions)]
            fn as_number(&self) -> Option<u64> {
                u64::try_from(**self).ok()
            }
        }
    )*};
}
integer_ids!(i8, i16, i32, i64, i128, isize, u8, u16, u32, u64, u128, usize);

#[cfg(test)]
mod tests {
    use super::*;

    fn text(id: impl IntoItemId) -> String {
        id.with_id_text(str::to_owned)
    }

    #[test]
    #[allow(clippy::needless_borrows_for_generic_args)] // the impls for references are tested
    fn ids_read_as_their_text_as_before() {
        assert_eq!(text(42u64), ItemId::from(42u64).0);
        assert_eq!(text(-7i64), ItemId::from(-7i64).0);
        assert_eq!(text(&usize::MAX), usize::MAX.to_string());
        assert_eq!(text(i128::MIN), i128::MIN.to_string());
        assert_eq!(text("case_1"), "case_1");
        assert_eq!(text(&String::from("é")), "é");
        assert_eq!(text(&"ref"), "ref");
        assert_eq!(text(Box::<str>::from("boxed")), "boxed");
        assert_eq!(text(Arc::<str>::from("shared")), "shared");
        assert_eq!(text(Cow::Borrowed("cow")), "cow");
        assert_eq!(text(ItemId("x".into())), "x");
        assert_eq!(7u8.into_item_id(), ItemId("7".into()));
        assert_eq!(String::from("s").into_item_id(), ItemId("s".into()));
        assert_eq!(42u8.as_number(), Some(42));
        assert_eq!(<&usize as IntoItemId>::as_number(&&7), Some(7));
        assert_eq!(u64::MAX.as_number(), Some(u64::MAX));
        assert_eq!((-1i64).as_number(), None);
        assert_eq!((u128::MAX).as_number(), None);
        assert_eq!("42".as_number(), None);
    }
}
