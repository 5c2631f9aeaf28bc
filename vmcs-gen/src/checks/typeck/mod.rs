//! Name resolution and type checking: syntax tree -> typed [`Expr`], with every error located.
//!
//! Integers carry a width; an operator needs equal widths (convert with `u64(...)` and friends),
//! except that a literal takes the width of the other operand (and must fit it). Segment
//! accessors (`CS.dpl`) expand to field reads, defines to `let` bindings of their arguments.

use crate::encoding::Width;
use crate::gate::Gate;
use crate::model::expr::{Arith, Cmp, Expr, IntTy, Logic, Ty};
use crate::model::syntax::{BinOp, Node, NodeKind, Span, UnOp};
use crate::model::{CapId, Define, Fact, FieldId, Schema, Segment};

/// What names resolve against.
pub struct Env<'a> {
    pub schema: &'a Schema,
    pub facts: &'a [Fact],
    pub defines: &'a [Define],
    /// Defines whose own text has errors (already reported): uses of them report nothing more.
    pub broken: &'a [String],
}

/// Where an error's span lies: in the rule's check, or in a define's body.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    Check,
    Define(usize),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TypeError {
    pub origin: Origin,
    pub span: Span,
    pub message: String,
    pub notes: Vec<String>,
}

/// A field read, located where the rule's text names it (the call of a define that reads it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldUse {
    pub field: FieldId,
    pub span: Span,
}

/// Type-check a rule's check: a boolean over the rule's segment (for `seg.*`) and, for a rule
/// checked on each VM-entry MSR-load entry (`per_entry`), that entry (`msr_entry.*`); its gate
/// must imply the gate of every field it reads.
pub fn check_rule(
    env: &Env<'_>,
    node: &Node,
    segment: Option<Segment>,
    per_entry: bool,
    gate: Option<&Gate<CapId>>,
) -> Result<Expr, Vec<TypeError>> {
    let mut cx = Cx { env, errors: Vec::new(), uses: Vec::new(), next_var: 0, frames: Vec::new(), segment, per_entry };
    let v = cx.expr(node);
    let e = cx.want_bool(v, node.span.clone());
    for u in std::mem::take(&mut cx.uses) {
        let f = &env.schema.fields[u.field];
        let Some(fg) = &f.gate else { continue };
        if !implies(gate, fg) {
            let need = env.schema.gate_text(fg);
            let have = gate.map_or("the rule has no gate".to_string(), |g| {
                format!("the rule's gate `{}` does not imply it", env.schema.gate_text(g))
            });
            cx.errors.push(TypeError {
                origin: Origin::Check,
                span: u.span,
                message: format!("`{}` exists only if `{need}`, but {have}", f.name),
                notes: vec![format!("add `gate = \"{need}\"` to the rule, so that it never reads an absent field")],
            });
        }
    }
    // No expression without an error: a broken define (reported on its own) was used.
    match e {
        Some(e) if cx.errors.is_empty() => Ok(e),
        _ => Err(cx.errors),
    }
}

/// Type-check a define on its own (with untyped parameters it cannot be checked fully; this
/// reports syntax-level misuse such as unknown names that are not parameters).
pub fn check_define_names(env: &Env<'_>, index: usize) -> Vec<TypeError> {
    let d = &env.defines[index];
    let mut errors = Vec::new();
    collect_unknown(env, d, &d.body, index, &mut errors);
    errors
}

fn collect_unknown(env: &Env<'_>, d: &Define, n: &Node, index: usize, out: &mut Vec<TypeError>) {
    match &n.kind {
        NodeKind::Name(parts) if parts.len() == 1 => {
            let t = &parts[0].text;
            let known = d.params.contains(t)
                || env.schema.field(t).is_some()
                || env.facts.iter().any(|f| &f.name == t)
                || env.defines.iter().any(|x| &x.name == t)
                || env.broken.contains(t);
            if !known {
                out.push(TypeError {
                    origin: Origin::Define(index),
                    span: parts[0].span.clone(),
                    message: format!("unknown name `{t}`"),
                    notes: vec![format!("parameters of `{}`: {}", d.name, d.params.join(", "))],
                });
            }
        }
        NodeKind::Call { args, .. } => args.iter().for_each(|a| collect_unknown(env, d, a, index, out)),
        NodeKind::Unary { operand, .. } => collect_unknown(env, d, operand, index, out),
        NodeKind::Binary { lhs, rhs, .. } => {
            collect_unknown(env, d, lhs, index, out);
            collect_unknown(env, d, rhs, index, out);
        }
        NodeKind::Bit { value, .. } | NodeKind::Bits { value, .. } | NodeKind::In { value, .. } => {
            collect_unknown(env, d, value, index, out)
        }
        _ => {}
    }
}

