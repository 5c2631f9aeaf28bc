//! Unit tests of the `VmcsFields` expansion (over proc_macro2, outside the compiler).

use crate::vmcs_fields::{build_schema, expand};

fn expand_text(input: proc_macro2::TokenStream) -> String {
    let input: syn::DeriveInput = syn::parse2(input).expect("test input parses");
    let out = expand(input).expect("expansion succeeds");
    prettyplease::unparse(&syn::parse2::<syn::File>(out).expect("expansion is a file"))
}

fn expand_errors(input: proc_macro2::TokenStream) -> Vec<String> {
    let input: syn::DeriveInput = syn::parse2(input).expect("test input parses");
    match expand(input) {
        Ok(_) => panic!("expansion should fail"),
        Err(e) => e.into_iter().map(|e| e.to_string()).collect(),
    }
}

#[test]
fn schema_loads() {
    assert!(build_schema().is_ok());
}

#[test]
fn exit_info_expansion_snapshot() {
    let text = expand_text(quote::quote! {
        struct ExitInfo {
            vm_exit_reason: u32,
            #[vmcs(field = "EXIT_QUALIFICATION")]
            qualification: u64,
            vm_exit_instruction_len: u32,
            guest_physical_address: u64,
            guest_cs_selector: u16,
            #[vmcs(skip)]
            handled: bool,
        }
    });
    insta::with_settings!({
        snapshot_path => concat!(env!("CARGO_MANIFEST_DIR"), "/../snapshots"),
        prepend_module_to_snapshot => false,
        omit_expression => true,
    }, {
        insta::assert_snapshot!("derive_expansion", text);
    });
}

#[test]
fn store_is_generated_only_on_request() {
    let load_only = expand_text(quote::quote! { struct H { host_rip: u64 } });
    assert!(!load_only.contains("fn store"));
    let both = expand_text(quote::quote! { #[vmcs(store)] struct H { host_rip: u64, host_cs_selector: u16 } });
    assert!(both.contains("fn store"));
    assert!(both.contains("::vmcs::fields::HOST_RIP.write_to(vmcs, self.host_rip)?;"), "{both}");
    assert!(both.contains("::vmcs::fields::HOST_CS_SELECTOR.write_to(vmcs, self.host_cs_selector)?;"), "{both}");
}

#[test]
fn generics_are_kept() {
    let text = expand_text(quote::quote! {
        struct G<T: Default> where T: Clone { host_rip: u64, #[vmcs(skip)] extra: T }
    });
    assert!(text.contains("impl<T: Default> G<T>\nwhere\n    T: Clone,"), "{text}");
}

#[test]
fn every_error_is_reported() {
    let errs = expand_errors(quote::quote! {
        #[vmcs(store, bogus)]
        struct E {
            vm_exit_reson: u32,
            host_rip: u32,
            #[vmcs(field = "HOST_RIP")]
            rip_again: u64,
            vm_exit_reason: u32,
            #[vmcs(skip, colour = "red")]
            x: bool,
            #[vmcs(field = "NOT_EVEN_CLOSE_TO_ANYTHING")]
            y: u64,
        }
    });
    assert_eq!(errs.len(), 7, "{errs:#?}");
    assert!(errs[0].contains("unknown `#[vmcs(...)]` key `bogus`"), "{}", errs[0]);
    assert!(errs[1].contains("did you mean `VM_EXIT_REASON`?"), "{}", errs[1]);
    assert!(errs[2].contains("`HOST_RIP` is a natural-width field, so this member must be `u64`, not `u32`"));
    assert!(errs[3].contains("`HOST_RIP` is already mapped by member `host_rip`"), "{}", errs[3]);
    assert!(errs[4].contains("`VM_EXIT_REASON` is a read-only VMCS field"), "{}", errs[4]);
    assert!(errs[5].contains("unknown `#[vmcs(...)]` key `colour`"), "{}", errs[5]);
    assert!(errs[6].contains("`NOT_EVEN_CLOSE_TO_ANYTHING` is not a VMCS field of the schema"), "{}", errs[6]);
    assert!(!errs[6].contains("did you mean"), "{}", errs[6]);
}

#[test]
fn non_structs_are_rejected() {
    for input in [
        quote::quote! { enum E { A } },
        quote::quote! { struct T(u64); },
        quote::quote! { struct U; },
        quote::quote! { union X { a: u64 } },
    ] {
        let errs = expand_errors(input);
        assert_eq!(errs.len(), 1);
        assert!(errs[0].contains("named members"), "{}", errs[0]);
    }
}

#[test]
fn suggestions_count_transpositions() {
    let errs = expand_errors(quote::quote! { struct H { host_rpi: u64 } });
    assert!(errs[0].contains("did you mean `HOST_RIP`?"), "{}", errs[0]);
    let errs = expand_errors(quote::quote! { struct H { #[vmcs(field = "guest_rip")] rip: u64 } });
    assert!(
        errs[0].contains("`guest_rip` is not a VMCS field of the schema; did you mean `GUEST_RIP`?"),
        "{}",
        errs[0]
    );
}

#[test]
fn the_runtime_path_can_be_named() {
    let text = expand_text(quote::quote! { #[vmcs(crate = "::hv::vmcs", store)] struct H { host_rip: u64 } });
    assert!(text.contains("::hv::vmcs::fields::HOST_RIP.read_from(vmcs)?"), "{text}");
    assert!(text.contains("B: ::hv::vmcs::VmcsWrite"), "{text}");
    assert!(!text.contains(" ::vmcs::"), "{text}");
    let errs = expand_errors(quote::quote! { #[vmcs(crate = "not a path")] struct H { host_rip: u64 } });
    assert!(errs[0].contains("takes the runtime crate's path"), "{}", errs[0]);
    let errs = expand_errors(quote::quote! { struct H { #[vmcs(crate = "x")] host_rip: u64 } });
    assert!(errs[0].contains("`crate` belongs on the struct"), "{}", errs[0]);
}
