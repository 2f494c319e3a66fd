//! Item details recorded as a tape of serde's data model on the pipeline's thread, and written
//! as JSON on the shipper's.
//!
//! Serialising details straight to JSON on the pipeline's thread means formatting every float
//! and scanning every string for characters to escape, for each kept event, including the many
//! a reservoir later replaces. The tape holds the same values as serde hands them over: a tag
//! byte, then the number's bytes or the string's length and bytes. [`to_json`] replays it
//! through `serde_json`'s own serialiser (with the SDK's float formatter and size cap) when the
//! step ships, so the JSON text is the one serialising the value directly would have given.
//!
//! A tape is capped at [`TAPE_BYTES_PER_JSON_BYTE`] times the JSON size limit, plus
//! [`TOP_LEVEL_SLACK`]: no tape token holds more than that many bytes per byte of the JSON it
//! becomes (counting its separator), and a value alone (no separator) at most the slack more,
//! so a tape cut at that size stands for JSON over the limit, and the JSON written from it
//! reaches the limit before the cut (what is kept past the limit is the same note and preview
//! as for JSON written directly).
//! Nesting is capped at the limit too (each level is a bracket of JSON), so recording recurses
//! no deeper than serialising to JSON would. A `Serialize` error is recorded where it happened,
//! after what came before it, so the JSON written from the tape stops at whatever serde_json
//! would have stopped at first: the limit, a map key it refuses, or that error.

use serde::ser::{self, Serialize, SerializeMap, SerializeSeq, Serializer};
use std::cell::Cell;
use std::fmt;

/// serde_json's name for the struct that carries raw JSON text (`RawValue`).
pub(crate) const RAW_VALUE_TOKEN: &str = "$serde_json::private::RawValue";
/// serde_json's name for the struct that carries a number's text (`arbitrary_precision`).
const NUMBER_TOKEN: &str = "$serde_json::private::Number";

/// A tape may hold this many bytes per byte of JSON allowed (an integer: 9 tape bytes for at
/// least 2 JSON bytes with its separator; every other token has a smaller ratio).
pub(crate) const TAPE_BYTES_PER_JSON_BYTE: usize = 5;

/// Tape bytes a value alone may take beyond [`TAPE_BYTES_PER_JSON_BYTE`] per JSON byte: a
/// one-digit integer with no separator is 9 tape bytes for 1 byte of JSON, a unit variant's
/// name 13 for 2, and a 128-bit integer's token (17 bytes) must fit whole at any limit for its
/// JSON to be cut as serde_json's would be.
const TOP_LEVEL_SLACK: usize = 16;

/// The longest string one token holds (its length is four bytes).
const MAX_LEN: usize = u32::MAX as usize;

const NULL: u8 = 0;
const FALSE: u8 = 1;
const TRUE: u8 = 2;
const I64: u8 = 3;
const U64: u8 = 4;
const F64: u8 = 5;
const F32: u8 = 6;
const I128: u8 = 7;
const U128: u8 = 8;
/// A string shorter than 256 bytes: one length byte.
const STR8: u8 = 9;
/// A longer string: four length bytes.
const STR32: u8 = 10;
const BYTES: u8 = 11;
const SEQ: u8 = 12;
const SEQ_END: u8 = 13;
const MAP: u8 = 14;
const MAP_END: u8 = 15;
/// JSON text to be written as it is (a `RawValue`, or a number's text).
const RAW: u8 = 16;
/// The value's `Serialize` failed: the message follows.
const ERROR: u8 = 17;
/// The tape was cut at its size cap.
const CUT: u8 = 18;
/// A `&'static str` (a field, struct or variant name): its address and length, not its bytes.
const NAME: u8 = 19;

/// Why recording stopped.
#[derive(Debug)]
pub(crate) enum TapeError {
    /// The tape reached its size cap.
    Over,
    /// The value's `Serialize` reported an error.
    Custom(String),
}

impl fmt::Display for TapeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TapeError::Over => f.write_str("over the size limit"),
            TapeError::Custom(message) => f.write_str(message),
        }
    }
}

impl std::error::Error for TapeError {}

impl ser::Error for TapeError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        TapeError::Custom(msg.to_string())
    }
}

/// Records a value at the end of a buffer, up to `end`.
pub(crate) struct Tape<'a> {
    buf: &'a mut Vec<u8>,
    end: usize,
    /// Up to where the buffer may be written without a check beyond this one: the smaller of
    /// `end` and the buffer's capacity when last looked at, or 0 once `over` (so the tokens
    /// most values are made of cost one compare and the writes; see [`Tape::space`]).
    limit: usize,
    /// Containers open, at most `max_depth`: each opens a bracket in the JSON, so a value nested
    /// deeper is over the JSON limit anyway, and the recursion stays as shallow as serialising
    /// to JSON directly.
    depth: usize,
    max_depth: usize,
    /// The tape reached its cap: nothing more is written, whatever the value's `Serialize`
    /// does with the error (passing it on changed, or going on regardless).
    over: bool,
}

/// Appends `value`'s tape to `buf`, at most [`tape_cap`]`(max_json)` bytes; returns
/// how many bytes it took (0 for `null`, which is no value).
#[inline]
pub(crate) fn record<T: Serialize + ?Sized>(
    buf: &mut Vec<u8>,
    value: &T,
    max_json: usize,
) -> usize {
    let start = buf.len();
    let end = start.saturating_add(tape_cap(max_json));
    let mut tape = Tape {
        end,
        limit: end.min(buf.capacity()),
        buf: &mut *buf,
        depth: 0,
        max_depth: max_json,
        over: false,
    };
    let result = value.serialize(&mut tape);
    let over = tape.over;
    match result {
        _ if over => buf.push(CUT),
        Ok(()) if buf[start..] == [NULL] => buf.truncate(start),
        Ok(()) => {}
        Err(e) => failed(buf, e),
    }
    buf.len() - start
}

