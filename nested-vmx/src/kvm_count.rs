//! KVM 7.2.8's VMREADs and VMWRITEs for the nested events an L0 counts, derived from KVM's code
//! paths as the shared reference describes them (`kvm/nested-flow.md` and `kvm/copy-routines.md`,
//! the section beside each step): one access per VMCS field a step reads or writes, KVM's
//! register and control-field caches taken as the reference gives them. [`Kvm`] follows KVM's
//! flags (`dirty_vmcs12`, `need_sync_vmcs02_to_vmcs12_rare`) through the exits an L0 sees, so it
//! tells what KVM would do for the same instructions of L1 on the same host.
//!
//! The copy-routine steps are runtime/tests/copy_counts.rs's derivation for an L1 configured as
//! this crate's L0 lets L1 configure its L2 (no TPR shadow, APIC virtualization, PML, preemption
//! timer, PAT, BNDCFGS or CET controls); KVM's host-dependent rows follow the host's capabilities
//! as KVM's module defaults use them. Two steps come from Linux's vmx.c, which the reference does
//! not detail: the exit path's reads ([`EXIT`]) and the instruction skip ([`SKIP`]). Not counted:
//! vmcs02's constant host state, the MSR lists, and the VMWRITEs of KVM's VM entry (HOST_RSP when
//! the stack moved, HOST_CR3/CR4 when they changed), where an L0's meter counts its own (e.g.
//! `vmcs::hw`'s HOST_RSP/HOST_RIP at a VMCS's first entry): KVM's side errs low, never high.

use vmcs::caps::{Cap, Capabilities};
use vmcs::copy::{SHADOW_READ_ONLY, SHADOW_READ_WRITE, lazy_bit};

use crate::count::Counts;

const fn r(reads: u32) -> Counts {
    Counts { reads, writes: 0 }
}
const fn w(writes: u32) -> Counts {
    Counts { reads: 0, writes }
}

