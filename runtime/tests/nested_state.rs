//! `vmcs::nested_state` against the KVM_SET_NESTED_STATE rules of Linux 7.2.8
//! (`vmx_set_nested_state` in `arch/x86/kvm/vmx/nested.c`, the structs of `uapi/asm/kvm.h`). Every rule has an accepting and a rejecting blob,
//! both emitted by the builder, differing only in what the rule is about.

use vmcs::nested_state::*;
use vmcs::{Layout, Vmcs12, VmcsRead};

const VMXON: u64 = 0x1000;
const VMPTR: u64 = 0x2000;
const LINK: u64 = 0x3000;

fn vmcs12() -> Vmcs12 {
    let mut v = Vmcs12::zeroed();
    v.hdr = VMCS12_REVISION;
    v.vmcs_link_pointer = INVALID_GPA;
    v.guest_rip = 0xdead_beef;
    v
}

/// vmcs12 that uses a shadow VMCS (activate secondary, VMCS shadowing, valid link pointer).
fn vmcs12_shadowing() -> Vmcs12 {
    let mut v = vmcs12();
    v.cpu_based_vm_exec_control = CPU_BASED_ACTIVATE_SECONDARY_CONTROLS;
    v.secondary_vm_exec_control = SECONDARY_EXEC_SHADOW_VMCS;
    v.vmcs_link_pointer = LINK;
    v
}

fn shadow() -> Vmcs12 {
    let mut v = Vmcs12::zeroed();
    v.hdr = VMCS12_REVISION | VMCS_HDR_SHADOW_VMCS;
    v.guest_rsp = 0x1234;
    v
}

/// Not in VMX operation.
fn off() -> NestedStateBuilder {
    NestedStateBuilder::new()
}

/// VMXON with no VMCS (size 128).
fn vmxon_only() -> NestedStateBuilder {
    NestedStateBuilder::new().vmxon_pa(VMXON)
}

/// VMXON with a current VMCS (size 4224), in L1.
fn l1() -> NestedStateBuilder {
    vmxon_only().vmcs12_pa(VMPTR).vmcs12(Some(vmcs12()))
}

/// In L2 (guest mode), no shadow VMCS.
fn l2() -> NestedStateBuilder {
    l1().flags(KVM_STATE_NESTED_GUEST_MODE)
}

/// In L2 with a shadow VMCS (size 8320).
fn l2_shadow() -> NestedStateBuilder {
    l2().vmcs12(Some(vmcs12_shadowing())).shadow_vmcs12(Some(shadow()))
}

fn smm() -> VcpuContext {
    VcpuContext { in_smm: true, ..VcpuContext::default() }
}

fn evmcs() -> VcpuContext {
    VcpuContext { evmcs_enabled: true, ..VcpuContext::default() }
}

fn emit<A: AsRef<[u8]> + std::fmt::Debug>(b: &NestedStateBuilder<A>) -> Vec<u8> {
    let mut buf = vec![0xa5u8; b.len() + 16];
    let n = b.emit(&mut buf).expect("emit");
    assert_eq!(n, b.len());
    buf.truncate(n);
    buf
}

fn run(b: NestedStateBuilder, vcpu: VcpuContext) -> Result<(), NestedStateError> {
    let blob = emit(&b);
    check(&blob, &vcpu).map(|_| ())
}

fn ok(b: NestedStateBuilder, vcpu: VcpuContext) {
    assert_eq!(run(b, vcpu), Ok(()), "{b:?} {vcpu:?}");
}

fn err(b: NestedStateBuilder, vcpu: VcpuContext, e: NestedStateError) {
    assert_eq!(run(b, vcpu), Err(e), "{b:?} {vcpu:?}");
}

fn dflt() -> VcpuContext {
    VcpuContext::default()
}

