//! One copy set's entries: the field, its treatment (copy, value, hook, mask, merge), its
//! condition and the rules a destination imposes (vmcs02 fields L0 owns, a layout's members).

use crate::diag::{Diagnostics, SourceFile};
use crate::encoding::{Kind, Width};
use crate::gate::Gate;
use crate::model::{CopyItem, FieldId, HookInput, Role, Schema, ShadowAccess, Source, Term, Treatment};
use crate::raw::{RawCopyItem, RawMask, S};

use super::condition;

/// What resolving one set's entries needs.
pub(super) struct SetCtx<'a> {
    pub(super) file: &'a SourceFile,
    pub(super) schema: &'a Schema,
    pub(super) name: &'a str,
    pub(super) from: Role,
    pub(super) to: Role,
    pub(super) shadow: Option<ShadowAccess>,
}

impl SetCtx<'_> {
    pub(super) fn item(&self, raw: &RawCopyItem, diags: &mut Diagnostics) -> Option<CopyItem> {
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
        p: &Parts<'_>,
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

pub(super) fn known_field(
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

pub(super) fn in_layout(
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
