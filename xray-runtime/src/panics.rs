//! What a panic said and where, for a run or step guard dropped while it unwinds: the guard
//! records it as its error (`panicked at src/filter.rs:42:9: index out of bounds`) rather than a
//! bare "panicked".
//!
//! A panic hook, installed once when the first client is made, notes each panic's message and
//! place for its thread and then calls the hook that was there before (so the default message,
//! or another tool's hook, still runs). A hook set later by the program replaces it; guards then
//! say "panicked" as before (what a guard reports is forgotten when a guard opens, so it never
//! names a panic from before it).

use std::any::Any;
use std::cell::RefCell;
use std::panic::PanicHookInfo;
use std::sync::Once;

thread_local! {
    /// The last panic of this thread, as its message and place.
    static LAST: RefCell<Option<String>> = const { RefCell::new(None) };
}

static HOOK: Once = Once::new();

/// Installs the hook (once per process).
pub(crate) fn install() {
    // The hook cannot be changed from a thread that is panicking (it would abort the process,
    // e.g. for a first client made in a destructor while unwinding): a later client installs it.
    if std::thread::panicking() {
        return;
    }
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let text = describe(info);
            let _ = LAST.try_with(|last| {
                if let Ok(mut last) = last.try_borrow_mut() {
                    *last = Some(text);
                }
            });
            previous(info);
        }));
    });
}

/// `panicked at FILE:LINE:COL: MESSAGE`, as Rust's own hook words it.
fn describe(info: &PanicHookInfo<'_>) -> String {
    match (info.location(), payload_text(info.payload())) {
        (Some(at), Some(m)) => format!("panicked at {at}: {m}"),
        (Some(at), None) => format!("panicked at {at}"),
        (None, Some(m)) => format!("panicked: {m}"),
        (None, None) => "panicked".to_string(),
    }
}

/// The message of a panic, when it is text.
pub(crate) fn payload_text(payload: &(dyn Any + Send)) -> Option<&str> {
    let text = payload.downcast_ref::<String>().map(String::as_str);
    text.or_else(|| payload.downcast_ref::<&str>().copied())
}

/// Forgets this thread's last panic: a guard opening now reports only a panic that happens
/// after it (not one caught earlier, if a later panic bypasses the hook: `resume_unwind`, or
/// a hook the program set after ours).
pub(crate) fn forget() {
    if std::thread::panicking() {
        return; // (a guard opened while unwinding: the panic in progress is still the one)
    }
    let _ = LAST.try_with(|last| last.try_borrow_mut().map(|mut last| last.take()));
}

/// Sets the `error` of a run or step ending while this thread panics, unless it has one: the
/// panic's message and place when the hook saw it, else "panicked".
pub(crate) fn note(error: &mut Option<String>) {
    if error.is_some() || !std::thread::panicking() {
        return;
    }
    let last = LAST.try_with(|last| last.try_borrow().ok().and_then(|l| l.clone()));
    *error = Some(
        last.ok()
            .flatten()
            .unwrap_or_else(|| "panicked".to_string()),
    );
}
