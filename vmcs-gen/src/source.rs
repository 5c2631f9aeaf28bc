//! Where a schema comes from: the copy embedded at build time (the one this package carries), or a
//! directory.
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
    /// Every file, sorted by name when read from a directory; [`SchemaSources::file`] finds one.
    pub files: Vec<SourceFile>,
}

impl SchemaSources {
    /// The schema shipped in the repository, embedded when vmcs-gen was built.
    pub fn embedded() -> SchemaSources {
        let files = embedded::EMBEDDED.iter().map(|(p, t)| SourceFile::new(format!("schema/{p}"), *t)).collect();
        SchemaSources { files }
    }

    /// The schema a build uses, the same for the runtime's build.rs and the derive: the directory
    /// named by the environment variable [`SCHEMA_DIR_VAR`] (absolute), else the embedded one.
    /// A relative path is an error: a build script runs in its package's directory and a proc
    /// macro in the workspace's, so neither is where cargo was invoked.
    pub fn for_build() -> Result<SchemaSources, String> {
        match std::env::var_os(SCHEMA_DIR_VAR) {
            None => Ok(SchemaSources::embedded()),
            Some(dir) => {
                let dir = std::path::PathBuf::from(dir);
                if dir.is_relative() {
                    return Err(format!(
                        "{SCHEMA_DIR_VAR}={} is a relative path; give an absolute one (e.g. {SCHEMA_DIR_VAR}=\"$PWD/{}\")",
                        dir.display(),
                        dir.display()
                    ));
                }
                SchemaSources::from_dir(&dir).map_err(|e| format!("cannot read schema {}: {e}", dir.display()))
            }
        }
    }

    /// Read every `.toml` file below `dir`: at most [`MAX_SCHEMA_FILES`] files of at most
    /// [`MAX_SCHEMA_FILE`] bytes each and [`MAX_SCHEMA_TOTAL`] together, in UTF-8 (the first bad
    /// byte is located).
    pub fn from_dir(dir: &Path) -> std::io::Result<SchemaSources> {
        let mut paths = Vec::new();
        walk(dir, &mut paths, 0)?;
        paths.sort();
        let mut files = Vec::new();
        let mut total = 0;
        for p in paths {
            let rel = p.strip_prefix(dir).unwrap_or(&p).to_string_lossy().replace('\\', "/");
            let shown = dir.join(&rel).to_string_lossy().into_owned();
            let text = read_text(&p, MAX_SCHEMA_FILE, &shown).map_err(invalid)?;
            total += text.len() as u64;
            if total > MAX_SCHEMA_TOTAL {
                return Err(invalid(format!(
                    "the schema files below {} hold more than {MAX_SCHEMA_TOTAL} bytes",
                    dir.display()
                )));
            }
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
            Some(f) => *f = SourceFile::in_schema(f.name.clone(), f.path.clone(), text),
            None => self.files.push(SourceFile::new(format!("schema/{suffix}"), text)),
        }
    }
}

/// The environment variable naming another schema directory for a build ([`SchemaSources::for_build`]).
pub const SCHEMA_DIR_VAR: &str = "VMCS_SCHEMA_DIR";

/// The largest schema file vmcs-gen reads (the shipped ones are below 64 KiB).
pub const MAX_SCHEMA_FILE: u64 = 1 << 21;
/// The most bytes all schema files together may hold.
pub const MAX_SCHEMA_TOTAL: u64 = 1 << 23;
/// The most `.toml` files a schema directory may hold.
pub const MAX_SCHEMA_FILES: usize = 256;
/// How deep schema directories may nest (`layouts/`, `locks/`).
const MAX_DEPTH: u32 = 4;

fn walk(dir: &Path, out: &mut Vec<std::path::PathBuf>, depth: u32) -> std::io::Result<()> {
    for e in std::fs::read_dir(dir)? {
        let e = e?;
        let p = e.path();
        let kind = e.file_type()?;
        if kind.is_dir() && depth < MAX_DEPTH {
            walk(&p, out, depth + 1)?;
        } else if p.extension().is_some_and(|x| x == "toml") {
            if out.len() == MAX_SCHEMA_FILES {
                return Err(invalid(format!("more than {MAX_SCHEMA_FILES} .toml files below {}", dir.display())));
            }
            out.push(p);
        }
    }
    Ok(())
}

fn invalid(message: String) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, message)
}

/// `bytes` as UTF-8, or the location of the first bad byte: `{shown}:LINE:COLUMN: not UTF-8 (byte 0x..)`.
fn utf8(bytes: Vec<u8>, shown: &str) -> Result<String, String> {
    String::from_utf8(bytes).map_err(|e| {
        let good = &e.as_bytes()[..e.utf8_error().valid_up_to()];
        let text = std::str::from_utf8(good).unwrap_or_default();
        let line = text.matches('\n').count() + 1;
        let column = text.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        let byte = e.as_bytes()[good.len()];
        format!("{shown}:{line}:{column}: not UTF-8 (byte {byte:#04x})")
    })
}

/// A text input of at most `limit` bytes (files, FIFOs and devices alike), with the error to show.
pub fn read_text(path: &Path, limit: u64, shown: &str) -> Result<String, String> {
    let bytes = read_bounded(path, limit).map_err(|e| format!("cannot read {shown}: {e}"))?;
    utf8(bytes, shown)
}

/// Read at most `limit` bytes of `path`; more is an error, reported without reading on.
pub fn read_bounded(path: &Path, limit: u64) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let file = std::fs::File::open(path)?;
    let meta = file.metadata()?;
    if meta.is_file() && meta.len() > limit {
        return Err(invalid(format!("{} bytes, more than the {limit} read", meta.len())));
    }
    let mut bytes = Vec::new();
    file.take(limit + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > limit {
        return Err(invalid(format!("more than the {limit} bytes read")));
    }
    Ok(bytes)
}
