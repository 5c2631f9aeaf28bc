//! Which mutated states this kernel can launch and survive, and putting its own host state back
//! after each launch.

use vmcs::caps::VmxCaps;
use vmcs::entry::RuleSet;
use vmcs::fields as F;
use vmcs::hw::CurrentVmcs;

use crate::deviations;
use crate::entry_state::{BASELINE_LEN, RAM};
use crate::entry_verdict::rank;
use crate::rt;

/// Why a state was not launched.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Held {
    /// An edit names a field this model lacks: the state does not exist here.
    AbsentField,
    /// The guest would wait in HLT or shutdown with no VMX-preemption timer to end it, or in
    /// wait-for-SIPI (where the timer does not count): Bochs 2.7 never wakes a guest entered in
    /// activity state HLT.
    NeverWakes,
    /// The VM exit would load a host CR0/CR3/CR4 this kernel cannot run on.
    HostUnsurvivable,
    /// An MSR-load/store list longer than its scratch page (what lies beyond is not a list), or a
    /// VM-exit list outside RAM: the exit would read all ones as an MSR index, a VMX abort.
    ListBeyondScratch,
    /// It changes HOST_RIP or HOST_RSP, which the launch code writes itself (to return here).
    HostRipRsp,
    /// deviation bochs-panic-other-event: injecting an other event (type 7) on a model without
    /// "monitor trap flag" passes Bochs' checks, then stops Bochs with a BX_PANIC.
    OtherEventPanic,
}

pub const HELD_NAMES: [&str; 5] =
    ["absent-field", "never-wakes", "host-unsurvivable", "list-beyond-scratch", "bochs-panic-other-event"];

/// IA32_KERNEL_GS_BASE: an MSR the mutated VM-entry MSR-load lists may load (the others they load
/// are the SYSENTER MSRs, which the VM exit loads back from the host state, and MSRs Bochs lacks).
const KERNEL_GS_BASE: u32 = 0xc000_0102;

/// The host registers a VM exit loads, as this kernel runs, and the MSRs a VM-entry MSR-load
/// list may change: put back after every launch.
pub struct Host {
    pub cr0: u64,
    pub cr4: u64,
    kernel_gs_base: u64,
}

impl Host {
    /// The registers as this kernel runs now.
    pub fn now() -> Host {
        // SAFETY: IA32_KERNEL_GS_BASE exists on every 64-bit processor.
        let kernel_gs_base = unsafe { vmcs::hw::rdmsr(KERNEL_GS_BASE) };
        Host { cr0: rt::cr0(), cr4: rt::cr4(), kernel_gs_base }
    }

    pub fn restore(&self) {
        // SAFETY: the values this kernel ran with before the launch; the GDT and IDT are its own.
        unsafe {
            core::arch::asm!("mov cr4, {}", in(reg) self.cr4, options(nostack));
            core::arch::asm!("mov cr0, {}", in(reg) self.cr0, options(nostack));
            vmcs::hw::wrmsr(KERNEL_GS_BASE, self.kernel_gs_base);
        }
        rt::reload_descriptor_tables();
    }
}

/// States not to launch (see [`Held`]), given the checker's verdict and whether Bochs, through
/// the rules it leaves unchecked, could enter the guest anyway (`may_enter`).
pub fn hold(
    v: &CurrentVmcs<'_>,
    caps: &VmxCaps,
    failing: &RuleSet,
    may_enter: bool,
    base: &[(u32, u64); BASELINE_LEN],
) -> Option<Held> {
    let rd = |f: u64| v.vmread(f).unwrap_or(0);
    let vmfail = failing.iter().any(|r| rank(r.outcome()) <= 1);
    let activity = rd(F::GUEST_ACTIVITY_STATE.raw());
    let timer = rd(F::PIN_BASED_VM_EXEC_CONTROL.raw()) >> 6 & 1 == 1 && rd(F::VMX_PREEMPTION_TIMER_VALUE.raw()) == 0;
    // With the timer, a state the checker fails on guest state is launched: Bochs fails it too,
    // or enters and the timer ends the guest at once.
    // Without the timer (a guest that Bochs lets in would wait forever), only states that fail
    // the controls or host state are launched.
    // Wait-for-SIPI stops the timer: a guest Bochs lets in there never leaves.
    if (may_enter && activity == 3) || (activity != 0 && !timer && !vmfail) {
        return Some(Held::NeverWakes);
    }
    let base_of = |enc: u32| base.iter().find(|(e, _)| *e == enc).map_or(0, |(_, v)| *v);
    let cr3_frame = !0xfffu64 & ((1u64 << 52) - 1);
    let cr4_needed = 1 << 5 | 1 << 9 | 1 << 10 | 1 << 13;
    let host_changed = (rd(F::HOST_CR3.raw()) ^ base_of(F::HOST_CR3.encoding())) & cr3_frame != 0
        || rd(F::HOST_CR4.raw()) & cr4_needed != cr4_needed
        || rd(F::HOST_CR0.raw()) & 0x8000_0021 != 0x8000_0021;
    if !vmfail && host_changed {
        return Some(Held::HostUnsurvivable);
    }
    let counts = [F::VM_EXIT_MSR_STORE_COUNT, F::VM_EXIT_MSR_LOAD_COUNT, F::VM_ENTRY_MSR_LOAD_COUNT];
    let exit_lists = [
        (F::VM_EXIT_MSR_STORE_ADDR.raw(), F::VM_EXIT_MSR_STORE_COUNT.raw()),
        (F::VM_EXIT_MSR_LOAD_ADDR.raw(), F::VM_EXIT_MSR_LOAD_COUNT.raw()),
    ];
    let outside_ram = |&(addr, count): &(u64, u64)| {
        let n = rd(count) & 0xffff_ffff;
        n != 0 && rd(addr).checked_add(16 * n).is_none_or(|end| end > RAM)
    };
    if !vmfail && (counts.iter().any(|c| rd(c.raw()) > 256) || exit_lists.iter().any(outside_ram)) {
        return Some(Held::ListBeyondScratch);
    }
    let info = rd(F::VM_ENTRY_INTR_INFO_FIELD.raw());
    if info >> 31 == 1 && info >> 8 & 7 == 7 && deviations::panics_on_other_event(caps) {
        return Some(Held::OtherEventPanic);
    }
    None
}
