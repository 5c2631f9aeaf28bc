//! `KVM_GET/SET_NESTED_STATE` blobs for VMX: a validated view, the rules KVM applies when the state
//! is restored, and a builder that emits blobs.
//!
//! A blob is `struct kvm_nested_state` (a 128-byte header) followed by up to two 4096-byte areas:
//! the vmcs12 at offset 128 and the shadow vmcs12 at offset 4224. Only the first
//! `sizeof(struct vmcs12)` = 998 bytes of each area are meaningful ([`Vmcs12`]). Layout and rules
//! follow Linux 7.2.8 (`arch/x86/kvm/x86.c` and `vmx_set_nested_state()` in
//! `arch/x86/kvm/vmx/nested.c`).
//!
//! [`check`] applies, in KVM's order, every `KVM_SET_NESTED_STATE` rejection rule that does not need
//! a live vCPU's internals; the few that need vCPU facts (guest CPUID VMX, SMM, enlightened VMCS,
//! MAXPHYADDR) take them from [`VcpuContext`]. Each rule has its own [`NestedStateError`] variant.
//!
//! # What is not checked
//!
//! - Rule 1 (the vendor has no `set_state` hook) has no meaning here.
//! - The VM-entry consistency checks of `nested_vmx_check_restored_vmcs12()`
//!   (`nested_vmx_check_controls`, `nested_vmx_check_host_state`, `nested_vmx_check_guest_state`)
//!   and `nested_vmx_enter_non_root_mode()` are out of scope; only the shadow-vmcs12 header checks
//!   of `nested_vmx_check_restored_vmcs12()` are applied. A blob that [`check`] accepts in guest
//!   mode can still be refused by KVM.
//! - `-ENOMEM` from `enter_vmx_operation()` and the eVMCS mapping (`CONFIG_KVM_HYPERV` is assumed).
//!
//! # Truncation
//!
//! KVM reads user memory lazily and faults (`-EFAULT`) only where it copies. Here the blob must
//! hold its whole declared `size` ([`NestedStateError::Truncated`], checked right after the
//! generic size rule), so that the returned [`NestedState`] can hand out every area it declares.
//! Consequently KVM's two `-EFAULT` copy failures (copying 998 bytes of vmcs12 or of the shadow
//! vmcs12) cannot happen after that check.
//!
//! Nothing in this module panics or reads out of bounds, whatever the input.

use core::fmt;

use crate::layouts::vmcs12::Vmcs12;
use crate::software::SoftwareVmcs;

/// `KVM_STATE_NESTED_FORMAT_VMX`.
pub const KVM_STATE_NESTED_FORMAT_VMX: u16 = 0;
/// `KVM_STATE_NESTED_FORMAT_SVM`.
pub const KVM_STATE_NESTED_FORMAT_SVM: u16 = 1;

/// `KVM_STATE_NESTED_GUEST_MODE` (in `flags`).
pub const KVM_STATE_NESTED_GUEST_MODE: u16 = 0x1;
/// `KVM_STATE_NESTED_RUN_PENDING` (in `flags`).
pub const KVM_STATE_NESTED_RUN_PENDING: u16 = 0x2;
/// `KVM_STATE_NESTED_EVMCS` (in `flags`).
pub const KVM_STATE_NESTED_EVMCS: u16 = 0x4;
/// `KVM_STATE_NESTED_MTF_PENDING` (in `flags`).
pub const KVM_STATE_NESTED_MTF_PENDING: u16 = 0x8;
/// `KVM_STATE_NESTED_GIF_SET` (in `flags`; SVM only, but accepted by the generic flag check).
pub const KVM_STATE_NESTED_GIF_SET: u16 = 0x100;
/// Every bit the generic code (x86.c) accepts in `flags`.
pub const KVM_STATE_NESTED_KNOWN_FLAGS: u16 = KVM_STATE_NESTED_RUN_PENDING
    | KVM_STATE_NESTED_GUEST_MODE
    | KVM_STATE_NESTED_EVMCS
    | KVM_STATE_NESTED_MTF_PENDING
    | KVM_STATE_NESTED_GIF_SET;

/// `KVM_STATE_NESTED_SMM_GUEST_MODE` (in `hdr.vmx.smm.flags`).
pub const KVM_STATE_NESTED_SMM_GUEST_MODE: u16 = 0x1;
/// `KVM_STATE_NESTED_SMM_VMXON` (in `hdr.vmx.smm.flags`).
pub const KVM_STATE_NESTED_SMM_VMXON: u16 = 0x2;

/// `KVM_STATE_VMX_PREEMPTION_TIMER_DEADLINE` (in `hdr.vmx.flags`).
pub const KVM_STATE_VMX_PREEMPTION_TIMER_DEADLINE: u32 = 0x1;

