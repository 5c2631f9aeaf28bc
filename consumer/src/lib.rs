//! What a `#![no_std]` hypervisor does with the packaged crates, built under a schema with one
//! more field than the shipped one (`GUEST_IA32_FOO`, 0x2832, gated by `entry.load_ia32_foo`,
//! VM-entry control bit 25), as scripts/package-check writes it.
#![no_std]

use vmcs::caps::{Msr, VmxCaps};
use vmcs::nested_state::{NestedStateBuilder, VcpuContext};
use vmcs::{Layout, Vmcs12, VmcsError, VmcsRead, VmcsWrite, fields};

/// Guest state the hypervisor keeps in its own struct; the derive reads the same schema as the
/// runtime, so it knows the new field.
#[derive(vmcs_derive::VmcsFields, Debug, Default, PartialEq, Eq)]
#[vmcs(store)]
pub struct GuestFoo {
    pub guest_ia32_foo: u64,
    pub guest_rip: u64,
    pub guest_cs_selector: u16,
}

/// Capabilities with "load IA32_FOO" allowed (or not): the allowed-1 half of the TRUE entry MSR.
pub fn caps(load_foo: bool) -> VmxCaps {
    let mut caps = VmxCaps::new();
    caps.set(Msr::Basic.index(), 1 << 55); // TRUE controls exist
    caps.set(Msr::TrueEntry.index(), u64::from(load_foo) << (32 + 25));
    caps
}

/// Does GUEST_IA32_FOO exist, and the IA32_VMX_VMCS_ENUM these capabilities give.
pub fn foo_exists(caps: &VmxCaps) -> (bool, u64) {
    (fields::exists(fields::GUEST_IA32_FOO.raw(), caps), fields::vmcs_enum(caps))
}

/// Typed access: write the new field and RIP, read them back.
pub fn typed_round_trip<B: VmcsRead + VmcsWrite>(vmcs: &mut B, foo: u64) -> Result<(u64, u64), VmcsError> {
    vmcs.write(fields::GUEST_IA32_FOO, foo)?;
    vmcs.write(fields::GUEST_RIP, 0xfff0)?;
    Ok((vmcs.read(fields::GUEST_IA32_FOO)?, vmcs.read(fields::GUEST_RIP)?))
}

/// L1's VMREAD of an encoding it chose, on its vmcs12: never a panic, whatever the encoding.
pub fn l1_vmread(vmcs12: &Vmcs12, encoding: u64) -> Option<u64> {
    vmcs12.read_raw(encoding).ok()
}

/// A generated copy routine: vmcs12's read-write shadow fields into a shadow VMCS.
pub fn to_shadow<D: VmcsRead + VmcsWrite>(vmcs12: &Vmcs12, shadow: &mut D, caps: &VmxCaps) -> Result<(), VmcsError> {
    vmcs::copy::shadow_read_write(vmcs12, shadow, caps)
}

/// KVM_SET_NESTED_STATE's verdict on a blob in L1 (VMXON, a current vmcs12), emitted into `out`.
pub fn nested_state_in_l1(vmcs12: &Vmcs12, out: &mut [u8]) -> Result<usize, &'static str> {
    let mut vmcs12 = *vmcs12;
    vmcs12.hdr = vmcs::nested_state::VMCS12_REVISION;
    vmcs12.vmcs_link_pointer = u64::MAX;
    let vmcs12 = &vmcs12;
    let builder: NestedStateBuilder<Vmcs12> =
        NestedStateBuilder::new().vmxon_pa(0x1000).vmcs12_pa(0x2000).vmcs12(Some(*vmcs12));
    let n = builder.emit(out).map_err(|_| "emit")?;
    let state = vmcs::nested_state::check(&out[..n], &VcpuContext::default()).map_err(|_| "rejected")?;
    if state.vmcs12().is_some_and(|v| v.read_raw(fields::GUEST_RIP.raw()) == vmcs12.read_raw(fields::GUEST_RIP.raw())) {
        Ok(n)
    } else {
        Err("vmcs12 did not come back")
    }
}

#[cfg(test)]
mod tests {
    extern crate std;

    use super::*;
    use vmcs::soft::SoftVmcs;

    #[test]
    fn the_new_field_exists_only_with_its_control() {
        assert_eq!(foo_exists(&caps(true)).0, true);
        assert_eq!(foo_exists(&caps(false)).0, false);
        // 0x2832: index 0x19 (bits 9:1), the highest of the 64-bit guest-state fields here.
        assert!(foo_exists(&caps(true)).1 >= 0x32);
    }

    #[test]
    fn typed_access_and_the_derive_agree_on_a_processor_with_the_field() {
        let mut soft = SoftVmcs::new(&caps(true));
        assert_eq!(typed_round_trip(&mut soft, 0xf00), Ok((0xf00, 0xfff0)));
        let state = GuestFoo::load(&soft).unwrap();
        assert_eq!(state, GuestFoo { guest_ia32_foo: 0xf00, guest_rip: 0xfff0, guest_cs_selector: 0 });
        assert_eq!(GuestFoo::ENCODINGS, &[0x2832, 0x681e, 0x0802]);
        // Without the control the processor has no such field: VM-instruction error 12.
        let mut without = SoftVmcs::new(&caps(false));
        assert_eq!(GuestFoo::default().store(&mut without), Err(VmcsError::UnsupportedField(0x2832)));
    }

    #[test]
    fn vmcs12_raw_access_copy_and_nested_state() {
        let mut vmcs12 = Vmcs12::zeroed();
        vmcs12.write(fields::GUEST_RIP, 0x1234).unwrap();
        vmcs12.write(fields::GUEST_INTR_STATUS, 0x21).unwrap();
        assert_eq!(l1_vmread(&vmcs12, fields::GUEST_RIP.raw()), Some(0x1234));
        assert_eq!(l1_vmread(&vmcs12, 0x2832), None, "vmcs12 has no member for the new field");
        assert_eq!(l1_vmread(&vmcs12, u64::MAX), None);
        let mut shadow = SoftVmcs::new(&vmcs::caps::AllCaps);
        to_shadow(&vmcs12, &mut shadow, &caps(true)).unwrap();
        assert_eq!(shadow.read(fields::GUEST_RIP), Ok(0x1234));
        let mut blob = [0u8; 128 + 4096];
        assert_eq!(nested_state_in_l1(&vmcs12, &mut blob), Ok(128 + 4096));
    }
}
