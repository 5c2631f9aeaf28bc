//! fields.rs: a typed handle per field, the field table, existence and VMCS_ENUM.

use proc_macro2::TokenStream;
use quote::quote;

use super::{gate_expr, hex, ident};
use crate::encoding::{Kind, Width};
use crate::model::Schema;

pub(super) fn width_marker(w: Width) -> TokenStream {
    match w {
        Width::W16 => quote!(W16),
        Width::W32 => quote!(W32),
        Width::W64 => quote!(W64),
        Width::Natural => quote!(Natural),
    }
}

fn width_variant(w: Width) -> TokenStream {
    match w {
        Width::W16 => quote!(FieldWidth::W16),
        Width::W32 => quote!(FieldWidth::W32),
        Width::W64 => quote!(FieldWidth::W64),
        Width::Natural => quote!(FieldWidth::Natural),
    }
}

fn kind_variant(k: Kind) -> TokenStream {
    match k {
        Kind::Control => quote!(FieldKind::Control),
        Kind::ReadOnly => quote!(FieldKind::ReadOnly),
        Kind::GuestState => quote!(FieldKind::GuestState),
        Kind::HostState => quote!(FieldKind::HostState),
    }
}

pub(super) fn emit(schema: &Schema) -> TokenStream {
    let consts = schema.fields.iter().map(|f| {
        let name = ident(&f.name);
        let w = width_marker(f.width);
        let a = if f.kind == Kind::ReadOnly { quote!(ReadOnly) } else { quote!(ReadWrite) };
        let enc = hex(f.encoding.raw() as u64);
        let gate =
            f.gate.as_ref().map_or("on every VMX processor".to_string(), |g| format!("if `{}`", schema.gate_text(g)));
        let src = f.source.as_ref().map_or(String::new(), |s| format!(" Known only to {s}."));
        let doc = format!(
            " {} ({:#06x}, {} {}; exists {gate}).{src}",
            f.doc.trim_end_matches('.'),
            f.encoding.raw(),
            f.width.describe(),
            f.kind.as_str()
        );
        quote!(#[doc = #doc] pub const #name: Field<#w, #a> = Field::from_encoding(#enc);)
    });
    // In encoding order whatever the order of fields.toml: the runtime binary-searches ALL.
    let mut sorted: Vec<_> = schema.fields.iter().collect();
    sorted.sort_by_key(|f| f.encoding.raw());
    let infos = sorted.into_iter().map(|f| {
        let name = &f.name;
        let enc = hex(f.encoding.raw() as u64);
        let w = width_variant(f.width);
        let k = kind_variant(f.kind);
        quote!(FieldInfo { name: #name, encoding: #enc, width: #w, kind: #k })
    });
    let count = proc_macro2::Literal::usize_unsuffixed(schema.fields.len());
    let caps = quote!(caps);
    let arms = schema.fields.iter().map(|f| {
        let full = hex(f.encoding.raw() as u64);
        let pat = if f.width == Width::W64 {
            let high = hex(f.encoding.high().raw() as u64);
            quote!(#full | #high)
        } else {
            quote!(#full)
        };
        let cond = f.gate.as_ref().map_or(quote!(true), |g| gate_expr(schema, g, &caps));
        quote!(#pat => #cond)
    });
    quote! {
        use crate::caps::{Cap, Capabilities};
        use crate::fields::{Field, FieldInfo, FieldKind, FieldWidth, Natural, ReadOnly, ReadWrite, W16, W32, W64};

        #(#consts)*

        /// Every architectural field, in encoding order.
        pub static ALL: [FieldInfo; #count] = [#(#infos),*];

        /// Does the field named by `encoding` (full or high access) exist on a processor with
        /// capabilities `caps`? Any other value, including reserved bits, names no field.
        pub fn exists<C: Capabilities + ?Sized>(encoding: u64, caps: &C) -> bool {
            match encoding {
                #(#arms,)*
                _ => false,
            }
        }

        /// IA32_VMX_VMCS_ENUM of a processor with capabilities `caps`: the highest index (bits 9:1)
        /// of any existing field, shifted left by 1. An L0 reports to L1 the value of L1's VMCS
        /// instead, [`Vmcs12::vmcs_enum`](crate::layouts::Layout::vmcs_enum) (only vmcs12's fields).
        pub fn vmcs_enum<C: Capabilities + ?Sized>(caps: &C) -> u64 {
            crate::fields::vmcs_enum_of(ALL.iter().map(|f| f.encoding), caps)
        }
    }
}
