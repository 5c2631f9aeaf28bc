//! Width and read-only mistakes must not compile.

#[test]
fn typed_api_rejects_misuse() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/*.rs");
}
