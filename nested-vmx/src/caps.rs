//! The IA32_VMX_* capability MSRs L0 gives L1: a subset of the host's, built from the schema's
//! capability bits ([`Cap::msr`], [`Cap::bit`]) for the capabilities L0 chooses to offer.
//!
//! - IA32_VMX_BASIC carries the vmcs12 layout's revision and region size, write-back memory type,
//!   and the offered BASIC flags (TRUE controls among them).
//! - Each control MSR keeps the host's must-be-1 settings (so vmcs02, which merges L0's and L1's
//!   controls, never needs a bit L1 could clear) and allows exactly the offered controls. The
//!   non-TRUE MSRs add the host's default-1 settings to both words, as the SDM defines them.
//! - MISC keeps only the offered flags and the host's preemption-timer rate when the timer is
//!   offered: no CR3-target values, the minimum MSR-list size, MSEG revision 0 (as KVM gives L1).
//! - The CR0/CR4 fixed MSRs are the host's; IA32_VMX_VMCS_ENUM is the highest index of the fields
//!   L1 can access for these capabilities (every field that exists for them, see
//!   [`crate::current`]).
//! - An MSR whose `requires` gate fails does not exist: RDMSR of it is #GP ([`L1Caps::rdmsr`]).

use vmcs::caps::{Cap, Capabilities, Msr, MsrKind, VmxCaps};
use vmcs::{Layout, Vmcs12};

/// IA32_VMX_BASIC memory type for VMCS regions: write-back (bits 53:50, SDM Appendix A.1).
const BASIC_MEMTYPE_WB: u64 = 6 << 50;
/// IA32_VMX_MISC bits 4:0: the preemption-timer rate.
const MISC_TIMER_RATE: u64 = 0x1f;

/// The capabilities this crate's emulation, routing and nested entry/exit handle, for an L0 that
/// runs L2 on EPT (L0's for L1's memory, or EPT02 from L1's EPT12, [`crate::nested_ept`]) with VPID,
/// routes L2's I/O and MSR accesses itself, and lets L1 own interrupts: what such an L0 can offer
/// L1 from the host ([`Offer::from_host`]). Not among them: APIC virtualization, posted
/// interrupts, VMCS shadowing for L2, the preemption timer, PML, VM functions, MTF, TSC scaling,
/// CET, PAT/DEBUGCTL/PERF_GLOBAL_CTRL loading, MSR-list features.
pub const SUPPORTED: &[Cap] = &[
    Cap::PinExternalInterruptExiting,
    Cap::PinNmiExiting,
    Cap::PinVirtualNmis,
    Cap::ProcInterruptWindowExiting,
    Cap::ProcUseTscOffsetting,
    Cap::ProcHltExiting,
    Cap::ProcInvlpgExiting,
    Cap::ProcMwaitExiting,
    Cap::ProcRdpmcExiting,
    Cap::ProcRdtscExiting,
    Cap::ProcCr3LoadExiting,
    Cap::ProcCr3StoreExiting,
    Cap::ProcCr8LoadExiting,
    Cap::ProcCr8StoreExiting,
    Cap::ProcNmiWindowExiting,
    Cap::ProcMovDrExiting,
    Cap::ProcUnconditionalIoExiting,
    Cap::ProcUseIoBitmaps,
    Cap::ProcUseMsrBitmaps,
    Cap::ProcMonitorExiting,
    Cap::ProcPauseExiting,
    Cap::ProcActivateSecondaryControls,
    Cap::Proc2DescriptorTableExiting,
    Cap::Proc2WbinvdExiting,
    Cap::Proc2EnableEpt,
    Cap::Proc2UnrestrictedGuest,
    Cap::Proc2EnableVpid,
    Cap::ExitHostAddressSpaceSize,
    Cap::ExitAckInterruptOnExit,
    Cap::ExitSaveIa32Efer,
    Cap::ExitLoadIa32Efer,
    Cap::EntryIa32eModeGuest,
    Cap::EntryLoadIa32Efer,
    Cap::MiscActivityHlt,
    Cap::EptPageWalk4,
    Cap::EptMemtypeWb,
    Cap::EptPde2mb,
    Cap::EptPdpte1gb,
    Cap::EptInvept,
    Cap::EptInveptSingleContext,
    Cap::EptInveptAllContext,
    Cap::VpidInvvpid,
    Cap::VpidInvvpidIndividualAddress,
    Cap::VpidInvvpidSingleContext,
    Cap::VpidInvvpidAllContext,
    Cap::VpidInvvpidSingleContextRetainingGlobals,
];

