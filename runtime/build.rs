//! Generates the runtime's tables and routines through vmcs-gen (a thin front-end: every check and
//! every emitter lives in the vmcs-gen library). The schema is the one vmcs-gen carries, or the
//! directory `VMCS_SCHEMA_DIR` names (the derive reads the same one).

fn main() {
    println!("cargo:rerun-if-env-changed={}", vmcs_gen::source::SCHEMA_DIR_VAR);
    let sources = vmcs_gen::SchemaSources::for_build().unwrap_or_else(|e| panic!("{e}"));
    if std::env::var_os(vmcs_gen::source::SCHEMA_DIR_VAR).is_some() {
        for f in &sources.files {
            println!("cargo:rerun-if-changed={}", f.path);
        }
    }
    let schema = match vmcs_gen::Schema::load(&sources) {
        Ok(s) => s,
        Err(diags) => {
            eprintln!("{diags}");
            panic!("the schema has errors (run `cargo run -p vmcs-gen -- check`)");
        }
    };
    if schema.layout("vmcs12").is_none() {
        panic!("the runtime needs a `vmcs12` layout (layouts/vmcs12.toml) in the schema");
    }
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR").unwrap());
    let artifacts = vmcs_gen::emit::all(&schema);
    let cfgs: Vec<String> = vmcs_gen::emit::OPTIONAL.iter().map(|m| format!("vmcs_{m}")).collect();
    println!("cargo::rustc-check-cfg=cfg({})", cfgs.join(", "));
    for m in vmcs_gen::emit::parts(&schema) {
        println!("cargo::rustc-cfg=vmcs_{m}");
    }
    for a in artifacts {
        std::fs::write(out.join(&a.file), a.contents).unwrap();
    }
}
