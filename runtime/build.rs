//! Generates the runtime's tables and routines from schema/ through vmcs-gen (a thin front-end:
//! every check and every emitter lives in the vmcs-gen library).

use std::path::PathBuf;

fn main() {
    // VMCS_SCHEMA_DIR builds the runtime for another schema; by default, the repository's.
    println!("cargo:rerun-if-env-changed=VMCS_SCHEMA_DIR");
    let schema_dir = std::env::var_os("VMCS_SCHEMA_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../schema"));
    println!("cargo:rerun-if-changed={}", schema_dir.display());
    let sources = vmcs_gen::SchemaSources::from_dir(&schema_dir)
        .unwrap_or_else(|e| panic!("cannot read schema {}: {e}", schema_dir.display()));
    for f in &sources.files {
        println!("cargo:rerun-if-changed={}", f.path);
    }
    let schema = match vmcs_gen::Schema::load(&sources) {
        Ok(s) => s,
        Err(diags) => {
            eprintln!("{diags}");
            panic!("the schema has errors (run `cargo run -p vmcs-gen -- check`)");
        }
    };
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap());
    for a in vmcs_gen::emit::all(&schema) {
        std::fs::write(out.join(&a.file), a.contents).unwrap();
    }
    // One module per layout of the schema, included by lib.rs.
    let index: String = schema
        .layouts
        .iter()
        .map(|l| format!("pub mod {0} {{ include!(concat!(env!(\"OUT_DIR\"), \"/{0}.rs\")); }}\n", l.name))
        .collect();
    std::fs::write(out.join("layouts.rs"), index).unwrap();
}
