//! Members checked against the schema: field names (with the closest one suggested), widths,
//! double mappings, read-only fields in a storing struct.

use quote::quote;
use syn::spanned::Spanned;
use syn::{Ident, LitStr, Type};
use vmcs_gen::model::Field;
use vmcs_gen::suggest::closest;
use vmcs_gen::{Kind, Schema, Width};

use super::parse::Errors;

/// Check one member against the schema: the field it names exists (else the closest name is
/// suggested), is mapped once, has the member type of its width, and is writable when the struct
/// stores. Returns the field, or None when the member names none (the error is pushed).
pub(super) fn member<'s>(
    schema: &'s Schema,
    m: &syn::Field,
    ident: &Ident,
    field_attr: Option<&LitStr>,
    store: bool,
    seen: &mut Vec<(&'s str, Ident)>,
    errors: &mut Errors,
) -> Option<&'s Field> {
    // The schema name and the token an error about it points at.
    let (name, name_span) = match field_attr {
        Some(lit) => (lit.value(), lit.span()),
        None => (ident.to_string().to_ascii_uppercase(), ident.span()),
    };
    let Some(field) = schema.field(&name) else {
        let origin = match field_attr {
            Some(_) => String::new(),
            None => format!(" (member `{ident}` uppercased)"),
        };
        let mut msg = format!("`{name}`{origin} is not a VMCS field of the schema");
        match suggest(schema, &name) {
            Some(s) if field_attr.is_some() => msg.push_str(&format!("; did you mean `{s}`?")),
            Some(s) => {
                msg.push_str(&format!("; did you mean `{s}`? (rename the member or add `#[vmcs(field = \"{s}\")]`)"))
            }
            None if field_attr.is_none() => msg.push_str(
                "; name the field with `#[vmcs(field = \"NAME\")]`, or mark a member that is not a VMCS \
                 field `#[vmcs(skip)]`",
            ),
            None => {}
        }
        errors.at(name_span, msg);
        return None;
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
    Some(field)
}

/// The closest schema field name within edit distance 3, if any.
fn suggest<'s>(schema: &'s Schema, name: &str) -> Option<&'s str> {
    closest(name, schema.fields.iter().map(|f| f.name.as_str()), 3)
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
