//! A software model of a processor's current VMCS, for testing code that drives VMREAD/VMWRITE
//! without VMX hardware.
//!
//! Unlike a software layout such as vmcs12 (which L0 fills freely), [`SoftVmcs`] answers the way
//! a real processor does (SDM Vol. 3C: "Field Encoding in VMCS", and VMREAD/VMWRITE in the VMX
//! instruction reference): which fields exist follows a capability set, unsupported encodings
//! and read-only fields fail with VM-instruction errors 12 and 13 and record them in the
//! VM-instruction error field, and every access has the processor's width semantics. Counters
//! let tests assert how many VMCS accesses a routine makes, which is what costs time on hardware.

use core::cell::Cell;

use crate::access::{VmcsError, VmcsRead, VmcsWrite};
use crate::caps::{Cap, Capabilities};
use crate::fields;
use crate::fields::{FieldInfo, FieldKind, FieldWidth};

/// One storage slot per architectural field (`fields::ALL` is in encoding order).
const SLOTS: usize = fields::ALL.len();
/// Words of the existence bitmap.
const EXISTS_WORDS: usize = SLOTS.div_ceil(64);
/// The VM-instruction error field, which failed VMREADs (taking `&self`) must also update.
const VM_INSTRUCTION_ERROR: u32 = 0x4400;

/// Where a VMREAD/VMWRITE encoding lands, once it is known to name an existing field.
#[derive(Clone, Copy)]
struct Target {
    slot: usize,
    info: &'static FieldInfo,
    /// High access (bit 0) of a 64-bit field: bits 63:32.
    high: bool,
}

/// A software current-VMCS with hardware VMREAD/VMWRITE semantics for one capability set.
///
/// Existence is evaluated once at construction, so the struct carries no capability type and
/// every access is a binary search over the field table plus a bit test. Contents start zeroed;
/// on hardware they are undefined after VMCLEAR, and zero keeps tests deterministic.
#[derive(Clone, Debug)]
pub struct SoftVmcs {
    values: [u64; SLOTS],
    exists: [u64; EXISTS_WORDS],
    /// IA32_VMX_MISC bit 29: VMWRITE may write the VM-exit information fields.
    vmwrite_any_field: bool,
    /// The VM-instruction error field lives here rather than in `values` because a failed VMREAD
    /// (through `&self`) must set it, as on hardware.
    instruction_error: Cell<u32>,
    reads: Cell<u64>,
    writes: Cell<u64>,
}

impl SoftVmcs {
    /// A zeroed VMCS whose fields exist exactly as `caps` allows (what `fields::exists` says),
    /// with read-only fields writable only if `caps` has [`Cap::MiscVmwriteAnyField`].
    pub fn new<C: Capabilities + ?Sized>(caps: &C) -> Self {
        let mut exists = [0u64; EXISTS_WORDS];
        for (slot, info) in fields::ALL.iter().enumerate() {
            let bit = fields::exists(info.encoding as u64, caps) as u64;
            if let Some(word) = exists.get_mut(slot / 64) {
                *word |= bit << (slot % 64);
            }
        }
        SoftVmcs {
            values: [0; SLOTS],
            exists,
            vmwrite_any_field: caps.has(Cap::MiscVmwriteAnyField),
            instruction_error: Cell::new(0),
            reads: Cell::new(0),
            writes: Cell::new(0),
        }
    }

    /// Whether VMREAD of `encoding` would succeed: it names a field that exists for this
    /// capability set (a high access only of a 64-bit field). Not counted as an access.
    pub fn exists(&self, encoding: u64) -> bool {
        self.target(encoding).is_some()
    }

    /// The VM-instruction error field (0x4400): 12 or 13 after the last failed access, and, as on
    /// hardware, not cleared by later successful ones. Not counted as an access.
    pub fn instruction_error(&self) -> u32 {
        self.instruction_error.get()
    }

    /// VMREAD attempts (successful or not) since construction or [`Self::reset_counts`].
    pub fn reads(&self) -> u64 {
        self.reads.get()
    }

    /// VMWRITE attempts (successful or not) since construction or [`Self::reset_counts`].
    pub fn writes(&self) -> u64 {
        self.writes.get()
    }

    /// Start counting afresh, e.g. around the routine under test.
    pub fn reset_counts(&self) {
        self.reads.set(0);
        self.writes.set(0);
    }

    /// Decode `encoding` the way VMREAD/VMWRITE do; None means VM-instruction error 12.
    fn target(&self, encoding: u64) -> Option<Target> {
        // Encodings are 32 bits; anything above is not a field (the 64-bit register form).
        let encoding = u32::try_from(encoding).ok()?;
        let full = encoding & !1;
        // An exact match of the full encoding also rules out every reserved bit (31:15, 12).
        let slot = fields::ALL.binary_search_by_key(&full, |f| f.encoding).ok()?;
        let info = fields::ALL.get(slot)?;
        let high = encoding & 1 == 1;
        if high && info.width != FieldWidth::W64 {
            return None;
        }
        let word = self.exists.get(slot / 64)?;
        if word >> (slot % 64) & 1 == 0 {
            return None;
        }
        Some(Target { slot, info, high })
    }

    /// Record a VMfailValid, as the processor does in the current VMCS.
    fn fail(&self, error: VmcsError) -> VmcsError {
        if let Some(n) = error.instruction_error() {
            self.instruction_error.set(n);
        }
        error
    }

    fn stored(&self, t: Target) -> u64 {
        if t.info.encoding == VM_INSTRUCTION_ERROR {
            return self.instruction_error.get() as u64;
        }
        self.values.get(t.slot).copied().unwrap_or(0)
    }

    fn store(&mut self, t: Target, value: u64) {
        if t.info.encoding == VM_INSTRUCTION_ERROR {
            self.instruction_error.set(value as u32);
        } else if let Some(v) = self.values.get_mut(t.slot) {
            *v = value;
        }
    }
}

/// Bits of `value` a field of width `width` keeps (natural width is 64 bits on x86-64).
fn truncate(width: FieldWidth, value: u64) -> u64 {
    match width {
        FieldWidth::W16 => value & 0xffff,
        FieldWidth::W32 => value & 0xffff_ffff,
        FieldWidth::W64 | FieldWidth::Natural => value,
    }
}

impl VmcsRead for SoftVmcs {
    fn read_raw(&self, encoding: u64) -> Result<u64, VmcsError> {
        self.reads.set(self.reads.get().wrapping_add(1));
        let t = self.target(encoding).ok_or_else(|| self.fail(VmcsError::UnsupportedField(encoding)))?;
        let value = self.stored(t);
        Ok(if t.high { value >> 32 } else { truncate(t.info.width, value) })
    }
}

impl VmcsWrite for SoftVmcs {
    fn write_raw(&mut self, encoding: u64, value: u64) -> Result<(), VmcsError> {
        self.writes.set(self.writes.get().wrapping_add(1));
        // Error 12 takes precedence over error 13 (SDM VMWRITE operation).
        let t = self.target(encoding).ok_or_else(|| self.fail(VmcsError::UnsupportedField(encoding)))?;
        if t.info.kind == FieldKind::ReadOnly && !self.vmwrite_any_field {
            return Err(self.fail(VmcsError::ReadOnlyField(encoding)));
        }
        let new = if t.high { (self.stored(t) & 0xffff_ffff) | (value << 32) } else { truncate(t.info.width, value) };
        self.store(t, new);
        Ok(())
    }
}
