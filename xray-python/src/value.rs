//! Python values as X-Ray sees them: details, inputs and outputs written as JSON straight from
//! the Python objects (only when the runtime keeps them), and item ids. What `json` cannot
//! encode is written as its `repr`; nothing here ever raises.

use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple};
use serde::ser::{SerializeMap, SerializeSeq};
use serde::{Serialize, Serializer};
use serde_json::Value;
use std::cell::Cell;
use xray::IntoItemId;

/// How deep nested containers are followed; deeper ones (and cycles) are written as `repr`.
const MAX_DEPTH: usize = 64;

/// A Python value that serialises as JSON when (and only if) the runtime asks for it.
pub struct PyJson<'a, 'py> {
    obj: &'a Bound<'py, PyAny>,
    depth: usize,
    budget: Option<&'a Budget>,
}

impl<'a, 'py> PyJson<'a, 'py> {
    /// The value `obj`, written as JSON on demand.
    pub fn new(obj: &'a Bound<'py, PyAny>) -> Self {
        PyJson {
            obj,
            depth: 0,
            budget: None,
        }
    }

    fn child(&self, obj: &'a Bound<'py, PyAny>) -> Self {
        PyJson {
            obj,
            depth: self.depth + 1,
            budget: self.budget,
        }
    }

    /// Counts `n` bytes of JSON against the budget, if there is one.
    #[inline]
    fn spend(&self, n: usize) {
        if let Some(b) = self.budget {
            b.left.set(b.left.get().saturating_sub(n));
        }
    }

    /// Whether the budget is used up (never without one).
    #[inline]
    fn spent(&self) -> bool {
        self.budget.is_some_and(|b| b.left.get() == 0)
    }
}

/// About how many bytes of JSON a value converted ahead of time may take: past it, the rest of
/// the value is left out and a filler of `cap` bytes put in its place, so the runtime's capped
/// writer (which stops at the same cap) still marks the value truncated, with a preview of
/// what came first. A huge input thus costs no more to convert than its first bytes.
pub struct Budget {
    left: Cell<usize>,
    cap: usize,
}

/// What stands for the part of a value past its budget.
struct Filler(usize);

impl Serialize for Filler {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&" ".repeat(self.0))
    }
}

/// `repr(obj)`, or a note when even that fails.
pub fn repr_of(obj: &Bound<'_, PyAny>) -> String {
    match obj.repr() {
        Ok(r) => r.to_string_lossy().into_owned(),
        Err(_) => format!("<unrepresentable {}>", type_name(obj)),
    }
}

/// `str(obj)`, else its `repr`.
pub fn str_of(obj: &Bound<'_, PyAny>) -> String {
    match obj.str() {
        Ok(s) => s.to_string_lossy().into_owned(),
        Err(_) => repr_of(obj),
    }
}

/// The name of `obj`'s type.
pub fn type_name(obj: &Bound<'_, PyAny>) -> String {
    obj.get_type()
        .name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|_| "object".to_string())
}

/// A dict key as `json.dumps` writes it: strings as they are, numbers, booleans and `None` as
/// their JSON text; anything else (which `json` refuses) as its `repr`.
fn key_text(key: &Bound<'_, PyAny>) -> String {
    if let Ok(s) = key.cast::<PyString>() {
        return s.to_string_lossy().into_owned();
    }
    if key.is_none() {
        return "null".into();
    }
    if let Ok(b) = key.cast::<PyBool>() {
        return if b.is_true() { "true" } else { "false" }.into();
    }
    if key.is_instance_of::<PyInt>() || key.is_instance_of::<PyFloat>() {
        return str_of(key);
    }
    repr_of(key)
}

