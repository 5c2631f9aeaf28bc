//! VMREADs and VMWRITEs L0 makes per nested event, counted on the hardware VMCS accesses
//! (`vmcs_nested_vmx::count::Counted`), printed once per kind of event beside what KVM 7.2.8
//! makes for the same instructions of L1 on this host (`vmcs_nested_vmx::kvm_count::Kvm`, told
//! each step as it happens):
//!
//! - `first VMLAUNCH`: L1's VMLAUNCH exit handled, vmcs02 prepared, L2 entered;
//! - `REASON reflected + L1's VMRESUME`: from L2's exit to its next entry: the exit's facts and
//!   vmcs12's sync from vmcs02, L1's host state into vmcs01, every L1 exit until its VMRESUME
//!   (L1 reading the exit through emulated VMREADs), vmcs02 prepared again;
//! - `REASON handled by L0`: an exit of L2 that L0 handles alone, until L2 resumes.
//!
//! The VM entry's own VMWRITEs of HOST_RSP/HOST_RIP, as many as it made (it writes them only when
//! they changed, `vmcs::hw::CurrentVmcs::host_state_writes`), and the exit's VMREAD of the exit
//! reason (`vmcs::hw::CurrentVmcs::run`) are included.

use vmcs::exit::{ExitReason, VmExitReason};
use vmcs_nested_vmx::count::Counts;
use vmcs_nested_vmx::kvm_count::Kvm;
use vmcs_nested_vmx::vmx::FieldAccess;

/// What an exit of L1 was, for KVM's side.
pub enum L1Exit {
    /// An emulated VMREAD/VMWRITE.
    Access(FieldAccess),
    /// VMLAUNCH/VMRESUME entering L2.
    Run,
    /// VMPTRLD making another VMCS current.
    NewCurrent,
    /// Anything else: KVM counted as this L0.
    Other,
}

pub struct Meter {
    /// The last VM entry and exit: HOST_RSP/HOST_RIP written, the exit reason read.
    round: Counts,
    /// Accumulated over L1's exits since the last reflected exit.
    pub l1: Counts,
    l1_exits: u32,
    /// The last exit of L1 alone.
    last: Counts,
    /// The last reflected exit: vmcs02 side, then vmcs01 side.
    pub reflect_l2: Counts,
    pub reflect_l1: Counts,
    /// vmcs02 preparation of the current entry.
    pub entry: Counts,
    reflected: Option<VmExitReason>,
    /// KVM's side, and its accesses for the round trip and for the last exit of L1.
    pub kvm: Kvm,
    kvm_round: Counts,
    kvm_last: Counts,
    printed_launch: bool,
    printed_reflect: [u16; 8],
    printed_l0: [u16; 8],
}

fn once(seen: &mut [u16; 8], reason: u16) -> bool {
    let key = reason + 1;
    if seen.contains(&key) {
        return false;
    }
    if let Some(slot) = seen.iter_mut().find(|s| **s == 0) {
        *slot = key;
    }
    true
}

fn name(reason: VmExitReason) -> &'static str {
    reason.basic().map_or("unknown", |r| r.name())
}

fn print(what: core::fmt::Arguments<'_>, total: Counts, kvm: Counts, parts: core::fmt::Arguments<'_>) {
    l0log!(
        "count {what}: {} VMREAD, {} VMWRITE (KVM 7.2.8: {} VMREAD, {} VMWRITE; {parts})",
        total.reads,
        total.writes,
        kvm.reads,
        kvm.writes
    );
}

impl Meter {
    pub fn new(kvm: Kvm) -> Self {
        Meter {
            round: Counts::default(),
            l1: Counts::default(),
            l1_exits: 0,
            last: Counts::default(),
            reflect_l2: Counts::default(),
            reflect_l1: Counts::default(),
            entry: Counts::default(),
            reflected: None,
            kvm,
            kvm_round: Counts::default(),
            kvm_last: Counts::default(),
            printed_launch: false,
            printed_reflect: [0; 8],
            printed_l0: [0; 8],
        }
    }

