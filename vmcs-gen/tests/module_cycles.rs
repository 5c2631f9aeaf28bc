//! No import cycles between the modules of a crate: if `a::x` names `b` and `b::y` names `a`
//! (siblings under one parent), neither can be read, tested or moved without the other. Every
//! `crate::`, `super::` and `self::` path counts, in `use` items and in code alike; a module
//! naming its own parent or child is containment, not a cycle.

use proc_macro2::{TokenStream, TokenTree};
use quote::ToTokens;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

type Module = Vec<String>;

/// The crate's modules (from its file tree, without the directories in `other_crates`: roots of
/// other binaries) and the modules each one names.
fn imports(src: &Path, other_crates: &[&str]) -> BTreeMap<Module, BTreeSet<Module>> {
    let mut files = Vec::new();
    collect(src, &mut Vec::new(), &mut files);
    files.retain(|(m, _)| !m.first().is_some_and(|top| other_crates.contains(&top.as_str())));
    let modules: BTreeSet<Module> = files.iter().map(|(m, _)| m.clone()).collect();
    let mut out = BTreeMap::new();
    for (module, path) in &files {
        let text = std::fs::read_to_string(path).unwrap();
        let file = syn::parse_file(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let mut paths = Vec::new();
        for item in &file.items {
            match item {
                syn::Item::Use(u) => use_paths(&u.tree, &mut Vec::new(), &mut paths),
                other => token_paths(other.to_token_stream(), &mut paths),
            }
        }
        let named = paths.iter().filter_map(|p| resolve(module, p, &modules)).collect();
        out.insert(module.clone(), named);
    }
    out
}

/// Every `.rs` file under `dir` with its module path (`lib.rs`, `main.rs` and `mod.rs` name
/// their directory's module).
fn collect(dir: &Path, module: &mut Module, out: &mut Vec<(Module, std::path::PathBuf)>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
    entries.sort();
    for path in entries {
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        if path.is_dir() {
            module.push(name);
            collect(&path, module, out);
            module.pop();
        } else if path.extension().is_some_and(|e| e == "rs") {
            let mut m = module.clone();
            if !["lib", "main", "mod"].contains(&name.as_str()) {
                m.push(name);
            }
            out.push((m, path));
        }
    }
}

fn use_paths(tree: &syn::UseTree, prefix: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
    match tree {
        syn::UseTree::Path(p) => {
            prefix.push(p.ident.to_string());
            use_paths(&p.tree, prefix, out);
            prefix.pop();
        }
        syn::UseTree::Name(n) => out.push([prefix.clone(), vec![n.ident.to_string()]].concat()),
        syn::UseTree::Rename(r) => out.push([prefix.clone(), vec![r.ident.to_string()]].concat()),
        syn::UseTree::Glob(_) => out.push(prefix.clone()),
        syn::UseTree::Group(g) => g.items.iter().for_each(|t| use_paths(t, prefix, out)),
    }
}

/// Paths in code that start at `crate`, `super` or `self`: `a :: b :: c` token runs.
fn token_paths(tokens: TokenStream, out: &mut Vec<Vec<String>>) {
    let tokens: Vec<TokenTree> = tokens.into_iter().collect();
    let sep = |i: usize| {
        matches!((tokens.get(i), tokens.get(i + 1)),
            (Some(TokenTree::Punct(a)), Some(TokenTree::Punct(b))) if a.as_char() == ':' && b.as_char() == ':')
    };
    let mut i = 0;
    while i < tokens.len() {
        match &tokens[i] {
            TokenTree::Group(g) => token_paths(g.stream(), out),
            TokenTree::Ident(id) if ["crate", "super", "self"].contains(&id.to_string().as_str()) && sep(i + 1) => {
                let mut path = vec![id.to_string()];
                while sep(i + 1)
                    && let Some(TokenTree::Ident(next)) = tokens.get(i + 3)
                {
                    path.push(next.to_string());
                    i += 3;
                }
                out.push(path);
            }
            _ => {}
        }
        i += 1;
    }
}

/// The deepest module of the crate a path names, if it names one.
fn resolve(from: &Module, path: &[String], modules: &BTreeSet<Module>) -> Option<Module> {
    let mut at = match path.first()?.as_str() {
        "crate" => Vec::new(),
        "self" => from.clone(),
        "super" => from[..from.len().checked_sub(1)?].to_vec(),
        _ => from.clone(), // a child module, or another crate
    };
    let rest = path.iter().skip(usize::from(matches!(path[0].as_str(), "crate" | "self" | "super")));
    let mut found = None;
    for seg in rest {
        if seg == "super" {
            at.pop();
            found = Some(at.clone());
            continue;
        }
        at.push(seg.clone());
        if !modules.contains(&at) {
            break;
        }
        found = Some(at.clone());
    }
    found
}

/// Lift `a -> b` to the two siblings under their common parent that contain them; none when one
/// contains the other.
fn siblings(a: &Module, b: &Module) -> Option<(Module, Module)> {
    let common = a.iter().zip(b).take_while(|(x, y)| x == y).count();
    (common < a.len() && common < b.len()).then(|| (a[..=common].to_vec(), b[..=common].to_vec()))
}

/// The groups of sibling modules that name each other, each as `a <-> b <-> ...`.
fn cycles(imports: &BTreeMap<Module, BTreeSet<Module>>) -> Vec<String> {
    let mut edges: BTreeMap<Module, BTreeSet<Module>> = BTreeMap::new();
    for (from, named) in imports {
        for to in named {
            if let Some((a, b)) = siblings(from, to) {
                edges.entry(a).or_default().insert(b);
            }
        }
    }
    let reaches = |from: &Module, to: &Module| {
        let (mut seen, mut stack) = (BTreeSet::new(), vec![from.clone()]);
        while let Some(m) = stack.pop() {
            if &m == to {
                return true;
            }
            if seen.insert(m.clone()) {
                stack.extend(edges.get(&m).into_iter().flatten().cloned());
            }
        }
        false
    };
    // Strongly connected components: the modules each one reaches and is reached from.
    let mut groups = BTreeSet::new();
    for m in edges.keys() {
        let group: BTreeSet<Module> = edges.keys().filter(|n| reaches(m, n) && reaches(n, m)).cloned().collect();
        if group.len() > 1 {
            groups.insert(group);
        }
    }
    groups.iter().map(|g| g.iter().map(|m| m.join("::")).collect::<Vec<_>>().join(" <-> ")).collect()
}

#[test]
fn no_module_names_a_sibling_that_names_it_back() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    // baremetal/src is the suite kernel's crate; l0/ and l1test/ are other kernels' (their own).
    let crates: [(&str, &[&str]); 7] = [
        ("vmcs-gen", &[]),
        ("runtime", &[]),
        ("vmcs-derive", &[]),
        ("nested-state", &[]),
        ("nested-vmx", &[]),
        ("test-support", &[]),
        ("baremetal", &["l0", "l1test"]),
    ];
    let mut all = Vec::new();
    for (krate, other_crates) in crates {
        let found = cycles(&imports(&root.join(krate).join("src"), other_crates));
        all.extend(found.into_iter().map(|c| format!("{krate}: {c}")));
    }
    assert!(all.is_empty(), "import cycles between modules: {all:#?}");
}

#[test]
fn a_planted_cycle_is_found() {
    let dir = std::env::temp_dir().join(format!("vmcs-gen-cycles-{}", std::process::id()));
    let write = |path: &str, text: &str| {
        let path = dir.join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    };
    write("lib.rs", "mod a; mod b; mod c;");
    write("a/mod.rs", "mod inner;");
    write("a/inner.rs", "use crate::{b::{self, Thing}}; fn f() { super::super::c::g() }");
    write("b.rs", "pub struct Thing; fn f() -> crate::a::X { crate::a::X::default() }");
    write("c.rs", "use super::a::inner; pub fn g() {}");
    let found = cycles(&imports(&dir, &[]));
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(found, ["a <-> b <-> c"]);
}
