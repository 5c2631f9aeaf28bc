//! Every exit-routing rule: the exit goes to L1 exactly when L1's controls (and bitmaps) ask.

mod common;

use common::Mem;
use vmcs::caps::Cap;
use vmcs::exit::{ExitReason as R, VmExitReason};
use vmcs::fields as F;
use vmcs::{Vmcs12, VmcsWrite};
use vmcs_nested_vmx::routing::{Exit, L0Keeps, Route, route};

const IO_A: u64 = 0x1000;
const IO_B: u64 = 0x2000;
const MSRS: u64 = 0x3000;
const VMREAD_BITMAP: u64 = 0x4000;
const VMWRITE_BITMAP: u64 = 0x5000;

fn bit(c: Cap) -> u64 {
    1 << c.bit()
}

struct Case {
    v12: Vmcs12,
    mem: Mem,
    keeps: L0Keeps,
}

impl Case {
    fn new() -> Self {
        let mut v12 = Vmcs12::zeroed();
        for (f, v) in [
            (F::IO_BITMAP_A, IO_A),
            (F::IO_BITMAP_B, IO_B),
            (F::MSR_BITMAP, MSRS),
            (F::VMREAD_BITMAP, VMREAD_BITMAP),
            (F::VMWRITE_BITMAP, VMWRITE_BITMAP),
        ] {
            v12.write(f, v).unwrap();
        }
        Case { v12, mem: Mem(vec![0; 0x10000]), keeps: L0Keeps::default() }
    }
    fn proc(mut self, c: Cap) -> Self {
        let v = self.v12.cpu_based_vm_exec_control as u64 | bit(c);
        self.v12.write_raw(F::CPU_BASED_VM_EXEC_CONTROL.raw(), v).unwrap();
        self
    }
    fn proc2(self, c: Cap) -> Self {
        let mut s = self.proc(Cap::ProcActivateSecondaryControls);
        let v = s.v12.secondary_vm_exec_control as u64 | bit(c);
        s.v12.write_raw(F::SECONDARY_VM_EXEC_CONTROL.raw(), v).unwrap();
        s
    }
    fn pin(mut self, c: Cap) -> Self {
        let v = self.v12.pin_based_vm_exec_control as u64 | bit(c);
        self.v12.write_raw(F::PIN_BASED_VM_EXEC_CONTROL.raw(), v).unwrap();
        self
    }
    fn set(mut self, e: u64, v: u64) -> Self {
        self.v12.write_raw(e, v).unwrap();
        self
    }
    fn route(&self, exit: Exit) -> Route {
        route(&exit, &self.v12, &self.mem, &self.keeps)
    }
}

fn exit(reason: R) -> Exit {
    Exit { reason: VmExitReason::from_bits(reason.number() as u32), ..Default::default() }
}

#[test]
fn always_to_l1() {
    for r in [
        R::TripleFault,
        R::Init,
        R::Sipi,
        R::TaskSwitch,
        R::Cpuid,
        R::Getsec,
        R::Invd,
        R::Vmcall,
        R::Vmclear,
        R::Vmlaunch,
        R::Vmptrld,
        R::Vmptrst,
        R::Vmresume,
        R::Vmxoff,
        R::Vmxon,
        R::Invept,
        R::Invvpid,
        R::InvalidState,
        R::MsrLoadFail,
        R::ApicAccess,
        R::EoiInduced,
        R::Xsetbv,
        R::ApicWrite,
        R::Xsaves,
        R::Xrstors,
    ] {
        assert_eq!(Case::new().route(exit(r)), Route::L1, "reason {r:?}");
    }
    // A reason the SDM does not define.
    assert_eq!(Case::new().route(Exit { reason: VmExitReason::from_bits(99), ..Default::default() }), Route::L1);
    // A VM-entry failure of vmcs02 is L1's failed entry.
    let failed = VmExitReason::from_bits(0).with_basic(R::InvalidState).with_entry_failure(true);
    assert_eq!(Case::new().route(Exit { reason: failed, ..Default::default() }), Route::L1);
}

