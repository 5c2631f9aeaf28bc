//! KVM_GET/SET_NESTED_STATE blobs shown with the schema's names (`vmcs-gen state decode|check`).
//!
//! The rules and the byte-level view come from `vmcs-nested-state`, the same crate the runtime
//! uses; the vmcs12 they need is described by the schema model, not by the generated runtime, so the
//! command keeps building whatever state the schema is in.

use std::fmt::Write;

#[cfg(feature = "cli")]
use serde_json::{Value, json};
use vmcs_nested_state::{INVALID_GPA, NestedState, NestedStateError, flag_names};

use crate::model::{Layout, Member, MemberType, Schema};

/// The verdict line: accepted, or the rule that refuses and KVM's errno.
pub fn verdict(result: &Result<(), NestedStateError>) -> String {
    match result {
        Ok(()) => "accepted by KVM_SET_NESTED_STATE's blob rules (Linux 7.2.8)".into(),
        Err(e) => {
            let rule = e.rule().map_or("truncated".into(), |r| format!("rule {r}"));
            format!("rejected ({rule}, -{}): {e}", e.errno_name())
        }
    }
}

fn flags_text(flags: u16) -> String {
    let (names, unknown) = flag_names(flags);
    let mut names: Vec<String> = names.map(String::from).collect();
    if unknown != 0 {
        names.push(format!("unknown {unknown:#x}"));
    }
    if names.is_empty() { "none".into() } else { names.join("|") }
}

fn pa_text(pa: u64) -> String {
    if pa == INVALID_GPA { "INVALID_GPA".into() } else { format!("{pa:#x}") }
}

/// A decoded member: offset, name, field name and encoding (when mapped), little-endian value.
struct Decoded<'a> {
    member: &'a Member,
    field: Option<(&'a str, u32)>,
    value: u64,
}

fn decode_members<'a>(schema: &'a Schema, layout: &'a Layout, bytes: &[u8]) -> Vec<Decoded<'a>> {
    let mut members: Vec<&Member> = layout.members.iter().filter(|m| m.ty != MemberType::Reserved).collect();
    members.sort_by_key(|m| m.offset);
    members
        .into_iter()
        .map(|m| {
            let raw = bytes.get(m.offset as usize..(m.offset + m.size) as usize).unwrap_or(&[]);
            Decoded {
                member: m,
                field: m.field.map(|f| (schema.fields[f].name.as_str(), schema.fields[f].encoding.raw())),
                value: raw.iter().rev().fold(0, |acc, b| acc << 8 | u64::from(*b)),
            }
        })
        .collect()
}

