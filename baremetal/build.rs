//! Links each kernel with its own linker script, and generates the VM-entry mutation tables of the
//! suite kernel from the schema through vmcs-gen (as the runtime's build.rs generates its code).
use std::path::PathBuf;

fn main() {
    let dir = std::env::var("CARGO_MANIFEST_DIR").unwrap();
    for (bin, script) in [("vmcs-baremetal", "link.ld"), ("vmcs-l0", "multiboot.ld"), ("vmcs-l1test", "multiboot.ld")] {
        println!("cargo:rerun-if-changed={dir}/{script}");
        println!("cargo:rustc-link-arg-bin={bin}=-Wl,-T,{dir}/{script}");
    }
    let schema_dir = PathBuf::from(&dir).join("../schema");
    println!("cargo:rerun-if-changed={}", schema_dir.display());
    let sources = vmcs_gen::SchemaSources::from_dir(&schema_dir).expect("cannot read the schema");
    for f in &sources.files {
        println!("cargo:rerun-if-changed={}", f.path);
    }
    let schema = vmcs_gen::Schema::load(&sources).unwrap_or_else(|d| panic!("the schema has errors:\n{d}"));
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap());
    let table = vmcs_gen::emit::mutation_table(&schema);
    std::fs::write(out.join(table.file), table.contents).unwrap();
}