#[test]
fn always_l0() {
    for r in [
        R::MceDuringVmentry,
        R::EptViolation,
        R::EptMisconfig,
        R::PreemptionTimer,
        R::Vmfunc,
        R::PmlFull,
        R::BusLock,
        R::Notify,
    ] {
        let c = Case::new().proc2(Cap::Proc2EnableEpt).pin(Cap::PinActivatePreemptionTimer);
        assert_eq!(c.route(exit(r)), Route::L0, "reason {r:?}");
    }
}

#[test]
fn one_control_each() {
    let proc_rules = [
        (R::InterruptWindow, Cap::ProcInterruptWindowExiting),
        (R::NmiWindow, Cap::ProcNmiWindowExiting),
        (R::Hlt, Cap::ProcHltExiting),
        (R::Invlpg, Cap::ProcInvlpgExiting),
        (R::Rdpmc, Cap::ProcRdpmcExiting),
        (R::Rdtsc, Cap::ProcRdtscExiting),
        (R::Rdtscp, Cap::ProcRdtscExiting),
        (R::DrAccess, Cap::ProcMovDrExiting),
        (R::Mwait, Cap::ProcMwaitExiting),
        (R::Monitor, Cap::ProcMonitorExiting),
        (R::Pause, Cap::ProcPauseExiting),
        (R::MonitorTrapFlag, Cap::ProcMonitorTrapFlag),
        (R::TprBelowThreshold, Cap::ProcUseTprShadow),
    ];
    for (r, c) in proc_rules {
        assert_eq!(Case::new().route(exit(r)), Route::L0, "reason {r:?} without {}", c.name());
        assert_eq!(Case::new().proc(c).route(exit(r)), Route::L1, "reason {r:?} with {}", c.name());
    }
    let proc2_rules = [
        (R::GdtrIdtr, Cap::Proc2DescriptorTableExiting),
        (R::LdtrTr, Cap::Proc2DescriptorTableExiting),
        (R::Wbinvd, Cap::Proc2WbinvdExiting),
        (R::Rdrand, Cap::Proc2RdrandExiting),
        (R::Rdseed, Cap::Proc2RdseedExiting),
        (R::Umwait, Cap::Proc2EnableUserWaitPause),
        (R::Tpause, Cap::Proc2EnableUserWaitPause),
        (R::Pause, Cap::Proc2PauseLoopExiting),
    ];
    for (r, c) in proc2_rules {
        assert_eq!(Case::new().route(exit(r)), Route::L0, "reason {r:?} without {}", c.name());
        assert_eq!(Case::new().proc2(c).route(exit(r)), Route::L1, "reason {r:?} with {}", c.name());
        // The secondary controls count only when activated.
        let inactive = Case::new().set(F::SECONDARY_VM_EXEC_CONTROL.raw(), bit(c));
        assert_eq!(inactive.route(exit(r)), Route::L0, "reason {r:?}: secondary controls not activated");
    }
    // INVPCID: both "enable INVPCID" and "INVLPG exiting".
    assert_eq!(Case::new().proc2(Cap::Proc2EnableInvpcid).route(exit(R::Invpcid)), Route::L0);
    assert_eq!(Case::new().proc(Cap::ProcInvlpgExiting).route(exit(R::Invpcid)), Route::L0);
    let both = Case::new().proc2(Cap::Proc2EnableInvpcid).proc(Cap::ProcInvlpgExiting);
    assert_eq!(both.route(exit(R::Invpcid)), Route::L1);
}

#[test]
fn a_pending_mtf_l1_injected_is_l1s() {
    let c = Case::new().set(F::VM_ENTRY_INTR_INFO_FIELD.raw(), 1 << 31 | 7 << 8);
    assert_eq!(c.route(exit(R::MonitorTrapFlag)), Route::L1);
    let c = Case::new().set(F::VM_ENTRY_INTR_INFO_FIELD.raw(), 1 << 31 | 7 << 8 | 1);
    assert_eq!(c.route(exit(R::MonitorTrapFlag)), Route::L0);
}