/// Does `rule` (None: always) imply `field`, for every assignment of the capabilities they name?
pub fn implies(rule: Option<&Gate<CapId>>, field: &Gate<CapId>) -> bool {
    let mut caps: Vec<CapId> = field.caps().into_iter().copied().collect();
    if let Some(r) = rule {
        caps.extend(r.caps().into_iter().copied());
    }
    caps.sort();
    caps.dedup();
    if caps.len() > 16 {
        return false;
    }
    (0u32..1 << caps.len()).all(|bits| {
        let mut has = |c: &CapId| bits >> caps.iter().position(|x| x == c).unwrap() & 1 == 1;
        !rule.is_none_or(|r| r.eval(&mut has)) || field.eval(&mut has)
    })
}

mod names;

pub(crate) use names::BUILTINS;

/// A value being typed: a typed expression, or a literal whose width the context decides.
#[derive(Clone, Debug)]
enum Val {
    Typed(Expr, Ty),
    /// `value`, or its complement within the width it takes (`~0xfff`).
    Lit {
        value: u64,
        inverted: bool,
    },
}

/// A define being expanded: its parameters' bindings, and the rule-text span of the outermost call.
struct Frame {
    define: usize,
    params: Vec<(String, Val)>,
    call_site: Span,
}

/// The type checker's state over one rule (instance).
struct Cx<'a, 'e> {
    env: &'a Env<'e>,
    errors: Vec<TypeError>,
    uses: Vec<FieldUse>,
    next_var: usize,
    frames: Vec<Frame>,
    segment: Option<Segment>,
    /// `msr_entry` is bound (a rule of the MSR-loading tier).
    per_entry: bool,
}

const MAX_DEFINE_DEPTH: usize = 8;

impl Cx<'_, '_> {
    fn origin(&self) -> Origin {
        self.frames.last().map_or(Origin::Check, |f| Origin::Define(f.define))
    }
    fn err(&mut self, span: &Span, message: impl Into<String>) -> Option<Val> {
        self.err_note(span, message, None)
    }
    fn err_note(&mut self, span: &Span, message: impl Into<String>, note: Option<String>) -> Option<Val> {
        let origin = self.origin();
        let notes = note.into_iter().collect();
        self.errors.push(TypeError { origin, span: span.clone(), message: message.into(), notes });
        None
    }
    /// The span to blame a field read on in the rule's text.
    fn use_span(&self, span: &Span) -> Span {
        self.frames.first().map_or(span.clone(), |f| f.call_site.clone())
    }

