//! Nested VMX for a Rust L0: L1's VMX operation emulated over a vmcs12, on the code the `vmcs`
//! runtime generates from the schema.
//!
//! - [`caps`]: the IA32_VMX_* capability MSRs L1 reads, a subset of the host's for the
//!   capabilities L0 offers ([`caps::Offer`]), with VMCS_ENUM for exactly the fields L1 can use.
//! - [`vmx`]: [`vmx::NestedVmx`], one vCPU's VMX state, and [`vmx::NestedVmx::handle_exit`],
//!   which emulates VMXON, VMXOFF, VMCLEAR, VMPTRLD, VMPTRST, VMREAD, VMWRITE, VMLAUNCH,
//!   VMRESUME, INVEPT and INVVPID with the SDM's checks, VM-instruction errors and exceptions (the
//!   VM-entry checks on vmcs12 are the generated `vmcs::entry` checker).
//! - [`current`]: the cached current VMCS region (vmcs12 plus the fields it has no room for).
//! - [`operand`], [`paging`]: register and memory operands, decoded from the exit's instruction
//!   information, through L1's segmentation and paging, faults injected as the SDM says.
//! - [`routing`]: which exits of L2 go to L1, from L1's controls.
//! - [`vmcs02`], [`reflect`]: the nested VM entry (vmcs12 -> vmcs02) and exit (vmcs02 -> vmcs12,
//!   exit information, L1's host state into vmcs01), on the generated copy routines;
//!   [`exit_facts`]: an exit's information read from vmcs02 once.
//! - [`migrate`]: L1's VMX state saved as a KVM_GET_NESTED_STATE blob (L2 running or not) and
//!   restored with KVM's rules; vmcs12 through an older layout with the generated translators.
//! - [`msr_list`]: vmcs12's VM-entry MSR-load, VM-exit MSR-store and MSR-load lists, in software.
//! - [`nested_ept`]: L1's EPT12 walked, EPT02 built from it lazily, EPT faults reflected.
//! - [`shadow`]: VMCS shadowing of L1's VMREAD/VMWRITE (the generated bitmaps and shadow sets).
//! - [`count`]: VMREAD/VMWRITE counting on any backend; [`kvm_count`]: KVM 7.2.8's for the same
//!   nested events, from its code paths as the shared reference describes them.
//!
//! Generic over L1 memory ([`vcpu::GuestMemory`]), over the VMCS backend holding vmcs01 (the
//! hardware VMCS or [`vmcs::soft::SoftVmcs`]) and over what only L0 knows ([`vcpu::L1Cpu`]). No
//! allocation anywhere.
#![no_std]
#![deny(missing_docs)]

pub mod caps;
pub mod count;
pub mod current;
pub mod exit_facts;
pub mod hooks;
mod insn;
pub mod kvm_count;
pub mod migrate;
pub mod msr_list;
pub mod nested_ept;
pub mod operand;
pub mod paging;
pub mod reflect;
pub mod routing;
pub mod shadow;
mod shadow_cache;
pub mod vcpu;
pub mod vmcs02;
pub mod vmx;
