//! `#[derive(vmcs_derive::VmcsFields)]` on a hypervisor's own structs, round-tripped through vmcs12.

// The runtime under another name, as a renamed dependency or a re-export would give it.
extern crate vmcs as hv;

use vmcs::{Vmcs12, VmcsError, VmcsRead, VmcsWrite};
use vmcs_derive::VmcsFields;

/// Expanded over `::hv::fields::*`: nothing names `::vmcs`.
#[derive(VmcsFields, Debug, PartialEq)]
#[vmcs(crate = "::hv", store)]
struct Renamed {
    guest_rip: u64,
    guest_cs_selector: u16,
}

/// An exit-information cache: read-only fields, load only.
#[derive(VmcsFields, Debug, Clone, PartialEq, Eq)]
struct ExitInfo {
    vm_exit_reason: u32,
    #[vmcs(field = "EXIT_QUALIFICATION")]
    qualification: u64,
    vm_exit_instruction_len: u32,
    #[vmcs(field = "GUEST_PHYSICAL_ADDRESS")]
    gpa: u64,
    #[vmcs(skip)]
    handled: bool,
}

/// Host state written before VM entry.
#[derive(VmcsFields, Debug, Clone, PartialEq, Eq, Default)]
#[vmcs(store)]
struct HostState {
    host_cr0: u64,
    host_cr3: u64,
    host_cr4: u64,
    host_rsp: u64,
    host_rip: u64,
    host_cs_selector: u16,
    #[vmcs(field = "HOST_TR_SELECTOR")]
    tr: u16,
    host_ia32_sysenter_cs: u32,
    #[vmcs(skip)]
    cpu: u32,
}

/// GUEST_SMBASE is architectural, but KVM's vmcs12 has no room for it.
#[derive(VmcsFields, Debug)]
struct WithSmbase {
    guest_rip: u64,
    guest_smbase: u32,
}

fn host_sample() -> HostState {
    HostState {
        host_cr0: 0x8005_0033,
        host_cr3: 0x0000_0001_2345_6000,
        host_cr4: 0x0037_26f0,
        host_rsp: 0xffff_c900_0001_7f58,
        host_rip: 0xffff_ffff_8100_1234,
        host_cs_selector: 0x10,
        tr: 0x40,
        host_ia32_sysenter_cs: 0x10,
        cpu: 7,
    }
}

#[test]
fn encodings_are_the_sdm_encodings_in_member_order() {
    // Intel SDM Vol. 3D, Appendix B, written out by hand.
    assert_eq!(ExitInfo::ENCODINGS, &[0x4402, 0x6400, 0x440C, 0x2400]);
    assert_eq!(HostState::ENCODINGS, &[0x6C00, 0x6C02, 0x6C04, 0x6C14, 0x6C16, 0x0C02, 0x0C0C, 0x4C00]);
    assert_eq!(WithSmbase::ENCODINGS, &[0x681E, 0x4828]);
}

#[test]
fn host_state_store_then_load_is_equal() {
    let mut v = Vmcs12::zeroed();
    let host = host_sample();
    host.store(&mut v).unwrap();
    let back = HostState::load(&v).unwrap();
    // Skipped members are not VMCS fields: they come back as Default::default().
    assert_eq!(back, HostState { cpu: 0, ..host });
}

#[test]
fn host_state_store_writes_each_encoding() {
    let mut v = Vmcs12::zeroed();
    host_sample().store(&mut v).unwrap();
    assert_eq!(v.read_raw(0x6C00), Ok(0x8005_0033));
    assert_eq!(v.read_raw(0x6C02), Ok(0x0000_0001_2345_6000));
    assert_eq!(v.read_raw(0x6C04), Ok(0x0037_26f0));
    assert_eq!(v.read_raw(0x6C14), Ok(0xffff_c900_0001_7f58));
    assert_eq!(v.read_raw(0x6C16), Ok(0xffff_ffff_8100_1234));
    assert_eq!(v.read_raw(0x0C02), Ok(0x10));
    assert_eq!(v.read_raw(0x0C0C), Ok(0x40));
    assert_eq!(v.read_raw(0x4C00), Ok(0x10));
    // Through the typed handles too.
    assert_eq!(v.read(vmcs::fields::HOST_RIP), Ok(0xffff_ffff_8100_1234));
    assert_eq!(v.read(vmcs::fields::HOST_TR_SELECTOR), Ok(0x40u16));
}

