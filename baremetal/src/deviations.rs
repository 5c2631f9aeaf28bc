//! Where Bochs 2.7's VM entry departs from the SDM, each named with the SDM's words: a state on
//! which the checker (the SDM) and Bochs disagree counts as that deviation when the deviation,
//! applied to the checker's failing rules, predicts what Bochs did. Everything else is
//! unexplained and fails the suite.
//!
//! From reading Bochs 2.7's `cpu/vmx.cc`; each entry here was confirmed by a run that needed it.

use vmcs::caps::{Cap, Capabilities, VmxCaps};
use vmcs::entry::{Outcome, Rule};
use vmcs::fields as F;
use vmcs::hw::CurrentVmcs;

/// How Bochs departs.
pub enum Departure {
    /// Bochs does not check these rules (in states where `when` holds).
    Unchecked(&'static [&'static str]),
    /// Bochs reports this rule's failure with another outcome.
    Reports(&'static str, Outcome),
    /// Bochs fails this rule (with its outcome) in states where `when` holds, though it holds.
    Fails(&'static str),
}

pub struct Deviation {
    pub name: &'static str,
    /// What the SDM requires.
    pub sdm: &'static str,
    pub departure: Departure,
    /// Where the deviation applies: this model, the VMCS state, and the rule.
    pub when: fn(&VmxCaps, &CurrentVmcs<'_>, Rule) -> bool,
}

fn always(_: &VmxCaps, _: &CurrentVmcs<'_>, _: Rule) -> bool {
    true
}

fn field(v: &CurrentVmcs<'_>, f: u64) -> u64 {
    v.vmread(f).unwrap_or(0)
}

/// The segment a per-segment rule names (`data_dpl_ds` -> DS), as the field of its access rights.
fn access_rights(rule: Rule) -> Option<u64> {
    let seg = rule.name().rsplit('_').next()?;
    Some(match seg {
        "es" => F::GUEST_ES_AR_BYTES.raw(),
        "ds" => F::GUEST_DS_AR_BYTES.raw(),
        "fs" => F::GUEST_FS_AR_BYTES.raw(),
        "gs" => F::GUEST_GS_AR_BYTES.raw(),
        "ss" => F::GUEST_SS_AR_BYTES.raw(),
        _ => return None,
    })
}

const X33: Outcome = Outcome::EntryFailure { reason: 33, qualification: 0 };

pub static DEVIATIONS: &[Deviation] = &[
    Deviation {
        name: "bochs-perf-global-ctrl-unchecked",
        sdm: "If the \"load IA32_PERF_GLOBAL_CTRL\" VM-exit (VM-entry) control is 1, bits reserved in the IA32_PERF_GLOBAL_CTRL MSR must be 0 in the field for that register (26.2.2, 26.3.1.1)",
        departure: Departure::Unchecked(&["host_perf_global_ctrl_reserved", "guest_perf_global_ctrl_reserved"]),
        when: always,
    },
    Deviation {
        name: "bochs-debugctl-unchecked",
        sdm: "If the \"load debug controls\" VM-entry control is 1, bits reserved in the IA32_DEBUGCTL MSR must be 0 in the field for that register (26.3.1.1)",
        departure: Departure::Unchecked(&["guest_debugctl_reserved"]),
        when: always,
    },
    Deviation {
        name: "bochs-entry-to-smm-late",
        sdm: "The \"entry to SMM\" VM-entry control must be 0 when VM entry is not executed in SMM (26.2.1.3): VMfailValid(7)",
        departure: Departure::Reports("entry_to_smm_outside_smm", X33),
        when: always,
    },
    Deviation {
        name: "bochs-nmi-sti-qualification",
        sdm: "Injecting an NMI with blocking by STI: some processors fail VM entry with exit qualification 3 (26.3.1.5)",
        departure: Departure::Reports("nmi_injection_sti", X33),
        when: always,
    },
    Deviation {
        name: "bochs-ia32e-guest-paging-unchecked",
        sdm: "If the \"IA-32e mode guest\" VM-entry control is 1, bit 31 in the CR0 field (corresponding to CR0.PG) and bit 5 in the CR4 field (CR4.PAE) must each be 1 (26.3.1.1)",
        departure: Departure::Unchecked(&["ia32e_guest_needs_paging"]),
        when: always,
    },
    Deviation {
        name: "bochs-data-dpl-type-11",
        sdm: "If the guest will not be virtual-8086 and \"unrestricted guest\" is 0: DS, ES, FS, GS, if usable with a type in the range 0-11 (data or non-conforming code), DPL cannot be less than RPL (26.3.1.2)",
        departure: Departure::Unchecked(&["data_dpl_ds", "data_dpl_es", "data_dpl_fs", "data_dpl_gs"]),
        when: |_, v, r| access_rights(r).is_some_and(|ar| field(v, ar) & 0xf == 11),
    },
    Deviation {
        name: "bochs-rip-canonical-unchecked",
        sdm: "If the processor supports N < 64 linear-address bits, bits 63:N of RIP must be identical if the \"IA-32e mode guest\" VM-entry control is 1 and the L bit in the access-rights field for CS is 1 (26.3.1.4)",
        departure: Departure::Unchecked(&["rip_canonical"]),
        when: always,
    },
    Deviation {
        name: "bochs-hlt-injection-unchecked",
        sdm: "The activity state HLT: the only events that may be injected are an external interrupt, an NMI, a #DB or #MC hardware exception, or a pending MTF VM exit (26.3.1.5)",
        departure: Departure::Unchecked(&["hlt_injection"]),
        when: always,
    },
    Deviation {
        name: "bochs-virtual-nmi-blocking-unchecked",
        sdm: "If the \"virtual NMIs\" VM-execution control is 1 and an NMI is being injected, bit 3 (blocking by NMI) of the interruptibility-state field must be 0 (26.3.1.5)",
        departure: Departure::Unchecked(&["virtual_nmi_injection_blocking"]),
        when: always,
    },
    Deviation {
        name: "bochs-pending-debug-high-bits-unchecked",
        sdm: "Pending debug exceptions: bits 11:4, bit 13, bit 15 and bits 63:17 are reserved and must be 0 (26.3.1.5)",
        departure: Departure::Unchecked(&["pending_debug_reserved"]),
        // Bochs keeps the field as 32 bits: only bits 63:32 go unchecked.
        when: |_, v, _| {
            let p = field(v, F::GUEST_PENDING_DBG_EXCEPTIONS.raw());
            p >> 32 != 0 && p & 0xfffe_aff0 == 0
        },
    },
    Deviation {
        name: "bochs-pending-bs-unchecked",
        sdm: "If blocking by STI or MOV SS is indicated, or the activity state is HLT: BS (bit 14) of the pending debug exceptions must be 1 if RFLAGS.TF = 1 and IA32_DEBUGCTL.BTF = 0, and 0 if TF = 0 or BTF = 1 (26.3.1.5)",
        departure: Departure::Unchecked(&["pending_bs_set", "pending_bs_clear"]),
        when: always,
    },
    Deviation {
        name: "bochs-error-code-real-mode-needs-ug",
        sdm: "The deliver-error-code bit is 1 when injecting a hardware exception that delivers an error code if bit 0 (PE) of the guest CR0 field is set, and 0 if it is clear (26.2.1.3); Bochs treats CR0.PE = 0 as real mode only with \"unrestricted guest\"",
        departure: Departure::Fails("error_code_for_faulting_vectors"),
        when: |_, v, _| {
            let info = field(v, F::VM_ENTRY_INTR_INFO_FIELD.raw());
            let ug = field(v, F::CPU_BASED_VM_EXEC_CONTROL.raw()) >> 31 & 1 == 1
                && field(v, F::SECONDARY_VM_EXEC_CONTROL.raw()) >> 7 & 1 == 1;
            let pe = field(v, F::GUEST_CR0.raw()) & 1 == 1;
            info >> 31 == 1
                && info >> 8 & 7 == 3
                && info >> 11 & 1 == 0
                && !pe
                && !ug
                && matches!(info & 0xff, 8 | 10..=14 | 17)
        },
    },
    Deviation {
        name: "bochs-error-code-real-mode-needs-ug-too",
        sdm: "The deliver-error-code bit must be 0 if bit 0 (PE) of the guest CR0 field is clear (26.2.1.3); Bochs checks it only with \"unrestricted guest\"",
        departure: Departure::Unchecked(&["error_code_needs_protected_mode"]),
        when: |_, v, _| {
            !(field(v, F::CPU_BASED_VM_EXEC_CONTROL.raw()) >> 31 & 1 == 1
                && field(v, F::SECONDARY_VM_EXEC_CONTROL.raw()) >> 7 & 1 == 1)
        },
    },
    Deviation {
        name: "bochs-error-code-unchecked-with-cet",
        sdm: "The deliver-error-code bit is 0 unless a hardware exception is injected in protected mode; where IA32_VMX_BASIC[56] is 0 it must also match whether the vector delivers an error code (26.2.1.3): Bochs skips the whole check on processors reporting IA32_VMX_BASIC[56]",
        departure: Departure::Unchecked(&[
            "error_code_only_for_exceptions",
            "error_code_needs_protected_mode",
            "error_code_for_faulting_vectors",
            "error_code_only_for_faulting_vectors",
        ]),
        when: |caps, _, _| caps.has(Cap::BasicNoHwExceptionErrorCodeCheck),
    },
    Deviation {
        name: "bochs-host-cet-wp-only-with-cet-load",
        sdm: "The CR4 field: if bit 23 (CET) is 1, bit 16 (WP) in the CR0 field must be 1 (26.2.2); Bochs checks it only when the \"load CET state\" VM-exit control is 1",
        departure: Departure::Unchecked(&["host_cet_needs_wp"]),
        when: |_, v, _| field(v, F::VM_EXIT_CONTROLS.raw()) >> 28 & 1 == 0,
    },
    // VM-entry MSR loading (26.4). Bochs leaves these to its WRMSR, which with `ignore_bad_msrs`
    // (the default) writes an MSR it lacks without a fault: the entry loads, and the next is read.
    Deviation {
        name: "bochs-msr-load-x2apic-range-without-x2apic",
        sdm: "VM entry fails on an MSR-load entry whose bits 31:8 are 000008H, meaning that the indexed MSR is one that allows access to an APIC register when the local APIC is in x2APIC mode (26.4); Bochs checks this only on models with x2APIC",
        departure: Departure::Unchecked(&["msr_load_not_x2apic"]),
        when: |_, _, _| core::arch::x86_64::__cpuid(1).ecx >> 21 & 1 == 0,
    },
    Deviation {
        name: "bochs-msr-load-smm-only-unchecked",
        sdm: "VM entry fails on an MSR-load entry whose bits 31:0 indicate an MSR that can be written only in system-management mode (SMM) when the VM entry did not commence in SMM; IA32_SMM_MONITOR_CTL is an MSR that can be written only in SMM (26.4)",
        departure: Departure::Unchecked(&["msr_load_smm_only"]),
        when: always,
    },
    Deviation {
        name: "bochs-msr-load-microcode-unchecked",
        sdm: "VM entry fails on an MSR-load entry whose bits 31:0 indicate an MSR that cannot be loaded on VM entries for model-specific reasons, such as the microcode-update MSRs IA32_BIOS_UPDT_TRIG (79H) and IA32_BIOS_SIGN_ID (8BH) (26.4)",
        departure: Departure::Unchecked(&["msr_load_not_microcode"]),
        when: always,
    },
];

impl Deviation {
    /// The rules the deviation is about.
    pub fn rules(&self) -> impl Iterator<Item = Rule> + '_ {
        let names: &[&str] = match &self.departure {
            Departure::Unchecked(rules) => rules,
            Departure::Reports(r, _) | Departure::Fails(r) => core::slice::from_ref(r),
        };
        names.iter().filter_map(|n| Rule::from_name(n))
    }

    /// The outcome Bochs gives for a covered `rule` that fails by the SDM: None if Bochs does not
    /// check it.
    pub fn outcome(&self, rule: Rule) -> Option<Outcome> {
        match self.departure {
            Departure::Unchecked(_) => None,
            Departure::Reports(_, o) => Some(o),
            Departure::Fails(_) => Some(rule.outcome()),
        }
    }

    /// Does Bochs fail a covered `rule` that holds by the SDM?
    pub fn adds(&self) -> bool {
        matches!(self.departure, Departure::Fails(_))
    }
}

/// Models without the "monitor trap flag" control: injecting an other event (type 7) stops Bochs
/// with a BX_PANIC, so such states are never launched there.
pub fn panics_on_other_event(caps: &VmxCaps) -> bool {
    !caps.has(Cap::ProcMonitorTrapFlag)
}