#[test]
fn constants() {
    assert_eq!(HEADER_SIZE, 128);
    assert_eq!(KVM_STATE_NESTED_VMX_VMCS_SIZE, 0x1000);
    assert_eq!(VMCS12_STRUCT_SIZE, 998);
    assert_eq!(MIN_SIZE_WITH_VMCS12, 1126);
    assert_eq!(MIN_SIZE_WITH_SHADOW, 5222);
    assert_eq!(SIZE_WITH_VMCS12, 4224);
    assert_eq!(SIZE_WITH_SHADOW, 8320);
    assert_eq!(VMCS12_REVISION, 0x11e57ed0);
    assert_eq!(KVM_STATE_NESTED_KNOWN_FLAGS, 0x10f);
    let d = VcpuContext::default();
    assert!(d.has_vmx && !d.in_smm && !d.evmcs_enabled && d.maxphyaddr == 52);
}

#[test]
fn header_layout() {
    let b = l1().smm_flags(0x0102).vmx_flags(0x0304_0506).preemption_timer_deadline(0x1122_3344_5566_7788).flags(0x10f);
    let blob = emit(&b);
    assert_eq!(blob.len(), 4224);
    assert_eq!(&blob[0..2], &0x10fu16.to_le_bytes());
    assert_eq!(&blob[2..4], &[0, 0]);
    assert_eq!(&blob[4..8], &4224u32.to_le_bytes());
    assert_eq!(&blob[8..16], &VMXON.to_le_bytes());
    assert_eq!(&blob[16..24], &VMPTR.to_le_bytes());
    assert_eq!(&blob[24..26], &0x0102u16.to_le_bytes());
    assert_eq!(&blob[26..28], &[0, 0]);
    assert_eq!(&blob[28..32], &0x0304_0506u32.to_le_bytes());
    assert_eq!(&blob[32..40], &0x1122_3344_5566_7788u64.to_le_bytes());
    assert!(blob[40..128].iter().all(|&x| x == 0));
    assert_eq!(&blob[128..128 + 998], vmcs12().as_bytes());
    assert!(blob[128 + 998..].iter().all(|&x| x == 0));
}

#[test]
fn rule2_header_truncated() {
    let blob = emit(&off());
    assert!(check(&blob, &dflt()).is_ok());
    assert_eq!(check(&blob[..127], &dflt()), Err(NestedStateError::HeaderTruncated { len: 127 }));
    assert_eq!(NestedStateError::HeaderTruncated { len: 0 }.errno(), -14);
}

#[test]
fn rule3_size_too_small() {
    ok(off().declared_size(Some(128)), dflt());
    err(off().declared_size(Some(127)), dflt(), NestedStateError::SizeTooSmall { size: 127 });
    err(off().declared_size(Some(0)), dflt(), NestedStateError::SizeTooSmall { size: 0 });
    assert_eq!(NestedStateError::SizeTooSmall { size: 0 }.errno(), -22);
}

#[test]
fn blob_shorter_than_declared_size() {
    let blob = emit(&l1());
    assert!(check(&blob, &dflt()).is_ok());
    assert_eq!(check(&blob[..4223], &dflt()), Err(NestedStateError::Truncated { size: 4224, len: 4223 }));
    // Trailing bytes past `size` are ignored, and not part of the view.
    let mut long = blob.clone();
    long.extend_from_slice(&[0xff; 100]);
    let s = check(&long, &dflt()).unwrap();
    assert_eq!(s.as_bytes(), &blob[..]);
}

#[test]
fn rule4_unknown_flags() {
    ok(l1().flags(KVM_STATE_NESTED_MTF_PENDING), dflt());
    ok(l1().flags(KVM_STATE_NESTED_GIF_SET), dflt());
    err(l1().flags(0x10), dflt(), NestedStateError::UnknownFlags { bits: 0x10 });
    err(l1().flags(0x8000 | KVM_STATE_NESTED_MTF_PENDING), dflt(), NestedStateError::UnknownFlags { bits: 0x8000 });
}

