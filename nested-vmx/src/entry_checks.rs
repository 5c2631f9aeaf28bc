//! The VM-entry checks L0 applies to vmcs12 before a nested entry: a documented subset of the
//! SDM's (Vol. 3C 27.2-27.3), to be replaced by the checker the VM-entry-checks issue generates
//! from the schema. What this subset leaves out, the processor checks when it enters vmcs02, and
//! a failure there reaches L1 as the same VM-entry failure.
//!
//! - Controls (VMfailValid 7): every control field against L1's capability MSRs (allowed-0 and
//!   allowed-1), the CR3-target count, I/O- and MSR-bitmap addresses, NMI/virtual-NMI/NMI-window
//!   dependencies, VPID 0, unrestricted guest without EPT, the EPTP, MSR-load/store lists, and
//!   the event-injection field.
//! - Host state (VMfailValid 8): CR0/CR4 fixed bits, CR3 and canonical bases, the host
//!   address-space size against L1's own EFER.LMA (KVM's rule), selectors, host EFER.
//! - Guest state (VM exit 33 with bit 31): CR0/CR4 fixed bits (PE/PG free under unrestricted
//!   guest), IA-32e mode vs CR0.PG/CR4.PAE, RFLAGS reserved bits, guest EFER, the activity and
//!   interruptibility states, and the VMCS link pointer (qualification 4; it must be -1, since L1
//!   is not offered VMCS shadowing for L2).

use vmcs::caps::{Cap, Capabilities, VmxCaps};
use vmcs::controls::{
    Controls, CpuBasedVmExecControl, PinBasedVmExecControl, SecondaryVmExecControl, VmEntryControls, VmExitControls,
};
use vmcs::fields as F;
use vmcs::{Vmcs12, VmcsRead};

