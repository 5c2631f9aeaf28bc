//! vmcs-gen: the VMCS schema compiler.
//!
//! `schema/` (TOML) -> [`Schema::load`] (parse with spans, validate, report every error with
//! file:line:column) -> the [`model`] -> one emitter per generated artifact ([`emit`]).
//! The command line, the runtime's build.rs and vmcs-derive are thin front-ends over this library.
//!
//! ```
//! use vmcs_gen::{Caps, Schema, SchemaSources, emit};
//!
//! // The schema this package carries, as the runtime's build.rs loads it by default.
//! let schema = Schema::load(&SchemaSources::embedded())?;
//! let rip = schema.field("GUEST_RIP").expect("an architectural field");
//! assert_eq!(rip.encoding.raw(), 0x681e); // natural-width guest state, index 15
//!
//! // IA32_VMX_VMCS_ENUM as KVM gives it to L1 with every capability (highest vmcs12 index 0x19).
//! let vmcs12 = schema.layout("vmcs12").expect("KVM's vmcs12 layout");
//! assert_eq!(schema.layout_vmcs_enum(vmcs12, &Caps::All), 0x32);
//!
//! // One artifact per generated file: what build.rs writes into OUT_DIR.
//! let tree = emit::all(&schema);
//! assert!(tree.iter().any(|a| a.file == "fields.rs"));
//!
//! // A mistake is reported at its file:line:column; Err holds every mistake of the run.
//! let mut bad = SchemaSources::embedded();
//! let text = bad.file("fields.toml").unwrap().text.clone();
//! let line = 1 + text.lines().position(|l| l == r#"name = "GUEST_RIP""#).unwrap();
//! bad.set("fields.toml", text.replace(r#""GUEST_RIP""#, r#""guest_rip""#));
//! let errors = Schema::load(&bad).unwrap_err();
//! let first = errors.iter().next().unwrap();
//! assert_eq!(first.location(), format!("schema/fields.toml:{line}:8"));
//! assert!(first.message.contains("UPPER_SNAKE_CASE"), "{first}");
//! # Ok::<(), vmcs_gen::Diagnostics>(())
//! ```

#![deny(missing_docs)]

pub mod caps;
pub mod caps_file;
pub mod checks;
pub mod compat;
pub mod diag;
pub mod emit;
pub mod encoding;
pub mod gate;
mod load;
pub mod model;
mod raw;
pub mod report;
pub mod source;
pub mod state;
pub mod state_contents;
pub mod suggest;

pub use caps::Caps;
pub use diag::{Diagnostic, Diagnostics, SourceFile};
pub use emit::lock_text;
pub use encoding::{Encoding, Kind, Width};
pub use load::LoadOptions;
pub use model::Schema;
pub use source::SchemaSources;
