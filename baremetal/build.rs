//! Links each kernel with its own linker script, and generates the VM-entry mutation tables of the
//! suite kernel from the schema through vmcs-gen (as the runtime's build.rs generates its code).
use std::path::PathBuf;

fn main() {
    let dir = std::env::var("CARGO_MANIFEST_DIR").unwrap();
    for (bin, script) in [("vmcs-baremetal", "link.ld"), ("vmcs-l0", "multiboot.ld"), ("vmcs-l1test", "multiboot.ld")] {
        println!("cargo:rerun-if-changed={dir}/{script}");
        println!("cargo:rustc-link-arg-bin={bin}=-Wl,-T,{dir}/{script}");
    }
    // The runtime's schema: VMCS_SCHEMA_DIR, else the one vmcs-gen carries.
    println!("cargo:rerun-if-env-changed={}", vmcs_gen::source::SCHEMA_DIR_VAR);
    let sources = vmcs_gen::SchemaSources::for_build().unwrap_or_else(|e| panic!("{e}"));
    if std::env::var_os(vmcs_gen::source::SCHEMA_DIR_VAR).is_some() {
        for f in &sources.files {
            println!("cargo:rerun-if-changed={}", f.path);
        }
    }
    let schema = vmcs_gen::Schema::load(&sources).unwrap_or_else(|d| panic!("the schema has errors:\n{d}"));
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap());
    let table = vmcs_gen::emit::mutation_table(&schema);
    std::fs::write(out.join(table.file), table.contents).unwrap();
}