/// The most tape bytes recorded for a value whose JSON may take `max_json` bytes.
fn tape_cap(max_json: usize) -> usize {
    max_json
        .saturating_mul(TAPE_BYTES_PER_JSON_BYTE)
        .saturating_add(TOP_LEVEL_SLACK)
}

/// Ends a tape whose value's `Serialize` failed: the error follows what was recorded, so that
/// reading the tape back meets first whatever serde_json would have stopped at first (the size
/// limit, a map key it refuses, or this error).
#[cold]
#[inline(never)]
fn failed(buf: &mut Vec<u8>, e: TapeError) {
    match e {
        TapeError::Over => buf.push(CUT),
        TapeError::Custom(message) => {
            let message = &message.as_bytes()[..message.len().min(MAX_LEN)];
            buf.push(ERROR);
            put_len(buf, message.len());
            buf.extend_from_slice(message);
        }
    }
}

fn put_len(buf: &mut Vec<u8>, len: usize) {
    buf.extend_from_slice(&u32::try_from(len).unwrap_or(u32::MAX).to_le_bytes());
}

impl Tape<'_> {
    /// Whether `n` more bytes fit (never again once one did not).
    #[inline(always)]
    fn room(&mut self, n: usize) -> Result<(), TapeError> {
        if self.over || self.buf.len() + n > self.end {
            Err(self.stop())
        } else {
            Ok(())
        }
    }

    /// The tape is full: nothing more is written.
    #[cold]
    fn stop(&mut self) -> TapeError {
        self.over = true;
        self.limit = 0;
        TapeError::Over
    }

    /// Makes room for a token of `n` bytes (below `limit`, the usual case, one compare; else
    /// [`Self::grow`]) and returns where it goes: the caller writes all `n` bytes there, then
    /// calls [`Self::wrote`]. Tokens are written in place, not built on the stack and copied
    /// (a wide load of bytes just stored narrowly waits for the stores to retire).
    #[inline(always)]
    fn space(&mut self, n: usize) -> Result<*mut u8, TapeError> {
        let len = self.buf.len();
        if len + n > self.limit {
            self.grow(n)?;
        }
        // SAFETY: `len + n <= limit <= capacity` (`limit` is never above the capacity the buffer
        // had when it was set, and a buffer's capacity only grows): in bounds of the allocation.
        Ok(unsafe { self.buf.as_mut_ptr().add(len) })
    }

    /// Takes in the `n` bytes just written where [`Self::space`] said.
    #[inline(always)]
    fn wrote(&mut self, n: usize) {
        // SAFETY: the caller wrote `n` bytes after the buffer's length, within its capacity
        // (`space` made sure of it), so they are initialised.
        unsafe { self.buf.set_len(self.buf.len() + n) }
    }

    /// [`Self::space`] past `limit`: over the cap, or the buffer must grow first.
    #[cold]
    #[inline(never)]
    fn grow(&mut self, n: usize) -> Result<(), TapeError> {
        self.room(n)?;
        self.buf.reserve(n);
        self.limit = self.end.min(self.buf.capacity());
        Ok(())
    }

    /// A tag and `N` bytes, whole or not at all.
    #[inline(always)]
    fn token<const N: usize>(&mut self, tag: u8, body: [u8; N]) -> Result<(), TapeError> {
        let at = self.space(1 + N)?;
        // SAFETY: `space` made room for the `1 + N` bytes at `at`.
        unsafe {
            at.write(tag);
            at.add(1).cast::<[u8; N]>().write_unaligned(body);
        }
        self.wrote(1 + N);
        Ok(())
    }

    /// A one-byte token; opening and closing containers counts the depth.
    #[inline(always)]
    fn tag(&mut self, tag: u8) -> Result<(), TapeError> {
        match tag {
            SEQ | MAP if self.depth >= self.max_depth => return Err(self.stop()),
            SEQ | MAP => self.depth += 1,
            SEQ_END | MAP_END => self.depth = self.depth.saturating_sub(1),
            _ => {}
        }
        self.token(tag, [])
    }

    #[inline(always)]
    fn fixed<const N: usize>(&mut self, tag: u8, bytes: [u8; N]) -> Result<(), TapeError> {
        self.token(tag, bytes)
    }

    #[inline]
    fn text(&mut self, bytes: &[u8]) -> Result<(), TapeError> {
        let room = self.end.saturating_sub(self.buf.len());
        match u8::try_from(bytes.len()) {
            Ok(len) if !self.over && 2 + bytes.len() <= room => {
                let at = self.space(2 + bytes.len())?;
                // SAFETY: `space` made room for the `2 + bytes.len()` bytes at `at`.
                unsafe {
                    at.write(STR8);
                    at.add(1).write(len);
                    std::ptr::copy_nonoverlapping(bytes.as_ptr(), at.add(2), bytes.len());
                }
                self.wrote(2 + bytes.len());
                Ok(())
            }
            _ => self.blob(STR32, bytes),
        }
    }

    /// A name serde hands over as `&'static str` (a field or variant name): recorded as where it
    /// is, since it stays there, unchanged, for as long as the program runs, so the pipeline's
    /// thread copies 13 bytes whatever its length (for at least 3 of JSON — `"":`, or `""` and
    /// a separator or brackets — except a name alone at the top; see below).
    #[inline(always)]
    fn name(&mut self, name: &'static str) -> Result<(), TapeError> {
        // A name too long to say in four bytes: the text itself. (A name alone at the top, a
        // unit variant, is 2 bytes of JSON at least for 13 tape bytes: within the cap's slack.)
        let Ok(len) = u32::try_from(name.len()) else {
            return self.text(name.as_bytes());
        };
        let at = self.space(13)?;
        // SAFETY: `space` made room for the 13 bytes at `at`.
        unsafe {
            at.write(NAME);
            at.add(1)
                .cast::<[u8; 8]>()
                .write_unaligned((name.as_ptr().expose_provenance() as u64).to_le_bytes());
            at.add(9)
                .cast::<[u8; 4]>()
                .write_unaligned(len.to_le_bytes());
        }
        self.wrote(13);
        Ok(())
    }

    /// A tag, a four-byte length and bytes (of a string: UTF-8), up to the end of the tape:
    /// a string or byte string over the cap is kept as far as it fits, as the JSON it stands for
    /// would have been written up to the limit.
    fn blob(&mut self, tag: u8, bytes: &[u8]) -> Result<(), TapeError> {
        if self.over {
            return Err(self.stop());
        }
        if 5 + bytes.len() > self.end.saturating_sub(self.buf.len()) || bytes.len() > MAX_LEN {
            return self.cut(tag, bytes);
        }
        self.buf.push(tag);
        put_len(self.buf, bytes.len());
        self.buf.extend_from_slice(bytes);
        Ok(())
    }

    /// The start of `bytes` that fits (whole characters of a string or raw JSON), then the cut.
    #[cold]
    #[inline(never)]
    fn cut(&mut self, tag: u8, bytes: &[u8]) -> Result<(), TapeError> {
        self.stop();
        let room = self.end.saturating_sub(self.buf.len());
        if room > 5 {
            let mut n = (room - 5).min(bytes.len()).min(MAX_LEN);
            while n > 0 && tag != BYTES && n < bytes.len() && bytes[n] & 0xC0 == 0x80 {
                n -= 1;
            }
            self.buf.push(tag);
            put_len(self.buf, n);
            self.buf.extend_from_slice(&bytes[..n]);
        }
        Err(TapeError::Over)
    }
}

