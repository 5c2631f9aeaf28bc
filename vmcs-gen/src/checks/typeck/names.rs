//! Names, segment parts and calls: what a name in a check resolves to, with suggestions for the
//! ones that resolve to nothing.

use super::{Cx, Env, Frame, MAX_DEFINE_DEPTH, Val};
use crate::model::expr::{Arith, Expr, FactId, IntTy, Ty};
use crate::model::syntax::{Ident, Node, NodeKind, Span};
use crate::model::{Fact, FieldId, Segment};
use crate::suggest::closest;

impl Cx<'_, '_> {
    pub(super) fn name(&mut self, parts: &[Ident], span: &Span) -> Option<Val> {
        let schema = self.env.schema;
        match parts {
            [one] => {
                let t = one.text.as_str();
                if let Some(f) = self.frames.last()
                    && let Some((_, v)) = f.params.iter().find(|(p, _)| p == t)
                {
                    return Some(v.clone());
                }
                if let Some(id) = schema.fields.iter().position(|f| f.name == t) {
                    return Some(self.field_val(id, span));
                }
                if let Some(id) = self.env.facts.iter().position(|f| f.name == t) {
                    return Some(fact_val(self.env.facts, id));
                }
                if self.env.defines.iter().any(|d| d.name == t) || self.env.broken.iter().any(|b| b == t) {
                    return self.call(one, &[], span);
                }
                if Segment::parse(t).is_some() || t == "seg" {
                    return self.err(span, format!("`{t}` is a segment: name one of its parts, e.g. `{t}.base`"));
                }
                let note = suggest(t, names_like(self.env, t));
                self.err_note(span, format!("unknown name `{t}`"), note)
            }
            [seg, attr] if Segment::parse(&seg.text).is_some() || seg.text == "seg" => {
                let s = if seg.text == "seg" {
                    match self.segment {
                        Some(s) => s,
                        None => return self.err(&seg.span, "`seg` is bound only in a rule with `segments = [...]`"),
                    }
                } else {
                    Segment::parse(&seg.text).unwrap()
                };
                self.segment_part(s, attr, span)
            }
            [entry, part] if entry.text == "msr_entry" => self.msr_entry(entry, part, span),
            [group, name] => {
                let full = format!("{}.{}", group.text, name.text);
                let Some(cap) = schema.cap(&full) else {
                    let note = suggest(&full, schema.caps.iter().map(|c| c.name.clone()).collect());
                    return self.err_note(span, format!("unknown control `{full}`"), note);
                };
                let msr = schema.caps[cap].msr;
                if schema.msrs[msr].control_field.is_none() {
                    let m = &schema.msrs[msr].name;
                    return self.err(
                        span,
                        format!("`{full}` is a capability bit of MSR `{m}`, not a control: write `cap({full})`"),
                    );
                }
                Some(Val::Typed(Expr::Control { msr, bit: schema.caps[cap].bit }, Ty::Bool))
            }
            _ => self.err(span, "too many `.`s in a name"),
        }
    }

    /// A part of the VM-entry MSR-load entry being checked (16 bytes at
    /// `VM_ENTRY_MSR_LOAD_ADDR + 16 * n`): `index` (bits 31:0), `reserved` (63:32), `data` (127:64).
    fn msr_entry(&mut self, entry: &Ident, part: &Ident, span: &Span) -> Option<Val> {
        if !self.per_entry {
            return self.err_note(
                &entry.span,
                "`msr_entry` is bound only in a rule of the MSR-loading tier",
                Some("rules with outcome `exit(34)` are checked for each entry of the VM-entry MSR-load list".into()),
            );
        }
        let (offset, ty) = match part.text.as_str() {
            "index" => (0, IntTy::U32),
            "reserved" => (4, IntTy::U32),
            "data" => (8, IntTy::U64),
            other => {
                let note = Some("parts of an MSR-load entry: index reserved data".to_string());
                return self.err_note(&part.span, format!("unknown part `{other}` of an MSR-load entry"), note);
            }
        };
        let Some(id) = self.env.schema.fields.iter().position(|f| f.name == LIST_ADDRESS) else {
            return self.err(span, format!("the schema has no field `{LIST_ADDRESS}`"));
        };
        let Val::Typed(base, _) = self.field_val(id, span) else { return None };
        let addr = entry_address(base, offset);
        Some(Val::Typed(Expr::Mem { ty, addr: Box::new(addr) }, Ty::Int(ty)))
    }

