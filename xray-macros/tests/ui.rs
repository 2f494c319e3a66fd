//! Compile-time checks of the attributes: every mistake is a compile error pointing at it
//! (`ui/fail/*.rs` with their `.stderr`), and every supported function form compiles and runs
//! (`ui/pass/*.rs`). Refresh the snapshots with `TRYBUILD=overwrite cargo test --test ui`.

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/fail/*.rs");
    t.pass("tests/ui/pass/*.rs");
}
