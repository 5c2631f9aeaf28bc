//! The nested VM entry and exit steps as KVM orders them, over the generated sets.

use crate::access::{VmcsRead, VmcsWrite};
use crate::caps::Capabilities;
use crate::vmcs12::Vmcs12;

use super::{
    NestedHooks, Tracked, entry_failure_info, exit_info, prepare, prepare_early, prepare_late, prepare_pages,
    prepare_rare, sync, sync_rare,
};

/// Nested VM entry: vmcs02 from vmcs12, after VMLAUNCH/VMRESUME's checks passed (or after a state
/// restore), with vmcs02 current. KVM's order: prepare_vmcs02_early, nested_get_vmcs12_pages,
/// prepare_vmcs02 (rare state first when vmcs12 changed; PDPTRs last, once CR0/CR4/EFER are set).
/// A hook's error stops the entry where it happened (KVM then fails the entry).
pub fn nested_entry<L, D, C, H>(
    vmcs12: &mut Tracked<L>,
    vmcs02: &mut D,
    caps: &C,
    hooks: &mut H,
) -> Result<(), H::Error>
where
    L: VmcsRead + VmcsWrite,
    D: VmcsRead + VmcsWrite + ?Sized,
    C: Capabilities + ?Sized,
    H: NestedHooks + ?Sized,
{
    prepare_early(&*vmcs12, vmcs02, caps, hooks)?;
    prepare_pages(&*vmcs12, vmcs02, caps, hooks)?;
    prepare_rare(vmcs12, vmcs02, caps, hooks)?;
    prepare(&*vmcs12, vmcs02, caps, hooks)?;
    prepare_late(vmcs12, vmcs02, caps, hooks)
}

/// How a nested VM exit to L1 came about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExitKind {
    /// L2 ran and exited, reflected or synthesized by L0: L2's state, the full exit information
    /// (entry-interruption valid bit cleared), launch state 1 (KVM prepare_vmcs12).
    Exit,
    /// The processor failed vmcs02's VM entry while loading guest state (exit reason 33/34 with
    /// bit 31): L2's state is synced, then only reason and qualification change.
    FailedEntry,
    /// L0 failed the entry itself (a check of vmcs12, an MSR-load entry) before vmcs02 ran: only
    /// reason and qualification change (KVM's vmentry_fail_vmexit); the entry-interruption
    /// information and the launch state stay.
    RefusedEntry,
}

/// A vmcs12 layout with a launch state (KVM sets it to 1 on a nested VM exit after a successful entry).
pub trait Launched {
    /// Mark the vmcs12 launched (VMRESUME, not VMLAUNCH, enters it next).
    fn set_launched(&mut self);
}

impl Launched for Vmcs12 {
    fn set_launched(&mut self) {
        self.launch_state = 1;
    }
}

/// Nested VM exit, first half, with vmcs02 current: vmcs12 gets L2's state and the exit
/// information as `kind` says. Then make vmcs01 current and run [`super::load_host_state`], which
/// loads L1's state from vmcs12's host fields. The rare guest state stays in vmcs02 until
/// [`sync_rare`] (deferred, as KVM does).
pub fn exit_to_vmcs12<L, S, C, H>(
    kind: ExitKind,
    vmcs02: &S,
    vmcs12: &mut Tracked<L>,
    caps: &C,
    hooks: &mut H,
) -> Result<(), H::Error>
where
    L: VmcsRead + VmcsWrite + Launched,
    S: VmcsRead + ?Sized,
    C: Capabilities + ?Sized,
    H: NestedHooks + ?Sized,
{
    match kind {
        ExitKind::Exit => {
            sync(vmcs02, vmcs12, caps, hooks)?;
            exit_info(vmcs02, vmcs12, caps, hooks)?;
            vmcs12.inner_mut().set_launched();
        }
        ExitKind::FailedEntry => {
            sync(vmcs02, vmcs12, caps, hooks)?;
            entry_failure_info(vmcs02, vmcs12, caps, hooks)?;
        }
        ExitKind::RefusedEntry => entry_failure_info(vmcs02, vmcs12, caps, hooks)?,
    }
    Ok(())
}

/// Make vmcs12 current before it leaves L0 (VMCLEAR, VMPTRLD of another VMCS, KVM_GET_NESTED_STATE),
/// with vmcs02 current. While L2 runs (`in_l2`), KVM's vmx_get_nested_state syncs L2's state and
/// the rare fields; otherwise only the rare fields an exit left pending. With VMCS shadowing, run
/// [`super::shadow_read_write_back`] first. Restoring is [`Tracked::new`] on the saved vmcs12 and
/// [`nested_entry`] with `run_pending` as the saved flags say (KVM: a normal entry, vmcs12 dirty).
pub fn sync_for_save<L, S, C, H>(
    in_l2: bool,
    vmcs02: &S,
    vmcs12: &mut Tracked<L>,
    caps: &C,
    hooks: &mut H,
) -> Result<(), H::Error>
where
    L: VmcsRead + VmcsWrite,
    S: VmcsRead + ?Sized,
    C: Capabilities + ?Sized,
    H: NestedHooks + ?Sized,
{
    if in_l2 {
        sync(vmcs02, vmcs12, caps, hooks)?;
    }
    sync_rare(vmcs02, vmcs12, caps)?;
    Ok(())
}
