//! Human-readable and JSON views of the model, shared by the command line and the snapshots.

use std::fmt::Write;

#[cfg(feature = "cli")]
use serde_json::{Value, json};

use crate::caps::Caps;
use crate::model::{FieldId, Layout, Member, Schema};

fn member_encodings(schema: &Schema, m: &Member) -> Vec<String> {
    match m.field {
        Some(f) => schema.fields[f].encodings().iter().map(|e| format!("{:#06x}", e.raw())).collect(),
        None => Vec::new(),
    }
}

/// The layout table: offset, size, member, the field it holds and its encodings.
pub fn layout_table(schema: &Schema, layout: &Layout) -> String {
    let mut s = String::new();
    let mapped = layout.mapped().count();
    let _ = writeln!(
        s,
        "layout {}: revision {:#010x}, region {:#x} bytes, {} bytes used, {} members, {} fields mapped{}",
        layout.name,
        layout.revision,
        layout.size,
        layout.used_bytes(),
        layout.members.len(),
        mapped,
        if layout.released { ", released" } else { "" }
    );
    let _ = writeln!(s, "{:>6}  {:>4}  {:<30} {:<8} {:<30} encodings", "offset", "size", "member", "type", "field");
    let mut members: Vec<&Member> = layout.members.iter().collect();
    members.sort_by_key(|m| m.offset);
    for m in members {
        let field = m.field.map_or("-", |f| schema.fields[f].name.as_str());
        let line = format!(
            "{:#06x}  {:>4}  {:<30} {:<8} {:<30} {}",
            m.offset,
            m.size,
            m.name,
            m.ty.as_str(),
            field,
            member_encodings(schema, m).join(" ")
        );
        let _ = writeln!(s, "{}", line.trim_end());
    }
    s
}

/// `{"members": [{"name", "offset", "size", "encodings": [...]}, ...]}` in offset order.
#[cfg(feature = "cli")]
pub fn layout_json(schema: &Schema, layout: &Layout) -> Value {
    let mut members: Vec<&Member> = layout.members.iter().collect();
    members.sort_by_key(|m| m.offset);
    let members: Vec<Value> = members
        .iter()
        .map(|m| json!({"name": m.name, "offset": m.offset, "size": m.size, "encodings": member_encodings(schema, m)}))
        .collect();
    json!({
        "layout": layout.name,
        "revision": format!("{:#010x}", layout.revision),
        "size": layout.size,
        "members": members,
    })
}

/// The field list: encoding, width, kind, name, gate.
pub fn field_table(schema: &Schema, fields: &[FieldId]) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "{:<8} {:<7} {:<11} {:<36} gate", "encoding", "width", "kind", "name");
    for &f in fields {
        let x = &schema.fields[f];
        let gate = x.gate.as_ref().map_or("-".to_string(), |g| schema.gate_text(g));
        let src = x.source.as_ref().map_or(String::new(), |s| format!("  [only {s}]"));
        let _ = writeln!(
            s,
            "{:#06x}   {:<7} {:<11} {:<36} {gate}{src}",
            x.encoding.raw(),
            x.width.as_str(),
            x.kind.as_str(),
            x.name
        );
    }
    s
}

/// `[{"name", "encoding", "width", "kind"}, ...]`.
#[cfg(feature = "cli")]
pub fn fields_json(schema: &Schema, fields: &[FieldId]) -> Value {
    Value::Array(
        fields
            .iter()
            .map(|&f| {
                let x = &schema.fields[f];
                json!({
                    "name": x.name,
                    "encoding": format!("{:#06x}", x.encoding.raw()),
                    "width": x.width.as_str(),
                    "kind": x.kind.as_str(),
                })
            })
            .collect(),
    )
}

