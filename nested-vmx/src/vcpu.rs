//! What the emulation needs from L0: L1's memory, the L1 state only L0 holds (general registers,
//! CR2, the emulated IA32_FEATURE_CONTROL, MAXPHYADDR), and vmcs01, where the processor saved the
//! rest of L1's state at the VM exit (control registers, segments, RIP, RFLAGS, exit information).
//! L0 passes vmcs01 as any [`VmcsRead`] + [`VmcsWrite`] backend: the hardware VMCS, or a
//! [`vmcs::soft::SoftVmcs`] in tests.

use core::cell::Cell;

use vmcs::fields as F;
use vmcs::{VmcsError, VmcsRead, VmcsWrite};

/// An access to L1 guest-physical memory that L0 cannot serve (outside L1's memory).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemoryError {
    /// The guest-physical address L0 cannot reach.
    pub gpa: u64,
}

/// L1's guest-physical memory.
pub trait GuestMemory {
    /// Read `buf.len()` bytes at `gpa`.
    fn read(&self, gpa: u64, buf: &mut [u8]) -> Result<(), MemoryError>;
    /// Write `data` at `gpa`.
    fn write(&mut self, gpa: u64, data: &[u8]) -> Result<(), MemoryError>;

    /// The little-endian quadword at `gpa`.
    fn read_u64(&self, gpa: u64) -> Result<u64, MemoryError> {
        let mut b = [0; 8];
        self.read(gpa, &mut b)?;
        Ok(u64::from_le_bytes(b))
    }
    /// The little-endian doubleword at `gpa`.
    fn read_u32(&self, gpa: u64) -> Result<u32, MemoryError> {
        let mut b = [0; 4];
        self.read(gpa, &mut b)?;
        Ok(u32::from_le_bytes(b))
    }
}

/// L1's memory as the generated VM-entry checks read it (`vmcs::entry`: the VMCS link pointer,
/// PDPTEs, MSR-load entries); a failed read sees all ones, as on the machine.
pub(crate) struct CheckedMemory<'a, M: ?Sized>(pub &'a M);

impl<M: GuestMemory + ?Sized> vmcs::entry::GuestMemory for CheckedMemory<'_, M> {
    fn read(&self, address: u64, bytes: u32) -> Option<u64> {
        let mut b = [0u8; 8];
        self.0.read(address, b.get_mut(..bytes.min(8) as usize)?).ok()?;
        Some(u64::from_le_bytes(b))
    }
}

/// L1 state that lives in L0, not in vmcs01.
pub trait L1Cpu {
    /// General register `n` in the SDM's numbering (0 RAX, 1 RCX, 2 RDX, 3 RBX, 5 RBP, 6 RSI,
    /// 7 RDI, 8..15 R8..R15). RSP (4) is never asked: vmcs01 holds it.
    fn gpr(&self, n: u8) -> u64;
    /// Set general register `n` (never 4, as for [`L1Cpu::gpr`]).
    fn set_gpr(&mut self, n: u8, value: u64);
    /// CR2 for L1's next entry: VMX does not switch CR2, so a #PF injected into L1 needs L0 to load it.
    fn set_cr2(&mut self, value: u64);
    /// L1's IA32_FEATURE_CONTROL as L0 emulates it (VMXON needs bits 0 and 2).
    fn feature_control(&self) -> u64;
    /// L1's MAXPHYADDR (CPUID.80000008H:EAX bits 7:0 as L0 reports it).
    fn maxphyaddr(&self) -> u8;
}

/// The MSRs of the vCPU as L0 keeps them, for vmcs12's MSR lists ([`crate::msr_list`]): an MSR
/// a VMCS switches (EFER, PAT, SYSENTER_*, DEBUGCTL, ...) lives in the VMCS of the context
/// (vmcs02 for L2, vmcs01 for L1), the others on the machine or in L0's emulation.
pub trait Msrs {
    /// WRMSR of `index` as the guest of `vmcs` would execute it at CPL 0: false where it would
    /// raise #GP (nothing changed then).
    fn wrmsr<V: VmcsRead + VmcsWrite + ?Sized>(&mut self, vmcs: &mut V, index: u32, value: u64) -> bool;
    /// RDMSR of `index` as the guest of `vmcs` would execute it: None where it would raise #GP.
    fn rdmsr<V: VmcsRead + ?Sized>(&mut self, vmcs: &V, index: u32) -> Option<u64>;
}