/// Why KVM would not read an area that is present, if it would not.
fn unread_note(state: &NestedState<'_>, shadow: bool) -> Option<&'static str> {
    let hdr = state.vmx_header();
    if hdr.vmxon_pa == INVALID_GPA {
        return Some("not in VMX operation: KVM ignores it");
    }
    if shadow {
        let guest_mode = state.flags() & vmcs_nested_state::KVM_STATE_NESTED_GUEST_MODE != 0;
        let in_use = state.vmcs12().is_some_and(|v| state.shape().uses_shadow_vmcs(v));
        if !(guest_mode && in_use) {
            return Some("KVM reads it only in guest mode with VMCS shadowing in use");
        }
    }
    None
}

/// Why an area is absent: the declared size (or the file) ends before it.
fn absent_note(state: &NestedState<'_>, offset: usize) -> String {
    let need = offset + state.shape().struct_size;
    let have = state.as_bytes().len();
    if have < state.size() as usize {
        format!("absent (the file ends at {have} of the declared {} bytes; it needs {need})", state.size())
    } else {
        format!("absent (size {} < {need})", state.size())
    }
}

/// The header and every member of both areas, then the verdict.
pub fn decode_text(
    schema: &Schema,
    layout: &Layout,
    state: &NestedState<'_>,
    result: &Result<(), NestedStateError>,
) -> String {
    let mut s = String::new();
    let h = state.vmx_header();
    let _ = writeln!(
        s,
        "kvm_nested_state: flags {:#x} ({}), format {}{}, size {}",
        state.flags(),
        flags_text(state.flags()),
        state.format(),
        if state.format() == vmcs_nested_state::KVM_STATE_NESTED_FORMAT_VMX { " (VMX)" } else { "" },
        state.size()
    );
    let _ = writeln!(
        s,
        "hdr.vmx: vmxon_pa {}, vmcs12_pa {}, smm.flags {:#x}, flags {:#x}, preemption_timer_deadline {:#x}",
        pa_text(h.vmxon_pa),
        pa_text(h.vmcs12_pa),
        h.smm_flags,
        h.vmx_flags,
        h.preemption_timer_deadline
    );
    let areas = [
        ("vmcs12", state.vmcs12(), vmcs_nested_state::VMCS12_OFFSET, false),
        ("shadow vmcs12", state.shadow_vmcs12(), vmcs_nested_state::SHADOW_VMCS12_OFFSET, true),
    ];
    for (title, area, offset, shadow) in areas {
        let Some(bytes) = area else {
            let _ = writeln!(s, "{title}: {}", absent_note(state, offset));
            continue;
        };
        let note = unread_note(state, shadow).map_or(String::new(), |n| format!("; {n}"));
        let _ = writeln!(s, "{title} at {offset} (layout {}, {} bytes{note}):", layout.name, bytes.len());
        let _ = writeln!(s, "  {:>6}  {:<30} {:<32} {:<8} value", "offset", "member", "field", "encoding");
        for d in decode_members(schema, layout, bytes) {
            let (field, enc) = d.field.map_or(("-".into(), "-".into()), |(f, e)| (f.to_string(), format!("{e:#06x}")));
            let _ =
                writeln!(s, "  {:#06x}  {:<30} {field:<32} {enc:<8} {:#x}", d.member.offset, d.member.name, d.value);
        }
    }
    let _ = writeln!(s, "{}", verdict(result));
    s
}

/// The same as [`decode_text`], as JSON.
#[cfg(feature = "cli")]
pub fn decode_json(
    schema: &Schema,
    layout: &Layout,
    state: &NestedState<'_>,
    result: &Result<(), NestedStateError>,
) -> Value {
    let h = state.vmx_header();
    let (names, unknown) = flag_names(state.flags());
    let area = |bytes: Option<&[u8]>, shadow: bool| match bytes {
        None => Value::Null,
        Some(bytes) => json!({
            "layout": layout.name,
            "read_by_kvm": unread_note(state, shadow).is_none(),
            "members": decode_members(schema, layout, bytes)
                .iter()
                .map(|d| json!({
                    "offset": d.member.offset,
                    "member": d.member.name,
                    "field": d.field.map(|(f, _)| f),
                    "encoding": d.field.map(|(_, e)| format!("{e:#06x}")),
                    "value": format!("{:#x}", d.value),
                }))
                .collect::<Vec<_>>(),
        }),
    };
    let verdict = match result {
        Ok(()) => json!({"accepted": true}),
        Err(e) => json!({
            "accepted": false,
            "rule": e.rule(),
            "errno": e.errno(),
            "errno_name": e.errno_name(),
            "reason": e.to_string(),
        }),
    };
    json!({
        "flags": format!("{:#x}", state.flags()),
        "flag_names": names.collect::<Vec<_>>(),
        "unknown_flags": format!("{unknown:#x}"),
        "format": state.format(),
        "size": state.size(),
        "bytes": state.as_bytes().len(),
        "vmx": {
            "vmxon_pa": format!("{:#x}", h.vmxon_pa),
            "vmcs12_pa": format!("{:#x}", h.vmcs12_pa),
            "smm_flags": format!("{:#x}", h.smm_flags),
            "flags": format!("{:#x}", h.vmx_flags),
            "preemption_timer_deadline": format!("{:#x}", h.preemption_timer_deadline),
        },
        "vmcs12": area(state.vmcs12(), false),
        "shadow_vmcs12": area(state.shadow_vmcs12(), true),
        "verdict": verdict,
    })
}
