//! Why `check` refuses a blob: one variant per KVM_SET_NESTED_STATE rule.

use core::fmt;

/// Why [`check`](crate::check) refuses a blob. The number in each description is the rule's place
/// among every rejection condition of `KVM_SET_NESTED_STATE` for VMX (Linux 7.2.8:
/// `kvm_arch_vcpu_ioctl` and `vmx_set_nested_state`), in the order KVM tests them.
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
    /// Rule 15: `size` < 128 + `sizeof(struct vmcs12)` ("VMXON without a VMCS") with GUEST_MODE, EVMCS or a valid
    /// `vmcs12_pa`.
    VmxonWithoutVmcs {
        /// The declared size.
        size: u32,
        /// 128 + `sizeof(struct vmcs12)` (1126).
        min: usize,
    },
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
        /// The layout's revision (`VMCS12_REVISION`).
        expected: u32,
    },
    /// Rule 20: in guest mode, vmcs12 uses a shadow VMCS (activate-secondary and VMCS shadowing
    /// set, `vmcs_link_pointer` valid) but `size` < 128 + 4096 + `sizeof(struct vmcs12)`.
    ShadowVmcs12Missing {
        /// The declared size.
        size: u32,
        /// 128 + 4096 + `sizeof(struct vmcs12)` (5222).
        min: usize,
    },
    /// Rule 22, first condition: the shadow vmcs12's `hdr.revision_id` is not `VMCS12_REVISION`.
    BadShadowVmcs12Revision {
        /// The revision found.
        revision: u32,
        /// The layout's revision (`VMCS12_REVISION`).
        expected: u32,
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

    /// The errno's name: `EFAULT` or `EINVAL`.
    pub fn errno_name(&self) -> &'static str {
        if self.errno() == -14 { "EFAULT" } else { "EINVAL" }
    }

    /// The rule's number in the reference's list (None: the truncation check, which KVM applies
    /// lazily, when it copies).
    pub fn rule(&self) -> Option<u8> {
        Some(match self {
            Self::HeaderTruncated { .. } => 2,
            Self::SizeTooSmall { .. } => 3,
            Self::Truncated { .. } => return None,
            Self::UnknownFlags { .. } => 4,
            Self::RunPendingWithoutGuestMode => 5,
            Self::FormatNotVmx { .. } => 6,
            Self::SmmFlagsWithoutVmxon | Self::Vmcs12PaWithoutVmxon | Self::FlagsWithoutVmxon => 7,
            Self::VmxonWithoutVmx | Self::VmxonPaInvalid => 8,
            Self::SmmGuestModeWithGuestMode => 9,
            Self::UnknownSmmFlags { .. } => 10,
            Self::UnknownVmxFlags { .. } => 11,
            Self::GuestModeInSmm | Self::SmmFlagsOutsideSmm => 12,
            Self::SmmGuestModeWithoutSmmVmxon => 13,
            Self::EvmcsNotEnabled => 14,
            Self::VmxonWithoutVmcs { .. } => 15,
            Self::Vmcs12PaIsVmxonPa | Self::Vmcs12PaInvalid | Self::MissingVmcs12Pa => 16,
            Self::BadVmcs12Revision { .. } => 19,
            Self::ShadowVmcs12Missing { .. } => 20,
            Self::BadShadowVmcs12Revision { .. } | Self::ShadowVmcs12NotShadow => 22,
        })
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
            Self::VmxonWithoutVmcs { size, min } => write!(
                f,
                "size {size} < {min} means VMXON without a VMCS, but GUEST_MODE, EVMCS or a valid vmcs12_pa is set"
            ),
            Self::Vmcs12PaIsVmxonPa => f.write_str("vmcs12_pa equals vmxon_pa"),
            Self::Vmcs12PaInvalid => f.write_str("vmcs12_pa not page-aligned or beyond MAXPHYADDR"),
            Self::MissingVmcs12Pa => f.write_str("vmcs12_pa invalid without EVMCS"),
            Self::BadVmcs12Revision { revision, expected } => {
                write!(f, "vmcs12 revision {revision:#x} is not {expected:#x}")
            }
            Self::ShadowVmcs12Missing { size, min } => {
                write!(f, "vmcs12 uses a shadow VMCS but size {size} < {min} holds no shadow vmcs12")
            }
            Self::BadShadowVmcs12Revision { revision, expected } => {
                write!(f, "shadow vmcs12 revision {revision:#x} is not {expected:#x}")
            }
            Self::ShadowVmcs12NotShadow => f.write_str("shadow vmcs12 lacks the shadow-VMCS indicator"),
        }
    }
}

impl core::error::Error for NestedStateError {}