/// `KVM_STATE_NESTED_VMX_VMCS_SIZE` (= `VMCS12_SIZE`): bytes reserved per vmcs12 area.
pub const KVM_STATE_NESTED_VMX_VMCS_SIZE: usize = 0x1000;
/// `sizeof(struct kvm_nested_state)`: the header.
pub const HEADER_SIZE: usize = 128;
/// `sizeof(struct vmcs12)`: the meaningful bytes of each area.
pub const VMCS12_STRUCT_SIZE: usize = <Vmcs12 as SoftwareVmcs>::USED_BYTES;
/// Offset of the vmcs12 area.
pub const VMCS12_OFFSET: usize = HEADER_SIZE;
/// Offset of the shadow vmcs12 area.
pub const SHADOW_VMCS12_OFFSET: usize = HEADER_SIZE + KVM_STATE_NESTED_VMX_VMCS_SIZE;
/// Rule 15's threshold: below it the state is "VMXON without a VMCS" (128 + 998 = 1126, not 4224).
pub const MIN_SIZE_WITH_VMCS12: usize = HEADER_SIZE + VMCS12_STRUCT_SIZE;
/// Rule 20's threshold for a shadow vmcs12 (128 + 4096 + 998 = 5222).
pub const MIN_SIZE_WITH_SHADOW: usize = SHADOW_VMCS12_OFFSET + VMCS12_STRUCT_SIZE;
/// The size KVM emits with a vmcs12 (4224).
pub const SIZE_WITH_VMCS12: usize = HEADER_SIZE + KVM_STATE_NESTED_VMX_VMCS_SIZE;
/// The size KVM emits with a vmcs12 and a shadow vmcs12 (8320, the KVM_CAP_NESTED_STATE value).
pub const SIZE_WITH_SHADOW: usize = HEADER_SIZE + 2 * KVM_STATE_NESTED_VMX_VMCS_SIZE;

/// `INVALID_GPA`: "no address".
pub const INVALID_GPA: u64 = u64::MAX;
/// `VMCS12_REVISION`.
pub const VMCS12_REVISION: u32 = <Vmcs12 as SoftwareVmcs>::REVISION;

/// Primary processor-based control "activate secondary controls" (bit 31).
pub const CPU_BASED_ACTIVATE_SECONDARY_CONTROLS: u32 = 1 << 31;
/// Secondary processor-based control "VMCS shadowing" (bit 14).
pub const SECONDARY_EXEC_SHADOW_VMCS: u32 = 1 << 14;
/// vmcs12 `hdr` bit 31: the shadow-VMCS indicator.
pub const VMCS_HDR_SHADOW_VMCS: u32 = 1 << 31;
/// vmcs12 `hdr` bits 30:0: the revision identifier.
pub const VMCS_HDR_REVISION_MASK: u32 = !VMCS_HDR_SHADOW_VMCS;

// Absolute header offsets.
const OFF_FLAGS: usize = 0;
const OFF_FORMAT: usize = 2;
const OFF_SIZE: usize = 4;
const OFF_VMXON_PA: usize = 8;
const OFF_VMCS12_PA: usize = 16;
const OFF_SMM_FLAGS: usize = 24;
const OFF_VMX_FLAGS: usize = 28;
const OFF_DEADLINE: usize = 32;

/// The facts about the target vCPU that some rules need.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VcpuContext {
    /// The guest CPUID advertises VMX (rules 8 and 14).
    pub has_vmx: bool,
    /// The vCPU is currently in SMM (rule 12).
    pub in_smm: bool,
    /// Enlightened VMCS was enabled on the vCPU (rule 14).
    pub evmcs_enabled: bool,
    /// The guest MAXPHYADDR (rules 8 and 16, `page_address_valid`).
    pub maxphyaddr: u8,
}

impl Default for VcpuContext {
    /// VMX in CPUID, not in SMM, no eVMCS, MAXPHYADDR 52.
    fn default() -> Self {
        Self { has_vmx: true, in_smm: false, evmcs_enabled: false, maxphyaddr: 52 }
    }
}

impl VcpuContext {
    /// KVM's `page_address_valid()`: page-aligned and within the guest MAXPHYADDR.
    pub fn page_address_valid(&self, gpa: u64) -> bool {
        let legal = match gpa.checked_shr(u32::from(self.maxphyaddr)) {
            Some(high) => high == 0,
            None => true, // MAXPHYADDR >= 64: every address is legal.
        };
        gpa & 0xfff == 0 && legal
    }
}

