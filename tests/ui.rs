//! The compile-time contract of `#[nn::jit]`: what must compile (and run), and what must be a
//! compile error with a span on the user's code (`tests/ui/fail/*.stderr`).

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.pass("tests/ui/pass/*.rs");
    t.compile_fail("tests/ui/fail/*.rs");
}
