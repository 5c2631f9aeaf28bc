//! How an L0 serves L1's VMCS, without VMX hardware: L1's capabilities and the VMCS_ENUM it is
//! told, its VMWRITE/VMREAD emulated on vmcs12 with the VM-instruction errors a processor gives,
//! the shadow VMCS filled after a nested exit, and the vCPU's nested state saved and checked as
//! `KVM_SET_NESTED_STATE` would on the destination.
//!
//! Run with `cargo run -p vmcs --example l1_vmcs`.

use vmcs::caps::{Msr, VmxCaps};
use vmcs::copy::shadow_read_write;
use vmcs::nested_state::{self, NestedStateBuilder, VMCS12_REVISION, VcpuContext};
use vmcs::soft::SoftVmcs;
use vmcs::{Layout, VmInstructionError, Vmcs12, VmcsRead, VmcsWrite, fields};

/// The VM-instruction error L1 sees for a VMREAD/VMWRITE of an encoding vmcs12 lacks.
const UNSUPPORTED: VmInstructionError = VmInstructionError::UnsupportedComponent;

/// L1's VMWRITE: the encoding and the value come from L1's registers.
fn l1_vmwrite(vmcs12: &mut Vmcs12, encoding: u64, value: u64) -> Result<(), VmInstructionError> {
    vmcs12.write_raw(encoding, value).map_err(|_| UNSUPPORTED)
}

/// L1's VMREAD.
fn l1_vmread(vmcs12: &Vmcs12, encoding: u64) -> Result<u64, VmInstructionError> {
    vmcs12.read_raw(encoding).map_err(|_| UNSUPPORTED)
}

fn main() {
    // What L0 offers L1: TRUE control MSRs (IA32_VMX_BASIC bit 55), and in IA32_VMX_TRUE_ENTRY_CTLS
    // "load IA32_PAT" (control 14) and "IA-32e mode guest" (control 9) allowed.
    let mut caps = VmxCaps::new();
    caps.set(Msr::Basic.index(), 1 << 55);
    caps.set(Msr::TrueEntry.index(), (1 << (32 + 14)) | (1 << (32 + 9)));
    println!("GUEST_IA32_PAT exists for L1: {}", fields::exists(fields::GUEST_IA32_PAT.raw(), &caps));
    println!("IA32_VMX_VMCS_ENUM L1 reads: {:#x}", Vmcs12::vmcs_enum(&caps));

    let mut vmcs12 = Vmcs12::zeroed();
    vmcs12.hdr = VMCS12_REVISION;
    vmcs12.vmcs_link_pointer = u64::MAX;
    for (encoding, value) in [(fields::GUEST_RIP.raw(), 0x1000), (fields::GUEST_IA32_PAT.raw(), 0x0007_0406_0007_0406)]
    {
        println!("L1 VMWRITE {encoding:#06x} <- {value:#x}: {:?}", l1_vmwrite(&mut vmcs12, encoding, value));
    }
    for encoding in [fields::GUEST_IA32_PAT.raw() | 1, fields::EPTP_INDEX.raw(), u64::MAX] {
        match l1_vmread(&vmcs12, encoding) {
            Ok(v) => println!("L1 VMREAD {encoding:#06x}: {v:#x}"),
            Err(e) => println!("L1 VMREAD {encoding:#06x}: VMfailValid, {e}"),
        }
    }

    // After a nested exit, with VMCS shadowing: what L1 reads without exiting.
    let mut shadow = SoftVmcs::new(&caps);
    shadow_read_write(&vmcs12, &mut shadow, &caps).expect("the shadow VMCS has these fields");
    println!("shadow VMCS GUEST_RIP: {:x?}", shadow.read(fields::GUEST_RIP));

    // Migration: the nested state, and the destination's verdict.
    let builder = NestedStateBuilder::new().vmxon_pa(0x10_0000).vmcs12_pa(0x10_1000).vmcs12(Some(vmcs12));
    let mut blob = [0u8; 128 + 4096];
    let len = builder.emit(&mut blob).expect("the buffer holds a header and a vmcs12 area");
    match nested_state::check(&blob[..len], &VcpuContext::default()) {
        Ok(state) => println!("nested state: {len} bytes, accepted; vmcs12 back: {}", state.vmcs12() == Some(vmcs12)),
        Err(e) => println!("nested state: rejected: {e}"),
    }
}
