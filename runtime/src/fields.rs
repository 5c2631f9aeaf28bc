//! Every architectural VMCS field: a typed handle per field (`fields::GUEST_RIP`, generated from
//! `schema/fields.toml`), the field table [`ALL`] with each field's [`FieldInfo`], field
//! existence for a capability set ([`exists`]) and IA32_VMX_VMCS_ENUM ([`vmcs_enum`]).
//!
//! A [`Field`] carries its width and its access in its type: writing a `u64` into a 16-bit field,
//! or writing a read-only field through the typed API, does not compile.

use core::marker::PhantomData;

pub use crate::generated::fields::*;

/// The width of a field (encoding bits 14:13).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FieldWidth {
    /// 16 bits (bits 14:13 = 0).
    W16,
    /// 32 bits (bits 14:13 = 2).
    W32,
    /// 64 bits (bits 14:13 = 1), with a high-access encoding for bits 63:32.
    W64,
    /// Natural width (bits 14:13 = 3): 64 bits on x86-64.
    Natural,
}

/// The kind of a field (encoding bits 11:10).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FieldKind {
    /// A control field (bits 11:10 = 0).
    Control,
    /// A VM-exit information (read-only data) field (bits 11:10 = 1).
    ReadOnly,
    /// A guest-state field (bits 11:10 = 2).
    GuestState,
    /// A host-state field (bits 11:10 = 3).
    HostState,
}

/// Static facts about one architectural field.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FieldInfo {
    /// The schema's name (Linux's where Linux has the field).
    pub name: &'static str,
    /// The full encoding (bit 0 clear: a 64-bit field's high access is `encoding | 1`).
    pub encoding: u32,
    /// The width (encoding bits 14:13).
    pub width: FieldWidth,
    /// The kind (encoding bits 11:10).
    pub kind: FieldKind,
}

mod sealed {
    pub trait Sealed {}
}

/// A width marker: the Rust type a field of this width holds.
pub trait Width: sealed::Sealed + Copy {
    /// The width as a value.
    const WIDTH: FieldWidth;
    /// The Rust type of a value of this width (`u16`, `u32` or `u64`).
    type Value: Copy + Into<u64>;
    /// Truncate a raw 64-bit VMREAD result to this width.
    fn from_raw(raw: u64) -> Self::Value;
}

/// 16-bit fields.
#[derive(Clone, Copy, Debug)]
pub enum W16 {}
/// 32-bit fields (and the high halves of 64-bit fields).
#[derive(Clone, Copy, Debug)]
pub enum W32 {}
/// 64-bit fields.
#[derive(Clone, Copy, Debug)]
pub enum W64 {}
/// Natural-width fields (64 bits on x86-64).
#[derive(Clone, Copy, Debug)]
pub enum Natural {}

macro_rules! width {
    ($t:ty, $w:ident, $v:ty) => {
        impl sealed::Sealed for $t {}
        impl Width for $t {
            const WIDTH: FieldWidth = FieldWidth::$w;
            type Value = $v;
            #[inline(always)]
            fn from_raw(raw: u64) -> $v {
                raw as $v
            }
        }
    };
}
width!(W16, W16, u16);
width!(W32, W32, u32);
width!(W64, W64, u64);
width!(Natural, Natural, u64);

/// An access marker.
pub trait Access: Copy {}
/// Fields that VMWRITE may write (controls, guest and host state).
#[derive(Clone, Copy, Debug)]
pub enum ReadWrite {}
/// VM-exit information fields: read-only to VMWRITE (unless IA32_VMX_MISC bit 29).
#[derive(Clone, Copy, Debug)]
pub enum ReadOnly {}
impl Access for ReadWrite {}
impl Access for ReadOnly {}
/// Access markers that allow the typed write API.
#[diagnostic::on_unimplemented(
    message = "this VMCS field is read-only: the typed API does not write VM-exit information fields",
    label = "a read-only field",
    note = "L0 fills exit information in a software VMCS through its struct members or `write_raw`"
)]
pub trait Writable: Access {}
impl Writable for ReadWrite {}

/// A VMCS field of width `W` and access `A`, named by its encoding.
pub struct Field<W: Width, A: Access> {
    encoding: u32,
    _marker: PhantomData<fn() -> (W, A)>,
}

impl<W: Width, A: Access> Clone for Field<W, A> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<W: Width, A: Access> Copy for Field<W, A> {}

impl<W: Width, A: Access> core::fmt::Debug for Field<W, A> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "Field({:#06x})", self.encoding)
    }
}

impl<W: Width, A: Access> Field<W, A> {
    /// A handle for `encoding`. The generated constants of this module are the intended way to
    /// get one; this exists for them and for tests.
    pub const fn from_encoding(encoding: u32) -> Self {
        Field { encoding, _marker: PhantomData }
    }
    /// The 32-bit field encoding.
    pub const fn encoding(self) -> u32 {
        self.encoding
    }
    /// The encoding as the 64-bit operand VMREAD/VMWRITE take.
    pub const fn raw(self) -> u64 {
        self.encoding as u64
    }
}

impl<A: Access> Field<W64, A> {
    /// The high-access half (bits 63:32) of a 64-bit field, as a 32-bit field.
    pub const fn high(self) -> Field<W32, A> {
        Field::from_encoding(self.encoding | 1)
    }
}

/// IA32_VMX_VMCS_ENUM over `encodings`: the highest index (encoding bits 9:1) among those that
/// exist for `caps`, shifted left by 1. The one routine behind [`vmcs_enum`] (every
/// architectural field) and [`crate::layouts::Layout::vmcs_enum`] (the fields a layout maps).
pub(crate) fn vmcs_enum_of<C: crate::caps::Capabilities + ?Sized>(
    encodings: impl IntoIterator<Item = u32>,
    caps: &C,
) -> u64 {
    let max = encodings.into_iter().filter(|&e| exists(e as u64, caps)).map(|e| (e >> 1) & 0x1ff).max().unwrap_or(0);
    (max as u64) << 1
}