fn exception(vector: u32, error_code: u32) -> Exit {
    Exit {
        reason: VmExitReason::from_bits(0),
        intr_info: 1 << 31 | 3 << 8 | vector,
        intr_error_code: error_code,
        ..Default::default()
    }
}

#[test]
fn exceptions_follow_the_exception_bitmap() {
    let c = Case::new().set(F::EXCEPTION_BITMAP.raw(), 1 << 6 | 1 << 13);
    assert_eq!(c.route(exception(6, 0)), Route::L1);
    assert_eq!(c.route(exception(13, 0)), Route::L1);
    assert_eq!(c.route(exception(3, 0)), Route::L0);
    let mut first = Case::new().set(F::EXCEPTION_BITMAP.raw(), 1 << 1);
    first.keeps.exceptions_first = 1 << 1;
    assert_eq!(first.route(exception(1, 0)), Route::L0, "L0 sees #DB first");
}

#[test]
fn page_faults_follow_the_error_code_filter() {
    // Bit 14 set: exit iff (ec & mask) == match.
    let c = Case::new()
        .set(F::EXCEPTION_BITMAP.raw(), 1 << 14)
        .set(F::PAGE_FAULT_ERROR_CODE_MASK.raw(), 2)
        .set(F::PAGE_FAULT_ERROR_CODE_MATCH.raw(), 2);
    assert_eq!(c.route(exception(14, 3)), Route::L1, "a write");
    assert_eq!(c.route(exception(14, 1)), Route::L0, "a read");
    // Bit 14 clear: exit iff they differ.
    let c = Case::new().set(F::PAGE_FAULT_ERROR_CODE_MASK.raw(), 2).set(F::PAGE_FAULT_ERROR_CODE_MATCH.raw(), 2);
    assert_eq!(c.route(exception(14, 3)), Route::L0);
    assert_eq!(c.route(exception(14, 1)), Route::L1);
    // Mask 0, match 0, bit 14 clear: never.
    assert_eq!(Case::new().route(exception(14, 7)), Route::L0);
}

#[test]
fn nmis_and_external_interrupts() {
    let nmi = Exit { reason: VmExitReason::from_bits(0), intr_info: 1 << 31 | 2 << 8 | 2, ..Default::default() };
    assert_eq!(Case::new().pin(Cap::PinNmiExiting).route(nmi), Route::L1);
    assert_eq!(Case::new().route(nmi), Route::L0);
    let mut kept = Case::new().pin(Cap::PinNmiExiting);
    kept.keeps.nmis = true;
    assert_eq!(kept.route(nmi), Route::L0);
    let ext = exit(R::ExternalInterrupt);
    assert_eq!(Case::new().pin(Cap::PinExternalInterruptExiting).route(ext), Route::L1);
    let mut kvm_like = Case::new().pin(Cap::PinExternalInterruptExiting);
    kvm_like.keeps.external_interrupts = true;
    assert_eq!(kvm_like.route(ext), Route::L0);
}

fn io(port: u64, size: u64) -> Exit {
    Exit {
        reason: VmExitReason::from_bits(R::IoInstruction.number() as u32),
        qualification: port << 16 | (size - 1),
        ..Default::default()
    }
}

#[test]
fn io_exits_by_bitmap_or_unconditionally() {
    assert_eq!(Case::new().route(io(0x3f8, 1)), Route::L0);
    assert_eq!(Case::new().proc(Cap::ProcUnconditionalIoExiting).route(io(0x3f8, 1)), Route::L1);
    let mut c = Case::new().proc(Cap::ProcUseIoBitmaps).proc(Cap::ProcUnconditionalIoExiting);
    assert_eq!(c.route(io(0x3f8, 1)), Route::L0, "bitmaps override unconditional exiting");
    c.mem.0[(IO_A + 0x3f9 / 8) as usize] |= 1 << (0x3f9 % 8);
    assert_eq!(c.route(io(0x3f8, 1)), Route::L0);
    assert_eq!(c.route(io(0x3f8, 2)), Route::L1, "a 2-byte access covers 0x3f9");
    c.mem.0[(IO_B + (0x8900 - 0x8000) / 8) as usize] |= 1 << (0x8900 % 8);
    assert_eq!(c.route(io(0x8900, 1)), Route::L1, "bitmap B");
    assert_eq!(c.route(io(0xffff, 2)), Route::L1, "wraps past 0xffff");
    // An unreadable bitmap exits.
    let c = c.set(F::IO_BITMAP_A.raw(), 0x10_0000);
    assert_eq!(c.route(io(0x80, 1)), Route::L1);
}

