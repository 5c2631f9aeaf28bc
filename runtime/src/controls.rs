//! VMX control fields as typed bit sets, generated from `schema/capabilities.toml`: one type per
//! control MSR that names its control field (e.g. [`PinBasedVmExecControl`], whose allowed
//! settings MSR `pin` 0x481 reports), with a constant per capability bit, and the allowed-0 /
//! allowed-1 adjustment against a [`VmxCaps`] ([`Controls::adjust`], through [`VmxCaps::value`]:
//! the TRUE MSR when it exists).
//!
//! ```
//! use vmcs::caps::VmxCaps;
//! use vmcs::controls::{Controls, CpuBasedVmExecControl as Proc};
//!
//! // KVM 7.2.8's nested IA32_VMX_BASIC (bit 55: TRUE MSRs) and primary controls, TRUE and not.
//! let mut caps = VmxCaps::new();
//! caps.set(0x480, 0x0098_1000_11e5_7ed0).set(0x482, 0xfff9_fffe_0401_e172).set(0x48e, 0xfff9_fffe_0400_6172);
//! let proc = Proc::adjust(&caps, Proc::HLT_EXITING, Proc::USE_MSR_BITMAPS).unwrap();
//! assert!(proc.contains(Proc::HLT_EXITING | Proc::USE_MSR_BITMAPS));
//! assert!(!proc.contains(Proc::CR3_LOAD_EXITING), "a default1 control the TRUE MSR lets be 0");
//! ```

use core::fmt;

use crate::caps::{Cap, Msr};
pub use crate::caps::{MsrKind, VmxCaps};

/// The allowed settings of a control field.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Allowed<T> {
    /// Controls that must be 1 (allowed-0 setting 1).
    pub must_be_1: T,
    /// Controls that may be 1 (allowed-1 setting 1).
    pub may_be_1: T,
}

impl<T: Controls> Allowed<T> {
    /// Does `value` set every control that must be 1 and none that may not?
    pub fn permits(&self, value: T) -> bool {
        let (v, must, may) = (value.to_bits(), self.must_be_1.to_bits(), self.may_be_1.to_bits());
        v & must == must && v & !may == 0
    }
}

/// A control field as a bit set: implemented by every generated control type.
pub trait Controls: Copy + Eq + Sized {
    /// The capability MSR that reports the allowed settings.
    const MSR: Msr;

    /// The raw bits, widened to 64.
    fn to_bits(self) -> u64;

    /// From raw bits; bits above the field's width are dropped.
    fn from_bits_truncate(bits: u64) -> Self;

    /// The settings `caps` allows ([`VmxCaps::value`] of [`Self::MSR`]: nothing when the MSR
    /// does not exist; the TRUE MSR when it exists). A "control" MSR reports must-be-1 in bits
    /// 31:0 and may-be-1 in bits 63:32; a "flags" MSR (64-bit controls) reports may-be-1 only.
    fn allowed(caps: &VmxCaps) -> Allowed<Self> {
        let v = caps.value(Self::MSR);
        let (must, may) = match Self::MSR.kind() {
            MsrKind::Control => (v & 0xffff_ffff, v >> 32),
            MsrKind::Flags => (0, v),
        };
        Allowed { must_be_1: Self::from_bits_truncate(must), may_be_1: Self::from_bits_truncate(may) }
    }

    /// The value to write, as KVM's `adjust_vmx_controls` computes it: `required | optional`
    /// without the controls that may not be 1, plus those that must be 1. Fails, naming them, if
    /// a required control may not be 1.
    fn adjust(caps: &VmxCaps, required: Self, optional: Self) -> Result<Self, UnsupportedControls> {
        let a = Self::allowed(caps);
        let (must, may) = (a.must_be_1.to_bits(), a.may_be_1.to_bits());
        let missing = required.to_bits() & !may;
        if missing != 0 {
            return Err(UnsupportedControls { msr: Self::MSR, controls: missing });
        }
        Ok(Self::from_bits_truncate((required.to_bits() | optional.to_bits()) & may | must))
    }
}

