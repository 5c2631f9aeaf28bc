//! Typed check expressions: what the type checker produces and the interpreter, the emitter and
//! the mutation generator consume. Names are resolved (fields, controls, capabilities, MSRs,
//! facts), segment accessors and defines are expanded, and every integer has a width.
//!
//! Semantics: an integer of width w holds a value below 2^w; `+ - * << ~` wrap within the width;
//! a shift by the width or more gives 0; `a => b` is `!a || b`; `&&`, `||` and `=>` short-circuit,
//! so a memory read on their right runs only when it decides the result.

use super::{CapId, FieldId, MsrId};

/// Index of a fact in [`super::Checks::facts`].
pub type FactId = usize;

/// The width of an integer value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum IntTy {
    U8,
    U16,
    U32,
    U64,
}

impl IntTy {
    pub fn bits(self) -> u32 {
        match self {
            IntTy::U8 => 8,
            IntTy::U16 => 16,
            IntTy::U32 => 32,
            IntTy::U64 => 64,
        }
    }
    pub fn mask(self) -> u64 {
        u64::MAX >> (64 - self.bits())
    }
    pub fn name(self) -> &'static str {
        match self {
            IntTy::U8 => "u8",
            IntTy::U16 => "u16",
            IntTy::U32 => "u32",
            IntTy::U64 => "u64",
        }
    }
    pub fn parse(s: &str) -> Option<IntTy> {
        Some(match s {
            "u8" => IntTy::U8,
            "u16" => IntTy::U16,
            "u32" => IntTy::U32,
            "u64" => IntTy::U64,
            _ => return None,
        })
    }
}

/// The type of an expression.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Ty {
    Bool,
    Int(IntTy),
}

impl Ty {
    pub fn describe(self) -> String {
        match self {
            Ty::Bool => "a boolean".into(),
            Ty::Int(i) => format!("a {}-bit integer", i.bits()),
        }
    }
}

/// Logical connectives (operands and result are booleans).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Logic {
    And,
    Or,
    Implies,
}

/// Comparisons (integers of one width, or booleans for `==` / `!=`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Cmp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl Cmp {
    /// Whether `l op r` holds (unsigned, as every value of the language is).
    pub fn holds(self, l: u64, r: u64) -> bool {
        match self {
            Cmp::Eq => l == r,
            Cmp::Ne => l != r,
            Cmp::Lt => l < r,
            Cmp::Le => l <= r,
            Cmp::Gt => l > r,
            Cmp::Ge => l >= r,
        }
    }
}

/// Integer operators; the result has the left operand's width (for shifts, the amount may have any
/// width).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Arith {
    BitOr,
    BitXor,
    BitAnd,
    Shl,
    Shr,
    Add,
    Sub,
    Mul,
}

/// A typed expression.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Expr {
    Bool(bool),
    Int {
        value: u64,
        ty: IntTy,
    },
    /// A VMCS field's value (16, 32 or 64 bits; natural width is 64).
    Field(FieldId),
    /// Bit `bit` of the control field MSR `msr` reports, as in effect (see `Msr::control_field`).
    Control {
        msr: MsrId,
        bit: u32,
    },
    /// The control field of MSR `msr` meets the MSR's allowed settings.
    Allowed(MsrId),
    /// A capability bit.
    Cap(CapId),
    /// A capability MSR's value (0 if it does not exist; the TRUE_* MSR where bit 55 of IA32_VMX_BASIC is set).
    Msr(MsrId),
    Fact(FactId),
    /// A physical-memory read of 4 (`U32`) or 8 (`U64`) bytes; unreadable memory reads as all ones.
    Mem {
        ty: IntTy,
        addr: Box<Expr>,
    },
    Not(Box<Expr>),
    BitNot {
        ty: IntTy,
        value: Box<Expr>,
    },
    Logic {
        op: Logic,
        lhs: Box<Expr>,
        rhs: Box<Expr>,
    },
    Compare {
        op: Cmp,
        lhs: Box<Expr>,
        rhs: Box<Expr>,
    },
    Arith {
        op: Arith,
        ty: IntTy,
        lhs: Box<Expr>,
        rhs: Box<Expr>,
    },
    /// Bit `bit` of an integer.
    Bit {
        value: Box<Expr>,
        bit: u32,
    },
    /// Bits hi:lo of an integer, shifted down (same width as the value).
    Bits {
        value: Box<Expr>,
        ty: IntTy,
        hi: u32,
        lo: u32,
    },
    /// The integer lies in one of the inclusive ranges.
    In {
        value: Box<Expr>,
        set: Vec<(u64, u64)>,
    },
    /// Zero-extend or truncate.
    Convert {
        value: Box<Expr>,
        to: IntTy,
    },
    /// `let var = value in body` (a define's argument, evaluated once).
    Let {
        var: usize,
        value: Box<Expr>,
        body: Box<Expr>,
    },
    Var {
        var: usize,
        ty: Ty,
    },
    /// The VM-entry MSR-load entry being checked, counted from 0 (a u64): rules of the MSR-loading
    /// tier (26.4) are checked for each entry in turn.
    MsrEntry,
    /// WRMSR of `value` (u64) to MSR `index` (u32) would fault at CPL 0: the environment's answer
    /// (the processor's, or for a nested hypervisor L0's, MSR emulation).
    WrmsrFaults {
        index: Box<Expr>,
        value: Box<Expr>,
    },
}

impl Expr {
    /// Every node, depth first (the node before its children).
    pub fn walk(&self, f: &mut impl FnMut(&Expr)) {
        f(self);
        match self {
            Expr::Mem { addr: e, .. }
            | Expr::Not(e)
            | Expr::BitNot { value: e, .. }
            | Expr::Bit { value: e, .. }
            | Expr::Bits { value: e, .. }
            | Expr::In { value: e, .. }
            | Expr::Convert { value: e, .. } => e.walk(f),
            Expr::Logic { lhs, rhs, .. }
            | Expr::Compare { lhs, rhs, .. }
            | Expr::Arith { lhs, rhs, .. }
            | Expr::WrmsrFaults { index: lhs, value: rhs } => {
                lhs.walk(f);
                rhs.walk(f);
            }
            Expr::Let { value, body, .. } => {
                value.walk(f);
                body.walk(f);
            }
            Expr::Bool(_)
            | Expr::Int { .. }
            | Expr::Field(_)
            | Expr::Control { .. }
            | Expr::Allowed(_)
            | Expr::Cap(_)
            | Expr::Msr(_)
            | Expr::Fact(_)
            | Expr::Var { .. }
            | Expr::MsrEntry => {}
        }
    }

    /// The fields the expression reads directly (not those behind control words).
    pub fn fields(&self) -> Vec<FieldId> {
        let mut out = Vec::new();
        self.walk(&mut |e| {
            if let Expr::Field(f) = e
                && !out.contains(f)
            {
                out.push(*f);
            }
        });
        out
    }
}
