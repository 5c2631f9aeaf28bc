//! exits.rs: the basic exit reasons, a type per exit-information bitfield, and the exit
//! qualification decoded by reason.

use proc_macro2::{Literal, TokenStream};
use quote::quote;

use super::{camel_case, hex, ident};
use crate::model::{Bitfield, Bits, Decode, Schema};

/// `CR_ACCESS` -> `CrAccess`, `cr_access_qualification` -> `CrAccessQualification`.
pub(crate) fn type_name(name: &str) -> proc_macro2::Ident {
    ident(&camel_case(&name.to_ascii_lowercase()))
}

pub(super) fn emit(schema: &Schema) -> TokenStream {
    let reasons = reasons(schema);
    let bitfields = schema.bitfields.iter().map(|b| bitfield(schema, b));
    let qualification = qualification(schema);
    quote! {
        use core::fmt;

        #reasons
        #(#bitfields)*
        #qualification
    }
}

fn reasons(schema: &Schema) -> TokenStream {
    let variants: Vec<_> = schema.reasons.iter().map(|r| type_name(&r.name)).collect();
    let docs = schema.reasons.iter().map(|r| {
        let q = r
            .qualification
            .map_or(String::new(), |b| format!(" Exit qualification: [`{}`].", type_name(&schema.bitfields[b].name)));
        format!(" {}: {}{q}", r.number, r.doc)
    });
    let numbers: Vec<_> = schema.reasons.iter().map(|r| Literal::u16_unsuffixed(r.number)).collect();
    let names = schema.reasons.iter().map(|r| &r.name);
    let count = Literal::usize_unsuffixed(schema.reasons.len());
    quote! {
        /// A basic VM-exit reason (SDM Vol. 3D Appendix C): bits 15:0 of the exit-reason field.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[non_exhaustive]
        #[repr(u16)]
        pub enum ExitReason {
            #( #[doc = #docs] #variants = #numbers, )*
        }

        impl ExitReason {
            /// Every reason the schema names, by number.
            pub const ALL: [ExitReason; #count] = [#(ExitReason::#variants),*];

            /// The reason numbered `number`, if the schema names it.
            pub const fn from_number(number: u16) -> Option<ExitReason> {
                match number {
                    #(#numbers => Some(ExitReason::#variants),)*
                    _ => None,
                }
            }

            /// The basic exit reason number.
            pub const fn number(self) -> u16 {
                self as u16
            }

            /// The schema name, e.g. "CR_ACCESS".
            pub const fn name(self) -> &'static str {
                match self { #(ExitReason::#variants => #names,)* }
            }
        }

        /// The name and number, e.g. `CR_ACCESS (28)`.
        impl fmt::Display for ExitReason {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{} ({})", self.name(), self.number())
            }
        }

        impl From<ExitReason> for u16 {
            fn from(reason: ExitReason) -> u16 {
                reason.number()
            }
        }
    }
}

/// The Rust integer type holding `bits` bits.
fn uint(bits: u32) -> TokenStream {
    match bits {
        0..=8 => quote!(u8),
        9..=16 => quote!(u16),
        17..=32 => quote!(u32),
        _ => quote!(u64),
    }
}

