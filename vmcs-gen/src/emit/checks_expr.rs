//! Rust for typed check expressions. Every integer is a `u64` holding a value of its width, so the
//! code only masks where a width can overflow (`<<`, `+`, `-`, `*`, `~`, conversions down).

use proc_macro2::{Literal, TokenStream};
use quote::quote;

use super::ident;
use crate::model::expr::{Arith, Cmp, Expr, IntTy, Logic, Ty};
use crate::model::{FieldId, MsrId, Schema};

/// Local variable holding a field's value: `f_guest_cr0`.
pub(super) fn field_var(schema: &Schema, f: FieldId) -> proc_macro2::Ident {
    ident(&format!("f_{}", schema.fields[f].name.to_ascii_lowercase()))
}

/// The control word of an MSR, in the shared context: `cx.ctl_proc2`.
pub(super) fn control_var(schema: &Schema, m: MsrId) -> proc_macro2::Ident {
    ident(&format!("ctl_{}", schema.msrs[m].name))
}

/// An MSR value, in the shared context: `cx.msr_misc`.
pub(super) fn msr_var(schema: &Schema, m: MsrId) -> proc_macro2::Ident {
    ident(&format!("msr_{}", schema.msrs[m].name))
}

fn mask_lit(bits: u32) -> TokenStream {
    num(if bits >= 64 { u64::MAX } else { (1u64 << bits) - 1 })
}