/// The outcome of the checks; each failure names the check.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EntryCheck {
    Pass,
    InvalidControls(&'static str),
    InvalidHostState(&'static str),
    InvalidGuestState { check: &'static str, qualification: u64 },
}

fn ctl(cap: Cap) -> u64 {
    1 << cap.bit()
}

/// Apply the checks to `v12` for an L1 with capabilities `caps`, in long mode or not.
pub fn check(v12: &Vmcs12, caps: &VmxCaps, l1_long_mode: bool, maxphyaddr: u8) -> EntryCheck {
    if let Err(what) = controls(v12, caps, maxphyaddr) {
        return EntryCheck::InvalidControls(what);
    }
    if let Err(what) = host_state(v12, caps, l1_long_mode, maxphyaddr) {
        return EntryCheck::InvalidHostState(what);
    }
    if let Err((check, qualification)) = guest_state(v12, caps) {
        return EntryCheck::InvalidGuestState { check, qualification };
    }
    EntryCheck::Pass
}

fn get(v12: &Vmcs12, encoding: u64) -> u64 {
    v12.read_raw(encoding).unwrap_or(0)
}

fn ensure(ok: bool, what: &'static str) -> Result<(), &'static str> {
    if ok { Ok(()) } else { Err(what) }
}

/// Every control L1's MSRs require is set and none they forbid (the TRUE MSR when offered); a
/// 32-bit field stored in 64 bits of vmcs12 reads its low half, as VMWRITE truncated it.
fn allowed<T: Controls>(caps: &VmxCaps, value: u64) -> bool {
    T::allowed(caps).permits(T::from_bits_truncate(value))
}

fn page_valid(a: u64, maxphyaddr: u8) -> bool {
    a & 0xfff == 0 && a >> maxphyaddr.min(63) == 0
}

fn canonical(a: u64) -> bool {
    ((a << 16) as i64 >> 16) as u64 == a
}

/// `nested_vmx_check_eptp`: memory type, walk length, reserved bits, A/D, against L1's caps.
pub fn eptp_valid(caps: &VmxCaps, eptp: u64, maxphyaddr: u8) -> bool {
    let memtype_ok = match eptp & 7 {
        0 => caps.has(Cap::EptMemtypeUc),
        6 => caps.has(Cap::EptMemtypeWb),
        _ => false,
    };
    let walk_ok = match eptp >> 3 & 7 {
        3 => caps.has(Cap::EptPageWalk4),
        4 => caps.has(Cap::EptPageWalk5),
        _ => false,
    };
    let ad_ok = eptp >> 6 & 1 == 0 || caps.has(Cap::EptAccessedDirty);
    memtype_ok && walk_ok && ad_ok && eptp >> 7 & 0x1f == 0 && eptp >> maxphyaddr.min(63) == 0
}

fn controls(v12: &Vmcs12, caps: &VmxCaps, maxphyaddr: u8) -> Result<(), &'static str> {
    let pin = get(v12, F::PIN_BASED_VM_EXEC_CONTROL.raw());
    let proc = get(v12, F::CPU_BASED_VM_EXEC_CONTROL.raw());
    let proc2 = if proc & ctl(Cap::ProcActivateSecondaryControls) != 0 {
        get(v12, F::SECONDARY_VM_EXEC_CONTROL.raw())
    } else {
        0
    };
    let exit = get(v12, F::VM_EXIT_CONTROLS.raw());
    let entry = get(v12, F::VM_ENTRY_CONTROLS.raw());
    ensure(allowed::<PinBasedVmExecControl>(caps, pin), "pin-based controls")?;
    ensure(allowed::<CpuBasedVmExecControl>(caps, proc), "primary processor-based controls")?;
    ensure(allowed::<SecondaryVmExecControl>(caps, proc2), "secondary processor-based controls")?;
    ensure(allowed::<VmExitControls>(caps, exit), "VM-exit controls")?;
    ensure(allowed::<VmEntryControls>(caps, entry), "VM-entry controls")?;
    let misc = caps.raw(0x485);
    ensure(get(v12, F::CR3_TARGET_COUNT.raw()) <= misc >> 16 & 0x1ff, "CR3-target count")?;
    if proc & ctl(Cap::ProcUseIoBitmaps) != 0 {
        ensure(page_valid(get(v12, F::IO_BITMAP_A.raw()), maxphyaddr), "I/O bitmap A address")?;
        ensure(page_valid(get(v12, F::IO_BITMAP_B.raw()), maxphyaddr), "I/O bitmap B address")?;
    }
    if proc & ctl(Cap::ProcUseMsrBitmaps) != 0 {
        ensure(page_valid(get(v12, F::MSR_BITMAP.raw()), maxphyaddr), "MSR bitmap address")?;
    }
    let nmi_exiting = pin & ctl(Cap::PinNmiExiting) != 0;
    let virtual_nmis = pin & ctl(Cap::PinVirtualNmis) != 0;
    ensure(nmi_exiting || !virtual_nmis, "virtual NMIs need NMI exiting")?;
    ensure(virtual_nmis || proc & ctl(Cap::ProcNmiWindowExiting) == 0, "NMI-window exiting needs virtual NMIs")?;
    if proc2 & ctl(Cap::Proc2EnableVpid) != 0 {
        ensure(get(v12, F::VIRTUAL_PROCESSOR_ID.raw()) != 0, "VPID 0")?;
    }
    let ept = proc2 & ctl(Cap::Proc2EnableEpt) != 0;
    ensure(ept || proc2 & ctl(Cap::Proc2UnrestrictedGuest) == 0, "unrestricted guest needs EPT")?;
    if ept {
        ensure(eptp_valid(caps, get(v12, F::EPT_POINTER.raw()), maxphyaddr), "EPT pointer")?;
    }
    let max_list = 512 * ((misc >> 25 & 7) + 1);
    for (count, addr, what) in [
        (F::VM_EXIT_MSR_STORE_COUNT.raw(), F::VM_EXIT_MSR_STORE_ADDR.raw(), "VM-exit MSR-store list"),
        (F::VM_EXIT_MSR_LOAD_COUNT.raw(), F::VM_EXIT_MSR_LOAD_ADDR.raw(), "VM-exit MSR-load list"),
        (F::VM_ENTRY_MSR_LOAD_COUNT.raw(), F::VM_ENTRY_MSR_LOAD_ADDR.raw(), "VM-entry MSR-load list"),
    ] {
        let (n, a) = (get(v12, count), get(v12, addr));
        let last = a.wrapping_add(n * 16).wrapping_sub(1);
        ensure(n <= max_list && (n == 0 || (a & 15 == 0 && last >> maxphyaddr.min(63) == 0 && last >= a)), what)?;
    }
    event_injection(v12, caps)
}

fn event_injection(v12: &Vmcs12, caps: &VmxCaps) -> Result<(), &'static str> {
    let info = get(v12, F::VM_ENTRY_INTR_INFO_FIELD.raw());
    if info >> 31 == 0 {
        return Ok(());
    }
    let (vector, kind) = (info & 0xff, info >> 8 & 7);
    let error_code = info >> 11 & 1 == 1;
    ensure(info >> 12 & 0x7_ffff == 0, "event injection: reserved bits")?;
    ensure(kind != 1 && kind != 7, "event injection: reserved type")?;
    ensure(kind != 2 || vector == 2, "event injection: NMI vector")?;
    ensure(kind != 3 || vector <= 31, "event injection: exception vector")?;
    let protected = get(v12, F::GUEST_CR0.raw()) & 1 == 1;
    let has_code = matches!(vector, 8 | 10..=14 | 17 | 21);
    let code_ok = if caps.has(Cap::BasicNoHwExceptionErrorCodeCheck) {
        !error_code || (kind == 3 && protected)
    } else {
        error_code == (kind == 3 && protected && has_code)
    };
    ensure(code_ok, "event injection: deliver-error-code bit")?;
    if error_code {
        ensure(get(v12, F::VM_ENTRY_EXCEPTION_ERROR_CODE.raw()) >> 16 == 0, "event injection: error code")?;
    }
    if matches!(kind, 4..=6) {
        let len = get(v12, F::VM_ENTRY_INSTRUCTION_LEN.raw());
        ensure((1..=15).contains(&len), "event injection: instruction length")?;
    }
    Ok(())
}

fn fixed(caps: &VmxCaps, value: u64, fixed0: u64, fixed1_index: u32) -> bool {
    value & fixed0 == fixed0 && value & !caps.raw(fixed1_index) == 0
}

fn host_state(v12: &Vmcs12, caps: &VmxCaps, l1_long_mode: bool, maxphyaddr: u8) -> Result<(), &'static str> {
    let exit = get(v12, F::VM_EXIT_CONTROLS.raw());
    let entry = get(v12, F::VM_ENTRY_CONTROLS.raw());
    let host64 = exit & ctl(Cap::ExitHostAddressSpaceSize) != 0;
    ensure(host64 == l1_long_mode, "host address-space size vs L1's EFER.LMA")?;
    let cr4 = get(v12, F::HOST_CR4.raw());
    ensure(fixed(caps, get(v12, F::HOST_CR0.raw()), caps.raw(0x486), 0x487), "host CR0")?;
    ensure(fixed(caps, cr4, caps.raw(0x488), 0x489), "host CR4")?;
    ensure(get(v12, F::HOST_CR3.raw()) >> maxphyaddr.min(63) == 0, "host CR3")?;
    let rip = get(v12, F::HOST_RIP.raw());
    if host64 {
        ensure(cr4 & 1 << 5 != 0, "64-bit host needs CR4.PAE")?;
        ensure(canonical(rip), "host RIP")?;
    } else {
        ensure(entry & ctl(Cap::EntryIa32eModeGuest) == 0, "IA-32e guest needs a 64-bit host")?;
        ensure(cr4 & 1 << 17 == 0, "32-bit host with CR4.PCIDE")?;
        ensure(rip >> 32 == 0, "host RIP above 4 GiB")?;
    }
    for sel in [
        F::HOST_ES_SELECTOR.raw(),
        F::HOST_CS_SELECTOR.raw(),
        F::HOST_SS_SELECTOR.raw(),
        F::HOST_DS_SELECTOR.raw(),
        F::HOST_FS_SELECTOR.raw(),
        F::HOST_GS_SELECTOR.raw(),
        F::HOST_TR_SELECTOR.raw(),
    ] {
        ensure(get(v12, sel) & 7 == 0, "host selector RPL/TI")?;
    }
    ensure(get(v12, F::HOST_CS_SELECTOR.raw()) != 0, "host CS selector 0")?;
    ensure(get(v12, F::HOST_TR_SELECTOR.raw()) != 0, "host TR selector 0")?;
    ensure(host64 || get(v12, F::HOST_SS_SELECTOR.raw()) != 0, "host SS selector 0")?;
    for base in [
        F::HOST_FS_BASE.raw(),
        F::HOST_GS_BASE.raw(),
        F::HOST_GDTR_BASE.raw(),
        F::HOST_IDTR_BASE.raw(),
        F::HOST_TR_BASE.raw(),
        F::HOST_IA32_SYSENTER_ESP.raw(),
        F::HOST_IA32_SYSENTER_EIP.raw(),
    ] {
        ensure(canonical(get(v12, base)), "host base not canonical")?;
    }
    if exit & ctl(Cap::ExitLoadIa32Efer) != 0 {
        let efer = get(v12, F::HOST_IA32_EFER.raw());
        ensure(efer_reserved_clear(efer), "host EFER reserved bits")?;
        ensure(efer >> 10 & 1 == host64 as u64 && efer >> 8 & 1 == host64 as u64, "host EFER.LMA/LME")?;
    }
    Ok(())
}

