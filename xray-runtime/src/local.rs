//! A recorder that only the thread which opened a step touches, so recording through the step's
//! guard on that thread takes no lock (a lock's atomic instructions cost more than counting the
//! event). Other threads, and handles, record through the step's shared, locked recorder; the
//! two are merged when the step ends.

use crate::sampling::Recorder;
use std::cell::{Cell, UnsafeCell};
use std::num::NonZeroU64;
use std::sync::atomic::{AtomicU64, Ordering};

/// The next thread token to hand out (0 is never one).
static NEXT_TOKEN: AtomicU64 = AtomicU64::new(1);

thread_local! {
    /// This thread's token, 0 until first asked for.
    static TOKEN: Cell<u64> = const { Cell::new(0) };
}

/// A number naming the calling thread, unique over the life of the process (a `ThreadId` costs a
/// reference count to read). `None` while the thread's locals are being torn down.
#[inline]
fn thread_token() -> Option<NonZeroU64> {
    TOKEN
        .try_with(|token| match token.get() {
            0 => {
                let new = NEXT_TOKEN.fetch_add(1, Ordering::Relaxed);
                token.set(new);
                new
            }
            known => known,
        })
        .ok()
        .and_then(NonZeroU64::new)
}

/// The owner thread's recorder of a step guard.
pub(crate) struct Local {
    /// The thread that may use `rec` through `&self` (`None`: no thread may).
    owner: Option<NonZeroU64>,
    /// Whether the owner is inside a call already (a `Serialize` impl that records into the same
    /// step): the inner call goes the locked way rather than alias the recorder.
    busy: Cell<bool>,
    rec: UnsafeCell<Recorder>,
}

// SAFETY: `busy` and `rec` are reached through `&self` only in `Local::with`, which first checks
// that the calling thread is `owner`. A thread token names one thread for the whole life of the
// process, so all those accesses happen on one thread, one after the other; `busy` keeps a
// re-entrant call on that thread from making a second `&mut` to `rec` while the first is live.
// Every other access goes through `&mut self`, which the borrow rules make exclusive (and a
// `Local` moved to another thread is handed over with the synchronisation that the move itself
// needs). So no two threads ever touch `busy` or `rec` at the same time.
unsafe impl Sync for Local {}

impl Local {
    /// A recorder for the calling thread (`rec` recording nothing is fine: it stays empty).
    pub(crate) fn new(rec: Recorder, enabled: bool) -> Local {
        Local {
            owner: if enabled { thread_token() } else { None },
            busy: Cell::new(false),
            rec: UnsafeCell::new(rec),
        }
    }

    /// Runs `f` on the recorder if the calling thread owns it and is not already inside `f`;
    /// `None` otherwise (the caller then records the locked way).
    #[inline]
    pub(crate) fn with<R>(&self, f: impl FnOnce(&mut Recorder) -> R) -> Option<R> {
        let owner = self.owner?;
        if thread_token() != Some(owner) || self.busy.get() {
            return None;
        }
        self.busy.set(true);
        // SAFETY: the calling thread is the owner and not inside this function already (see the
        // `Sync` impl above), so this is the only reference to the recorder while `f` runs. If
        // `f` panics, `busy` stays set and later calls take the locked way.
        let result = f(unsafe { &mut *self.rec.get() });
        self.busy.set(false);
        Some(result)
    }

    /// Moves what was recorded out (the guard is ending).
    pub(crate) fn take(&mut self) -> Recorder {
        self.rec.get_mut().take()
    }
}

#[cfg(test)]
mod tests {
    use crate::{Step, StepGuard};

    #[test]
    fn guards_and_handles_still_go_anywhere() {
        fn send_sync<T: Send + Sync>() {}
        send_sync::<StepGuard>();
        send_sync::<Step>();
    }
}