    fn segment_part(&mut self, s: Segment, attr: &Ident, span: &Span) -> Option<Val> {
        let field = |cx: &mut Self, name: String| -> Option<FieldId> {
            let id = cx.env.schema.fields.iter().position(|f| f.name == name);
            if id.is_none() {
                cx.err(span, format!("segment {} has no field `{name}`", s.name()));
            }
            id
        };
        let g = |p: &str| format!("GUEST_{}_{p}", s.name());
        let read = |cx: &mut Self, name: String| field(cx, name).map(|id| cx.field_val(id, span));
        let ar = |cx: &mut Self| read(cx, g("AR_BYTES"));
        let sel = |cx: &mut Self| read(cx, g("SELECTOR"));
        let bit = |v: Val, b: u32| match v {
            Val::Typed(e, _) => Val::Typed(Expr::Bit { value: Box::new(e), bit: b }, Ty::Bool),
            lit => lit,
        };
        let small = |v: Val, hi: u32, lo: u32| match v {
            Val::Typed(e, Ty::Int(ty)) => {
                let bits = Expr::Bits { value: Box::new(e), ty, hi, lo };
                Val::Typed(Expr::Convert { value: Box::new(bits), to: IntTy::U8 }, Ty::Int(IntTy::U8))
            }
            other => other,
        };
        Some(match attr.text.as_str() {
            "sel" => sel(self)?,
            "base" => read(self, g("BASE"))?,
            "limit" => read(self, g("LIMIT"))?,
            "ar" => ar(self)?,
            "type" => small(ar(self)?, 3, 0),
            "s" => bit(ar(self)?, 4),
            "dpl" => small(ar(self)?, 6, 5),
            "p" => bit(ar(self)?, 7),
            "avl" => bit(ar(self)?, 12),
            "l" => bit(ar(self)?, 13),
            "db" => bit(ar(self)?, 14),
            "g" => bit(ar(self)?, 15),
            "unusable" => bit(ar(self)?, 16),
            "usable" => match bit(ar(self)?, 16) {
                Val::Typed(e, t) => Val::Typed(Expr::Not(Box::new(e)), t),
                v => v,
            },
            "rpl" => small(sel(self)?, 1, 0),
            "ti" => bit(sel(self)?, 2),
            "host_sel" => read(self, format!("HOST_{}_SELECTOR", s.name()))?,
            "host_base" => read(self, format!("HOST_{}_BASE", s.name()))?,
            other => {
                let note = Some(format!("segment parts: {}", SEGMENT_PARTS.join(" ")));
                return self.err_note(&attr.span, format!("unknown segment part `{other}`"), note);
            }
        })
    }

