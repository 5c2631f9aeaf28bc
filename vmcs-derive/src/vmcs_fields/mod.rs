//! `#[derive(VmcsFields)]`: load (and optionally store) a hypervisor struct from a VMCS.
//!
//! Every named member names a schema field: its identifier uppercased, or `#[vmcs(field = "NAME")]`.
//! `#[vmcs(skip)]` members are not VMCS fields and load as `Default::default()`. With
//! `#[vmcs(store)]` on the struct, a `store` method writes every member back.
//!
//! The expansion is a plain function over proc_macro2 so unit tests can snapshot it, in three
//! steps: `parse` the `#[vmcs(...)]` attributes, `check` each member against the schema,
//! `expand` into the items.

mod check;
mod expand;
mod parse;

use std::sync::OnceLock;

use proc_macro2::{Span, TokenStream};
use syn::spanned::Spanned;
use syn::{Data, DeriveInput, Fields, Ident};
use vmcs_gen::Schema;

pub use expand::fallback;
use parse::Errors;

/// The build's schema (the one the runtime's build.rs reads: `VMCS_SCHEMA_DIR`, else the one
/// vmcs-gen carries), loaded once per compiler process; its diagnostics rendered on failure.
pub fn build_schema() -> Result<&'static Schema, &'static str> {
    static SCHEMA: OnceLock<Result<Schema, String>> = OnceLock::new();
    SCHEMA
        .get_or_init(|| {
            let sources = vmcs_gen::SchemaSources::for_build()?;
            Schema::load(&sources).map_err(|d| format!("the vmcs schema has errors:\n{d}"))
        })
        .as_ref()
        .map_err(String::as_str)
}

/// Expand `#[derive(VmcsFields)]` against the build's schema.
pub fn expand(input: DeriveInput) -> syn::Result<TokenStream> {
    match build_schema() {
        Ok(schema) => expand_with(schema, input),
        Err(e) => Err(syn::Error::new(Span::call_site(), e)),
    }
}

/// Expand against a given schema.
pub fn expand_with(schema: &Schema, input: DeriveInput) -> syn::Result<TokenStream> {
    let named = match &input.data {
        Data::Struct(s) => match &s.fields {
            Fields::Named(named) => named,
            Fields::Unnamed(f) => {
                return Err(syn::Error::new(
                    f.span(),
                    "`VmcsFields` needs a struct with named members: each member names a VMCS field; \
                     this is a tuple struct",
                ));
            }
            Fields::Unit => {
                return Err(syn::Error::new(
                    input.ident.span(),
                    "`VmcsFields` needs a struct with named members: each member names a VMCS field; \
                     this is a unit struct",
                ));
            }
        },
        Data::Enum(e) => {
            return Err(syn::Error::new(
                e.enum_token.span,
                "`VmcsFields` can only be derived for a struct with named members, not an enum",
            ));
        }
        Data::Union(u) => {
            return Err(syn::Error::new(
                u.union_token.span,
                "`VmcsFields` can only be derived for a struct with named members, not a union",
            ));
        }
    };

    let mut errors = Errors::default();
    let store = parse::struct_attrs(&input, &mut errors);

    let mut members = Vec::new();
    // Schema field name -> the member that first mapped it.
    let mut seen: Vec<(&str, Ident)> = Vec::new();
    for m in &named.named {
        let ident = m.ident.clone().expect("named member");
        let attrs = parse::member_attrs(&m.attrs, &mut errors);
        if attrs.invalid {
            // Checking the member against a guess of what it meant would only add noise.
            continue;
        }
        if attrs.skip.is_some() {
            members.push(Member::Skipped(ident));
            continue;
        }
        let Some(field) = check::member(schema, m, &ident, attrs.field.as_ref(), store, &mut seen, &mut errors) else {
            continue;
        };
        members.push(Member::Mapped(Mapped { ident, field }));
    }
    errors.finish()?;

    Ok(expand::generate(&input, &members, store))
}

/// One member that maps a schema field.
struct Mapped<'s> {
    ident: Ident,
    field: &'s vmcs_gen::model::Field,
}

/// One member of the input struct, in declaration order.
enum Member<'s> {
    Mapped(Mapped<'s>),
    Skipped(Ident),
}
