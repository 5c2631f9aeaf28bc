//! VMXON and VMXOFF, and VMCALL in VMX root operation.

use vmcs::VmInstructionError as E;
use vmcs::caps::{Msr, feature_control};
use vmcs::fields as F;
use vmcs::{Layout, Vmcs12, VmcsRead, VmcsWrite};

use super::insn_info;
use crate::operand::Operands;
use crate::vcpu::{CR4_VMXE, Fault, GuestMemory, L1Cpu, Stop};
use crate::vmx::{Done, INVALID_POINTER, NestedVmx};

impl NestedVmx {
    pub(crate) fn vmxon_insn<V, C, M>(&mut self, ops: &mut Operands<'_, V, C, M>) -> Result<Done, Stop>
    where
        V: VmcsRead + VmcsWrite,
        C: L1Cpu,
        M: GuestMemory,
    {
        let cr4 = ops.l1.cr4()?;
        if cr4 & CR4_VMXE == 0 {
            return Err(Fault::ud().into());
        }
        if ops.l1.cpl()? > 0 {
            return Err(Fault::gp0().into());
        }
        if self.vmxon_ptr.is_some() {
            return Ok(Done::Fail(E::VmxonInVmxRoot));
        }
        let caps = self.caps.caps();
        let cr0 = ops.l1.cr0()?;
        let fixed = |v: u64, f0: Msr, f1: Msr| {
            let (must1, may1) = (caps.raw(f0.index()), caps.raw(f1.index()));
            v & must1 == must1 && v & !may1 == 0
        };
        if !fixed(cr0, Msr::Cr0Fixed0, Msr::Cr0Fixed1) || !fixed(cr4, Msr::Cr4Fixed0, Msr::Cr4Fixed1) {
            return Err(Fault::gp0().into());
        }
        if ops.cpu.feature_control() & feature_control::VMXON != feature_control::VMXON {
            return Err(Fault::gp0().into());
        }
        let ptr = ops.read_pointer(insn_info(ops)?)?;
        if !Self::page_address_valid(ops.cpu, ptr) {
            return Ok(Done::FailInvalid);
        }
        // The whole 32-bit header: a set shadow-VMCS bit is a wrong revision too.
        match ops.mem.read_u32(ptr) {
            Ok(rev) if rev == Vmcs12::REVISION => {}
            _ => return Ok(Done::FailInvalid),
        }
        self.vmxon_ptr = Some(ptr);
        self.current_ptr = INVALID_POINTER;
        Ok(Done::Succeed)
    }

    /// VMXOFF: leaves VMX operation. The cached vmcs12 is not written back (L1 must VMCLEAR
    /// first, as on hardware).
    pub(crate) fn vmxoff_insn<V, C, M>(&mut self, ops: &mut Operands<'_, V, C, M>) -> Result<Done, Stop>
    where
        V: VmcsRead + VmcsWrite,
        C: L1Cpu,
        M: GuestMemory,
    {
        self.check_permission(ops)?;
        self.vmxon_ptr = None;
        self.current_ptr = INVALID_POINTER;
        Ok(Done::Succeed)
    }

    /// VMCALL of L1 (every VMCALL of L1 exits to L0), as the SDM has it for a processor without
    /// an SMM monitor: #UD outside VMX operation, and in VMX root operation #UD in virtual-8086
    /// or compatibility mode, #GP(0) above CPL 0, else VMfail(1). KVM instead takes it as a
    /// hypercall (kvm_emulate_hypercall); this L0 gives L1 the machine's behaviour.
    pub(crate) fn vmcall_insn<V, C, M>(&mut self, ops: &mut Operands<'_, V, C, M>) -> Result<Done, Stop>
    where
        V: VmcsRead + VmcsWrite,
        C: L1Cpu,
        M: GuestMemory,
    {
        if self.vmxon_ptr.is_none() {
            return Err(Fault::ud().into());
        }
        let vm86 = ops.l1.read(F::GUEST_RFLAGS.raw())? >> 17 & 1 == 1;
        if vm86 || (ops.l1.long_mode()? && !ops.l1.mode64()?) {
            return Err(Fault::ud().into());
        }
        // What is left is every VMX instruction's CPL rule.
        self.check_permission(ops)?;
        Ok(Done::Fail(E::VmcallInVmxRoot))
    }
}
