//! The derive's output: `ENCODINGS`, `load` and `store` over the runtime's field handles, and
//! the fallback items emitted next to errors.

use proc_macro2::{Span, TokenStream};
use quote::quote;
use syn::{DeriveInput, Ident};

use super::parse::crate_path;
use super::{Mapped, Member};

/// What the derive emits next to its errors: the same items with bodies that never run, so code
/// that uses `load`, `store` or `ENCODINGS` does not add "no function named `load`" errors to the
/// real ones.
pub fn fallback(input: &DeriveInput) -> TokenStream {
    let name = &input.ident;
    let krate = crate_path(input);
    let (impl_generics, ty_generics, where_clause) = input.generics.split_for_impl();
    quote! {
        impl #impl_generics #name #ty_generics #where_clause {
            #[allow(dead_code)]
            pub const ENCODINGS: &'static [::core::primitive::u32] = &[];
            #[allow(dead_code)]
            pub fn load<B: #krate::VmcsRead + ?::core::marker::Sized>(
                _vmcs: &B,
            ) -> ::core::result::Result<Self, #krate::VmcsError> {
                ::core::unreachable!()
            }
            #[allow(dead_code)]
            pub fn store<B: #krate::VmcsWrite + ?::core::marker::Sized>(
                &self,
                _vmcs: &mut B,
            ) -> ::core::result::Result<(), #krate::VmcsError> {
                ::core::unreachable!()
            }
        }
    }
}

/// `KRATE::fields::NAME`: the runtime's handle, so the encoding and the width come from the
/// runtime's generated code (the derive and the runtime cannot disagree).
fn handle(krate: &syn::Path, field: &vmcs_gen::model::Field) -> TokenStream {
    let name = Ident::new(&field.name, Span::call_site());
    quote!(#krate::fields::#name)
}

pub(super) fn generate(input: &DeriveInput, members: &[Member<'_>], store: bool) -> TokenStream {
    let name = &input.ident;
    let krate = crate_path(input);
    let (impl_generics, ty_generics, where_clause) = input.generics.split_for_impl();

    let loads = members.iter().map(|m| match m {
        Member::Mapped(Mapped { ident, field }) => {
            let handle = handle(&krate, field);
            quote!(#ident: #handle.read_from(vmcs)?)
        }
        Member::Skipped(ident) => quote!(#ident: ::core::default::Default::default()),
    });

    let mapped: Vec<&vmcs_gen::model::Field> = members
        .iter()
        .filter_map(|m| match m {
            Member::Mapped(m) => Some(m.field),
            Member::Skipped(_) => None,
        })
        .collect();
    let encodings = mapped.iter().map(|f| {
        let handle = handle(&krate, f);
        quote!(#handle.encoding())
    });
    let names: Vec<&str> = mapped.iter().map(|f| f.name.as_str()).collect();
    let encodings_doc = format!(" The encodings of the mapped VMCS fields, in member order: {}.", names.join(", "));

    let store_fn = store.then(|| {
        let writes = members.iter().filter_map(|m| match m {
            Member::Mapped(Mapped { ident, field, .. }) => {
                let handle = handle(&krate, field);
                Some(quote!(#handle.write_to(vmcs, self.#ident)?;))
            }
            Member::Skipped(_) => None,
        });
        quote! {
            /// Write every mapped member to `vmcs` (VMWRITE semantics), in member order.
            pub fn store<B: #krate::VmcsWrite + ?::core::marker::Sized>(
                &self,
                vmcs: &mut B,
            ) -> ::core::result::Result<(), #krate::VmcsError> {
                #(#writes)*
                ::core::result::Result::Ok(())
            }
        }
    });

    quote! {
        impl #impl_generics #name #ty_generics #where_clause {
            #[doc = #encodings_doc]
            pub const ENCODINGS: &'static [::core::primitive::u32] = &[#(#encodings),*];

            /// Read every mapped member from `vmcs` (VMREAD semantics), in member order; members
            /// marked `#[vmcs(skip)]` are `Default::default()`.
            pub fn load<B: #krate::VmcsRead + ?::core::marker::Sized>(
                vmcs: &B,
            ) -> ::core::result::Result<Self, #krate::VmcsError> {
                ::core::result::Result::Ok(Self { #(#loads),* })
            }

            #store_fn
        }
    }
}
