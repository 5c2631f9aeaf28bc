//! The schema files as written: serde structs that keep every value's span.
//!
//! Each file is parsed with recovery and each `[[table]]` entry is deserialized on its own, so one
//! bad entry does not hide the errors of the others.

use serde::Deserialize;
use serde::de::{DeserializeOwned, IntoDeserializer};
use toml::Spanned;
use toml::de::{DeTable, DeValue};

use crate::diag::{Diagnostics, SourceFile};

pub type S<T> = Spanned<T>;

/// `[[field]]` in fields.toml.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawField {
    pub name: S<String>,
    pub encoding: S<i64>,
    pub width: S<String>,
    pub kind: S<String>,
    pub gate: Option<S<String>>,
    pub doc: S<String>,
    pub source: Option<S<String>>,
    pub guest_physical: Option<S<bool>>,
    pub l0_owned: Option<S<String>>,
}

/// `[[msr]]` in capabilities.toml.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMsr {
    pub name: S<String>,
    pub index: S<i64>,
    pub true_index: Option<S<i64>>,
    pub kind: S<String>,
    /// The VMCS control field whose allowed settings the MSR reports.
    pub field: Option<S<String>>,
    pub requires: Option<S<String>>,
    pub doc: S<String>,
}

/// `[[cap]]` in capabilities.toml.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCap {
    pub name: S<String>,
    pub msr: S<String>,
    pub bit: S<i64>,
    pub doc: S<String>,
}

/// `[[reason]]` in exits.toml.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawReason {
    pub number: S<i64>,
    pub name: S<String>,
    pub doc: S<String>,
    pub qualification: Option<S<String>>,
}

/// `[[bitfield]]` in exits.toml.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBitfield {
    pub name: S<String>,
    pub fields: S<Vec<S<String>>>,
    pub doc: S<String>,
    #[serde(default)]
    pub bits: Vec<RawBits>,
}

/// `[[bitfield.bits]]`: a named bit range.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBits {
    pub name: S<String>,
    pub bits: S<String>,
    pub doc: S<String>,
    #[serde(rename = "enum")]
    pub enum_name: Option<S<String>>,
    pub values: Option<S<Vec<RawValue>>>,
    #[serde(rename = "type")]
    pub ty: Option<S<String>>,
}

/// One named value of a bit range.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawValue {
    pub name: S<String>,
    pub value: S<i64>,
    pub doc: S<String>,
}

/// `[[error]]` in instruction_errors.toml.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawInstructionError {
    pub number: S<i64>,
    pub name: S<String>,
    pub doc: S<String>,
}

/// The top of a layout file (`layouts/NAME.toml`), without its members.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLayoutHead {
    pub name: S<String>,
    pub doc: S<String>,
    pub revision: S<i64>,
    pub size: S<i64>,
    #[serde(default)]
    pub released: Option<S<bool>>,
    /// The released layout this one evolved from (same revision): vmcs-gen proves the step.
    pub previous: Option<S<String>>,
    /// Clean-field groups (the eVMCS's `hv_clean_fields`).
    pub clean: Option<RawClean>,
}

/// `[clean]` of a layout: the member holding the clean bits, and each group's bit.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawClean {
    pub member: S<String>,
    pub groups: std::collections::BTreeMap<String, S<i64>>,
}

/// `[[member]]` of a layout.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMember {
    pub name: S<String>,
    pub offset: S<i64>,
    #[serde(rename = "type")]
    pub ty: S<String>,
    pub size: Option<S<i64>>,
    pub field: Option<S<String>>,
    pub doc: Option<S<String>>,
    /// Members of the previous layout this reserved space retires (keeping their bytes).
    pub retires: Option<Vec<S<String>>>,
    /// The clean-field group of this member ("all": every group).
    pub clean: Option<S<String>>,
}

/// `[[predicate]]` in copysets.toml.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPredicate {
    pub name: S<String>,
    pub doc: S<String>,
}

/// `[[hook]]` in copysets.toml.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHook {
    pub name: S<String>,
    #[serde(rename = "type")]
    pub ty: S<String>,
    #[serde(default)]
    pub inputs: Vec<S<String>>,
    pub doc: S<String>,
}

