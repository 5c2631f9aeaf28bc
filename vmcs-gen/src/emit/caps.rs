//! caps.rs: the capability enum and its evaluation against raw IA32_VMX_* MSR values.

use proc_macro2::{Literal, TokenStream};
use quote::quote;

use super::{bit_test, camel_case, hex, ident, nested_gate_expr};
use crate::model::{MsrKind, Schema};

/// `proc2.enable_vpid` -> `Proc2EnableVpid`.
pub fn cap_variant(name: &str) -> proc_macro2::Ident {
    ident(&camel_case(name))
}

pub(super) fn emit(schema: &Schema) -> TokenStream {
    let variants: Vec<_> = schema.caps.iter().map(|c| cap_variant(&c.name)).collect();
    let docs = schema.caps.iter().map(|c| {
        let m = &schema.msrs[c.msr];
        format!(" {} ({} bit {}, MSR {:#x})", c.doc, m.name, c.bit, m.index)
    });
    let names = schema.caps.iter().map(|c| &c.name);
    let msr_index = schema.caps.iter().map(|c| hex(schema.msrs[c.msr].index as u64));
    let bits = schema.caps.iter().map(|c| Literal::u32_unsuffixed(c.bit));
    let count = Literal::usize_unsuffixed(schema.caps.len());
    let caps_var = quote!(self);
    let tests = schema.caps.iter().zip(&variants).map(|(c, v)| {
        let m = &schema.msrs[c.msr];
        let index = hex(m.index as u64);
        let value = match m.true_index {
            Some(t) => {
                let t = hex(t as u64);
                quote!(self.control_msr(#index, Some(#t)))
            }
            None => quote!(self.raw(#index)),
        };
        let bit = match m.kind {
            MsrKind::Control => 32 + c.bit,
            MsrKind::Flags => c.bit,
        };
        let test = bit_test(value, bit);
        match &m.requires {
            Some(g) => {
                let present = nested_gate_expr(schema, g, &caps_var);
                quote!(Cap::#v => #present && #test)
            }
            None => quote!(Cap::#v => #test),
        }
    });
    quote! {
        use crate::caps::{Capabilities, VmxCaps};

        /// A named VMX capability bit that field gates refer to.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
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
            pub const fn msr(self) -> u32 {
                match self { #(Cap::#variants => #msr_index,)* }
            }

            /// The control bit (control MSRs) or MSR bit (flag MSRs).
            pub const fn bit(self) -> u32 {
                match self { #(Cap::#variants => #bits,)* }
            }
        }

        impl VmxCaps {
            /// Evaluate one capability: the MSR must exist (its `requires` gate), the TRUE_* MSR is
            /// used when IA32_VMX_BASIC bit 55 is set, and control MSRs report allowed-1 in bits 63:32.
            pub fn has_cap(&self, cap: Cap) -> bool {
                match cap { #(#tests,)* }
            }
        }
    }
}
