//! Applying vmcs-gen's boundary mutations (the generated `entry_mutations.rs` tables) to the real
//! VMCS: symbolic values are resolved against this processor's capability MSRs, the facts and the
//! fields' current values; memory edits land only in the scratch pages, and are undone after
//! each attempt.

use vmcs::caps::{Msr, MsrKind, VmxCaps};
use vmcs::entry::Facts;
use vmcs::hw::CurrentVmcs;

use crate::entry_state;

mod table {
    include!(concat!(env!("OUT_DIR"), "/entry_mutations.rs"));
}
pub use table::{CONTROLS, DEPENDS, EDITS, FIXES, MUTATIONS};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    Msr(Msr),
    Fact(u8),
    Field(u32),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Value {
    Const(u64),
    FactBit(u8, i8),
    LowestSet(Source, u64),
    HighestSet(Source, u64),
    LowestClear(Source, u64),
    Plus {
        source: Source,
        lo: u8,
        width: u8,
        delta: i8,
        at: u8,
    },
    Page(u8),
    Allowed(Msr, u32),
    FactBits(u8, u64),
    Bits(Source, u64),
    Clear(Source, u64),
    /// The index (false) or value (true) of a WRMSR that faults here ([`entry_state::FAULTING_WRMSR`]).
    FaultingWrmsr(bool),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    Assign(u64),
    Or,
    AndNot,
    Xor,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    Field(u32),
    Memory { base: u32, base_mask: u64, offset: u64, bytes: u8 },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Edit {
    pub target: Target,
    pub op: Op,
    pub value: Value,
}

impl Edit {
    /// The bits of the target the edit may change (all for a symbolic value).
    fn bits(&self) -> u64 {
        match (self.op, self.value) {
            (Op::Assign(mask), _) => mask,
            (_, Value::Const(v)) => v,
            _ => u64::MAX,
        }
    }

    /// Would the two edits leave a common bit different (vmcs-gen's `Edit::conflicts`)?
    pub fn conflicts(&self, other: &Edit) -> bool {
        self.target == other.target
            && self.bits() & other.bits() != 0
            && (self.op, self.value) != (other.op, other.value)
    }
}

/// Memory edits made by the current attempt, to undo.
pub struct Undo {
    writes: [(u64, u8, u64); 16],
    len: usize,
}

impl Undo {
    pub const fn new() -> Self {
        Undo { writes: [(0, 0, 0); 16], len: 0 }
    }

    /// Put back what the attempt's memory edits overwrote, latest first.
    pub fn undo(&mut self) {
        while self.len > 0 {
            self.len -= 1;
            let (address, bytes, old) = self.writes[self.len];
            entry_state::write_scratch(address, bytes as u32, old);
        }
    }
}

/// Why an edit could not be applied.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Skip {
    /// It names a field this processor does not have.
    AbsentField,
}

/// What resolving a value reads.
pub struct Env<'a> {
    pub caps: &'a VmxCaps,
    pub facts: &'a Facts,
}

fn resolve(v: &CurrentVmcs<'_>, env: &Env<'_>, value: Value) -> u64 {
    let source = |s: Source| match s {
        Source::Msr(m) => env.caps.value(m),
        Source::Fact(f) => table::fact(env.facts, f),
        Source::Field(enc) => v.vmread(enc as u64).unwrap_or(0),
    };
    let lowest = |x: u64| x & x.wrapping_neg();
    match value {
        Value::Const(c) => c,
        Value::FactBit(f, d) => {
            let n = table::fact(env.facts, f) as i64 + d as i64;
            if (0..64).contains(&n) { 1 << n } else { 0 }
        }
        Value::LowestSet(s, m) => lowest(source(s) & m),
        Value::HighestSet(s, m) => {
            let x = source(s) & m;
            if x == 0 { 0 } else { 1 << (63 - x.leading_zeros()) }
        }
        Value::LowestClear(s, m) => lowest(!source(s) & m),
        Value::Plus { source: s, lo, width, delta, at } => {
            let w = if width >= 64 { u64::MAX } else { (1u64 << width) - 1 };
            ((source(s) >> lo).wrapping_add(delta as i64 as u64) & w) << at
        }
        Value::Page(n) => entry_state::scratch_page(n as usize),
        Value::Allowed(m, field) => {
            let (msr, ctl) = (env.caps.value(m), v.vmread(field as u64).unwrap_or(0));
            match m.kind() {
                MsrKind::Control => (ctl | (msr & 0xffff_ffff)) & (msr >> 32),
                MsrKind::Flags => ctl & msr,
            }
        }
        Value::FactBits(f, m) => table::fact(env.facts, f) & m,
        Value::Bits(s, m) => source(s) & m,
        Value::Clear(s, m) => !source(s) & m,
        Value::FaultingWrmsr(false) => entry_state::FAULTING_WRMSR.0 as u64,
        Value::FaultingWrmsr(true) => entry_state::FAULTING_WRMSR.1,
    }
}

/// Does every field the edits read or write exist on this processor? (Checked before a VMCS is
/// loaded, so that states that do not exist here cost nothing.)
pub fn exist(edits: &[u16], caps: &VmxCaps) -> bool {
    let field = |enc: u32| vmcs::fields::exists(enc as u64, caps);
    let source = |s: Source| !matches!(s, Source::Field(enc) if !field(enc));
    edits.iter().all(|&i| {
        let e = EDITS[i as usize];
        let target = match e.target {
            Target::Field(enc) | Target::Memory { base: enc, .. } => field(enc),
        };
        let value = match e.value {
            Value::LowestSet(s, _)
            | Value::HighestSet(s, _)
            | Value::LowestClear(s, _)
            | Value::Bits(s, _)
            | Value::Clear(s, _) => source(s),
            Value::Plus { source: s, .. } => source(s),
            Value::Allowed(_, enc) => field(enc),
            _ => true,
        };
        target && value
    })
}

/// Apply edits (indices into [`EDITS`]) to the current VMCS and the scratch pages.
pub fn apply(v: &mut CurrentVmcs<'_>, env: &Env<'_>, edits: &[u16], undo: &mut Undo) -> Result<(), Skip> {
    for &i in edits {
        let e = EDITS[i as usize];
        let value = resolve(v, env, e.value);
        let update = |old: u64| match e.op {
            Op::Assign(mask) => (old & !mask) | (value & mask),
            Op::Or => old | value,
            Op::AndNot => old & !value,
            Op::Xor => old ^ value,
        };
        match e.target {
            Target::Field(enc) => {
                let old = v.vmread(enc as u64).map_err(|_| Skip::AbsentField)?;
                v.vmwrite(enc as u64, update(old)).map_err(|_| Skip::AbsentField)?;
            }
            Target::Memory { base, base_mask, offset, bytes } => {
                let b = v.vmread(base as u64).map_err(|_| Skip::AbsentField)?;
                let address = (b & base_mask).wrapping_add(offset);
                use vmcs::entry::GuestMemory;
                // Outside the scratch pages nothing is written: the checker and the processor then
                // both read what is there.
                if let Some(old) = entry_state::Physical.read(address, bytes as u32)
                    && undo.len < undo.writes.len()
                    && entry_state::write_scratch(address, bytes as u32, update(old))
                {
                    undo.writes[undo.len] = (address, bytes, old);
                    undo.len += 1;
                }
            }
        }
    }
    Ok(())
}
