//! build.rs writes exactly vmcs-gen's generated tree into OUT_DIR, file for file and byte for
//! byte (what `vmcs-gen generate --out DIR` writes: vmcs-gen's own tests check that command).

use std::collections::BTreeMap;

#[test]
fn out_dir_is_the_generated_tree() {
    let sources = vmcs_gen::SchemaSources::for_build().unwrap();
    let schema = vmcs_gen::Schema::load(&sources).unwrap();
    let want: BTreeMap<String, String> =
        vmcs_gen::emit::all(&schema).into_iter().map(|a| (a.file, a.contents)).collect();
    let mut got = BTreeMap::new();
    for e in std::fs::read_dir(env!("OUT_DIR")).unwrap() {
        let p = e.unwrap().path();
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        got.insert(name, std::fs::read_to_string(&p).unwrap());
    }
    assert_eq!(got.keys().collect::<Vec<_>>(), want.keys().collect::<Vec<_>>(), "the files of OUT_DIR");
    for (file, text) in &want {
        assert!(got[file] == *text, "OUT_DIR/{file} differs from vmcs-gen's");
    }
    assert!(want.contains_key("generated.rs") && want.contains_key("vmcs12.rs") && want.len() >= 10);
}
