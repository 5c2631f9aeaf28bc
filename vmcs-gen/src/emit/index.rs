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
    let generated = ["caps.rs", "fields.rs", "controls.rs", "exits.rs", "instruction_errors.rs", "entry.rs", "copy.rs"]
        .into_iter()
        .filter(|f| has(f))
        .map(|f| match f {
            // Without rules the checker reads nothing.
            "entry.rs" if schema.checks.rules.is_empty() => {
                let m = module(f);
                quote!(#[allow(unused_imports, dead_code)] #m)
            }
            _ => module(f),
        });
    let layouts = schema.layouts.iter().map(|l| format!("{}.rs", l.name)).filter(|f| has(f)).map(|f| module(&f));
    let translate = has("translate.rs").then(|| {
        let m = module("translate.rs");
        quote! {
            /// Field-by-field translators between every two layouts ([`translate::TranslateInto`]).
            #m
        }
    });
    let nested_state = has("nested_state.rs").then(|| module("nested_state.rs"));
    quote! {
        /// Generated code (see the header of each file for its sources).
        mod generated {
            #(#generated)*
            #nested_state
        }

        #translate

        /// Every software VMCS layout of the schema (`vmcs12` and its released predecessors).
        pub mod layouts {
            #(#layouts)*
        }
    }
}