/// A literal as the SDM would write it: small numbers in decimal, others in hex grouped by 4 digits.
pub(super) fn num(v: u64) -> TokenStream {
    if v < 16 {
        let l = Literal::u64_unsuffixed(v);
        return quote!(#l);
    }
    let digits = format!("{v:x}");
    let mut grouped = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 4 == 0 {
            grouped.push('_');
        }
        grouped.push(c);
    }
    let l: Literal = format!("0x{grouped}").parse().unwrap();
    quote!(#l)
}

/// A boolean expression that holds when `e` does not (`a => b` fails as `a && !b`).
pub(super) fn negate(schema: &Schema, e: &Expr) -> TokenStream {
    match e {
        Expr::Not(x) => emit(schema, x),
        Expr::Logic { op: Logic::Implies, lhs, rhs } => {
            let (l, r) = (emit(schema, lhs), negate(schema, rhs));
            quote!((#l && #r))
        }
        _ => {
            let x = emit(schema, e);
            quote!(!#x)
        }
    }
}

/// A boolean (`Ty::Bool`) or u64 expression.
pub(super) fn emit(schema: &Schema, e: &Expr) -> TokenStream {
    let facts = &schema.checks.facts;
    match e {
        Expr::Bool(b) => quote!(#b),
        Expr::Int { value, .. } => num(*value),
        Expr::Field(f) => {
            let v = field_var(schema, *f);
            quote!(#v)
        }
        Expr::Control { msr, bit } => {
            let v = control_var(schema, *msr);
            bit_test(quote!(cx.#v), *bit)
        }
        Expr::Allowed(m) => {
            let v = ident(&format!("allowed_{}", schema.msrs[*m].name));
            quote!(cx.#v)
        }
        Expr::Cap(c) => {
            let v = cap_var(schema, *c);
            quote!(caps.#v)
        }
        Expr::Msr(m) => {
            let v = msr_var(schema, *m);
            quote!(caps.#v)
        }
        Expr::Fact(f) => {
            let name = ident(&facts[*f].name);
            match facts[*f].ty {
                Ty::Bool | Ty::Int(IntTy::U64) => quote!(facts.#name),
                Ty::Int(_) => quote!(u64::from(facts.#name)),
            }
        }
        Expr::Mem { ty, addr } => {
            let a = emit(schema, addr);
            let bytes = Literal::u32_unsuffixed(ty.bits() / 8);
            quote!(crate::entry::read_memory(memory, #a, #bytes))
        }
        Expr::Not(x) => match &**x {
            Expr::Not(inner) => emit(schema, inner),
            _ => {
                let x = emit(schema, x);
                quote!(!#x)
            }
        },
        Expr::BitNot { ty, value } => {
            let v = emit(schema, value);
            let m = mask_lit(ty.bits());
            if *ty == IntTy::U64 { quote!((!#v)) } else { quote!((!#v & #m)) }
        }
        Expr::Logic { op, lhs, rhs } => {
            let (l, r) = (emit(schema, lhs), emit(schema, rhs));
            match op {
                Logic::And => quote!((#l && #r)),
                Logic::Or => quote!((#l || #r)),
                Logic::Implies => quote!((!#l || #r)),
            }
        }
        Expr::Compare { op, lhs, rhs } => {
            let (l, r) = (emit(schema, lhs), emit(schema, rhs));
            match op {
                Cmp::Eq => quote!((#l == #r)),
                Cmp::Ne => quote!((#l != #r)),
                Cmp::Lt => quote!((#l < #r)),
                Cmp::Le => quote!((#l <= #r)),
                Cmp::Gt => quote!((#l > #r)),
                Cmp::Ge => quote!((#l >= #r)),
            }
        }
        Expr::Arith { op, ty, lhs, rhs } => arith(schema, *op, *ty, lhs, rhs),
        Expr::Bit { value, bit } => bit_test(emit(schema, value), *bit),
        Expr::Bits { value, hi, lo, .. } => {
            let v = emit(schema, value);
            let m = mask_lit(hi - lo + 1);
            if *lo == 0 {
                quote!((#v & #m))
            } else {
                let lo = Literal::u32_unsuffixed(*lo);
                quote!(((#v >> #lo) & #m))
            }
        }
        Expr::In { value, set } => {
            let v = emit(schema, value);
            let mut ranges = set.clone();
            ranges.sort();
            let mut merged: Vec<(u64, u64)> = Vec::new();
            for (lo, hi) in ranges {
                match merged.last_mut() {
                    Some(last) if lo <= last.1.saturating_add(1) => last.1 = last.1.max(hi),
                    _ => merged.push((lo, hi)),
                }
            }
            let pats = merged.iter().map(|(lo, hi)| {
                let (a, b) = (Literal::u64_unsuffixed(*lo), Literal::u64_unsuffixed(*hi));
                if lo == hi { quote!(#a) } else { quote!(#a..=#b) }
            });
            quote!(matches!(#v, #(#pats)|*))
        }
        Expr::Convert { value, to } => {
            let v = emit(schema, value);
            if *to == IntTy::U64 || narrow_enough(value, *to) {
                v
            } else {
                let m = mask_lit(to.bits());
                quote!((#v & #m))
            }
        }
        Expr::Let { var, value, body } => {
            let (name, v, b) = (ident(&format!("v{var}")), emit(schema, value), emit(schema, body));
            quote!({ let #name = #v; #b })
        }
        Expr::Var { var, .. } => {
            let name = ident(&format!("v{var}"));
            quote!(#name)
        }
        Expr::MsrEntry => quote!(msr_entry),
        Expr::WrmsrFaults { index, value } => {
            let (i, v) = (emit(schema, index), emit(schema, value));
            quote!(memory.wrmsr_faults(#i as u32, #v))
        }
    }
}

/// Is the value already below 2^to.bits() (e.g. bits 6:5 converted to u8)?
fn narrow_enough(value: &Expr, to: IntTy) -> bool {
    match value {
        Expr::Bits { hi, lo, .. } => hi - lo < to.bits(),
        _ => false,
    }
}

fn bit_test(v: TokenStream, bit: u32) -> TokenStream {
    if bit == 0 {
        quote!((#v & 1 != 0))
    } else {
        let b = Literal::u32_unsuffixed(bit);
        quote!(((#v >> #b) & 1 != 0))
    }
}

fn arith(schema: &Schema, op: Arith, ty: IntTy, lhs: &Expr, rhs: &Expr) -> TokenStream {
    let (l, r) = (emit(schema, lhs), emit(schema, rhs));
    let bits = ty.bits();
    let m = mask_lit(bits);
    let masked = |t: TokenStream| if ty == IntTy::U64 { quote!(#t) } else { quote!((#t & #m)) };
    let constant = match rhs {
        Expr::Int { value, .. } if *value < bits as u64 => Some(Literal::u64_unsuffixed(*value)),
        _ => None,
    };
    let width = Literal::u32_unsuffixed(bits);
    match op {
        Arith::BitOr => quote!((#l | #r)),
        Arith::BitXor => quote!((#l ^ #r)),
        Arith::BitAnd => quote!((#l & #r)),
        Arith::Shl => match constant {
            Some(n) => masked(quote!((#l << #n))),
            None => quote!(crate::entry::shl(#l, #r, #width)),
        },
        Arith::Shr => match constant {
            Some(n) => quote!((#l >> #n)),
            None => quote!(crate::entry::shr(#l, #r, #width)),
        },
        Arith::Add => masked(quote!(u64::wrapping_add(#l, #r))),
        Arith::Sub => masked(quote!(u64::wrapping_sub(#l, #r))),
        Arith::Mul => masked(quote!(u64::wrapping_mul(#l, #r))),
    }
}

/// The prepared capability bit: `caps.cap_proc2_enable_ept`.
pub(super) fn cap_var(schema: &Schema, c: crate::model::CapId) -> proc_macro2::Ident {
    ident(&format!("cap_{}", schema.caps[c].name.replace('.', "_")))
}

/// A rule's or field's capability gate over the prepared capabilities (`EntryCaps`).
pub(super) fn cap_gate(schema: &Schema, gate: &crate::gate::Gate<crate::model::CapId>) -> TokenStream {
    use crate::gate::Gate;
    match gate {
        Gate::Cap(c) => {
            let v = cap_var(schema, *c);
            quote!(caps.#v)
        }
        Gate::Any(gs) => {
            let p = gs.iter().map(|g| cap_gate(schema, g));
            quote!((#(#p)||*))
        }
        Gate::All(gs) => {
            let p = gs.iter().map(|g| cap_gate(schema, g));
            quote!((#(#p)&&*))
        }
    }
}