/// Every exit KVM handles reads its reason (nested-flow §3, `__vmx_handle_exit`) and, right
/// after the exit, the IDT-vectoring information (vmx.c `vmx_vcpu_enter_exit`, which the shared
/// reference does not detail; Linux reads it there on every exit that is not an entry failure).
pub const EXIT: Counts = r(2);
/// An exit of L2 going to L1 (§3, `nested_vmx_reflect_vmexit` step 4; nested.h:34): the
/// interruption information, the qualification and the instruction length from vmcs02.
pub const REFLECT: Counts = r(3);
/// ... and the interruption error code of an exception that has one.
pub const REFLECT_ERROR_CODE: Counts = r(1);
/// `sync_vmcs02_to_vmcs12` (§4.1 step 7, copy-routines §4), the rare set deferred: GUEST_CR0
/// and CR0_READ_SHADOW, GUEST_CR4 and CR4_READ_SHADOW (the three-way merges), RSP, RIP, RFLAGS, CS
/// and SS access rights, interruptibility, CR3 (L0 on EPT), the linear address, the entry
/// controls' IA-32e bit; activity, DR7 and EFER come from vCPU state.
pub const SYNC: Counts = r(13);
/// ... with nested EPT and L2 in PAE paging: GUEST_PDPTR0-3.
pub const SYNC_PDPTRS: Counts = r(4);
/// `prepare_vmcs12` (§4.2): VMX_INSTRUCTION_INFO; IDT vectoring comes from KVM's event state.
pub const EXIT_INFO: Counts = r(1);
/// `load_vmcs12_host_state` (§4.3), one access per field a row sets: the interruptibility read,
/// then EFER, RSP, RIP, RFLAGS, interruptibility, CR0 and CR4 with their read shadows, CR3,
/// SYSENTER_CS/ESP/EIP, IDTR and GDTR base and limit, 8 segments × (selector, base, limit, access
/// rights), DR7, DEBUGCTL (the PAT, BNDCFGS, CET and PERF_GLOBAL_CTRL rows need exit controls an
/// L0 of this crate does not offer).
pub const HOST_STATE: Counts = Counts { reads: 1, writes: 1 + 2 + 1 + 1 + 4 + 1 + 3 + 4 + 32 + 2 };
/// `copy_vmcs12_to_shadow` before L1 runs after a nested exit (§6 (a)): every shadowed field.
pub const SHADOW_FILL: Counts = w(SHADOW_READ_WRITE.len() as u32 + SHADOW_READ_ONLY.len() as u32);
/// `copy_shadow_to_vmcs12` at VMLAUNCH/VMRESUME (§1.8 step 6): the read-write shadow fields.
pub const SHADOW_DRAIN: Counts = r(SHADOW_READ_WRITE.len() as u32);
/// `copy_vmcs02_to_vmcs12_rare` (copy-routines §3; §1.6 step 5, §1.7 step 6): the 35 rare fields.
pub const RARE_SYNC: Counts = r(35);
/// Retiring an emulated instruction (§0: every result advances L1's RIP; vmx.c
/// `__skip_emulated_instruction`, which the shared reference does not detail): the instruction
/// length, RIP read and written, and `vmx_set_interrupt_shadow(vcpu, 0)`, which reads
/// GUEST_INTERRUPTIBILITY_INFO and writes it only when STI or MOV-SS blocking was set (never
/// here). CS's access rights for the 32-bit wrap are the ones KVM's segment cache already holds.
pub const SKIP: Counts = Counts { reads: 3, writes: 1 };
/// `handle_vmread`/`handle_vmwrite` with a register operand (§1.6, §1.7, §1.0, §0):
/// VMX_INSTRUCTION_INFO; CPL (SS access rights); 64-bit mode for the register width (CS access
/// rights; EFER is vCPU state); VMsucceed's RFLAGS, read and written; then [`SKIP`].
pub const VMREAD_VMWRITE: Counts = Counts { reads: 4 + SKIP.reads, writes: 1 + SKIP.writes };
/// ... with a memory operand: the displacement in the exit qualification (§1.0).
pub const MEMORY_OPERAND: Counts = r(1);
/// A VMWRITE of a read-only shadow field, written through to the shadow VMCS (§1.7 step 9).
pub const SHADOW_WRITE_THROUGH: Counts = w(1);
/// `nested_vmx_run` before the entry (§1.8 steps 1 and 7): CPL, vmcs01's interruptibility (MOV SS
/// blocking); L1's EFER.LMA is vCPU state.
pub const RUN: Counts = r(2);
/// `prepare_vmcs02_early` (§2.1): pin, primary, secondary, entry and exit controls; on the
/// VMLAUNCH/VMRESUME entry the event fields VM_ENTRY_INTR_INFO, VM_ENTRY_EXCEPTION_ERROR_CODE,
/// VM_ENTRY_INSTRUCTION_LEN and GUEST_INTERRUPTIBILITY_INFO.
pub const EARLY: Counts = w(5 + 4);
/// `prepare_vmcs02_early_rare` with vmcs12 dirty (§2.1): VMCS_LINK_POINTER, VIRTUAL_PROCESSOR_ID.
pub const EARLY_RARE: Counts = w(2);
/// `prepare_vmcs02_constant_state` on the first entry after VMXON (§2.1): of its writes, the two
/// an entry of the schema's sets has (POSTED_INTR_NV, MSR_BITMAP); the others are vmcs02's
/// constant host state and MSR-list addresses, not counted on either side.
pub const CONSTANT: Counts = w(2);
/// `prepare_vmcs02_rare` with vmcs12 dirty (copy-routines §1): 36 segment fields, SYSENTER_CS/ESP/
/// EIP and the pending debug exceptions, the #PF error-code mask and match (L0 on EPT does not
/// intercept #PF), CR4_GUEST_HOST_MASK (`set_cr4_guest_host_mask`, called from it).
pub const RARE: Counts = w(36 + 4 + 2 + 1);
/// ... on a host with APICv (`cpu_has_vmx_apicv`): the 4 EOI-exit bitmaps.
pub const RARE_APICV: Counts = w(4);
/// `prepare_vmcs02` (§2.2, copy-routines §2): GUEST_DR7 and DEBUGCTL, RFLAGS, CR0_GUEST_HOST_MASK,
/// EXCEPTION_BITMAP, PAT, TSC_OFFSET, EPT_POINTER, GUEST_CR0 and CR0_READ_SHADOW, GUEST_CR4 and
/// CR4_READ_SHADOW, GUEST_IA32_EFER, GUEST_CR3 (L0 on EPT), RSP, RIP.
pub const PREPARE: Counts = w(2 + 1 + 1 + 1 + 1 + 1 + 1 + 2 + 2 + 1 + 1 + 2);
/// ... on a host with TSC scaling (`has_tsc_control`): TSC_MULTIPLIER.
pub const PREPARE_TSC_SCALING: Counts = w(1);
/// An I/O instruction of L2 that L1 does not intercept, which KVM handles in L2's context (§3):
/// the qualification (L1's I/O bitmaps), CS access rights (the 64-bit wrap), then [`SKIP`].
pub const L0_IO: Counts = Counts { reads: 2 + SKIP.reads, writes: SKIP.writes };

