//! nested_state.rs: the vmcs12 facts KVM_SET_NESTED_STATE's rules read (`vmcs-nested-state`'s
//! `Vmcs12Shape`), taken from the model by the method `vmcs-gen state` uses
//! (`Schema::nested_state_shape`), and tied to the generated struct by offset proofs.

use proc_macro2::{Literal, TokenStream};
use quote::quote;

use super::{hex, ident, layout::struct_name};
use crate::model::{Layout, MemberType, Schema};

pub(super) fn emit(schema: &Schema, layout: &Layout) -> TokenStream {
    let shape = match schema.nested_state_shape(layout) {
        Ok(shape) => shape,
        Err(e) => return quote!(compile_error!(#e);),
    };
    let (module, name) = (ident(&layout.name), struct_name(&layout.name));
    let member_at = |offset: usize| {
        let m = layout.members.iter().find(|m| m.offset as usize == offset && m.ty != MemberType::Reserved);
        ident(&m.expect("nested_state_shape returns member offsets").name)
    };
    let offsets = [shape.hdr, shape.primary_controls, shape.secondary_controls, shape.link_pointer];
    let proofs = offsets.map(|off| {
        let (member, off) = (member_at(off), Literal::usize_unsuffixed(off));
        quote!(assert!(core::mem::offset_of!(#name, #member) == #off);)
    });
    let (size, revision) = (Literal::usize_unsuffixed(shape.struct_size), hex(shape.revision as u64));
    let [hdr, primary, secondary, link] = offsets.map(Literal::usize_unsuffixed);
    let doc = format!(" `{}` as the KVM_SET_NESTED_STATE rules see it.", layout.name);
    quote! {
        use crate::layouts::#module::#name;

        #[doc = #doc]
        pub const VMCS12_SHAPE: vmcs_nested_state::Vmcs12Shape = vmcs_nested_state::Vmcs12Shape {
            struct_size: #size,
            revision: #revision,
            hdr: #hdr,
            primary_controls: #primary,
            secondary_controls: #secondary,
            link_pointer: #link,
        };

        const _: () = {
            let size = size_of::<#name>();
            assert!(size == #size);
            #(#proofs)*
            assert!(VMCS12_SHAPE.validate().is_ok(), "vmcs12 must fit a nested-state area");
        };
    }
}