fn msr(reason: R, index: u32) -> Exit {
    Exit { reason: VmExitReason::from_bits(reason.number() as u32), operand: index as u64, ..Default::default() }
}

#[test]
fn msr_exits_by_bitmap() {
    assert_eq!(Case::new().route(msr(R::MsrRead, 0x10)), Route::L1, "no bitmaps: every access");
    let mut c = Case::new().proc(Cap::ProcUseMsrBitmaps);
    assert_eq!(c.route(msr(R::MsrRead, 0x10)), Route::L0);
    let set = |c: &mut Case, offset: u64, i: u64| c.mem.0[(MSRS + offset + i / 8) as usize] |= 1 << (i % 8);
    set(&mut c, 0, 0x10);
    set(&mut c, 1024, 0x80);
    set(&mut c, 2048, 0x1b);
    set(&mut c, 3072, 0x100);
    assert_eq!(c.route(msr(R::MsrRead, 0x10)), Route::L1, "read low");
    assert_eq!(c.route(msr(R::MsrWrite, 0x10)), Route::L0);
    assert_eq!(c.route(msr(R::MsrRead, 0xc000_0080)), Route::L1, "read high");
    assert_eq!(c.route(msr(R::MsrWrite, 0x1b)), Route::L1, "write low");
    assert_eq!(c.route(msr(R::MsrWrite, 0xc000_0100)), Route::L1, "write high");
    assert_eq!(c.route(msr(R::MsrRead, 0xc000_0100)), Route::L0);
    assert_eq!(c.route(msr(R::MsrRead, 0x4000_0000)), Route::L1, "outside both ranges");
}

fn cr(cr: u64, access: u64, reg: u64, operand: u64) -> Exit {
    Exit {
        reason: VmExitReason::from_bits(R::CrAccess.number() as u32),
        qualification: cr | access << 4 | reg << 8,
        operand,
        ..Default::default()
    }
}

#[test]
fn cr_accesses() {
    let c = Case::new().set(F::CR0_GUEST_HOST_MASK.raw(), 1 << 31).set(F::CR0_READ_SHADOW.raw(), 1 << 31 | 1);
    assert_eq!(c.route(cr(0, 0, 0, 1 << 31 | 1 | 1 << 5)), Route::L0, "an L2-owned bit changes");
    assert_eq!(c.route(cr(0, 0, 0, 1)), Route::L1, "PG, owned by L1, changes");
    let c4 = Case::new().set(F::CR4_GUEST_HOST_MASK.raw(), 1 << 13).set(F::CR4_READ_SHADOW.raw(), 0);
    assert_eq!(c4.route(cr(4, 0, 0, 0x20)), Route::L0);
    assert_eq!(c4.route(cr(4, 0, 0, 0x2020)), Route::L1);
    for (crn, access, cap) in [
        (3, 0, Cap::ProcCr3LoadExiting),
        (8, 0, Cap::ProcCr8LoadExiting),
        (3, 1, Cap::ProcCr3StoreExiting),
        (8, 1, Cap::ProcCr8StoreExiting),
    ] {
        assert_eq!(Case::new().route(cr(crn, access, 0, 0)), Route::L0);
        assert_eq!(Case::new().proc(cap).route(cr(crn, access, 0, 0)), Route::L1, "CR{crn} {}", cap.name());
    }
    // CLTS: only when L1 owns TS and its shadow has it set.
    let clts = cr(0, 2, 0, 0);
    assert_eq!(Case::new().set(F::CR0_GUEST_HOST_MASK.raw(), 8).route(clts), Route::L0);
    let owned = Case::new().set(F::CR0_GUEST_HOST_MASK.raw(), 8).set(F::CR0_READ_SHADOW.raw(), 8);
    assert_eq!(owned.route(clts), Route::L1);
    // LMSW: bits 3:1 under the mask change, or PE 0 -> 1.
    let lmsw = |src: u64| Exit {
        reason: VmExitReason::from_bits(R::CrAccess.number() as u32),
        qualification: 3 << 4 | src << 16,
        ..Default::default()
    };
    let m = Case::new().set(F::CR0_GUEST_HOST_MASK.raw(), 0xf).set(F::CR0_READ_SHADOW.raw(), 0);
    assert_eq!(m.route(lmsw(0)), Route::L0);
    assert_eq!(m.route(lmsw(2)), Route::L1);
    assert_eq!(m.route(lmsw(1)), Route::L1, "PE 0 -> 1");
    let pe_set = Case::new().set(F::CR0_GUEST_HOST_MASK.raw(), 1).set(F::CR0_READ_SHADOW.raw(), 1);
    assert_eq!(pe_set.route(lmsw(0)), Route::L0, "LMSW cannot clear PE");
}