    pub(super) fn call(&mut self, name: &Ident, args: &[Node], span: &Span) -> Option<Val> {
        let schema = self.env.schema;
        let arity = |cx: &mut Self, n: usize| -> Option<()> {
            if args.len() != n {
                cx.err(span, format!("`{}` takes {n} argument{}", name.text, if n == 1 { "" } else { "s" }));
                return None;
            }
            Some(())
        };
        let name_arg = |cx: &mut Self| -> Option<(String, Span)> {
            match &args[0].kind {
                NodeKind::Name(parts) => {
                    Some((parts.iter().map(|p| p.text.as_str()).collect::<Vec<_>>().join("."), args[0].span.clone()))
                }
                _ => {
                    cx.err(&args[0].span, format!("`{}` takes a name", name.text));
                    None
                }
            }
        };
        match name.text.as_str() {
            "cap" => {
                arity(self, 1)?;
                let (n, s) = name_arg(self)?;
                match schema.cap(&n) {
                    Some(c) => Some(Val::Typed(Expr::Cap(c), Ty::Bool)),
                    None => {
                        let note = suggest(&n, schema.caps.iter().map(|c| c.name.clone()).collect());
                        self.err_note(&s, format!("unknown capability `{n}`"), note)
                    }
                }
            }
            "msr" | "allowed" => {
                arity(self, 1)?;
                let (n, s) = name_arg(self)?;
                let Some(m) = schema.msrs.iter().position(|m| m.name == n) else {
                    let note = suggest(&n, schema.msrs.iter().map(|m| m.name.clone()).collect());
                    return self.err_note(&s, format!("unknown capability MSR `{n}`"), note);
                };
                if name.text == "msr" {
                    return Some(Val::Typed(Expr::Msr(m), Ty::Int(IntTy::U64)));
                }
                if schema.msrs[m].control_field.is_none() {
                    return self.err(&s, format!("MSR `{n}` reports no control field (it has no `field`)"));
                }
                Some(Val::Typed(Expr::Allowed(m), Ty::Bool))
            }
            "u8" | "u16" | "u32" | "u64" => {
                arity(self, 1)?;
                let to = IntTy::parse(&name.text).unwrap();
                match self.expr(&args[0])? {
                    Val::Typed(e, Ty::Int(_)) => {
                        Some(Val::Typed(Expr::Convert { value: Box::new(e), to }, Ty::Int(to)))
                    }
                    Val::Lit { value, inverted } => {
                        self.adapt(value, inverted, to, &args[0].span).map(|e| Val::Typed(e, Ty::Int(to)))
                    }
                    Val::Typed(_, Ty::Bool) => self.err(&args[0].span, "only integers convert"),
                }
            }
            "mem32" | "mem64" => {
                arity(self, 1)?;
                let ty = if name.text == "mem32" { IntTy::U32 } else { IntTy::U64 };
                let addr = match self.expr(&args[0])? {
                    Val::Typed(e, Ty::Int(IntTy::U64)) => e,
                    Val::Lit { value, inverted } => self.adapt(value, inverted, IntTy::U64, &args[0].span)?,
                    Val::Typed(_, t) => {
                        return self.err(&args[0].span, format!("a physical address is 64-bit, not {}", t.describe()));
                    }
                };
                Some(Val::Typed(Expr::Mem { ty, addr: Box::new(addr) }, Ty::Int(ty)))
            }
            "wrmsr_faults" => {
                arity(self, 2)?;
                let index = match self.expr(&args[0])? {
                    Val::Typed(e, Ty::Int(IntTy::U32)) => e,
                    Val::Lit { value, inverted } => self.adapt(value, inverted, IntTy::U32, &args[0].span)?,
                    Val::Typed(_, t) => {
                        return self.err(&args[0].span, format!("an MSR index is 32-bit, not {}", t.describe()));
                    }
                };
                let value = match self.expr(&args[1])? {
                    Val::Typed(e, Ty::Int(IntTy::U64)) => e,
                    Val::Lit { value, inverted } => self.adapt(value, inverted, IntTy::U64, &args[1].span)?,
                    Val::Typed(_, t) => {
                        return self.err(&args[1].span, format!("an MSR value is 64-bit, not {}", t.describe()));
                    }
                };
                Some(Val::Typed(Expr::WrmsrFaults { index: Box::new(index), value: Box::new(value) }, Ty::Bool))
            }
            other if self.env.broken.iter().any(|b| b == other) => None,
            other => {
                let Some(index) = self.env.defines.iter().position(|d| d.name == other) else {
                    let mut known: Vec<String> = BUILTINS.iter().map(|s| s.to_string()).collect();
                    known.extend(self.env.defines.iter().map(|d| d.name.clone()));
                    let note = suggest(other, known);
                    return self.err_note(&name.span, format!("unknown function `{other}`"), note);
                };
                let d = &self.env.defines[index];
                arity(self, d.params.len())?;
                if self.frames.len() >= MAX_DEFINE_DEPTH {
                    return self.err(span, format!("`{other}` expands too deeply (does it use itself?)"));
                }
                // Arguments are typed where the call is; typed ones are bound once (`let`).
                let mut params = Vec::new();
                let mut lets = Vec::new();
                for (p, a) in d.params.iter().zip(args) {
                    let v = self.expr(a)?;
                    let v = match v {
                        Val::Typed(e, ty) if !matches!(e, Expr::Var { .. } | Expr::Int { .. } | Expr::Bool(_)) => {
                            let var = self.next_var;
                            self.next_var += 1;
                            lets.push((var, e));
                            Val::Typed(Expr::Var { var, ty }, ty)
                        }
                        other => other,
                    };
                    params.push((p.clone(), v));
                }
                let call_site = self.frames.first().map_or(span.clone(), |f| f.call_site.clone());
                self.frames.push(Frame { define: index, params, call_site });
                let body = d.body.clone();
                let v = self.expr(&body);
                self.frames.pop();
                let v = v?;
                Some(lets.into_iter().rev().fold(v, |acc, (var, value)| match acc {
                    Val::Typed(body, ty) => {
                        Val::Typed(Expr::Let { var, value: Box::new(value), body: Box::new(body) }, ty)
                    }
                    lit => lit,
                }))
            }
        }
    }
}

