//! copy.rs: one function per copy set, the predicate trait, the dirty groups and the shadow lists.

use proc_macro2::{Ident, TokenStream};
use quote::quote;

use super::{bit_test, camel_case, gate_expr, hex, ident, nested_gate_expr};
use crate::encoding::Width;
use crate::gate::Gate;
use crate::model::{CleanGroup, CopyItem, CopySet, PredId, Role, Schema, ShadowAccess};

pub(super) fn emit(schema: &Schema) -> TokenStream {
    let predicates = schema.predicates.iter().map(|p| {
        let name = ident(&p.name);
        let doc = format!(" {}", p.doc);
        quote!(#[doc = #doc] fn #name(&self) -> bool;)
    });
    let mask_consts = schema.predicates.iter().enumerate().map(|(i, p)| {
        let c = ident(&p.name.to_ascii_uppercase());
        let doc = format!(" {}", p.doc);
        let bit = proc_macro2::Literal::u32_unsuffixed(i as u32);
        quote!(#[doc = #doc] pub const #c: PredicateMask = PredicateMask(1 << #bit);)
    });
    let mask_methods = schema.predicates.iter().enumerate().map(|(i, p)| {
        let m = ident(&p.name);
        let test = bit_test(quote!(self.0), i as u32);
        quote!(fn #m(&self) -> bool { #test })
    });
    let pred_names = schema.predicates.iter().map(|p| &p.name);
    let pred_count = proc_macro2::Literal::usize_unsuffixed(schema.predicates.len());
    let groups: Vec<Ident> = schema.groups.iter().map(|g| ident(&camel_case(&g.name))).collect();
    let group_docs = schema.groups.iter().map(|g| format!(" {}", g.doc));
    let group_names = schema.groups.iter().map(|g| &g.name);
    let group_count = proc_macro2::Literal::usize_unsuffixed(schema.groups.len());
    let group_arms = schema.groups.iter().zip(&groups).flat_map(|(g, v)| {
        g.fields.iter().map(move |&f| {
            let pat = encodings_pattern(schema, f);
            quote!(#pat => Some(Group::#v))
        })
    });
    let sets = schema.sets.iter().map(|s| emit_set(schema, s, false));
    let backs =
        schema.sets.iter().filter(|s| s.shadow == Some(ShadowAccess::ReadWrite)).map(|s| emit_set(schema, s, true));
    let shadow_list = |access: ShadowAccess| -> Vec<syn::LitInt> {
        let mut v: Vec<_> = schema
            .sets
            .iter()
            .filter(|s| s.shadow == Some(access))
            .flat_map(|s| s.items.iter().map(|i| schema.fields[i.field].encoding.raw()))
            .collect();
        v.sort();
        v.into_iter().map(|e| hex(e as u64)).collect()
    };
    let (ro, rw) = (shadow_list(ShadowAccess::ReadOnly), shadow_list(ShadowAccess::ReadWrite));
    quote! {
        use crate::access::{VmcsError, VmcsRead, VmcsWrite};
        use crate::caps::{Cap, Capabilities};
        use crate::copy::{CleanFields, DirtyGroups, copy_field};
        use crate::fields;

        /// Conditions only the hypervisor knows, named in the schema's copy sets.
        pub trait CopyPredicates {
            #(#predicates)*
        }

        /// Predicate values as a bit mask (bit n = the n-th predicate of the schema): compute once
        /// per nested VM entry or exit, pass to any copy routine.
        #[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
        pub struct PredicateMask(pub u64);

        impl PredicateMask {
            #(#mask_consts)*
            /// Predicate names, by bit.
            pub const NAMES: [&'static str; #pred_count] = [#(#pred_names),*];
        }

        impl core::ops::BitOr for PredicateMask {
            type Output = PredicateMask;
            fn bitor(self, rhs: PredicateMask) -> PredicateMask {
                PredicateMask(self.0 | rhs.0)
            }
        }

        impl CopyPredicates for PredicateMask {
            #(#mask_methods)*
        }

        /// A dirty-tracking group of vmcs12 fields.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum Group {
            #( #[doc = #group_docs] #groups, )*
        }

        impl Group {
            /// Every group, in schema order.
            pub const ALL: [Group; #group_count] = [#(Group::#groups),*];

            /// The schema name.
            pub const fn name(self) -> &'static str {
                match self { #(Group::#groups => #group_names,)* }
            }

            /// The group's bit in a dirty mask.
            pub const fn mask(self) -> u32 {
                1 << self as u32
            }
        }

        /// The dirty group of the vmcs12 field named by `encoding` (full or high access).
        pub fn group_of(encoding: u64) -> Option<Group> {
            match encoding {
                #(#group_arms,)*
                _ => None,
            }
        }

        /// Full encodings shadowed read-only: VMREAD without exit.
        pub const SHADOW_READ_ONLY: &[u32] = &[#(#ro),*];
        /// Full encodings shadowed read-write: VMREAD and VMWRITE without exit.
        pub const SHADOW_READ_WRITE: &[u32] = &[#(#rw),*];

        #(#sets)*
        #(#backs)*
    }
}

/// `0x2010 | 0x2011` for a 64-bit field, `0x681e` otherwise.
fn encodings_pattern(schema: &Schema, f: usize) -> TokenStream {
    let field = &schema.fields[f];
    let full = hex(field.encoding.raw() as u64);
    if field.width == Width::W64 {
        let high = hex(field.encoding.high().raw() as u64);
        quote!(#full | #high)
    } else {
        quote!(#full)
    }
}

fn role_param(role: Role) -> Ident {
    ident(role.as_str())
}

/// A Rust boolean expression over the predicate trait.
fn when_expr(schema: &Schema, gate: &Gate<PredId>) -> TokenStream {
    match gate {
        Gate::Cap(p) => {
            let m = ident(&schema.predicates[*p].name);
            quote!(when.#m())
        }
        Gate::Any(gs) => {
            let parts = gs.iter().map(|g| nested(schema, g));
            quote!(#(#parts)||*)
        }
        Gate::All(gs) => {
            let parts = gs.iter().map(|g| nested(schema, g));
            quote!(#(#parts)&&*)
        }
    }
}

fn nested(schema: &Schema, gate: &Gate<PredId>) -> TokenStream {
    let e = when_expr(schema, gate);
    if matches!(gate, Gate::Cap(_)) { e } else { quote!((#e)) }
}

/// One field copy: skipped when the field does not exist for `caps` or its condition is false.
fn emit_item(schema: &Schema, item: &CopyItem, src: &TokenStream, dst: &Ident) -> TokenStream {
    let f = &schema.fields[item.field];
    let name = ident(&f.name);
    let copy = quote!(copy_field(#src, #dst, fields::#name.raw())?;);
    let caps = quote!(caps);
    match (&f.gate, &item.when) {
        (None, None) => copy,
        (Some(g), None) => {
            let e = gate_expr(schema, g, &caps);
            quote!(if #e { #copy })
        }
        (None, Some(w)) => {
            let w = when_expr(schema, w);
            quote!(if #w { #copy })
        }
        (Some(g), Some(w)) => {
            let (e, w) = (nested_gate_expr(schema, g, &caps), nested(schema, w));
            quote!(if #e && #w { #copy })
        }
    }
}

/// The function for a set; `back` emits the reverse copy of a read-write shadow set.
fn emit_set(schema: &Schema, set: &CopySet, back: bool) -> TokenStream {
    let (from, to) = if back { (set.to, set.from) } else { (set.from, set.to) };
    let (src, dst) = (role_param(from), role_param(to));
    let name = if back { ident(&format!("{}_back", set.name)) } else { ident(&set.name) };
    let doc = if back {
        format!(
            " {} -> {}: what L1 wrote through the shadow VMCS, back into vmcs12 (reverse of `{}`).",
            from.as_str(),
            to.as_str(),
            set.name
        )
    } else {
        format!(" {}", set.doc)
    };
    let uses_caps = set.items.iter().any(|i| schema.fields[i.field].gate.is_some());
    let uses_when = set.items.iter().any(|i| i.when.is_some());
    let caps = if uses_caps { quote!(caps) } else { quote!(_caps) };
    let when = if uses_when { quote!(when) } else { quote!(_when) };
    // A dirty-tracked source is `&mut S`; copies only read it.
    let src_read = if set.dirty && !back { quote!(&*#src) } else { quote!(#src) };
    let body: Vec<TokenStream> = if set.clean && !back {
        clean_gated(schema, set, &src, &src_read, &dst)
    } else if set.dirty && !back {
        // Copy each group only when L1 dirtied it, then clear it (in order of first appearance).
        let mut order: Vec<usize> = Vec::new();
        for i in &set.items {
            let g = schema.group_of(i.field).expect("validated: every field of a dirty set has a group");
            if !order.contains(&g) {
                order.push(g);
            }
        }
        order
            .iter()
            .map(|&g| {
                let v = ident(&camel_case(&schema.groups[g].name));
                let items = set
                    .items
                    .iter()
                    .filter(|i| schema.group_of(i.field) == Some(g))
                    .map(|i| emit_item(schema, i, &src_read, &dst));
                quote! {
                    if #src.is_dirty(Group::#v) {
                        #(#items)*
                        #src.clear_dirty(Group::#v);
                    }
                }
            })
            .collect()
    } else {
        set.items.iter().map(|i| emit_item(schema, i, &src_read, &dst)).collect()
    };
    let (src_ty, src_ref) = if set.dirty && !back {
        (quote!(VmcsRead + DirtyGroups + ?Sized), quote!(&mut S))
    } else if set.clean && !back {
        (quote!(VmcsRead + CleanFields + ?Sized), quote!(&S))
    } else {
        (quote!(VmcsRead + ?Sized), quote!(&S))
    };
    // A clean group may hold a single conditional field: the nested `if` is the schema's shape.
    let allow = if set.clean && !back { quote!(#[allow(clippy::collapsible_if)]) } else { quote!() };
    quote! {
        #[doc = #doc]
        #[inline]
        #allow
        pub fn #name<S, D, C, P>(#src: #src_ref, #dst: &mut D, #caps: &C, #when: &P) -> Result<(), VmcsError>
        where
            S: #src_ty,
            D: VmcsWrite + ?Sized,
            C: Capabilities + ?Sized,
            P: CopyPredicates + ?Sized,
        {
            #(#body)*
            Ok(())
        }
    }
}

/// A clean-gated set: each clean-field group of the source eVMCS is copied only when its bit is
/// clear; fields without a group are always copied, fields in "all" unless every bit is set.
fn clean_gated(schema: &Schema, set: &CopySet, src: &Ident, src_read: &TokenStream, dst: &Ident) -> Vec<TokenStream> {
    let layout = schema.layout("evmcs").expect("validated: clean sets read the evmcs layout");
    let all = layout.clean.as_ref().expect("validated: evmcs has clean fields").all_mask();
    let group_of = |f: usize| layout.members.iter().find(|m| m.field == Some(f)).and_then(|m| m.clean);
    let mut order: Vec<Option<CleanGroup>> = Vec::new();
    for i in &set.items {
        let g = group_of(i.field);
        if !order.contains(&g) {
            order.push(g);
        }
    }
    order
        .into_iter()
        .map(|g| {
            let items: Vec<_> = set
                .items
                .iter()
                .filter(|i| group_of(i.field) == g)
                .map(|i| emit_item(schema, i, src_read, dst))
                .collect();
            match g {
                None => quote!(#(#items)*),
                Some(CleanGroup::Bit(bit)) => {
                    let mask = hex(1u64 << bit);
                    quote!(if #src.clean_fields() & #mask == 0 { #(#items)* })
                }
                Some(CleanGroup::All) => {
                    let all = hex(all as u64);
                    quote!(if #src.clean_fields() & #all != #all { #(#items)* })
                }
            }
        })
        .collect()
}
