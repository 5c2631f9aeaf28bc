//! Emitters: one per generated artifact, each from the validated model to formatted Rust (and the
//! TOML of lock files, `lock_text`).

mod caps;
mod checks;
mod checks_context;
mod checks_expr;
mod controls;
mod copy;
mod copy_item;
mod exits;
mod fields;
mod index;
mod instruction_errors;
mod layout;
mod lock;
mod mutations;
mod nested_state;
mod translate;

use proc_macro2::{Ident, Span, TokenStream};
use quote::quote;

use crate::gate::Gate;
use crate::model::{CapId, Schema};

pub(crate) use caps::cap_variant;
pub use index::{OPTIONAL, parts};
pub use lock::lock_text;
pub use mutations::mutation_table;

/// A generated source file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Artifact {
    /// File name, e.g. "fields.rs".
    pub file: String,
    /// The formatted Rust, starting with the header that names what it was generated from.
    pub contents: String,
}

/// The runtime's whole generated tree, what its build.rs writes into OUT_DIR and `vmcs-gen generate`
/// into a directory: capabilities, fields, controls, exits, instruction errors, the entry checks,
/// the copy routines (with copy sets), translators (with several layouts), nested-state facts
/// (with `vmcs12`), one file per layout, and `generated.rs`, the module tree over them all. The
/// emitters are independent, so they run on their own threads.
pub fn all(schema: &Schema) -> Vec<Artifact> {
    use Input::*;
    type Job<'a> = Box<dyn FnOnce() -> Artifact + Send + 'a>;
    let mut jobs: Vec<Job<'_>> = vec![
        Box::new(|| {
            let what = "capability bits and their evaluation against IA32_VMX_* MSRs";
            artifact(schema, "caps.rs", &[Capabilities], what, caps::emit(schema))
        }),
        Box::new(|| {
            let what = "typed handles, metadata and existence of every VMCS field";
            artifact(schema, "fields.rs", &[Fields, Capabilities], what, fields::emit(schema))
        }),
        Box::new(|| {
            let what = "a bit-set type per control field, a constant per capability bit";
            artifact(schema, "controls.rs", &[Capabilities, Fields], what, controls::emit(schema))
        }),
        Box::new(|| {
            let what = "basic exit reasons, exit-information bitfields and qualifications by reason";
            artifact(schema, "exits.rs", &[Exits, Fields], what, exits::emit(schema))
        }),
        Box::new(|| {
            let what = "VM-instruction errors with the SDM's text";
            artifact(schema, "instruction_errors.rs", &[InstructionErrors], what, instruction_errors::emit(schema))
        }),
    ];
    jobs.push(Box::new(|| {
        let what = "the VM-entry checker: rules, facts, one function per tier";
        artifact(schema, "entry.rs", &[Checks, Fields, Capabilities], what, checks::emit_all(schema))
    }));
    if !schema.sets.is_empty() {
        jobs.push(Box::new(|| {
            let what = "copy routines, the NestedHooks trait, dirty tracking and shadow lists";
            let inputs = [CopySets, Fields, Capabilities, Layout("evmcs")];
            artifact(schema, "copy.rs", &inputs, what, copy::emit(schema))
        }));
    }
    if schema.layouts.len() > 1 {
        jobs.push(Box::new(|| {
            let what = "field-by-field translators between every two layouts";
            artifact(schema, "translate.rs", &[Layouts, Fields], what, translate::emit(schema))
        }));
    }
    if let Some(vmcs12) = schema.layout("vmcs12") {
        jobs.push(Box::new(move || {
            let what = "the vmcs12 facts the KVM_SET_NESTED_STATE rules read";
            let tokens = nested_state::emit(schema, vmcs12);
            artifact(schema, "nested_state.rs", &[Layout("vmcs12"), Fields], what, tokens)
        }));
    }
    for l in &schema.layouts {
        jobs.push(Box::new(move || {
            let what = format!("the `{}` layout: struct, offset proofs, encoding lookup", l.name);
            let tokens = layout::emit(schema, l);
            artifact(schema, &format!("{}.rs", l.name), &[Layout(&l.name), Fields], &what, tokens)
        }));
    }
    let mut artifacts: Vec<Artifact> = std::thread::scope(|s| {
        let handles: Vec<_> = jobs.into_iter().map(|job| s.spawn(job)).collect();
        handles.into_iter().map(|h| h.join().expect("an emitter panicked")).collect()
    });
    // The index names the artifacts and documents each layout's module.
    let what = "the module tree of the generated files";
    let index = artifact(schema, "generated.rs", &[Layouts], what, index::emit(schema, &artifacts));
    artifacts.push(index);
    artifacts
}

