//! copysets.toml: predicates, dirty groups and copy sets between vmcs12, vmcs02 and the shadow VMCS.

use std::collections::HashMap;

use super::{duplicate, resolve_expr};
use crate::diag::{Diagnostics, SourceFile};
use crate::encoding::Kind;
use crate::model::{CopyItem, CopySet, FieldId, Group, Predicate, Role, Schema, ShadowAccess};
use crate::raw::{self, NoHead, RawGroup, RawPredicate, RawSet, S};

/// The layout the `vmcs12` role stands for.
const VMCS12: &str = "vmcs12";

pub(super) fn load(file: &SourceFile, schema: &mut Schema, diags: &mut Diagnostics) {
    let mut raw = raw::parse_file::<NoHead>(file, &["predicate", "group", "set"], diags);
    let predicates: Vec<RawPredicate> = raw::entries(file, &mut raw, "predicate", diags);
    let groups: Vec<RawGroup> = raw::entries(file, &mut raw, "group", diags);
    let sets: Vec<RawSet> = raw::entries(file, &mut raw, "set", diags);

    let mut names = HashMap::new();
    for p in &predicates {
        if !duplicate(file, &mut names, &p.name, "predicate", diags) {
            check_ident(file, &p.name, "predicate", diags);
            schema.predicates.push(Predicate { name: p.name.get_ref().clone(), doc: p.doc.get_ref().clone() });
        }
    }

    let mut names = HashMap::new();
    let mut owner: HashMap<FieldId, String> = HashMap::new();
    for g in &groups {
        if duplicate(file, &mut names, &g.name, "group", diags) {
            continue;
        }
        check_ident(file, &g.name, "group", diags);
        let mut fields = Vec::new();
        for f in &g.fields {
            let Some(id) = vmcs12_field(file, schema, f, diags) else { continue };
            if let Some(other) = owner.insert(id, g.name.get_ref().clone()) {
                diags.push(file.error(f.span(), format!("field `{}` is already in group `{other}`", f.get_ref())));
                continue;
            }
            fields.push(id);
        }
        schema.groups.push(Group { name: g.name.get_ref().clone(), doc: g.doc.get_ref().clone(), fields });
    }

    let mut names = HashMap::new();
    for s in &sets {
        if duplicate(file, &mut names, &s.name, "set", diags) {
            continue;
        }
        check_ident(file, &s.name, "set", diags);
        if let Some(set) = load_set(file, schema, s, diags) {
            schema.sets.push(set);
        }
    }
}

