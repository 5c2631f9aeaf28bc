//! translate.rs: a field-by-field translator between every two layouts of the schema (seed 002:
//! "keep an (offset, type) map from old to new layout ... copy the fields one by one").

use proc_macro2::TokenStream;
use quote::quote;

use super::{hex, ident, layout::struct_name};
use crate::model::{Layout, MemberType, Schema};

pub(super) fn emit(schema: &Schema) -> TokenStream {
    let uses = schema.layouts.iter().map(|l| {
        let (m, s) = (ident(&l.name), struct_name(&l.name));
        quote!(use crate::layouts::#m::#s;)
    });
    let impls = schema.layouts.iter().flat_map(|a| schema.layouts.iter().map(move |b| emit_pair(schema, a, b)));
    quote! {
        #(#uses)*

        /// What a translation could not carry: encodings the source holds and the destination cannot.
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub struct Translation {
            /// The encodings (in encoding order) the destination has no member for.
            pub lost: &'static [u32],
        }

        /// Field-by-field translation from one layout into another.
        pub trait TranslateInto<D> {
            /// Copy every field both layouts hold (and the header members they share by name) into
            /// `dst`; members `dst` alone has are left as they are.
            fn translate_into(&self, dst: &mut D) -> Translation;
        }

        #(#impls)*
    }
}

fn emit_pair(schema: &Schema, a: &Layout, b: &Layout) -> TokenStream {
    let (sa, sb) = (struct_name(&a.name), struct_name(&b.name));
    if a.name == b.name {
        let doc = format!(" `{}` -> `{}`: a copy.", a.name, b.name);
        return quote! {
            #[doc = #doc]
            impl TranslateInto<#sb> for #sa {
                fn translate_into(&self, dst: &mut #sb) -> Translation {
                    *dst = *self;
                    Translation { lost: &[] }
                }
            }
        };
    }
    let mut copies = Vec::new();
    let mut lost = Vec::new();
    let mut members: Vec<_> = a.members.iter().collect();
    members.sort_by_key(|m| m.offset);
    for m in members {
        if m.ty == MemberType::Reserved {
            continue;
        }
        let target = match m.field {
            Some(f) => b.members.iter().find(|x| x.field == Some(f)),
            None => b.members.iter().find(|x| x.field.is_none() && x.name == m.name && x.ty == m.ty),
        };
        match target {
            Some(t) => {
                let (from, to) = (ident(&m.name), ident(&t.name));
                copies.push(quote!(dst.#to = self.#from;));
            }
            None => lost.extend(m.field.map(|f| hex(schema.fields[f].encoding.raw() as u64))),
        }
    }
    let doc = format!(" `{}` -> `{}`.", a.name, b.name);
    quote! {
        #[doc = #doc]
        impl TranslateInto<#sb> for #sa {
            fn translate_into(&self, dst: &mut #sb) -> Translation {
                #(#copies)*
                Translation { lost: &[#(#lost),*] }
            }
        }
    }
}