impl<'a, 'b> Serializer for &'a mut Tape<'b> {
    type Ok = ();
    type Error = TapeError;
    type SerializeSeq = Self;
    type SerializeTuple = Self;
    type SerializeTupleStruct = Self;
    type SerializeTupleVariant = Variant<'a, 'b>;
    type SerializeMap = Self;
    type SerializeStruct = Fields<'a, 'b>;
    type SerializeStructVariant = Variant<'a, 'b>;

    fn serialize_bool(self, v: bool) -> Result<(), TapeError> {
        self.tag(if v { TRUE } else { FALSE })
    }
    fn serialize_i8(self, v: i8) -> Result<(), TapeError> {
        self.serialize_i64(v.into())
    }
    fn serialize_i16(self, v: i16) -> Result<(), TapeError> {
        self.serialize_i64(v.into())
    }
    fn serialize_i32(self, v: i32) -> Result<(), TapeError> {
        self.serialize_i64(v.into())
    }
    #[inline]
    fn serialize_i64(self, v: i64) -> Result<(), TapeError> {
        self.fixed(I64, v.to_le_bytes())
    }
    fn serialize_i128(self, v: i128) -> Result<(), TapeError> {
        // The same text in 9 bytes rather than 17 when it fits (17 bytes for a 2-byte `0,`
        // would break the tape's bound on bytes per byte of JSON).
        match i64::try_from(v) {
            Ok(v) => self.serialize_i64(v),
            Err(_) => self.fixed(I128, v.to_le_bytes()),
        }
    }
    fn serialize_u8(self, v: u8) -> Result<(), TapeError> {
        self.serialize_u64(v.into())
    }
    fn serialize_u16(self, v: u16) -> Result<(), TapeError> {
        self.serialize_u64(v.into())
    }
    fn serialize_u32(self, v: u32) -> Result<(), TapeError> {
        self.serialize_u64(v.into())
    }
    #[inline]
    fn serialize_u64(self, v: u64) -> Result<(), TapeError> {
        self.fixed(U64, v.to_le_bytes())
    }
    fn serialize_u128(self, v: u128) -> Result<(), TapeError> {
        match u64::try_from(v) {
            Ok(v) => self.serialize_u64(v),
            Err(_) => self.fixed(U128, v.to_le_bytes()),
        }
    }
    fn serialize_f32(self, v: f32) -> Result<(), TapeError> {
        self.fixed(F32, v.to_le_bytes())
    }
    #[inline]
    fn serialize_f64(self, v: f64) -> Result<(), TapeError> {
        self.fixed(F64, v.to_le_bytes())
    }
    fn serialize_char(self, v: char) -> Result<(), TapeError> {
        self.text(v.encode_utf8(&mut [0; 4]).as_bytes())
    }
    #[inline]
    fn serialize_str(self, v: &str) -> Result<(), TapeError> {
        self.text(v.as_bytes())
    }
    fn serialize_bytes(self, v: &[u8]) -> Result<(), TapeError> {
        self.blob(BYTES, v)
    }
    fn serialize_none(self) -> Result<(), TapeError> {
        self.tag(NULL)
    }
    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<(), TapeError> {
        value.serialize(self)
    }
    fn serialize_unit(self) -> Result<(), TapeError> {
        self.tag(NULL)
    }
    fn serialize_unit_struct(self, _name: &'static str) -> Result<(), TapeError> {
        self.tag(NULL)
    }
    fn serialize_unit_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
    ) -> Result<(), TapeError> {
        self.name(variant)
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        value: &T,
    ) -> Result<(), TapeError> {
        value.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<(), TapeError> {
        self.tag(MAP)?;
        self.name(variant)?;
        value.serialize(&mut *self)?;
        self.tag(MAP_END)
    }
    fn serialize_seq(self, _len: Option<usize>) -> Result<Self, TapeError> {
        self.tag(SEQ)?;
        Ok(self)
    }
    #[inline]
    fn serialize_tuple(self, _len: usize) -> Result<Self, TapeError> {
        self.tag(SEQ)?;
        Ok(self)
    }
    fn serialize_tuple_struct(self, _name: &'static str, _len: usize) -> Result<Self, TapeError> {
        self.tag(SEQ)?;
        Ok(self)
    }
    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        _len: usize,
    ) -> Result<Variant<'a, 'b>, TapeError> {
        self.tag(MAP)?;
        self.name(variant)?;
        self.tag(SEQ)?;
        Ok(Variant {
            tape: self,
            end: SEQ_END,
        })
    }
    fn serialize_map(self, _len: Option<usize>) -> Result<Self, TapeError> {
        self.tag(MAP)?;
        Ok(self)
    }
    #[inline]
    fn serialize_struct(
        self,
        name: &'static str,
        _len: usize,
    ) -> Result<Fields<'a, 'b>, TapeError> {
        let raw = name == RAW_VALUE_TOKEN || name == NUMBER_TOKEN;
        if !raw {
            self.tag(MAP)?;
        }
        Ok(Fields { tape: self, raw })
    }
    fn serialize_struct_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        _len: usize,
    ) -> Result<Variant<'a, 'b>, TapeError> {
        self.tag(MAP)?;
        self.name(variant)?;
        self.tag(MAP)?;
        Ok(Variant {
            tape: self,
            end: MAP_END,
        })
    }
    fn collect_str<T: fmt::Display + ?Sized>(self, value: &T) -> Result<(), TapeError> {
        /// Writes `Display` output into the tape, up to its end and to the longest string a
        /// token holds (whole characters).
        struct Text<'t, 'b> {
            tape: &'t mut Tape<'b>,
            end: usize,
            over: bool,
            /// Where the token's tag is, until the text is complete: if the `Display` panics
            /// (and a `Serialize` impl catches it and goes on), the unfinished token is taken
            /// back, so the text it wrote can never be read as tokens.
            unfinished: Option<usize>,
        }
        impl Drop for Text<'_, '_> {
            fn drop(&mut self) {
                if let Some(tag) = self.unfinished {
                    self.tape.buf.truncate(tag);
                }
            }
        }
        impl fmt::Write for Text<'_, '_> {
            fn write_str(&mut self, s: &str) -> fmt::Result {
                let room = self.end.saturating_sub(self.tape.buf.len());
                if s.len() <= room {
                    self.tape.buf.extend_from_slice(s.as_bytes());
                    return Ok(());
                }
                let mut n = room;
                while !s.is_char_boundary(n) {
                    n -= 1;
                }
                self.tape.buf.extend_from_slice(&s.as_bytes()[..n]);
                self.over = true;
                Err(fmt::Error)
            }
        }
        self.room(5)?;
        self.buf.push(STR32);
        let at = self.buf.len();
        put_len(self.buf, 0);
        let end = self.end.min(at + 4 + MAX_LEN);
        let mut text = Text {
            tape: self,
            end,
            over: false,
            unfinished: Some(at - 1),
        };
        let failed = fmt::write(&mut text, format_args!("{value}")).is_err();
        text.unfinished = None;
        let over = text.over;
        drop(text);
        if failed && !over {
            self.buf.truncate(at - 1);
            return Err(ser::Error::custom(
                "a Display implementation returned an error",
            ));
        }
        let len = self.buf.len() - at - 4;
        self.buf[at..at + 4].copy_from_slice(&u32::try_from(len).unwrap_or(u32::MAX).to_le_bytes());
        if over {
            Err(self.stop())
        } else {
            Ok(())
        }
    }
}