/// `struct kvm_vmx_nested_state_hdr` (at offset 8 of the blob).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VmxHeader {
    /// The VMXON pointer; [`INVALID_GPA`] when not in VMX operation.
    pub vmxon_pa: u64,
    /// The current VMCS pointer; [`INVALID_GPA`] when none.
    pub vmcs12_pa: u64,
    /// `smm.flags` (`KVM_STATE_NESTED_SMM_*`).
    pub smm_flags: u16,
    /// `flags` (`KVM_STATE_VMX_PREEMPTION_TIMER_DEADLINE`).
    pub vmx_flags: u32,
    /// `preemption_timer_deadline`.
    pub preemption_timer_deadline: u64,
}

impl Default for VmxHeader {
    /// Not in VMX operation: both pointers invalid, no flags.
    fn default() -> Self {
        Self { vmxon_pa: INVALID_GPA, vmcs12_pa: INVALID_GPA, smm_flags: 0, vmx_flags: 0, preemption_timer_deadline: 0 }
    }
}

/// Why [`check`] refuses a blob. The number in each description is the rule's number in the
/// reference (`nested-state-uapi.md`, "KVM_SET_NESTED_STATE — every rejection condition").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NestedStateError {
    /// Rule 2: the 128-byte header cannot be read (the blob is shorter than 128 bytes). `-EFAULT`.
    HeaderTruncated {
        /// Bytes available.
        len: usize,
    },
    /// Rule 3: `size` < 128.
    SizeTooSmall {
        /// The declared size.
        size: u32,
    },
    /// The blob is shorter than its declared `size` (KVM would fault, `-EFAULT`, when it copies
    /// from the missing part; see the module documentation).
    Truncated {
        /// The declared size.
        size: u32,
        /// Bytes available.
        len: usize,
    },
    /// Rule 4: `flags` has a bit outside RUN_PENDING, GUEST_MODE, EVMCS, MTF_PENDING, GIF_SET.
    UnknownFlags {
        /// The unknown bits.
        bits: u16,
    },
    /// Rule 5: RUN_PENDING without GUEST_MODE.
    RunPendingWithoutGuestMode,
    /// Rule 6: `format` is not VMX (0).
    FormatNotVmx {
        /// The declared format.
        format: u16,
    },
    /// Rule 7, first condition: not in VMX operation (`vmxon_pa` invalid) but `smm.flags` != 0.
    SmmFlagsWithoutVmxon,
    /// Rule 7, second condition: not in VMX operation but `vmcs12_pa` is valid.
    Vmcs12PaWithoutVmxon,
    /// Rule 7, third condition: not in VMX operation but `flags` has a bit other than EVMCS.
    FlagsWithoutVmxon,
    /// Rule 8, first condition: `vmxon_pa` is valid but the guest CPUID lacks VMX.
    VmxonWithoutVmx,
    /// Rule 8, second condition: `vmxon_pa` is not page-aligned or lies beyond MAXPHYADDR.
    VmxonPaInvalid,
    /// Rule 9: SMM_GUEST_MODE in `smm.flags` together with GUEST_MODE in `flags`.
    SmmGuestModeWithGuestMode,
    /// Rule 10: `smm.flags` has a bit other than SMM_GUEST_MODE and SMM_VMXON.
    UnknownSmmFlags {
        /// The unknown bits.
        bits: u16,
    },
    /// Rule 11: `hdr.vmx.flags` has a bit other than PREEMPTION_TIMER_DEADLINE.
    UnknownVmxFlags {
        /// The unknown bits.
        bits: u32,
    },
    /// Rule 12, first half: the vCPU is in SMM and `flags` has GUEST_MODE or RUN_PENDING.
    GuestModeInSmm,
    /// Rule 12, second half: the vCPU is not in SMM and `smm.flags` is non-zero.
    SmmFlagsOutsideSmm,
    /// Rule 13: SMM_GUEST_MODE without SMM_VMXON.
    SmmGuestModeWithoutSmmVmxon,
    /// Rule 14: EVMCS in `flags` without VMX in CPUID and enlightened VMCS enabled.
    EvmcsNotEnabled,
    /// Rule 15: `size` < 128 + 998 ("VMXON without a VMCS") with GUEST_MODE, EVMCS or a valid
    /// `vmcs12_pa`.
    VmxonWithoutVmcs,
    /// Rule 16, first condition: `vmcs12_pa` equals `vmxon_pa`.
    Vmcs12PaIsVmxonPa,
    /// Rule 16, second condition: `vmcs12_pa` is not page-aligned or lies beyond MAXPHYADDR.
    Vmcs12PaInvalid,
    /// Rule 16, third condition: `vmcs12_pa` is invalid and EVMCS is not set.
    MissingVmcs12Pa,
    /// Rule 19: vmcs12's `hdr.revision_id` (bits 30:0) is not `VMCS12_REVISION`.
    BadVmcs12Revision {
        /// The revision found.
        revision: u32,
    },
    /// Rule 20: in guest mode, vmcs12 uses a shadow VMCS (activate-secondary and VMCS shadowing
    /// set, `vmcs_link_pointer` valid) but `size` < 128 + 4096 + 998.
    ShadowVmcs12Missing,
    /// Rule 22, first condition: the shadow vmcs12's `hdr.revision_id` is not `VMCS12_REVISION`.
    BadShadowVmcs12Revision {
        /// The revision found.
        revision: u32,
    },
    /// Rule 22, second condition: the shadow vmcs12's `hdr.shadow_vmcs` bit (31) is clear.
    ShadowVmcs12NotShadow,
}

