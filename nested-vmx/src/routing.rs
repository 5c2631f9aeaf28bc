//! Which VM exits of L2 L0 handles and which it reflects to L1, from L1's controls in vmcs12
//! (KVM's `nested_vmx_l0_wants_exit` / `nested_vmx_l1_wants_exit`, SDM Vol. 3C 26.1-26.2).
//!
//! [`route`] is a pure function of the exit, vmcs12, L1's bitmaps in L1 memory and what L0 keeps
//! for itself ([`L0Keeps`]). An exit reflected to L1 reaches it through the nested VM exit; one
//! L0 keeps is handled in L2's context and L2 resumes.

use vmcs::caps::Cap;
use vmcs::exit::{CrAccessQualification, CrAccessType, ExitReason as R, IoQualification, VmExitReason};
use vmcs::fields as F;
use vmcs::{Vmcs12, VmcsRead};

use crate::vcpu::GuestMemory;

/// One exit of L2, as vmcs02 reports it, with the one operand some rules need.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Exit {
    /// The exit-reason field.
    pub reason: VmExitReason,
    /// The exit qualification (CR access, I/O, VMREAD/VMWRITE exits).
    pub qualification: u64,
    /// VM-exit interruption information (exception and interrupt exits).
    pub intr_info: u32,
    /// VM-exit interruption error code (for #PF's error-code filter).
    pub intr_error_code: u32,
    /// The operand named by [`Exit::operand_register`], read by L0 from L2's registers: ECX of an
    /// MSR access, the source of a MOV to CR0/CR4, the field of VMREAD/VMWRITE, EAX of ENCLS.
    pub operand: u64,
}

impl Exit {
    /// The basic exit reason (None for a number the SDM does not define).
    pub const fn basic(&self) -> Option<R> {
        self.reason.basic()
    }

    /// The general register whose value [`Exit::operand`] must hold (SDM numbering), if any.
    /// `insn_info` is vmcs02's VM-exit instruction information.
    pub const fn operand_register(reason: R, qualification: u64, insn_info: u32) -> Option<u8> {
        let cr = CrAccessQualification::from_bits(qualification);
        match reason {
            R::MsrRead | R::MsrWrite => Some(1),
            R::CrAccess if cr.access_type_raw() == CrAccessType::MovToCr as u8 => Some(cr.gpr()),
            R::Vmread | R::Vmwrite => Some((insn_info >> 28 & 0xf) as u8),
            R::Encls => Some(0),
            _ => None,
        }
    }
}

/// Exits L0 needs for itself whatever L1 asked.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct L0Keeps {
    /// External interrupts are L0's (KVM). False for an L0 that lets L1 own the interrupt
    /// controller: the exit then exists only because L1 asked for it.
    pub external_interrupts: bool,
    /// Hardware NMIs are L0's.
    pub nmis: bool,
    /// Exceptions L0 must see first even when L1 intercepts them (KVM: #DB/#BP while
    /// userspace debugs, #AC for split-lock detection).
    pub exceptions_first: u32,
}

/// Where an exit goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route {
    /// L0 handles it in L2's context.
    L0,
    /// Reflected to L1 as a nested VM exit.
    L1,
}

fn has(value: u64, cap: Cap) -> bool {
    value >> cap.bit() & 1 == 1
}

