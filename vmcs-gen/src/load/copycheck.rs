//! The invariants across copy sets that make the generated routines safe to run as an L0:
//!
//! - every read-write shadow field is consumed on every entry or exit (or is L0-owned), since L1's
//!   VMWRITEs through the shadow VMCS bypass L0's tracking; every read-only shadow field is
//!   refreshed by an exit set, or L1 would read a stale one without exiting;
//! - a lazily synced field has a dirty-tracked entry of its own (the deferred sync keeps what L1
//!   wrote since the exit) and nothing else on the entry path reads it (vmcs12's copy may be stale);
//! - a field an exit set copies back from vmcs02 untracked is read by no other dirty-tracked entry
//!   (vmcs02 already holds it, so only its own entry may skip recopying it).
//! - a dirty set watches at most 64 predicates and control bits (one word remembers them).

use crate::diag::Diagnostics;
use crate::model::{CopySet, FieldId, Pos, Role, Runs, Schema, ShadowAccess, Source};

pub(super) fn check(schema: &Schema, diags: &mut Diagnostics) {
    let reads = |s: &CopySet, f: FieldId| s.items.iter().any(|i| schema.item_inputs(s, i).contains(&(Role::Vmcs12, f)));
    for set in &schema.sets {
        if set.dirty {
            watched_fit(schema, set, diags);
        }
        for item in &set.items {
            let f = &schema.fields[item.field];
            let at = &item.pos;
            match set.shadow {
                Some(ShadowAccess::ReadWrite) if f.l0_owned.is_none() => {
                    let consumed = schema.sets.iter().any(|s| {
                        s.from == Role::Vmcs12
                            && matches!(s.to, Role::Vmcs02 | Role::Vmcs01)
                            && matches!(s.runs, Runs::Entry | Runs::Exit)
                            && !s.dirty
                            && reads(s, item.field)
                    });
                    if !consumed {
                        let msg = format!(
                            "read-write shadow field `{}` is consumed by no set that runs on every entry or exit",
                            f.name
                        );
                        let note = "L1's VMWRITEs through the shadow VMCS would never reach vmcs02: read it in an \
                                    entry set, or declare it `l0_owned = \"why\"` in fields.toml";
                        diags.push(schema.error_at(at, msg).with_note(note));
                    }
                }
                Some(ShadowAccess::ReadOnly) => {
                    let refreshed = schema.sets.iter().any(|s| {
                        s.to == Role::Vmcs12 && s.runs == Runs::Exit && s.items.iter().any(|i| i.field == item.field)
                    });
                    if !refreshed {
                        let msg = format!("read-only shadow field `{}` is refreshed by no exit set", f.name);
                        let note = "L1 would VMREAD a stale value from the shadow VMCS without exiting";
                        diags.push(schema.error_at(at, msg).with_note(note));
                    }
                }
                _ => {}
            }
            if set.runs == Runs::Lazy {
                lazy_field(schema, set, item.field, at, diags);
            }
            if set.runs == Runs::Exit && set.from == Role::Vmcs02 && item.is_plain() {
                untracked_write(schema, set, item.field, at, diags);
            }
        }
    }
}

/// The entry of a dirty set that copies exactly `f` from vmcs12 into vmcs02, with no other input.
fn own_entry(schema: &Schema, f: FieldId) -> Option<(usize, usize)> {
    schema.dirty_items().into_iter().find(|&(si, ii)| {
        let (s, i) = (&schema.sets[si], &schema.sets[si].items[ii]);
        i.field == f && i.treat.source == Source::Copy && schema.item_inputs(s, i) == [(Role::Vmcs12, f)]
    })
}

fn lazy_field(schema: &Schema, lazy: &CopySet, f: FieldId, at: &Pos, diags: &mut Diagnostics) {
    let name = &schema.fields[f].name;
    let Some(own) = own_entry(schema, f) else {
        let msg = format!("lazily synced field `{name}` needs a dirty-tracked entry that copies it alone into vmcs02");
        let note = "the deferred sync keeps what L1 wrote since the exit by that entry's dirty bit";
        diags.push(schema.error_at(at, msg).with_note(note));
        return;
    };
    for (si, s) in schema.sets.iter().enumerate() {
        if s.runs != Runs::Entry || s.from != Role::Vmcs12 {
            continue;
        }
        for (ii, i) in s.items.iter().enumerate() {
            if (si, ii) != own && schema.item_inputs(s, i).contains(&(Role::Vmcs12, f)) {
                let msg = format!(
                    "set `{}` reads `{name}` for `{}`, but set `{}` brings it into vmcs12 only lazily",
                    s.name, schema.fields[i.field].name, lazy.name
                );
                diags.push(schema.error_at(at, msg).with_note("vmcs12's copy may be stale on that entry"));
            }
        }
    }
}

fn untracked_write(schema: &Schema, exit: &CopySet, f: FieldId, at: &Pos, diags: &mut Diagnostics) {
    let own = own_entry(schema, f);
    for (n, (si, ii)) in schema.dirty_items().into_iter().enumerate() {
        let (s, i) = (&schema.sets[si], &schema.sets[si].items[ii]);
        let own_field = i.field == f && matches!(i.treat.source, Source::Copy) && i.otherwise.is_none();
        if Some((si, ii)) != own && !own_field && schema.item_inputs(s, i).contains(&(Role::Vmcs12, f)) {
            let msg = format!(
                "set `{}` copies `{}` back from vmcs02 without dirtying, but `{}` of set `{}` (dirty bit {n}) depends on it",
                exit.name, schema.fields[f].name, schema.fields[i.field].name, s.name
            );
            diags.push(
                schema.error_at(at, msg).with_note("give the exit copy a treatment (it then dirties what changed)"),
            );
        }
    }
}

/// The entry of a dirty set that makes it watch more than one word's worth of values.
fn watched_fit(schema: &Schema, set: &CopySet, diags: &mut Diagnostics) {
    let mut seen = Vec::new();
    for item in &set.items {
        seen.extend(schema.item_watched(item).into_iter().filter(|t| !seen.contains(t)).collect::<Vec<_>>());
        if seen.len() > 64 {
            let msg = format!("dirty set `{}` depends on more than 64 predicates and control bits", set.name);
            let note = "a dirty set remembers them in one 64-bit word: split the set";
            diags.push(schema.error_at(&item.pos, msg).with_note(note));
            return;
        }
    }
}
