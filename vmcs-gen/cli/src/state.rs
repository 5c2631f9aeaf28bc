//! `vmcs-gen state decode|check`: KVM_GET/SET_NESTED_STATE blobs (VMX format), validated with the
//! runtime's `vmcs::nested_state` and shown with the schema's member and field names.

use std::path::Path;

use clap::{Args, Subcommand};
use serde_json::{Value, json};
use vmcs::SoftwareVmcs;
use vmcs::nested_state::{self, NestedState, VcpuContext};
use vmcs_gen::Schema;

#[derive(Subcommand)]
pub enum StateCommand {
    /// Print the header and every vmcs12 (and shadow vmcs12) member by name.
    Decode {
        file: std::path::PathBuf,
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        vcpu: Vcpu,
    },
    /// Exit 0 if KVM would accept the blob, 1 with the reason otherwise.
    Check {
        file: std::path::PathBuf,
        #[command(flatten)]
        vcpu: Vcpu,
    },
}

/// The facts about the destination vCPU that some rules need.
#[derive(Args)]
pub struct Vcpu {
    /// The guest CPUID does not advertise VMX.
    #[arg(long)]
    no_vmx: bool,
    /// The vCPU is in SMM.
    #[arg(long)]
    smm: bool,
    /// Enlightened VMCS is enabled on the vCPU.
    #[arg(long)]
    evmcs: bool,
    /// The guest MAXPHYADDR.
    #[arg(long, default_value_t = 52)]
    maxphyaddr: u8,
}

impl Vcpu {
    fn context(&self) -> VcpuContext {
        VcpuContext { has_vmx: !self.no_vmx, in_smm: self.smm, evmcs_enabled: self.evmcs, maxphyaddr: self.maxphyaddr }
    }
}

pub fn run(schema: &Schema, cmd: &StateCommand) -> Result<(), String> {
    let (file, vcpu) = match cmd {
        StateCommand::Decode { file, vcpu, .. } | StateCommand::Check { file, vcpu } => (file, vcpu),
    };
    let blob = read(file)?;
    let state = nested_state::check(&blob, &vcpu.context())
        .map_err(|e| format!("rejected: {e} (KVM_SET_NESTED_STATE would fail with {})", e.errno()))?;
    match cmd {
        StateCommand::Check { .. } => {
            println!("accepted: {} bytes, flags {:#x}", state.size(), state.flags());
        }
        StateCommand::Decode { json: true, .. } => {
            println!("{}", serde_json::to_string_pretty(&decode_json(schema, &state)).unwrap_or_default());
        }
        StateCommand::Decode { .. } => print!("{}", decode_text(schema, &state)),
    }
    Ok(())
}

fn read(file: &Path) -> Result<Vec<u8>, String> {
    std::fs::read(file).map_err(|e| format!("error: cannot read {}: {e}", file.display()))
}

/// Every non-reserved member of the vmcs12 layout: (member, field name, encodings, value).
fn members(schema: &Schema, v: &vmcs::Vmcs12) -> Vec<(String, String, String, u64)> {
    let layout = schema.layout("vmcs12").expect("the schema has vmcs12");
    let bytes = v.as_bytes();
    let mut ms: Vec<_> = layout.members.iter().filter(|m| m.ty != vmcs_gen::model::MemberType::Reserved).collect();
    ms.sort_by_key(|m| m.offset);
    ms.iter()
        .map(|m| {
            let raw = &bytes[m.offset as usize..(m.offset + m.size) as usize];
            let value = raw.iter().rev().fold(0u64, |acc, b| acc << 8 | *b as u64);
            let (field, enc) = match m.field {
                Some(f) => (schema.fields[f].name.clone(), format!("{:#06x}", schema.fields[f].encoding.raw())),
                None => ("-".to_string(), "-".to_string()),
            };
            (m.name.clone(), field, enc, value)
        })
        .collect()
}

fn flag_names(flags: u16) -> String {
    let names: Vec<&str> = [
        (nested_state::KVM_STATE_NESTED_GUEST_MODE, "GUEST_MODE"),
        (nested_state::KVM_STATE_NESTED_RUN_PENDING, "RUN_PENDING"),
        (nested_state::KVM_STATE_NESTED_EVMCS, "EVMCS"),
        (nested_state::KVM_STATE_NESTED_MTF_PENDING, "MTF_PENDING"),
    ]
    .iter()
    .filter(|(bit, _)| flags & bit != 0)
    .map(|(_, n)| *n)
    .collect();
    if names.is_empty() { "none".to_string() } else { names.join("|") }
}

fn decode_text(schema: &Schema, s: &NestedState<'_>) -> String {
    let h = s.vmx_header();
    let mut out = format!(
        "kvm_nested_state: flags {:#x} ({}), format {} (VMX), size {}\n\
         vmx: vmxon_pa {:#x}, vmcs12_pa {:#x}, smm.flags {:#x}, flags {:#x}, preemption_timer_deadline {:#x}\n",
        s.flags(),
        flag_names(s.flags()),
        s.format(),
        s.size(),
        h.vmxon_pa,
        h.vmcs12_pa,
        h.smm_flags,
        h.vmx_flags,
        h.preemption_timer_deadline
    );
    for (title, v) in [("vmcs12", s.vmcs12()), ("shadow vmcs12", s.shadow_vmcs12())] {
        match v {
            None => out.push_str(&format!("{title}: absent\n")),
            Some(v) => {
                out.push_str(&format!("{title}:\n"));
                for (m, f, e, value) in members(schema, &v) {
                    out.push_str(&format!("  {m:<30} {f:<30} {e:<7} {value:#x}\n"));
                }
            }
        }
    }
    out.push_str("accepted by every KVM_SET_NESTED_STATE rule that needs no live vCPU (Linux 7.2.8)\n");
    out
}

fn decode_json(schema: &Schema, s: &NestedState<'_>) -> Value {
    let h = s.vmx_header();
    let area = |v: Option<vmcs::Vmcs12>| match v {
        None => Value::Null,
        Some(v) => Value::Array(
            members(schema, &v)
                .into_iter()
                .map(|(m, f, e, value)| json!({"member": m, "field": f, "encoding": e, "value": format!("{value:#x}")}))
                .collect(),
        ),
    };
    json!({
        "flags": s.flags(),
        "format": s.format(),
        "size": s.size(),
        "vmx": {
            "vmxon_pa": format!("{:#x}", h.vmxon_pa),
            "vmcs12_pa": format!("{:#x}", h.vmcs12_pa),
            "smm_flags": h.smm_flags,
            "flags": h.vmx_flags,
            "preemption_timer_deadline": h.preemption_timer_deadline,
        },
        "vmcs12": area(s.vmcs12()),
        "shadow_vmcs12": area(s.shadow_vmcs12()),
    })
}
