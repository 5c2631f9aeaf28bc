//! The schema files as written: structs that keep every value's span.
//!
//! Each file is parsed with recovery and each `[[table]]` entry is decoded on its own, so one
//! bad entry does not hide the errors of the others.

pub(crate) mod decode;

use toml::Spanned;
use toml::de::{DeTable, DeValue};

use crate::diag::{Diagnostics, SourceFile};
use decode::{FromToml, schema_table};

pub type S<T> = Spanned<T>;

schema_table! {
    /// `[[field]]` in fields.toml.
    pub struct RawField {
        name: S<String>,
        encoding: S<i64>,
        width: S<String>,
        kind: S<String>,
        gate: Option<S<String>>,
        doc: S<String>,
        source: Option<S<String>>,
        guest_physical: Option<S<bool>>,
        l0_owned: Option<S<String>>,
    }
}

schema_table! {
    /// `[[msr]]` in capabilities.toml.
    pub struct RawMsr {
        name: S<String>,
        index: S<i64>,
        true_index: Option<S<i64>>,
        kind: S<String>,
        /// The VMCS control field whose allowed settings the MSR reports.
        field: Option<S<String>>,
        requires: Option<S<String>>,
        doc: S<String>,
    }
}

schema_table! {
    /// `[[cap]]` in capabilities.toml.
    pub struct RawCap {
        name: S<String>,
        msr: S<String>,
        bit: S<i64>,
        doc: S<String>,
    }
}

schema_table! {
    /// `[[reason]]` in exits.toml.
    pub struct RawReason {
        number: S<i64>,
        name: S<String>,
        doc: S<String>,
        qualification: Option<S<String>>,
    }
}

schema_table! {
    /// `[[bitfield]]` in exits.toml.
    pub struct RawBitfield {
        name: S<String>,
        fields: S<Vec<S<String>>>,
        doc: S<String>,
        bits: Vec<RawBits> = default,
    }
}

schema_table! {
    /// `[[bitfield.bits]]`: a named bit range.
    pub struct RawBits {
        name: S<String>,
        bits: S<String>,
        doc: S<String>,
        enum_name as "enum": Option<S<String>>,
        values: Option<S<Vec<RawValue>>>,
        ty as "type": Option<S<String>>,
    }
}

schema_table! {
    /// One named value of a bit range.
    pub struct RawValue {
        name: S<String>,
        value: S<i64>,
        doc: S<String>,
    }
}

schema_table! {
    /// `[[error]]` in instruction_errors.toml.
    pub struct RawInstructionError {
        number: S<i64>,
        name: S<String>,
        doc: S<String>,
    }
}

schema_table! {
    /// The top of a layout file (`layouts/NAME.toml`), without its members.
    pub struct RawLayoutHead {
        name: S<String>,
        doc: S<String>,
        revision: S<i64>,
        size: S<i64>,
        released: Option<S<bool>> = default,
        /// The released layout this one evolved from (same revision): vmcs-gen proves the step.
        previous: Option<S<String>>,
        /// Clean-field groups (the eVMCS's `hv_clean_fields`).
        clean: Option<RawClean>,
    }
}

schema_table! {
    /// `[clean]` of a layout: the member holding the clean bits, and each group's bit.
    pub struct RawClean {
        member: S<String>,
        groups: std::collections::BTreeMap<String, S<i64>>,
    }
}

schema_table! {
    /// `[[member]]` of a layout.
    pub struct RawMember {
        name: S<String>,
        offset: S<i64>,
        ty as "type": S<String>,
        size: Option<S<i64>>,
        field: Option<S<String>>,
        doc: Option<S<String>>,
        /// Members of the previous layout this reserved space retires (keeping their bytes).
        retires: Option<Vec<S<String>>>,
        /// The clean-field group of this member ("all": every group).
        clean: Option<S<String>>,
    }
}

