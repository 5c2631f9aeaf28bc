//! Facts this crate needs before the schema generates them (engineer `tables` is generating MSR
//! descriptors: index, TRUE index, `requires`): kept here, in one place, to be deleted when the
//! generated ones land on main. From the SDM, Appendix A (the capability MSRs).

use vmcs::caps::{Cap, Capabilities, VmxCaps};

/// The control capability MSRs: (plain index, TRUE index). Allowed-1 settings are bits 63:32.
pub const CONTROL_MSRS: [(u32, Option<u32>); 5] =
    [(0x481, Some(0x48d)), (0x482, Some(0x48e)), (0x483, Some(0x48f)), (0x484, Some(0x490)), (0x48b, None)];

/// Whether capability MSR `index` exists for `caps` (the schema's `requires`
/// gates, SDM Appendix A).
pub fn msr_exists(caps: &VmxCaps, index: u32) -> bool {
    match index {
        0x480..=0x48a => true,
        0x48b => caps.has(Cap::ProcActivateSecondaryControls),
        0x48c => caps.has(Cap::Proc2EnableEpt) || caps.has(Cap::Proc2EnableVpid),
        0x48d..=0x490 => caps.has(Cap::BasicTrueCtls),
        0x491 => caps.has(Cap::Proc2EnableVmFunctions),
        0x492 => caps.has(Cap::ProcActivateTertiaryControls),
        0x493 => caps.has(Cap::ExitActivateSecondaryControls),
        _ => false,
    }
}
