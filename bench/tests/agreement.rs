//! Before any timing means anything: ours and the C baseline agree on every 16-bit encoding, with
//! bits 15, 16, 31, 32 and 63 set, and on the timed mix.

use vmcs::Layout;
use vmcs_bench::{agreement_inputs, check_agreement, inputs, kvm};

#[test]
fn ours_and_kvms_c_agree_on_every_input() {
    let all = agreement_inputs(&inputs());
    assert_eq!(all.len(), 6 * 65536 + 4096);
    let valid = check_agreement(&all).unwrap();
    // 147 mapped fields, 37 of them 64-bit with a high half: 184 encodings, in each of the 16-bit
    // space and the 5 copies with a high bit (which name no field), plus the valid part of the mix.
    assert_eq!(valid - inputs().iter().filter(|&&e| vmcs::Vmcs12::locate(e).is_some()).count(), 184);
    assert_eq!(kvm::table_len(), 3273);
}
