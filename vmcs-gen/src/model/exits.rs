//! The VMX tables of the model: basic exit reasons, layouts of exit-information fields
//! (bitfields) and VM-instruction errors (exits.toml, instruction_errors.toml).

use crate::model::FieldId;

/// Index of a bitfield in [`crate::model::Schema::bitfields`].
pub type BitfieldId = usize;

/// A basic VM-exit reason (bits 15:0 of the exit-reason field).
#[derive(Clone, Debug)]
pub struct ExitReason {
    /// The SDM's number (Appendix C), below 65536.
    pub number: u16,
    /// UPPER_SNAKE_CASE, e.g. "CR_ACCESS".
    pub name: String,
    /// What causes it, after the SDM.
    pub doc: String,
    /// The layout of its exit qualification, when the SDM defines one.
    pub qualification: Option<BitfieldId>,
}

/// A layout of one or more VMCS fields of the same width, e.g. the CR-access exit qualification.
#[derive(Clone, Debug)]
pub struct Bitfield {
    /// snake_case, e.g. "cr_access_qualification".
    pub name: String,
    /// What the value means, with its SDM section.
    pub doc: String,
    /// The fields it decodes.
    pub fields: Vec<FieldId>,
    /// Bits of those fields: 16, 32 or 64 (natural width).
    pub width: u32,
    /// Named bit ranges, in schema order; they do not overlap.
    pub bits: Vec<Bits>,
}

impl Bitfield {
    /// Bits no range names: reserved.
    pub fn reserved_mask(&self) -> u64 {
        let all = if self.width == 64 { u64::MAX } else { (1u64 << self.width) - 1 };
        self.bits.iter().fold(all, |m, b| m & !b.mask())
    }
}

/// A named bit range of a [`Bitfield`].
#[derive(Clone, Debug)]
pub struct Bits {
    /// snake_case; the accessor's name.
    pub name: String,
    /// What the bits mean.
    pub doc: String,
    /// The lowest bit.
    pub lo: u32,
    /// The highest bit (inclusive; `hi >= lo`, below the bitfield's width).
    pub hi: u32,
    /// How the value reads.
    pub decode: Decode,
}

impl Bits {
    /// Number of bits in the range.
    pub fn width(&self) -> u32 {
        self.hi - self.lo + 1
    }
    /// The range's bits in place.
    pub fn mask(&self) -> u64 {
        (u64::MAX >> (64 - self.width())) << self.lo
    }
    /// "15:0", or "31" for one bit.
    pub fn range_text(&self) -> String {
        if self.hi == self.lo { self.lo.to_string() } else { format!("{}:{}", self.hi, self.lo) }
    }
}

/// What the value of a bit range means.
#[derive(Clone, Debug)]
pub enum Decode {
    /// A flag (one bit) or a number.
    Plain,
    /// Named values, decoded as the enum `name`.
    Values {
        /// CamelCase: the generated enum's name.
        name: String,
        /// The named values; an unnamed one decodes as None (unless every value is named).
        values: Vec<NamedValue>,
    },
    /// A basic exit reason number.
    ExitReason,
}

/// One named value of a bit range.
#[derive(Clone, Debug)]
pub struct NamedValue {
    /// snake_case.
    pub name: String,
    /// The bits' value, within the range.
    pub value: u64,
    /// What it means.
    pub doc: String,
}

/// A VM-instruction error (the number VMfailValid leaves in the VM-instruction error field).
#[derive(Clone, Debug)]
pub struct InstructionError {
    /// The SDM's number, from 1 (the field reads 0 after a VMX instruction that succeeded).
    pub number: u32,
    /// UPPER_SNAKE_CASE, e.g. "UNSUPPORTED_COMPONENT".
    pub name: String,
    /// The SDM's text.
    pub doc: String,
}