#[test]
fn rule5_run_pending_without_guest_mode() {
    ok(l2().flags(KVM_STATE_NESTED_GUEST_MODE | KVM_STATE_NESTED_RUN_PENDING), dflt());
    err(l2().flags(KVM_STATE_NESTED_RUN_PENDING), dflt(), NestedStateError::RunPendingWithoutGuestMode);
}

#[test]
fn rule6_format() {
    ok(l1().format(KVM_STATE_NESTED_FORMAT_VMX), dflt());
    err(l1().format(KVM_STATE_NESTED_FORMAT_SVM), dflt(), NestedStateError::FormatNotVmx { format: 1 });
}

#[test]
fn rule7_not_in_vmx_operation() {
    ok(off(), smm());
    err(off().smm_flags(KVM_STATE_NESTED_SMM_VMXON), smm(), NestedStateError::SmmFlagsWithoutVmxon);
    ok(off(), dflt());
    err(off().vmcs12_pa(VMPTR), dflt(), NestedStateError::Vmcs12PaWithoutVmxon);
    // EVMCS alone is tolerated (backward compatibility); any other flag is not.
    ok(off().flags(KVM_STATE_NESTED_EVMCS), evmcs());
    err(
        off().flags(KVM_STATE_NESTED_EVMCS | KVM_STATE_NESTED_MTF_PENDING),
        evmcs(),
        NestedStateError::FlagsWithoutVmxon,
    );
    err(off().flags(KVM_STATE_NESTED_GUEST_MODE), dflt(), NestedStateError::FlagsWithoutVmxon);
    // Not in VMX operation, a vmcs12 area is ignored (no revision check).
    let mut bad = vmcs12();
    bad.hdr = 0;
    ok(off().vmcs12(Some(bad)), dflt());
}

#[test]
fn rule8_vmxon_pa() {
    let no_vmx = VcpuContext { has_vmx: false, ..dflt() };
    ok(off(), no_vmx);
    err(vmxon_only(), no_vmx, NestedStateError::VmxonWithoutVmx);
    ok(vmxon_only(), dflt());
    err(vmxon_only().vmxon_pa(VMXON + 8), dflt(), NestedStateError::VmxonPaInvalid);
    ok(vmxon_only().vmxon_pa((1 << 52) - 0x1000), dflt());
    err(vmxon_only().vmxon_pa(1 << 52), dflt(), NestedStateError::VmxonPaInvalid);
    let narrow = VcpuContext { maxphyaddr: 36, ..dflt() };
    ok(vmxon_only().vmxon_pa((1 << 36) - 0x1000), narrow);
    err(vmxon_only().vmxon_pa(1 << 36), narrow, NestedStateError::VmxonPaInvalid);
    // MAXPHYADDR >= 64 does not overflow.
    ok(vmxon_only().vmxon_pa(1 << 63), VcpuContext { maxphyaddr: 64, ..dflt() });
    ok(vmxon_only().vmxon_pa(1 << 63), VcpuContext { maxphyaddr: 255, ..dflt() });
}

#[test]
fn rule9_smm_guest_mode_with_guest_mode() {
    let smm_both = KVM_STATE_NESTED_SMM_GUEST_MODE | KVM_STATE_NESTED_SMM_VMXON;
    ok(l1().smm_flags(smm_both), smm());
    // Rule 9 precedes rule 12 (GUEST_MODE in SMM).
    err(
        l1().smm_flags(smm_both).flags(KVM_STATE_NESTED_GUEST_MODE),
        smm(),
        NestedStateError::SmmGuestModeWithGuestMode,
    );
}

#[test]
fn rule10_unknown_smm_flags() {
    ok(l1().smm_flags(KVM_STATE_NESTED_SMM_VMXON), smm());
    err(l1().smm_flags(KVM_STATE_NESTED_SMM_VMXON | 0x4), smm(), NestedStateError::UnknownSmmFlags { bits: 0x4 });
}