/// What L0 offers L1.
#[derive(Clone, Copy, Debug)]
pub struct Offer<'a> {
    /// Capabilities L1 gets when the host has them (L0 relies on the hardware for them).
    pub from_host: &'a [Cap],
    /// Capabilities L0 implements in software: L1 gets them whatever the host has.
    pub emulated: &'a [Cap],
}

impl Offer<'_> {
    fn gives(&self, host: &VmxCaps, cap: Cap) -> bool {
        self.emulated.contains(&cap) || (self.from_host.contains(&cap) && host.has(cap))
    }

    /// The bits of `msr` (the plain MSR, not its TRUE variant) this offer sets, at the positions
    /// [`Cap::bit`] names.
    fn bits(&self, host: &VmxCaps, msr: Msr) -> u64 {
        Cap::ALL.iter().filter(|c| c.msr() == msr && self.gives(host, **c)).fold(0, |acc, c| acc | 1 << c.bit())
    }
}

/// L1's capability MSRs (every [`Msr`]), the values its RDMSR returns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct L1Caps {
    msrs: VmxCaps,
    /// The processor's: which fields vmcs02 and vmcs01 have.
    host: VmxCaps,
}

impl L1Caps {
    /// The capability MSRs for an L1 on `host` given `offer`.
    pub fn new(host: &VmxCaps, offer: &Offer<'_>) -> Self {
        let mut m = VmxCaps::new();
        m.set(
            Msr::Basic.index(),
            Vmcs12::REVISION as u64
                | (Vmcs12::REGION_SIZE as u64) << 32
                | BASIC_MEMTYPE_WB
                | offer.bits(host, Msr::Basic),
        );
        for msr in control_msrs() {
            // The host's TRUE value when it has one: its must-be-1 settings are the minimum.
            let must1 = host.value(msr) as u32;
            let allowed1 = must1 | offer.bits(host, msr) as u32;
            // Default-1 settings: the plain MSR reports them as must-be-1.
            let default1 = host.raw(msr.index()) as u32 | must1;
            m.set(msr.index(), join(default1, allowed1 | default1));
            if let Some(t) = msr.true_msr() {
                m.set(t.index(), join(must1, allowed1));
            }
        }
        let misc = Msr::Misc.index();
        let timer = m.has(Cap::PinActivatePreemptionTimer) as u64 * (host.raw(misc) & MISC_TIMER_RATE);
        m.set(misc, timer | offer.bits(host, Msr::Misc));
        for fixed in [Msr::Cr0Fixed0, Msr::Cr0Fixed1, Msr::Cr4Fixed0, Msr::Cr4Fixed1] {
            m.set(fixed.index(), host.raw(fixed.index()));
        }
        for flags in [Msr::EptVpid, Msr::Vmfunc] {
            m.set(flags.index(), offer.bits(host, flags));
        }
        // Drop what does not exist for the controls just chosen: such an MSR reads as 0.
        for msr in Msr::ALL {
            if !msr.exists(&m) {
                m.set(msr.index(), 0);
            }
        }
        // Every field that exists for L1's capabilities is accessible (in vmcs12 or in the
        // region's extension, `crate::current`): the architectural value for those capabilities.
        m.set(Msr::VmcsEnum.index(), vmcs::fields::vmcs_enum(&m));
        L1Caps { msrs: m, host: *host }
    }

    /// The capability set, for field existence ([`vmcs::fields::exists`]) and capability tests.
    pub fn caps(&self) -> &VmxCaps {
        &self.msrs
    }

    /// The processor's capabilities (for the copy routines: the fields vmcs02 and vmcs01 have).
    pub fn host(&self) -> &VmxCaps {
        &self.host
    }

    /// L1's RDMSR of a capability MSR: None (#GP) when the MSR does not exist for these
    /// capabilities or is not a VMX capability MSR.
    pub fn rdmsr(&self, index: u32) -> Option<u64> {
        Msr::from_index(index).filter(|m| m.exists(&self.msrs)).map(|_| self.msrs.raw(index))
    }

    /// The raw values, in the shape [`vmcs::restore`] audits.
    pub fn restore_view(&self) -> vmcs::restore::NestedVmxMsrs {
        vmcs::restore::NestedVmxMsrs::from_caps(&self.msrs)
    }
}

const fn join(low: u32, high: u32) -> u64 {
    low as u64 | (high as u64) << 32
}

/// The control MSRs L1's controls are chosen in: every "control" MSR that is not itself the TRUE
/// variant of another (pin, primary and secondary processor-based, exit, entry).
pub fn control_msrs() -> impl Iterator<Item = Msr> {
    Msr::ALL.into_iter().filter(|m| m.kind() == MsrKind::Control && !Msr::ALL.iter().any(|o| o.true_msr() == Some(*m)))
}