    fn expr(&mut self, n: &Node) -> Option<Val> {
        match &n.kind {
            NodeKind::Int(v) => Some(Val::Lit { value: *v, inverted: false }),
            NodeKind::Bool(b) => Some(Val::Typed(Expr::Bool(*b), Ty::Bool)),
            NodeKind::Name(parts) => self.name(parts, &n.span),
            NodeKind::Call { name, args } => self.call(name, args, &n.span),
            NodeKind::Unary { op: UnOp::Not, operand } => {
                let v = self.expr(operand)?;
                let e = self.want_bool(Some(v), operand.span.clone())?;
                Some(Val::Typed(Expr::Not(Box::new(e)), Ty::Bool))
            }
            NodeKind::Unary { op: UnOp::BitNot, operand } => match self.expr(operand)? {
                Val::Lit { value, inverted } => Some(Val::Lit { value, inverted: !inverted }),
                Val::Typed(e, Ty::Int(ty)) => Some(Val::Typed(Expr::BitNot { ty, value: Box::new(e) }, Ty::Int(ty))),
                Val::Typed(_, Ty::Bool) => self.err(&operand.span, "`~` needs an integer; use `!` for a boolean"),
            },
            NodeKind::Binary { op, lhs, rhs } => self.binary(*op, lhs, rhs, &n.span),
            NodeKind::Bit { value, bit } => {
                let (e, ty) = self.want_int(value)?;
                if bit.0 >= ty.bits() as u64 {
                    return self.err(&bit.1, format!("bit {} is outside {}", bit.0, Ty::Int(ty).describe()));
                }
                Some(Val::Typed(Expr::Bit { value: Box::new(e), bit: bit.0 as u32 }, Ty::Bool))
            }
            NodeKind::Bits { value, hi, lo } => {
                let (e, ty) = self.want_int(value)?;
                if hi.0 >= ty.bits() as u64 {
                    return self.err(&hi.1, format!("bit {} is outside {}", hi.0, Ty::Int(ty).describe()));
                }
                if lo.0 > hi.0 {
                    return self.err(&(hi.1.start..lo.1.end), "write bit ranges high:low");
                }
                let bits = Expr::Bits { value: Box::new(e), ty, hi: hi.0 as u32, lo: lo.0 as u32 };
                Some(Val::Typed(bits, Ty::Int(ty)))
            }
            NodeKind::In { value, set } => {
                let (e, ty) = self.want_int(value)?;
                let mut ranges = Vec::new();
                for (lo, hi, span) in set {
                    if *hi > ty.mask() {
                        return self.err(span, format!("{hi:#x} does not fit {}", Ty::Int(ty).describe()));
                    }
                    ranges.push((*lo, *hi));
                }
                Some(Val::Typed(Expr::In { value: Box::new(e), set: ranges }, Ty::Bool))
            }
        }
    }

    /// An integer operand with a width of its own (a literal has none to test bits of).
    fn want_int(&mut self, n: &Node) -> Option<(Expr, IntTy)> {
        match self.expr(n)? {
            Val::Typed(e, Ty::Int(ty)) => Some((e, ty)),
            Val::Typed(_, Ty::Bool) => {
                self.err(&n.span, "expected an integer, found a boolean");
                None
            }
            Val::Lit { .. } => {
                self.err(&n.span, "a literal has no width here: convert it, e.g. u64(...)");
                None
            }
        }
    }

    fn want_bool(&mut self, v: Option<Val>, span: Span) -> Option<Expr> {
        match v? {
            Val::Typed(e, Ty::Bool) => Some(e),
            Val::Typed(_, t) => {
                self.err(&span, format!("expected a boolean, found {}", t.describe()));
                None
            }
            Val::Lit { .. } => {
                self.err(&span, "expected a boolean, found an integer literal");
                None
            }
        }
    }

    /// A literal in a context of width `ty`.
    fn adapt(&mut self, value: u64, inverted: bool, ty: IntTy, span: &Span) -> Option<Expr> {
        let v = if inverted { !value & ty.mask() } else { value };
        if v > ty.mask() {
            self.err(span, format!("{v:#x} does not fit {}", Ty::Int(ty).describe()));
            return None;
        }
        Some(Expr::Int { value: v, ty })
    }