impl NestedStateError {
    /// The errno KVM returns for this rule (negative): `-EFAULT` for unreadable input, else `-EINVAL`.
    pub fn errno(&self) -> i32 {
        match self {
            Self::HeaderTruncated { .. } | Self::Truncated { .. } => -14,
            _ => -22,
        }
    }
}

impl fmt::Display for NestedStateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::HeaderTruncated { len } => write!(f, "blob of {len} bytes is shorter than the 128-byte header"),
            Self::SizeTooSmall { size } => write!(f, "declared size {size} is below 128"),
            Self::Truncated { size, len } => write!(f, "blob of {len} bytes is shorter than its declared size {size}"),
            Self::UnknownFlags { bits } => write!(f, "unknown flags {bits:#x}"),
            Self::RunPendingWithoutGuestMode => f.write_str("RUN_PENDING without GUEST_MODE"),
            Self::FormatNotVmx { format } => write!(f, "format {format} is not VMX"),
            Self::SmmFlagsWithoutVmxon => f.write_str("SMM flags while not in VMX operation"),
            Self::Vmcs12PaWithoutVmxon => f.write_str("valid vmcs12_pa while not in VMX operation"),
            Self::FlagsWithoutVmxon => f.write_str("flags other than EVMCS while not in VMX operation"),
            Self::VmxonWithoutVmx => f.write_str("vmxon_pa valid but the guest CPUID lacks VMX"),
            Self::VmxonPaInvalid => f.write_str("vmxon_pa not page-aligned or beyond MAXPHYADDR"),
            Self::SmmGuestModeWithGuestMode => f.write_str("SMM_GUEST_MODE together with GUEST_MODE"),
            Self::UnknownSmmFlags { bits } => write!(f, "unknown SMM flags {bits:#x}"),
            Self::UnknownVmxFlags { bits } => write!(f, "unknown VMX header flags {bits:#x}"),
            Self::GuestModeInSmm => f.write_str("GUEST_MODE or RUN_PENDING while the vCPU is in SMM"),
            Self::SmmFlagsOutsideSmm => f.write_str("SMM flags while the vCPU is not in SMM"),
            Self::SmmGuestModeWithoutSmmVmxon => f.write_str("SMM_GUEST_MODE without SMM_VMXON"),
            Self::EvmcsNotEnabled => f.write_str("EVMCS without VMX in CPUID and enlightened VMCS enabled"),
            Self::VmxonWithoutVmcs => {
                f.write_str("VMXON without a VMCS (size < 1126) but GUEST_MODE, EVMCS or a valid vmcs12_pa")
            }
            Self::Vmcs12PaIsVmxonPa => f.write_str("vmcs12_pa equals vmxon_pa"),
            Self::Vmcs12PaInvalid => f.write_str("vmcs12_pa not page-aligned or beyond MAXPHYADDR"),
            Self::MissingVmcs12Pa => f.write_str("vmcs12_pa invalid without EVMCS"),
            Self::BadVmcs12Revision { revision } => write!(f, "vmcs12 revision {revision:#x} is not 0x11e57ed0"),
            Self::ShadowVmcs12Missing => f.write_str("shadow VMCS in use but size < 5222"),
            Self::BadShadowVmcs12Revision { revision } => {
                write!(f, "shadow vmcs12 revision {revision:#x} is not 0x11e57ed0")
            }
            Self::ShadowVmcs12NotShadow => f.write_str("shadow vmcs12 lacks the shadow-VMCS indicator"),
        }
    }
}

fn read_u16(b: &[u8], off: usize) -> u16 {
    match b.get(off..off.saturating_add(2)) {
        Some(&[a, c]) => u16::from_le_bytes([a, c]),
        _ => 0,
    }
}

