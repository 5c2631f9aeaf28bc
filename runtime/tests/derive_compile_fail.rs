//! `#[derive(vmcs_derive::VmcsFields)]` mistakes are compile errors at the offending token.

#[test]
fn derive_rejects_mistakes() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/derive_ui/*.rs");
}
