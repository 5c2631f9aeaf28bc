//! copysets.toml: predicates, hooks and copy sets between vmcs12 and vmcs02, vmcs01, the shadow
//! VMCS or an eVMCS. The invariants across sets are checked afterwards (`copycheck`).

use std::collections::HashMap;

use super::{duplicate, inner};
use crate::diag::{Diagnostics, SourceFile};
use crate::encoding::{Kind, Width};
use crate::gate::{self, Gate};
use crate::model::{
    CopyItem, CopySet, FieldId, Hook, HookInput, Predicate, Role, Runs, Schema, ShadowAccess, Source, Term, Treatment,
};
use crate::raw::{self, NoHead, RawCopyItem, RawHook, RawMask, RawPredicate, RawSet, S};

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

/// A set, and the span of each of its entries' `field`.
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

/// What resolving one set's entries needs.
struct SetCtx<'a> {
    file: &'a SourceFile,
    schema: &'a Schema,
    name: &'a str,
    from: Role,
    to: Role,
    shadow: Option<ShadowAccess>,
}

impl SetCtx<'_> {
    fn item(&self, raw: &RawCopyItem, diags: &mut Diagnostics) -> Option<CopyItem> {
        let (file, schema) = (self.file, self.schema);
        let span = raw.field.span();
        let field = known_field(file, schema, raw.field.get_ref(), span.clone(), diags)?;
        if let Some(layout) = self.to.layout() {
            in_layout(file, schema, layout, field, span.clone(), diags)?;
        }
        let f = &schema.fields[field];
        if f.kind == Kind::ReadOnly
            && (matches!(self.to, Role::Vmcs02 | Role::Vmcs01) || self.shadow == Some(ShadowAccess::ReadWrite))
        {
            let why = if self.shadow.is_some() {
                "L1 may not VMWRITE a read-only field; shadow it read-only"
            } else {
                "VMWRITE of a VM-exit information field into a VMCS the processor runs fails (VM-instruction error 13)"
            };
            let msg = format!("read-only field `{}` cannot be a destination of set `{}`", f.name, self.name);
            diags.push(file.error(span, msg).with_note(why));
            return None;
        }
        let parts = Parts { from: &raw.from, value: &raw.value, hook: &raw.hook, mask: &raw.mask, merge: &raw.merge };
        let treat = self.treatment(field, &parts, span.clone(), true, diags);
        let when = raw.when.as_ref().map(|w| condition(file, schema, w, diags));
        let unless = raw.unless.as_ref().map(|w| condition(file, schema, w, diags));
        let otherwise = raw.otherwise.as_ref().map(|e| {
            if raw.when.is_none() && raw.unless.is_none() {
                diags.push(file.error(e.span(), "an `else` needs a `when` or `unless` condition"));
            }
            let r = e.get_ref();
            let parts = Parts { from: &r.from, value: &r.value, hook: &r.hook, mask: &r.mask, merge: &r.merge };
            self.treatment(field, &parts, e.span(), false, diags)
        });
        let (treat, when, unless) =
            (treat?, when.unwrap_or(Some(Gate::All(vec![])))?, unless.unwrap_or(Some(Gate::All(vec![])))?);
        let otherwise = match otherwise {
            Some(t) => Some(t?),
            None => None,
        };
        if let Some(layout) = self.from.layout()
            && [Some(&treat)].into_iter().chain([otherwise.as_ref()]).flatten().any(|t| t.source == Source::Copy)
        {
            in_layout(file, schema, layout, field, span.clone(), diags)?;
        }
        let cond = |g: Gate<Term>| if matches!(&g, Gate::All(v) if v.is_empty()) { None } else { Some(g) };
        let pos = schema.pos(file, span.clone());
        let item = CopyItem { field, treat, when: cond(when), unless: cond(unless), otherwise, pos };
        if self.to == Role::Vmcs02
            && item.treatments().any(Treatment::is_raw)
            && let Some(why) = f.vmcs02_owner()
        {
            let msg = format!("set `{}` copies `{}` into vmcs02 as L1 wrote it, but {why}", self.name, f.name);
            let note = "give it a `hook` (a method of NestedHooks that computes vmcs02's value) or a `value`";
            diags.push(file.error(span, msg).with_note(note));
            return None;
        }
        Some(item)
    }

    /// Resolve `from`/`value`/`hook` and `mask`/`merge`; `copy_ok`: no source means a plain copy.
    fn treatment(
        &self,
        field: FieldId,
        p: &Parts,
        at: std::ops::Range<usize>,
        copy_ok: bool,
        diags: &mut Diagnostics,
    ) -> Option<Treatment> {
        let (file, schema) = (self.file, self.schema);
        let f = &schema.fields[field];
        let given: Vec<std::ops::Range<usize>> =
            [p.from.as_ref().map(|x| x.span()), p.value.as_ref().map(|x| x.span()), p.hook.as_ref().map(|x| x.span())]
                .into_iter()
                .flatten()
                .collect();
        if given.len() > 1 {
            diags.push(file.error(given[1].clone(), "a value comes from one of `from`, `value` or `hook`"));
            return None;
        }
        let source = if let Some(g) = p.from {
            let id = known_field(file, schema, g.get_ref(), g.span(), diags)?;
            if let Some(layout) = self.from.layout() {
                in_layout(file, schema, layout, id, g.span(), diags)?;
            }
            if schema.fields[id].width != f.width {
                let msg = format!(
                    "`{}` is {}, `{}` is {}",
                    g.get_ref(),
                    schema.fields[id].width.describe(),
                    f.name,
                    f.width.describe()
                );
                diags.push(file.error(g.span(), msg));
                return None;
            }
            Source::From(id)
        } else if let Some(v) = p.value {
            Source::Value(self.bits_number(*v.get_ref(), f.width, v.span(), diags)?)
        } else if let Some(h) = p.hook {
            Source::Hook(self.hook(h, field, diags)?)
        } else if copy_ok {
            Source::Copy
        } else {
            diags.push(file.error(at, "an `else` says where the value comes from: `from`, `value` or `hook`"));
            return None;
        };
        let mask = p.mask.as_ref().map(|m| self.bits(m, field, diags));
        let merge = p.merge.as_ref().map(|m| self.bits(m, field, diags));
        Some(Treatment {
            source,
            mask: mask.map_or(Some(None), |m| m.map(Some))?,
            merge: merge.map_or(Some(None), |m| m.map(Some))?,
        })
    }

    fn hook(&self, h: &S<String>, field: FieldId, diags: &mut Diagnostics) -> Option<usize> {
        let (file, schema) = (self.file, self.schema);
        let f = &schema.fields[field];
        let Some(id) = schema.hook(h.get_ref()) else {
            diags.push(file.error(h.span(), format!("hook `{}` has no declared type", h.get_ref())).with_note(
                format!(
                    "declare it as a [[hook]] with `type = \"{}\"` (the width of `{}`) and its `inputs`",
                    type_name(f.width),
                    f.name
                ),
            ));
            return None;
        };
        let hook = &schema.hooks[id];
        if hook.ty != f.width {
            let msg = format!(
                "hook `{}` returns {} but `{}` is {}",
                hook.name,
                type_name(hook.ty),
                f.name,
                f.width.describe()
            );
            diags.push(file.error(h.span(), msg));
            return None;
        }
        for input in &hook.inputs {
            if let HookInput::Field(r, x) = *input
                && r != self.from
                && r != self.to
            {
                let msg = format!(
                    "hook `{}` reads {}.{}, but set `{}` moves {} -> {}",
                    hook.name,
                    r.as_str(),
                    schema.fields[x].name,
                    self.name,
                    self.from.as_str(),
                    self.to.as_str()
                );
                diags.push(file.error(h.span(), msg));
                return None;
            }
        }
        Some(id)
    }

    /// A mask or merge: a number that fits the field, or control bits of the field.
    fn bits(&self, b: &S<RawMask>, field: FieldId, diags: &mut Diagnostics) -> Option<u64> {
        let (file, schema) = (self.file, self.schema);
        let f = &schema.fields[field];
        match b.get_ref() {
            RawMask::Number(n) => self.bits_number(*n, f.width, b.span(), diags),
            RawMask::Caps(text) => {
                let mut mask = 0u64;
                let mut ok = true;
                for name in text.split('|').map(str::trim) {
                    match schema.cap(name).and_then(|c| schema.control_bit(c).map(|cb| (c, cb))) {
                        Some((_, (cf, bit))) if cf == field => mask |= 1 << bit,
                        Some((c, _)) => {
                            let msg = format!(
                                "`{name}` is a bit of `{}`, not of `{}`",
                                schema.fields[schema.control_bit(c).unwrap().0].name,
                                f.name
                            );
                            diags.push(file.error(b.span(), msg));
                            ok = false;
                        }
                        None => {
                            diags.push(file.error(b.span(), format!("`{name}` is no control bit of a VMCS field")));
                            ok = false;
                        }
                    }
                }
                ok.then_some(mask)
            }
        }
    }

    /// A constant for a field of `width`: fits it, or is negative within it (two's complement).
    fn bits_number(&self, n: i64, width: Width, at: std::ops::Range<usize>, diags: &mut Diagnostics) -> Option<u64> {
        let bits = width.bytes() * 8;
        let ok = bits == 64 || (n >= -(1i64 << (bits - 1)) && n < (1i64 << bits));
        if !ok {
            diags.push(self.file.error(at, format!("{n:#x} does not fit a {} field", width.describe())));
            return None;
        }
        Some(if bits == 64 { n as u64 } else { (n as u64) & ((1u64 << bits) - 1) })
    }
}

