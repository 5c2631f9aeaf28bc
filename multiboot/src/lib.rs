//! Multiboot (v1) for a loader that runs inside a hypervisor: find and check a kernel's Multiboot
//! header, list what to load where ([`image`]), and write the boot information the kernel finds
//! in EBX ([`info`]), as GRUB or QEMU's `-kernel` hand them over.
//!
//! Everything is bounds-checked: a kernel image or a module is untrusted input, and no input
//! makes these functions panic or read outside their slices.
#![deny(missing_docs)]
#![no_std]

pub mod image;
pub mod info;

/// The magic of a Multiboot header (in the first 8 KiB of the image, 4-byte aligned).
pub const HEADER_MAGIC: u32 = 0x1bad_b002;
/// What the loader leaves in EAX at the kernel's entry.
pub const BOOTLOADER_MAGIC: u32 = 0x2bad_b002;

/// Why an image cannot be loaded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Error {
    /// No Multiboot header with a valid checksum in the first 8192 bytes.
    NoHeader,
    /// The header requires a feature (flag bits 15:0) this loader does not provide.
    UnsupportedRequirement(u32),
    /// Neither the a.out kludge (flag 16) nor a loadable 32- or 64-bit x86 ELF image.
    NotElf,
    /// An ELF header, program header or kludge address field is inconsistent with the file.
    Malformed(&'static str),
    /// More loadable segments than [`image::MAX_SEGMENTS`].
    TooManySegments,
    /// The boot information does not fit the buffer given for it.
    NoRoom,
}

impl core::fmt::Display for Error {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Error::NoHeader => write!(f, "no Multiboot header in the first 8 KiB"),
            Error::UnsupportedRequirement(bits) => write!(f, "unsupported Multiboot requirement flags {bits:#x}"),
            Error::NotElf => write!(f, "not an x86 ELF image and no a.out kludge"),
            Error::Malformed(what) => write!(f, "malformed image: {what}"),
            Error::TooManySegments => write!(f, "more than {} loadable segments", image::MAX_SEGMENTS),
            Error::NoRoom => write!(f, "boot information does not fit"),
        }
    }
}

/// Little-endian field readers that fail instead of panicking.
pub(crate) fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(at..at.checked_add(2)?)?.try_into().ok()?))
}
pub(crate) fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at.checked_add(4)?)?.try_into().ok()?))
}
pub(crate) fn u64_at(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(b.get(at..at.checked_add(8)?)?.try_into().ok()?))
}
