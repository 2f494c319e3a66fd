//! A recorder that only the thread which opened a step touches, so recording through the step's
//! guard on that thread takes no lock (a lock's atomic instructions cost more than counting the
//! event). Other threads, and handles, record through the step's shared, locked recorder; the
//! two are merged when the step ends.

use crate::sampling::Recorder;
use std::cell::{Cell, UnsafeCell};
use std::sync::atomic::{AtomicU64, Ordering};

/// The next thread token to hand out (0 is never one; tokens stay below [`BUSY`]).
static NEXT_TOKEN: AtomicU64 = AtomicU64::new(1);

/// Set in a [`Local`]'s state while its owner is inside a call (and alone when it has no
/// owner): a state with it set matches no thread's token.
const BUSY: u64 = 1 << 63;

thread_local! {
    /// This thread's token, 0 until the thread opens its first step.
    static TOKEN: Cell<u64> = const { Cell::new(0) };
}

/// A number naming the calling thread, unique over the life of the process (a `ThreadId` costs a
/// reference count to read), given out on first use; `None` while the thread's locals are being
/// torn down.
fn thread_token() -> Option<u64> {
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
        .filter(|&token| token != 0 && token < BUSY)
}

/// The calling thread's token if it has one, else 0 (which matches no [`Local`]). No lazy
/// set-up on this path: a thread that owns a `Local` was given its token when it made it.
#[inline(always)]
fn current_token() -> u64 {
    TOKEN.try_with(Cell::get).unwrap_or(0)
}

/// The owner thread's recorder of a step guard.
pub(crate) struct Local {
    /// The owner's token while nothing runs on the recorder; the token with [`BUSY`] set while
    /// the owner is inside [`Local::with`] (a `Serialize` impl that records into the same step
    /// then goes the locked way rather than alias the recorder); [`BUSY`] alone when no thread
    /// may use it. One load and one compare tell whether the calling thread may go ahead.
    /// Atomic because any thread reads it; only the owner writes it after `new`.
    state: AtomicU64,
    rec: UnsafeCell<Recorder>,
}

// SAFETY: `rec` is reached through `&self` only in `Local::with` and `Local::quick`, and only
// when `state` equals the calling thread's token. `state` holds a token only while it is the
// owner's token with `BUSY` clear: `new` stores the creating thread's token (unique to that
// thread for the whole life of the process, and below `BUSY`), and afterwards only the owner,
// inside `with`, writes it (its token with `BUSY` set, then its token again). A thread with no
// token reads 0 as its token, which `state` never holds. So `rec` is only reached from the
// owner thread, and not while a call of `with` on that thread is already using it; nor while
// `quick`'s closure runs, which by `quick`'s contract runs nothing that could reach this
// `Local`. Every other access goes through `&mut self`, which the borrow rules make exclusive
// (and a `Local` moved to another thread is handed over with the synchronisation that the move
// itself needs).
unsafe impl Sync for Local {}

impl Local {
    /// A recorder for the calling thread (`rec` recording nothing is fine: it stays empty).
    pub(crate) fn new(rec: Recorder, enabled: bool) -> Local {
        let owner = if enabled { thread_token() } else { None };
        Local {
            state: AtomicU64::new(owner.unwrap_or(BUSY)),
            rec: UnsafeCell::new(rec),
        }
    }

    /// Runs `f` on the recorder with `arg` if the calling thread owns it and is not already
    /// inside `f`; gives `arg` back otherwise (the caller then records the locked way).
    #[inline(always)]
    pub(crate) fn with<T, R>(&self, arg: T, f: impl FnOnce(&mut Recorder, T) -> R) -> Result<R, T> {
        let me = current_token();
        if self.state.load(Ordering::Relaxed) != me {
            return Err(arg);
        }
        self.state.store(me | BUSY, Ordering::Relaxed);
        // SAFETY: the calling thread is the owner and not inside this function already (see the
        // `Sync` impl above), so this is the only reference to the recorder while `f` runs. If
        // `f` panics, the state stays busy and later calls take the locked way.
        let result = f(unsafe { &mut *self.rec.get() }, arg);
        self.state.store(me, Ordering::Relaxed);
        Ok(result)
    }