impl SerializeSeq for &mut Tape<'_> {
    type Ok = ();
    type Error = TapeError;
    #[inline]
    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), TapeError> {
        value.serialize(&mut **self)
    }
    #[inline]
    fn end(self) -> Result<(), TapeError> {
        self.tag(SEQ_END)
    }
}

impl ser::SerializeTuple for &mut Tape<'_> {
    type Ok = ();
    type Error = TapeError;
    #[inline]
    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), TapeError> {
        value.serialize(&mut **self)
    }
    #[inline]
    fn end(self) -> Result<(), TapeError> {
        self.tag(SEQ_END)
    }
}

impl ser::SerializeTupleStruct for &mut Tape<'_> {
    type Ok = ();
    type Error = TapeError;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), TapeError> {
        value.serialize(&mut **self)
    }
    fn end(self) -> Result<(), TapeError> {
        self.tag(SEQ_END)
    }
}

impl SerializeMap for &mut Tape<'_> {
    type Ok = ();
    type Error = TapeError;
    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), TapeError> {
        key.serialize(&mut **self)
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), TapeError> {
        value.serialize(&mut **self)
    }
    fn end(self) -> Result<(), TapeError> {
        self.tag(MAP_END)
    }
}

/// A struct's fields: a map with its field names as keys, or, for serde_json's raw JSON text,
/// the text.
pub(crate) struct Fields<'a, 'b> {
    tape: &'a mut Tape<'b>,
    raw: bool,
}

impl ser::SerializeStruct for Fields<'_, '_> {
    type Ok = ();
    type Error = TapeError;
    #[inline(always)]
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), TapeError> {
        if self.raw {
            return value.serialize(Raw(&mut *self.tape));
        }
        self.tape.name(key)?;
        value.serialize(&mut *self.tape)
    }
    #[inline]
    fn end(self) -> Result<(), TapeError> {
        if self.raw {
            Ok(())
        } else {
            self.tape.tag(MAP_END)
        }
    }
}

/// The inside of a tuple or struct variant (`{"Variant": [...]}` / `{"Variant": {...}}`).
pub(crate) struct Variant<'a, 'b> {
    tape: &'a mut Tape<'b>,
    end: u8,
}

impl ser::SerializeTupleVariant for Variant<'_, '_> {
    type Ok = ();
    type Error = TapeError;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), TapeError> {
        value.serialize(&mut *self.tape)
    }
    fn end(self) -> Result<(), TapeError> {
        self.tape.tag(self.end)?;
        self.tape.tag(MAP_END)
    }
}

