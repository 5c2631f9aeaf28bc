//! `KVM_GET/SET_NESTED_STATE` blobs for VMX over the generated [`Vmcs12`]: KVM's restore rules
//! ([`check`]), a typed view ([`NestedState`]) and a builder that emits blobs.
//!
//! The rules, the byte-level view and the builder live in the dependency-free
//! [`vmcs_nested_state`] crate (shared with the `vmcs-gen state` command, which must build even
//! when the schema has errors); this module gives them [`VMCS12_SHAPE`], generated from the
//! schema's vmcs12, and typed vmcs12 copies. See that crate for what is and is not checked.
//!
//! [`check_restore`] also applies what `nested_vmx_check_restored_vmcs12` checks on a vmcs12 in
//! guest mode: the VM-entry checks KVM makes in software ([`crate::entry::Selection::KVM_RESTORE`]),
//! each refusal naming the rule.
//!
//! Nothing in this module panics or reads out of bounds, whatever the input.
//!
//! ```
//! use vmcs::nested_state::{self, NestedStateBuilder, NestedStateError, VMCS12_REVISION, VcpuContext};
//! use vmcs::{Vmcs12, VmcsRead, VmcsWrite, fields};
//!
//! // L1 in VMX operation with a current vmcs12 (not running L2): KVM_GET_NESTED_STATE's blob.
//! let mut vmcs12 = Vmcs12::zeroed();
//! vmcs12.hdr = VMCS12_REVISION;
//! vmcs12.vmcs_link_pointer = u64::MAX; // no shadow VMCS
//! vmcs12.write(fields::GUEST_RIP, 0x1000).unwrap();
//! let builder = NestedStateBuilder::new().vmxon_pa(0x1000).vmcs12_pa(0x2000).vmcs12(Some(vmcs12));
//! let mut blob = [0u8; 128 + 4096];
//! let len = builder.emit(&mut blob).unwrap(); // the header and one 4 KiB vmcs12 area
//!
//! // KVM_SET_NESTED_STATE on the destination: KVM's rules, then the typed vmcs12 back.
//! let state = nested_state::check(&blob[..len], &VcpuContext::default()).unwrap();
//! assert_eq!(state.vmcs12().unwrap().read(fields::GUEST_RIP), Ok(0x1000));
//! // A VMXON region that is not page-aligned: KVM refuses with -EINVAL.
//! let bad = NestedStateBuilder::new().vmxon_pa(0x1001).vmcs12_pa(0x2000).vmcs12(Some(vmcs12));
//! let len = bad.emit(&mut blob).unwrap();
//! let refusal = nested_state::check(&blob[..len], &VcpuContext::default()).unwrap_err();
//! assert_eq!(refusal.errno(), -22);
//! ```

pub use vmcs_nested_state::{
    CPU_BASED_ACTIVATE_SECONDARY_CONTROLS, EmitError, HEADER_SIZE, INVALID_GPA, KVM_STATE_NESTED_EVMCS,
    KVM_STATE_NESTED_FORMAT_SVM, KVM_STATE_NESTED_FORMAT_VMX, KVM_STATE_NESTED_GIF_SET, KVM_STATE_NESTED_GUEST_MODE,
    KVM_STATE_NESTED_KNOWN_FLAGS, KVM_STATE_NESTED_MTF_PENDING, KVM_STATE_NESTED_RUN_PENDING,
    KVM_STATE_NESTED_SMM_GUEST_MODE, KVM_STATE_NESTED_SMM_VMXON, KVM_STATE_NESTED_VMX_VMCS_SIZE,
    KVM_STATE_VMX_PREEMPTION_TIMER_DEADLINE, NestedStateError, SECONDARY_EXEC_SHADOW_VMCS, SHADOW_VMCS12_OFFSET,
    SIZE_WITH_SHADOW, SIZE_WITH_VMCS12, VMCS_HDR_REVISION_MASK, VMCS_HDR_SHADOW_VMCS, VMCS12_OFFSET, VcpuContext,
    Vmcs12Shape, VmxHeader,
};

use crate::caps::VmxCaps;
use crate::entry::{self, EntryError, Facts, Failure, NoMemory, ReadError, Selection};
use crate::layouts::Layout;
use crate::vmcs12::Vmcs12;

// Generated from the schema's vmcs12 (with offset proofs against the struct).
pub use crate::generated::nested_state::VMCS12_SHAPE;

