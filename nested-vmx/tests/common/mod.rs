//! An in-memory L1 for the host tests: 4 MiB of guest-physical memory with identity page tables,
//! vmcs01 as a SoftVmcs holding L1's state at a VMX-instruction exit, and the registers L0 keeps.
#![allow(dead_code)]

use vmcs::caps::{Cap, VmxCaps};
use vmcs::fields as F;
use vmcs::soft::SoftVmcs;
use vmcs::{VmcsRead, VmcsWrite};
use vmcs_nested_vmx::caps::{L1Caps, Offer};
use vmcs_nested_vmx::vcpu::{GuestMemory, L1Cpu, MemoryError};
use vmcs_nested_vmx::vmx::{NestedVmx, Outcome};

pub mod nested;

pub const MEM_SIZE: usize = 4 << 20;
/// 64-bit page tables: PML4 at 0x1000, PDPT at 0x2000, PD at 0x3000 (2 MiB pages for 0..4 MiB).
pub const CR3_64: u64 = 0x1000;
pub const RIP: u64 = 0x10_0000;
pub const INSN_LEN: u64 = 3;

pub struct Mem(pub Vec<u8>);

impl GuestMemory for Mem {
    fn read(&self, gpa: u64, buf: &mut [u8]) -> Result<(), MemoryError> {
        let s = self.0.get(gpa as usize..(gpa as usize).wrapping_add(buf.len())).ok_or(MemoryError { gpa })?;
        buf.copy_from_slice(s);
        Ok(())
    }
    fn write(&mut self, gpa: u64, data: &[u8]) -> Result<(), MemoryError> {
        let s = self.0.get_mut(gpa as usize..(gpa as usize).wrapping_add(data.len())).ok_or(MemoryError { gpa })?;
        s.copy_from_slice(data);
        Ok(())
    }
}

impl Mem {
    pub fn u64(&self, gpa: u64) -> u64 {
        self.read_u64(gpa).unwrap()
    }
    pub fn u32(&self, gpa: u64) -> u32 {
        self.read_u32(gpa).unwrap()
    }
    pub fn put64(&mut self, gpa: u64, v: u64) {
        self.write(gpa, &v.to_le_bytes()).unwrap()
    }
    pub fn put32(&mut self, gpa: u64, v: u32) {
        self.write(gpa, &v.to_le_bytes()).unwrap()
    }
}

#[derive(Default)]
pub struct Cpu {
    pub gprs: [u64; 16],
    pub cr2: Option<u64>,
    pub feature_control: u64,
    pub maxphyaddr: u8,
}

impl L1Cpu for Cpu {
    fn gpr(&self, n: u8) -> u64 {
        assert_ne!(n, 4, "RSP comes from vmcs01");
        self.gprs[n as usize]
    }
    fn set_gpr(&mut self, n: u8, value: u64) {
        assert_ne!(n, 4, "RSP goes to vmcs01");
        self.gprs[n as usize] = value;
    }
    fn set_cr2(&mut self, value: u64) {
        self.cr2 = Some(value);
    }
    fn feature_control(&self) -> u64 {
        self.feature_control
    }
    fn maxphyaddr(&self) -> u8 {
        self.maxphyaddr
    }
}

/// The capability MSRs of a Bochs model (testdata/bochs/vmx-caps.json).
pub fn bochs_caps(model: &str) -> VmxCaps {
    let text = include_str!("../../../testdata/bochs/vmx-caps.json");
    let json: serde_json::Value = serde_json::from_str(text).unwrap();
    let mut caps = VmxCaps::new();
    for (k, v) in json["models"][model].as_object().unwrap_or_else(|| panic!("no model {model}")) {
        let parse = |s: &str| u64::from_str_radix(s.trim_start_matches("0x"), 16).unwrap();
        caps.set(parse(k) as u32, parse(v.as_str().unwrap()));
    }
    caps
}

pub fn bochs_models() -> Vec<String> {
    let text = include_str!("../../../testdata/bochs/vmx-caps.json");
    let json: serde_json::Value = serde_json::from_str(text).unwrap();
    json["models"].as_object().unwrap().keys().cloned().collect()
}

/// What the tests' L0 offers: everything the crate supports.
pub use vmcs_nested_vmx::caps::SUPPORTED as FROM_HOST;
pub const EMULATED: &[Cap] = &[Cap::BasicTrueCtls, Cap::MiscVmwriteAnyField];

pub fn l1_caps(model: &str, emulated: &[Cap]) -> L1Caps {
    L1Caps::new(&bochs_caps(model), &Offer { from_host: FROM_HOST, emulated })
}