/// Required controls the processor does not allow to be 1.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UnsupportedControls {
    /// The MSR that reports the allowed settings.
    pub msr: Msr,
    /// The controls, as bits of the control field.
    pub controls: u64,
}

/// E.g. `MSR proc (0x482) does not allow controls 0x8000 (proc.cr3_load_exiting)`.
impl fmt::Display for UnsupportedControls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MSR {} ({:#x}) does not allow controls {:#x} (", self.msr.name(), self.msr.index(), self.controls)?;
        write_names(f, self.msr, self.controls)?;
        f.write_str(")")
    }
}

impl core::error::Error for UnsupportedControls {}

/// The capability names of `bits` of `msr`'s controls joined by ` | `, then any unnamed bits in hex.
#[doc(hidden)]
pub fn write_names(f: &mut fmt::Formatter<'_>, msr: Msr, bits: u64) -> fmt::Result {
    let mut rest = bits;
    let mut first = true;
    for cap in Cap::ALL.iter().filter(|c| c.msr() == msr && bits >> c.bit() & 1 == 1) {
        write!(f, "{}{}", if first { "" } else { " | " }, cap.name())?;
        rest &= !(1 << cap.bit());
        first = false;
    }
    match (rest, first) {
        (0, true) => f.write_str("empty"),
        (0, false) => Ok(()),
        (r, true) => write!(f, "{r:#x}"),
        (r, false) => write!(f, " | {r:#x}"),
    }
}

/// The bit-set behaviour of a generated control type `$ty` over `$repr`, reported by `$msr`.
macro_rules! control_bits {
    ($ty:ident, $repr:ty, $msr:expr) => {
        impl $ty {
            /// No control set.
            pub const fn empty() -> Self {
                Self(0)
            }
            /// From the field's raw value.
            pub const fn from_bits(bits: $repr) -> Self {
                Self(bits)
            }
            /// The field's raw value.
            pub const fn bits(self) -> $repr {
                self.0
            }
            /// Are all controls of `other` set?
            pub const fn contains(self, other: Self) -> bool {
                self.0 & other.0 == other.0
            }
            /// Is any control of `other` set?
            pub const fn intersects(self, other: Self) -> bool {
                self.0 & other.0 != 0
            }
            /// The controls of both.
            pub const fn union(self, other: Self) -> Self {
                Self(self.0 | other.0)
            }
            /// `self` without the controls of `other`.
            pub const fn difference(self, other: Self) -> Self {
                Self(self.0 & !other.0)
            }
        }

        impl $crate::controls::Controls for $ty {
            const MSR: $crate::caps::Msr = $msr;
            fn to_bits(self) -> u64 {
                self.0 as u64
            }
            fn from_bits_truncate(bits: u64) -> Self {
                Self(bits as $repr)
            }
        }

        impl core::ops::BitOr for $ty {
            type Output = Self;
            fn bitor(self, other: Self) -> Self {
                self.union(other)
            }
        }

        impl core::ops::BitOrAssign for $ty {
            fn bitor_assign(&mut self, other: Self) {
                *self = self.union(other);
            }
        }

        impl core::ops::BitAnd for $ty {
            type Output = Self;
            fn bitand(self, other: Self) -> Self {
                Self(self.0 & other.0)
            }
        }

        impl core::ops::Sub for $ty {
            type Output = Self;
            fn sub(self, other: Self) -> Self {
                self.difference(other)
            }
        }

        /// The capability names of the set controls, then unnamed bits in hex.
        impl core::fmt::Display for $ty {
            fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                $crate::controls::write_names(f, $msr, self.0 as u64)
            }
        }

        impl core::fmt::Debug for $ty {
            fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                write!(f, "{}({self})", stringify!($ty))
            }
        }
    };
}

pub(crate) use control_bits;

pub use crate::generated::controls::*;
