//! Operands of L1's VMX instructions, decoded from the VM-exit instruction-information field and
//! the exit qualification (SDM Vol. 3C 28.2.5, "Information for VM Exits Due to Instruction
//! Execution"), and accessed as the instruction would: registers (32 bits outside 64-bit mode),
//! or memory through L1's segmentation (type, usability and limit checks, #GP/#SS) and paging
//! ([`crate::paging`], #PF).

use vmcs::fields as F;
use vmcs::{VmcsRead, VmcsWrite};

use crate::paging::Paging;
use crate::vcpu::{Fault, Guest, GuestMemory, L1Cpu, RFLAGS_AC, SEG_FS, SEG_GS, SEG_SS, Segment, Stop};

/// The VM-exit instruction-information field of a VMX instruction exit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InsnInfo(pub u32);

impl InsnInfo {
    /// Scaling of the index register (bits 1:0): 1, 2, 4, 8.
    pub const fn scale(self) -> u32 {
        self.0 & 3
    }
    /// Address size (bits 9:7): 0 = 16-bit, 1 = 32-bit, 2 = 64-bit.
    pub const fn address_size(self) -> u32 {
        self.0 >> 7 & 7
    }
    /// Bit 10: the operand is a register (VMREAD/VMWRITE only).
    pub const fn is_register(self) -> bool {
        self.0 >> 10 & 1 == 1
    }
    /// Register operand 1 (bits 6:3): VMREAD's destination, VMWRITE's source.
    pub const fn reg1(self) -> u8 {
        (self.0 >> 3 & 0xf) as u8
    }
    /// Segment register (bits 17:15).
    pub const fn segment(self) -> u8 {
        (self.0 >> 15 & 7) as u8
    }
    /// Index register (bits 21:18) unless invalid (bit 22).
    pub const fn index(self) -> Option<u8> {
        if self.0 >> 22 & 1 == 1 { None } else { Some((self.0 >> 18 & 0xf) as u8) }
    }
    /// Base register (bits 26:23) unless invalid (bit 27).
    pub const fn base(self) -> Option<u8> {
        if self.0 >> 27 & 1 == 1 { None } else { Some((self.0 >> 23 & 0xf) as u8) }
    }
    /// Register operand 2 (bits 31:28): the field encoding of VMREAD/VMWRITE, the type of
    /// INVEPT/INVVPID.
    pub const fn reg2(self) -> u8 {
        (self.0 >> 28 & 0xf) as u8
    }
}

/// The state needed to access L1's operands: its registers, vmcs01 and memory.
pub struct Operands<'a, V: VmcsRead + VmcsWrite, C: L1Cpu, M: GuestMemory> {
    /// L1's state in vmcs01.
    pub l1: Guest<'a, V>,
    /// What only L0 knows of L1 (its general registers).
    pub cpu: &'a mut C,
    /// L1's memory.
    pub mem: &'a mut M,
}

