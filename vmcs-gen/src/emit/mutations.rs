//! entry_mutations.rs for the Bochs kernel (baremetal/, not the runtime): the boundary mutations of
//! every rule ([`crate::checks::mutate`]), the ways to make each rule hold, and the control bits each
//! rule names, as static tables over the kernel's `entry_mutate` types. Edits are stored once and
//! referenced by index, to keep the kernel image small.

use std::collections::HashMap;

use proc_macro2::{Literal, TokenStream};
use quote::quote;

use super::caps::msr_variant;
use super::{Artifact, Input, artifact, hex};
use crate::checks::mutate::{self, Edit, Op, Source, Target, Value};
use crate::model::Schema;
use crate::model::expr::Expr;

/// `entry_mutations.rs`, the Bochs kernel's tables (baremetal/build.rs writes it): for each
/// VM-entry rule its boundary mutations, its fixes and the control bits it names.
pub fn mutation_table(schema: &Schema) -> Artifact {
    artifact(
        schema,
        "entry_mutations.rs",
        &[Input::Checks, Input::Fields, Input::Capabilities],
        "boundary mutations of the VM-entry rules, for the Bochs kernel",
        emit(schema),
    )
}

fn emit(schema: &Schema) -> TokenStream {
    let mut edits: Vec<Edit> = Vec::new();
    let mut index: HashMap<Edit, usize> = HashMap::new();
    let mut id = |e: &Edit| -> u16 {
        let n = *index.entry(*e).or_insert_with(|| {
            edits.push(*e);
            edits.len() - 1
        });
        n as u16
    };
    let list = |ids: Vec<u16>| {
        let ids = ids.into_iter().map(Literal::u16_unsuffixed);
        quote!(&[#(#ids),*])
    };
    let mutations: Vec<TokenStream> = mutate::all(schema)
        .iter()
        .map(|m| {
            let rule = Literal::u16_unsuffixed(m.rule as u16);
            let e = list(m.edits.iter().map(&mut id).collect());
            quote!((#rule, #e))
        })
        .collect();
    let fixes: Vec<TokenStream> = schema
        .checks
        .rules
        .iter()
        .map(|r| {
            let ways: Vec<TokenStream> =
                mutate::fixes(schema, r).iter().map(|w| list(w.iter().map(&mut id).collect())).collect();
            quote!(&[#(#ways),*])
        })
        .collect();
    let controls = schema.checks.rules.iter().map(|r| {
        let mut bits = Vec::new();
        r.check.walk(&mut |e| {
            if let Expr::Control { msr, bit } = e
                && !bits.contains(&(*msr, *bit))
            {
                bits.push((*msr, *bit));
            }
        });
        let bits = bits.iter().map(|(m, b)| {
            let (m, b) = (msr_variant(&schema.msrs[*m].name), Literal::u8_unsuffixed(*b as u8));
            quote!((Msr::#m, #b))
        });
        quote!(&[#(#bits),*])
    });
    // What a rule's failure may hinge on besides the VMCS: 1 = a capability (`cap(...)`), 2 = a
    // fact about the VMM (any fact but the physical- and linear-address widths).
    let depends = schema.checks.rules.iter().map(|r| {
        let mut d = 0u8;
        r.check.walk(&mut |e| match e {
            Expr::Cap(_) => d |= 1,
            Expr::Fact(f) if !matches!(schema.checks.facts[*f].name.as_str(), "maxphyaddr" | "linear_width") => d |= 2,
            Expr::WrmsrFaults { .. } => d |= 2,
            _ => {}
        });
        Literal::u8_unsuffixed(d)
    });
    let edit_values: Vec<TokenStream> = edits.iter().map(|e| edit(schema, e)).collect();
    let facts = schema.checks.facts.iter().enumerate().map(|(i, f)| {
        let (i, name) = (Literal::u8_unsuffixed(i as u8), super::ident(&f.name));
        match f.ty {
            crate::model::expr::Ty::Int(crate::model::expr::IntTy::U64) => quote!(#i => facts.#name),
            _ => quote!(#i => u64::from(facts.#name)),
        }
    });
    let (n_edits, n_mut, n_rules) = (edits.len(), mutations.len(), schema.checks.rules.len());
    quote! {
        use crate::entry_mutate::{Edit, Op, Source, Target, Value};
        use vmcs::caps::Msr;
        use vmcs::entry::Facts;

        /// Every distinct edit.
        pub static EDITS: [Edit; #n_edits] = [#(#edit_values),*];

        /// (rule index, edits): the boundary mutations, in rule order.
        pub static MUTATIONS: [(u16, &[u16]); #n_mut] = [#(#mutations),*];

        /// Per rule: ways (lists of edits) to make it hold.
        pub static FIXES: [&[&[u16]]; #n_rules] = [#(#fixes),*];

        /// Per rule: the control bits its check names.
        pub static CONTROLS: [&[(Msr, u8)]; #n_rules] = [#(#controls),*];

        /// Per rule: 1 if its check names a capability, 2 if a fact about the VMM (its failure may
        /// then be out of reach on a given processor or kernel).
        pub static DEPENDS: [u8; #n_rules] = [#(#depends),*];

        /// Fact `i` of schema/checks.toml, as an integer.
        pub fn fact(facts: &Facts, i: u8) -> u64 {
            match i {
                #(#facts,)*
                _ => 0,
            }
        }
    }
}

fn edit(schema: &Schema, e: &Edit) -> TokenStream {
    let enc = |f: usize| hex(schema.fields[f].encoding.raw() as u64);
    let target = match e.target {
        Target::Field(f) => {
            let f = enc(f);
            quote!(Target::Field(#f))
        }
        Target::Memory { base, base_mask, offset, bytes } => {
            let (b, m, o, n) = (enc(base), hex(base_mask), hex(offset), Literal::u8_unsuffixed(bytes as u8));
            quote!(Target::Memory { base: #b, base_mask: #m, offset: #o, bytes: #n })
        }
    };
    let op = match e.op {
        Op::Assign { mask } => {
            let m = hex(mask);
            quote!(Op::Assign(#m))
        }
        Op::Or => quote!(Op::Or),
        Op::AndNot => quote!(Op::AndNot),
        Op::Xor => quote!(Op::Xor),
    };
    let source = |s: Source| match s {
        Source::Msr(m) => {
            let v = msr_variant(&schema.msrs[m].name);
            quote!(Source::Msr(Msr::#v))
        }
        Source::Fact(f) => {
            let f = Literal::u8_unsuffixed(f as u8);
            quote!(Source::Fact(#f))
        }
        Source::Field(f) => {
            let f = enc(f);
            quote!(Source::Field(#f))
        }
    };
    let u8l = |v: u32| Literal::u8_unsuffixed(v as u8);
    let value = match e.value {
        Value::Const(v) => {
            let v = hex(v);
            quote!(Value::Const(#v))
        }
        Value::FactBit { fact, delta } => {
            let (f, d) = (u8l(fact as u32), Literal::i8_unsuffixed(delta as i8));
            quote!(Value::FactBit(#f, #d))
        }
        Value::LowestSet { source: s, mask } => {
            let (s, m) = (source(s), hex(mask));
            quote!(Value::LowestSet(#s, #m))
        }
        Value::HighestSet { source: s, mask } => {
            let (s, m) = (source(s), hex(mask));
            quote!(Value::HighestSet(#s, #m))
        }
        Value::LowestClear { source: s, mask } => {
            let (s, m) = (source(s), hex(mask));
            quote!(Value::LowestClear(#s, #m))
        }
        Value::Plus { source: s, lo, width, delta, at } => {
            let (s, lo, w, d, at) = (source(s), u8l(lo), u8l(width), Literal::i8_unsuffixed(delta as i8), u8l(at));
            quote!(Value::Plus { source: #s, lo: #lo, width: #w, delta: #d, at: #at })
        }
        Value::Page(n) => {
            let n = u8l(n);
            quote!(Value::Page(#n))
        }
        Value::Allowed { msr, field } => {
            let (m, f) = (msr_variant(&schema.msrs[msr].name), enc(field));
            quote!(Value::Allowed(Msr::#m, #f))
        }
        Value::FactBits { fact, mask } => {
            let (f, m) = (u8l(fact as u32), hex(mask));
            quote!(Value::FactBits(#f, #m))
        }
        Value::Bits { source: s, mask } => {
            let (s, m) = (source(s), hex(mask));
            quote!(Value::Bits(#s, #m))
        }
        Value::Clear { source: s, mask } => {
            let (s, m) = (source(s), hex(mask));
            quote!(Value::Clear(#s, #m))
        }
        Value::FaultingWrmsr { data } => quote!(Value::FaultingWrmsr(#data)),
    };
    quote!(Edit { target: #target, op: #op, value: #value })
}