/// An L1 in 64-bit mode at CPL 0 that just exited on a VMX instruction.
pub struct World {
    pub nested: NestedVmx,
    pub vmcs01: SoftVmcs,
    pub cpu: Cpu,
    pub mem: Mem,
}

pub const AR_CODE64: u64 = 0xa09b;
pub const AR_DATA: u64 = 0xc093;
pub const AR_CODE32: u64 = 0xc09b;

impl World {
    pub fn new() -> Self {
        Self::with_caps(l1_caps("corei7_skylake_x", EMULATED))
    }

    pub fn with_caps(caps: L1Caps) -> Self {
        let host = bochs_caps("corei7_skylake_x");
        let mut w = World {
            nested: NestedVmx::new(caps),
            vmcs01: SoftVmcs::new(&host),
            cpu: Cpu { feature_control: 5, maxphyaddr: 39, ..Default::default() },
            mem: Mem(vec![0; MEM_SIZE]),
        };
        // Identity map 0..4 MiB with 2 MiB pages, writable, supervisor.
        w.mem.put64(0x1000, 0x2000 | 3);
        w.mem.put64(0x2000, 0x3000 | 3);
        w.mem.put64(0x3000, 0x83);
        w.mem.put64(0x3008, 0x20_0000 | 0x83);
        w.set(F::GUEST_CR0.raw(), 0x8000_0031 | 1 << 16);
        w.set(F::GUEST_CR3.raw(), CR3_64);
        w.set(F::GUEST_CR4.raw(), 0x2020);
        w.set(F::VM_ENTRY_CONTROLS.raw(), 1 << 9);
        w.set(F::GUEST_CS_AR_BYTES.raw(), AR_CODE64);
        for (base, limit, ar) in [
            (F::GUEST_ES_BASE, F::GUEST_ES_LIMIT, F::GUEST_ES_AR_BYTES),
            (F::GUEST_SS_BASE, F::GUEST_SS_LIMIT, F::GUEST_SS_AR_BYTES),
            (F::GUEST_DS_BASE, F::GUEST_DS_LIMIT, F::GUEST_DS_AR_BYTES),
            (F::GUEST_FS_BASE, F::GUEST_FS_LIMIT, F::GUEST_FS_AR_BYTES),
            (F::GUEST_GS_BASE, F::GUEST_GS_LIMIT, F::GUEST_GS_AR_BYTES),
        ] {
            w.set(base.raw(), 0);
            w.set(limit.raw(), 0xffff_ffff);
            w.set(ar.raw(), AR_DATA);
        }
        w.set(F::GUEST_CS_LIMIT.raw(), 0xffff_ffff);
        w.set(F::GUEST_RIP.raw(), RIP);
        w.set(F::GUEST_RSP.raw(), 0x8000);
        w.set(F::GUEST_RFLAGS.raw(), 0x2);
        w
    }

    pub fn set(&mut self, encoding: u64, value: u64) {
        self.vmcs01.write_raw(encoding, value).unwrap_or_else(|e| panic!("vmcs01 {encoding:#x}: {e:?}"));
    }
    pub fn get(&self, encoding: u64) -> u64 {
        self.vmcs01.read_raw(encoding).unwrap()
    }

    /// Switch L1 to 32-bit protected mode with flat segments (paging stays as set).
    pub fn mode32(&mut self) {
        self.set(F::VM_ENTRY_CONTROLS.raw(), 0);
        self.set(F::GUEST_CS_AR_BYTES.raw(), AR_CODE32);
        self.set(F::GUEST_CR0.raw(), 0x31 | 1 << 16);
        self.set(F::GUEST_CR4.raw(), 0x2000);
    }

    /// Run one exit: the processor's exit information, then L0's emulation.
    pub fn exec(&mut self, reason: vmcs::exit::ExitReason, info: u32, qualification: u64) -> Outcome {
        self.set(F::VM_EXIT_REASON.raw(), reason.number() as u64);
        self.set(F::VMX_INSTRUCTION_INFO.raw(), info as u64);
        self.set(F::EXIT_QUALIFICATION.raw(), qualification);
        self.set(F::VM_EXIT_INSTRUCTION_LEN.raw(), INSN_LEN);
        self.set(F::GUEST_RIP.raw(), RIP);
        self.set(F::VM_ENTRY_INTR_INFO_FIELD.raw(), 0);
        self.cpu.cr2 = None;
        self.nested.handle_exit(reason, &mut self.vmcs01, &mut self.cpu, &mut self.mem)
    }