    /// A VM entry made `host_writes` VMWRITEs (HOST_RSP/HOST_RIP) and its exit read the reason.
    pub fn entered(&mut self, host_writes: u64) {
        self.round = Counts { reads: 1, writes: host_writes as u32 };
    }

    /// An exit of L1 handled with `counts` accesses (part of the next nested entry's round trip).
    pub fn l1_exit(&mut self, counts: Counts, what: L1Exit) {
        self.l1_exits += 1;
        self.last = counts + self.round;
        self.l1 = self.l1 + self.last;
        match what {
            L1Exit::Access(a) if a.write => self.kvm.l1_vmwrite(a.encoding, a.memory),
            L1Exit::Access(a) => self.kvm.l1_vmread(a.encoding, a.memory),
            L1Exit::Run => self.kvm.l1_run(),
            L1Exit::NewCurrent => self.kvm.l1_vmptrld(self.last),
            L1Exit::Other => self.kvm.l1_exit_as_ours(self.last),
        }
        self.kvm_last = self.kvm.take();
        self.kvm_round = self.kvm_round + self.kvm_last;
    }

    /// L2 exited to L1 (its sync counted in `reflect_l2`); `pdptrs`: vmcs12 got L2's PDPTRs
    /// (nested EPT, PAE paging); `error_code`: an exception with an error code.
    pub fn reflected(&mut self, reason: VmExitReason, pdptrs: bool, error_code: bool) {
        self.reflected = Some(reason);
        self.reflect_l2 = self.reflect_l2 + self.round;
        self.l1 = Counts::default();
        self.l1_exits = 0;
        self.kvm.l2_exit_to_l1(pdptrs, error_code);
        self.kvm_round = self.kvm.take();
    }

    /// vmcs02 is prepared and L2 is about to be entered.
    pub fn nested_entry(&mut self, launch: bool) {
        let e = self.entry;
        match self.reflected.take() {
            Some(r) if !launch && once(&mut self.printed_reflect, r.basic_raw()) => {
                let total = self.reflect_l2 + self.reflect_l1 + self.l1 + e;
                let (a, b, c) = (self.reflect_l2, self.reflect_l1, self.l1);
                print(
                    format_args!("{} reflected + L1's VMRESUME", name(r)),
                    total,
                    self.kvm_round,
                    format_args!(
                        "exit and vmcs12 sync {}/{}, L1 host state {}/{}, {} L1 exits {}/{}, vmcs02 {}/{}",
                        a.reads, a.writes, b.reads, b.writes, self.l1_exits, c.reads, c.writes, e.reads, e.writes
                    ),
                );
            }
            _ if launch && !self.printed_launch => {
                self.printed_launch = true;
                // The L1 exit just handled is the VMLAUNCH.
                let l = self.last;
                print(
                    format_args!("first VMLAUNCH"),
                    l + e,
                    self.kvm_last,
                    format_args!("VMLAUNCH emulated {}/{}, vmcs02 {}/{}", l.reads, l.writes, e.reads, e.writes),
                );
            }
            _ => {}
        }
        self.l1 = Counts::default();
        self.l1_exits = 0;
        self.kvm_round = Counts::default();
    }

    /// An exit of L2 that L0 handled alone.
    pub fn l0_handled(&mut self, reason: VmExitReason, counts: Counts) {
        let total = counts + self.round;
        if reason.basic() == Some(ExitReason::IoInstruction) {
            self.kvm.l2_io();
        } else {
            self.kvm.l2_exit_as_ours(total);
        }
        let kvm = self.kvm.take();
        if once(&mut self.printed_l0, reason.basic_raw()) {
            print(format_args!("{} handled by L0", name(reason)), total, kvm, format_args!("in vmcs02 only"));
        }
    }
}
