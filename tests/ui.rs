//! Compile-time diagnostics of `#[derive(Service)]` and `#[netsvc::methods]`.
//!
//! Every `tests/ui/*.rs` is a misuse that must fail to compile with the error recorded in the
//! matching `.stderr`; `tests/ui/pass/*.rs` must compile. Regenerate the snapshots with
//! `TRYBUILD=overwrite cargo test --test ui`.

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.pass("tests/ui/pass/*.rs");
    t.compile_fail("tests/ui/*.rs");
}
