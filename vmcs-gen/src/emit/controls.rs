//! controls.rs: a bit-set type per control field whose allowed settings an MSR reports, with a
//! constant per capability bit of that MSR. The behaviour (adjustment, formatting) is the runtime's
//! `control_bits!`, written once.

use proc_macro2::{Literal, TokenStream};
use quote::quote;

use super::caps::msr_variant;
use super::exits::type_name;
use super::fields::width_marker;
use super::ident;
use crate::encoding::Width;
use crate::model::Schema;

pub(super) fn emit(schema: &Schema) -> TokenStream {
    let types = schema.msrs.iter().enumerate().filter_map(|(id, m)| {
        let field = &schema.fields[m.control_field?];
        let ty = type_name(&field.name);
        let repr = if field.width == Width::W32 { quote!(u32) } else { quote!(u64) };
        let width = width_marker(field.width);
        let field_ident = ident(&field.name);
        let msr = msr_variant(&m.name);
        let doc = format!(
            " `{}`: the controls whose allowed settings `{}` (MSR {:#x}) reports{}.",
            field.name,
            m.name,
            m.index,
            m.true_msr.map_or(String::new(), |t| format!(" (`{}` when it exists)", schema.msrs[t].name))
        );
        let consts = schema.caps.iter().filter(|c| c.msr == id).map(|c| {
            let name = ident(&c.name.rsplit('.').next().unwrap_or(&c.name).to_ascii_uppercase());
            let bit = Literal::u32_unsuffixed(c.bit);
            let doc = format!(" {} (`{}`, bit {}).", c.doc.trim_end_matches('.'), c.name, c.bit);
            quote!(#[doc = #doc] pub const #name: Self = Self(1 << #bit);)
        });
        Some(quote! {
            #[doc = #doc]
            #[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
            pub struct #ty(#repr);

            impl #ty {
                #(#consts)*

                /// The VMCS field these controls live in.
                pub const FIELD: Field<crate::fields::#width, ReadWrite> = crate::fields::#field_ident;
            }

            control_bits!(#ty, #repr, Msr::#msr);
        })
    });
    quote! {
        use crate::caps::Msr;
        use crate::controls::control_bits;
        use crate::fields::{Field, ReadWrite};

        #(#types)*
    }
}