#[test]
fn rule11_unknown_vmx_flags() {
    ok(l2().vmx_flags(KVM_STATE_VMX_PREEMPTION_TIMER_DEADLINE).preemption_timer_deadline(12345), dflt());
    err(l2().vmx_flags(0x2), dflt(), NestedStateError::UnknownVmxFlags { bits: 0x2 });
}

#[test]
fn rule12_smm() {
    ok(l1(), smm());
    err(l2(), smm(), NestedStateError::GuestModeInSmm);
    err(
        l2().flags(KVM_STATE_NESTED_GUEST_MODE | KVM_STATE_NESTED_RUN_PENDING),
        smm(),
        NestedStateError::GuestModeInSmm,
    );
    ok(l1().smm_flags(KVM_STATE_NESTED_SMM_VMXON), smm());
    err(l1().smm_flags(KVM_STATE_NESTED_SMM_VMXON), dflt(), NestedStateError::SmmFlagsOutsideSmm);
}

#[test]
fn rule13_smm_guest_mode_without_smm_vmxon() {
    ok(l1().smm_flags(KVM_STATE_NESTED_SMM_GUEST_MODE | KVM_STATE_NESTED_SMM_VMXON), smm());
    err(l1().smm_flags(KVM_STATE_NESTED_SMM_GUEST_MODE), smm(), NestedStateError::SmmGuestModeWithoutSmmVmxon);
}

#[test]
fn rule14_evmcs() {
    let b = l1().flags(KVM_STATE_NESTED_EVMCS);
    ok(b, evmcs());
    err(b, dflt(), NestedStateError::EvmcsNotEnabled);
    // Not in VMX operation (rule 8 does not apply), the CPUID half still matters.
    let f = off().flags(KVM_STATE_NESTED_EVMCS);
    ok(f, evmcs());
    err(f, VcpuContext { has_vmx: false, ..evmcs() }, NestedStateError::EvmcsNotEnabled);
}

#[test]
fn rule15_vmxon_without_vmcs() {
    let s = {
        let blob = emit(&vmxon_only());
        assert_eq!(blob.len(), 128);
        let s = check(&blob, &dflt()).unwrap();
        assert_eq!(s.vmcs12(), None);
        assert_eq!(s.vmx_header().vmxon_pa, VMXON);
        s.size()
    };
    assert_eq!(s, 128);
    let no_vmcs = NestedStateError::VmxonWithoutVmcs { size: 128, min: 1126 };
    err(vmxon_only().flags(KVM_STATE_NESTED_GUEST_MODE), dflt(), no_vmcs);
    err(vmxon_only().flags(KVM_STATE_NESTED_EVMCS), evmcs(), no_vmcs);
    err(vmxon_only().vmcs12_pa(VMPTR), dflt(), no_vmcs);
    // MTF_PENDING alone is not refused here.
    ok(vmxon_only().flags(KVM_STATE_NESTED_MTF_PENDING), dflt());
}

#[test]
fn threshold_is_128_plus_sizeof_vmcs12_not_4096() {
    // 1125: still "VMXON without VMCS" (vmcs12 not even looked at).
    let b = l1().declared_size(Some(1125));
    assert_eq!(emit(&b).len(), 1125);
    err(b, dflt(), NestedStateError::VmxonWithoutVmcs { size: 1125, min: 1126 });
    ok(vmxon_only().vmcs12(Some(vmcs12())).declared_size(Some(1125)), dflt());
    // 1126 is enough for a vmcs12, although 4224 is what KVM emits.
    let b = l1().declared_size(Some(1126));
    let blob = emit(&b);
    assert_eq!(blob.len(), 1126);
    let s = check(&blob, &dflt()).unwrap();
    assert_eq!(s.vmcs12(), Some(vmcs12()));
    assert_eq!(s.shadow_vmcs12(), None);
    // ... and from 1126 on the vmcs12 is checked.
    let mut bad = vmcs12();
    bad.hdr = 1;
    err(
        l1().vmcs12(Some(bad)).declared_size(Some(1126)),
        dflt(),
        NestedStateError::BadVmcs12Revision { revision: 1, expected: 0x11e5_7ed0 },
    );
    ok(l1().vmcs12(Some(bad)).declared_size(Some(1125)).vmcs12_pa(INVALID_GPA), dflt());
}