/// A part of the schema an emitter reads, so that its header names that file and no other.
#[derive(Clone, Copy)]
enum Input<'a> {
    Fields,
    Capabilities,
    Exits,
    InstructionErrors,
    Checks,
    CopySets,
    /// The file of one layout.
    Layout(&'a str),
    /// The files of every layout (named `layouts/*.toml`).
    Layouts,
}

/// The schema files behind `inputs`, in the order given: an optional file the schema lacks is left out.
fn input_files(schema: &Schema, inputs: &[Input<'_>]) -> Vec<String> {
    let file_of = |name: &str| schema.files.iter().find(|f| f.name == name).map(|f| f.name.clone());
    let layout_file = |l: &crate::model::Layout| schema.files[l.pos.name.file].name.clone();
    let mut files = Vec::new();
    for input in inputs {
        match input {
            Input::Fields => files.extend(file_of("fields.toml")),
            Input::Capabilities => files.extend(file_of("capabilities.toml")),
            Input::Exits => files.extend(file_of("exits.toml")),
            Input::InstructionErrors => files.extend(file_of("instruction_errors.toml")),
            Input::Checks => files.extend(file_of("checks.toml")),
            Input::CopySets => files.extend(file_of("copysets.toml")),
            Input::Layout(name) => files.extend(schema.layout(name).map(layout_file)),
            // Named as a whole, to keep the line short.
            Input::Layouts if !schema.layouts.is_empty() => files.push("layouts/*.toml".to_string()),
            Input::Layouts => {}
        }
    }
    files
}

fn artifact(schema: &Schema, file: &str, inputs: &[Input<'_>], what: &str, tokens: TokenStream) -> Artifact {
    let header = header(&input_files(schema, inputs), what);
    Artifact { file: file.to_string(), contents: format!("{header}{}", format(tokens)) }
}

/// The one line every generated file starts with: the schema files it was generated from (none
/// for the module index) and what it holds.
fn header(files: &[String], what: &str) -> String {
    let from: Vec<String> = files.iter().map(|f| format!("schema/{f}")).collect();
    match from.is_empty() {
        true => format!("// @generated by vmcs-gen: {what}.\n\n"),
        false => format!("// @generated by vmcs-gen from {}: {what}.\n\n", from.join(", ")),
    }
}

/// Format tokens as a Rust file with prettyplease.
fn format(tokens: TokenStream) -> String {
    match syn::parse2::<syn::File>(tokens.clone()) {
        Ok(file) => prettyplease::unparse(&file),
        // Only reachable through an emitter bug; keep the raw tokens so the compiler shows it.
        Err(e) => format!("compile_error!({:?});\n{tokens}\n", e.to_string()),
    }
}

/// `proc2.enable_vpid` -> `Proc2EnableVpid`, `vmcs12` -> `Vmcs12`.
pub(crate) fn camel_case(name: &str) -> String {
    name.split(['.', '_'])
        .map(|p| {
            let mut c = p.chars();
            c.next().map_or(String::new(), |f| f.to_ascii_uppercase().to_string() + c.as_str())
        })
        .collect()
}

/// `value >> bit & 1 == 1`, without a no-op shift for bit 0.
pub(crate) fn bit_test(value: TokenStream, bit: u32) -> TokenStream {
    if bit == 0 {
        quote!(#value & 1 == 1)
    } else {
        let bit = proc_macro2::Literal::u32_unsuffixed(bit);
        quote!((#value >> #bit) & 1 == 1)
    }
}

/// A hex integer literal, e.g. `0x681e`.
pub(crate) fn hex(v: u64) -> syn::LitInt {
    syn::LitInt::new(&format!("{v:#06x}"), Span::call_site())
}

pub(crate) fn ident(s: &str) -> Ident {
    Ident::new(s, Span::call_site())
}

/// A Rust boolean expression for a gate, over `caps: &impl Capabilities`.
pub(crate) fn gate_expr(schema: &Schema, gate: &Gate<CapId>, caps: &TokenStream) -> TokenStream {
    match gate {
        Gate::Cap(c) => {
            let v = cap_variant(&schema.caps[*c].name);
            quote!(#caps.has(Cap::#v))
        }
        Gate::Any(gs) => {
            let parts = gs.iter().map(|g| nested_gate_expr(schema, g, caps));
            quote!(#(#parts)||*)
        }
        Gate::All(gs) => {
            let parts = gs.iter().map(|g| nested_gate_expr(schema, g, caps));
            quote!(#(#parts)&&*)
        }
    }
}

/// A gate inside another: parenthesised unless it is a single capability.
pub(crate) fn nested_gate_expr(schema: &Schema, gate: &Gate<CapId>, caps: &TokenStream) -> TokenStream {
    let inner = gate_expr(schema, gate, caps);
    if matches!(gate, Gate::Cap(_)) { inner } else { quote!((#inner)) }
}
