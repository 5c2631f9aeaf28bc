//! L1's VMX instructions on L0's side: the emulation in the core crate, then what only L0 does
//! with the processor (INVEPT/INVVPID, the shadow VMCS drained before and filled after).

use vmcs::VmcsError;
use vmcs::VmcsRead;
use vmcs::exit::ExitReason as R;
use vmcs::fields as F;
use vmcs::hw::CurrentVmcs;
use vmcs_nested_vmx::count::{Counted, Counts};
use vmcs_nested_vmx::vmx::{INVALID_POINTER, Invalidation, Outcome};

use super::{L0, VmxNext, or_fail};
use crate::l1mem::L1Memory;
use crate::log;
use crate::meter::L1Exit;
use crate::vmcs01;
use crate::vmcss::{Vmcss, Which};

impl L0<'_> {
    /// L1's INVEPT drops EPT02 (and the processor's translations through it); its INVVPID flushes
    /// VPID02, the tag every L2 runs with.
    pub(super) fn flush(&mut self, vm: &Vmcss<'_, '_>, inv: Invalidation) {
        match inv {
            Invalidation::EptSingle { .. } | Invalidation::EptAll => {
                self.ept02.reset(None);
                let _ = vm.op().invept(2, 0);
            }
            _ => {
                if let Some(vpid) = self.policy.vpid02 {
                    let _ = vm.op().invvpid(1, vpid, 0);
                }
            }
        }
    }

    pub(super) fn fill_shadow(&mut self, vm: &mut Vmcss<'_, '_>) -> Counts {
        vm.with(Which::Shadow, |s| {
            let mut c = Counted::new(s);
            or_fail(self.nested.fill_shadow(&mut c), "filling the shadow VMCS");
            c.counts()
        })
    }

    /// Emulate L1's VMX instruction `r`; Some((launch, L1's EFER)) when L2 is to be entered.
    pub(super) fn vmx(&mut self, vm: &mut Vmcss<'_, '_>, r: R, shadowing: bool) -> Option<(bool, u64)> {
        let mut drain = Counts::default();
        if self.shadow_active && matches!(r, R::Vmclear | R::Vmptrld | R::Vmlaunch | R::Vmresume | R::Vmxoff) {
            // These read (or release) vmcs12: L1's writes through the shadow come first.
            drain = vm.with(Which::Shadow, |s| {
                let c = Counted::new(s);
                or_fail(self.nested.drain_shadow(&c), "draining the shadow VMCS");
                c.counts()
            });
        }
        let before = self.nested.current_pointer();
        let mut counts = drain;
        let (out, exited) = loop {
            let out = vm.with(Which::Vmcs01, |v| {
                let mut c = Counted::new(v);
                let o = or_fail(self.handle_vmx(&mut c, r), "vmcs01 access");
                counts = counts + c.counts();
                o
            });
            match out {
                VmxNext::Resume => break (None, false),
                VmxNext::EntryFailed => break (None, true),
                VmxNext::EnterL2 { launch, l1_efer } => break (Some((launch, l1_efer)), false),
                VmxNext::SyncRare => {}
            }
            // KVM's copy_vmcs02_to_vmcs12_rare: vmcs02 made current for the rare fields, then
            // the instruction emulated again.
            counts = counts
                + vm.with(Which::Vmcs02, |w| {
                    let c = Counted::new(w);
                    or_fail(self.nested.sync_rare(&c), "syncing vmcs12's rare fields");
                    c.counts()
                });
        };
        let what = match r {
            R::Vmread | R::Vmwrite => self.nested.last_field_access().map_or(L1Exit::Other, L1Exit::Access),
            R::Vmlaunch | R::Vmresume if out.is_some() => L1Exit::Run,
            R::Vmptrld if self.nested.current_pointer() != before => L1Exit::NewCurrent,
            _ => L1Exit::Other,
        };
        self.meter.l1_exit(counts, what);
        if let Some(inv) = self.invalidate.take() {
            self.flush(vm, inv);
        }
        let mut extra = Counts::default();
        if shadowing {
            let now = self.nested.current_pointer();
            if let Some((e, value)) = self.nested.take_shadow_write().filter(|_| self.shadow_active) {
                extra = extra
                    + vm.with(Which::Shadow, |s| {
                        let mut c = Counted::new(s);
                        or_fail(self.nested.write_shadow(&mut c, e, value), "writing through to the shadow VMCS");
                        c.counts()
                    });
            }
            if now == before && exited && self.shadow_active {
                // The entry failed as a VM exit: L1 reads its exit information through the shadow.
                extra = extra + self.fill_shadow(vm);
            }
            if now != before {
                let link = (now != INVALID_POINTER).then(|| Vmcss::phys(Which::Shadow));
                if link.is_some() {
                    extra = extra + self.fill_shadow(vm);
                }
                extra = extra
                    + vm.with(Which::Vmcs01, |v| {
                        let mut c = Counted::new(v);
                        or_fail(vmcs01::set_shadowing(&mut c, link), "vmcs01 shadowing");
                        c.counts()
                    });
                self.shadow_active = link.is_some();
            }
        }
        self.meter.l1 = self.meter.l1 + extra;
        out
    }

    pub(super) fn handle_vmx(&mut self, v: &mut Counted<'_, CurrentVmcs<'_>>, r: R) -> Result<VmxNext, VmcsError> {
        match self.nested.handle_exit(r, v, &mut self.cpu, &mut L1Memory) {
            Outcome::Invalidate(inv) => {
                self.invalidate = Some(inv);
                Ok(VmxNext::Resume)
            }
            Outcome::ResumeL1 => {
                if let (R::Vmlaunch | R::Vmresume, Some(f)) = (r, self.nested.last_entry_failure()) {
                    l0log!("L1's {r:?} fails: {f}");
                }
                Ok(VmxNext::Resume)
            }
            Outcome::EnterL2 { launch } => {
                Ok(VmxNext::EnterL2 { launch, l1_efer: v.read_raw(F::GUEST_IA32_EFER.raw())? })
            }
            Outcome::EntryFailed { reason, qualification } => {
                if let Some(f) = self.nested.last_entry_failure() {
                    l0log!("L1's VM entry fails: {f}");
                }
                self.nested.fail_entry(reason.bits(), qualification)?;
                self.nested.load_l1_host_state(v)?;
                self.load_exit_msrs(v);
                Ok(VmxNext::EntryFailed)
            }
            Outcome::SyncRare => Ok(VmxNext::SyncRare),
            Outcome::Memory(e) => log::fail(format_args!("L1 used memory L0 cannot reach: {:#x}", e.gpa)),
            Outcome::Vmcs01(e) => Err(e),
            Outcome::NotVmxInstruction => log::fail(format_args!("{r:?}: not a VMX instruction")),
        }
    }
}