fn read_u32(b: &[u8], off: usize) -> u32 {
    match b.get(off..off.saturating_add(4)).and_then(|s| <[u8; 4]>::try_from(s).ok()) {
        Some(a) => u32::from_le_bytes(a),
        None => 0,
    }
}

fn read_u64(b: &[u8], off: usize) -> u64 {
    match b.get(off..off.saturating_add(8)).and_then(|s| <[u8; 8]>::try_from(s).ok()) {
        Some(a) => u64::from_le_bytes(a),
        None => 0,
    }
}

/// A copy of the 998 bytes at `off`, or None when they are not all there.
fn read_vmcs12(b: &[u8], off: usize) -> Option<Vmcs12> {
    let src = b.get(off..off.checked_add(VMCS12_STRUCT_SIZE)?)?;
    let mut v = Vmcs12::zeroed();
    v.as_bytes_mut().copy_from_slice(src);
    Some(v)
}

/// Whatever part of the 998 bytes at `off` is there (the rest zero), or None when nothing is.
fn read_vmcs12_prefix(b: &[u8], off: usize) -> Option<Vmcs12> {
    let src = b.get(off..).filter(|s| !s.is_empty())?;
    let mut v = Vmcs12::zeroed();
    put(v.as_bytes_mut(), 0, src);
    Some(v)
}

/// `nested_cpu_has_shadow_vmcs(vmcs12) && vmcs12->vmcs_link_pointer != INVALID_GPA`.
pub fn uses_shadow_vmcs(vmcs12: &Vmcs12) -> bool {
    let primary = vmcs12.cpu_based_vm_exec_control;
    let secondary = vmcs12.secondary_vm_exec_control;
    let link = vmcs12.vmcs_link_pointer;
    primary & CPU_BASED_ACTIVATE_SECONDARY_CONTROLS != 0
        && secondary & SECONDARY_EXEC_SHADOW_VMCS != 0
        && link != INVALID_GPA
}

/// A blob that [`check`] accepted, cut to its declared size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NestedState<'a> {
    bytes: &'a [u8],
}

impl<'a> NestedState<'a> {
    /// The blob's first `size()` bytes.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// `flags` (`KVM_STATE_NESTED_*`).
    pub fn flags(&self) -> u16 {
        read_u16(self.bytes, OFF_FLAGS)
    }

    /// `format` (always [`KVM_STATE_NESTED_FORMAT_VMX`] once checked).
    pub fn format(&self) -> u16 {
        read_u16(self.bytes, OFF_FORMAT)
    }

    /// `size`: the declared total size.
    pub fn size(&self) -> u32 {
        read_u32(self.bytes, OFF_SIZE)
    }

    /// `hdr.vmx`.
    pub fn vmx_header(&self) -> VmxHeader {
        header_of(self.bytes)
    }

    /// A copy of the vmcs12 (its first 998 bytes) when the declared size covers it (>= 1126).
    /// Present even when KVM would ignore it (not in VMX operation).
    pub fn vmcs12(&self) -> Option<Vmcs12> {
        read_vmcs12(self.bytes, VMCS12_OFFSET)
    }

    /// A copy of the shadow vmcs12 (its first 998 bytes) when the declared size covers it (>= 5222).
    pub fn shadow_vmcs12(&self) -> Option<Vmcs12> {
        read_vmcs12(self.bytes, SHADOW_VMCS12_OFFSET)
    }
}

fn header_of(b: &[u8]) -> VmxHeader {
    VmxHeader {
        vmxon_pa: read_u64(b, OFF_VMXON_PA),
        vmcs12_pa: read_u64(b, OFF_VMCS12_PA),
        smm_flags: read_u16(b, OFF_SMM_FLAGS),
        vmx_flags: read_u32(b, OFF_VMX_FLAGS),
        preemption_timer_deadline: read_u64(b, OFF_DEADLINE),
    }
}