    /// Runs `f` on the recorder if the calling thread owns it and is not inside [`Local::with`]
    /// (`None` otherwise), without marking it busy: the stores that mark it cost more than
    /// counting an event does.
    ///
    /// # Safety
    ///
    /// `f` must run nothing that could reach this `Local` again: none of the caller's code (no
    /// `Serialize`, `Display`, `IntoItemId` or `Drop` of theirs), no allocation (a global
    /// allocator is someone's code too), no locks or I/O — only this crate's own arithmetic on
    /// the recorder — and it must not panic (the panic hook is someone's code, and runs while
    /// the recorder is still borrowed). Whatever needs more goes through [`Local::with`].
    /// (Recording from a signal handler is not supported on any path: it allocates and locks.)
    #[inline(always)]
    pub(crate) unsafe fn quick<R>(&self, f: impl FnOnce(&mut Recorder) -> R) -> Option<R> {
        if self.state.load(Ordering::Relaxed) != current_token() {
            return None;
        }
        // SAFETY: as in `with`, the calling thread is the owner and not inside `with`; and `f`
        // neither runs anything that could call `quick` or `with` again nor panics (the
        // caller's promise), so this is the only reference to the recorder while `f` runs.
        Some(f(unsafe { &mut *self.rec.get() }))
    }

    /// Moves what was recorded out (the guard is ending).
    pub(crate) fn take(&mut self) -> Recorder {
        self.rec.get_mut().take()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Step, StepGuard};
    use xray_wire::Capture;

    #[test]
    fn guards_and_handles_still_go_anywhere() {
        fn send_sync<T: Send + Sync>() {}
        send_sync::<StepGuard>();
        send_sync::<Step>();
    }

    #[test]
    fn only_the_owner_outside_a_call_gets_the_recorder() {
        let local = Local::new(Recorder::new(Capture::Minimal, 0, 1), true);
        assert_eq!(local.with(1, |_, n| n + 1), Ok(2));
        // Inside a call (a re-entrant `Serialize`): the locked way.
        assert_eq!(local.with((), |_, ()| local.with(7, |_, n| n)), Ok(Err(7)));
        assert_eq!(
            local.with(3, |_, n| n),
            Ok(3),
            "usable again after the call"
        );
        std::thread::scope(|s| {
            s.spawn(|| assert_eq!(local.with(5, |_, n| n), Err(5), "another thread"));
            // A thread that opened a step of its own still does not own this one.
            s.spawn(|| {
                let _mine = Local::new(Recorder::new(Capture::Minimal, 0, 1), true);
                assert_eq!(local.with(6, |_, n| n), Err(6));
            });
        });
        let off = Local::new(Recorder::new(Capture::Minimal, 0, 1), false);
        assert_eq!(off.with(4, |_, n| n), Err(4), "no owner");
    }

    #[test]
    fn the_quick_way_is_the_owners_outside_a_call_too() {
        // SAFETY (all `quick` calls here): the closures only return a number.
        let local = Local::new(Recorder::new(Capture::Minimal, 0, 1), true);
        assert_eq!(unsafe { local.quick(|_| 1) }, Some(1));
        assert_eq!(
            local.with((), |_, ()| unsafe { local.quick(|_| 2) }),
            Ok(None),
            "not inside a call"
        );
        std::thread::scope(|s| {
            s.spawn(|| assert_eq!(unsafe { local.quick(|_| 3) }, None, "another thread"));
        });
        let off = Local::new(Recorder::new(Capture::Minimal, 0, 1), false);
        assert_eq!(unsafe { off.quick(|_| 4) }, None, "no owner");
    }
}
