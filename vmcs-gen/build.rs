//! Embeds the schema this package carries (`schema/`, the repository's schema directory) so that
//! `vmcs-gen`, the runtime's build.rs and the derive use it by default. A package without it fails
//! here, loudly: an empty embedded schema would only fail later, elsewhere.

use std::path::{Path, PathBuf};

fn main() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("schema");
    println!("cargo:rerun-if-changed={}", dir.display());
    let mut files = Vec::new();
    collect(&dir, &mut files);
    files.sort();
    let have = |name: &str| files.iter().any(|f| f.strip_prefix(&dir).is_ok_and(|r| r == Path::new(name)));
    if let Some(missing) = ["fields.toml", "capabilities.toml"].into_iter().find(|f| !have(f)) {
        panic!("vmcs-gen embeds the schema in {}, which has no {missing}", dir.display());
    }
    let mut out = String::from("/// The schema this package carries: (path relative to schema/, contents).\n");
    out.push_str("pub static EMBEDDED: &[(&str, &str)] = &[\n");
    for f in &files {
        println!("cargo:rerun-if-changed={}", f.display());
        let rel = f.strip_prefix(&dir).unwrap().to_string_lossy().replace('\\', "/");
        out.push_str(&format!("    ({rel:?}, include_str!({:?})),\n", f.canonicalize().unwrap()));
    }
    out.push_str("];\n");
    let dest = PathBuf::from(std::env::var("OUT_DIR").unwrap()).join("embedded_schema.rs");
    std::fs::write(dest, out).unwrap();
}

fn collect(dir: &Path, files: &mut Vec<PathBuf>) {
    let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("vmcs-gen embeds {}: {e}", dir.display()));
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            println!("cargo:rerun-if-changed={}", p.display());
            collect(&p, files);
        } else if p.extension().is_some_and(|x| x == "toml") {
            files.push(p);
        }
    }
}
