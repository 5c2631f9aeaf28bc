//! Proc-macro front-end over the vmcs-gen model, for code written inside a hypervisor.
//!
//! The macros read the schema through vmcs-gen (the copy embedded when vmcs-gen was built, so they
//! rebuild when the schema changes) and report schema names they do not know at the offending
//! token.

use proc_macro::TokenStream;
use quote::quote_spanned;
use syn::{Ident, parse_macro_input};

/// The encoding of a VMCS field, by its schema name, as a `u32` literal:
/// `field_encoding!(GUEST_RIP)` is `0x681e`. An unknown name is a compile error at the name.
#[proc_macro]
pub fn field_encoding(input: TokenStream) -> TokenStream {
    let name = parse_macro_input!(input as Ident);
    let schema = match vmcs_gen::Schema::shipped() {
        Ok(s) => s,
        Err(diags) => {
            let msg = format!("the vmcs schema has errors:\n{diags}");
            return quote_spanned!(name.span()=> compile_error!(#msg)).into();
        }
    };
    match schema.field(&name.to_string()) {
        Some(f) => {
            let lit = syn::LitInt::new(&format!("{:#06x}_u32", f.encoding.raw()), name.span());
            quote_spanned!(name.span()=> #lit).into()
        }
        None => {
            let msg = format!("`{name}` is not a VMCS field of the schema");
            quote_spanned!(name.span()=> compile_error!(#msg)).into()
        }
    }
}