/// `sizeof(struct vmcs12)`: the meaningful bytes of each area.
pub const VMCS12_STRUCT_SIZE: usize = VMCS12_SHAPE.struct_size;
/// `VMCS12_REVISION`.
pub const VMCS12_REVISION: u32 = VMCS12_SHAPE.revision;
/// Rule 15's threshold: below it the state is "VMXON without a VMCS" (128 + 998 = 1126, not 4224).
pub const MIN_SIZE_WITH_VMCS12: usize = VMCS12_SHAPE.min_size_with_vmcs12();
/// Rule 20's threshold for a shadow vmcs12 (128 + 4096 + 998 = 5222).
pub const MIN_SIZE_WITH_SHADOW: usize = VMCS12_SHAPE.min_size_with_shadow();

/// Builds blobs; areas are typed vmcs12 copies (`NestedStateBuilder<Vmcs12>`) or byte slices
/// (`NestedState::builder` re-emits a checked blob).
pub type NestedStateBuilder<A = Vmcs12> = vmcs_nested_state::NestedStateBuilder<A>;

impl AsRef<[u8]> for Vmcs12 {
    fn as_ref(&self) -> &[u8] {
        self.as_bytes()
    }
}

/// `nested_cpu_has_shadow_vmcs(vmcs12) && vmcs12->vmcs_link_pointer != INVALID_GPA`.
pub fn uses_shadow_vmcs(vmcs12: &Vmcs12) -> bool {
    VMCS12_SHAPE.uses_shadow_vmcs(vmcs12.as_bytes())
}

/// Applies the `KVM_SET_NESTED_STATE` rules (see [`NestedStateError`] for each) in KVM's order and
/// returns the view over the blob's first `size` bytes. Bytes past `size` are ignored.
pub fn check<'a>(blob: &'a [u8], vcpu: &VcpuContext) -> Result<NestedState<'a>, NestedStateError> {
    vmcs_nested_state::check(blob, VMCS12_SHAPE, vcpu).map(|raw| NestedState { raw })
}

/// Why [`check_restore`] refuses a blob.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RestoreError {
    /// A rule of the blob ([`check`]).
    Blob(NestedStateError),
    /// Rule 22, `nested_vmx_check_restored_vmcs12`: the vmcs12 (in guest mode) fails a VM-entry
    /// check KVM applies (its controls, host-state or guest-state checks), named.
    Vmcs12(Failure),
    /// The vmcs12 layout lacks a field the checks need for these capabilities.
    Read(ReadError),
}

impl RestoreError {
    /// The errno KVM returns (negative).
    pub fn errno(&self) -> i32 {
        match self {
            RestoreError::Blob(e) => e.errno(),
            RestoreError::Vmcs12(_) | RestoreError::Read(_) => -22,
        }
    }
}

impl core::fmt::Display for RestoreError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            RestoreError::Blob(e) => e.fmt(f),
            RestoreError::Vmcs12(x) => write!(f, "vmcs12 fails {x}"),
            RestoreError::Read(e) => write!(f, "vmcs12 cannot provide field {:#06x} the checks need", e.encoding),
        }
    }
}

/// [`check`], then, for a blob in guest mode, the VM-entry checks KVM 7.2.8 applies to the restored
/// vmcs12 (`nested_vmx_check_restored_vmcs12`), judged with `caps` (the IA32_VMX_* MSRs the vCPU
/// gives L1) and `facts` (L1's MAXPHYADDR, as in `vcpu`; the EFER, DEBUGCTL and PERF_GLOBAL_CTRL
/// bits its CPUID reserves). The first failing rule is the refusal.
pub fn check_restore<'a>(
    blob: &'a [u8],
    vcpu: &VcpuContext,
    caps: &VmxCaps,
    facts: &Facts,
) -> Result<NestedState<'a>, RestoreError> {
    let state = check(blob, vcpu).map_err(RestoreError::Blob)?;
    if state.flags() & KVM_STATE_NESTED_GUEST_MODE == 0 {
        // KVM returns before looking at the contents (rule 19 is the last one outside L2).
        return Ok(state);
    }
    let Some(vmcs12) = state.vmcs12() else { return Ok(state) };
    match entry::check_only(&vmcs12, caps, facts, &NoMemory, Selection::KVM_RESTORE) {
        Ok(()) => Ok(state),
        Err(EntryError::Failed(f)) => Err(RestoreError::Vmcs12(f)),
        Err(EntryError::Read(e)) => Err(RestoreError::Read(e)),
    }
}

/// A blob that [`check`] accepted, cut to its declared size; dereferences to the byte-level view
/// (header fields, areas as bytes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NestedState<'a> {
    raw: vmcs_nested_state::NestedState<'a>,
}

impl<'a> core::ops::Deref for NestedState<'a> {
    type Target = vmcs_nested_state::NestedState<'a>;
    fn deref(&self) -> &Self::Target {
        &self.raw
    }
}