impl Serialize for PyJson<'_, '_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let obj = self.obj;
        if let Ok(text) = obj.cast::<PyString>() {
            return match text.to_str() {
                Ok(t) => {
                    self.spend(t.len() + 2);
                    s.serialize_str(t)
                }
                // Lone surrogates: kept as replacement characters.
                Err(_) => s.serialize_str(&text.to_string_lossy()),
            };
        }
        self.spend(8);
        if obj.is_none() {
            return s.serialize_unit();
        }
        if let Ok(b) = obj.cast::<PyBool>() {
            return s.serialize_bool(b.is_true());
        }
        if obj.is_instance_of::<PyInt>() {
            if let Ok(n) = obj.extract::<i64>() {
                return s.serialize_i64(n);
            }
            if let Ok(n) = obj.extract::<u64>() {
                return s.serialize_u64(n);
            }
            // Beyond 64 bits: its digits, as text.
            return s.serialize_str(&str_of(obj));
        }
        if let Ok(f) = obj.cast::<PyFloat>() {
            // NaN and infinities, which JSON has no words for, become null.
            return s.serialize_f64(f.value());
        }
        if self.depth >= MAX_DEPTH {
            return s.serialize_str(&repr_of(obj));
        }
        if let Ok(dict) = obj.cast::<PyDict>() {
            let mut map = s.serialize_map(Some(dict.len()))?;
            for (k, v) in dict.iter() {
                if let Some(b) = self.budget.filter(|_| self.spent()) {
                    map.serialize_entry("…", &Filler(b.cap))?;
                    break;
                }
                let key = key_text(&k);
                self.spend(key.len() + 4);
                map.serialize_entry(&key, &self.child(&v))?;
            }
            return map.end();
        }
        if let Ok(list) = obj.cast::<PyList>() {
            let mut seq = s.serialize_seq(Some(list.len()))?;
            // Indexed, not iterated: a list changed while being written is never an error.
            let mut i = 0;
            while let Ok(item) = list.get_item(i) {
                if let Some(b) = self.budget.filter(|_| self.spent()) {
                    seq.serialize_element(&Filler(b.cap))?;
                    break;
                }
                seq.serialize_element(&self.child(&item))?;
                i += 1;
            }
            return seq.end();
        }
        if let Ok(tuple) = obj.cast::<PyTuple>() {
            let mut seq = s.serialize_seq(Some(tuple.len()))?;
            for item in tuple.iter() {
                if let Some(b) = self.budget.filter(|_| self.spent()) {
                    seq.serialize_element(&Filler(b.cap))?;
                    break;
                }
                seq.serialize_element(&self.child(&item))?;
            }
            return seq.end();
        }
        let text = repr_of(obj);
        self.spend(text.len() + 2);
        s.serialize_str(&text)
    }
}

/// The value as a `serde_json::Value` (for what is recorded under the step's lock, so that no
/// Python code runs while it is held). Writing a Python value never fails (what `json` cannot
/// encode is its `repr`), so the `null` fallback is never reached.
/// Converts no more than about `cap` bytes' worth of it ([`Budget`]).
pub fn to_value(obj: &Bound<'_, PyAny>, cap: usize) -> Value {
    let budget = Budget {
        left: Cell::new(cap),
        cap,
    };
    let json = PyJson {
        obj,
        depth: 0,
        budget: Some(&budget),
    };
    serde_json::to_value(json).unwrap_or(Value::Null)
}

/// An item id from Python: a `str` as it is, an `int` as a number (its text when kept), anything
/// else as its `str()`. Read only when the event is kept.
pub struct PyItemId<'a, 'py>(pub &'a Bound<'py, PyAny>);

impl IntoItemId for PyItemId<'_, '_> {
    #[inline]
    fn with_id_text<R>(self, f: impl FnOnce(&str) -> R) -> R {
        let obj = self.0;
        if let Ok(s) = obj.cast::<PyString>() {
            if let Ok(t) = s.to_str() {
                return f(t);
            }
            return f(&s.to_string_lossy());
        }
        if obj.is_instance_of::<PyInt>() && !obj.is_instance_of::<PyBool>() {
            if let Ok(n) = obj.extract::<i64>() {
                return f(&n.to_string());
            }
        }
        f(&str_of(obj))
    }

    #[inline]
    fn as_number(&self) -> Option<u64> {
        let obj = self.0;
        if obj.is_exact_instance_of::<PyInt>() {
            obj.extract::<u64>().ok()
        } else {
            None
        }
    }
}