/// The summary `vmcs-gen check` prints for a valid schema.
pub fn summary(schema: &Schema) -> String {
    let mut s = String::new();
    let gated = schema.fields.iter().filter(|f| f.gate.is_some()).count();
    let single = schema.fields.iter().filter(|f| f.source.is_some()).count();
    let _ = writeln!(s, "schema ok: {} files", schema.sources.len());
    let _ = writeln!(
        s,
        "fields: {} ({} with a feature gate, {} known to a single source; {} encodings with high halves)",
        schema.fields.len(),
        gated,
        single,
        schema.fields.iter().map(|f| f.encodings().len()).sum::<usize>()
    );
    let _ = writeln!(s, "capabilities: {} bits in {} MSRs", schema.caps.len(), schema.msrs.len());
    for l in &schema.layouts {
        let _ = writeln!(
            s,
            "layout {}: revision {:#010x}, {} bytes used of {:#x}, {} members, {} fields mapped, VMCS_ENUM {:#x}{}",
            l.name,
            l.revision,
            l.used_bytes(),
            l.size,
            l.members.len(),
            l.mapped().count(),
            schema.layout_vmcs_enum(l, &Caps::All),
            if l.released { ", released (locked)" } else { "" }
        );
    }
    if !schema.sets.is_empty() {
        let sets: Vec<String> = schema.sets.iter().map(|x| format!("{} ({})", x.name, x.items.len())).collect();
        let _ = writeln!(
            s,
            "copy sets: {}; {} predicates, {} hooks, {} dirty-tracked entries",
            sets.join(", "),
            schema.predicates.len(),
            schema.hooks.len(),
            schema.dirty_items().len()
        );
    }
    let c = &schema.checks;
    if !c.rules.is_empty() {
        let tiers: Vec<String> = crate::model::Tier::ALL
            .iter()
            .map(|t| format!("{} {}", c.rules.iter().filter(|r| r.tier == *t).count(), t.name()))
            .collect();
        let _ = writeln!(
            s,
            "VM-entry checks: {} rules ({} instances: {}); {} facts, {} defines",
            c.declarations(),
            c.rules.len(),
            tiers.join(", "),
            c.facts.len(),
            c.defines.len()
        );
    }
    let _ = writeln!(s, "VMCS_ENUM with every capability: {:#x}", schema.arch_vmcs_enum(&Caps::All));
    s
}

/// `vmcs-gen diff`: every change from `old` to `new` and the verdict.
pub fn diff(old: &Layout, new: &Layout) -> (String, bool) {
    let changes = crate::compat::compare(&crate::compat::Pinned::of_layout(old), new);
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{} (revision {:#010x}, {:#x} bytes) -> {} (revision {:#010x}, {:#x} bytes)",
        old.name, old.revision, old.size, new.name, new.revision, new.size
    );
    let mut breaking = changes.iter().filter(|c| c.is_breaking()).count();
    if old.revision != new.revision || old.size != new.size {
        let _ = writeln!(s, "  revision or region size differs: a different ABI, not a step");
        breaking += 1;
    }
    use crate::compat::Change;
    for c in &changes {
        let line = match c {
            Change::Added { new: i, within } => {
                let m = &new.members[*i];
                let place = within.as_ref().map_or("past the old end".to_string(), |w| format!("in reserved `{w}`"));
                format!("  added    {:<28} {:#06x} {:>3} bytes  {place}", m.name, m.offset, m.size)
            }
            Change::Retired { old: o, by } => {
                format!("  retired  {:<28} {:#06x} {:>3} bytes  kept as reserved `{by}`", o.name, o.offset, o.size)
            }
            Change::Moved { old: o, new: i } => {
                format!("  MOVED    {:<28} {:#06x} -> {:#06x}", o.name, o.offset, new.members[*i].offset)
            }
            Change::Changed { old: o, new: i } => {
                let m = &new.members[*i];
                format!(
                    "  CHANGED  {:<28} {:#06x} {} ({} bytes) -> {} ({} bytes)",
                    o.name,
                    o.offset,
                    o.ty,
                    o.size,
                    m.ty.as_str(),
                    m.size
                )
            }
            Change::Removed { old: o } => format!("  REMOVED  {:<28} {:#06x} {:>3} bytes", o.name, o.offset, o.size),
            Change::Intrudes { new: i } => {
                let m = &new.members[*i];
                format!(
                    "  INTRUDES {:<28} {:#06x} {:>3} bytes  in space {} did not reserve",
                    m.name, m.offset, m.size, old.name
                )
            }
        };
        let _ = writeln!(s, "{line}");
    }
    if breaking == 0 {
        let _ = writeln!(s, "compatible: {} can read every state {} wrote", new.name, old.name);
    } else {
        let _ = writeln!(s, "incompatible: {breaking} breaking change{}", if breaking == 1 { "" } else { "s" });
    }
    (s, breaking == 0)
}
