//! Rule 22 of KVM_SET_NESTED_STATE on a vmcs12 given as bytes of a layout: the VM-entry checks KVM
//! applies to a restored vmcs12 in guest mode (`nested_vmx_check_restored_vmcs12`), evaluated by
//! the interpreter of the schema's rules (the runtime's `nested_state::check_restore` runs the
//! generated checker on the same rules).

use crate::Caps;
use crate::checks::eval::{Inputs, Unreadable};
use crate::model::{Layout, Schema};

/// What the vmcs12 checks found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Contents {
    /// Every check KVM applies passed.
    Passed {
        /// How many rules were checked (those marked `kvm_restore`).
        rules: usize,
    },
    /// A check failed.
    Failed {
        /// The first failing rule, in check order: its index in `schema.checks.rules`.
        rule: usize,
    },
}

/// The facts of an L1 vCPU as KVM sees it: `maxphyaddr`, 4-level paging, and the IA32_EFER,
/// IA32_DEBUGCTL and IA32_PERF_GLOBAL_CTRL bits an Intel CPU defines (SCE, LME, LMA, NXE; LBR,
/// BTF and bits 15:6; 8 counters and 3 fixed ones); every other fact 0.
pub fn restore_facts(schema: &Schema, maxphyaddr: u8) -> Vec<u64> {
    schema
        .checks
        .facts
        .iter()
        .map(|f| match f.name.as_str() {
            "maxphyaddr" => maxphyaddr as u64,
            "linear_width" => 48,
            "efer_reserved" => !(1 | 1 << 8 | 1 << 10 | 1 << 11),
            "debugctl_reserved" => !0xffc3,
            "perf_global_ctrl_reserved" => !(0xff | 7 << 32),
            _ => 0,
        })
        .collect()
}

/// Apply KVM's restore checks to `vmcs12` (bytes of `layout`) for an L1 with `caps` and
/// `maxphyaddr` physical-address bits ([`restore_facts`]), without guest memory (as KVM checks a
/// restored vmcs12). Err names a field the checks need that `layout` does not hold, or whose bytes
/// lie past the end of `vmcs12`.
pub fn check(schema: &Schema, layout: &Layout, vmcs12: &[u8], caps: &Caps, maxphyaddr: u8) -> Result<Contents, String> {
    let facts = restore_facts(schema, maxphyaddr);
    let field = |f: usize| {
        let (m, _) = layout.mapped().find(|(_, id)| *id == f)?;
        let bytes = vmcs12.get(m.offset as usize..(m.offset + m.size) as usize)?;
        Some(bytes.iter().rev().fold(0u64, |acc, b| acc << 8 | u64::from(*b)))
    };
    let memory = |_: u64, _: u32| None;
    let wrmsr_faults = |_: u32, _: u64| false;
    let inputs = Inputs { schema, caps, facts: &facts, field: &field, memory: &memory, wrmsr_faults: &wrmsr_faults };
    let restore = |r: &crate::model::Rule| r.kvm_restore;
    match inputs.first_failure(restore) {
        Ok(Some(f)) => Ok(Contents::Failed { rule: f.rule }),
        Ok(None) => Ok(Contents::Passed { rules: schema.checks.rules.iter().filter(|r| r.kvm_restore).count() }),
        Err(Unreadable(f)) => Err(format!(
            "layout `{}` holds no {} which the checks need for these capabilities",
            layout.name, schema.fields[f].name
        )),
    }
}

/// The verdict line of the contents: accepted, or the rule that refuses (rule 22, -EINVAL).
pub fn text(schema: &Schema, c: &Contents) -> String {
    match c {
        Contents::Passed { rules } => format!("vmcs12 passes the {rules} VM-entry checks KVM applies on restore"),
        Contents::Failed { rule } => {
            let r = &schema.checks.rules[*rule];
            format!(
                "rejected (rule 22, -EINVAL): vmcs12 fails {} (SDM {}, {}): {}: {}",
                r.name,
                r.section,
                r.reference,
                r.outcome.text(),
                r.doc
            )
        }
    }
}
