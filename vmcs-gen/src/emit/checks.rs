//! entry.rs: the VM-entry checker. One enum variant per rule (with its name, SDM section, outcome
//! and text), the `Facts` struct, and one function per tier that reads the fields its rules need
//! (never a field that does not exist for the capabilities) and tests the rules in file order.

use proc_macro2::{Literal, TokenStream};
use quote::quote;

use super::checks_context::{emit_context, emit_entry_caps, misc_msr, tier_fields};
use super::checks_expr::{cap_gate, field_var, msr_var, negate};
use super::{camel_case, hex, ident};
use crate::model::expr::Ty;
use crate::model::{Outcome, Rule, Schema, Tier};

/// Schema prose as rustdoc text: `IA32_VMX_MISC[30]` is not a link.
fn rustdoc_text(s: &str) -> String {
    s.replace('[', "\\[").replace(']', "\\]")
}

fn rule_variant(r: &Rule) -> proc_macro2::Ident {
    ident(&camel_case(&r.name))
}

fn tier_variant(t: Tier) -> TokenStream {
    let v = ident(&camel_case(t.name()));
    quote!(Tier::#v)
}

/// The runtime's `Tier`: the model's tiers in check order, each documented with its SDM
/// sections and the outcomes of the schema's rules in it.
fn emit_tiers(schema: &Schema) -> TokenStream {
    let variants = Tier::ALL.iter().map(|t| ident(&camel_case(t.name())));
    let docs = Tier::ALL.iter().map(|&t| {
        let mut outcomes: Vec<String> = Vec::new();
        for r in schema.checks.rules.iter().filter(|r| r.tier == t) {
            let o = r.outcome.text();
            if !outcomes.contains(&o) {
                outcomes.push(o);
            }
        }
        let fails = if outcomes.is_empty() { "no rules in this schema".into() } else { outcomes.join(", ") };
        format!(" The `{}` checks (SDM {}): {fails}.", t.name(), t.sections().join(", "))
    });
    quote! {
        /// The SDM's groups of checks, in the order a processor applies them (the SDM lets
        /// controls and host state be checked in either order; these rules check controls first,
        /// as KVM and Bochs do).
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Tier {
            #( #[doc = #docs] #variants, )*
        }
    }
}

fn outcome_expr(o: Outcome) -> TokenStream {
    match o {
        Outcome::VmFailInvalid => quote!(Outcome::VmFailInvalid),
        Outcome::VmFailValid(n) => {
            let n = Literal::u32_unsuffixed(n);
            quote!(Outcome::VmFailValid(#n))
        }
        Outcome::EntryFailure { reason, qualification } => {
            let r = Literal::u32_unsuffixed(reason);
            let q = Literal::u32_unsuffixed(qualification.unwrap_or(0));
            quote!(Outcome::EntryFailure { reason: #r, qualification: #q })
        }
    }
}

pub(super) fn emit_all(schema: &Schema) -> TokenStream {
    let c = &schema.checks;
    let variants: Vec<_> = c.rules.iter().map(rule_variant).collect();
    let docs = c.rules.iter().map(|r| {
        format!(" {} (SDM {}, {}): `{}`", rustdoc_text(r.doc.trim_end_matches('.')), r.section, r.reference, r.text)
    });
    let count = Literal::usize_unsuffixed(c.rules.len());
    let infos = c.rules.iter().map(|r| {
        let (name, section, reference, text, doc) = (&r.name, &r.section, &r.reference, &r.text, &r.doc);
        let outcome = outcome_expr(r.outcome);
        let tier = tier_variant(r.tier);
        let kvm = match &r.kvm {
            Some(k) => quote!(Some(#k)),
            None => quote!(None),
        };
        let restore = r.kvm_restore;
        quote!(RuleInfo { name: #name, section: #section, reference: #reference, text: #text, doc: #doc, outcome: #outcome, tier: #tier, kvm: #kvm, kvm_restore: #restore })
    });
    let fact_fields = c.facts.iter().map(|f| {
        let name = ident(&f.name);
        let ty = match f.ty {
            Ty::Bool => quote!(bool),
            Ty::Int(i) => {
                let t = ident(i.name());
                quote!(#t)
            }
        };
        let doc = format!(" {}", rustdoc_text(&f.doc));
        quote!(#[doc = #doc] pub #name: #ty,)
    });
    let tiers = emit_tiers(schema);
    let context = emit_context(schema);
    let entry_caps = emit_entry_caps(schema);
    let tier_fns = Tier::ALL.iter().map(|t| emit_tier(schema, *t));
    let tier_calls = Tier::ALL.iter().map(|t| {
        let f = ident(&format!("tier_{}", t.name()));
        let tv = tier_variant(*t);
        quote!(if selection.has_tier(#tv) && #f(vmcs, caps, facts, memory, &cx, selection, sink)? { return Ok(()); })
    });
    quote! {
        use crate::access::{VmcsError, VmcsRead};
        use crate::caps::{Cap, Capabilities, Msr, VmxCaps};
        use crate::entry::{Failure, FailureSink, GuestMemory, Outcome, ReadError, RuleInfo, Selection};

        #tiers

        /// A VM-entry check of schema/checks.toml (a rule declared over several segments has one
        /// variant per segment).
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Rule {
            #( #[doc = #docs] #variants, )*
        }

        impl Rule {
            /// Every rule, in check order.
            pub const ALL: [Rule; #count] = [#(Rule::#variants),*];

            /// The rule's schema entry.
            pub const fn info(self) -> &'static RuleInfo {
                &RULES[self as usize]
            }
        }

        /// The schema entry of each rule, in check order.
        static RULES: [RuleInfo; #count] = [#(#infos),*];

        /// What the checks need besides the VMCS and the capability MSRs (schema/checks.toml `[[fact]]`).
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub struct Facts {
            #(#fact_fields)*
        }

        #entry_caps

        #context

        /// Runs the selected rules in check order; stops when `sink` says so.
        pub(crate) fn run<V: VmcsRead + ?Sized, M: GuestMemory + ?Sized, S: FailureSink + ?Sized>(
            vmcs: &V,
            caps: &EntryCaps,
            facts: &Facts,
            memory: &M,
            selection: Selection,
            sink: &mut S,
        ) -> Result<(), ReadError> {
            let cx = Context::new(vmcs, caps)?;
            #(#tier_calls)*
            Ok(())
        }

        #[inline(always)]
        fn read<V: VmcsRead + ?Sized>(vmcs: &V, encoding: u32) -> Result<u64, ReadError> {
            vmcs.read_raw(encoding as u64).map_err(|error: VmcsError| ReadError { encoding, error })
        }

        #(#tier_fns)*
    }
}

fn emit_tier(schema: &Schema, tier: Tier) -> TokenStream {
    let name = ident(&format!("tier_{}", tier.name()));
    let rules: Vec<&Rule> = schema.checks.rules.iter().filter(|r| r.tier == tier).collect();
    let reads: Vec<TokenStream> = tier_fields(schema, tier)
        .into_iter()
        .map(|f| {
            let v = field_var(schema, f);
            let enc = hex(schema.fields[f].encoding.raw() as u64);
            match &schema.fields[f].gate {
                Some(g) => {
                    let g = cap_gate(schema, g);
                    quote!(let #v = if #g { read(vmcs, #enc)? } else { 0 };)
                }
                None => quote!(let #v = read(vmcs, #enc)?;),
            }
        })
        .collect();
    let per_entry = tier == Tier::MsrLoad;
    let checks: Vec<TokenStream> = rules
        .iter()
        .map(|r| {
            let v = rule_variant(r);
            let fails = negate(schema, &r.check);
            let gate = r.gate.as_ref().map(|g| {
                let g = cap_gate(schema, g);
                quote!(&& (#g))
            });
            let failure = if per_entry {
                quote!(Failure::at_entry(Rule::#v, msr_entry as u32 + 1))
            } else {
                quote!(Failure::new(Rule::#v))
            };
            quote! {
                if selection.has(Rule::#v) #gate && #fails && sink.fail(#failure) {
                    return Ok(true);
                }
            }
        })
        .collect();
    // MSR loading: the rules on each entry in turn (none read unless one is selected).
    let body = if per_entry && !rules.is_empty() {
        let count =
            schema.fields.iter().position(|f| f.name == "VM_ENTRY_MSR_LOAD_COUNT").expect("VM_ENTRY_MSR_LOAD_COUNT");
        let enc = hex(schema.fields[count].encoding.raw() as u64);
        let misc = msr_var(schema, misc_msr(schema));
        let selected = rules.iter().map(|r| {
            let v = rule_variant(r);
            quote!(selection.has(Rule::#v))
        });
        quote! {
            if !(#(#selected)||*) {
                return Ok(false);
            }
            #(#reads)*
            // Up to the recommended maximum (IA32_VMX_MISC[27:25]): beyond it the SDM leaves the
            // processor's behaviour undefined.
            let count = core::cmp::min(read(vmcs, #enc)? & 0xffff_ffff, 512 * (((caps.#misc >> 25) & 7) + 1));
            for msr_entry in 0..count {
                #(#checks)*
            }
        }
    } else {
        quote! {
            #(#reads)*
            #(#checks)*
        }
    };
    let doc = format!(" The {} checks, in file order: Ok(true) when the sink stopped the run.", tier.name());
    quote! {
        #[doc = #doc]
        #[allow(unused_parens, unused_variables, clippy::too_many_arguments, clippy::nonminimal_bool, clippy::overly_complex_bool_expr)]
        #[inline(never)]
        fn #name<V: VmcsRead + ?Sized, M: GuestMemory + ?Sized, S: FailureSink + ?Sized>(
            vmcs: &V,
            caps: &EntryCaps,
            facts: &Facts,
            memory: &M,
            cx: &Context,
            selection: Selection,
            sink: &mut S,
        ) -> Result<bool, ReadError> {
            #body
            Ok(false)
        }
    }
}