#[test]
fn rule16_vmcs12_pa() {
    ok(l1(), dflt());
    err(l1().vmcs12_pa(VMXON), dflt(), NestedStateError::Vmcs12PaIsVmxonPa);
    err(l1().vmcs12_pa(VMPTR | 0x10), dflt(), NestedStateError::Vmcs12PaInvalid);
    err(l1().vmcs12_pa(1 << 52), dflt(), NestedStateError::Vmcs12PaInvalid);
    err(l1().vmcs12_pa(INVALID_GPA), dflt(), NestedStateError::MissingVmcs12Pa);
    ok(l1().vmcs12_pa(INVALID_GPA).flags(KVM_STATE_NESTED_EVMCS), evmcs());
    // A valid vmcs12_pa with EVMCS is fine too.
    ok(l1().flags(KVM_STATE_NESTED_EVMCS), evmcs());
}

#[test]
fn rule19_vmcs12_revision() {
    ok(l1(), dflt());
    let mut bad = vmcs12();
    bad.hdr = VMCS12_REVISION + 1;
    let e = NestedStateError::BadVmcs12Revision { revision: 0x11e5_7ed1, expected: 0x11e5_7ed0 };
    err(l1().vmcs12(Some(bad)), dflt(), e);
    // Only revision_id (bits 30:0) is compared; the shadow bit of vmcs12 itself is not looked at.
    let mut shadow_bit = vmcs12();
    shadow_bit.hdr = VMCS12_REVISION | VMCS_HDR_SHADOW_VMCS;
    ok(l1().vmcs12(Some(shadow_bit)), dflt());
}

#[test]
fn rule20_shadow_size() {
    ok(l2_shadow(), dflt());
    // Guest mode, shadowing in use, only a vmcs12 area: too small.
    let missing = |size| NestedStateError::ShadowVmcs12Missing { size, min: 5222 };
    err(l2().vmcs12(Some(vmcs12_shadowing())), dflt(), missing(4224));
    ok(l2_shadow().declared_size(Some(5222)), dflt());
    err(l2_shadow().declared_size(Some(5221)), dflt(), missing(5221));
    // Not in use: no shadow needed.
    let mut no_link = vmcs12_shadowing();
    no_link.vmcs_link_pointer = INVALID_GPA;
    ok(l2().vmcs12(Some(no_link)), dflt());
    assert!(uses_shadow_vmcs(&vmcs12_shadowing()) && !uses_shadow_vmcs(&no_link));
    let mut no_activate = vmcs12_shadowing();
    no_activate.cpu_based_vm_exec_control = 0;
    ok(l2().vmcs12(Some(no_activate)), dflt());
    let mut no_secondary = vmcs12_shadowing();
    no_secondary.secondary_vm_exec_control = 0;
    ok(l2().vmcs12(Some(no_secondary)), dflt());
    // Outside guest mode the shadow is not required.
    ok(l1().vmcs12(Some(vmcs12_shadowing())), dflt());
}

#[test]
fn rule22_shadow_header() {
    ok(l2_shadow(), dflt());
    let mut bad = shadow();
    bad.hdr = (VMCS12_REVISION ^ 1) | VMCS_HDR_SHADOW_VMCS;
    err(
        l2_shadow().shadow_vmcs12(Some(bad)),
        dflt(),
        NestedStateError::BadShadowVmcs12Revision { revision: 0x11e5_7ed1, expected: 0x11e5_7ed0 },
    );
    let mut bad = shadow();
    bad.hdr = VMCS12_REVISION;
    err(l2_shadow().shadow_vmcs12(Some(bad)), dflt(), NestedStateError::ShadowVmcs12NotShadow);
    // Outside guest mode, the shadow is not checked.
    ok(l2_shadow().shadow_vmcs12(Some(bad)).flags(0), dflt());
}

