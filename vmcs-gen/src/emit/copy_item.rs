//! One copy entry as Rust: its condition, where its value comes from, how it is written.

use proc_macro2::{Ident, TokenStream};
use quote::quote;

use super::{gate_expr, hex, ident, nested_gate_expr};
use crate::encoding::Width;
use crate::gate::Gate;
use crate::model::{CapId, CopyItem, CopySet, FieldId, HookInput, Role, Runs, Schema, Source, Term, Treatment};

/// What emitting the entries of one set needs to know.
pub(super) struct SetCtx<'a> {
    pub schema: &'a Schema,
    pub set: &'a CopySet,
    /// What a dirty set watches: term k is bit k of `now`, evaluated once at the set's start.
    pub watched: Vec<Term>,
}

/// The parameter name of a role.
pub(super) fn role_ident(role: Role) -> Ident {
    ident(role.as_str())
}

/// The parameter name of a role the routine does not read: `_vmcs02`.
pub(super) fn unused(role: Role) -> TokenStream {
    let i = ident(&format!("_{}", role.as_str()));
    quote!(#i)
}

/// The Rust type of a width (natural width is 64 bits on x86-64).
pub(super) fn width_type(w: Width) -> TokenStream {
    match w {
        Width::W16 => quote!(u16),
        Width::W32 => quote!(u32),
        Width::W64 | Width::Natural => quote!(u64),
    }
}

/// `fields::GUEST_RIP.raw()`.
pub(super) fn enc(schema: &Schema, f: FieldId) -> TokenStream {
    let name = ident(&schema.fields[f].name);
    quote!(fields::#name.raw())
}

/// The name of a hook parameter: the field (prefixed by its role unless vmcs12), or the capability.
pub(super) fn input_name(schema: &Schema, input: &HookInput) -> Ident {
    match *input {
        HookInput::Field(Role::Vmcs12, f) => ident(&schema.fields[f].name.to_ascii_lowercase()),
        HookInput::Field(r, f) => ident(&format!("{}_{}", r.as_str(), schema.fields[f].name.to_ascii_lowercase())),
        HookInput::Control(c) => ident(&schema.caps[c].name.replace('.', "_")),
    }
}

impl SetCtx<'_> {
    /// The whole entry: skipped when its field does not exist for `caps`, then its condition.
    pub fn item(&self, item: &CopyItem) -> TokenStream {
        self.item_if(item, None)
    }

    /// The entry, only if `pre` also holds.
    pub fn item_if(&self, item: &CopyItem, pre: Option<TokenStream>) -> TokenStream {
        let schema = self.schema;
        let mut gates: Vec<&Gate<CapId>> = Vec::new();
        gates.extend(&schema.fields[item.field].gate);
        for t in item.treatments() {
            if let Source::From(f) = t.source
                && self.set.from.layout().is_none()
            {
                gates.extend(&schema.fields[f].gate);
            }
        }
        let then = self.treatment(item, &item.treat);
        let cond = self.condition(item);
        let conj = |gates: &[&Gate<CapId>], cond: Option<TokenStream>| -> Option<TokenStream> {
            let alone = pre.is_none() && gates.len() + cond.is_some() as usize == 1;
            let mut parts: Vec<TokenStream> = pre.iter().cloned().collect();
            parts.extend(gates.iter().map(|g| {
                if alone { gate_expr(schema, g, &quote!(caps)) } else { nested_gate_expr(schema, g, &quote!(caps)) }
            }));
            parts.extend(cond);
            (!parts.is_empty()).then(|| quote!(#(#parts)&&*))
        };
        match (&item.otherwise, cond) {
            (None, cond) => match conj(&gates, cond) {
                None => quote!({ #then }),
                Some(c) => quote!(if #c { #then }),
            },
            (Some(e), Some(c)) => {
                let e = self.treatment(item, e);
                let choice = quote!(if #c { #then } else { #e });
                match conj(&gates, None) {
                    None => choice,
                    Some(g) => quote!(if #g { #choice }),
                }
            }
            (Some(_), None) => unreachable!("validated: an `else` needs a condition"),
        }
    }

    /// `when && !unless` (parenthesised unless a conjunction), or None when unconditional.
    fn condition(&self, item: &CopyItem) -> Option<TokenStream> {
        let when = item.when.as_ref().map(|g| self.operand(g));
        let unless = item.unless.as_ref().map(|g| {
            // A control bit whose MSR `requires` another expands to a conjunction.
            let atomic = match g {
                Gate::Cap(Term::Pred(_)) => true,
                Gate::Cap(Term::Control(c)) => self.schema.msr_of(*c).requires.is_none(),
                _ => false,
            };
            let inner = self.gate(g);
            let e = if atomic { inner } else { quote!((#inner)) };
            quote!(!#e)
        });
        match (when, unless) {
            (None, None) => None,
            (Some(w), None) => Some(w),
            (None, Some(u)) => Some(u),
            (Some(w), Some(u)) => Some(quote!(#w && #u)),
        }
    }

    /// A condition as an operand of `&&`: a disjunction gets parentheses.
    fn operand(&self, g: &Gate<Term>) -> TokenStream {
        let e = self.gate(g);
        if matches!(g, Gate::Any(_)) { quote!((#e)) } else { e }
    }

    fn gate(&self, g: &Gate<Term>) -> TokenStream {
        match g {
            Gate::Cap(t) => self.term(*t),
            Gate::Any(gs) => {
                let parts = gs.iter().map(|g| self.nested(g));
                quote!(#(#parts)||*)
            }
            Gate::All(gs) => {
                let parts = gs.iter().map(|g| self.nested(g));
                quote!(#(#parts)&&*)
            }
        }
    }

    fn nested(&self, g: &Gate<Term>) -> TokenStream {
        let e = self.gate(g);
        if matches!(g, Gate::Cap(_)) { e } else { quote!((#e)) }
    }

    /// A term's value as `now` holds it, for a dirty set.
    fn watched(&self, t: Term) -> Option<TokenStream> {
        let k = self.watched.iter().position(|&w| w == t)?;
        Some(super::bit_test(quote!(now), k as u32))
    }

    /// A term's value: from `now` in a dirty set, else evaluated where it is used.
    pub fn term(&self, t: Term) -> TokenStream {
        if let Some(e) = self.watched(t) {
            return e;
        }
        match t {
            Term::Pred(p) => {
                let m = ident(&self.schema.predicates[p].name);
                quote!(hooks.#m())
            }
            Term::Control(c) => self.control(c),
        }
    }

    /// vmcs12's control bit of capability `c`, and the bits its MSR `requires`.
    pub fn control(&self, c: CapId) -> TokenStream {
        let schema = self.schema;
        let (field, bit) = schema.control_bit(c).expect("validated: a control bit of vmcs12");
        let (e, bit) = (enc(schema, field), proc_macro2::Literal::u32_unsuffixed(bit));
        // `&*` reborrows a `&mut` vmcs12 as shared.
        let v12 = if self.set.dirty || self.set.to == Role::Vmcs12 { quote!(&*vmcs12) } else { quote!(vmcs12) };
        let own = quote!(control_bit(#v12, #e, #bit)?);
        match &schema.msr_of(c).requires {
            None => own,
            Some(r) => {
                let req = control_gate(self, r);
                quote!(#req && #own)
            }
        }
    }

    /// Compute the new value into `v`, then write it.
    fn treatment(&self, item: &CopyItem, t: &Treatment) -> TokenStream {
        let schema = self.schema;
        let (src, dst) = (role_ident(self.set.from), role_ident(self.set.to));
        let e = enc(schema, item.field);
        let value = match t.source {
            Source::Copy => quote!(#src.read_raw(#e)?),
            Source::From(f) => {
                let g = enc(schema, f);
                quote!(#src.read_raw(#g)?)
            }
            Source::Value(v) => {
                let v = hex(v);
                quote!(#v)
            }
            Source::Hook(h) => {
                let hook = &schema.hooks[h];
                let name = ident(&hook.name);
                let args = hook.inputs.iter().map(|i| self.input(i));
                if matches!(hook.ty, Width::W64 | Width::Natural) {
                    quote!(hooks.#name(#(#args),*)?)
                } else {
                    quote!(u64::from(hooks.#name(#(#args),*)?))
                }
            }
        };
        let mask = t.mask.map(|m| {
            let m = hex(m);
            quote!(let v = v & #m;)
        });
        let merge = t.merge.map(|m| {
            let m = hex(m);
            quote!(let v = (#dst.read_raw(#e)? & !#m) | (v & #m);)
        });
        let write = self.write(item, &e);
        quote!(let v: u64 = #value; #mask #merge #write)
    }

    /// The write of `v`: into vmcs12 after an exit, it dirties what it changed unless it is
    /// vmcs02's own value of the field.
    fn write(&self, item: &CopyItem, e: &TokenStream) -> TokenStream {
        let dst = role_ident(self.set.to);
        match (self.set.to, self.set.runs) {
            (Role::Vmcs12, Runs::Lazy) => quote!(vmcs12.write_untracked(#e, v)?;),
            (Role::Vmcs12, Runs::Exit) if item.is_plain() => quote!(vmcs12.write_untracked(#e, v)?;),
            (Role::Vmcs12, Runs::Exit) => quote!(vmcs12.write_l0(#e, v)?;),
            _ => quote!(#dst.write_raw(#e, v)?;),
        }
    }

    /// One hook argument.
    fn input(&self, input: &HookInput) -> TokenStream {
        let schema = self.schema;
        match *input {
            HookInput::Control(c) => self.term(Term::Control(c)),
            HookInput::Field(role, f) => {
                let (r, e) = (role_ident(role), enc(schema, f));
                let read = match schema.fields[f].width {
                    Width::W64 | Width::Natural => quote!(#r.read_raw(#e)?),
                    w => {
                        let ty = width_type(w);
                        quote!(#r.read_raw(#e)? as #ty)
                    }
                };
                match (&schema.fields[f].gate, role.layout()) {
                    (Some(g), None) => {
                        let g = nested_gate_expr(schema, g, &quote!(caps));
                        quote!(if #g { #read } else { 0 })
                    }
                    _ => read,
                }
            }
        }
    }
}

/// A capability gate (an MSR's `requires`) as vmcs12 control bits.
fn control_gate(ctx: &SetCtx<'_>, g: &Gate<CapId>) -> TokenStream {
    match g {
        Gate::Cap(c) => ctx.control(*c),
        Gate::Any(gs) => {
            let parts = gs.iter().map(|g| control_gate(ctx, g));
            quote!((#(#parts)||*))
        }
        Gate::All(gs) => {
            let parts = gs.iter().map(|g| control_gate(ctx, g));
            quote!(#(#parts)&&*)
        }
    }
}
