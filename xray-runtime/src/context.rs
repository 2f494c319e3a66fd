//! The current run and step: a per-thread stack, entered explicitly and re-entered by futures
//! on every poll, so it follows the code across `.await` on any executor thread.
//!
//! Entering returns an [`Entered`] guard that is not `Send`: it cannot be held across an `.await`
//! in a spawned task by mistake (the compiler refuses), which is what would let one task's run
//! leak into another's. Futures carry their context with [`Instrument::in_xray`] instead,
//! the way `tracing`'s `Instrumented` carries a span.

use crate::correlation::Correlation;
use crate::run::Run;
use crate::step::Step;
use pin_project_lite::pin_project;
use std::cell::RefCell;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};

thread_local! {
    /// The contexts entered on this thread, each with the number of its [`Entered`] guard, and
    /// the number of the last guard.
    static STACK: RefCell<(Vec<(u64, Context)>, u64)> = const { RefCell::new((Vec::new(), 0)) };
}

/// A run and step to record into; `Context::current()` is the one code is running in.
///
/// Carry it into a thread or task explicitly:
///
/// ```
/// let ctx = xray::Context::current();
/// std::thread::spawn(move || ctx.in_scope(|| {
///     xray::current_step().reject("item-7", "too_far", ());
/// })).join().unwrap();
/// ```
#[derive(Clone, Default)]
pub struct Context {
    run: Run,
    step: Step,
    correlation: Option<Arc<Correlation>>,
}

impl Context {
    /// The innermost entered context of this thread (empty if none).
    pub fn current() -> Context {
        STACK
            .try_with(|s| s.borrow().0.last().map(|(_, ctx)| ctx.clone()))
            .ok()
            .flatten()
            .unwrap_or_default()
    }

    pub(crate) fn of_run(run: Run) -> Context {
        Context {
            run,
            step: Step::none(),
            correlation: None,
        }
    }

    pub(crate) fn of_step(step: Step) -> Context {
        Context {
            run: step.run(),
            step,
            correlation: None,
        }
    }

    /// The run (a no-op handle when there is none).
    pub fn run(&self) -> &Run {
        &self.run
    }

    /// The step (a no-op handle when there is none).
    pub fn step(&self) -> &Step {
        &self.step
    }

    /// This context with links that runs started in it will carry (see [`Correlation`]).
    ///
    /// ```
    /// # async fn handle() {}
    /// use xray::{Context, Correlation, Instrument};
    /// let ctx = Context::current().with_correlation(Correlation::new().id("req-42"));
    /// let fut = handle().in_xray(ctx); // runs started while it is polled carry `req-42`
    /// ```
    pub fn with_correlation(mut self, correlation: Correlation) -> Context {
        self.correlation = Some(Arc::new(correlation));
        self
    }

    /// The links a run started here would carry: the context's own, else its run's.
    pub fn correlation(&self) -> Correlation {
        let own = self.correlation.as_deref().cloned().unwrap_or_default();
        match self.run.correlation() {
            Some(of_run) => own.or(of_run),
            None => own,
        }
    }

    /// Makes this the current context of this thread until the guard is dropped.
    pub fn enter(&self) -> Entered {
        let entry = STACK.try_with(|s| {
            let (stack, last) = &mut *s.borrow_mut();
            *last = last.wrapping_add(1);
            stack.push((*last, self.clone()));
            *last
        });
        Entered {
            entry: entry.unwrap_or(u64::MAX),
            _not_send: PhantomData,
        }
    }

    /// Runs `f` with this as the current context.
    pub fn in_scope<R>(&self, f: impl FnOnce() -> R) -> R {
        let _entered = self.enter();
        f()
    }
}

/// While alive, its context is the current one (unless one entered later is alive too). Not
/// `Send`: drop it before an `.await`. Guards may be dropped in any order: each takes its own
/// context off the thread's stack.
#[must_use = "the context is current only while this guard lives"]
pub struct Entered {
    entry: u64,
    _not_send: PhantomData<*const ()>,
}

impl Drop for Entered {
    fn drop(&mut self) {
        let left = STACK.try_with(|s| {
            let stack = &mut s.borrow_mut().0;
            // Nearly always the top; searched for, so a guard dropped out of order takes its
            // own context away, not a later one's.
            let i = stack.iter().rposition(|(entry, _)| *entry == self.entry)?;
            Some(stack.remove(i))
        });
        // Dropped here, once the stack is no longer borrowed.
        drop(left);
    }
}

/// Carries an X-Ray context with a future: it is current during every poll, on whatever thread.
pub trait Instrument: Sized {
    /// Polls `self` inside `ctx`.
    fn in_xray(self, ctx: Context) -> Instrumented<Self> {
        Instrumented { inner: self, ctx }
    }

    /// Polls `self` inside the context current now (for `tokio::spawn(fut.in_current_xray())`).
    fn in_current_xray(self) -> Instrumented<Self> {
        self.in_xray(Context::current())
    }
}

impl<F: Future> Instrument for F {}

pin_project! {
    /// A future that enters its X-Ray context on every poll.
    pub struct Instrumented<F> {
        #[pin]
        inner: F,
        ctx: Context,
    }
}

impl<F: Future> Future for Instrumented<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<F::Output> {
        let this = self.project();
        let _entered = this.ctx.enter();
        this.inner.poll(cx)
    }
}
