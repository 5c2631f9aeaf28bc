//! instruction_errors.rs: the VM-instruction errors as an enum with the SDM's text.

use proc_macro2::{Literal, TokenStream};
use quote::quote;

use super::exits::type_name;
use crate::model::Schema;

pub(super) fn emit(schema: &Schema) -> TokenStream {
    let errors = &schema.instruction_errors;
    let variants: Vec<_> = errors.iter().map(|e| type_name(&e.name)).collect();
    let numbers: Vec<_> = errors.iter().map(|e| Literal::u32_unsuffixed(e.number)).collect();
    let docs = errors.iter().map(|e| format!(" {}: {}", e.number, e.doc));
    let names = errors.iter().map(|e| &e.name);
    let texts: Vec<_> = errors.iter().map(|e| e.doc.trim_end_matches('.')).collect();
    let count = Literal::usize_unsuffixed(errors.len());
    let max = errors.iter().map(|e| e.number).max().unwrap_or(0);
    let gaps: Vec<String> =
        (1..max).filter(|n| !errors.iter().any(|e| e.number == *n)).map(|n| n.to_string()).collect();
    let unknown_doc = if gaps.is_empty() {
        " Any number the schema does not name.".to_string()
    } else {
        format!(" Any number the schema does not name (it names none of {}).", gaps.join(", "))
    };
    quote! {
        use core::fmt;

        /// A VM-instruction error: the number VMfailValid leaves in the VM-instruction error field
        /// (SDM Vol. 3C 31.4). [`VmInstructionError::from_number`] never yields `Unknown` for a
        /// number the schema names.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum VmInstructionError {
            #( #[doc = #docs] #variants, )*
            #[doc = #unknown_doc]
            Unknown(u32),
        }

        impl VmInstructionError {
            /// Every error the schema names, by number.
            pub const ALL: [VmInstructionError; #count] = [#(VmInstructionError::#variants),*];

            /// Decode a VM-instruction error number.
            pub const fn from_number(number: u32) -> VmInstructionError {
                match number {
                    #(#numbers => VmInstructionError::#variants,)*
                    n => VmInstructionError::Unknown(n),
                }
            }

            /// The VM-instruction error number.
            pub const fn number(self) -> u32 {
                match self {
                    #(VmInstructionError::#variants => #numbers,)*
                    VmInstructionError::Unknown(n) => n,
                }
            }

            /// The schema name, e.g. "UNSUPPORTED_COMPONENT"; None for `Unknown`.
            pub const fn name(self) -> Option<&'static str> {
                match self {
                    #(VmInstructionError::#variants => Some(#names),)*
                    VmInstructionError::Unknown(_) => None,
                }
            }

            /// The SDM's text, e.g. "VMREAD/VMWRITE from/to unsupported VMCS component"; None for `Unknown`.
            pub const fn description(self) -> Option<&'static str> {
                match self {
                    #(VmInstructionError::#variants => Some(#texts),)*
                    VmInstructionError::Unknown(_) => None,
                }
            }
        }

        /// `VM-instruction error 12: VMREAD/VMWRITE from/to unsupported VMCS component`.
        impl fmt::Display for VmInstructionError {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                match self.description() {
                    Some(text) => write!(f, "VM-instruction error {}: {text}", self.number()),
                    None => write!(f, "VM-instruction error {} (not a number the schema names)", self.number()),
                }
            }
        }

        impl core::error::Error for VmInstructionError {}
    }
}
