//! vmcs-gen: the VMCS schema compiler.
//!
//! `schema/` (TOML) -> [`Schema::load`] (parse with spans, validate, report every error with
//! file:line:column) -> the [`model`] -> one emitter per generated artifact ([`emit`]).
//! The command line, the runtime's build.rs and vmcs-derive are thin front-ends over this library.

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

pub use caps::Caps;
pub use diag::{Diagnostic, Diagnostics, SourceFile};
pub use emit::lock_text;
pub use encoding::{Encoding, Kind, Width};
pub use load::LoadOptions;
pub use model::Schema;
pub use source::SchemaSources;