schema_table! {
    /// `[[predicate]]` in copysets.toml.
    pub struct RawPredicate {
        name: S<String>,
        doc: S<String>,
    }
}

schema_table! {
    /// `[[hook]]` in copysets.toml.
    pub struct RawHook {
        name: S<String>,
        ty as "type": S<String>,
        inputs: Vec<S<String>> = default,
        doc: S<String>,
    }
}

schema_table! {
    /// `[[set]]` in copysets.toml.
    pub struct RawSet {
        name: S<String>,
        doc: S<String>,
        from: S<String>,
        to: S<String>,
        runs: S<String>,
        dirty: Option<S<bool>>,
        /// Skip groups the source eVMCS marks clean.
        clean: Option<S<bool>>,
        shadow: Option<S<String>>,
        copy: Vec<RawCopyItem> = default,
    }
}

/// Bits named by number or by capability names (`"entry.ia32e_mode_guest"`).
#[derive(Debug)]
pub enum RawMask {
    Number(i64),
    Caps(String),
}

impl FromToml for RawMask {
    fn from_toml(value: Spanned<DeValue<'_>>) -> Result<Self, decode::Error> {
        match value.get_ref() {
            DeValue::Integer(_) => i64::from_toml(value).map(RawMask::Number),
            DeValue::String(_) => String::from_toml(value).map(RawMask::Caps),
            other => {
                Err((value.span(), format!("invalid type: {}, expected bits or capability names", other.type_str())))
            }
        }
    }
}

schema_table! {
    /// One entry of a set's `copy` list: the destination field and how it gets its value.
    pub struct RawCopyItem {
        field: S<String>,
        from: Option<S<String>>,
        value: Option<S<i64>>,
        hook: Option<S<String>>,
        mask: Option<S<RawMask>>,
        merge: Option<S<RawMask>>,
        when: Option<S<String>>,
        unless: Option<S<String>>,
        otherwise as "else": Option<S<RawTreatment>>,
    }
}

schema_table! {
    /// An `else`: where the value comes from when the condition is false, and which bits it changes.
    pub struct RawTreatment {
        from: Option<S<String>>,
        value: Option<S<i64>>,
        hook: Option<S<String>>,
        mask: Option<S<RawMask>>,
        merge: Option<S<RawMask>>,
    }
}

schema_table! {
    /// The top of a lock file (`locks/NAME.lock.toml`).
    pub struct RawLockHead {
        layout: S<String>,
        revision: S<i64>,
        size: S<i64>,
    }
}

schema_table! {
    /// `[[member]]` of a lock file: what a released revision pinned.
    pub struct RawLockedMember {
        name: S<String>,
        offset: S<i64>,
        size: S<i64>,
        ty as "type": S<String>,
    }
}

schema_table! {
    /// The head of a file that holds only arrays of tables.
    pub struct NoHead {}
}

/// One parsed file: its scalar keys (deserialized as `H`) and its arrays of tables, borrowing the text.
pub struct RawFile<'a, H> {
    pub head: Option<H>,
    pub tables: Vec<(String, Vec<toml::Spanned<DeValue<'a>>>)>,
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

schema_table! {
    /// `[[fact]]` in checks.toml.
    pub struct RawFact {
        name: S<String>,
        ty as "type": S<String>,
        doc: S<String>,
    }
}

schema_table! {
    /// `[[define]]` in checks.toml.
    pub struct RawDefine {
        name: S<String>,
        params: Vec<S<String>>,
        doc: S<String>,
        expr: S<String>,
    }
}

schema_table! {
    /// `[[rule]]` in checks.toml.
    pub struct RawRule {
        name: S<String>,
        reference as "ref": S<String>,
        section: S<String>,
        outcome: S<String>,
        gate: Option<S<String>>,
        segments: Option<Vec<S<String>>>,
        check: S<String>,
        doc: S<String>,
        kvm: Option<S<String>>,
        kvm_restore: Option<S<bool>>,
    }
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
