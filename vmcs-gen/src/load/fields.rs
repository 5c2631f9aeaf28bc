//! fields.toml: every architectural VMCS field.

use std::collections::{HashMap, HashSet};

use super::{duplicate, resolve_gate, uint};
use crate::diag::{Diagnostics, SourceFile};
use crate::encoding::{Encoding, Kind, Width};
use crate::model::{Field, Schema};
use crate::raw::{self, NoHead, RawField};

/// Load the fields; returns the names of fields that were declared but rejected.
pub(super) fn load(file: &SourceFile, schema: &mut Schema, diags: &mut Diagnostics) -> HashSet<String> {
    let mut rejected = HashSet::new();
    let mut raw = raw::parse_file::<NoHead>(file, &["field"], diags);
    let entries: Vec<RawField> = raw::entries(file, &mut raw, "field", diags);
    let mut names = HashMap::new();
    let mut encodings: HashMap<u32, String> = HashMap::new();
    for f in &entries {
        let mut ok = !duplicate(file, &mut names, &f.name, "field name", diags);
        if !valid_field_name(f.name.get_ref()) {
            diags
                .push(file.error(f.name.span(), format!("field name `{}` must be UPPER_SNAKE_CASE", f.name.get_ref())));
            ok = false;
        }
        let Some(enc) = uint(file, &f.encoding, u32::MAX as u64, "encoding", diags) else {
            rejected.insert(f.name.get_ref().clone());
            continue;
        };
        let enc = Encoding(enc as u32);
        let at = f.encoding.span();
        if enc.reserved_bits() != 0 {
            diags.push(
                file.error(at.clone(), format!("encoding {enc} sets reserved bits {:#x}", enc.reserved_bits()))
                    .with_note("bit 12 and bits 31:15 of a VMCS field encoding are reserved and must be 0"),
            );
            ok = false;
        }
        if enc.is_high() {
            diags.push(
                file.error(at.clone(), format!("encoding {enc} is a high-access encoding (bit 0 set)"))
                    .with_note(high_access_note(enc)),
            );
            ok = false;
        }
        let width = Width::parse(f.width.get_ref());
        match width {
            None => {
                diags.push(file.error(
                    f.width.span(),
                    format!("unknown width `{}`: expected \"16\", \"32\", \"64\" or \"natural\"", f.width.get_ref()),
                ));
                ok = false;
            }
            Some(w) if w != enc.width() => {
                diags.push(
                    file.error(f.width.span(), format!("width {} disagrees with encoding {enc}", w.as_str()))
                        .with_note(format!("bits 14:13 of {enc} say {}", enc.width().as_str())),
                );
                ok = false;
            }
            _ => {}
        }
        let kind = Kind::parse(f.kind.get_ref());
        match kind {
            None => {
                diags.push(file.error(
                    f.kind.span(),
                    format!(
                        "unknown kind `{}`: expected \"control\", \"read-only\", \"guest-state\" or \"host-state\"",
                        f.kind.get_ref()
                    ),
                ));
                ok = false;
            }
            Some(k) if k != enc.kind() => {
                diags.push(
                    file.error(f.kind.span(), format!("kind {} disagrees with encoding {enc}", k.as_str()))
                        .with_note(format!("bits 11:10 of {enc} say {}", enc.kind().as_str())),
                );
                ok = false;
            }
            _ => {}
        }
        if let Some(other) = encodings.get(&enc.raw()) {
            diags.push(file.error(at, format!("encoding {enc} is already declared by `{other}`")));
            ok = false;
        } else {
            encodings.insert(enc.raw(), f.name.get_ref().clone());
        }
        let gate = f.gate.as_ref().map(|g| resolve_gate(file, g, schema, diags));
        if matches!(gate, Some(None)) {
            ok = false;
        }
        if !ok {
            rejected.insert(f.name.get_ref().clone());
        } else {
            let pos = schema.pos(file, f.name.span());
            schema.fields.push(Field {
                name: f.name.get_ref().clone(),
                encoding: enc,
                width: width.unwrap(),
                kind: kind.unwrap(),
                gate: gate.flatten(),
                doc: f.doc.get_ref().clone(),
                source: f.source.as_ref().map(|s| s.get_ref().clone()),
                guest_physical: f.guest_physical.as_ref().is_some_and(|g| *g.get_ref()),
                l0_owned: f.l0_owned.as_ref().map(|s| s.get_ref().clone()),
                pos,
            });
        }
    }
    rejected
}

fn high_access_note(enc: Encoding) -> String {
    let full = Encoding(enc.raw() & !1);
    if full.width() == Width::W64 {
        format!("declare the 64-bit field once at {full}; its high half is derived")
    } else {
        format!("only 64-bit fields have a high half; {full} is a {} field", full.width().describe())
    }
}

pub(super) fn valid_field_name(name: &str) -> bool {
    name.starts_with(|c: char| c.is_ascii_uppercase())
        && name.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
}