fn bitfield(schema: &Schema, b: &Bitfield) -> TokenStream {
    let name = type_name(&b.name);
    let repr = uint(b.width);
    let fields: Vec<_> = b.fields.iter().map(|&f| format!("`{}`", schema.fields[f].name)).collect();
    let doc = format!(" {}", b.doc);
    let decodes = format!(" Decodes {}.", fields.join(", "));
    let reserved = hex(b.reserved_mask());
    let accessors = b.bits.iter().map(|bits| accessors(bits, b.width));
    let enums = b.bits.iter().filter_map(|bits| value_enum(b, bits));
    let debug_fields = b.bits.iter().map(|bits| {
        let text = &bits.name;
        let getter = ident(&bits.name);
        quote!(d.field(#text, &self.#getter());)
    });
    let name_text = name.to_string();
    quote! {
        #[doc = #doc]
        #[doc = ""]
        #[doc = #decodes]
        #[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
        pub struct #name(#repr);

        impl #name {
            /// Bits no range of the schema names (reserved).
            pub const RESERVED: #repr = #reserved;

            /// The value of the field as read.
            pub const fn from_bits(bits: #repr) -> Self {
                Self(bits)
            }

            /// The value to write into the field.
            pub const fn bits(self) -> #repr {
                self.0
            }

            #(#accessors)*
        }

        impl From<#repr> for #name {
            fn from(bits: #repr) -> Self {
                Self(bits)
            }
        }

        impl From<#name> for #repr {
            fn from(value: #name) -> #repr {
                value.0
            }
        }

        /// Every named range, then any reserved bits that are set.
        impl fmt::Debug for #name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                let mut d = f.debug_struct(#name_text);
                #(#debug_fields)*
                if self.0 & Self::RESERVED != 0 {
                    d.field("reserved", &format_args!("{:#x}", self.0 & Self::RESERVED));
                }
                d.finish()
            }
        }

        #(#enums)*
    }
}

