//! L1's vCPU as L0 holds it between exits: the general registers the VM exit left in
//! [`GuestRegisters`] (RSP lives in vmcs01), CR2 to load before the next entry, and what L0
//! reports for L1 (IA32_FEATURE_CONTROL, MAXPHYADDR).

use vmcs::hw::GuestRegisters;
use vmcs_nested_vmx::vcpu::L1Cpu;

/// IA32_FEATURE_CONTROL as L1 reads it: locked, VMX outside SMX enabled.
pub const FEATURE_CONTROL: u64 = vmcs::caps::feature_control::VMXON;

pub struct Vcpu {
    pub regs: GuestRegisters,
    /// CR2 for L1's next entry (a #PF L0 injected).
    pub cr2: Option<u64>,
    pub maxphyaddr: u8,
}

impl Vcpu {
    /// General register `n` in the SDM's numbering, except RSP (4), which vmcs01 holds.
    pub fn reg(&mut self, n: u8) -> Option<&mut u64> {
        let r = &mut self.regs;
        Some(match n {
            0 => &mut r.rax,
            1 => &mut r.rcx,
            2 => &mut r.rdx,
            3 => &mut r.rbx,
            5 => &mut r.rbp,
            6 => &mut r.rsi,
            7 => &mut r.rdi,
            8 => &mut r.r8,
            9 => &mut r.r9,
            10 => &mut r.r10,
            11 => &mut r.r11,
            12 => &mut r.r12,
            13 => &mut r.r13,
            14 => &mut r.r14,
            15 => &mut r.r15,
            _ => return None,
        })
    }
}

impl L1Cpu for Vcpu {
    fn gpr(&self, n: u8) -> u64 {
        let r = &self.regs;
        match n {
            0 => r.rax,
            1 => r.rcx,
            2 => r.rdx,
            3 => r.rbx,
            5 => r.rbp,
            6 => r.rsi,
            7 => r.rdi,
            8 => r.r8,
            9 => r.r9,
            10 => r.r10,
            11 => r.r11,
            12 => r.r12,
            13 => r.r13,
            14 => r.r14,
            15 => r.r15,
            _ => 0,
        }
    }
    fn set_gpr(&mut self, n: u8, value: u64) {
        if let Some(r) = self.reg(n) {
            *r = value;
        }
    }
    fn set_cr2(&mut self, value: u64) {
        self.cr2 = Some(value);
    }
    fn feature_control(&self) -> u64 {
        FEATURE_CONTROL
    }
    fn maxphyaddr(&self) -> u8 {
        self.maxphyaddr
    }
}
