//! The architectural VMCS field encoding (Intel SDM Vol. 3C, "Field Encoding in VMCS").
//!
//! bit 0 access type (1 = high 32 bits of a 64-bit field), bits 9:1 index, bits 11:10 type,
//! bit 12 reserved (0), bits 14:13 width, bits 31:15 reserved (0).

use std::fmt;

/// Field width, from encoding bits 14:13.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Width {
    W16,
    W64,
    W32,
    Natural,
}

impl Width {
    pub fn from_bits(bits: u32) -> Width {
        match bits & 3 {
            0 => Width::W16,
            1 => Width::W64,
            2 => Width::W32,
            _ => Width::Natural,
        }
    }
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
    Control,
    ReadOnly,
    GuestState,
    HostState,
}

impl Kind {
    pub fn from_bits(bits: u32) -> Kind {
        match bits & 3 {
            0 => Kind::Control,
            1 => Kind::ReadOnly,
            2 => Kind::GuestState,
            _ => Kind::HostState,
        }
    }
    pub fn bits(self) -> u32 {
        self as u32
    }
    /// The schema spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Control => "control",
            Kind::ReadOnly => "read-only",
            Kind::GuestState => "guest-state",
            Kind::HostState => "host-state",
        }
    }
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

/// A 32-bit VMCS field encoding.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Encoding(pub u32);

impl Encoding {
    /// Bits that must be zero in every encoding: bit 12 and bits 31:15.
    pub const RESERVED_MASK: u32 = 0xFFFF_8000 | (1 << 12);

    pub fn raw(self) -> u32 {
        self.0
    }
    pub fn is_high(self) -> bool {
        self.0 & 1 != 0
    }
    pub fn index(self) -> u32 {
        (self.0 >> 1) & 0x1FF
    }
    pub fn kind(self) -> Kind {
        Kind::from_bits(self.0 >> 10)
    }
    pub fn width(self) -> Width {
        Width::from_bits(self.0 >> 13)
    }
    pub fn reserved_bits(self) -> u32 {
        self.0 & Self::RESERVED_MASK
    }
    /// The high-access encoding of a 64-bit field.
    pub fn high(self) -> Encoding {
        Encoding(self.0 | 1)
    }
    /// Compose an encoding from its parts.
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