/// The route of `exit` for L1's `vmcs12`; `mem` is L1's memory (its I/O, MSR and VMREAD/VMWRITE
/// bitmaps; an unreadable bitmap byte counts as "exit", as in KVM).
pub fn route<M: GuestMemory + ?Sized>(exit: &Exit, v12: &Vmcs12, mem: &M, keeps: &L0Keeps) -> Route {
    let get = |e: u64| v12.read_raw(e).unwrap_or(0);
    let pin = get(F::PIN_BASED_VM_EXEC_CONTROL.raw());
    let proc = get(F::CPU_BASED_VM_EXEC_CONTROL.raw());
    let proc2 = if has(proc, Cap::ProcActivateSecondaryControls) { get(F::SECONDARY_VM_EXEC_CONTROL.raw()) } else { 0 };
    let to = |l1: bool| if l1 { Route::L1 } else { Route::L0 };
    if exit.reason.entry_failure() {
        // The processor refused vmcs02's guest state: L1's entry failed.
        return Route::L1;
    }
    let Some(reason) = exit.basic() else { return Route::L1 };
    match reason {
        R::ExceptionNmi => exception(exit, v12, pin, keeps),
        R::ExternalInterrupt => to(!keeps.external_interrupts),
        R::InterruptWindow => to(has(proc, Cap::ProcInterruptWindowExiting)),
        R::NmiWindow => to(has(proc, Cap::ProcNmiWindowExiting)),
        R::Hlt => to(has(proc, Cap::ProcHltExiting)),
        R::Invlpg => to(has(proc, Cap::ProcInvlpgExiting)),
        R::Rdpmc => to(has(proc, Cap::ProcRdpmcExiting)),
        R::Rdtsc | R::Rdtscp => to(has(proc, Cap::ProcRdtscExiting)),
        R::Vmread | R::Vmwrite => to(vmcs_access_exits(exit, v12, proc2, mem)),
        R::CrAccess => to(cr_access_exits(exit, v12, proc)),
        R::DrAccess => to(has(proc, Cap::ProcMovDrExiting)),
        R::IoInstruction => to(io_exits(exit, v12, proc, mem)),
        R::MsrRead | R::MsrWrite => to(msr_exits(exit, v12, proc, mem)),
        R::Mwait => to(has(proc, Cap::ProcMwaitExiting)),
        R::Monitor => to(has(proc, Cap::ProcMonitorExiting)),
        R::MonitorTrapFlag => {
            // A pending MTF L1 injected (valid, type 7 "other event", vector 0) also belongs to L1.
            let injected_mtf = get(F::VM_ENTRY_INTR_INFO_FIELD.raw()) & 0x8000_07ff == 0x8000_0700;
            to(has(proc, Cap::ProcMonitorTrapFlag) || injected_mtf)
        }
        R::Pause => to(has(proc, Cap::ProcPauseExiting) || has(proc2, Cap::Proc2PauseLoopExiting)),
        R::TprBelowThreshold => to(has(proc, Cap::ProcUseTprShadow)),
        R::GdtrIdtr | R::LdtrTr => to(has(proc2, Cap::Proc2DescriptorTableExiting)),
        R::Wbinvd => to(has(proc2, Cap::Proc2WbinvdExiting)),
        R::Rdrand => to(has(proc2, Cap::Proc2RdrandExiting)),
        R::Rdseed => to(has(proc2, Cap::Proc2RdseedExiting)),
        R::Invpcid => to(has(proc2, Cap::Proc2EnableInvpcid) && has(proc, Cap::ProcInvlpgExiting)),
        R::Encls => to(has(proc2, Cap::Proc2EnableEnclsExiting) && encls_exits(exit, v12)),
        R::Umwait | R::Tpause => to(has(proc2, Cap::Proc2EnableUserWaitPause)),
        // L0's own machinery: L1's EPT faults are synthesized by the nested-EPT code, L1's
        // preemption timer is emulated, VMFUNC is emulated, PML is never on in vmcs02.
        R::MceDuringVmentry
        | R::EptViolation
        | R::EptMisconfig
        | R::PreemptionTimer
        | R::Vmfunc
        | R::PmlFull
        | R::BusLock
        | R::Notify
        | R::Seamcall
        | R::Tdcall => Route::L0,
        // Always L1: CPUID, VMCALL, the VMX instructions, triple fault, task switch, INVD, XSETBV,
        // GETSEC, APIC virtualization exits, XSAVES/XRSTORS, and any reason not listed.
        _ => Route::L1,
    }
}

fn exception(exit: &Exit, v12: &Vmcs12, pin: u64, keeps: &L0Keeps) -> Route {
    let kind = exit.intr_info >> 8 & 7;
    let vector = exit.intr_info & 0xff;
    if kind == 2 {
        // An NMI.
        return if !keeps.nmis && has(pin, Cap::PinNmiExiting) { Route::L1 } else { Route::L0 };
    }
    if keeps.exceptions_first >> vector & 1 == 1 {
        return Route::L0;
    }
    let bitmap = v12.read_raw(F::EXCEPTION_BITMAP.raw()).unwrap_or(0);
    if vector == 14 {
        return if page_fault_exits(v12, exit.intr_error_code) { Route::L1 } else { Route::L0 };
    }
    if bitmap >> vector & 1 == 1 { Route::L1 } else { Route::L0 }
}

/// The #PF filter (SDM 26.2): with (error code & PFEC_MASK) == PFEC_MATCH a #PF exits iff
/// exception-bitmap bit 14 is 1, otherwise iff it is 0.
pub fn page_fault_exits(v12: &Vmcs12, error_code: u32) -> bool {
    let get = |e: u64| v12.read_raw(e).unwrap_or(0) as u32;
    let bit = get(F::EXCEPTION_BITMAP.raw()) >> 14 & 1 == 1;
    let unequal = error_code & get(F::PAGE_FAULT_ERROR_CODE_MASK.raw()) != get(F::PAGE_FAULT_ERROR_CODE_MATCH.raw());
    unequal ^ bit
}