/// The built-in functions (a define may not take their names).
pub(crate) const BUILTINS: [&str; 10] =
    ["cap", "msr", "allowed", "u8", "u16", "u32", "u64", "mem32", "mem64", "wrmsr_faults"];

/// The field holding the VM-entry MSR-load list's address.
pub(crate) const LIST_ADDRESS: &str = "VM_ENTRY_MSR_LOAD_ADDR";

/// `base + 16 * msr_entry + offset`: a part of the entry being checked.
fn entry_address(base: Expr, offset: u64) -> Expr {
    let int = |value| Box::new(Expr::Int { value, ty: IntTy::U64 });
    let step = Expr::Arith { op: Arith::Mul, ty: IntTy::U64, lhs: Box::new(Expr::MsrEntry), rhs: int(16) };
    let entry = Expr::Arith { op: Arith::Add, ty: IntTy::U64, lhs: Box::new(base), rhs: Box::new(step) };
    if offset == 0 {
        entry
    } else {
        Expr::Arith { op: Arith::Add, ty: IntTy::U64, lhs: Box::new(entry), rhs: int(offset) }
    }
}
const SEGMENT_PARTS: [&str; 18] = [
    "sel",
    "base",
    "limit",
    "ar",
    "type",
    "s",
    "dpl",
    "p",
    "avl",
    "l",
    "db",
    "g",
    "unusable",
    "usable",
    "rpl",
    "ti",
    "host_sel",
    "host_base",
];

fn fact_val(facts: &[Fact], id: FactId) -> Val {
    Val::Typed(Expr::Fact(id), facts[id].ty)
}

fn names_like(env: &Env<'_>, t: &str) -> Vec<String> {
    let mut v: Vec<String> = env.facts.iter().map(|f| f.name.clone()).collect();
    v.extend(env.defines.iter().map(|d| d.name.clone()));
    if t.chars().next().is_some_and(|c| c.is_ascii_uppercase()) {
        v.extend(env.schema.fields.iter().map(|f| f.name.clone()));
    }
    v
}

/// "did you mean X?" for the closest known name, if it is close.
fn suggest(name: &str, known: Vec<String>) -> Option<String> {
    let best = closest(name, known.iter().map(String::as_str), name.len().max(3) / 3)?;
    Some(format!("did you mean `{best}`?"))
}