fn load_set(file: &SourceFile, schema: &Schema, s: &RawSet, diags: &mut Diagnostics) -> Option<CopySet> {
    let role = |r: &S<String>, diags: &mut Diagnostics| {
        let role = Role::parse(r.get_ref());
        if role.is_none() {
            let msg =
                format!("unknown role `{}`: expected \"vmcs12\", \"vmcs02\", \"shadow\" or \"evmcs\"", r.get_ref());
            diags.push(file.error(r.span(), msg));
        }
        role
    };
    let (from, to) = (role(&s.from, diags), role(&s.to, diags));
    let (from, to) = (from?, to?);
    if (from == Role::Vmcs12) == (to == Role::Vmcs12) {
        diags.push(
            file.error(s.to.span(), "a copy set moves fields between vmcs12 and vmcs02, the shadow VMCS or an eVMCS"),
        );
        return None;
    }
    let dirty = s.dirty.as_ref().is_some_and(|d| *d.get_ref());
    let clean = s.clean.as_ref().is_some_and(|c| *c.get_ref());
    if clean && (from != Role::Evmcs || schema.layout("evmcs").is_none_or(|l| l.clean.is_none())) {
        let span = s.clean.as_ref().unwrap().span();
        diags.push(
            file.error(span, "only sets that read an eVMCS with clean fields can skip clean groups (`clean = true`)"),
        );
    }
    if dirty && from != Role::Vmcs12 {
        let span = s.dirty.as_ref().unwrap().span();
        diags.push(file.error(span, "only sets that read vmcs12 can skip clean groups (`dirty = true`)"));
    }
    let shadow = match &s.shadow {
        None => None,
        Some(v) => match v.get_ref().as_str() {
            "read-only" => Some(ShadowAccess::ReadOnly),
            "read-write" => Some(ShadowAccess::ReadWrite),
            other => {
                let msg = format!("unknown shadow access `{other}`: expected \"read-only\" or \"read-write\"");
                diags.push(file.error(v.span(), msg));
                None
            }
        },
    };
    if (to == Role::Shadow) != s.shadow.is_some() {
        diags.push(file.error(s.to.span(), "a set into the shadow VMCS, and only such a set, says `shadow = ...`"));
    }

    let mut items: Vec<CopyItem> = Vec::new();
    if let Some(all) = s.all.as_ref().filter(|a| *a.get_ref()) {
        if !s.copy.is_empty() {
            diags.push(file.error(all.span(), "a set with `all = true` lists no `copy` entries"));
        }
        // Every mapped field in layout order; read-only ones only where the destination can hold them.
        let mut members: Vec<_> = schema.layout(VMCS12)?.mapped().collect();
        members.sort_by_key(|(m, _)| m.offset);
        for (_, id) in members {
            if schema.fields[id].kind != Kind::ReadOnly || to == Role::Vmcs12 {
                items.push(CopyItem { field: id, when: None });
            }
        }
    }
    let mut seen: HashMap<FieldId, usize> = HashMap::new();
    for item in &s.copy {
        let when = item.when.as_ref().and_then(|w| {
            let lookup = |n: &str| schema.predicates.iter().position(|p| p.name == n);
            resolve_expr(file, w, &lookup, ("condition", "predicate"), "declare it as a [[predicate]]", diags)
        });
        let (fields, at) = match (&item.field, &item.group) {
            (Some(f), None) => (set_field(file, schema, f, [from, to], diags).into_iter().collect::<Vec<_>>(), f),
            (None, Some(g)) => match schema.groups.iter().find(|x| &x.name == g.get_ref()) {
                Some(group) => (group.fields.clone(), g),
                None => {
                    diags.push(file.error(g.span(), format!("unknown group `{}`", g.get_ref())));
                    continue;
                }
            },
            (Some(f), Some(_)) => {
                diags.push(file.error(f.span(), "a copy entry names either a `field` or a `group`, not both"));
                continue;
            }
            (None, None) => {
                let span = item.when.as_ref().map_or(s.name.span(), |w| w.span());
                diags.push(file.error(span, "a copy entry needs a `field` or a `group`"));
                continue;
            }
        };
        for id in fields {
            let f = &schema.fields[id];
            if seen.insert(id, items.len()).is_some() {
                diags.push(
                    file.error(at.span(), format!("field `{}` is copied twice in set `{}`", f.name, s.name.get_ref())),
                );
                continue;
            }
            if f.kind == Kind::ReadOnly && (to == Role::Vmcs02 || shadow == Some(ShadowAccess::ReadWrite)) {
                let why = if to == Role::Vmcs02 {
                    "VMWRITE of a VM-exit information field into vmcs02 fails (VM-instruction error 13)"
                } else {
                    "L1 may not VMWRITE a read-only field; shadow it read-only"
                };
                diags.push(
                    file.error(
                        at.span(),
                        format!("read-only field `{}` cannot be a destination of set `{}`", f.name, s.name.get_ref()),
                    )
                    .with_note(why),
                );
                continue;
            }
            if dirty && schema.group_of(id).is_none() {
                diags.push(file.error(
                    at.span(),
                    format!("field `{}` of dirty-tracked set `{}` belongs to no group", f.name, s.name.get_ref()),
                ));
                continue;
            }
            items.push(CopyItem { field: id, when: when.clone() });
        }
    }
    Some(CopySet {
        name: s.name.get_ref().clone(),
        doc: s.doc.get_ref().clone(),
        from,
        to,
        dirty,
        clean,
        shadow,
        items,
    })
}

/// Resolve a field that every software layout among `roles` must hold.
fn set_field(
    file: &SourceFile,
    schema: &Schema,
    name: &S<String>,
    roles: [Role; 2],
    diags: &mut Diagnostics,
) -> Option<FieldId> {
    let id = vmcs12_field(file, schema, name, diags)?;
    for layout in roles.iter().filter_map(|r| r.layout()).filter(|l| *l != VMCS12) {
        let Some(l) = schema.layout(layout) else {
            diags.push(file.error(name.span(), format!("role `{layout}` needs a layout `{layout}`")));
            return None;
        };
        if !l.members.iter().any(|m| m.field == Some(id)) {
            diags.push(
                file.error(name.span(), format!("field `{}` has no member in layout `{layout}`", name.get_ref())),
            );
            return None;
        }
    }
    Some(id)
}

/// Resolve a field name that must be held by the vmcs12 layout.
fn vmcs12_field(file: &SourceFile, schema: &Schema, name: &S<String>, diags: &mut Diagnostics) -> Option<FieldId> {
    let Some(id) = schema.fields.iter().position(|f| &f.name == name.get_ref()) else {
        diags.push(file.error(name.span(), format!("unknown field `{}`", name.get_ref())));
        return None;
    };
    let layout = schema.layout(VMCS12)?;
    if !layout.members.iter().any(|m| m.field == Some(id)) {
        diags.push(file.error(name.span(), format!("field `{}` has no member in layout `{VMCS12}`", name.get_ref())));
        return None;
    }
    Some(id)
}

fn check_ident(file: &SourceFile, name: &S<String>, what: &str, diags: &mut Diagnostics) {
    let n = name.get_ref();
    let ok = n.starts_with(|c: char| c.is_ascii_lowercase())
        && n.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if !ok {
        diags.push(file.error(name.span(), format!("{what} name `{n}` must be snake_case")));
    }
}