#[test]
fn exit_info_loads_what_l0_wrote() {
    let mut v = Vmcs12::zeroed();
    // L0 fills exit information in vmcs12 (software layouts accept read-only fields).
    v.write_raw(0x4402, 48).unwrap(); // EPT violation
    v.write_raw(0x6400, 0x181).unwrap();
    v.write_raw(0x440C, 3).unwrap();
    v.write_raw(0x2400, 0x0000_00fe_e000_0b00).unwrap();
    let info = ExitInfo::load(&v).unwrap();
    assert_eq!(
        info,
        ExitInfo {
            vm_exit_reason: 48,
            qualification: 0x181,
            vm_exit_instruction_len: 3,
            gpa: 0x0000_00fe_e000_0b00,
            handled: false,
        }
    );
}

#[test]
fn load_truncates_like_vmread() {
    let mut v = Vmcs12::zeroed();
    // VMWRITE keeps the low bits of a 16- or 32-bit field.
    v.write_raw(0x0C02, 0xdead_0008).unwrap();
    v.write_raw(0x4C00, 0x1_0000_0023).unwrap();
    let host = HostState::load(&v).unwrap();
    assert_eq!(host.host_cs_selector, 0x0008);
    assert_eq!(host.host_ia32_sysenter_cs, 0x23);
}

#[test]
fn a_field_vmcs12_lacks_is_an_unsupported_field() {
    let mut v = Vmcs12::zeroed();
    v.write(vmcs::fields::GUEST_RIP, 0x1000).unwrap();
    assert_eq!(WithSmbase::load(&v).unwrap_err(), VmcsError::UnsupportedField(0x4828));
}

/// A backend that records every access, to see what the generated code does.
#[derive(Default)]
struct Recorder {
    reads: core::cell::RefCell<Vec<u64>>,
    writes: Vec<(u64, u64)>,
}

impl VmcsRead for Recorder {
    fn read_raw(&self, encoding: u64) -> Result<u64, VmcsError> {
        self.reads.borrow_mut().push(encoding);
        Ok(0xffff_ffff_ffff_ffff)
    }
}

impl VmcsWrite for Recorder {
    fn write_raw(&mut self, encoding: u64, value: u64) -> Result<(), VmcsError> {
        self.writes.push((encoding, value));
        Ok(())
    }
}

#[test]
fn one_access_per_field_in_member_order() {
    let mut r = Recorder::default();
    let host = HostState::load(&r).unwrap();
    let expected: Vec<u64> = HostState::ENCODINGS.iter().map(|&e| e as u64).collect();
    assert_eq!(*r.reads.borrow(), expected);
    // The cast to the member type keeps the field's width.
    assert_eq!((host.host_cs_selector, host.host_ia32_sysenter_cs, host.host_rip), (0xffff, 0xffff_ffff, u64::MAX));

    host_sample().store(&mut r).unwrap();
    let encodings: Vec<u64> = r.writes.iter().map(|&(e, _)| e).collect();
    assert_eq!(encodings, expected);
    assert_eq!(r.writes[5], (0x0C02, 0x10));
    assert_eq!(r.writes[7], (0x4C00, 0x10));
}

#[test]
fn a_failed_read_stops_the_load() {
    struct Failing;
    impl VmcsRead for Failing {
        fn read_raw(&self, encoding: u64) -> Result<u64, VmcsError> {
            if encoding == 0x6400 { Err(VmcsError::NoCurrentVmcs) } else { Ok(1) }
        }
    }
    assert_eq!(ExitInfo::load(&Failing), Err(VmcsError::NoCurrentVmcs));
}

#[test]
fn a_backend_with_the_field_loads_it() {
    // GUEST_SMBASE is architectural: a backend that has it (here the recorder) loads it.
    let s = WithSmbase::load(&Recorder::default()).unwrap();
    assert_eq!((s.guest_rip, s.guest_smbase), (u64::MAX, 0xffff_ffff));
}

#[test]
fn a_renamed_runtime_and_unsized_backends_work() {
    let mut v = Vmcs12::zeroed();
    let dyn_v: &mut dyn VmcsWrite = &mut v;
    Renamed { guest_rip: 0x1000, guest_cs_selector: 8 }.store(dyn_v).unwrap();
    let dyn_r: &dyn VmcsRead = &v;
    assert_eq!(Renamed::load(dyn_r), Ok(Renamed { guest_rip: 0x1000, guest_cs_selector: 8 }));
    assert_eq!(Renamed::ENCODINGS, &[0x681E, 0x0802]);
}