fn vmcs_access(reason: R, field: u64) -> Exit {
    Exit { reason: VmExitReason::from_bits(reason.number() as u32), operand: field, ..Default::default() }
}

#[test]
fn vmread_vmwrite_by_l1s_shadow_bitmaps() {
    assert_eq!(Case::new().route(vmcs_access(R::Vmread, 0x6c16)), Route::L1, "no shadowing: always");
    let mut c = Case::new().proc2(Cap::Proc2VmcsShadowing);
    assert_eq!(c.route(vmcs_access(R::Vmread, 0x6c16)), Route::L0);
    c.mem.0[(VMWRITE_BITMAP + 0x6c16 / 8) as usize] |= 1 << (0x6c16 % 8);
    assert_eq!(c.route(vmcs_access(R::Vmwrite, 0x6c16)), Route::L1);
    assert_eq!(c.route(vmcs_access(R::Vmread, 0x6c16)), Route::L0);
    assert_eq!(c.route(vmcs_access(R::Vmread, 0x1_0000)), Route::L1, "bits 63:15 set");
}

#[test]
fn encls_by_bitmap() {
    let c = Case::new().proc2(Cap::Proc2EnableEnclsExiting).set(F::ENCLS_EXITING_BITMAP.raw(), 1 << 3 | 1 << 63);
    assert_eq!(
        c.route(Exit { reason: VmExitReason::from_bits(R::Encls.number() as u32), operand: 3, ..Default::default() }),
        Route::L1
    );
    assert_eq!(
        c.route(Exit { reason: VmExitReason::from_bits(R::Encls.number() as u32), operand: 4, ..Default::default() }),
        Route::L0
    );
    assert_eq!(
        c.route(Exit { reason: VmExitReason::from_bits(R::Encls.number() as u32), operand: 100, ..Default::default() }),
        Route::L1,
        "leaves > 62 use bit 63"
    );
    assert_eq!(
        Case::new().route(Exit {
            reason: VmExitReason::from_bits(R::Encls.number() as u32),
            operand: 3,
            ..Default::default()
        }),
        Route::L0
    );
}

#[test]
fn operand_registers() {
    assert_eq!(Exit::operand_register(R::MsrWrite, 0, 0), Some(1));
    assert_eq!(Exit::operand_register(R::CrAccess, 7 << 8, 0), Some(7), "MOV to CR0");
    assert_eq!(Exit::operand_register(R::CrAccess, 3 | 1 << 4 | 7 << 8, 0), None, "MOV from CR");
    assert_eq!(Exit::operand_register(R::Vmread, 0, 0xa << 28), Some(0xa));
    assert_eq!(Exit::operand_register(R::Cpuid, 0, 0), None);
}