/// An exception for L1 (injected through vmcs01's VM-entry interruption-information field).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fault {
    /// The exception vector.
    pub vector: u8,
    /// The error code it delivers, if any.
    pub error_code: Option<u32>,
    /// The faulting linear address of a #PF (L0 loads CR2 with it).
    pub cr2: Option<u64>,
}

/// #UD's vector.
pub const UD: u8 = 6;
/// #SS's vector.
pub const SS: u8 = 12;
/// #GP's vector.
pub const GP: u8 = 13;
/// #PF's vector.
pub const PF: u8 = 14;

impl Fault {
    /// #UD.
    pub const fn ud() -> Self {
        Fault { vector: UD, error_code: None, cr2: None }
    }
    /// #GP(0).
    pub const fn gp0() -> Self {
        Fault { vector: GP, error_code: Some(0), cr2: None }
    }
    /// #SS(0).
    pub const fn ss0() -> Self {
        Fault { vector: SS, error_code: Some(0), cr2: None }
    }
    /// #PF with `error_code` at linear `address`.
    pub const fn pf(error_code: u32, address: u64) -> Self {
        Fault { vector: PF, error_code: Some(error_code), cr2: Some(address) }
    }
}

/// Why an emulated instruction stopped before completing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stop {
    /// The instruction raises an exception in L1: no flag changes, RIP stays.
    Fault(Fault),
    /// L1 memory L0 cannot serve.
    Memory(MemoryError),
    /// vmcs01 refused an access: an L0 bug (vmcs01 always has the fields read here).
    Vmcs01(VmcsError),
}

impl From<Fault> for Stop {
    fn from(f: Fault) -> Self {
        Stop::Fault(f)
    }
}
impl From<MemoryError> for Stop {
    fn from(e: MemoryError) -> Self {
        Stop::Memory(e)
    }
}
impl From<VmcsError> for Stop {
    fn from(e: VmcsError) -> Self {
        Stop::Vmcs01(e)
    }
}

/// One segment register as vmcs01 saved it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Segment {
    /// The base address.
    pub base: u64,
    /// The limit, in bytes.
    pub limit: u32,
    /// The access rights in the VMCS's format (bit 16: unusable).
    pub ar: u32,
}

impl Segment {
    /// The segment is unusable (AR bit 16).
    pub const fn unusable(self) -> bool {
        self.ar >> 16 & 1 == 1
    }
    /// The type field (AR bits 3:0).
    pub const fn kind(self) -> u32 {
        self.ar & 0xf
    }
    /// The descriptor privilege level (AR bits 6:5).
    pub const fn dpl(self) -> u8 {
        (self.ar >> 5 & 3) as u8
    }
}

/// Segment registers in the SDM's instruction-information numbering.
const SEGMENTS: [(u64, u64, u64); 6] = [
    (F::GUEST_ES_BASE.raw(), F::GUEST_ES_LIMIT.raw(), F::GUEST_ES_AR_BYTES.raw()),
    (F::GUEST_CS_BASE.raw(), F::GUEST_CS_LIMIT.raw(), F::GUEST_CS_AR_BYTES.raw()),
    (F::GUEST_SS_BASE.raw(), F::GUEST_SS_LIMIT.raw(), F::GUEST_SS_AR_BYTES.raw()),
    (F::GUEST_DS_BASE.raw(), F::GUEST_DS_LIMIT.raw(), F::GUEST_DS_AR_BYTES.raw()),
    (F::GUEST_FS_BASE.raw(), F::GUEST_FS_LIMIT.raw(), F::GUEST_FS_AR_BYTES.raw()),
    (F::GUEST_GS_BASE.raw(), F::GUEST_GS_LIMIT.raw(), F::GUEST_GS_AR_BYTES.raw()),
];
/// SS in the instruction-information numbering (a fault through it is #SS).
pub(crate) const SEG_SS: u8 = 2;
/// FS: its base applies in 64-bit mode.
pub(crate) const SEG_FS: u8 = 4;
/// GS: its base applies in 64-bit mode.
pub(crate) const SEG_GS: u8 = 5;