#[test]
fn sizes_128_4224_8320() {
    for (b, vcpu, size) in [
        (off(), dflt(), 128),
        (vmxon_only(), dflt(), 128),
        (l1().smm_flags(KVM_STATE_NESTED_SMM_VMXON), smm(), 4224),
        (l1(), dflt(), 4224),
        (l2(), dflt(), 4224),
        (l2_shadow(), dflt(), 8320),
        (l2_shadow().flags(KVM_STATE_NESTED_GUEST_MODE | KVM_STATE_NESTED_RUN_PENDING), dflt(), 8320),
    ] {
        let blob = emit(&b);
        assert_eq!(blob.len(), size);
        let s = check(&blob, &vcpu).unwrap_or_else(|e| panic!("{e} {b:?}"));
        assert_eq!(s.size() as usize, size);
        assert_eq!(s.format(), KVM_STATE_NESTED_FORMAT_VMX);
        assert_eq!(s.vmcs12().is_some(), size >= 4224);
        assert_eq!(s.shadow_vmcs12().is_some(), size == 8320);
    }
    // Wrong state for the size: guest mode with 128 bytes, shadow in use with 4224.
    err(
        vmxon_only().flags(KVM_STATE_NESTED_GUEST_MODE),
        dflt(),
        NestedStateError::VmxonWithoutVmcs { size: 128, min: 1126 },
    );
}

#[test]
fn accessors() {
    let b = l2_shadow()
        .flags(KVM_STATE_NESTED_GUEST_MODE | KVM_STATE_NESTED_MTF_PENDING)
        .vmx_flags(KVM_STATE_VMX_PREEMPTION_TIMER_DEADLINE)
        .preemption_timer_deadline(0xabcdef);
    let blob = emit(&b);
    let s = check(&blob, &dflt()).unwrap();
    assert_eq!(s.flags(), KVM_STATE_NESTED_GUEST_MODE | KVM_STATE_NESTED_MTF_PENDING);
    assert_eq!(
        s.vmx_header(),
        VmxHeader {
            vmxon_pa: VMXON,
            vmcs12_pa: VMPTR,
            smm_flags: 0,
            vmx_flags: KVM_STATE_VMX_PREEMPTION_TIMER_DEADLINE,
            preemption_timer_deadline: 0xabcdef
        }
    );
    let v = s.vmcs12().unwrap();
    assert_eq!(v, vmcs12_shadowing());
    assert_eq!(v.read_raw(0x681e).unwrap(), 0xdead_beef); // GUEST_RIP
    assert_eq!(s.shadow_vmcs12().unwrap().read_raw(0x681c).unwrap(), 0x1234); // GUEST_RSP
}

#[test]
fn emit_buffer_too_small() {
    let mut buf = [0u8; 4223];
    assert_eq!(l1().emit(&mut buf), Err(EmitError::BufferTooSmall { needed: 4224, available: 4223 }));
    let mut buf = [0u8; 127];
    assert_eq!(off().emit(&mut buf), Err(EmitError::BufferTooSmall { needed: 128, available: 127 }));
    assert_eq!(off().declared_size(Some(0)).len(), 128);
}

