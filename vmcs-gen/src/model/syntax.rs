//! The check expressions' syntax tree, as the parser (`checks::parse`) produces it: every node
//! keeps its byte range in the expression text, so later passes report at the offending token.
//! The model keeps defines in this form (they are expanded where a rule uses them).

use std::ops::Range;

/// A byte range in an expression's text.
pub type Span = Range<usize>;

/// A parsed expression node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Node {
    pub kind: NodeKind,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NodeKind {
    Int(u64),
    Bool(bool),
    /// A name, possibly dotted: `GUEST_CR0`, `maxphyaddr`, `proc2.enable_ept`, `CS.dpl`.
    Name(Vec<Ident>),
    Call {
        name: Ident,
        args: Vec<Node>,
    },
    Unary {
        op: UnOp,
        operand: Box<Node>,
    },
    Binary {
        op: BinOp,
        lhs: Box<Node>,
        rhs: Box<Node>,
    },
    Bit {
        value: Box<Node>,
        bit: (u64, Span),
    },
    Bits {
        value: Box<Node>,
        hi: (u64, Span),
        lo: (u64, Span),
    },
    /// `x in {1, 3..=5}`: inclusive ranges.
    In {
        value: Box<Node>,
        set: Vec<(u64, u64, Span)>,
    },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ident {
    pub text: String,
    pub span: Span,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum UnOp {
    /// `!`: logical not.
    Not,
    /// `~`: bitwise not within the operand's width.
    BitNot,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BinOp {
    Implies,
    Or,
    And,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    BitOr,
    BitXor,
    BitAnd,
    Shl,
    Shr,
    Add,
    Sub,
    Mul,
}

impl BinOp {
    pub fn symbol(self) -> &'static str {
        use BinOp::*;
        match self {
            Implies => "=>",
            Or => "||",
            And => "&&",
            Eq => "==",
            Ne => "!=",
            Lt => "<",
            Le => "<=",
            Gt => ">",
            Ge => ">=",
            BitOr => "|",
            BitXor => "^",
            BitAnd => "&",
            Shl => "<<",
            Shr => ">>",
            Add => "+",
            Sub => "-",
            Mul => "*",
        }
    }
    pub fn is_comparison(self) -> bool {
        matches!(self, BinOp::Eq | BinOp::Ne | BinOp::Lt | BinOp::Le | BinOp::Gt | BinOp::Ge)
    }
    pub fn is_logic(self) -> bool {
        matches!(self, BinOp::Implies | BinOp::Or | BinOp::And)
    }
}
