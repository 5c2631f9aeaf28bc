//! entry.rs: the VM-entry checker. One enum variant per rule (with its name, SDM section, outcome
//! and text), the `Facts` struct, and one function per tier that reads the fields its rules need
//! (never a field that does not exist for the capabilities) and tests the rules in file order.

use proc_macro2::{Literal, TokenStream};
use quote::quote;

use super::cap_variant;
use super::caps::msr_variant;
use super::checks_expr::{cap_gate, cap_var, control_var, field_var, msr_var, negate};
use super::{camel_case, hex, ident};
use crate::gate::Gate;
use crate::model::expr::{Expr, Ty};
use crate::model::{CapId, FieldId, MsrId, MsrKind, Schema};
use crate::model::{Outcome, Rule, Tier};

/// Schema prose as rustdoc text: `IA32_VMX_MISC[30]` is not a link.
fn rustdoc_text(s: &str) -> String {
    s.replace('[', "\\[").replace(']', "\\]")
}

fn rule_variant(r: &Rule) -> proc_macro2::Ident {
    ident(&camel_case(&r.name))
}

fn tier_variant(t: Tier) -> TokenStream {
    match t {
        Tier::Basic => quote!(Tier::Basic),
        Tier::Controls => quote!(Tier::Controls),
        Tier::Host => quote!(Tier::Host),
        Tier::Guest => quote!(Tier::Guest),
        Tier::MsrLoad => quote!(Tier::MsrLoad),
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
        use crate::entry::{Failure, FailureSink, GuestMemory, Outcome, ReadError, RuleInfo, Selection, Tier};

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

/// MSRs with a control field, in dependency order (an MSR after those its `requires` names).
fn control_msrs(schema: &Schema) -> Vec<MsrId> {
    let mut order: Vec<MsrId> = Vec::new();
    let with_field: Vec<MsrId> = (0..schema.msrs.len()).filter(|&m| schema.msrs[m].control_field.is_some()).collect();
    while order.len() < with_field.len() {
        let before = order.len();
        for &m in &with_field {
            let deps_done = schema.msrs[m]
                .requires
                .as_ref()
                .is_none_or(|g| g.caps().iter().all(|c| order.contains(&schema.caps[**c].msr)));
            if !order.contains(&m) && deps_done {
                order.push(m);
            }
        }
        if order.len() == before {
            break; // a cycle: the loader reports `requires` cycles
        }
    }
    order
}

/// A gate over control bits (an MSR's `requires`, evaluated on the control words).
fn control_gate(schema: &Schema, g: &Gate<CapId>) -> TokenStream {
    match g {
        Gate::Cap(c) => {
            let cap = &schema.caps[*c];
            let v = control_var(schema, cap.msr);
            let b = Literal::u32_unsuffixed(cap.bit);
            quote!(((#v >> #b) & 1 != 0))
        }
        Gate::Any(gs) => {
            let p = gs.iter().map(|g| control_gate(schema, g));
            quote!((#(#p)||*))
        }
        Gate::All(gs) => {
            let p = gs.iter().map(|g| control_gate(schema, g));
            quote!((#(#p)&&*))
        }
    }
}

/// What the rules use of the control words (with those their `requires` reads), the capability
/// MSR values and the allowed-settings tests.
struct Used {
    /// Control words to read (locals), in dependency order.
    controls: Vec<MsrId>,
    /// Control words the rules test bits of (context members).
    control_members: Vec<MsrId>,
    /// Capability MSR values the checks read.
    msrs: Vec<MsrId>,
    allowed: Vec<MsrId>,
}

/// IA32_VMX_MISC, whose bits 27:25 bound the MSR-load list the checks walk.
fn misc_msr(schema: &Schema) -> MsrId {
    schema.msrs.iter().position(|m| m.name == "misc").expect("capabilities.toml declares IA32_VMX_MISC as `misc`")
}

fn used(schema: &Schema) -> Used {
    let (mut controls, mut msrs, mut allowed) = (Vec::new(), Vec::new(), Vec::new());
    if schema.checks.rules.iter().any(|r| r.tier == Tier::MsrLoad) {
        msrs.push(misc_msr(schema));
    }
    let mut control_members = Vec::new();
    for r in &schema.checks.rules {
        r.check.walk(&mut |e| match e {
            Expr::Control { msr, .. } => {
                controls.push(*msr);
                control_members.push(*msr);
            }
            Expr::Msr(m) => msrs.push(*m),
            Expr::Allowed(m) => {
                allowed.push(*m);
                controls.push(*m);
                msrs.push(*m);
            }
            _ => {}
        });
    }
    // A control word is read only while its MSR's `requires` holds on other control words.
    let mut i = 0;
    while i < controls.len() {
        if let Some(req) = &schema.msrs[controls[i]].requires {
            controls.extend(req.caps().iter().map(|c| schema.caps[**c].msr));
        }
        i += 1;
    }
    let order = control_msrs(schema);
    controls = order.into_iter().filter(|m| controls.contains(m)).collect();
    control_members = controls.iter().copied().filter(|m| control_members.contains(m)).collect();
    for v in [&mut msrs, &mut allowed] {
        v.sort();
        v.dedup();
    }
    Used { controls, control_members, msrs, allowed }
}

/// Every capability the generated code tests: field gates of the fields it reads (control words
/// included), rule gates and `cap(...)`.
fn used_caps(schema: &Schema) -> Vec<CapId> {
    let mut caps: Vec<CapId> = Vec::new();
    let mut fields: Vec<FieldId> = Tier::ALL.iter().flat_map(|t| tier_fields(schema, *t)).collect();
    fields.extend(used(schema).controls.iter().filter_map(|m| schema.msrs[*m].control_field));
    for f in fields {
        if let Some(g) = &schema.fields[f].gate {
            caps.extend(g.caps().into_iter().copied());
        }
    }
    for r in &schema.checks.rules {
        if let Some(g) = &r.gate {
            caps.extend(g.caps().into_iter().copied());
        }
        r.check.walk(&mut |e| {
            if let Expr::Cap(c) = e {
                caps.push(*c);
            }
        });
    }
    caps.sort();
    caps.dedup();
    caps
}

/// The capabilities the checks read, evaluated once per vCPU.
fn emit_entry_caps(schema: &Schema) -> TokenStream {
    let caps = used_caps(schema);
    let cap_names: Vec<_> = caps.iter().map(|c| cap_var(schema, *c)).collect();
    let cap_variants = caps.iter().map(|c| cap_variant(&schema.caps[*c].name));
    let msrs = used(schema).msrs;
    let msr_names: Vec<_> = msrs.iter().map(|m| msr_var(schema, *m)).collect();
    let msr_variants = msrs.iter().map(|m| msr_variant(&schema.msrs[*m].name));
    quote! {
        /// The capabilities the checks read, evaluated once from a vCPU's IA32_VMX_* MSRs (the
        /// TRUE MSRs where they exist, 0 for an MSR that does not): keep one per vCPU and check
        /// every VM entry with it ([`crate::entry::Checker`]).
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub struct EntryCaps {
            #(#cap_names: bool,)*
            #(#msr_names: u64,)*
        }

        impl EntryCaps {
            /// Evaluate the capabilities the checks need.
            pub fn new(caps: &VmxCaps) -> EntryCaps {
                EntryCaps {
                    #(#cap_names: caps.has(Cap::#cap_variants),)*
                    #(#msr_names: caps.value(Msr::#msr_variants),)*
                }
            }
        }
    }
}

/// The values every tier shares: control words as in effect and their allowed settings.
fn emit_context(schema: &Schema) -> TokenStream {
    let Used { controls: ctl, control_members, allowed: allowed_msrs, .. } = used(schema);
    let ctl_names: Vec<_> = control_members.iter().map(|m| control_var(schema, *m)).collect();
    let ctl_reads = ctl.iter().map(|&m| {
        let msr = &schema.msrs[m];
        let f = msr.control_field.unwrap();
        let v = control_var(schema, m);
        let enc = hex(schema.fields[f].encoding.raw() as u64);
        let mut cond = Vec::new();
        if let Some(req) = &msr.requires {
            cond.push(control_gate(schema, req));
        }
        if let Some(g) = &schema.fields[f].gate {
            let g = cap_gate(schema, g);
            cond.push(quote!((#g)));
        }
        if cond.is_empty() {
            quote!(let #v = read(vmcs, #enc)?;)
        } else {
            quote!(let #v = if #(#cond)&&* { read(vmcs, #enc)? } else { 0 };)
        }
    });
    let allowed: Vec<_> = allowed_msrs.iter().map(|m| ident(&format!("allowed_{}", schema.msrs[*m].name))).collect();
    let allowed_exprs = allowed_msrs.iter().map(|&m| {
        let (c, v) = (control_var(schema, m), msr_var(schema, m));
        match schema.msrs[m].kind {
            MsrKind::Control => {
                quote!((#c & (caps.#v & 0xffff_ffff) == caps.#v & 0xffff_ffff) && #c & !(caps.#v >> 32) == 0)
            }
            MsrKind::Flags => quote!(#c & !caps.#v == 0),
        }
    });
    let unused = if ctl.is_empty() { quote!(let _ = (vmcs, caps);) } else { quote!() };
    quote! {
        /// Control words as in effect, and whether they meet their allowed settings.
        struct Context {
            #(#ctl_names: u64,)*
            #(#allowed: bool,)*
        }

        impl Context {
            #[inline(always)]
            fn new<V: VmcsRead + ?Sized>(vmcs: &V, caps: &EntryCaps) -> Result<Context, ReadError> {
                #unused
                #(#ctl_reads)*
                Ok(Context {
                    #(#allowed: #allowed_exprs,)*
                    #(#ctl_names,)*
                })
            }
        }
    }
}

/// The fields a tier's rules read, in schema order.
fn tier_fields(schema: &Schema, tier: Tier) -> Vec<FieldId> {
    let mut fields: Vec<FieldId> =
        schema.checks.rules.iter().filter(|r| r.tier == tier).flat_map(|r| r.check.fields()).collect();
    fields.sort();
    fields.dedup();
    fields
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
