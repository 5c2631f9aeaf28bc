//! The schema loader on any text: the shipped schema with one file replaced (or added) by the input
//! (its first line names the file, the rest is its text). Loading must end in a model or in
//! diagnostics, never a panic; both are then rendered as the command line would.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vmcs_gen::{Schema, SchemaSources, report};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let (name, body) = text.split_once('\n').unwrap_or(("fields.toml", &text));
    let mut sources = SchemaSources::embedded();
    sources.set(name, body);
    match Schema::load(&sources) {
        Ok(schema) => {
            let _ = report::summary(&schema);
        }
        Err(diags) => {
            assert!(!diags.is_empty());
            let _ = diags.to_string();
        }
    }
});
