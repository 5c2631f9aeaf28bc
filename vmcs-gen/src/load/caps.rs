//! capabilities.toml: the VMX capability MSRs and the named bits gates refer to.

use std::collections::{HashMap, HashSet};

use super::{duplicate, resolve_gate, uint};
use crate::diag::{Diagnostics, SourceFile};
use crate::encoding::{Kind, Width};
use crate::model::{Capability, Msr, MsrId, MsrKind, Schema};
use crate::raw::{self, NoHead, RawCap, RawMsr, S};

/// Load the MSRs and capabilities; returns each MSR's `field` name, resolved once fields are known
/// ([`resolve_control_fields`]).
pub(super) fn load(file: &SourceFile, schema: &mut Schema, diags: &mut Diagnostics) -> Vec<(MsrId, S<String>)> {
    let mut raw = raw::parse_file::<NoHead>(file, &["msr", "cap"], diags);
    let msrs: Vec<RawMsr> = raw::entries(file, &mut raw, "msr", diags);
    let caps: Vec<RawCap> = raw::entries(file, &mut raw, "cap", diags);

    let mut names = HashMap::new();
    let mut indices: HashMap<u64, String> = HashMap::new();
    let mut true_indices = Vec::new();
    for m in &msrs {
        duplicate(file, &mut names, &m.name, "MSR", diags);
        let index = uint(file, &m.index, u32::MAX as u64, "MSR index", diags);
        if let Some(i) = index
            && let Some(other) = indices.insert(i, m.name.get_ref().clone())
        {
            diags.push(file.error(m.index.span(), format!("MSR index {i:#x} already belongs to `{other}`")));
        }
        true_indices.push(m.true_index.as_ref().and_then(|t| uint(file, t, u32::MAX as u64, "MSR index", diags)));
        let kind = match m.kind.get_ref().as_str() {
            "control" => Some(MsrKind::Control),
            "flags" => Some(MsrKind::Flags),
            other => {
                diags.push(
                    file.error(m.kind.span(), format!("unknown MSR kind `{other}`: expected \"control\" or \"flags\"")),
                );
                None
            }
        };
        schema.msrs.push(Msr {
            name: m.name.get_ref().clone(),
            index: index.unwrap_or(0) as u32,
            true_msr: None,
            kind: kind.unwrap_or(MsrKind::Flags),
            requires: None,
            control_field: None,
            doc: m.doc.get_ref().clone(),
        });
    }

    let mut cap_names = HashMap::new();
    let mut bits: HashMap<(usize, u64), &S<String>> = HashMap::new();
    for c in &caps {
        duplicate(file, &mut cap_names, &c.name, "capability", diags);
        if !valid_cap_name(c.name.get_ref()) {
            diags.push(file.error(
                c.name.span(),
                format!("capability name `{}` must look like `group.snake_case`", c.name.get_ref()),
            ));
        }
        let msr = schema.msrs.iter().position(|m| &m.name == c.msr.get_ref());
        if msr.is_none() {
            diags.push(file.error(c.msr.span(), format!("unknown MSR `{}`", c.msr.get_ref())));
        }
        let limit = match msr.map(|m| schema.msrs[m].kind) {
            Some(MsrKind::Control) => 31,
            _ => 63,
        };
        let bit = uint(file, &c.bit, limit, "bit", diags);
        if let (Some(m), Some(b)) = (msr, bit)
            && let Some(first) = bits.insert((m, b), &c.name)
        {
            let line = file.error(first.span(), "").line;
            diags.push(
                file.error(
                    c.bit.span(),
                    format!("bit {b} of MSR `{}` is already `{}`", c.msr.get_ref(), first.get_ref()),
                )
                .with_note(format!("`{}` is declared at line {line}; one bit has one name", first.get_ref())),
            );
        }
        let pos = schema.pos(file, c.name.span());
        schema.caps.push(Capability {
            name: c.name.get_ref().clone(),
            msr: msr.unwrap_or(0),
            bit: bit.unwrap_or(0) as u32,
            doc: c.doc.get_ref().clone(),
            pos,
        });
    }

    let fields = msrs.iter().enumerate().filter_map(|(i, m)| m.field.clone().map(|f| (i, f))).collect();
    // `requires` may name any capability, so resolve it once all are known.
    for (i, m) in msrs.iter().enumerate() {
        if let Some(req) = &m.requires {
            schema.msrs[i].requires = resolve_gate(file, req, schema, diags);
        }
    }
    resolve_true_msrs(file, &msrs, &true_indices, schema, diags);
    for (i, m) in msrs.iter().enumerate() {
        if let (Some(req), true) = (&m.requires, requires_itself(schema, i)) {
            diags.push(
                file.error(
                    req.span(),
                    format!("MSR `{}` requires itself through its `requires` chain", m.name.get_ref()),
                ),
            );
        } else if let Some(req) = &m.requires {
            check_read_order(file, i, req, schema, diags);
        }
    }
    fields
}

