//! The architectural VMCS field encoding (Intel SDM Vol. 3C, "Field Encoding in VMCS").
//!
//! bit 0 access type (1 = high 32 bits of a 64-bit field), bits 9:1 index, bits 11:10 type,
//! bit 12 reserved (0), bits 14:13 width, bits 31:15 reserved (0).

use std::fmt;

/// Field width, from encoding bits 14:13.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Width {
    /// 16-bit (width bits 0), e.g. selectors and VPID.
    W16,
    /// 64-bit (width bits 1): the only width with a high access (bit 0 set) to its upper half.
    W64,
    /// 32-bit (width bits 2), e.g. the control words and limits.
    W32,
    /// Natural width (width bits 3): 64 bits on a processor with Intel 64, 32 otherwise.
    Natural,
}

impl Width {
    /// The width an encoding's bits 14:13 name, given shifted down to bits 1:0 (higher bits ignored).
    pub fn from_bits(bits: u32) -> Width {
        match bits & 3 {
            0 => Width::W16,
            1 => Width::W64,
            2 => Width::W32,
            _ => Width::Natural,
        }
    }
    /// The two-bit value for encoding bits 14:13 (the inverse of [`Width::from_bits`]).
    pub fn bits(self) -> u32 {
        match self {
            Width::W16 => 0,
            Width::W64 => 1,
            Width::W32 => 2,
            Width::Natural => 3,
        }
    }
    /// The schema spelling: "16", "32", "64", "natural".
    pub fn as_str(self) -> &'static str {
        match self {
            Width::W16 => "16",
            Width::W32 => "32",
            Width::W64 => "64",
            Width::Natural => "natural",
        }
    }
    /// For prose: "16-bit", ..., "natural-width".
    pub fn describe(self) -> &'static str {
        match self {
            Width::W16 => "16-bit",
            Width::W32 => "32-bit",
            Width::W64 => "64-bit",
            Width::Natural => "natural-width",
        }
    }
    /// The width a schema spells `s` ([`Width::as_str`]), or None for any other text.
    pub fn parse(s: &str) -> Option<Width> {
        Some(match s {
            "16" => Width::W16,
            "32" => Width::W32,
            "64" => Width::W64,
            "natural" => Width::Natural,
            _ => return None,
        })
    }
    /// Bytes the field occupies in a software VMCS such as vmcs12 (natural width is 64-bit there).
    pub fn bytes(self) -> u32 {
        match self {
            Width::W16 => 2,
            Width::W32 => 4,
            Width::W64 | Width::Natural => 8,
        }
    }
}

/// Field kind ("type" in the SDM), from encoding bits 11:10.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// VM-execution, VM-exit and VM-entry controls (type 0).
    Control,
    /// VM-exit information, which VMWRITE may only write with IA32_VMX_MISC bit 29 (type 1).
    ReadOnly,
    /// The guest-state area, loaded on VM entry and saved on VM exit (type 2).
    GuestState,
    /// The host-state area, loaded on VM exit (type 3).
    HostState,
}

impl Kind {
    /// The kind an encoding's bits 11:10 name, given shifted down to bits 1:0 (higher bits ignored).
    pub fn from_bits(bits: u32) -> Kind {
        match bits & 3 {
            0 => Kind::Control,
            1 => Kind::ReadOnly,
            2 => Kind::GuestState,
            _ => Kind::HostState,
        }
    }
    /// The two-bit value for encoding bits 11:10 (the inverse of [`Kind::from_bits`]).
    pub fn bits(self) -> u32 {
        self as u32
    }
    /// The schema spelling: "control", "read-only", "guest-state", "host-state".
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Control => "control",
            Kind::ReadOnly => "read-only",
            Kind::GuestState => "guest-state",
            Kind::HostState => "host-state",
        }
    }
    /// The kind a schema spells `s` ([`Kind::as_str`]), or None for any other text.
    pub fn parse(s: &str) -> Option<Kind> {
        Some(match s {
            "control" => Kind::Control,
            "read-only" => Kind::ReadOnly,
            "guest-state" => Kind::GuestState,
            "host-state" => Kind::HostState,
            _ => return None,
        })
    }
}

/// A 32-bit VMCS field encoding: the operand VMREAD and VMWRITE name a field by.
///
/// Any `u32` can be held; [`Encoding::reserved_bits`] tells whether it is architecturally valid.
/// Debug and Display print it in hex (`0x681e`), as the SDM and the schema write encodings.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Encoding(pub u32);

impl Encoding {
    /// Bits that must be zero in every encoding: bit 12 and bits 31:15.
    pub const RESERVED_MASK: u32 = 0xFFFF_8000 | (1 << 12);

    /// The 32-bit value, as VMREAD/VMWRITE take it.
    pub fn raw(self) -> u32 {
        self.0
    }
    /// Bit 0, the access type: set for the high access to bits 63:32 of a 64-bit field.
    pub fn is_high(self) -> bool {
        self.0 & 1 != 0
    }
    /// Bits 9:1: the field's index among the fields of its width and kind (VMCS_ENUM reports the
    /// highest one in use).
    pub fn index(self) -> u32 {
        (self.0 >> 1) & 0x1FF
    }
    /// Bits 11:10, the field's type.
    pub fn kind(self) -> Kind {
        Kind::from_bits(self.0 >> 10)
    }
    /// Bits 14:13, the field's width.
    pub fn width(self) -> Width {
        Width::from_bits(self.0 >> 13)
    }
    /// The reserved bits this encoding sets ([`Encoding::RESERVED_MASK`]); nonzero means no
    /// processor accepts it (VMREAD/VMWRITE fail with "unsupported VMCS component").
    pub fn reserved_bits(self) -> u32 {
        self.0 & Self::RESERVED_MASK
    }
    /// The high-access encoding of a 64-bit field.
    pub fn high(self) -> Encoding {
        Encoding(self.0 | 1)
    }
    /// Compose an encoding from its parts; `index` is cut to its 9 bits.
    pub fn compose(width: Width, kind: Kind, index: u32, high: bool) -> Encoding {
        Encoding(width.bits() << 13 | kind.bits() << 10 | (index & 0x1FF) << 1 | high as u32)
    }
}

impl fmt::Debug for Encoding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#06x}", self.0)
    }
}

impl fmt::Display for Encoding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#06x}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_sdm_examples() {
        // GUEST_RIP 0x681E: natural-width guest-state field, index 15.
        let e = Encoding(0x681E);
        assert_eq!((e.width(), e.kind(), e.index(), e.is_high()), (Width::Natural, Kind::GuestState, 15, false));
        // TSC_MULTIPLIER_HIGH 0x2033: 64-bit control, index 25, high access.
        let e = Encoding(0x2033);
        assert_eq!((e.width(), e.kind(), e.index(), e.is_high()), (Width::W64, Kind::Control, 25, true));
        assert_eq!(Encoding::compose(Width::W32, Kind::ReadOnly, 1, false), Encoding(0x4402));
        assert_eq!(Encoding(0x1000).reserved_bits(), 0x1000);
        assert_eq!(Encoding(0x8000).reserved_bits(), 0x8000);
    }
}
