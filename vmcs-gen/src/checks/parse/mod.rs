//! Parsing check expressions: tokens and a precedence-climbing parser producing the syntax tree
//! of [`crate::model::syntax`], whose every node keeps its byte range (for located errors).
//!
//! Precedence, loosest first: `=>` (right-associative), `||`, `&&`, comparisons and `in`, `|`,
//! `^`, `&`, `<<` `>>`, `+` `-`, `*`, unary `!` `~`, postfix `[bit]` `[hi:lo]`.

mod lex;
#[cfg(test)]
mod tests;

use crate::model::syntax::{BinOp, Ident, Node, NodeKind, Span, UnOp};
use lex::{Tok, tokenize};

/// A syntax error at a byte range of the expression.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyntaxError {
    pub span: Span,
    pub message: String,
}

/// Parse a check expression.
pub fn parse(text: &str) -> Result<Node, SyntaxError> {
    let toks = tokenize(text)?;
    let mut p = Parser { toks, pos: 0, end: text.len(), depth: 0 };
    let n = p.expr()?;
    if let Some((_, span)) = p.toks.get(p.pos) {
        return Err(SyntaxError { span: span.start..p.end, message: "unexpected text after the expression".into() });
    }
    Ok(n)
}

struct Parser {
    toks: Vec<(Tok, Span)>,
    pos: usize,
    end: usize,
    /// Nesting of `expr` calls: bounded, so that no input overflows the stack.
    depth: usize,
}

const MAX_DEPTH: usize = 64;

/// Binary operators by precedence level, loosest first (`=>` is handled on its own).
const LEVELS: [&[(&str, BinOp)]; 8] = [
    &[("||", BinOp::Or)],
    &[("&&", BinOp::And)],
    &[("==", BinOp::Eq), ("!=", BinOp::Ne), ("<=", BinOp::Le), (">=", BinOp::Ge), ("<", BinOp::Lt), (">", BinOp::Gt)],
    &[("|", BinOp::BitOr)],
    &[("^", BinOp::BitXor)],
    &[("&", BinOp::BitAnd)],
    &[("<<", BinOp::Shl), (">>", BinOp::Shr)],
    &[("+", BinOp::Add), ("-", BinOp::Sub)],
];
const COMPARISON_LEVEL: usize = 2;

impl Parser {
    fn peek_punct(&self, p: &str) -> bool {
        matches!(self.toks.get(self.pos), Some((Tok::Punct(q), _)) if *q == p)
    }
    fn eat(&mut self, p: &str) -> bool {
        if self.peek_punct(p) {
            self.pos += 1;
            true
        } else {
            false
        }
    }
    fn here(&self) -> Span {
        self.toks.get(self.pos).map_or(self.end..self.end + 1, |(_, s)| s.clone())
    }
    fn err<T>(&self, message: impl Into<String>) -> Result<T, SyntaxError> {
        Err(SyntaxError { span: self.here(), message: message.into() })
    }
    fn expect(&mut self, p: &str) -> Result<Span, SyntaxError> {
        let span = self.here();
        if self.eat(p) { Ok(span) } else { self.err(format!("expected `{p}`")) }
    }

