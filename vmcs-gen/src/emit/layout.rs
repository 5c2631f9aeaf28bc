//! NAME.rs for a layout: the packed struct, a compile-time proof of every offset and of the size,
//! and the O(1) encoding lookup table behind read_raw/write_raw.

use proc_macro2::{Literal, TokenStream};
use quote::quote;

use super::{camel_case, hex, ident};
use crate::model::{Layout, MemberType, Schema};

/// `vmcs12` -> `Vmcs12`.
pub(crate) fn struct_name(layout: &str) -> proc_macro2::Ident {
    ident(&camel_case(layout))
}

/// Index bits the lookup table needs so that every mapped field's index fits.
pub fn index_bits(schema: &Schema, layout: &Layout) -> u32 {
    let max = layout.mapped().map(|(_, f)| schema.fields[f].encoding.index()).max().unwrap_or(0);
    (32 - max.leading_zeros()).max(1)
}

pub(super) fn emit(schema: &Schema, layout: &Layout) -> TokenStream {
    let name = struct_name(&layout.name);
    let mut members: Vec<_> = layout.members.iter().collect();
    members.sort_by_key(|m| m.offset);
    let decls = members.iter().map(|m| {
        let n = ident(&m.name);
        let ty = match m.ty {
            MemberType::U16 => quote!(u16),
            MemberType::U32 => quote!(u32),
            MemberType::U64 | MemberType::Natural => quote!(u64),
            MemberType::Reserved => {
                let size = Literal::usize_unsuffixed(m.size as usize);
                quote!([u8; #size])
            }
        };
        let doc = match (m.field, &m.doc) {
            (Some(f), _) => {
                let f = &schema.fields[f];
                format!(" {} ({}, {:#06x}).", f.doc, f.name, f.encoding.raw())
            }
            (None, Some(d)) => format!(" {d}"),
            (None, None) => " Reserved.".to_string(),
        };
        let doc_at = format!(" Offset {:#x}, {} bytes.", m.offset, m.size);
        quote!(#[doc = #doc] #[doc = ""] #[doc = #doc_at] pub #n: #ty)
    });
    let proofs = members.iter().map(|m| {
        let n = ident(&m.name);
        let off = Literal::usize_unsuffixed(m.offset as usize);
        quote!(assert!(core::mem::offset_of!(#name, #n) == #off);)
    });
    let used = Literal::usize_unsuffixed(layout.used_bytes() as usize);
    let revision = hex(layout.revision as u64);
    let region = hex(layout.size as u64);
    let bits = index_bits(schema, layout);
    let len = Literal::usize_unsuffixed(64usize << bits);
    let bits_lit = Literal::u32_unsuffixed(bits);
    let mut mapped: Vec<_> = layout.mapped().map(|(m, f)| (schema.fields[f].encoding.raw(), m.offset)).collect();
    mapped.sort();
    let entries = mapped.iter().map(|(e, o)| {
        let e = hex(*e as u64);
        let o = Literal::u16_unsuffixed(*o as u16);
        quote!((#e, #o))
    });
    let encodings = mapped.iter().map(|(e, _)| hex(*e as u64));
    let count = Literal::usize_unsuffixed(mapped.len());
    let clean_impl = match &layout.clean {
        Some(c) => {
            let member = ident(&c.member);
            quote! {
                impl crate::access::CleanFields for #name {
                    #[inline(always)]
                    fn clean_fields(&self) -> u32 {
                        self.#member
                    }
                }
            }
        }
        None => quote!(),
    };
    let doc = format!(
        " {} Revision {:#x}, {} bytes used of a {:#x}-byte region.",
        layout.doc,
        layout.revision,
        layout.used_bytes(),
        layout.size
    );
    quote! {
        use crate::layouts::{Layout, Location};
        use crate::lookup::LookupTable;

        #[doc = #doc]
        #[repr(C, packed)]
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub struct #name {
            #(#decls,)*
        }

        const _: () = {
            #(#proofs)*
            assert!(size_of::<#name>() == #used);
        };

        /// (full encoding, member offset) of every mapped field, in encoding order.
        const ENTRIES: [(u32, u16); #count] = [#(#entries),*];

        static TABLE: LookupTable<#len, #bits_lit> = LookupTable::build(&ENTRIES, #used);

        impl #name {
            /// An all-zero instance.
            pub const fn zeroed() -> Self {
                // SAFETY: every member is an integer or a byte array, for which all-zero is valid.
                unsafe { core::mem::zeroed() }
            }
        }

        #clean_impl

        impl Default for #name {
            fn default() -> Self {
                Self::zeroed()
            }
        }

        // SAFETY: packed, integer members only: no padding, every bit pattern valid, size USED_BYTES.
        unsafe impl Layout for #name {
            const REVISION: u32 = #revision;
            const REGION_SIZE: usize = #region;
            const USED_BYTES: usize = #used;
            const MAPPED: &'static [u32] = &[#(#encodings),*];

            #[inline(always)]
            fn locate(encoding: u64) -> Option<Location> {
                TABLE.lookup(encoding)
            }

            #[inline(always)]
            fn slot(encoding: u64) -> u64 {
                TABLE.slot(encoding)
            }

            #[inline(always)]
            fn slot_checked(encoding: u64) -> Option<u64> {
                TABLE.slot_checked(encoding)
            }
        }
    }
}