/// CR0.PE: protected mode.
pub const CR0_PE: u64 = 1;
/// CR0.WP: supervisor writes honour read-only pages.
pub const CR0_WP: u64 = 1 << 16;
/// CR0.PG: paging.
pub const CR0_PG: u64 = 1 << 31;
/// CR4.PSE: 4 MiB pages in 32-bit paging.
pub const CR4_PSE: u64 = 1 << 4;
/// CR4.PAE: PAE paging (with CR0.PG, outside IA-32e mode).
pub const CR4_PAE: u64 = 1 << 5;
/// CR4.LA57: 5-level paging.
pub const CR4_LA57: u64 = 1 << 12;
/// CR4.VMXE: VMX enabled (VMXON requires it).
pub const CR4_VMXE: u64 = 1 << 13;
/// CR4.SMAP: supervisor accesses to user pages fault unless RFLAGS.AC.
pub const CR4_SMAP: u64 = 1 << 21;
/// RFLAGS.AC.
pub const RFLAGS_AC: u64 = 1 << 18;
/// The VM-entry control "IA-32e mode guest": the processor stores L1's EFER.LMA there on VM exit.
const ENTRY_IA32E: u64 = 1 << vmcs::caps::Cap::EntryIa32eModeGuest.bit();

/// A guest's state in its VMCS (L1's in vmcs01, L2's in vmcs02), read on demand: every read is a
/// VMREAD on hardware, so the mode, read several times per instruction, is read once, and only
/// as far as it is asked for.
pub struct Guest<'a, V: VmcsRead + VmcsWrite + ?Sized> {
    /// The guest's VMCS.
    pub vmcs: &'a mut V,
    /// EFER.LMA, once read.
    lma: Cell<Option<bool>>,
    /// 64-bit mode, once read.
    mode64: Cell<Option<bool>>,
}

impl<'a, V: VmcsRead + VmcsWrite + ?Sized> Guest<'a, V> {
    /// The guest whose state `vmcs` holds.
    pub fn new(vmcs: &'a mut V) -> Self {
        Self::with_long_mode(vmcs, None)
    }

    /// As [`Guest::new`], with EFER.LMA known already (`Some`: L0 keeps it in its vCPU state, as
    /// KVM keeps EFER), so that no VMREAD asks the VMCS.
    pub fn with_long_mode(vmcs: &'a mut V, lma: Option<bool>) -> Self {
        Guest { vmcs, lma: Cell::new(lma), mode64: Cell::new(None) }
    }

    /// EFER.LMA if it is known (given, or read since).
    pub fn known_long_mode(&self) -> Option<bool> {
        self.lma.get()
    }

    /// A field of the guest's VMCS.
    pub fn read(&self, encoding: u64) -> Result<u64, VmcsError> {
        self.vmcs.read_raw(encoding)
    }

    fn once(cell: &Cell<Option<bool>>, read: impl FnOnce() -> Result<bool, VmcsError>) -> Result<bool, VmcsError> {
        if let Some(v) = cell.get() {
            return Ok(v);
        }
        let v = read()?;
        cell.set(Some(v));
        Ok(v)
    }

    /// CPL: the DPL of SS (SDM: "CPL is ... SS.DPL" for VM-entry purposes).
    pub fn cpl(&self) -> Result<u8, VmcsError> {
        Ok((self.read(F::GUEST_SS_AR_BYTES.raw())? >> 5 & 3) as u8)
    }

    /// EFER.LMA, which the processor saves in the "IA-32e mode guest" entry control on exit.
    pub fn long_mode(&self) -> Result<bool, VmcsError> {
        Self::once(&self.lma, || Ok(self.read(F::VM_ENTRY_CONTROLS.raw())? & ENTRY_IA32E != 0))
    }