impl<V: VmcsRead + VmcsWrite, C: L1Cpu, M: GuestMemory> Operands<'_, V, C, M> {
    /// General register `n` at full width (RSP from vmcs01).
    pub fn gpr(&self, n: u8) -> Result<u64, Stop> {
        Ok(if n == 4 { self.l1.read(F::GUEST_RSP.raw())? } else { self.cpu.gpr(n) })
    }

    /// A register operand: 64 bits in 64-bit mode, else the low 32 bits.
    pub fn read_reg(&self, n: u8) -> Result<u64, Stop> {
        let v = self.gpr(n)?;
        Ok(if self.l1.mode64()? { v } else { v & 0xffff_ffff })
    }

    /// Write a register operand; outside 64-bit mode a 32-bit write zero-extends, as MOV does.
    pub fn write_reg(&mut self, n: u8, value: u64) -> Result<(), Stop> {
        let value = if self.l1.mode64()? { value } else { value & 0xffff_ffff };
        if n == 4 {
            self.l1.vmcs.write_raw(F::GUEST_RSP.raw(), value)?;
        } else {
            self.cpu.set_gpr(n, value);
        }
        Ok(())
    }

    /// The linear address of the memory operand, with the segmentation checks for an access of
    /// `len` bytes. A register operand where memory is required is #UD.
    pub fn linear_address(&self, info: InsnInfo, len: u64, write: bool) -> Result<u64, Stop> {
        if info.is_register() {
            return Err(Fault::ud().into());
        }
        let disp = self.l1.read(F::EXIT_QUALIFICATION.raw())?;
        let mut off = match info.address_size() {
            0 => disp as i16 as i64 as u64,
            1 => disp as i32 as i64 as u64,
            _ => disp,
        };
        if let Some(b) = info.base() {
            off = off.wrapping_add(self.gpr(b)?);
        }
        if let Some(i) = info.index() {
            off = off.wrapping_add(self.gpr(i)? << info.scale());
        }
        off &= match info.address_size() {
            0 => 0xffff,
            1 => 0xffff_ffff,
            _ => u64::MAX,
        };
        let seg_no = info.segment();
        let seg = self.l1.segment(seg_no)?.ok_or(Fault::ud())?;
        let seg_fault = || if seg_no == SEG_SS { Fault::ss0() } else { Fault::gp0() };
        if self.l1.mode64()? {
            // Only FS and GS bases apply; the address must be canonical (48-bit; 57 with LA57).
            let lin = if seg_no == SEG_FS || seg_no == SEG_GS { off.wrapping_add(seg.base) } else { off };
            let bits = if self.l1.cr4()? & crate::vcpu::CR4_LA57 != 0 { 57 } else { 48 };
            let end = lin.wrapping_add(len - 1);
            if !canonical(lin, bits) || !canonical(end, bits) {
                return Err(seg_fault().into());
            }
            return Ok(lin);
        }
        check_segment(seg, off, len, write).map_err(|()| seg_fault())?;
        Ok(seg.base.wrapping_add(off) & 0xffff_ffff)
    }

    fn paging(&self) -> Result<Paging, Stop> {
        Ok(Paging {
            cr0: self.l1.cr0()?,
            cr3: self.l1.read(F::GUEST_CR3.raw())?,
            cr4: self.l1.cr4()?,
            long_mode: self.l1.long_mode()?,
            ac: self.l1.read(F::GUEST_RFLAGS.raw())? & RFLAGS_AC != 0,
            maxphyaddr: self.cpu.maxphyaddr(),
        })
    }

    /// Read `buf.len()` bytes (at most 16) at linear address `lin`, page by page.
    pub fn read_linear(&mut self, lin: u64, buf: &mut [u8]) -> Result<(), Stop> {
        let paging = self.paging()?;
        let mut done = 0;
        while done < buf.len() {
            let at = lin.wrapping_add(done as u64);
            let n = chunk(at, buf.len() - done, paging.cr0 & crate::vcpu::CR0_PG != 0);
            let gpa = paging.translate(self.mem, at, false)?;
            self.mem.read(gpa, &mut buf[done..done + n])?;
            done += n;
        }
        Ok(())
    }

    /// Write `data` (at most 16 bytes) at linear address `lin`. Every page is translated (and
    /// may fault) before any byte is written, so a faulting write leaves memory untouched.
    pub fn write_linear(&mut self, lin: u64, data: &[u8]) -> Result<(), Stop> {
        let paging = self.paging()?;
        let pg = paging.cr0 & crate::vcpu::CR0_PG != 0;
        let mut spans = [(0u64, 0usize, 0usize); 2];
        let (mut done, mut k) = (0, 0);
        while done < data.len() && k < spans.len() {
            let at = lin.wrapping_add(done as u64);
            let n = chunk(at, data.len() - done, pg);
            spans[k] = (paging.translate(self.mem, at, true)?, done, n);
            done += n;
            k += 1;
        }
        for &(gpa, from, n) in &spans[..k] {
            self.mem.write(gpa, &data[from..from + n])?;
        }
        Ok(())
    }

    /// Read an operand of `len` bytes (8 or 16) through the memory operand.
    pub fn read_mem(&mut self, info: InsnInfo, buf: &mut [u8]) -> Result<(), Stop> {
        let lin = self.linear_address(info, buf.len() as u64, false)?;
        self.read_linear(lin, buf)
    }

    /// Write `data` through the memory operand.
    pub fn write_mem(&mut self, info: InsnInfo, data: &[u8]) -> Result<(), Stop> {
        let lin = self.linear_address(info, data.len() as u64, true)?;
        self.write_linear(lin, data)
    }

    /// VMXON/VMCLEAR/VMPTRLD's 64-bit pointer operand.
    pub fn read_pointer(&mut self, info: InsnInfo) -> Result<u64, Stop> {
        let mut b = [0; 8];
        self.read_mem(info, &mut b)?;
        Ok(u64::from_le_bytes(b))
    }
}

/// Bytes of an access at `at` that fit its page (the whole rest without paging).
fn chunk(at: u64, rest: usize, paging: bool) -> usize {
    if !paging {
        return rest;
    }
    let to_end = 0x1000 - (at & 0xfff) as usize;
    rest.min(to_end)
}

fn canonical(addr: u64, bits: u32) -> bool {
    let shift = 64 - bits;
    ((addr << shift) as i64 >> shift) as u64 == addr
}

/// Segment type, usability and limit checks for an access of `len` bytes at offset `off`
/// (in that order, as KVM applies them; each failure is #GP(0), or #SS(0) for SS).
fn check_segment(seg: Segment, off: u64, len: u64, write: bool) -> Result<(), ()> {
    let kind = seg.kind();
    let code = kind & 8 != 0;
    // Writes need a writable data segment; reads fail only on execute-only code.
    let type_ok = if write { !code && kind & 2 != 0 } else { !code || kind & 2 != 0 };
    if !type_ok || seg.unusable() {
        return Err(());
    }
    let last = off.wrapping_add(len - 1);
    let limit = seg.limit as u64;
    let expand_down = !code && kind & 4 != 0;
    let ok = if expand_down {
        let top = if seg.ar >> 14 & 1 == 1 { 0xffff_ffff } else { 0xffff };
        off > limit && last <= top && last >= off
    } else {
        last <= limit && last >= off
    };
    if ok { Ok(()) } else { Err(()) }
}
