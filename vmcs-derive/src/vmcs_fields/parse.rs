//! The derive's `#[vmcs(...)]` attributes, on the struct and on its members, with every mistake
//! collected so all are reported at once.

use proc_macro2::Span;
use quote::quote;
use syn::spanned::Spanned;
use syn::{DeriveInput, LitStr};

use vmcs_gen::suggest::closest;

/// Collects every error so they are all reported at once.
#[derive(Default)]
pub(super) struct Errors(Option<syn::Error>);

impl Errors {
    pub(super) fn push(&mut self, err: syn::Error) {
        match &mut self.0 {
            Some(e) => e.combine(err),
            None => self.0 = Some(err),
        }
    }
    pub(super) fn at(&mut self, span: Span, msg: impl std::fmt::Display) {
        self.push(syn::Error::new(span, msg));
    }
    pub(super) fn finish(self) -> syn::Result<()> {
        self.0.map_or(Ok(()), Err)
    }
}

/// Consume whatever follows an unknown key (`= value` or `(...)`) so parsing can go on.
fn skip_value(meta: &syn::meta::ParseNestedMeta<'_>) -> syn::Result<()> {
    if meta.input.peek(syn::Token![=]) {
        meta.value()?.parse::<syn::Expr>()?;
    } else if meta.input.peek(syn::token::Paren) {
        meta.input.parse::<proc_macro2::TokenTree>()?;
    }
    Ok(())
}

/// The runtime crate's path: `#[vmcs(crate = "path")]`, else `::vmcs`. Malformed attributes are
/// reported by [`expand`]; here they fall back to the default.
pub(super) fn crate_path(input: &DeriveInput) -> syn::Path {
    let mut path = None;
    for attr in input.attrs.iter().filter(|a| a.path().is_ident("vmcs")) {
        let _ = attr.parse_nested_meta(|meta| {
            if meta.path.is_ident("crate") {
                path = meta.value()?.parse::<LitStr>()?.parse::<syn::Path>().ok();
            } else {
                skip_value(&meta)?;
            }
            Ok(())
        });
    }
    path.unwrap_or_else(|| syn::parse_quote!(::vmcs))
}

/// `#[vmcs(store)]` on the struct.
pub(super) fn struct_attrs(input: &DeriveInput, errors: &mut Errors) -> bool {
    let mut store: Option<Span> = None;
    for attr in input.attrs.iter().filter(|a| a.path().is_ident("vmcs")) {
        let res = attr.parse_nested_meta(|meta| {
            if meta.path.is_ident("store") {
                if store.is_some() {
                    errors.at(meta.path.span(), "duplicate `store` in `#[vmcs(...)]`");
                }
                store = Some(meta.path.span());
            } else if meta.path.is_ident("crate") {
                let lit: LitStr = meta.value()?.parse()?;
                if let Err(e) = lit.parse::<syn::Path>() {
                    errors.at(
                        lit.span(),
                        format!("`crate = \"...\"` takes the runtime crate's path, e.g. `crate = \"::vmcs\"`: {e}"),
                    );
                }
            } else if meta.path.is_ident("field") || meta.path.is_ident("skip") {
                errors.at(
                    meta.path.span(),
                    format!("`{}` belongs on a struct member, not on the struct", path_text(&meta.path)),
                );
                skip_value(&meta)?;
            } else {
                let key = path_text(&meta.path);
                let help = key_hint(&key, &["store", "crate"])
                    .unwrap_or_else(|| "the struct accepts `store` and `crate = \"PATH\"`".into());
                errors.at(meta.path.span(), format!("unknown `#[vmcs(...)]` key `{key}` on the struct; {help}"));
                skip_value(&meta)?;
            }
            Ok(())
        });
        if let Err(e) = res {
            errors.push(e);
        }
    }
    store.is_some()
}

/// A member's `#[vmcs(...)]` attributes: `field = "NAME"` and `skip`.
#[derive(Default)]
pub(super) struct MemberAttrs {
    pub field: Option<LitStr>,
    pub skip: Option<Span>,
    /// The attributes had errors (already reported): what the member maps is unknown.
    pub invalid: bool,
}

pub(super) fn member_attrs(attrs: &[syn::Attribute], errors: &mut Errors) -> MemberAttrs {
    let mut out = MemberAttrs::default();
    let mut member_errors = Errors::default();
    let errors_out = errors;
    let errors = &mut member_errors;
    for attr in attrs.iter().filter(|a| a.path().is_ident("vmcs")) {
        let res = attr.parse_nested_meta(|meta| {
            if meta.path.is_ident("field") {
                let lit: LitStr = meta.value()?.parse()?;
                if out.field.is_some() {
                    errors.at(lit.span(), "a member names one VMCS field: duplicate `field = \"...\"`");
                } else {
                    out.field = Some(lit);
                }
            } else if meta.path.is_ident("skip") {
                if out.skip.is_some() {
                    errors.at(meta.path.span(), "duplicate `skip` in `#[vmcs(...)]`");
                }
                out.skip = Some(meta.path.span());
            } else if meta.path.is_ident("store") || meta.path.is_ident("crate") {
                errors.at(
                    meta.path.span(),
                    format!("`{}` belongs on the struct, not on a member", path_text(&meta.path)),
                );
                skip_value(&meta)?;
            } else {
                let key = path_text(&meta.path);
                let help = key_hint(&key, &["field", "skip"])
                    .unwrap_or_else(|| "members accept `field = \"NAME\"` and `skip`".into());
                errors.at(meta.path.span(), format!("unknown `#[vmcs(...)]` key `{key}` on a member; {help}"));
                skip_value(&meta)?;
            }
            Ok(())
        });
        if let Err(e) = res {
            errors.push(e);
        }
    }
    if let (Some(skip), Some(_)) = (out.skip, &out.field) {
        errors.at(skip, "a member is either `skip` or `field = \"...\"`, not both");
    }
    if let Some(e) = member_errors.0 {
        out.invalid = true;
        errors_out.push(e);
    }
    out
}

/// "did you mean `k`?" for a misspelt attribute key (within edit distance 2).
fn key_hint(key: &str, known: &[&str]) -> Option<String> {
    closest(key, known.iter().copied(), 2).map(|k| format!("did you mean `{k}`?"))
}

fn path_text(path: &syn::Path) -> String {
    quote!(#path).to_string().replace(' ', "")
}
