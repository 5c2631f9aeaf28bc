//! Proc-macro front-end over the vmcs-gen model, for code written inside a hypervisor.
//!
//! The macros read the schema the runtime's build.rs reads (`VMCS_SCHEMA_DIR`, else the one
//! vmcs-gen carries) and report schema names they do not know at the offending token. The derive's
//! output names the runtime's handles (`vmcs::fields::GUEST_RIP`), so the runtime's generated code
//! decides encodings and widths.
#![deny(missing_docs)]

use proc_macro::TokenStream;
use quote::quote_spanned;
use syn::{DeriveInput, Ident, parse_macro_input};

#[cfg(test)]
mod tests;
mod vmcs_fields;

/// The encoding of a VMCS field, by its schema name, as a `u32` literal:
/// `field_encoding!(GUEST_RIP)` is `0x681e`. An unknown name is a compile error at the name.
#[proc_macro]
pub fn field_encoding(input: TokenStream) -> TokenStream {
    let name = parse_macro_input!(input as Ident);
    let schema = match vmcs_fields::build_schema() {
        Ok(s) => s,
        Err(msg) => return quote_spanned!(name.span()=> compile_error!(#msg)).into(),
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

/// Load (and with `#[vmcs(store)]`, store) a struct whose named members are VMCS fields.
///
/// ```text
/// #[derive(vmcs_derive::VmcsFields)]
/// struct ExitInfo {
///     vm_exit_reason: u32,              // the member name, uppercased, is the schema field name
///     #[vmcs(field = "EXIT_QUALIFICATION")]
///     qualification: u64,               // an explicit schema name
///     #[vmcs(skip)]
///     handled: bool,                    // not a VMCS field: Default::default() on load
/// }
/// ```
///
/// generates `ExitInfo::ENCODINGS: &'static [u32]` (the encodings in member order),
/// `ExitInfo::load(&impl VmcsRead) -> Result<ExitInfo, VmcsError>` (one read per member, in
/// order) and, with `#[vmcs(store)]` on the struct, `store(&self, &mut impl VmcsWrite)`, all over
/// the runtime's field handles (`vmcs::fields::NAME`). `#[vmcs(crate = "path")]` on the struct
/// names the runtime crate when it is not `::vmcs` (a renamed dependency, a re-export).
///
/// Member types follow the field width: `u16` for 16-bit fields, `u32` for 32-bit fields and
/// `u64` for 64-bit and natural-width fields. Unknown field names (with the closest schema name
/// suggested), width mismatches, a field mapped twice, a read-only field in a `store` struct and
/// unknown `#[vmcs(...)]` keys are compile errors at the offending token, all reported at once.
#[proc_macro_derive(VmcsFields, attributes(vmcs))]
pub fn derive_vmcs_fields(input: TokenStream) -> TokenStream {
    let input = parse_macro_input!(input as DeriveInput);
    let fallback = vmcs_fields::fallback(&input);
    match vmcs_fields::expand(input) {
        Ok(tokens) => tokens.into(),
        Err(errors) => {
            let errors = errors.into_compile_error();
            quote::quote!(#errors #fallback).into()
        }
    }
}
