use vmcs_derive::field_encoding;

#[test]
fn encodings_come_from_the_schema() {
    // Values from the Intel SDM (Appendix B), not from the schema under test.
    assert_eq!(field_encoding!(GUEST_RIP), 0x681e);
    assert_eq!(field_encoding!(VM_EXIT_REASON), 0x4402);
    assert_eq!(field_encoding!(TSC_MULTIPLIER), 0x2032);
}
