//! The module tree of the generated code (`generated.rs`): the one file the runtime includes,
//! declaring a module per artifact the schema produces. Optional schema parts (copy sets, more
//! than one layout) add their modules only when present.

use proc_macro2::TokenStream;
use quote::quote;

use super::{Artifact, ident};
use crate::model::Schema;

/// The optional parts of a schema: copy sets (the `copy` module), several layouts (`translate`),
/// VM-entry rules (`entry` checks something). The runtime compiles its own code over one of them
/// only under `cfg(vmcs_PART)`, which its build.rs sets for the parts a schema has.
pub const OPTIONAL: &[&str] = &["copy", "translate", "checks"];

/// The artifacts of `mod generated`, in order, with what they hold (the runtime re-exports them).
const GENERATED: &[(&str, &str)] = &[
    ("caps.rs", "Capability names and the capability MSRs (capabilities.toml)."),
    (
        "fields.rs",
        "A typed handle per architectural VMCS field, the field table, existence and VMCS_ENUM (fields.toml).",
    ),
    ("controls.rs", "A bit-set type per VMX control field (capabilities.toml)."),
    ("exits.rs", "Exit reasons and exit-information views (exits.toml)."),
    ("instruction_errors.rs", "VM-instruction errors (instruction_errors.toml)."),
    ("entry.rs", "The VM-entry checks (checks.toml)."),
    ("copy.rs", "The nested copy routines (copysets.toml)."),
    ("nested_state.rs", "vmcs12's shape for nested-state blobs."),
];

/// The optional parts `schema` has.
pub fn parts(schema: &Schema) -> Vec<&'static str> {
    let has = [!schema.sets.is_empty(), schema.layouts.len() > 1, !schema.checks.rules.is_empty()];
    OPTIONAL.iter().zip(has).filter(|(_, h)| *h).map(|(p, _)| *p).collect()
}

/// The index over `artifacts` (every other artifact of the tree).
pub fn emit(schema: &Schema, artifacts: &[Artifact]) -> TokenStream {
    let module = |file: &str| {
        let name = ident(file.trim_end_matches(".rs"));
        let path = format!("/{file}");
        quote!(pub mod #name { include!(concat!(env!("OUT_DIR"), #path)); })
    };
    let has = |file: &str| artifacts.iter().any(|a| a.file == file);
    let generated = GENERATED.iter().filter(|(f, _)| has(f)).map(|(f, doc)| {
        let doc = format!(" {doc}");
        let m = module(f);
        match *f {
            // Without rules the checker reads nothing.
            "entry.rs" if schema.checks.rules.is_empty() => {
                quote!(#[doc = #doc] #[allow(unused_imports, dead_code)] #m)
            }
            _ => quote!(#[doc = #doc] #m),
        }
    });
    let layouts = schema.layouts.iter().filter(|l| has(&format!("{}.rs", l.name))).map(|l| {
        let doc = format!(" {} From `layouts/{}.toml`.", l.doc, l.name);
        let m = module(&format!("{}.rs", l.name));
        quote!(#[doc = #doc] #m)
    });
    let translate = has("translate.rs").then(|| {
        let m = module("translate.rs");
        quote! {
            /// Field-by-field translators between every two layouts ([`translate::TranslateInto`]).
            #m
        }
    });
    quote! {
        /// Generated code (see the header of each file for its sources).
        mod generated {
            #(#generated)*

            /// Every software VMCS layout of the schema (`crate::layouts` re-exports them).
            pub mod layouts {
                #(#layouts)*
            }
        }

        #translate
    }
}
