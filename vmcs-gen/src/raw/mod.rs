//! The schema files as written: structs that keep every value's span.
//!
//! Each file is parsed with recovery and each `[[table]]` entry is decoded on its own, so one
//! bad entry does not hide the errors of the others.

pub(crate) mod decode;
mod tables;

use toml::Spanned;
use toml::de::{DeTable, DeValue};

use crate::diag::{Diagnostics, SourceFile};
use decode::FromToml;

/// A value with the byte span it was written at.
pub type S<T> = Spanned<T>;

pub use tables::*;

/// One parsed file: its scalar keys (deserialized as `H`) and its arrays of tables, borrowing the text.
pub struct RawFile<'a, H> {
    pub head: Option<H>,
    pub tables: Vec<(String, Vec<Spanned<DeValue<'a>>>)>,
}

/// Parse `file` into a head `H` (all top-level keys that are not arrays of tables) and the arrays
/// of tables named in `arrays`. Errors go to `diags`; parsing goes on past them.
pub fn parse_file<'a, H: FromToml>(file: &'a SourceFile, arrays: &[&str], diags: &mut Diagnostics) -> RawFile<'a, H> {
    if let Some(d) = prescan(file) {
        diags.push(d);
        return RawFile { head: None, tables: Vec::new() };
    }
    let (doc, errors) = DeTable::parse_recoverable(&file.text);
    if !errors.is_empty() {
        // What the parser recovered of a broken file would only yield follow-on errors.
        for e in errors {
            diags.push(file.error(e.span().unwrap_or(0..0), e.message().trim()));
        }
        return RawFile { head: None, tables: Vec::new() };
    }
    let mut head_table = DeTable::default();
    let mut tables = Vec::new();
    for (key, value) in doc.into_inner() {
        let name = key.get_ref().to_string();
        if arrays.contains(&name.as_str()) {
            match value.into_inner() {
                DeValue::Array(items) => tables.push((name, items.into_iter().collect())),
                _ => {
                    diags.push(file.error(key.span(), format!("`{name}` must be an array of tables: write [[{name}]]")))
                }
            }
        } else {
            head_table.insert(key, value);
        }
    }
    let value = Spanned::new(0..0, DeValue::Table(head_table));
    let head = decode(file, value, diags);
    RawFile { head, tables }
}

/// How deep arrays and inline tables may nest in a schema file (the shipped files use 2).
const MAX_DEPTH: usize = 16;
/// How many arrays, inline tables and table headers a schema file may open (shipped: under 600).
const MAX_OPENS: usize = 1 << 14;
/// How many keys and array elements a schema file may hold (shipped: under 2000).
const MAX_VALUES: usize = 1 << 16;

/// Bound what parsing `file` can cost before the parser sees it: its nesting depth, its number of
/// arrays and tables, and its number of values, each counted outside strings and comments in one
/// pass. Parsed values cost far more memory than their text, so the byte bound alone is not enough.
/// Returns the error at the first excess, if any.
fn prescan(file: &SourceFile) -> Option<crate::diag::Diagnostic> {
    let text = file.text.as_bytes();
    let (mut depth, mut opens, mut values) = (0usize, 0usize, 0usize);
    let mut i = 0;
    let skip_to = |from: usize, end: &[u8]| {
        text[from..].windows(end.len()).position(|w| w == end).map_or(text.len(), |p| from + p + end.len())
    };
    while i < text.len() {
        match text[i] {
            b'"' if text[i..].starts_with(b"\"\"\"") => i = skip_to(i + 3, b"\"\"\""),
            b'\'' if text[i..].starts_with(b"\'\'\'") => i = skip_to(i + 3, b"\'\'\'"),
            b'\'' => i = skip_to(i + 1, b"'"),
            b'"' => {
                i += 1;
                while i < text.len() && text[i] != b'"' && text[i] != b'\n' {
                    i += if text[i] == b'\\' { 2 } else { 1 };
                }
                i += 1;
            }
            b'#' => i = skip_to(i, b"\n"),
            c => {
                match c {
                    b'[' | b'{' => {
                        depth += 1;
                        opens += 1;
                        let what = if depth > MAX_DEPTH {
                            Some(format!("arrays and inline tables nest deeper than {MAX_DEPTH}"))
                        } else if opens > MAX_OPENS {
                            Some(format!("more than {MAX_OPENS} arrays, inline tables and table headers in one file"))
                        } else {
                            None
                        };
                        if let Some(what) = what {
                            return Some(file.error(i..i + 1, what));
                        }
                    }
                    b']' | b'}' => depth = depth.saturating_sub(1),
                    b',' | b'=' => {
                        values += 1;
                        if values > MAX_VALUES {
                            return Some(file.error(i..i + 1, format!("more than {MAX_VALUES} values in one file")));
                        }
                    }
                    _ => {}
                }
                i += 1;
            }
        }
    }
    None
}

/// Decode one value, reporting a located error on failure.
pub fn decode<T: FromToml>(file: &SourceFile, value: Spanned<DeValue<'_>>, diags: &mut Diagnostics) -> Option<T> {
    match T::from_toml(value) {
        Ok(v) => Some(v),
        Err((span, message)) => {
            diags.push(file.error(span, message));
            None
        }
    }
}

/// Decode every entry of the array of tables `name`.
pub fn entries<T: FromToml>(
    file: &SourceFile,
    raw: &mut RawFile<'_, impl Sized>,
    name: &str,
    diags: &mut Diagnostics,
) -> Vec<T> {
    let Some(pos) = raw.tables.iter().position(|(n, _)| n == name) else { return Vec::new() };
    let items = std::mem::take(&mut raw.tables[pos].1);
    items.into_iter().filter_map(|item| decode(file, item, diags)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prescan_counts_outside_strings_and_comments() {
        let deep = "[".repeat(40);
        let text = format!(
            "a = \"{deep}\\\"{deep}\"\nb = '{deep}'\nc = \"\"\"\n{deep}\n\"\"\"\nd = '''{deep}'''\n# {deep}\ne = [[1]]\n"
        );
        assert!(prescan(&SourceFile::new("x.toml", text)).is_none());
        let d = prescan(&SourceFile::new("x.toml", format!("a = 1\nb = {deep}"))).unwrap();
        assert_eq!((d.line, d.column, d.message.as_str()), (2, 21, "arrays and inline tables nest deeper than 16"));
    }
}