/// Applies the `KVM_SET_NESTED_STATE` rules (see [`NestedStateError`] for each) in KVM's order and
/// returns the view over the blob's first `size` bytes. Bytes past `size` are ignored.
pub fn check<'a>(blob: &'a [u8], vcpu: &VcpuContext) -> Result<NestedState<'a>, NestedStateError> {
    use NestedStateError as E;

    // Generic rules (x86.c).
    if blob.len() < HEADER_SIZE {
        return Err(E::HeaderTruncated { len: blob.len() });
    }
    let size = read_u32(blob, OFF_SIZE);
    if (size as usize) < HEADER_SIZE {
        return Err(E::SizeTooSmall { size });
    }
    let Some(bytes) = blob.get(..size as usize) else {
        return Err(E::Truncated { size, len: blob.len() });
    };
    let flags = read_u16(bytes, OFF_FLAGS);
    let unknown = flags & !KVM_STATE_NESTED_KNOWN_FLAGS;
    if unknown != 0 {
        return Err(E::UnknownFlags { bits: unknown });
    }
    let guest_mode = flags & KVM_STATE_NESTED_GUEST_MODE != 0;
    let run_pending = flags & KVM_STATE_NESTED_RUN_PENDING != 0;
    let evmcs = flags & KVM_STATE_NESTED_EVMCS != 0;
    if run_pending && !guest_mode {
        return Err(E::RunPendingWithoutGuestMode);
    }

    // vmx_set_nested_state().
    let format = read_u16(bytes, OFF_FORMAT);
    if format != KVM_STATE_NESTED_FORMAT_VMX {
        return Err(E::FormatNotVmx { format });
    }
    let hdr = header_of(bytes);
    if hdr.vmxon_pa == INVALID_GPA {
        if hdr.smm_flags != 0 {
            return Err(E::SmmFlagsWithoutVmxon);
        }
        if hdr.vmcs12_pa != INVALID_GPA {
            return Err(E::Vmcs12PaWithoutVmxon);
        }
        if flags & !KVM_STATE_NESTED_EVMCS != 0 {
            return Err(E::FlagsWithoutVmxon);
        }
    } else {
        if !vcpu.has_vmx {
            return Err(E::VmxonWithoutVmx);
        }
        if !vcpu.page_address_valid(hdr.vmxon_pa) {
            return Err(E::VmxonPaInvalid);
        }
    }
    let smm_guest_mode = hdr.smm_flags & KVM_STATE_NESTED_SMM_GUEST_MODE != 0;
    if smm_guest_mode && guest_mode {
        return Err(E::SmmGuestModeWithGuestMode);
    }
    let unknown = hdr.smm_flags & !(KVM_STATE_NESTED_SMM_GUEST_MODE | KVM_STATE_NESTED_SMM_VMXON);
    if unknown != 0 {
        return Err(E::UnknownSmmFlags { bits: unknown });
    }
    let unknown = hdr.vmx_flags & !KVM_STATE_VMX_PREEMPTION_TIMER_DEADLINE;
    if unknown != 0 {
        return Err(E::UnknownVmxFlags { bits: unknown });
    }
    if vcpu.in_smm {
        if guest_mode || run_pending {
            return Err(E::GuestModeInSmm);
        }
    } else if hdr.smm_flags != 0 {
        return Err(E::SmmFlagsOutsideSmm);
    }
    if smm_guest_mode && hdr.smm_flags & KVM_STATE_NESTED_SMM_VMXON == 0 {
        return Err(E::SmmGuestModeWithoutSmmVmxon);
    }
    if evmcs && !(vcpu.has_vmx && vcpu.evmcs_enabled) {
        return Err(E::EvmcsNotEnabled);
    }

    // vmx_leave_nested(); not in VMX operation: done.
    let state = NestedState { bytes };
    if hdr.vmxon_pa == INVALID_GPA {
        return Ok(state);
    }

    if (size as usize) < MIN_SIZE_WITH_VMCS12 {
        if guest_mode || evmcs || hdr.vmcs12_pa != INVALID_GPA {
            return Err(E::VmxonWithoutVmcs);
        }
        return Ok(state);
    }

    if hdr.vmcs12_pa != INVALID_GPA {
        if hdr.vmcs12_pa == hdr.vmxon_pa {
            return Err(E::Vmcs12PaIsVmxonPa);
        }
        if !vcpu.page_address_valid(hdr.vmcs12_pa) {
            return Err(E::Vmcs12PaInvalid);
        }
    } else if !evmcs {
        return Err(E::MissingVmcs12Pa);
    }

    // Rule 18 (copying 998 bytes) cannot fail: size >= 1126 and the blob holds `size` bytes.
    let Some(vmcs12) = read_vmcs12(bytes, VMCS12_OFFSET) else {
        return Err(E::Truncated { size, len: blob.len() });
    };
    let revision = vmcs12.hdr & VMCS_HDR_REVISION_MASK;
    if revision != VMCS12_REVISION {
        return Err(E::BadVmcs12Revision { revision });
    }

    if !guest_mode {
        return Ok(state);
    }

    if uses_shadow_vmcs(&vmcs12) {
        if (size as usize) < MIN_SIZE_WITH_SHADOW {
            return Err(E::ShadowVmcs12Missing);
        }
        let Some(shadow) = read_vmcs12(bytes, SHADOW_VMCS12_OFFSET) else {
            return Err(E::Truncated { size, len: blob.len() });
        };
        let hdr = shadow.hdr;
        let revision = hdr & VMCS_HDR_REVISION_MASK;
        if revision != VMCS12_REVISION {
            return Err(E::BadShadowVmcs12Revision { revision });
        }
        if hdr & VMCS_HDR_SHADOW_VMCS == 0 {
            return Err(E::ShadowVmcs12NotShadow);
        }
    }
    // nested_vmx_check_restored_vmcs12()'s VM-entry consistency checks: out of scope.
    Ok(state)
}

