//! copy.rs: the `NestedHooks` trait, one function per copy set, the dirty-tracking tables and the
//! shadow lists. Entries are emitted by `copy_item`.

use proc_macro2::TokenStream;
use quote::quote;

use super::copy_item::{SetCtx, enc, input_name, role_ident, width_type};
use super::{hex, ident};
use crate::encoding::{Kind, Width};
use crate::model::{CleanGroup, CopySet, Role, Runs, Schema, ShadowAccess, Source, Term};

pub(super) fn emit(schema: &Schema) -> TokenStream {
    let trait_ = hooks_trait(schema);
    let dirty = dirty_tables(schema);
    let sets = schema.sets.iter().map(|s| emit_set(schema, s));
    let backs =
        schema.sets.iter().filter(|s| s.shadow == Some(ShadowAccess::ReadWrite)).map(|s| shadow_back(schema, s));
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
        use crate::access::CleanFields;
        use crate::copy::{Tracked, control_bit};
        use crate::fields;

        #trait_
        #dirty

        /// Full encodings shadowed read-only: VMREAD without exit.
        pub const SHADOW_READ_ONLY: &[u32] = &[#(#ro),*];
        /// Full encodings shadowed read-write: VMREAD and VMWRITE without exit.
        pub const SHADOW_READ_WRITE: &[u32] = &[#(#rw),*];

        #(#sets)*
        #(#backs)*
    }
}

/// `NestedHooks`: the predicates and hooks, each documented with where it is called.
fn hooks_trait(schema: &Schema) -> TokenStream {
    let preds = schema.predicates.iter().enumerate().map(|(p, pred)| {
        let name = ident(&pred.name);
        let doc = format!(" {}", pred.doc);
        let used = uses(schema, |s, i| s.items[i].terms().contains(&Term::Pred(p)));
        let used = format!(" Named by: {used}.");
        quote!(#[doc = #doc] #[doc = ""] #[doc = #used] fn #name(&self) -> bool;)
    });
    let hooks = schema.hooks.iter().enumerate().map(|(h, hook)| {
        let name = ident(&hook.name);
        let doc = format!(" {}", hook.doc);
        let used = uses(schema, |s, i| s.items[i].treatments().any(|t| t.source == Source::Hook(h)));
        let used = format!(" Called by: {used}.");
        let params = hook.inputs.iter().map(|i| {
            let n = input_name(schema, i);
            let ty = match *i {
                crate::model::HookInput::Control(_) => quote!(bool),
                crate::model::HookInput::Field(_, f) => width_type(schema.fields[f].width),
            };
            quote!(#n: #ty)
        });
        let ret = width_type(hook.ty);
        quote!(#[doc = #doc] #[doc = ""] #[doc = #used] fn #name(&mut self, #(#params),*) -> Result<#ret, Self::Error>;)
    });
    quote! {
        /// What only the hypervisor (L0) knows or computes, for the generated copy routines: the
        /// predicates their conditions name and the hooks that produce the values KVM computes,
        /// merges or translates rather than copies. Implement it once per vCPU; each method says
        /// which set calls it, for which field.
        pub trait NestedHooks {
            /// The error a hook fails with (e.g. a page L0 cannot map); VMCS access errors convert into it.
            type Error: From<VmcsError>;
            #(#preds)*
            #(#hooks)*
        }
    }
}

/// "`prepare` (GUEST_DR7, GUEST_IA32_PAT), `sync` (GUEST_DR7)" for the entries `pick` selects.
fn uses(schema: &Schema, pick: impl Fn(&CopySet, usize) -> bool) -> String {
    let mut v = Vec::new();
    for s in &schema.sets {
        let fields: Vec<&str> =
            (0..s.items.len()).filter(|&i| pick(s, i)).map(|i| schema.fields[s.items[i].field].name.as_str()).collect();
        if !fields.is_empty() {
            v.push(format!("`{}` ({})", s.name, fields.join(", ")));
        }
    }
    if v.is_empty() { "no set".to_string() } else { v.join(", ") }
}

/// The dirty bits: how many, which an L1 VMWRITE sets, and the bit of each lazily synced field.
fn dirty_tables(schema: &Schema) -> TokenStream {
    let bits = schema.dirty_items().len();
    let words = bits.div_ceil(64).max(1);
    let dirty_sets = schema.sets.iter().filter(|s| s.dirty).count().max(1);
    let mask = |ns: &[usize]| {
        let mut w = vec![0u64; words];
        for &n in ns {
            w[n / 64] |= 1 << (n % 64);
        }
        let w = w.into_iter().map(hex);
        quote!([#(#w),*])
    };
    let arms = schema.fields.iter().enumerate().filter_map(|(f, _)| {
        let ns = schema.dirtied_by(f);
        if ns.is_empty() {
            return None;
        }
        let (pat, m) = (encodings_pattern(schema, f), mask(&ns));
        Some(quote!(#pat => #m))
    });
    let lazy = schema.sets.iter().filter(|s| s.runs == Runs::Lazy).flat_map(|s| &s.items).filter_map(|i| {
        let bit = proc_macro2::Literal::usize_unsuffixed(schema.dirty_bit_of(i.field)?);
        let pat = encodings_pattern(schema, i.field);
        Some(quote!(#pat => Some(#bit)))
    });
    let (bits, words, dirty_sets) = (
        proc_macro2::Literal::usize_unsuffixed(bits),
        proc_macro2::Literal::usize_unsuffixed(words),
        proc_macro2::Literal::usize_unsuffixed(dirty_sets),
    );
    let zero = mask(&[]);
    quote! {
        /// Dirty-tracked entries (bit n = the n-th entry of the `dirty` sets, in schema order).
        pub const DIRTY_BITS: usize = #bits;
        /// Words of a dirty mask.
        pub const DIRTY_WORDS: usize = #words;
        /// Sets with dirty tracking (each remembers the predicates it last ran with).
        pub const DIRTY_SETS: usize = #dirty_sets;

        /// The dirty bits an L1 VMWRITE of `encoding` (full or high access) sets: every tracked
        /// entry that reads the field's value (copied, or a hook input). The control bits an entry
        /// depends on are not here: its set compares them with what it last ran with.
        pub fn dirtied_by(encoding: u64) -> [u64; DIRTY_WORDS] {
            match encoding {
                #(#arms,)*
                _ => #zero,
            }
        }

        /// The dirty bit of a field vmcs12 receives lazily from vmcs02 (`runs = "lazy"`).
        pub fn lazy_bit(encoding: u64) -> Option<usize> {
            match encoding {
                #(#lazy,)*
                _ => None,
            }
        }
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

fn runs_doc(set: &CopySet) -> &'static str {
    match set.runs {
        Runs::Entry if set.dirty => {
            " Runs on every nested VM entry; copies an entry only when an input changed since it last did \
             (an L1 VMWRITE through `Tracked` of a field it reads, or a predicate or vmcs12 control bit it \
             depends on)."
        }
        Runs::Entry => " Runs on every nested VM entry.",
        Runs::Exit => " Runs on every nested VM exit to L1.",
        Runs::Lazy => {
            " Deferred: runs only if an exit left it pending, when L0 needs vmcs12 current (L1 VMREADs \
             one of its fields, VMCLEAR, VMPTRLD of another VMCS, saving nested state); keeps the fields \
             L1 wrote since the exit."
        }
        Runs::Demand => " Runs when the hypervisor calls it.",
    }
}

fn emit_set(schema: &Schema, set: &CopySet) -> TokenStream {
    let watched = if set.dirty { schema.set_watched(set) } else { Vec::new() };
    let ctx = SetCtx { schema, set, watched };
    let name = ident(&set.name);
    let docs = [format!(" {}", set.doc), String::new(), runs_doc(set).to_string()];
    let uses_caps = set.items.iter().any(|i| schema.fields[i.field].gate.is_some())
        || set
            .items
            .iter()
            .flat_map(|i| schema.item_inputs(set, i))
            .any(|(r, f)| r != Role::Vmcs12 && schema.fields[f].gate.is_some());
    let caps = if uses_caps { quote!(caps) } else { quote!(_caps) };
    let tracked_dst = set.to == Role::Vmcs12 && matches!(set.runs, Runs::Exit | Runs::Lazy);
    let (src, dst) = (role_ident(set.from), role_ident(set.to));
    let reads_src = set.clean
        || set.dirty
        || set.items.iter().any(|i| schema.item_inputs(set, i).iter().any(|(r, _)| *r == set.from));
    let src_name = if reads_src { quote!(#src) } else { super::copy_item::unused(set.from) };
    let src_param = if set.dirty { quote!(#src_name: &mut Tracked<L>) } else { quote!(#src_name: &S) };
    let dst_param = if tracked_dst { quote!(#dst: &mut Tracked<L>) } else { quote!(#dst: &mut D) };
    let mut generics = vec![];
    let mut bounds = vec![];
    if set.dirty || tracked_dst {
        generics.push(quote!(L));
        bounds.push(quote!(L: VmcsRead + VmcsWrite));
    }
    if !set.dirty {
        generics.push(quote!(S));
        bounds.push(if set.clean { quote!(S: VmcsRead + CleanFields + ?Sized) } else { quote!(S: VmcsRead + ?Sized) });
    }
    if !tracked_dst {
        generics.push(quote!(D));
        bounds.push(quote!(D: VmcsRead + VmcsWrite + ?Sized));
    }
    generics.push(quote!(C));
    bounds.push(quote!(C: Capabilities + ?Sized));
    let hooks = set.uses_hooks();
    let (hooks_param, ret) = if hooks {
        generics.push(quote!(H));
        bounds.push(quote!(H: NestedHooks + ?Sized));
        (quote!(, hooks: &mut H), quote!(Result<(), H::Error>))
    } else {
        (quote!(), quote!(Result<(), VmcsError>))
    };
    let body = if set.dirty {
        dirty_body(&ctx)
    } else if set.runs == Runs::Lazy {
        lazy_body(&ctx)
    } else if set.clean {
        clean_body(&ctx)
    } else {
        let items = set.items.iter().map(|i| ctx.item(i));
        let defer = defers_lazy(schema, set).then(|| quote!(vmcs12.defer_lazy();));
        quote!(#(#items)* #defer)
    };
    let allow = set.clean.then(|| quote!(#[allow(clippy::collapsible_if)]));
    quote! {
        #(#[doc = #docs])*
        #allow
        pub fn #name<#(#generics),*>(#src_param, #dst_param, #caps: &C #hooks_param) -> #ret
        where
            #(#bounds,)*
        {
            #body
            Ok(())
        }
    }
}

/// An exit set that copies L2's guest state from vmcs02 leaves the lazy sets pending.
fn defers_lazy(schema: &Schema, set: &CopySet) -> bool {
    set.runs == Runs::Exit
        && (set.from, set.to) == (Role::Vmcs02, Role::Vmcs12)
        && schema.sets.iter().any(|s| s.runs == Runs::Lazy)
        && set.items.iter().any(|i| i.is_plain() && schema.fields[i.field].kind == Kind::GuestState)
}

fn dirty_body(ctx: &SetCtx<'_>) -> TokenStream {
    let (schema, set) = (ctx.schema, ctx.set);
    let first = schema.dirty_items().iter().position(|&(si, _)| std::ptr::eq(&schema.sets[si], set)).unwrap_or(0);
    let slot = schema.sets.iter().take_while(|s| !std::ptr::eq(*s, set)).filter(|s| s.dirty).count();
    // The watched values, evaluated once: bit k is the k-th term (a predicate or a control bit).
    let watch_ctx = SetCtx { schema, set, watched: Vec::new() };
    let parts = ctx.watched.iter().enumerate().map(|(k, &t)| {
        let (v, bit) = (watch_ctx.term(t), proc_macro2::Literal::u32_unsuffixed(k as u32));
        if k == 0 { quote!(u64::from(#v)) } else { quote!((u64::from(#v) << #bit)) }
    });
    let slot = proc_macro2::Literal::usize_unsuffixed(slot);
    let (prelude, done) = if ctx.watched.is_empty() {
        (None, None)
    } else {
        let prelude = quote! {
            let now: u64 = #(#parts)|*;
            let changed = vmcs12.changed_since(#slot, now);
        };
        (Some(prelude), Some(quote!(vmcs12.ran_with(#slot, now);)))
    };
    let items = set.items.iter().enumerate().map(|(k, item)| {
        let n = proc_macro2::Literal::usize_unsuffixed(first + k);
        let mask = schema.item_watched(item).iter().fold(0u64, |m, t| {
            m | 1 << ctx.watched.iter().position(|w| w == t).expect("the set watches its items' terms")
        });
        let redo = if mask == 0 {
            quote!(vmcs12.is_dirty(#n))
        } else {
            let m = hex(mask);
            quote!(vmcs12.is_dirty(#n) || changed & #m != 0)
        };
        let code = ctx.item(item);
        quote!(if #redo { #code vmcs12.clean(#n); })
    });
    quote!(#prelude #(#items)* #done)
}

fn lazy_body(ctx: &SetCtx<'_>) -> TokenStream {
    let items = ctx.set.items.iter().map(|item| {
        let n = ctx.schema.dirty_bit_of(item.field).expect("validated: a lazily synced field has a dirty bit");
        let n = proc_macro2::Literal::usize_unsuffixed(n);
        ctx.item_if(item, Some(quote!(!vmcs12.is_dirty(#n))))
    });
    quote! {
        if !vmcs12.lazy_pending() {
            return Ok(());
        }
        #(#items)*
        vmcs12.lazy_done();
    }
}

/// The reverse of a read-write shadow set: what L1 wrote through the shadow VMCS, into vmcs12,
/// dirtying what changed (those writes bypassed `Tracked`).
fn shadow_back(schema: &Schema, set: &CopySet) -> TokenStream {
    let name = ident(&format!("{}_back", set.name));
    let doc = format!(
        " shadow -> vmcs12: what L1 wrote through the shadow VMCS, back into vmcs12 before an entry \
         (reverse of `{}`; KVM copy_shadow_to_vmcs12). A changed value dirties what reads it.",
        set.name
    );
    let items = set.items.iter().map(|i| {
        let e = enc(schema, i.field);
        let code = quote!(let v = shadow.read_raw(#e)?; vmcs12.write_l0(#e, v)?;);
        match &schema.fields[i.field].gate {
            Some(g) => {
                let g = super::gate_expr(schema, g, &quote!(caps));
                quote!(if #g { #code })
            }
            None => quote!({ #code }),
        }
    });
    quote! {
        #[doc = #doc]
        pub fn #name<S, L, C>(shadow: &S, vmcs12: &mut Tracked<L>, caps: &C) -> Result<(), VmcsError>
        where
            S: VmcsRead + ?Sized,
            L: VmcsRead + VmcsWrite,
            C: Capabilities + ?Sized,
        {
            #(#items)*
            Ok(())
        }
    }
}

/// A clean-gated set: each clean-field group of the source eVMCS is copied only when its bit is
/// clear; fields without a group are always copied, fields in "all" unless every bit is set.
fn clean_body(ctx: &SetCtx<'_>) -> TokenStream {
    let (schema, set) = (ctx.schema, ctx.set);
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
    let src = role_ident(set.from);
    let parts = order.into_iter().map(|g| {
        let items: Vec<_> = set.items.iter().filter(|i| group_of(i.field) == g).map(|i| ctx.item(i)).collect();
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
    });
    quote!(#(#parts)*)
}