/// `[[set]]` in copysets.toml.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSet {
    pub name: S<String>,
    pub doc: S<String>,
    pub from: S<String>,
    pub to: S<String>,
    pub runs: S<String>,
    pub dirty: Option<S<bool>>,
    /// Skip groups the source eVMCS marks clean.
    pub clean: Option<S<bool>>,
    pub shadow: Option<S<String>>,
    #[serde(default)]
    pub copy: Vec<RawCopyItem>,
}

/// Bits named by number or by capability names (`"entry.ia32e_mode_guest"`).
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum RawMask {
    Number(i64),
    Caps(String),
}

/// One entry of a set's `copy` list: the destination field and how it gets its value.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCopyItem {
    pub field: S<String>,
    pub from: Option<S<String>>,
    pub value: Option<S<i64>>,
    pub hook: Option<S<String>>,
    pub mask: Option<S<RawMask>>,
    pub merge: Option<S<RawMask>>,
    pub when: Option<S<String>>,
    pub unless: Option<S<String>>,
    #[serde(rename = "else")]
    pub otherwise: Option<S<RawTreatment>>,
}

/// An `else`: where the value comes from when the condition is false, and which bits it changes.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTreatment {
    pub from: Option<S<String>>,
    pub value: Option<S<i64>>,
    pub hook: Option<S<String>>,
    pub mask: Option<S<RawMask>>,
    pub merge: Option<S<RawMask>>,
}

/// The top of a lock file (`locks/NAME.lock.toml`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLockHead {
    pub layout: S<String>,
    pub revision: S<i64>,
    pub size: S<i64>,
}

/// `[[member]]` of a lock file: what a released revision pinned.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLockedMember {
    pub name: S<String>,
    pub offset: S<i64>,
    pub size: S<i64>,
    #[serde(rename = "type")]
    pub ty: S<String>,
}

/// The head of a file that holds only arrays of tables.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoHead {}

/// One parsed file: its scalar keys (deserialized as `H`) and its arrays of tables, borrowing the text.
pub struct RawFile<'a, H> {
    pub head: Option<H>,
    pub tables: Vec<(String, Vec<toml::Spanned<DeValue<'a>>>)>,
}

/// Parse `file` into a head `H` (all top-level keys that are not arrays of tables) and the arrays
/// of tables named in `arrays`. Errors go to `diags`; parsing goes on past them.
pub fn parse_file<'a, H: DeserializeOwned>(
    file: &'a SourceFile,
    arrays: &[&str],
    diags: &mut Diagnostics,
) -> RawFile<'a, H> {
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
    let head = deserialize(file, value, diags);
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

/// Deserialize one value, reporting a located error on failure.
pub fn deserialize<'a, T: DeserializeOwned>(
    file: &SourceFile,
    value: Spanned<DeValue<'a>>,
    diags: &mut Diagnostics,
) -> Option<T> {
    let span = value.span();
    match T::deserialize(value.into_deserializer()) {
        Ok(v) => Some(v),
        Err(e) => {
            diags.push(file.error(e.span().unwrap_or(span), e.message().trim()));
            None
        }
    }
}

/// Deserialize every entry of the array of tables `name`.
pub fn entries<T: DeserializeOwned>(
    file: &SourceFile,
    raw: &mut RawFile<'_, impl Sized>,
    name: &str,
    diags: &mut Diagnostics,
) -> Vec<T> {
    let Some(pos) = raw.tables.iter().position(|(n, _)| n == name) else { return Vec::new() };
    let items = std::mem::take(&mut raw.tables[pos].1);
    items.into_iter().filter_map(|item| deserialize(file, item, diags)).collect()
}

/// `[[fact]]` in checks.toml.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawFact {
    pub name: S<String>,
    #[serde(rename = "type")]
    pub ty: S<String>,
    pub doc: S<String>,
}

/// `[[define]]` in checks.toml.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDefine {
    pub name: S<String>,
    pub params: Vec<S<String>>,
    pub doc: S<String>,
    pub expr: S<String>,
}

/// `[[rule]]` in checks.toml.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRule {
    pub name: S<String>,
    #[serde(rename = "ref")]
    pub reference: S<String>,
    pub section: S<String>,
    pub outcome: S<String>,
    pub gate: Option<S<String>>,
    pub segments: Option<Vec<S<String>>>,
    pub check: S<String>,
    pub doc: S<String>,
    pub kvm: Option<S<String>>,
    pub kvm_restore: Option<S<bool>>,
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