    fn expr(&mut self) -> Result<Node, SyntaxError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return self.err("the expression nests too deeply");
        }
        let r = self.implication();
        self.depth -= 1;
        r
    }

    fn implication(&mut self) -> Result<Node, SyntaxError> {
        let lhs = self.level(0)?;
        if self.eat("=>") {
            let rhs = self.expr()?;
            let span = lhs.span.start..rhs.span.end;
            return Ok(Node {
                kind: NodeKind::Binary { op: BinOp::Implies, lhs: Box::new(lhs), rhs: Box::new(rhs) },
                span,
            });
        }
        Ok(lhs)
    }

    fn level(&mut self, level: usize) -> Result<Node, SyntaxError> {
        if level == LEVELS.len() {
            return self.product();
        }
        let mut lhs = self.level(level + 1)?;
        if level == COMPARISON_LEVEL && matches!(self.toks.get(self.pos), Some((Tok::Ident(w), _)) if w == "in") {
            self.pos += 1;
            let set = self.set()?;
            let span = lhs.span.start..self.toks[self.pos - 1].1.end;
            return Ok(Node { kind: NodeKind::In { value: Box::new(lhs), set }, span });
        }
        while let Some(&(_, op)) = LEVELS[level].iter().find(|(p, _)| self.peek_punct(p)) {
            self.pos += 1;
            let rhs = self.level(level + 1)?;
            let span = lhs.span.start..rhs.span.end;
            lhs = Node { kind: NodeKind::Binary { op, lhs: Box::new(lhs), rhs: Box::new(rhs) }, span };
            if level == COMPARISON_LEVEL {
                // `a == b == c` is almost always a mistake: require parentheses.
                if LEVELS[level].iter().any(|(p, _)| self.peek_punct(p)) {
                    return self.err("comparisons do not chain: add parentheses");
                }
                break;
            }
        }
        Ok(lhs)
    }

    fn product(&mut self) -> Result<Node, SyntaxError> {
        let mut lhs = self.unary()?;
        while self.eat("*") {
            let rhs = self.unary()?;
            let span = lhs.span.start..rhs.span.end;
            lhs = Node { kind: NodeKind::Binary { op: BinOp::Mul, lhs: Box::new(lhs), rhs: Box::new(rhs) }, span };
        }
        Ok(lhs)
    }

    fn unary(&mut self) -> Result<Node, SyntaxError> {
        let start = self.here().start;
        if self.depth > MAX_DEPTH {
            return self.err("the expression nests too deeply");
        }
        let op = if self.eat("!") {
            UnOp::Not
        } else if self.eat("~") {
            UnOp::BitNot
        } else {
            return self.postfix();
        };
        self.depth += 1;
        let operand = self.unary();
        self.depth -= 1;
        let operand = operand?;
        let span = start..operand.span.end;
        Ok(Node { kind: NodeKind::Unary { op, operand: Box::new(operand) }, span })
    }

    fn postfix(&mut self) -> Result<Node, SyntaxError> {
        let mut n = self.primary()?;
        while self.eat("[") {
            let hi = self.int("a bit number")?;
            let kind = if self.eat(":") {
                let lo = self.int("a bit number")?;
                NodeKind::Bits { value: Box::new(n), hi, lo }
            } else {
                NodeKind::Bit { value: Box::new(n), bit: hi }
            };
            let close = self.expect("]")?;
            let start = match &kind {
                NodeKind::Bit { value, .. } | NodeKind::Bits { value, .. } => value.span.start,
                _ => unreachable!(),
            };
            n = Node { kind, span: start..close.end };
        }
        Ok(n)
    }

    fn int(&mut self, what: &str) -> Result<(u64, Span), SyntaxError> {
        match self.toks.get(self.pos).cloned() {
            Some((Tok::Int(v), span)) => {
                self.pos += 1;
                Ok((v, span))
            }
            _ => self.err(format!("expected {what}")),
        }
    }

    fn set(&mut self) -> Result<Vec<(u64, u64, Span)>, SyntaxError> {
        self.expect("{")?;
        let mut set = Vec::new();
        loop {
            let (lo, span) = self.int("an integer")?;
            if self.eat("..=") {
                let (hi, end) = self.int("the range's last integer")?;
                if hi < lo {
                    return Err(SyntaxError { span: span.start..end.end, message: "empty range".into() });
                }
                set.push((lo, hi, span.start..end.end));
            } else {
                set.push((lo, lo, span));
            }
            if self.eat("}") {
                return Ok(set);
            }
            self.expect(",")?;
        }
    }

    fn primary(&mut self) -> Result<Node, SyntaxError> {
        let Some((tok, span)) = self.toks.get(self.pos).cloned() else {
            return self.err("expected an expression");
        };
        match tok {
            Tok::Int(v) => {
                self.pos += 1;
                Ok(Node { kind: NodeKind::Int(v), span })
            }
            Tok::Punct("(") => {
                self.pos += 1;
                let inner = self.expr()?;
                let close = self.expect(")")?;
                Ok(Node { kind: inner.kind, span: span.start..close.end })
            }
            Tok::Ident(word) => {
                self.pos += 1;
                if word == "true" || word == "false" {
                    return Ok(Node { kind: NodeKind::Bool(word == "true"), span });
                }
                let first = Ident { text: word, span: span.clone() };
                if self.eat("(") {
                    let mut args = Vec::new();
                    if !self.eat(")") {
                        loop {
                            args.push(self.expr()?);
                            if self.eat(")") {
                                break;
                            }
                            self.expect(",")?;
                        }
                    }
                    let end = self.toks[self.pos - 1].1.end;
                    return Ok(Node { kind: NodeKind::Call { name: first, args }, span: span.start..end });
                }
                let mut parts = vec![first];
                while self.eat(".") {
                    match self.toks.get(self.pos).cloned() {
                        Some((Tok::Ident(w), s)) => {
                            self.pos += 1;
                            parts.push(Ident { text: w, span: s });
                        }
                        _ => return self.err("expected a name after `.`"),
                    }
                }
                let end = parts.last().unwrap().span.end;
                Ok(Node { kind: NodeKind::Name(parts), span: span.start..end })
            }
            Tok::Punct(p) => self.err(format!("expected an expression, found `{p}`")),
        }
    }
}
