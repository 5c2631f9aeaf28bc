//! VMREAD and VMWRITE against the cached vmcs12 ([`crate::current::Current`]).

use vmcs::{VmcsRead, VmcsWrite};

use super::insn_info;
use crate::operand::Operands;
use crate::vcpu::{GuestMemory, L1Cpu, Stop};
use crate::vmx::{Done, FieldAccess, NestedVmx, Outcome};

impl NestedVmx {
    pub(crate) fn vmread_insn<V, C, M>(&mut self, ops: &mut Operands<'_, V, C, M>) -> Result<Done, Stop>
    where
        V: VmcsRead + VmcsWrite,
        C: L1Cpu,
        M: GuestMemory,
    {
        if let Some(done) = self.check_current(ops)? {
            return Ok(done);
        }
        let info = insn_info(ops)?;
        let encoding = ops.read_reg(info.reg2())?;
        self.last_access = Some(FieldAccess { encoding, write: false, memory: !info.is_register() });
        // The field is looked up before the memory operand is decoded.
        let value = match self.current.l1_read(encoding, &self.caps) {
            Ok(v) => v,
            Err(n) => return Ok(Done::Fail(n)),
        };
        // A rare guest field the last exit left in vmcs02 (KVM: is_vmcs12_ext_field).
        if self.current.vmcs12.needs_lazy_sync(encoding) {
            return Ok(Done::Leave(Outcome::SyncRare));
        }
        if info.is_register() {
            ops.write_reg(info.reg1(), value)?;
        } else if ops.l1.mode64()? {
            ops.write_mem(info, &value.to_le_bytes())?;
        } else {
            // Outside 64-bit mode the memory operand is 32 bits, whatever the field's width.
            ops.write_mem(info, &(value as u32).to_le_bytes())?;
        }
        Ok(Done::Succeed)
    }

    pub(crate) fn vmwrite_insn<V, C, M>(&mut self, ops: &mut Operands<'_, V, C, M>) -> Result<Done, Stop>
    where
        V: VmcsRead + VmcsWrite,
        C: L1Cpu,
        M: GuestMemory,
    {
        if let Some(done) = self.check_current(ops)? {
            return Ok(done);
        }
        let info = insn_info(ops)?;
        // The value is read (and may fault) before the field is looked up.
        let value = if info.is_register() {
            ops.read_reg(info.reg1())?
        } else if ops.l1.mode64()? {
            let mut b = [0; 8];
            ops.read_mem(info, &mut b)?;
            u64::from_le_bytes(b)
        } else {
            let mut b = [0; 4];
            ops.read_mem(info, &mut b)?;
            u32::from_le_bytes(b) as u64
        };
        let encoding = ops.read_reg(info.reg2())?;
        self.last_access = Some(FieldAccess { encoding, write: true, memory: !info.is_register() });
        match self.current.l1_write(encoding, value, &self.caps) {
            Ok(()) => {
                self.last_vmwrite = Some(encoding);
                Ok(Done::Succeed)
            }
            Err(n) => Ok(Done::Fail(n)),
        }
    }
}