impl ser::SerializeStructVariant for Variant<'_, '_> {
    type Ok = ();
    type Error = TapeError;
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), TapeError> {
        self.tape.name(key)?;
        value.serialize(&mut *self.tape)
    }
    fn end(self) -> Result<(), TapeError> {
        self.tape.tag(self.end)?;
        self.tape.tag(MAP_END)
    }
}

/// Takes the JSON text serde_json's raw-value and number structs carry (a string).
struct Raw<'a, 'b>(&'a mut Tape<'b>);

impl Raw<'_, '_> {
    fn not_text() -> TapeError {
        ser::Error::custom("raw JSON must be given as a string")
    }
}

/// Serializer methods of [`Raw`] for everything but a string: an error.
macro_rules! not_text {
    ($($name:ident($($arg:ty),*) -> $ok:ty;)*) => {$(
        fn $name(self, $(_: $arg),*) -> Result<$ok, TapeError> {
            Err(Self::not_text())
        }
    )*};
}

impl Serializer for Raw<'_, '_> {
    type Ok = ();
    type Error = TapeError;
    type SerializeSeq = ser::Impossible<(), TapeError>;
    type SerializeTuple = ser::Impossible<(), TapeError>;
    type SerializeTupleStruct = ser::Impossible<(), TapeError>;
    type SerializeTupleVariant = ser::Impossible<(), TapeError>;
    type SerializeMap = ser::Impossible<(), TapeError>;
    type SerializeStruct = ser::Impossible<(), TapeError>;
    type SerializeStructVariant = ser::Impossible<(), TapeError>;

    fn serialize_str(self, v: &str) -> Result<(), TapeError> {
        self.0.blob(RAW, v.as_bytes())
    }
    fn serialize_some<T: Serialize + ?Sized>(self, _: &T) -> Result<(), TapeError> {
        Err(Self::not_text())
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: &T,
    ) -> Result<(), TapeError> {
        Err(Self::not_text())
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: &T,
    ) -> Result<(), TapeError> {
        Err(Self::not_text())
    }
    not_text! {
        serialize_bool(bool) -> ();
        serialize_i8(i8) -> ();
        serialize_i16(i16) -> ();
        serialize_i32(i32) -> ();
        serialize_i64(i64) -> ();
        serialize_u8(u8) -> ();
        serialize_u16(u16) -> ();
        serialize_u32(u32) -> ();
        serialize_u64(u64) -> ();
        serialize_f32(f32) -> ();
        serialize_f64(f64) -> ();
        serialize_char(char) -> ();
        serialize_bytes(&[u8]) -> ();
        serialize_none() -> ();
        serialize_unit() -> ();
        serialize_unit_struct(&'static str) -> ();
        serialize_unit_variant(&'static str, u32, &'static str) -> ();
        serialize_seq(Option<usize>) -> Self::SerializeSeq;
        serialize_tuple(usize) -> Self::SerializeTuple;
        serialize_tuple_struct(&'static str, usize) -> Self::SerializeTupleStruct;
        serialize_tuple_variant(&'static str, u32, &'static str, usize) -> Self::SerializeTupleVariant;
        serialize_map(Option<usize>) -> Self::SerializeMap;
        serialize_struct(&'static str, usize) -> Self::SerializeStruct;
        serialize_struct_variant(&'static str, u32, &'static str, usize) -> Self::SerializeStructVariant;
    }
}

/// Reads a tape back, one value at a time.
pub(crate) struct Reader<'t> {
    rest: Cell<&'t [u8]>,
    /// Whether the reader met the mark of a tape cut at its size cap.
    cut: Cell<bool>,
    /// Whether the reader wrote raw JSON text (which only a `RawValue` has checked).
    raw: Cell<bool>,
}

impl<'t> Reader<'t> {
    /// A reader of `tape`.
    pub(crate) fn new(tape: &'t [u8]) -> Reader<'t> {
        Reader {
            rest: Cell::new(tape),
            cut: Cell::new(false),
            raw: Cell::new(false),
        }
    }

    /// Whether the tape was cut at its size cap (known once read up to the cut).
    pub(crate) fn was_cut(&self) -> bool {
        self.cut.get()
    }

    /// Whether raw JSON text was written as it is (valid if it came from a `RawValue`, but a
    /// struct of any other type may use the same name).
    pub(crate) fn wrote_raw(&self) -> bool {
        self.raw.get()
    }

    fn peek(&self) -> Option<u8> {
        self.rest.get().first().copied()
    }

    fn take(&self, n: usize) -> Option<&'t [u8]> {
        let rest = self.rest.get();
        if rest.len() < n {
            return None;
        }
        let (head, tail) = rest.split_at(n);
        self.rest.set(tail);
        Some(head)
    }

    fn array<const N: usize>(&self) -> Option<[u8; N]> {
        self.take(N).and_then(|b| b.try_into().ok())
    }

    fn len32(&self) -> Option<usize> {
        self.array::<4>().map(|b| u32::from_le_bytes(b) as usize)
    }

    /// A name recorded by [`Tape::name`].
    fn name(&self) -> Option<&'static str> {
        let at = u64::from_le_bytes(self.array()?) as usize;
        let len = self.len32()?;
        // SAFETY: a `NAME` token at a token's start was written by `Tape::name`, from a
        // `&'static str` (text that stays at that address, valid UTF-8 and unchanged, for the
        // rest of the program; its address exposed there). Nothing else can be read as one:
        // tapes are made and read by this module alone, never come from outside the process,
        // and every token is written whole — the one written in pieces around caller code
        // (`collect_str`'s string, around a `Display`) is taken back if that code panics — so
        // the reader, which steps over each token's payload by its length, only ever sees tags
        // where tokens start.
        Some(unsafe {
            std::str::from_utf8_unchecked(std::slice::from_raw_parts(
                std::ptr::with_exposed_provenance::<u8>(at),
                len,
            ))
        })
    }

    fn text(&self, len: Option<usize>) -> Option<&'t str> {
        len.and_then(|n| self.take(n))
            .map(|b| std::str::from_utf8(b).unwrap_or("\u{fffd}"))
    }
}

