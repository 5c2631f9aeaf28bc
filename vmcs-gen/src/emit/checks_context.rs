//! What the VM-entry checker computes before its rules, for entry.rs: `EntryCaps` (the
//! capabilities and MSR values the rules read, once per vCPU) and `Context` (control words as in
//! effect and their allowed-settings tests, once per entry); and which fields, control words and
//! MSRs the rules read, so nothing else is.

use proc_macro2::{Literal, TokenStream};
use quote::quote;

use super::cap_variant;
use super::caps::msr_variant;
use super::checks_expr::{cap_gate, cap_var, control_var, msr_var};
use super::{hex, ident};
use crate::gate::Gate;
use crate::model::expr::Expr;
use crate::model::{CapId, FieldId, MsrId, MsrKind, Schema, Tier};

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
pub(super) fn misc_msr(schema: &Schema) -> MsrId {
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
pub(super) fn emit_entry_caps(schema: &Schema) -> TokenStream {
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
pub(super) fn emit_context(schema: &Schema) -> TokenStream {
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
pub(super) fn tier_fields(schema: &Schema, tier: Tier) -> Vec<FieldId> {
    let mut fields: Vec<FieldId> =
        schema.checks.rules.iter().filter(|r| r.tier == tier).flat_map(|r| r.check.fields()).collect();
    fields.sort();
    fields.dedup();
    fields
}