    fn binary(&mut self, op: BinOp, lhs: &Node, rhs: &Node, span: &Span) -> Option<Val> {
        let l = self.expr(lhs);
        let r = self.expr(rhs);
        let (l, r) = (l?, r?);
        if op.is_logic() {
            let l = self.want_bool(Some(l), lhs.span.clone());
            let r = self.want_bool(Some(r), rhs.span.clone());
            let logic = match op {
                BinOp::And => Logic::And,
                BinOp::Or => Logic::Or,
                _ => Logic::Implies,
            };
            return Some(Val::Typed(Expr::Logic { op: logic, lhs: Box::new(l?), rhs: Box::new(r?) }, Ty::Bool));
        }
        if matches!(op, BinOp::Shl | BinOp::Shr) {
            let (le, ty) = match l {
                Val::Typed(e, Ty::Int(ty)) => (e, ty),
                Val::Lit { value, inverted } => (self.adapt(value, inverted, IntTy::U64, &lhs.span)?, IntTy::U64),
                Val::Typed(_, Ty::Bool) => return self.err(&lhs.span, "a shift needs an integer"),
            };
            let re = match r {
                Val::Typed(e, Ty::Int(_)) => e,
                Val::Lit { value, inverted } => self.adapt(value, inverted, IntTy::U64, &rhs.span)?,
                Val::Typed(_, Ty::Bool) => return self.err(&rhs.span, "a shift amount is an integer"),
            };
            let op = if op == BinOp::Shl { Arith::Shl } else { Arith::Shr };
            return Some(Val::Typed(Expr::Arith { op, ty, lhs: Box::new(le), rhs: Box::new(re) }, Ty::Int(ty)));
        }
        // Both literals: fold.
        if let (Val::Lit { value: a, inverted: ia }, Val::Lit { value: b, inverted: ib }) = (&l, &r) {
            let (a, b) = (if *ia { !a } else { *a }, if *ib { !b } else { *b });
            return Some(match fold(op, a, b) {
                Folded::Int(v) => Val::Lit { value: v, inverted: false },
                Folded::Bool(v) => Val::Typed(Expr::Bool(v), Ty::Bool),
            });
        }
        let (le, lt, re, rt) = match (l, r) {
            (Val::Typed(le, lt), Val::Typed(re, rt)) => (le, lt, re, rt),
            (Val::Typed(le, Ty::Int(ty)), Val::Lit { value, inverted }) => {
                (le, Ty::Int(ty), self.adapt(value, inverted, ty, &rhs.span)?, Ty::Int(ty))
            }
            (Val::Lit { value, inverted }, Val::Typed(re, Ty::Int(ty))) => {
                (self.adapt(value, inverted, ty, &lhs.span)?, Ty::Int(ty), re, Ty::Int(ty))
            }
            _ => return self.err(span, format!("`{}` cannot mix a boolean and an integer", op.symbol())),
        };
        if lt != rt {
            let note = Some("convert one side, e.g. u64(...), so that both have one width".to_string());
            return self.err_note(
                span,
                format!("width mismatch: `{}` between {} and {}", op.symbol(), lt.describe(), rt.describe()),
                note,
            );
        }
        if op.is_comparison() {
            let cmp = match op {
                BinOp::Eq => Cmp::Eq,
                BinOp::Ne => Cmp::Ne,
                BinOp::Lt => Cmp::Lt,
                BinOp::Le => Cmp::Le,
                BinOp::Gt => Cmp::Gt,
                _ => Cmp::Ge,
            };
            if lt == Ty::Bool && !matches!(cmp, Cmp::Eq | Cmp::Ne) {
                return self.err(span, format!("`{}` compares integers, not booleans", op.symbol()));
            }
            return Some(Val::Typed(Expr::Compare { op: cmp, lhs: Box::new(le), rhs: Box::new(re) }, Ty::Bool));
        }
        let Ty::Int(ty) = lt else {
            return self.err(span, format!("`{}` needs integers; use `&&`, `||` or `!` for booleans", op.symbol()));
        };
        let op = match op {
            BinOp::BitOr => Arith::BitOr,
            BinOp::BitXor => Arith::BitXor,
            BinOp::BitAnd => Arith::BitAnd,
            BinOp::Add => Arith::Add,
            BinOp::Sub => Arith::Sub,
            _ => Arith::Mul,
        };
        Some(Val::Typed(Expr::Arith { op, ty, lhs: Box::new(le), rhs: Box::new(re) }, Ty::Int(ty)))
    }

    fn field_val(&mut self, id: FieldId, span: &Span) -> Val {
        let use_span = self.use_span(span);
        self.uses.push(FieldUse { field: id, span: use_span });
        let ty = match self.env.schema.fields[id].width {
            Width::W16 => IntTy::U16,
            Width::W32 => IntTy::U32,
            Width::W64 | Width::Natural => IntTy::U64,
        };
        Val::Typed(Expr::Field(id), Ty::Int(ty))
    }
}

enum Folded {
    Int(u64),
    Bool(bool),
}

fn fold(op: BinOp, a: u64, b: u64) -> Folded {
    use BinOp::*;
    match op {
        Eq => Folded::Bool(a == b),
        Ne => Folded::Bool(a != b),
        Lt => Folded::Bool(a < b),
        Le => Folded::Bool(a <= b),
        Gt => Folded::Bool(a > b),
        Ge => Folded::Bool(a >= b),
        BitOr => Folded::Int(a | b),
        BitXor => Folded::Int(a ^ b),
        BitAnd => Folded::Int(a & b),
        Add => Folded::Int(a.wrapping_add(b)),
        Sub => Folded::Int(a.wrapping_sub(b)),
        Mul => Folded::Int(a.wrapping_mul(b)),
        Shl | Shr | Implies | Or | And => unreachable!("handled before folding"),
    }
}
