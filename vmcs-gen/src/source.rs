//! Where a schema comes from: the copy embedded at build time, or a directory.
//!
//! A schema directory holds `fields.toml`, `capabilities.toml`, `layouts/*.toml` and
//! `locks/*.lock.toml`.

use std::path::Path;

use crate::diag::SourceFile;

mod embedded {
    include!(concat!(env!("OUT_DIR"), "/embedded_schema.rs"));
}

/// The files of one schema, with paths relative to the schema directory (shown as `schema/...`).
#[derive(Clone, Debug, Default)]
pub struct SchemaSources {
    pub files: Vec<SourceFile>,
}

impl SchemaSources {
    /// The schema shipped in the repository, embedded when vmcs-gen was built.
    pub fn embedded() -> SchemaSources {
        let files = embedded::EMBEDDED.iter().map(|(p, t)| SourceFile::new(format!("schema/{p}"), *t)).collect();
        SchemaSources { files }
    }

    /// Read every `.toml` file below `dir`.
    pub fn from_dir(dir: &Path) -> std::io::Result<SchemaSources> {
        let mut paths = Vec::new();
        walk(dir, &mut paths)?;
        paths.sort();
        let mut files = Vec::new();
        for p in paths {
            let text = std::fs::read_to_string(&p)?;
            let rel = p.strip_prefix(dir).unwrap_or(&p).to_string_lossy().replace('\\', "/");
            let shown = dir.join(&rel).to_string_lossy().into_owned();
            files.push(SourceFile::in_schema(rel, shown, text));
        }
        if files.is_empty() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!("no .toml files in schema directory {}", dir.display()),
            ));
        }
        Ok(SchemaSources { files })
    }

    /// The file whose path ends with `suffix` (e.g. "fields.toml").
    pub fn file(&self, suffix: &str) -> Option<&SourceFile> {
        self.files.iter().find(|f| f.name == suffix)
    }

    /// Files below a sub-directory such as "layouts".
    pub fn in_dir<'a>(&'a self, sub: &'a str) -> impl Iterator<Item = &'a SourceFile> + 'a {
        self.files.iter().filter(move |f| f.name.starts_with(&format!("{sub}/")))
    }

    /// Replace (or add) a file's text: used by tests and tools that try a changed schema.
    pub fn set(&mut self, suffix: &str, text: impl Into<String>) {
        let text = text.into();
        match self.files.iter_mut().find(|f| f.name == suffix) {
            Some(f) => f.text = text,
            None => self.files.push(SourceFile::new(format!("schema/{suffix}"), text)),
        }
    }
}

fn walk(dir: &Path, out: &mut Vec<std::path::PathBuf>) -> std::io::Result<()> {
    for e in std::fs::read_dir(dir)? {
        let p = e?.path();
        if p.is_dir() {
            walk(&p, out)?;
        } else if p.extension().is_some_and(|x| x == "toml") {
            out.push(p);
        }
    }
    Ok(())
}