    /// 64-bit mode: EFER.LMA and CS.L.
    pub fn mode64(&self) -> Result<bool, VmcsError> {
        Self::once(&self.mode64, || Ok(self.long_mode()? && self.read(F::GUEST_CS_AR_BYTES.raw())? >> 13 & 1 == 1))
    }

    /// CR0 as L1 sees it: the read shadow supplies the bits L0 owns (the guest/host mask).
    pub fn cr0(&self) -> Result<u64, VmcsError> {
        self.visible(F::GUEST_CR0.raw(), F::CR0_GUEST_HOST_MASK.raw(), F::CR0_READ_SHADOW.raw())
    }

    /// CR4 as L1 sees it.
    pub fn cr4(&self) -> Result<u64, VmcsError> {
        self.visible(F::GUEST_CR4.raw(), F::CR4_GUEST_HOST_MASK.raw(), F::CR4_READ_SHADOW.raw())
    }

    fn visible(&self, value: u64, mask: u64, shadow: u64) -> Result<u64, VmcsError> {
        let mask = self.read(mask)?;
        Ok(self.read(value)? & !mask | self.read(shadow)? & mask)
    }

    /// Segment `n` (0 ES, 1 CS, 2 SS, 3 DS, 4 FS, 5 GS); None for the reserved numbers 6 and 7.
    pub fn segment(&self, n: u8) -> Result<Option<Segment>, VmcsError> {
        let Some(&(base, limit, ar)) = SEGMENTS.get(n as usize) else { return Ok(None) };
        Ok(Some(Segment { base: self.read(base)?, limit: self.read(limit)? as u32, ar: self.read(ar)? as u32 }))
    }

    /// Inject a hardware exception into L1 at its next entry.
    pub fn inject(&mut self, fault: Fault) -> Result<(), VmcsError> {
        // Valid (31), type 3 = hardware exception (10:8), deliver error code (11), vector (7:0).
        let mut info = 1u64 << 31 | 3 << 8 | fault.vector as u64;
        if let Some(ec) = fault.error_code {
            info |= 1 << 11;
            self.vmcs.write_raw(F::VM_ENTRY_EXCEPTION_ERROR_CODE.raw(), ec as u64)?;
        }
        self.vmcs.write_raw(F::VM_ENTRY_INTR_INFO_FIELD.raw(), info)
    }

    /// Retire the instruction: RIP past it (wrapping at 32 bits outside 64-bit mode), and no
    /// STI/MOV-SS blocking after it, as a completed instruction leaves it.
    pub fn skip_instruction(&mut self) -> Result<(), VmcsError> {
        let len = self.read(F::VM_EXIT_INSTRUCTION_LEN.raw())?;
        let mut rip = self.read(F::GUEST_RIP.raw())?.wrapping_add(len);
        if !self.mode64()? {
            rip &= 0xffff_ffff;
        }
        self.vmcs.write_raw(F::GUEST_RIP.raw(), rip)?;
        let blocking = self.read(F::GUEST_INTERRUPTIBILITY_INFO.raw())?;
        if blocking & 3 != 0 {
            self.vmcs.write_raw(F::GUEST_INTERRUPTIBILITY_INFO.raw(), blocking & !3)?;
        }
        Ok(())
    }

    /// Set the arithmetic flags of a VMX instruction result: CF and ZF as given, PF, AF, SF and
    /// OF cleared (VMsucceed: neither; VMfailInvalid: CF; VMfailValid: ZF).
    pub fn set_result_flags(&mut self, cf: bool, zf: bool) -> Result<(), VmcsError> {
        const ARITH: u64 = 1 | 1 << 2 | 1 << 4 | 1 << 6 | 1 << 7 | 1 << 11;
        let rflags = self.read(F::GUEST_RFLAGS.raw())? & !ARITH | cf as u64 | (zf as u64) << 6;
        self.vmcs.write_raw(F::GUEST_RFLAGS.raw(), rflags)
    }
}