/// EFER bits the architecture defines: SCE 0, LME 8, LMA 10, NXE 11, SVME 12, LMSLE 13, FFXSR 14, TCE 15.
fn efer_reserved_clear(efer: u64) -> bool {
    efer & !(1 | 0xfd00) == 0
}

/// Qualification 0: any guest-state check; 4: the VMCS link pointer.
fn guest_state(v12: &Vmcs12, caps: &VmxCaps) -> Result<(), (&'static str, u64)> {
    let g = |what| (what, 0);
    let entry = get(v12, F::VM_ENTRY_CONTROLS.raw());
    let proc = get(v12, F::CPU_BASED_VM_EXEC_CONTROL.raw());
    let proc2 = if proc & ctl(Cap::ProcActivateSecondaryControls) != 0 {
        get(v12, F::SECONDARY_VM_EXEC_CONTROL.raw())
    } else {
        0
    };
    let cr0 = get(v12, F::GUEST_CR0.raw());
    let cr4 = get(v12, F::GUEST_CR4.raw());
    let mut fixed0 = caps.raw(0x486);
    if proc2 & ctl(Cap::Proc2UnrestrictedGuest) != 0 {
        fixed0 &= !(1 | 1 << 31);
    }
    ensure(fixed(caps, cr0, fixed0, 0x487), "guest CR0").map_err(g)?;
    ensure(cr0 >> 31 == 0 || cr0 & 1 == 1, "guest CR0.PG without PE").map_err(g)?;
    ensure(fixed(caps, cr4, caps.raw(0x488), 0x489), "guest CR4").map_err(g)?;
    let ia32e = entry & ctl(Cap::EntryIa32eModeGuest) != 0;
    if ia32e {
        ensure(cr0 >> 31 == 1 && cr4 & 1 << 5 != 0, "IA-32e guest needs CR0.PG and CR4.PAE").map_err(g)?;
    } else {
        ensure(cr4 & 1 << 17 == 0, "guest CR4.PCIDE outside IA-32e mode").map_err(g)?;
    }
    let rflags = get(v12, F::GUEST_RFLAGS.raw());
    ensure(rflags & 2 != 0 && rflags & !0x3f_7fd7 == 0, "guest RFLAGS reserved bits").map_err(g)?;
    ensure(rflags >> 17 & 1 == 0 || (!ia32e && cr0 & 1 == 1), "guest RFLAGS.VM").map_err(g)?;
    if entry & ctl(Cap::EntryLoadIa32Efer) != 0 {
        let efer = get(v12, F::GUEST_IA32_EFER.raw());
        ensure(efer_reserved_clear(efer), "guest EFER reserved bits").map_err(g)?;
        ensure(efer >> 10 & 1 == ia32e as u64, "guest EFER.LMA vs IA-32e mode").map_err(g)?;
        ensure(cr0 >> 31 == 0 || efer >> 8 & 1 == efer >> 10 & 1, "guest EFER.LME vs LMA").map_err(g)?;
    }
    let activity = get(v12, F::GUEST_ACTIVITY_STATE.raw());
    let activity_ok = match activity {
        0 => true,
        1 => caps.has(Cap::MiscActivityHlt),
        2 => caps.has(Cap::MiscActivityShutdown),
        3 => caps.has(Cap::MiscActivityWaitForSipi),
        _ => false,
    };
    ensure(activity_ok, "guest activity state").map_err(g)?;
    let intr = get(v12, F::GUEST_INTERRUPTIBILITY_INFO.raw());
    ensure(intr >> 5 == 0 && intr & 3 != 3, "guest interruptibility state").map_err(g)?;
    if get(v12, F::VMCS_LINK_POINTER.raw()) != u64::MAX {
        return Err(("VMCS link pointer", 4));
    }
    Ok(())
}
