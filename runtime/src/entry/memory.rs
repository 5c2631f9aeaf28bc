//! What the checks read besides the VMCS ([`GuestMemory`]), and the helpers the generated
//! checks compute with.

/// What the checks read beyond the VMCS: physical memory (the guest-physical memory of L1, for a
/// nested hypervisor), and whether a WRMSR would fault (the last check on each VM-entry MSR-load
/// entry).
pub trait GuestMemory {
    /// `bytes` (4 or 8) little-endian bytes at `address`, or None where nothing can be read (the
    /// checks then see all ones, as a read of non-existent memory returns on x86).
    fn read(&self, address: u64, bytes: u32) -> Option<u64>;

    /// Would WRMSR of `value` to MSR `index` fault (#GP) at CPL 0 (SDM 26.4: such an entry fails
    /// VM entry)? The answer is the environment's: the processor's MSRs, or for a nested
    /// hypervisor its emulation of L1's. The default says no: the VMM that then writes the MSRs
    /// finds out itself.
    fn wrmsr_faults(&self, index: u32, value: u64) -> bool {
        let _ = (index, value);
        false
    }
}

/// No memory: every read sees all ones (for checks that must not touch memory, e.g. a restore).
#[derive(Clone, Copy, Debug, Default)]
pub struct NoMemory;

impl GuestMemory for NoMemory {
    fn read(&self, _: u64, _: u32) -> Option<u64> {
        None
    }
}

/// `bytes` of memory at `address`, all ones where unreadable.
#[inline(always)]
pub(crate) fn read_memory<M: GuestMemory + ?Sized>(memory: &M, address: u64, bytes: u32) -> u64 {
    let mask = if bytes >= 8 { u64::MAX } else { (1u64 << (8 * bytes)) - 1 };
    memory.read(address, bytes).unwrap_or(u64::MAX) & mask
}

/// `value << amount` within `width` bits; 0 for an amount of `width` or more.
#[inline(always)]
#[allow(dead_code)] // for rules that shift left by a variable amount
pub(crate) fn shl(value: u64, amount: u64, width: u32) -> u64 {
    let mask = if width >= 64 { u64::MAX } else { (1u64 << width) - 1 };
    if amount >= width as u64 { 0 } else { (value << amount) & mask }
}

/// `value >> amount`; 0 for an amount of `width` or more.
#[inline(always)]
pub(crate) fn shr(value: u64, amount: u64, width: u32) -> u64 {
    if amount >= width as u64 { 0 } else { value >> amount }
}