/// `true_index` names a declared "control" MSR with a `requires` gate (when it exists).
fn resolve_true_msrs(
    file: &SourceFile,
    msrs: &[RawMsr],
    true_indices: &[Option<u64>],
    schema: &mut Schema,
    diags: &mut Diagnostics,
) {
    for (i, (m, index)) in msrs.iter().zip(true_indices).enumerate() {
        let (Some(raw), Some(index)) = (&m.true_index, index) else { continue };
        let Some(t) = schema.msrs.iter().position(|x| u64::from(x.index) == *index) else {
            diags
                .push(file.error(raw.span(), format!("true_index {index:#x} is not a declared MSR")).with_note(
                    "declare the IA32_VMX_TRUE_* MSR as an [[msr]] of kind \"control\" with its `requires`",
                ));
            continue;
        };
        let tm = &schema.msrs[t];
        let has_caps = schema.caps.iter().any(|c| c.msr == t);
        if t == i || tm.kind != MsrKind::Control || tm.requires.is_none() || true_indices[t].is_some() || has_caps {
            diags.push(
                file.error(raw.span(), format!("`{}` cannot be the TRUE MSR of `{}`", tm.name, m.name.get_ref()))
                    .with_note("a TRUE MSR is another \"control\" MSR with a `requires` gate, and no [[cap]] or TRUE MSR of its own"),
            );
            continue;
        }
        schema.msrs[i].true_msr = Some(t);
    }
}

/// MSR `i`'s `requires` reads only MSRs declared before it (and their TRUE MSRs), so reading the
/// MSRs in schema order never reads one whose existence is still unknown.
fn check_read_order(file: &SourceFile, i: usize, req: &S<String>, schema: &Schema, diags: &mut Diagnostics) {
    let Some(gate) = &schema.msrs[i].requires else { return };
    for &cap in gate.caps() {
        let msr = schema.caps[cap].msr;
        let Some(late) = [Some(msr), schema.msrs[msr].true_msr].into_iter().flatten().find(|&r| r >= i) else {
            continue;
        };
        let what = if late == i {
            "itself".to_string()
        } else {
            format!("MSR `{}`, declared after it", schema.msrs[late].name)
        };
        diags.push(
            file.error(req.span(), format!("`requires` of `{}` reads {what}", schema.msrs[i].name))
                .with_note("declare an MSR after the MSRs its `requires` reads: they are read in schema order"),
        );
        return;
    }
}

/// Does MSR `start` depend on itself through the MSRs its `requires` gate names?
fn requires_itself(schema: &Schema, start: usize) -> bool {
    let mut stack = vec![start];
    let mut seen = vec![false; schema.msrs.len()];
    while let Some(m) = stack.pop() {
        let Some(req) = &schema.msrs[m].requires else { continue };
        for &cap in req.caps() {
            let next = schema.caps[cap].msr;
            if next == start {
                return true;
            }
            if !std::mem::replace(&mut seen[next], true) {
                stack.push(next);
            }
        }
    }
    false
}

fn valid_cap_name(name: &str) -> bool {
    let mut parts = name.split('.');
    let ok = |p: &str| !p.is_empty() && p.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    matches!((parts.next(), parts.next(), parts.next()), (Some(a), Some(b), None) if ok(a) && ok(b))
}

/// Resolve each MSR's `field` once the fields are loaded: a control field of the width the MSR's
/// kind reports (32 bits for allowed-0/allowed-1 pairs, 64 for allowed-1 vectors). Fields that were
/// declared but rejected get no second error.
pub(super) fn resolve_control_fields(
    file: &SourceFile,
    refs: &[(MsrId, S<String>)],
    rejected: &HashSet<String>,
    schema: &mut Schema,
    diags: &mut Diagnostics,
) {
    for (id, name) in refs {
        let msr = schema.msrs[*id].name.clone();
        let Some(f) = schema.fields.iter().position(|f| &f.name == name.get_ref()) else {
            if !rejected.contains(name.get_ref()) {
                diags.push(file.error(name.span(), format!("unknown field `{}`", name.get_ref())));
            }
            continue;
        };
        let field = &schema.fields[f];
        let want = match schema.msrs[*id].kind {
            MsrKind::Control => Width::W32,
            MsrKind::Flags => Width::W64,
        };
        if field.kind != Kind::Control || field.width != want {
            diags.push(
                file.error(name.span(), format!("`{}` cannot hold the controls of MSR `{msr}`", field.name)).with_note(
                    format!(
                        "a {} MSR reports a {} control field; `{}` is a {} {} field",
                        if want == Width::W32 { "\"control\"" } else { "\"flags\"" },
                        want.describe(),
                        field.name,
                        field.width.describe(),
                        field.kind.as_str()
                    ),
                ),
            );
            continue;
        }
        schema.msrs[*id].control_field = Some(f);
    }
    // A control field is in effect while its MSR's `requires` holds on the controls: every
    // capability there must be a control bit itself.
    for (id, name) in refs {
        let (Some(req), Some(_)) = (&schema.msrs[*id].requires, schema.msrs[*id].control_field) else { continue };
        for &c in req.caps() {
            if schema.msrs[schema.caps[c].msr].control_field.is_none() {
                let msg = format!(
                    "the controls of MSR `{}` are in effect while its `requires` holds, but `{}` is not a control",
                    schema.msrs[*id].name, schema.caps[c].name
                );
                diags.push(file.error(name.span(), msg));
            }
        }
    }
}
