//! copysets.toml: predicates, hooks and copy sets between vmcs12 and vmcs02, vmcs01, the shadow
//! VMCS or an eVMCS. The invariants across sets are checked afterwards (`copycheck`).

use std::collections::HashMap;

mod entry;

use super::{duplicate, inner};
use crate::diag::{Diagnostics, SourceFile};
use crate::encoding::Width;
use crate::gate::{self, Gate};
use crate::model::{CopyItem, CopySet, Hook, HookInput, Predicate, Role, Runs, Schema, ShadowAccess, Term};
use crate::raw::{self, NoHead, RawHook, RawPredicate, RawSet, S};
use entry::{SetCtx, in_layout, known_field};

/// The layout the `vmcs12` role stands for.
const VMCS12: &str = "vmcs12";

pub(super) fn load(file: &SourceFile, schema: &mut Schema, diags: &mut Diagnostics) {
    let mut raw = raw::parse_file::<NoHead>(file, &["predicate", "hook", "set"], diags);
    let predicates: Vec<RawPredicate> = raw::entries(file, &mut raw, "predicate", diags);
    let hooks: Vec<RawHook> = raw::entries(file, &mut raw, "hook", diags);
    let sets: Vec<RawSet> = raw::entries(file, &mut raw, "set", diags);

    let mut names = HashMap::new();
    for p in &predicates {
        if !duplicate(file, &mut names, &p.name, "predicate", diags) {
            check_ident(file, &p.name, "predicate", diags);
            schema.predicates.push(Predicate { name: p.name.get_ref().clone(), doc: p.doc.get_ref().clone() });
        }
    }
    let mut names = HashMap::new();
    for h in &hooks {
        if !duplicate(file, &mut names, &h.name, "hook", diags) {
            check_ident(file, &h.name, "hook", diags);
            if let Some(hook) = load_hook(file, schema, h, diags) {
                schema.hooks.push(hook);
            }
        }
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
    super::copycheck::check(schema, diags);
}

fn load_hook(file: &SourceFile, schema: &Schema, h: &RawHook, diags: &mut Diagnostics) -> Option<Hook> {
    let ty = match h.ty.get_ref().as_str() {
        "u16" => Some(Width::W16),
        "u32" => Some(Width::W32),
        "u64" => Some(Width::W64),
        "natural" => Some(Width::Natural),
        other => {
            let msg = format!("unknown hook type `{other}`: expected \"u16\", \"u32\", \"u64\" or \"natural\"");
            diags.push(file.error(h.ty.span(), msg));
            None
        }
    };
    let mut inputs = Vec::new();
    for i in &h.inputs {
        let Some(input) = hook_input(file, schema, i, diags) else { continue };
        if inputs.contains(&input) {
            diags
                .push(file.error(i.span(), format!("hook `{}` names input `{}` twice", h.name.get_ref(), i.get_ref())));
            continue;
        }
        inputs.push(input);
    }
    Some(Hook { name: h.name.get_ref().clone(), doc: h.doc.get_ref().clone(), ty: ty?, inputs })
}

/// `GUEST_CR0` (vmcs12), `vmcs02.GUEST_CR0`, or a capability name (vmcs12's control bit).
fn hook_input(file: &SourceFile, schema: &Schema, text: &S<String>, diags: &mut Diagnostics) -> Option<HookInput> {
    let t = text.get_ref();
    let (role, name) = match t.split_once('.') {
        Some((r, n)) if n.starts_with(|c: char| c.is_ascii_uppercase()) => (Role::parse(r), n),
        Some(_) => return control(file, schema, t, text.span(), diags).map(HookInput::Control),
        None => (Some(Role::Vmcs12), t.as_str()),
    };
    match role {
        Some(r @ (Role::Vmcs12 | Role::Vmcs02 | Role::Vmcs01)) => {
            let id = known_field(file, schema, name, text.span(), diags)?;
            if r == Role::Vmcs12 {
                in_layout(file, schema, VMCS12, id, text.span(), diags)?;
            }
            Some(HookInput::Field(r, id))
        }
        _ => {
            let msg = format!("hook input `{t}`: a field is `NAME` (vmcs12), `vmcs02.NAME` or `vmcs01.NAME`");
            diags.push(file.error(text.span(), msg));
            None
        }
    }
}

/// A capability that stands for a control bit of vmcs12 (and so do its MSR's `requires`).
fn control(
    file: &SourceFile,
    schema: &Schema,
    name: &str,
    span: std::ops::Range<usize>,
    diags: &mut Diagnostics,
) -> Option<usize> {
    let Some(cap) = schema.cap(name) else {
        diags.push(
            file.error(span, format!("unknown capability `{name}`"))
                .with_note("a condition names [[predicate]]s, or capabilities for vmcs12's control bits"),
        );
        return None;
    };
    let (mut todo, mut seen) = (vec![cap], Vec::new());
    while let Some(c) = todo.pop() {
        if seen.contains(&c) {
            continue; // a `requires` cycle (reported by the capability loader)
        }
        seen.push(c);
        if schema.control_bit(c).is_none() {
            let msr = &schema.msr_of(c).name;
            diags.push(
                file.error(span, format!("capability `{}` is no control bit of vmcs12", schema.caps[c].name))
                    .with_note(format!("MSR `{msr}` of capabilities.toml names no control `field`")),
            );
            return None;
        }
        if let Some(r) = &schema.msr_of(c).requires {
            todo.extend(r.caps().into_iter().copied());
        }
    }
    Some(cap)
}

/// Parse a condition and resolve its terms: predicates, or capabilities as control bits.
fn condition(file: &SourceFile, schema: &Schema, text: &S<String>, diags: &mut Diagnostics) -> Option<Gate<Term>> {
    let base = inner(text.span()).start;
    let parsed = match gate::parse(text.get_ref()) {
        Ok(g) => g,
        Err(e) => {
            let message = e.message.replace("a capability name such as `proc2.enable_ept`", "a predicate name");
            diags.push(file.error((base + e.span.start)..(base + e.span.end), format!("invalid condition: {message}")));
            return None;
        }
    };
    parsed.try_map(&mut |n: &gate::Name| {
        let span = (base + n.span.start)..(base + n.span.end);
        if n.text.contains('.') {
            return control(file, schema, &n.text, span, diags).map(Term::Control);
        }
        let p = schema.predicates.iter().position(|p| p.name == n.text);
        if p.is_none() {
            diags.push(
                file.error(span, format!("condition names unknown predicate `{}`", n.text))
                    .with_note("declare it as a [[predicate]]"),
            );
        }
        p.map(Term::Pred)
    })
}

/// A set with its entries.
fn load_set(file: &SourceFile, schema: &Schema, s: &RawSet, diags: &mut Diagnostics) -> Option<CopySet> {
    let role = |r: &S<String>, diags: &mut Diagnostics| {
        let role = Role::parse(r.get_ref());
        if role.is_none() {
            let msg = format!(
                "unknown role `{}`: expected \"vmcs12\", \"vmcs02\", \"vmcs01\", \"shadow\" or \"evmcs\"",
                r.get_ref()
            );
            diags.push(file.error(r.span(), msg));
        }
        role
    };
    let (from, to) = (role(&s.from, diags), role(&s.to, diags));
    let runs = Runs::parse(s.runs.get_ref());
    if runs.is_none() {
        let msg =
            format!("unknown `runs` `{}`: expected \"entry\", \"exit\", \"lazy\" or \"demand\"", s.runs.get_ref());
        diags.push(file.error(s.runs.span(), msg));
    }
    let (from, to, runs) = (from?, to?, runs?);
    if (from == Role::Vmcs12) == (to == Role::Vmcs12) {
        let msg = "a copy set moves fields between vmcs12 and vmcs02, vmcs01, the shadow VMCS or an eVMCS";
        diags.push(file.error(s.to.span(), msg));
        return None;
    }
    let flag = |f: &Option<S<bool>>| f.as_ref().filter(|d| *d.get_ref()).map(|d| d.span());
    let (dirty, clean) = (flag(&s.dirty), flag(&s.clean));
    if let Some(span) = &clean
        && (from != Role::Evmcs || schema.layout("evmcs").is_none_or(|l| l.clean.is_none()))
    {
        let msg = "only sets that read an eVMCS with clean fields can skip clean groups (`clean = true`)";
        diags.push(file.error(span.clone(), msg));
    }
    if let Some(span) = &dirty
        && (from, to, runs) != (Role::Vmcs12, Role::Vmcs02, Runs::Entry)
    {
        let msg = "only entry sets from vmcs12 to vmcs02 track what changed (`dirty = true`)";
        diags.push(file.error(span.clone(), msg));
    }
    if runs == Runs::Lazy && (from, to) != (Role::Vmcs02, Role::Vmcs12) {
        diags.push(file.error(s.runs.span(), "only a set from vmcs02 to vmcs12 is deferred (`runs = \"lazy\"`)"));
    }
    let shadow = s.shadow.as_ref().and_then(|v| match v.get_ref().as_str() {
        "read-only" => Some(ShadowAccess::ReadOnly),
        "read-write" => Some(ShadowAccess::ReadWrite),
        other => {
            let msg = format!("unknown shadow access `{other}`: expected \"read-only\" or \"read-write\"");
            diags.push(file.error(v.span(), msg));
            None
        }
    });
    if (to == Role::Shadow) != s.shadow.is_some() {
        diags.push(file.error(s.to.span(), "a set into the shadow VMCS, and only such a set, says `shadow = ...`"));
    }
    let ctx = SetCtx { file, schema, name: s.name.get_ref(), from, to, shadow };
    let mut items: Vec<CopyItem> = Vec::new();
    for raw in &s.copy {
        let Some(item) = ctx.item(raw, diags) else { continue };
        if items.iter().any(|i| i.field == item.field) {
            let msg = format!("field `{}` is copied twice in set `{}`", raw.field.get_ref(), ctx.name);
            diags.push(file.error(raw.field.span(), msg));
            continue;
        }
        items.push(item);
    }
    let (name, doc) = (s.name.get_ref().clone(), s.doc.get_ref().clone());
    let (dirty, clean) = (dirty.is_some(), clean.is_some());
    Some(CopySet { name, doc, from, to, runs, dirty, clean, shadow, items })
}

fn check_ident(file: &SourceFile, name: &S<String>, what: &str, diags: &mut Diagnostics) {
    let n = name.get_ref();
    let ok = n.starts_with(|c: char| c.is_ascii_lowercase())
        && n.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if !ok {
        diags.push(file.error(name.span(), format!("{what} name `{n}` must be snake_case")));
    }
}