fn bit_set<M: GuestMemory + ?Sized>(mem: &M, bitmap: u64, bit: u64) -> bool {
    let mut b = [0u8];
    match mem.read(bitmap + bit / 8, &mut b) {
        Ok(()) => b[0] >> (bit % 8) & 1 == 1,
        Err(_) => true,
    }
}

fn vmcs_access_exits<M: GuestMemory + ?Sized>(exit: &Exit, v12: &Vmcs12, proc2: u64, mem: &M) -> bool {
    if !has(proc2, Cap::Proc2VmcsShadowing) || exit.operand >> 15 != 0 {
        return true;
    }
    let bitmap = if matches!(exit.basic(), Some(R::Vmread)) { F::VMREAD_BITMAP.raw() } else { F::VMWRITE_BITMAP.raw() };
    bit_set(mem, v12.read_raw(bitmap).unwrap_or(0), exit.operand)
}

fn cr_access_exits(exit: &Exit, v12: &Vmcs12, proc: u64) -> bool {
    let q = CrAccessQualification::from_bits(exit.qualification);
    let get = |e: u64| v12.read_raw(e).unwrap_or(0);
    let (mask0, shadow0) = (get(F::CR0_GUEST_HOST_MASK.raw()), get(F::CR0_READ_SHADOW.raw()));
    match (q.access_type(), q.cr()) {
        (CrAccessType::MovToCr, 0) => mask0 & (exit.operand ^ shadow0) != 0,
        (CrAccessType::MovToCr, 3) => has(proc, Cap::ProcCr3LoadExiting),
        (CrAccessType::MovToCr, 4) => {
            get(F::CR4_GUEST_HOST_MASK.raw()) & (exit.operand ^ get(F::CR4_READ_SHADOW.raw())) != 0
        }
        (CrAccessType::MovToCr, 8) => has(proc, Cap::ProcCr8LoadExiting),
        (CrAccessType::MovFromCr, 3) => has(proc, Cap::ProcCr3StoreExiting),
        (CrAccessType::MovFromCr, 8) => has(proc, Cap::ProcCr8StoreExiting),
        // CLTS: L1 owns TS and its shadow has it set.
        (CrAccessType::Clts, _) => mask0 & shadow0 & 8 != 0,
        // LMSW: bits 3:1 L1 owns change, or PE goes 0 -> 1 under L1's mask.
        (CrAccessType::Lmsw, _) => {
            let src = q.lmsw_source() as u64;
            mask0 & 0xe & (src ^ shadow0) != 0 || (mask0 & 1 != 0 && shadow0 & 1 == 0 && src & 1 != 0)
        }
        _ => false,
    }
}

fn io_exits<M: GuestMemory + ?Sized>(exit: &Exit, v12: &Vmcs12, proc: u64, mem: &M) -> bool {
    if !has(proc, Cap::ProcUseIoBitmaps) {
        return has(proc, Cap::ProcUnconditionalIoExiting);
    }
    let q = IoQualification::from_bits(exit.qualification);
    let port = q.port() as u64;
    let size = q.size_raw() as u64 + 1;
    let (a, b) = (v12.read_raw(F::IO_BITMAP_A.raw()).unwrap_or(0), v12.read_raw(F::IO_BITMAP_B.raw()).unwrap_or(0));
    (port..port + size).any(|p| match p {
        0..0x8000 => bit_set(mem, a, p),
        0x8000..0x10000 => bit_set(mem, b, p - 0x8000),
        _ => true,
    })
}

fn msr_exits<M: GuestMemory + ?Sized>(exit: &Exit, v12: &Vmcs12, proc: u64, mem: &M) -> bool {
    if !has(proc, Cap::ProcUseMsrBitmaps) {
        return true;
    }
    let msr = exit.operand as u32;
    let write = if matches!(exit.basic(), Some(R::MsrWrite)) { 2048 } else { 0 };
    let (base, index) = match msr {
        0..0x2000 => (0, msr),
        0xc000_0000..0xc000_2000 => (1024, msr - 0xc000_0000),
        _ => return true,
    };
    let bitmap = v12.read_raw(F::MSR_BITMAP.raw()).unwrap_or(0);
    bit_set(mem, bitmap + base + write, index as u64)
}

fn encls_exits(exit: &Exit, v12: &Vmcs12) -> bool {
    let bitmap = v12.read_raw(F::ENCLS_EXITING_BITMAP.raw()).unwrap_or(0);
    bitmap >> exit.operand.min(63) & 1 == 1
}
