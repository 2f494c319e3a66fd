//! Recording an event that is only counted allocates nothing: the details are not serialised
//! and the item id is not copied unless the event is kept. Counted with a global allocator that
//! counts the allocations of the calling thread (the shipper's thread does not disturb it).

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::time::Duration;
use xray::{Capture, OfflineMode, StepGuard, StepType, XRay};

struct Counting;

thread_local! { static ALLOCATIONS: Cell<u64> = const { Cell::new(0) }; }

// SAFETY: every call is forwarded unchanged to the system allocator; counting touches only a
// thread-local `Cell` (no allocation, no lock).
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|c| c.set(c.get() + 1));
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations() -> u64 {
    ALLOCATIONS.with(Cell::get)
}

#[derive(serde::Serialize)]
struct Price {
    price: u64,
    threshold: u64,
}

#[test]
fn an_event_only_counted_allocates_nothing() {
    let xray = XRay::builder()
        .endpoint("http://127.0.0.1:9")
        .offline_mode(OfflineMode::Silent)
        .max_attempts(1)
        .client("allocations");
    let run = xray.run(());
    // Rejections of typed details over three reasons; the allocations they made.
    let reject = |step: &StepGuard, items: std::ops::Range<u64>| {
        let before = allocations();
        for i in items {
            let reason = ["price_too_high", "low_rating", "category_mismatch"][(i % 3) as usize];
            let details = Price {
                price: i,
                threshold: 100,
            };
            step.reject(i, reason, details);
        }
        allocations() - before
    };

    // Counts only: after each reason's first event, nothing at all.
    let step = run.step_with_capture("counted", StepType::Filter, Capture::Minimal);
    reject(&step, 0..3);
    assert_eq!(reject(&step, 3..5000), 0);
    let before = allocations();
    for i in 0..5000u64 {
        step.accept(i);
    }
    assert_eq!(allocations() - before, 0);
    drop(step);

    // Samples: allocations grow with the events kept, not with the events recorded.
    let step = run.step("sampled", StepType::Filter);
    reject(&step, 0..3);
    let first = reject(&step, 3..5000);
    let next = reject(&step, 5000..50_000);
    // 45,000 more events, of which the reservoirs keep a few hundred: a handful of buffer
    // growths at most, nothing per event.
    assert!(
        first < 100,
        "{first} allocations for the first 5,000 events"
    );
    assert!(next < 20, "{next} allocations for 45,000 more");
    drop(step);
    drop(run);
    let _ = xray.flush(Duration::from_secs(5));
}