impl<'a> NestedState<'a> {
    /// A copy of the vmcs12 when the declared size covers it (>= 1126). Present even when KVM
    /// would ignore it (not in VMX operation).
    pub fn vmcs12(&self) -> Option<Vmcs12> {
        self.raw.vmcs12().map(vmcs12_from)
    }

    /// A copy of the shadow vmcs12 when the declared size covers it (>= 5222).
    pub fn shadow_vmcs12(&self) -> Option<Vmcs12> {
        self.raw.shadow_vmcs12().map(vmcs12_from)
    }

    /// A builder that re-emits this blob byte for byte (see
    /// [`vmcs_nested_state::NestedStateBuilder::from_state`]).
    pub fn builder(&self) -> NestedStateBuilder<&'a [u8]> {
        NestedStateBuilder::from_state(&self.raw)
    }
}

/// A vmcs12 from up to `sizeof(struct vmcs12)` bytes, the rest zero.
fn vmcs12_from(bytes: &[u8]) -> Vmcs12 {
    let mut v = Vmcs12::zeroed();
    let dst = v.as_bytes_mut();
    let n = dst.len().min(bytes.len());
    dst[..n].copy_from_slice(&bytes[..n]);
    v
}

/// rust-vmm's `kvm_bindings::nested::KvmNestedStateBuffer` (what kvm-ioctls'
/// `VcpuFd::get_nested_state` fills), with the `kvm-bindings` feature (kvm-bindings needs `std`).
///
/// ```
/// use vmcs::nested_state::kvm_bindings_buffer::{check_buffer, to_buffer};
/// use vmcs::nested_state::{NestedStateBuilder, VMCS12_REVISION, VcpuContext};
/// use vmcs::{Vmcs12, VmcsRead, VmcsWrite, fields};
///
/// let mut vmcs12 = Vmcs12::zeroed();
/// vmcs12.hdr = VMCS12_REVISION;
/// vmcs12.vmcs_link_pointer = u64::MAX;
/// vmcs12.write(fields::GUEST_RIP, 0x1000).unwrap();
/// let builder = NestedStateBuilder::new().vmxon_pa(0x1000).vmcs12_pa(0x2000).vmcs12(Some(vmcs12));
/// // What KVM_SET_NESTED_STATE takes, from kvm-bindings, and KVM's verdict on it.
/// let buffer: kvm_bindings::nested::KvmNestedStateBuffer = to_buffer(&builder).unwrap();
/// let state = check_buffer(&buffer, &VcpuContext::default()).unwrap();
/// assert_eq!(state.vmcs12().unwrap().read(fields::GUEST_RIP), Ok(0x1000));
/// ```
#[cfg(feature = "kvm-bindings")]
#[cfg_attr(docsrs, doc(cfg(feature = "kvm-bindings")))]
pub mod kvm_bindings_buffer {
    use super::{EmitError, NestedState, NestedStateBuilder, NestedStateError, VcpuContext, check};
    use kvm_bindings::nested::KvmNestedStateBuffer;

    const LEN: usize = size_of::<KvmNestedStateBuffer>();

    /// The buffer's bytes: a 128-byte `struct kvm_nested_state` header and the data union.
    pub fn as_bytes(buffer: &KvmNestedStateBuffer) -> &[u8] {
        // SAFETY: KvmNestedStateBuffer is repr(C) plain data (integers, byte arrays and unions of
        // them) without padding (128 + 8192 bytes), so every byte is initialized.
        unsafe { core::slice::from_raw_parts(buffer as *const KvmNestedStateBuffer as *const u8, LEN) }
    }

    /// Validate a buffer as KVM_SET_NESTED_STATE would (see [`check`]).
    pub fn check_buffer<'a>(
        buffer: &'a KvmNestedStateBuffer,
        vcpu: &VcpuContext,
    ) -> Result<NestedState<'a>, NestedStateError> {
        check(as_bytes(buffer), vcpu)
    }

    /// Emit a blob into a fresh buffer.
    pub fn to_buffer<A: AsRef<[u8]>>(builder: &NestedStateBuilder<A>) -> Result<KvmNestedStateBuffer, EmitError> {
        let mut buffer = KvmNestedStateBuffer::empty();
        // SAFETY: as in `as_bytes`; every bit pattern of the buffer's fields is valid, so writing
        // bytes through this view cannot create an invalid value.
        let bytes =
            unsafe { core::slice::from_raw_parts_mut(&mut buffer as *mut KvmNestedStateBuffer as *mut u8, LEN) };
        builder.emit(bytes)?;
        Ok(buffer)
    }
}