    /// What L1 sees after the instruction.
    pub fn result(&self) -> InsnResult {
        let rflags = self.get(F::GUEST_RFLAGS.raw());
        let intr = self.get(F::VM_ENTRY_INTR_INFO_FIELD.raw());
        if intr >> 31 == 1 {
            assert_eq!(self.get(F::GUEST_RIP.raw()), RIP, "a faulting instruction does not retire");
            let ec = (intr >> 11 & 1 == 1).then(|| self.get(F::VM_ENTRY_EXCEPTION_ERROR_CODE.raw()) as u32);
            return InsnResult::Fault { vector: intr as u8, error_code: ec };
        }
        if self.get(F::GUEST_RIP.raw()) == RIP {
            return InsnResult::NotRetired;
        }
        assert_eq!(self.get(F::GUEST_RIP.raw()), RIP + INSN_LEN);
        match (rflags & 1 == 1, rflags >> 6 & 1 == 1) {
            (false, false) => InsnResult::Succeed,
            (true, false) => InsnResult::FailInvalid,
            (false, true) => InsnResult::FailValid(self.nested.current().vmcs12.inner().vm_instruction_error),
            _ => panic!("CF and ZF both set"),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InsnResult {
    Succeed,
    FailInvalid,
    FailValid(u32),
    Fault { vector: u8, error_code: Option<u32> },
    NotRetired,
}

/// Instruction information: a memory operand [base + disp] in 64-bit addressing, DS, no index.
pub fn mem_info(base: u8) -> u32 {
    2 << 7 | 3 << 15 | 1 << 22 | (base as u32) << 23
}
/// Instruction information: register operands (reg1 value/destination, reg2 field or type).
pub fn reg_info(reg1: u8, reg2: u8) -> u32 {
    1 << 10 | (reg1 as u32) << 3 | (reg2 as u32) << 28
}
/// Memory operand with reg2 (VMREAD/VMWRITE field, INVEPT/INVVPID type).
pub fn mem_info_reg2(base: u8, reg2: u8) -> u32 {
    mem_info(base) | (reg2 as u32) << 28
}

/// RBX (register 3) points at an 8-byte pointer operand at `at` holding `ptr`.
pub fn pointer_operand(w: &mut World, at: u64, ptr: u64) -> (u32, u64) {
    w.mem.put64(at, ptr);
    w.cpu.gprs[3] = at;
    (mem_info(3), 0)
}

pub const VMXON_REGION: u64 = 0x20_0000;
pub const VMCS_A: u64 = 0x20_1000;
pub const VMCS_B: u64 = 0x20_2000;
pub const OPERAND: u64 = 0x30_0000;

/// VMXON on a prepared region; then VMPTRLD `VMCS_A` (revision written).
pub fn vmxon(w: &mut World) {
    w.mem.put32(VMXON_REGION, <vmcs::Vmcs12 as vmcs::Layout>::REVISION);
    let (info, q) = pointer_operand(w, OPERAND, VMXON_REGION);
    assert_eq!(w.exec(vmcs::exit::ExitReason::Vmxon, info, q), Outcome::ResumeL1);
    assert_eq!(w.result(), InsnResult::Succeed);
}

pub fn vmptrld(w: &mut World, ptr: u64) -> InsnResult {
    let (info, q) = pointer_operand(w, OPERAND, ptr);
    w.exec(vmcs::exit::ExitReason::Vmptrld, info, q);
    w.result()
}

pub fn vmxon_and_load(w: &mut World) {
    vmxon(w);
    w.mem.put32(VMCS_A, <vmcs::Vmcs12 as vmcs::Layout>::REVISION);
    assert_eq!(vmptrld(w, VMCS_A), InsnResult::Succeed);
}

/// VMWRITE by registers: RAX = value, RCX = field.
pub fn vmwrite(w: &mut World, field: u64, value: u64) -> InsnResult {
    w.cpu.gprs[0] = value;
    w.cpu.gprs[1] = field;
    w.exec(vmcs::exit::ExitReason::Vmwrite, reg_info(0, 1), 0);
    w.result()
}

/// VMREAD by registers: RCX = field, result in RDX.
pub fn vmread(w: &mut World, field: u64) -> Result<u64, InsnResult> {
    w.cpu.gprs[1] = field;
    w.cpu.gprs[2] = 0xdead;
    w.exec(vmcs::exit::ExitReason::Vmread, reg_info(2, 1), 0);
    match w.result() {
        InsnResult::Succeed => Ok(w.cpu.gprs[2]),
        r => Err(r),
    }
}

/// `(wanted | must-be-1) & allowed-1` for L1's control MSR.
pub fn adjust(w: &World, msr: u32, wanted: u64) -> u64 {
    let v = w.nested.caps().caps().raw(msr);
    (wanted | (v & 0xffff_ffff)) & (v >> 32)
}

/// A vmcs12 an L1 would launch, valid by every SDM check: a 64-bit guest and host sharing flat
/// segments, a GDT at 0x2000, an IDT at 0x2800 and a TSS at 0x3000; controls from L1's TRUE MSRs.
pub fn valid_vmcs12(w: &mut World) {
    let ctl = |c: Cap| 1u64 << c.bit();
    let mut writes = vec![
        (F::PIN_BASED_VM_EXEC_CONTROL.raw(), adjust(w, 0x48d, 0)),
        (F::CPU_BASED_VM_EXEC_CONTROL.raw(), adjust(w, 0x48e, ctl(Cap::ProcHltExiting))),
        (F::VM_EXIT_CONTROLS.raw(), adjust(w, 0x48f, ctl(Cap::ExitHostAddressSpaceSize))),
        (F::VM_ENTRY_CONTROLS.raw(), adjust(w, 0x490, ctl(Cap::EntryIa32eModeGuest))),
        (F::VMCS_LINK_POINTER.raw(), u64::MAX),
        (F::HOST_CR0.raw(), 0x8000_0031),
        (F::HOST_CR3.raw(), CR3_64),
        (F::HOST_CR4.raw(), 0x2020),
        (F::HOST_CS_SELECTOR.raw(), 8),
        (F::HOST_TR_SELECTOR.raw(), 0x18),
        (F::HOST_TR_BASE.raw(), 0x3000),
        (F::HOST_GDTR_BASE.raw(), 0x2000),
        (F::HOST_IDTR_BASE.raw(), 0x2800),
        (F::HOST_RIP.raw(), 0x10_2000),
        (F::GUEST_CR0.raw(), 0x8000_0031),
        (F::GUEST_CR3.raw(), CR3_64),
        (F::GUEST_CR4.raw(), 0x2020),
        (F::GUEST_DR7.raw(), 0x400),
        (F::GUEST_RFLAGS.raw(), 2),
        (F::GUEST_CS_SELECTOR.raw(), 8),
        (F::GUEST_CS_LIMIT.raw(), 0xffff_ffff),
        (F::GUEST_CS_AR_BYTES.raw(), AR_CODE64),
        (F::GUEST_LDTR_AR_BYTES.raw(), 0x1_0000),
        (F::GUEST_TR_SELECTOR.raw(), 0x18),
        (F::GUEST_TR_BASE.raw(), 0x3000),
        (F::GUEST_TR_LIMIT.raw(), 0x67),
        (F::GUEST_TR_AR_BYTES.raw(), 0x8b),
        (F::GUEST_GDTR_BASE.raw(), 0x2000),
        (F::GUEST_GDTR_LIMIT.raw(), 0x27),
        (F::GUEST_IDTR_BASE.raw(), 0x2800),
        (F::GUEST_IDTR_LIMIT.raw(), 0x1ff),
    ];
    for sel in [F::HOST_ES_SELECTOR, F::HOST_SS_SELECTOR, F::HOST_DS_SELECTOR, F::HOST_FS_SELECTOR, F::HOST_GS_SELECTOR]
    {
        writes.push((sel.raw(), 0x10));
    }
    for (sel, limit, ar) in [
        (F::GUEST_ES_SELECTOR, F::GUEST_ES_LIMIT, F::GUEST_ES_AR_BYTES),
        (F::GUEST_SS_SELECTOR, F::GUEST_SS_LIMIT, F::GUEST_SS_AR_BYTES),
        (F::GUEST_DS_SELECTOR, F::GUEST_DS_LIMIT, F::GUEST_DS_AR_BYTES),
        (F::GUEST_FS_SELECTOR, F::GUEST_FS_LIMIT, F::GUEST_FS_AR_BYTES),
        (F::GUEST_GS_SELECTOR, F::GUEST_GS_LIMIT, F::GUEST_GS_AR_BYTES),
    ] {
        writes.extend([(sel.raw(), 0x10), (limit.raw(), 0xffff_ffff), (ar.raw(), AR_DATA)]);
    }
    for (f, v) in writes {
        assert_eq!(vmwrite(w, f, v), InsnResult::Succeed, "{f:#x}");
    }
}