/// Why [`NestedStateBuilder::emit`] failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EmitError {
    /// The output buffer is smaller than the blob.
    BufferTooSmall {
        /// Bytes the blob needs.
        needed: usize,
        /// Bytes the buffer has.
        available: usize,
    },
}

impl fmt::Display for EmitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BufferTooSmall { needed, available } => {
                write!(f, "nested state needs {needed} bytes, the buffer has {available}")
            }
        }
    }
}

/// Builds a `kvm_nested_state` blob. Defaults: flags 0, format VMX, not in VMX operation (both
/// pointers [`INVALID_GPA`]), no vmcs12.
///
/// The natural size is 128, 4224 with a vmcs12, 8320 with a shadow vmcs12 (a shadow without a
/// vmcs12 gets an all-zero vmcs12 area). [`NestedStateBuilder::declared_size`] overrides the
/// `size` field; the blob is then that long (at least 128 bytes), its areas cut or padded with
/// zeros. Every byte the builder does not set (header padding, the tail of each area past 998) is 0.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NestedStateBuilder {
    flags: u16,
    format: u16,
    hdr: VmxHeader,
    vmcs12: Option<Vmcs12>,
    shadow_vmcs12: Option<Vmcs12>,
    declared_size: Option<u32>,
}

impl Default for NestedStateBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl NestedStateBuilder {
    /// Not in VMX operation, no flags.
    pub const fn new() -> Self {
        Self {
            flags: 0,
            format: KVM_STATE_NESTED_FORMAT_VMX,
            hdr: VmxHeader {
                vmxon_pa: INVALID_GPA,
                vmcs12_pa: INVALID_GPA,
                smm_flags: 0,
                vmx_flags: 0,
                preemption_timer_deadline: 0,
            },
            vmcs12: None,
            shadow_vmcs12: None,
            declared_size: None,
        }
    }

    /// A builder that re-emits `state`: its header fields, declared size and areas (including an
    /// area the declared size cuts short). Byte-exact for every blob whose unset bytes (see the
    /// type's documentation) are zero, e.g. anything emitted.
    pub fn from_state(state: &NestedState<'_>) -> Self {
        Self {
            flags: state.flags(),
            format: state.format(),
            hdr: state.vmx_header(),
            vmcs12: read_vmcs12_prefix(state.bytes, VMCS12_OFFSET),
            shadow_vmcs12: read_vmcs12_prefix(state.bytes, SHADOW_VMCS12_OFFSET),
            declared_size: Some(state.size()),
        }
    }

    /// `flags`.
    pub const fn flags(mut self, flags: u16) -> Self {
        self.flags = flags;
        self
    }

    /// `format`.
    pub const fn format(mut self, format: u16) -> Self {
        self.format = format;
        self
    }

    /// The whole `hdr.vmx`.
    pub const fn vmx_header(mut self, hdr: VmxHeader) -> Self {
        self.hdr = hdr;
        self
    }

    /// `hdr.vmx.vmxon_pa`.
    pub const fn vmxon_pa(mut self, pa: u64) -> Self {
        self.hdr.vmxon_pa = pa;
        self
    }

    /// `hdr.vmx.vmcs12_pa`.
    pub const fn vmcs12_pa(mut self, pa: u64) -> Self {
        self.hdr.vmcs12_pa = pa;
        self
    }

    /// `hdr.vmx.smm.flags`.
    pub const fn smm_flags(mut self, flags: u16) -> Self {
        self.hdr.smm_flags = flags;
        self
    }

    /// `hdr.vmx.flags`.
    pub const fn vmx_flags(mut self, flags: u32) -> Self {
        self.hdr.vmx_flags = flags;
        self
    }

    /// `hdr.vmx.preemption_timer_deadline`.
    pub const fn preemption_timer_deadline(mut self, deadline: u64) -> Self {
        self.hdr.preemption_timer_deadline = deadline;
        self
    }

    /// The vmcs12 area (None: no area unless a shadow vmcs12 is set).
    pub const fn vmcs12(mut self, vmcs12: Option<Vmcs12>) -> Self {
        self.vmcs12 = vmcs12;
        self
    }

    /// The shadow vmcs12 area.
    pub const fn shadow_vmcs12(mut self, shadow: Option<Vmcs12>) -> Self {
        self.shadow_vmcs12 = shadow;
        self
    }

