//! The first client of a process made while a thread is panicking (in a destructor run by the
//! unwinding): the panic hook cannot be installed then, and trying would abort the process. In
//! a test binary of its own, so that no other test has made a client first.

use std::time::Duration;

struct MakesAClientWhenDropped;

impl Drop for MakesAClientWhenDropped {
    fn drop(&mut self) {
        let config = xray::Config::builder()
            .endpoint("http://127.0.0.1:9")
            .offline_mode(xray::OfflineMode::Silent)
            .http_timeout(Duration::from_millis(50))
            .build();
        let xray = xray::XRay::with_config("late", config);
        drop(xray.run(()));
    }
}

#[test]
fn a_first_client_made_while_unwinding_does_not_abort() {
    let unwound = std::panic::catch_unwind(|| {
        let _late = MakesAClientWhenDropped;
        panic!("boom");
    });
    assert!(unwound.is_err(), "the panic went on as panics do");
    // The hook is installed by the next client made outside a panic.
    drop(MakesAClientWhenDropped);
}