#[test]
fn round_trip() {
    let builders = [
        (off(), dflt()),
        (off().flags(KVM_STATE_NESTED_EVMCS), evmcs()),
        (vmxon_only(), dflt()),
        (vmxon_only().vmcs12(Some(vmcs12())).declared_size(Some(1125)), dflt()),
        (l1(), dflt()),
        (l1().declared_size(Some(1126)), dflt()),
        (l1().declared_size(Some(3000)), dflt()),
        (l1().smm_flags(KVM_STATE_NESTED_SMM_VMXON | KVM_STATE_NESTED_SMM_GUEST_MODE), smm()),
        (l2().vmx_flags(1).preemption_timer_deadline(99), dflt()),
        (l2_shadow().flags(KVM_STATE_NESTED_GUEST_MODE | KVM_STATE_NESTED_RUN_PENDING), dflt()),
        (l2_shadow().declared_size(Some(5222)), dflt()),
        (l2_shadow().declared_size(Some(6000)), dflt()),
        // A shadow without a vmcs12 (all-zero vmcs12 area): only acceptable outside VMX operation.
        (off().flags(KVM_STATE_NESTED_EVMCS).shadow_vmcs12(Some(shadow())), evmcs()),
    ];
    for (b, vcpu) in builders {
        let first = emit(&b);
        let s = check(&first, &vcpu).unwrap_or_else(|e| panic!("{e} {b:?}"));
        let again = emit(&s.builder());
        assert_eq!(first, again, "{b:?}");
    }
}

/// Calls every accessor of whatever `check` returns.
fn exercise(blob: &[u8], vcpu: &VcpuContext) -> bool {
    match check(blob, vcpu) {
        Ok(s) => {
            let _ = (s.flags(), s.format(), s.size(), s.vmx_header(), s.vmcs12(), s.shadow_vmcs12());
            assert!(s.as_bytes().len() == s.size() as usize && s.as_bytes().len() <= blob.len());
            let mut out = vec![0u8; s.size() as usize];
            s.builder().emit(&mut out).unwrap();
            true
        }
        Err(e) => {
            let _ = (e.errno(), e.to_string());
            false
        }
    }
}

#[test]
fn every_truncation_never_panics() {
    for (b, vcpu) in [(l2_shadow(), dflt()), (l1(), dflt()), (off(), dflt())] {
        let blob = emit(&b);
        for len in 0..=blob.len() {
            let accepted = exercise(&blob[..len], &vcpu);
            assert_eq!(accepted, len == blob.len(), "len {len}");
        }
    }
}

#[test]
fn random_garbage_never_panics() {
    let mut rng = vmcs_test_support::Rng(0x9e37_79b9_7f4a_7c15);
    let sizes = [0u32, 127, 128, 1125, 1126, 4224, 5221, 5222, 8320, 9000, u32::MAX];
    let mut accepted = 0;
    for i in 0..4000 {
        let len = (rng.next() % 9000) as usize;
        let mut blob: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        // Half the cases get a plausible header so that the deeper rules run.
        if i % 2 == 0 && len >= 128 {
            let size = if rng.next().is_multiple_of(2) {
                len as u32
            } else {
                sizes[(rng.next() % sizes.len() as u64) as usize]
            };
            blob[0..2].copy_from_slice(&((rng.next() as u16) & 0x10f).to_le_bytes());
            blob[2..4].copy_from_slice(&((rng.next() % 2) as u16).to_le_bytes());
            blob[4..8].copy_from_slice(&size.to_le_bytes());
            let pa = |r: u64| if r.is_multiple_of(3) { INVALID_GPA } else { (r & 0xf_ffff) << 12 };
            blob[8..16].copy_from_slice(&pa(rng.next()).to_le_bytes());
            blob[16..24].copy_from_slice(&pa(rng.next()).to_le_bytes());
            blob[24..26].copy_from_slice(&((rng.next() as u16) & 3).to_le_bytes());
            blob[28..32].copy_from_slice(&((rng.next() as u32) & 1).to_le_bytes());
            if len >= 132 && !rng.next().is_multiple_of(4) {
                blob[128..132].copy_from_slice(&VMCS12_REVISION.to_le_bytes());
            }
        }
        let vcpu = VcpuContext {
            has_vmx: !rng.next().is_multiple_of(4),
            in_smm: rng.next().is_multiple_of(4),
            evmcs_enabled: rng.next().is_multiple_of(2),
            maxphyaddr: (rng.next() % 70) as u8,
        };
        if exercise(&blob, &vcpu) {
            accepted += 1;
        }
    }
    assert!(accepted > 0, "the generator never reaches an accepted blob");
}