    /// Overrides the `size` field (None: the natural size).
    pub const fn declared_size(mut self, size: Option<u32>) -> Self {
        self.declared_size = size;
        self
    }

    /// 128, 4224 or 8320 by the areas set.
    pub const fn natural_size(&self) -> usize {
        if self.shadow_vmcs12.is_some() {
            SIZE_WITH_SHADOW
        } else if self.vmcs12.is_some() {
            SIZE_WITH_VMCS12
        } else {
            HEADER_SIZE
        }
    }

    /// The value of the `size` field.
    pub fn size_field(&self) -> u32 {
        match self.declared_size {
            Some(s) => s,
            None => self.natural_size() as u32,
        }
    }

    /// Bytes [`Self::emit`] writes: the `size` field, at least 128.
    pub fn len(&self) -> usize {
        (self.size_field() as usize).max(HEADER_SIZE)
    }

    /// Never true: a blob has at least its header.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Writes the blob to the start of `out` and returns its length ([`Self::len`]).
    pub fn emit(&self, out: &mut [u8]) -> Result<usize, EmitError> {
        let len = self.len();
        let available = out.len();
        let Some(out) = out.get_mut(..len) else {
            return Err(EmitError::BufferTooSmall { needed: len, available });
        };
        out.fill(0);
        put(out, OFF_FLAGS, &self.flags.to_le_bytes());
        put(out, OFF_FORMAT, &self.format.to_le_bytes());
        put(out, OFF_SIZE, &self.size_field().to_le_bytes());
        put(out, OFF_VMXON_PA, &self.hdr.vmxon_pa.to_le_bytes());
        put(out, OFF_VMCS12_PA, &self.hdr.vmcs12_pa.to_le_bytes());
        put(out, OFF_SMM_FLAGS, &self.hdr.smm_flags.to_le_bytes());
        put(out, OFF_VMX_FLAGS, &self.hdr.vmx_flags.to_le_bytes());
        put(out, OFF_DEADLINE, &self.hdr.preemption_timer_deadline.to_le_bytes());
        if let Some(v) = &self.vmcs12 {
            put(out, VMCS12_OFFSET, v.as_bytes());
        }
        if let Some(v) = &self.shadow_vmcs12 {
            put(out, SHADOW_VMCS12_OFFSET, v.as_bytes());
        }
        Ok(len)
    }
}

/// Copies as much of `src` to `out[off..]` as fits.
fn put(out: &mut [u8], off: usize, src: &[u8]) {
    if let Some(dst) = out.get_mut(off..) {
        let n = dst.len().min(src.len());
        if let (Some(d), Some(s)) = (dst.get_mut(..n), src.get(..n)) {
            d.copy_from_slice(s);
        }
    }
}

/// rust-vmm's `kvm_bindings::KvmNestedStateBuffer` (what `VcpuFd::get_nested_state` fills).
#[cfg(feature = "kvm-bindings")]
pub mod kvm_bindings_buffer {
    use super::{EmitError, NestedState, NestedStateBuilder, NestedStateError, VcpuContext, check};
    use kvm_bindings::nested::KvmNestedStateBuffer;

    const LEN: usize = core::mem::size_of::<KvmNestedStateBuffer>();

    /// The buffer's bytes: a 128-byte `struct kvm_nested_state` header and the data union.
    pub fn as_bytes(buffer: &KvmNestedStateBuffer) -> &[u8] {
        // SAFETY: KvmNestedStateBuffer is repr(C) plain data (integers, byte arrays and unions of
        // them) without padding (128 + 8192 bytes), so every byte is initialized.
        unsafe { core::slice::from_raw_parts(buffer as *const KvmNestedStateBuffer as *const u8, LEN) }
    }

    /// Validate a buffer as KVM_SET_NESTED_STATE would (see [`check`]).
    pub fn check_buffer<'a>(
        buffer: &'a KvmNestedStateBuffer,
        vcpu: &VcpuContext,
    ) -> Result<NestedState<'a>, NestedStateError> {
        check(as_bytes(buffer), vcpu)
    }

    /// Emit a blob into a fresh buffer.
    pub fn to_buffer(builder: &NestedStateBuilder) -> Result<KvmNestedStateBuffer, EmitError> {
        let mut buffer = KvmNestedStateBuffer::empty();
        // SAFETY: as in `as_bytes`; every bit pattern of the buffer's fields is valid, so writing
        // bytes through this view cannot create an invalid value.
        let bytes =
            unsafe { core::slice::from_raw_parts_mut(&mut buffer as *mut KvmNestedStateBuffer as *mut u8, LEN) };
        builder.emit(bytes)?;
        Ok(buffer)
    }
}
