//! caps.rs: the capability enum and its evaluation against raw IA32_VMX_* MSR values.

use proc_macro2::{Literal, TokenStream};
use quote::quote;

use super::{bit_test, camel_case, gate_expr, hex, ident};
use crate::model::{MsrId, MsrKind, Schema};

/// `proc2.enable_vpid` -> `Proc2EnableVpid`.
pub fn cap_variant(name: &str) -> proc_macro2::Ident {
    ident(&camel_case(name))
}

pub(super) fn emit(schema: &Schema) -> TokenStream {
    let msrs = msrs(schema);
    let variants: Vec<_> = schema.caps.iter().map(|c| cap_variant(&c.name)).collect();
    let docs = schema.caps.iter().map(|c| {
        let m = &schema.msrs[c.msr];
        format!(" {} ({} bit {}, MSR {:#x})", c.doc, m.name, c.bit, m.index)
    });
    let names = schema.caps.iter().map(|c| &c.name);
    let msr_of = schema.caps.iter().map(|c| msr_variant(&schema.msrs[c.msr].name));
    let bits = schema.caps.iter().map(|c| Literal::u32_unsuffixed(c.bit));
    let count = Literal::usize_unsuffixed(schema.caps.len());
    let tests = schema.caps.iter().zip(&variants).map(|(c, v)| {
        let m = &schema.msrs[c.msr];
        let msr = msr_variant(&m.name);
        let bit = match m.kind {
            MsrKind::Control => 32 + c.bit,
            MsrKind::Flags => c.bit,
        };
        let test = bit_test(quote!(self.value(Msr::#msr)), bit);
        quote!(Cap::#v => #test)
    });
    quote! {
        use crate::caps::{Capabilities, MsrKind, VmxCaps};

        #msrs

        /// A named VMX capability bit that field gates refer to.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[non_exhaustive]
        pub enum Cap {
            #( #[doc = #docs] #variants, )*
        }

        impl Cap {
            /// Every capability, in schema order.
            pub const ALL: [Cap; #count] = [#(Cap::#variants),*];

            /// The schema name, e.g. "proc2.enable_ept".
            pub const fn name(self) -> &'static str {
                match self { #(Cap::#variants => #names,)* }
            }

            /// The capability MSR that reports it.
            pub const fn msr(self) -> Msr {
                match self { #(Cap::#variants => Msr::#msr_of,)* }
            }

            /// The control bit (control MSRs) or MSR bit (flag MSRs).
            pub const fn bit(self) -> u32 {
                match self { #(Cap::#variants => #bits,)* }
            }
        }

        impl VmxCaps {
            /// Evaluate one capability in the value its MSR reports ([`VmxCaps::value`]: 0 unless the
            /// MSR exists, the TRUE MSR when that exists); control MSRs report allowed-1 in bits 63:32.
            pub fn has_cap(&self, cap: Cap) -> bool {
                match cap { #(#tests,)* }
            }
        }
    }
}

/// `true_pin` -> `TruePin`.
pub(crate) fn msr_variant(name: &str) -> proc_macro2::Ident {
    ident(&camel_case(name))
}

/// The `Msr` enum: every capability MSR with its index, TRUE MSR and `requires`.
fn msrs(schema: &Schema) -> TokenStream {
    let variants: Vec<_> = schema.msrs.iter().map(|m| msr_variant(&m.name)).collect();
    let docs = schema.msrs.iter().map(|m| format!(" {} (MSR {:#x}).", m.doc.trim_end_matches('.'), m.index));
    let names = schema.msrs.iter().map(|m| &m.name);
    let indices: Vec<_> = schema.msrs.iter().map(|m| hex(m.index as u64)).collect();
    let kinds = schema.msrs.iter().map(|m| match m.kind {
        MsrKind::Control => quote!(MsrKind::Control),
        MsrKind::Flags => quote!(MsrKind::Flags),
    });
    let true_msrs = schema.msrs.iter().map(|m| match m.true_msr {
        Some(t) => {
            let t = msr_variant(&schema.msrs[t].name);
            quote!(Some(Msr::#t))
        }
        None => quote!(None),
    });
    let caps = quote!(caps);
    let requires: Vec<_> = schema
        .msrs
        .iter()
        .filter_map(|m| {
            let gate = m.requires.as_ref()?;
            let v = msr_variant(&m.name);
            let cond = gate_expr(schema, gate, &caps);
            Some(quote!(Msr::#v => #cond))
        })
        .collect();
    let reported_by = (0..schema.msrs.len()).map(|m| reported_by(schema, m, &mut Vec::new()));
    let count = Literal::usize_unsuffixed(schema.msrs.len());
    quote! {
        /// A VMX capability MSR (IA32_VMX_*) the schema declares.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[non_exhaustive]
        pub enum Msr {
            #( #[doc = #docs] #variants, )*
        }

        impl Msr {
            /// Every MSR in schema order: a `requires` reads only MSRs before it, so reading them in
            /// this order never reads one whose existence is unknown.
            pub const ALL: [Msr; #count] = [#(Msr::#variants),*];

            /// The MSR index.
            pub const fn index(self) -> u32 {
                match self { #(Msr::#variants => #indices,)* }
            }

            /// The MSR declared at `index`, if any.
            pub const fn from_index(index: u32) -> Option<Msr> {
                match index {
                    #(#indices => Some(Msr::#variants),)*
                    _ => None,
                }
            }

            /// The schema name, e.g. "proc2".
            pub const fn name(self) -> &'static str {
                match self { #(Msr::#variants => #names,)* }
            }

            /// How it reports capabilities: allowed-0/allowed-1 halves, or one bit per capability.
            pub const fn kind(self) -> MsrKind {
                match self { #(Msr::#variants => #kinds,)* }
            }

            /// The IA32_VMX_TRUE_* MSR that reports this MSR's controls instead, when it exists.
            pub const fn true_msr(self) -> Option<Msr> {
                match self { #(Msr::#variants => #true_msrs,)* }
            }

            /// Does the MSR exist (its `requires`), judged by the MSRs before it? An MSR that does not
            /// exist faults on RDMSR and reports 0.
            pub fn exists<C: Capabilities + ?Sized>(self, caps: &C) -> bool {
                match self {
                    #(#requires,)*
                    _ => true,
                }
            }

            /// The MSR whose value reports this one's capabilities: None when this one does not
            /// exist (it reports 0), else its TRUE MSR when that exists, else itself.
            pub fn reported_by<C: Capabilities + ?Sized>(self, caps: &C) -> Option<Msr> {
                match self { #(Msr::#variants => #reported_by,)* }
            }
        }
    }
}

/// `Msr::reported_by` for `msr`: the model's choice ([`Schema::reported_by`]) as a decision tree
/// over the existence of the MSRs it asks about (`known`: the answers on this branch; an MSR
/// without `requires` always exists).
fn reported_by(schema: &Schema, msr: MsrId, known: &mut Vec<(MsrId, bool)>) -> TokenStream {
    let mut asked = None;
    let answer = schema.reported_by(msr, &mut |m| {
        match known.iter().find(|(k, _)| *k == m) {
            Some(&(_, exists)) => exists,
            None if schema.msrs[m].requires.is_none() => true,
            None => {
                // Not known on this branch: both answers get a branch below.
                asked.get_or_insert(m);
                false
            }
        }
    });
    let Some(m) = asked else {
        return match answer {
            Some(r) => {
                let r = msr_variant(&schema.msrs[r].name);
                quote!(Some(Msr::#r))
            }
            None => quote!(None),
        };
    };
    let mut branch = |exists| {
        known.push((m, exists));
        let tree = reported_by(schema, msr, known);
        known.pop();
        tree
    };
    let (yes, no) = (branch(true), branch(false));
    let v = msr_variant(&schema.msrs[m].name);
    quote!(if Msr::#v.exists(caps) { #yes } else { #no })
}