/// The getter and the `with_` setter of one range.
fn accessors(bits: &Bits, width: u32) -> TokenStream {
    let repr = uint(width);
    let get = ident(&bits.name);
    let set = ident(&format!("with_{}", bits.name));
    let raw_get = ident(&format!("{}_raw", bits.name));
    let lo = Literal::u32_unsuffixed(bits.lo);
    let len_mask = hex(u64::MAX >> (64 - bits.width()));
    let mask = hex(bits.mask());
    let shifted = if bits.lo == 0 { quote!(self.0) } else { quote!((self.0 >> #lo)) };
    let place = |v: TokenStream| if bits.lo == 0 { v } else { quote!((#v) << #lo) };
    let range = bits.range_text();
    let what = if bits.width() == 1 { format!("bit {range}") } else { format!("bits {range}") };
    let doc = format!(" {} {}.", bits.doc, upper_first(&what));
    let set_doc = format!(" Set {what} ([`Self::{}`]).", bits.name);
    let raw_doc = format!(" {} as a number ([`Self::{}`] decodes it).", upper_first(&what), bits.name);
    let int = uint(bits.width());
    // Casts only between different types (a same-type cast is noise clippy rejects).
    let same = int.to_string() == repr.to_string();
    let as_int = |ty: &TokenStream| (ty.to_string() != repr.to_string()).then(|| quote!(as #ty));
    let as_repr = (!same).then(|| quote!(as #repr));
    let raw_value = {
        let cast = as_int(&int);
        quote!((#shifted & #len_mask) #cast)
    };
    let reason_value = {
        let cast = as_int(&quote!(u16));
        quote!((#shifted & #len_mask) #cast)
    };
    match &bits.decode {
        Decode::Plain if bits.width() == 1 => {
            let put = place(quote!(value as #repr));
            quote! {
                #[doc = #doc]
                pub const fn #get(self) -> bool {
                    #shifted & 1 == 1
                }
                #[doc = #set_doc]
                pub const fn #set(self, value: bool) -> Self {
                    Self(self.0 & !#mask | #put)
                }
            }
        }
        Decode::Plain => {
            let put = place(quote!(value #as_repr & #len_mask));
            let set_doc = format!("{set_doc} Bits of `value` above the range are dropped.");
            quote! {
                #[doc = #doc]
                pub const fn #get(self) -> #int {
                    #raw_value
                }
                #[doc = #set_doc]
                pub const fn #set(self, value: #int) -> Self {
                    Self(self.0 & !#mask | #put)
                }
            }
        }
        Decode::ExitReason => {
            let cast = (repr.to_string() != "u16").then(|| quote!(as #repr));
            let put = place(quote!(value.number() #cast));
            quote! {
                #[doc = #doc]
                pub const fn #get(self) -> Option<ExitReason> {
                    ExitReason::from_number(#reason_value)
                }
                #[doc = #raw_doc]
                pub const fn #raw_get(self) -> #int {
                    #raw_value
                }
                #[doc = #set_doc]
                pub const fn #set(self, value: ExitReason) -> Self {
                    Self(self.0 & !#mask | #put)
                }
            }
        }
        Decode::Values { name, values } => {
            let ty = ident(name);
            let variants: Vec<_> = values.iter().map(|v| type_name(&v.name)).collect();
            let numbers: Vec<_> = values.iter().map(|v| Literal::u64_unsuffixed(v.value)).collect();
            let total = values.len() as u64 == 1u64 << bits.width();
            let put = place(quote!(value as #repr));
            let (ret, arms) = if total {
                let (last, rest) = variants.split_last().expect("a total enum has values");
                let rest_numbers = &numbers[..rest.len()];
                (quote!(#ty), quote!(#(#rest_numbers => #ty::#rest,)* _ => #ty::#last,))
            } else {
                (quote!(Option<#ty>), quote!(#(#numbers => Some(#ty::#variants),)* _ => None,))
            };
            quote! {
                #[doc = #doc]
                pub const fn #get(self) -> #ret {
                    match #raw_value { #arms }
                }
                #[doc = #raw_doc]
                pub const fn #raw_get(self) -> #int {
                    #raw_value
                }
                #[doc = #set_doc]
                pub const fn #set(self, value: #ty) -> Self {
                    Self(self.0 & !#mask | #put)
                }
            }
        }
    }
}

fn upper_first(s: &str) -> String {
    let mut c = s.chars();
    c.next().map_or(String::new(), |f| f.to_ascii_uppercase().to_string() + c.as_str())
}

/// The enum of a range with named values.
fn value_enum(b: &Bitfield, bits: &Bits) -> Option<TokenStream> {
    let Decode::Values { name, values } = &bits.decode else { return None };
    let ty = ident(name);
    let int = uint(bits.width());
    let variants = values.iter().map(|v| type_name(&v.name));
    let numbers = values.iter().map(|v| Literal::u64_unsuffixed(v.value));
    let docs = values.iter().map(|v| format!(" {}: {}", v.value, v.doc));
    let doc =
        format!(" {} (bits {} of [`{}`]).", bits.doc.trim_end_matches('.'), bits.range_text(), type_name(&b.name));
    // Every value of the range named: the enum cannot grow.
    let grows = (values.len() as u64) < 1u64 << bits.width();
    let non_exhaustive = grows.then(|| quote!(#[non_exhaustive]));
    Some(quote! {
        #[doc = #doc]
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        #non_exhaustive
        #[repr(#int)]
        pub enum #ty {
            #( #[doc = #docs] #variants = #numbers, )*
        }
    })
}

/// `Qualification`: the exit qualification typed by the reason that reported it.
fn qualification(schema: &Schema) -> TokenStream {
    let with: Vec<_> = schema.reasons.iter().filter_map(|r| r.qualification.map(|b| (r, b))).collect();
    let variants: Vec<_> = with.iter().map(|(r, _)| type_name(&r.name)).collect();
    let types: Vec<_> = with.iter().map(|(_, b)| type_name(&schema.bitfields[*b].name)).collect();
    let docs = with.iter().map(|(r, _)| format!(" [`ExitReason::{}`].", type_name(&r.name)));
    quote! {
        /// An exit qualification decoded by the exit reason that reported it.
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        #[non_exhaustive]
        pub enum Qualification {
            #( #[doc = #docs] #variants(#types), )*
            /// A reason whose qualification the schema does not lay out: the raw value.
            Other(u64),
        }

        impl Qualification {
            /// Decode the EXIT_QUALIFICATION value of an exit with basic reason `reason`.
            pub const fn decode(reason: ExitReason, qualification: u64) -> Qualification {
                match reason {
                    #(ExitReason::#variants => Qualification::#variants(#types::from_bits(qualification)),)*
                    _ => Qualification::Other(qualification),
                }
            }
        }
    }
}
