//! `#[derive(VmcsFields)]`: load (and optionally store) a hypervisor struct from a VMCS.
//!
//! Every named member names a schema field: its identifier uppercased, or `#[vmcs(field = "NAME")]`.
//! `#[vmcs(skip)]` members are not VMCS fields and load as `Default::default()`. With
//! `#[vmcs(store)]` on the struct, a `store` method writes every member back.
//!
//! The expansion is a plain function over proc_macro2 so unit tests can snapshot it.

use std::sync::OnceLock;

use proc_macro2::{Span, TokenStream};
use quote::quote;
use syn::spanned::Spanned;
use syn::{Data, DeriveInput, Fields, Ident, LitStr, Type};
use vmcs_gen::{Kind, Schema, Width};

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

/// The runtime crate's path: `#[vmcs(crate = "path")]`, else `::vmcs`. Malformed attributes are
/// reported by [`expand`]; here they fall back to the default.
pub fn crate_path(input: &DeriveInput) -> syn::Path {
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

/// Collects every error so they are all reported at once.
#[derive(Default)]
struct Errors(Option<syn::Error>);

impl Errors {
    fn push(&mut self, err: syn::Error) {
        match &mut self.0 {
            Some(e) => e.combine(err),
            None => self.0 = Some(err),
        }
    }
    fn at(&mut self, span: Span, msg: impl std::fmt::Display) {
        self.push(syn::Error::new(span, msg));
    }
    fn finish(self) -> syn::Result<()> {
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

/// `#[vmcs(store)]` on the struct.
fn parse_struct_attrs(input: &DeriveInput, errors: &mut Errors) -> bool {
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
struct MemberAttrs {
    field: Option<LitStr>,
    skip: Option<Span>,
    /// The attributes had errors (already reported): what the member maps is unknown.
    invalid: bool,
}

fn parse_member_attrs(attrs: &[syn::Attribute], errors: &mut Errors) -> MemberAttrs {
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
    known
        .iter()
        .map(|k| (distance(key, k), k))
        .filter(|(d, _)| *d <= 2)
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| format!("did you mean `{k}`?"))
}

fn path_text(path: &syn::Path) -> String {
    quote!(#path).to_string().replace(' ', "")
}

/// Edit distance (ASCII-case-insensitive) counting insertions, deletions, substitutions and
/// transpositions of adjacent characters (optimal string alignment): `HOST_RPI` is 1 from
/// `HOST_RIP`, 2 from `HOST_RSP`.
fn distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().map(|c| c.to_ascii_uppercase()).collect();
    let b: Vec<char> = b.chars().map(|c| c.to_ascii_uppercase()).collect();
    // d[i][j]: distance between a[..i] and b[..j].
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (d[i - 1][j] + 1).min(d[i][j - 1] + 1).min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = best;
        }
    }
    d[a.len()][b.len()]
}

/// The closest schema field name within edit distance 3, if any.
fn suggest<'s>(schema: &'s Schema, name: &str) -> Option<&'s str> {
    schema
        .fields
        .iter()
        .map(|f| (distance(name, &f.name), f.name.as_str()))
        .filter(|(d, _)| *d <= 3)
        .min_by_key(|(d, _)| *d)
        .map(|(_, n)| n)
}

/// The Rust type a member of a field of this width must have.
fn rust_type(width: Width) -> &'static str {
    match width {
        Width::W16 => "u16",
        Width::W32 => "u32",
        Width::W64 | Width::Natural => "u64",
    }
}

/// The unsigned primitive a type is spelled as (`u32`, `core::primitive::u32`), if any.
fn primitive(ty: &Type) -> Option<String> {
    match ty {
        Type::Path(p) if p.qself.is_none() => {
            let last = p.path.segments.last()?;
            if !last.arguments.is_none() {
                return None;
            }
            let name = last.ident.to_string();
            let prefix_ok = p.path.segments.len() == 1
                || p.path.segments.iter().rev().skip(1).map(|s| s.ident.to_string()).eq(["primitive", "core"])
                || p.path.segments.iter().rev().skip(1).map(|s| s.ident.to_string()).eq(["primitive", "std"]);
            prefix_ok.then_some(name)
        }
        Type::Group(g) => primitive(&g.elem),
        Type::Paren(p) => primitive(&p.elem),
        _ => None,
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
    let store = parse_struct_attrs(&input, &mut errors);

    let mut members = Vec::new();
    // Schema field name -> the member that first mapped it.
    let mut seen: Vec<(&str, Ident)> = Vec::new();
    for m in &named.named {
        let ident = m.ident.clone().expect("named member");
        let attrs = parse_member_attrs(&m.attrs, &mut errors);
        if attrs.invalid {
            // Checking the member against a guess of what it meant would only add noise.
            continue;
        }
        if attrs.skip.is_some() {
            members.push(Member::Skipped(ident));
            continue;
        }
        // The schema name and the token an error about it points at.
        let (name, name_span) = match &attrs.field {
            Some(lit) => (lit.value(), lit.span()),
            None => (ident.to_string().to_ascii_uppercase(), ident.span()),
        };
        let Some(field) = schema.field(&name) else {
            let origin = match &attrs.field {
                Some(_) => String::new(),
                None => format!(" (member `{ident}` uppercased)"),
            };
            let mut msg = format!("`{name}`{origin} is not a VMCS field of the schema");
            match suggest(schema, &name) {
                Some(s) if attrs.field.is_some() => msg.push_str(&format!("; did you mean `{s}`?")),
                Some(s) => msg
                    .push_str(&format!("; did you mean `{s}`? (rename the member or add `#[vmcs(field = \"{s}\")]`)")),
                None if attrs.field.is_none() => msg.push_str(
                    "; name the field with `#[vmcs(field = \"NAME\")]`, or mark a member that is not a VMCS \
                     field `#[vmcs(skip)]`",
                ),
                None => {}
            }
            errors.at(name_span, msg);
            continue;
        };
        if let Some((_, first)) = seen.iter().find(|(n, _)| *n == field.name) {
            errors.at(name_span, format!("`{}` is already mapped by member `{first}`", field.name));
        } else {
            seen.push((field.name.as_str(), ident.clone()));
        }
        let want = rust_type(field.width);
        match primitive(&m.ty) {
            Some(have) if have == want => {}
            _ => {
                let ty = &m.ty;
                let have = quote!(#ty).to_string();
                errors.at(
                    m.ty.span(),
                    format!(
                        "`{}` is a {} field, so this member must be `{want}`, not `{have}`",
                        field.name,
                        field.width.describe()
                    ),
                );
            }
        }
        if store && field.kind == Kind::ReadOnly {
            errors.at(
                ident.span(),
                format!(
                    "`{}` is a read-only VMCS field (VM-exit information), and `#[vmcs(store)]` writes every \
                     member; mark this member `#[vmcs(skip)]` or move it to a load-only struct",
                    field.name
                ),
            );
        }
        members.push(Member::Mapped(Mapped { ident, field }));
    }
    errors.finish()?;

    Ok(generate(&input, &members, store))
}

/// `KRATE::fields::NAME`: the runtime's handle, so the encoding and the width come from the
/// runtime's generated code (the derive and the runtime cannot disagree).
fn handle(krate: &syn::Path, field: &vmcs_gen::model::Field) -> TokenStream {
    let name = Ident::new(&field.name, Span::call_site());
    quote!(#krate::fields::#name)
}

fn generate(input: &DeriveInput, members: &[Member<'_>], store: bool) -> TokenStream {
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