/// KVM's side of one vCPU's nested events: its flags and the accesses accumulated since the last
/// [`Kvm::take`].
#[derive(Clone, Copy, Debug)]
pub struct Kvm {
    shadowing: bool,
    apicv: bool,
    tsc_scaling: bool,
    /// `dirty_vmcs12`: the next entry runs the rare preparation.
    dirty: bool,
    /// `need_sync_vmcs02_to_vmcs12_rare`.
    rare_pending: bool,
    /// `vmcs02_initialized`.
    initialized: bool,
    counts: Counts,
}

impl Kvm {
    /// KVM on a host with capabilities `host`, shadowing L1's VMREAD/VMWRITE when `shadowing`
    /// (`enable_shadow_vmcs`, its default where the host has VMCS shadowing).
    pub fn new<C: Capabilities + ?Sized>(host: &C, shadowing: bool) -> Self {
        let apicv = host.has(Cap::Proc2ApicRegisterVirtualization)
            && host.has(Cap::Proc2VirtualInterruptDelivery)
            && host.has(Cap::PinProcessPostedInterrupts);
        Kvm {
            shadowing,
            apicv,
            tsc_scaling: host.has(Cap::Proc2UseTscScaling),
            dirty: false,
            rare_pending: false,
            initialized: false,
            counts: Counts::default(),
        }
    }

    /// The accesses since the last call.
    pub fn take(&mut self) -> Counts {
        core::mem::take(&mut self.counts)
    }

    fn add(&mut self, c: Counts) {
        self.counts = self.counts + c;
    }

    /// An exit of L1 that KVM handles as this L0 did (`ours`: the L0's own accesses for it).
    pub fn l1_exit_as_ours(&mut self, ours: Counts) {
        self.add(ours);
    }

    /// L1's VMPTRLD made another VMCS current (`set_current_vmptr`, §1.4): vmcs12 dirty and, with
    /// shadowing, the shadow filled before L1 runs (§6 (a)); the instruction's own accesses
    /// counted as the L0's (`ours`).
    pub fn l1_vmptrld(&mut self, ours: Counts) {
        self.dirty = true;
        self.add(ours);
        if self.shadowing {
            self.add(SHADOW_FILL);
        }
    }

    /// L1's VMREAD of `field` that exited.
    pub fn l1_vmread(&mut self, field: u64, memory: bool) {
        self.add(EXIT + VMREAD_VMWRITE);
        if memory {
            self.add(MEMORY_OPERAND);
        }
        if self.rare_pending && lazy_bit(field).is_some() {
            self.add(RARE_SYNC);
            self.rare_pending = false;
        }
    }

    /// L1's VMWRITE of `field` that exited.
    pub fn l1_vmwrite(&mut self, field: u64, memory: bool) {
        self.add(EXIT + VMREAD_VMWRITE);
        if memory {
            self.add(MEMORY_OPERAND);
        }
        let full = (field & !1) as u32;
        if !SHADOW_READ_WRITE.contains(&full) {
            if self.rare_pending {
                self.add(RARE_SYNC);
                self.rare_pending = false;
            }
            self.dirty = true;
            if self.shadowing && SHADOW_READ_ONLY.contains(&full) {
                self.add(SHADOW_WRITE_THROUGH);
            }
        }
    }

    /// L1's VMLAUNCH/VMRESUME that passed the checks, up to the entry of vmcs02.
    pub fn l1_run(&mut self) {
        self.add(EXIT + RUN + EARLY + PREPARE);
        if self.shadowing {
            self.add(SHADOW_DRAIN);
        }
        if !self.initialized {
            self.add(CONSTANT);
            self.initialized = true;
        }
        if self.dirty {
            self.add(EARLY_RARE + RARE);
            if self.apicv {
                self.add(RARE_APICV);
            }
            self.dirty = false;
        }
        if self.tsc_scaling {
            self.add(PREPARE_TSC_SCALING);
        }
    }

    /// An exit of L2 reflected to L1 (`pdptrs`: nested EPT and PAE paging; `error_code`: an
    /// exception with an error code), up to L1 running at its host RIP.
    pub fn l2_exit_to_l1(&mut self, pdptrs: bool, error_code: bool) {
        self.add(EXIT + REFLECT + SYNC + EXIT_INFO + HOST_STATE);
        if pdptrs {
            self.add(SYNC_PDPTRS);
        }
        if error_code {
            self.add(REFLECT_ERROR_CODE);
        }
        if self.shadowing {
            self.add(SHADOW_FILL);
        }
        self.rare_pending = true;
    }

    /// An I/O instruction of L2 that L0 handles.
    pub fn l2_io(&mut self) {
        self.add(EXIT + L0_IO);
    }

    /// Another exit of L2 that L0 handles, as this L0 did (`ours`).
    pub fn l2_exit_as_ours(&mut self, ours: Counts) {
        self.add(ours);
    }
}