/// The keys of a treatment, from a `copy` entry or its `else`.
struct Parts<'a> {
    from: &'a Option<S<String>>,
    value: &'a Option<S<i64>>,
    hook: &'a Option<S<String>>,
    mask: &'a Option<S<RawMask>>,
    merge: &'a Option<S<RawMask>>,
}

fn type_name(w: Width) -> &'static str {
    match w {
        Width::W16 => "u16",
        Width::W32 => "u32",
        Width::W64 => "u64",
        Width::Natural => "natural",
    }
}

fn known_field(
    file: &SourceFile,
    schema: &Schema,
    name: &str,
    span: std::ops::Range<usize>,
    diags: &mut Diagnostics,
) -> Option<FieldId> {
    let id = schema.fields.iter().position(|f| f.name == name);
    if id.is_none() {
        diags.push(file.error(span, format!("unknown field `{name}`")));
    }
    id
}

fn in_layout(
    file: &SourceFile,
    schema: &Schema,
    layout: &str,
    id: FieldId,
    span: std::ops::Range<usize>,
    diags: &mut Diagnostics,
) -> Option<()> {
    let l = schema.layout(layout);
    if l.is_some_and(|l| l.members.iter().any(|m| m.field == Some(id))) {
        return Some(());
    }
    let msg = match l {
        Some(_) => format!("field `{}` has no member in layout `{layout}`", schema.fields[id].name),
        None => format!("role `{layout}` needs a layout `{layout}`"),
    };
    diags.push(file.error(span, msg));
    None
}

fn check_ident(file: &SourceFile, name: &S<String>, what: &str, diags: &mut Diagnostics) {
    let n = name.get_ref();
    let ok = n.starts_with(|c: char| c.is_ascii_lowercase())
        && n.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if !ok {
        diags.push(file.error(name.span(), format!("{what} name `{n}` must be snake_case")));
    }
}