/// The next value of a tape, as something serde_json can serialise.
pub(crate) struct Next<'r, 't>(pub(crate) &'r Reader<'t>);

impl Serialize for Next<'_, '_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use ser::Error;
        let r = self.0;
        let broken = || S::Error::custom("the recorded details are incomplete");
        let Some(tag) = r.take(1).map(|t| t[0]) else {
            return Err(broken());
        };
        match tag {
            NULL => s.serialize_unit(),
            FALSE => s.serialize_bool(false),
            TRUE => s.serialize_bool(true),
            I64 => s.serialize_i64(i64::from_le_bytes(r.array().ok_or_else(broken)?)),
            U64 => s.serialize_u64(u64::from_le_bytes(r.array().ok_or_else(broken)?)),
            F64 => s.serialize_f64(f64::from_le_bytes(r.array().ok_or_else(broken)?)),
            F32 => s.serialize_f32(f32::from_le_bytes(r.array().ok_or_else(broken)?)),
            I128 => s.serialize_i128(i128::from_le_bytes(r.array().ok_or_else(broken)?)),
            U128 => s.serialize_u128(u128::from_le_bytes(r.array().ok_or_else(broken)?)),
            STR8 => {
                let len = r.take(1).map(|b| usize::from(b[0]));
                s.serialize_str(r.text(len).ok_or_else(broken)?)
            }
            STR32 => s.serialize_str(r.text(r.len32()).ok_or_else(broken)?),
            NAME => s.serialize_str(r.name().ok_or_else(broken)?),
            BYTES => {
                let bytes = r.len32().and_then(|n| r.take(n)).ok_or_else(broken)?;
                s.serialize_bytes(bytes)
            }
            SEQ => {
                let mut seq = s.serialize_seq(None)?;
                loop {
                    match r.peek() {
                        Some(SEQ_END) => {
                            r.take(1);
                            return seq.end();
                        }
                        _ => seq.serialize_element(&Next(r))?,
                    }
                }
            }
            MAP => {
                let mut map = s.serialize_map(None)?;
                loop {
                    match r.peek() {
                        Some(MAP_END) => {
                            r.take(1);
                            return map.end();
                        }
                        _ => {
                            map.serialize_key(&Next(r))?;
                            map.serialize_value(&Next(r))?;
                        }
                    }
                }
            }
            RAW => {
                // Written as it is, as serde_json writes a `RawValue` (through its token).
                let text = r.text(r.len32()).ok_or_else(broken)?;
                r.raw.set(true);
                let mut raw = s.serialize_struct(RAW_VALUE_TOKEN, 1)?;
                ser::SerializeStruct::serialize_field(&mut raw, RAW_VALUE_TOKEN, text)?;
                ser::SerializeStruct::end(raw)
            }
            ERROR => Err(S::Error::custom(r.text(r.len32()).ok_or_else(broken)?)),
            CUT => {
                r.cut.set(true);
                Err(S::Error::custom("over the size limit"))
            }
            _ => Err(broken()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sampling::{append_capped_json, tape_json};
    use serde_json::json;
    use std::collections::BTreeMap;

    /// The JSON text serialising `value` directly gives, and the one its tape gives.
    fn both<T: Serialize + ?Sized>(value: &T, max: usize) -> (String, String) {
        let mut direct = Vec::new();
        append_capped_json(&mut direct, value, max);
        let mut buf = b"prefix".to_vec();
        let n = record(&mut buf, value, max);
        assert_eq!(buf.len(), 6 + n);
        let taped = if n == 0 {
            String::new()
        } else {
            tape_json(&buf[6..], max)
        };
        (String::from_utf8(direct).unwrap(), taped)
    }

    fn same<T: Serialize + ?Sized>(value: &T, max: usize) {
        let (direct, taped) = both(value, max);
        assert_eq!(taped, direct);
    }

    #[derive(serde::Serialize)]
    struct Price {
        price: f64,
        threshold: f64,
    }

    #[derive(serde::Serialize)]
    struct Unit;

    #[derive(serde::Serialize)]
    struct Newtype(u8);

    #[derive(serde::Serialize)]
    struct TupleStruct(i8, &'static str);

    #[derive(serde::Serialize)]
    enum Kind {
        Plain,
        Wrapped(f32),
        Pair(u16, char),
        Named { a: i128, b: Option<u128> },
    }

    struct Bytes(&'static [u8]);
    impl Serialize for Bytes {
        fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            s.serialize_bytes(self.0)
        }
    }

    struct Shown(String);
    impl Serialize for Shown {
        fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            s.collect_str(&self.0)
        }
    }

    /// A map of one entry, whatever its key.
    struct Entry<K, V>(K, V);
    impl<K: Serialize, V: Serialize> Serialize for Entry<K, V> {
        fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            let mut map = s.serialize_map(Some(1))?;
            map.serialize_entry(&self.0, &self.1)?;
            map.end()
        }
    }

    struct Failing;
    impl Serialize for Failing {
        fn serialize<S: Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
            Err(ser::Error::custom("boom \"quoted\""))
        }
    }

    #[test]
    fn details_read_back_as_serialising_them_directly_gives() {
        same(
            &Price {
                price: 150.0,
                threshold: 99.99,
            },
            4096,
        );
        same(&("rating", 0.3), 4096);
        same(
            &("category", &String::from("laptop \"stands\"\n\u{1}é")),
            4096,
        );
        same(
            &json!({"a": [1, -2, 3.5, 1e300, -0.0, null, true, false, "x"], "b": {"c": {}},
                    "d": [], "e": u64::MAX, "f": i64::MIN, "g": 0.1 + 0.2}),
            4096,
        );
        same(&(f64::NAN, f64::INFINITY, f32::NAN, 1.5f32, 1e-7f32), 4096);
        same(&(Unit, Newtype(7), TupleStruct(-3, "t")), 4096);
        same(
            &[
                Kind::Plain,
                Kind::Wrapped(2.25),
                Kind::Pair(9, '"'),
                Kind::Named {
                    a: i128::MIN,
                    b: Some(u128::MAX),
                },
                Kind::Named { a: 1, b: None },
            ],
            4096,
        );
        same(&Bytes(b"\x00\xffab"), 4096);
        same(&Shown("shown \"text\"".into()), 4096);
        same(&(Some(1u8), None::<u8>, ()), 4096);
        let raw = serde_json::value::RawValue::from_string(r#"{"raw": [1, 2]}"#.into()).unwrap();
        same(&("raw", &raw), 4096);
        same(&BTreeMap::from([(3, "three"), (-1, "minus one")]), 4096);
        same(&Entry(true, 1), 4096);
        same(&Entry('k', 1), 4096);
        same(&Entry(Kind::Plain, 1), 4096);
        same(&Entry(Newtype(4), 1), 4096);
        same(&Entry(2.5f64, 1), 4096);
        same(&Entry(u128::MAX, 1), 4096);
        same(&"a".repeat(300), 4096);
    }

    #[test]
    fn no_value_takes_no_bytes() {
        for n in [
            record(&mut Vec::new(), &(), 64),
            record(&mut Vec::new(), &None::<u8>, 64),
            record(&mut Vec::new(), &Unit, 64),
            record(&mut Vec::new(), &json!(null), 64),
        ] {
            assert_eq!(n, 0);
        }
    }

    #[test]
    fn failures_become_the_same_notes() {
        same(&Failing, 4096);
        same(&("before", Failing), 4096);
        // Keys serde_json refuses.
        same(&Entry(vec![1], 1), 4096);
        same(&Entry((), 1), 4096);
        same(&Entry(Kind::Wrapped(1.0), 1), 4096);
        let (direct, _) = both(&Failing, 4096);
        assert!(direct.contains("_xray_error"), "{direct}");
    }

    #[test]
    fn values_over_the_limit_become_the_same_note() {
        same(&"x".repeat(100_000), 4096);
        same(&vec![0u8; 100_000], 1000);
        same(&vec![u64::MAX; 10_000], 1000);
        same(&vec![0.5f64; 10_000], 1000);
        same(&vec![true; 10_000], 1000);
        same(&vec![(); 10_000], 1000);
        same(&vec![Vec::<u8>::new(); 10_000], 1000);
        same(&vec![""; 10_000], 1000);
        same(&vec![json!({}); 10_000], 1000);
        same(&Shown("é".repeat(50_000)), 1000);
        same(&Bytes(&[7; 10_000]), 1000);
        same(&json!({"k": "v".repeat(5000), "l": [1, 2]}), 1000);
        // Near the limit on either side.
        for n in 990..1010 {
            same(&"y".repeat(n), 1000);
            same(&vec![1u8; n / 2], 1000);
        }
        let (note, _) = both(&"x".repeat(100_000), 4096);
        assert!(note.contains("_xray_truncated"), "{note}");
    }

    /// `[[[…]]]`, `0` levels deep.
    struct Nest(usize);
    impl Serialize for Nest {
        fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            let mut seq = s.serialize_seq(Some(1))?;
            if self.0 > 0 {
                seq.serialize_element(&Nest(self.0 - 1))?;
            }
            seq.end()
        }
    }

    /// Passes its value's error on as an error of its own.
    struct Relabel<T>(T);
    impl<T: Serialize> Serialize for Relabel<T> {
        fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            self.0
                .serialize(s)
                .map_err(|e| ser::Error::custom(format!("in the field: {e}")))
        }
    }

    #[test]
    fn what_serde_json_meets_first_decides_the_note() {
        // The size limit before the value's own error.
        same(&("x".repeat(2000), Failing), 1000);
        // A map key serde_json refuses before the value's own error.
        same(&(Entry(vec![1u8], 1), Failing), 4096);
        // A value that relabels the size limit's error is still over the limit.
        same(&Relabel("z".repeat(10_000)), 1000);
        same(&Relabel(vec![7u64; 10_000]), 1000);
    }

    #[test]
    fn numbers_raw_text_and_nesting_keep_the_bounds() {
        // Small 128-bit numbers take no more room than 64-bit ones.
        same(&vec![0u128; 300], 1000);
        same(&vec![-1i128; 300], 1000);
        same(&vec![u128::MAX; 100], 1000);
        same(&vec![i128::MIN; 100], 1000);
        // Raw JSON over the limit: the same preview.
        let items: Vec<String> = (0..5000).map(|i| i.to_string()).collect();
        let big = format!("[{}]", items.join(","));
        let raw = serde_json::value::RawValue::from_string(big).unwrap();
        same(&raw, 4096);
        same(&("before", &raw), 4096);
        same(&Entry("k", &raw), 4096);
        // Nesting far deeper than the limit stops as serialising to JSON does, about as deep
        // (unbounded, 50,000 levels would overflow any stack; the thread has room for the 1,000
        // levels an unoptimised build allows, which are far bigger than an optimised build's).
        std::thread::Builder::new()
            .stack_size(64 << 20)
            .spawn(|| {
                same(&Nest(50_000), 1000);
                same(&Nest(400), 1000);
            })
            .unwrap()
            .join()
            .unwrap();
    }

    #[test]
    fn details_that_serialise_as_null_are_no_details() {
        let mut r = crate::sampling::Recorder::new(xray_wire::Capture::Full, 4096, 1);
        r.reject(1u64, "r", &f64::NAN);
        r.reject(2u64, "r", &Some(f32::INFINITY));
        r.reject(3u64, "r", &());
        r.reject(4u64, "r", &0.5);
        let details: Vec<Option<String>> = r.rejections()["r"]
            .samples
            .iter()
            .map(|s| s.details.as_ref().map(|d| d.get().to_owned()))
            .collect();
        assert_eq!(details, [None, None, None, Some("0.5".to_owned())]);
    }

    #[test]
    fn a_tape_is_no_bigger_than_its_cap_and_a_cut_one_still_reads() {
        for value in [json!(vec![u64::MAX; 10_000]), json!("z".repeat(10_000))] {
            let mut buf = Vec::new();
            let n = record(&mut buf, &value, 100);
            assert!(n <= tape_cap(100) + 1, "{n}");
            assert_eq!(buf.last(), Some(&CUT));
            let json = tape_json(&buf, 100);
            let note: serde_json::Value = serde_json::from_str(&json).unwrap();
            assert_eq!(note["_xray_truncated"], true);
        }
    }

    const LONG_NAME: &str = "a name of more than 255 bytes, said again and again and again and again and again and again and again and again and again and again and again and again and again and again and again and again and again and again and again and again and again and again and again and again and again and again and again";

    #[derive(serde::Serialize)]
    struct Named {
        #[serde(rename = "a \"quoted\"\tname, ünïcode")]
        quoted: u8,
        /// A variant named by more than 255 bytes (a field name takes the same way).
        long: Alone,
        kind: Kind,
        #[serde(rename = "")]
        empty: Vec<Kind>,
    }

    fn named() -> Named {
        Named {
            quoted: 7,
            long: Alone::Long,
            kind: Kind::Named { a: -1, b: Some(2) },
            empty: vec![Kind::Plain, Kind::Wrapped(0.5), Kind::Pair(3, 'c')],
        }
    }

    #[test]
    fn names_are_recorded_where_they_are_and_read_back_anywhere() {
        assert!(LONG_NAME.len() > 255, "longer than a one-byte length");
        same(&named(), 4096);
        // Cut at every size on the way, the tape gives the same note as direct serialising.
        for max in 1..400 {
            same(&named(), max);
        }
        // Read back on another thread, as the shipper does.
        let many: Vec<Named> = (0..50).map(|_| named()).collect();
        let mut direct = Vec::new();
        append_capped_json(&mut direct, &many, 1 << 20);
        let mut buf = Vec::new();
        record(&mut buf, &many, 1 << 20);
        let taped = std::thread::spawn(move || tape_json(&buf, 1 << 20))
            .join()
            .unwrap();
        assert_eq!(taped, String::from_utf8(direct).unwrap());
        assert!(taped.contains(LONG_NAME));
        // A name costs 13 bytes of tape whatever its length.
        let mut buf = Vec::new();
        record(&mut buf, &Kind::Plain, 4096);
        assert_eq!(buf.len(), 13);
    }

    #[derive(serde::Serialize)]
    enum Alone {
        #[serde(rename = "")]
        Empty,
        A,
        #[serde(
            rename = "a name of more than 255 bytes, said again and again and again and again and again and again and again and again and again and again and again and again and again and again and again and again and again and again and again and again and again and again and again and again and again and again and again"
        )]
        Long,
    }

    #[test]
    fn a_scalar_alone_gives_the_same_json_at_every_cap() {
        for max in 0..40 {
            for n in [0i64, 7, -7, 42, i64::MIN, i64::MAX] {
                same(&n, max);
            }
            for n in [0u64, 7, u64::MAX] {
                same(&n, max);
            }
            same(&7u128, max);
            same(&(u128::MAX - 1), max);
            same(&(i128::MIN + 1), max);
            for x in [0.0f64, 7.0, 0.5, -1.25, f64::MAX] {
                same(&x, max);
            }
            same(&7.5f32, max);
            same(&true, max);
            same(&false, max);
            same(&'c', max);
            for text in ["", "a", "ab\"c"] {
                same(text, max);
            }
            same(&[7u8], max);
            same(&json!(7), max);
        }
    }

    #[test]
    fn a_name_alone_gives_the_same_json_at_every_cap() {
        for max in 0..300 {
            same(&Alone::Empty, max);
            same(&Alone::A, max);
            same(&Alone::Long, max);
            same(&Some(Alone::A), max);
            same(&[Alone::A], max);
        }
    }

    /// Writes what reads as a `NAME` token (tag, an address no program has, a length), then
    /// panics.
    struct Forged;
    impl fmt::Display for Forged {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            let mut token = vec![NAME];
            token.extend_from_slice(&0x4141_4141_4141_4141u64.to_le_bytes());
            token.extend_from_slice(&5u32.to_le_bytes());
            f.write_str(std::str::from_utf8(&token).unwrap())?;
            panic!("a Display that panics after writing");
        }
    }

    /// A string made by `collect_str`.
    struct Collected<T>(T);
    impl<T: fmt::Display> Serialize for Collected<T> {
        fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            s.collect_str(&self.0)
        }
    }

    /// A sequence whose first element's `Display` panics, caught, then goes on.
    struct CatchesAndGoesOn;
    impl Serialize for CatchesAndGoesOn {
        fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            let mut seq = s.serialize_seq(None)?;
            let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                seq.serialize_element(&Collected(Forged))
            }));
            assert!(caught.is_err());
            seq.serialize_element("after")?;
            seq.end()
        }
    }

    #[test]
    fn text_left_by_a_panicking_display_is_never_read_as_tokens() {
        let mut buf = Vec::new();
        let n = record(&mut buf, &CatchesAndGoesOn, 4096);
        assert!(!buf.contains(&NAME), "{buf:?}");
        // Read back, the string the panic cut short is not there, and nothing else is read.
        assert_eq!(tape_json(&buf[..n], 4096), r#"["after"]"#);
    }
}
