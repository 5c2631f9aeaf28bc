//! Feature-gate expressions: capability names combined with `|` (any), `&` (all) and parentheses.
//!
//! `entry.load_ia32_pat | exit.save_ia32_pat` — `&` binds tighter than `|`.

use std::ops::Range;

/// A condition over terms `C`: capability names as parsed, [`CapId`](crate::model::CapId)s in the
/// model (a field's `gate`, an MSR's `requires`), or copy-set terms (capabilities and predicates).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Gate<C> {
    /// One term.
    Cap(C),
    /// True when any of these is (`a | b`); the parser builds it with at least two.
    Any(Vec<Gate<C>>),
    /// True when all of these are (`a & b`); the parser builds it with at least two.
    All(Vec<Gate<C>>),
}

impl<C> Gate<C> {
    /// The gate's value when `has` tells each term's; stops at the first term that decides it.
    pub fn eval(&self, has: &mut impl FnMut(&C) -> bool) -> bool {
        match self {
            Gate::Cap(c) => has(c),
            Gate::Any(gs) => gs.iter().any(|g| g.eval(has)),
            Gate::All(gs) => gs.iter().all(|g| g.eval(has)),
        }
    }

    /// Resolve names; `f` reports unknown names and returns None for them. Every term is tried,
    /// so one pass reports every unknown name; the result is None if any failed.
    pub(crate) fn try_map<D>(&self, f: &mut impl FnMut(&C) -> Option<D>) -> Option<Gate<D>> {
        Some(match self {
            Gate::Cap(c) => Gate::Cap(f(c)?),
            Gate::Any(gs) => Gate::Any(map_all(gs, f)?),
            Gate::All(gs) => Gate::All(map_all(gs, f)?),
        })
    }

    /// Every term, left to right, repeated as often as it occurs.
    pub fn caps(&self) -> Vec<&C> {
        match self {
            Gate::Cap(c) => vec![c],
            Gate::Any(gs) | Gate::All(gs) => gs.iter().flat_map(|g| g.caps()).collect(),
        }
    }

    /// Render with a name function, fully parenthesised where needed.
    pub fn render(&self, name: &impl Fn(&C) -> String) -> String {
        match self {
            Gate::Cap(c) => name(c),
            Gate::Any(gs) => gs.iter().map(|g| g.render(name)).collect::<Vec<_>>().join(" | "),
            Gate::All(gs) => gs
                .iter()
                .map(|g| match g {
                    Gate::Any(_) => format!("({})", g.render(name)),
                    _ => g.render(name),
                })
                .collect::<Vec<_>>()
                .join(" & "),
        }
    }
}

fn map_all<C, D>(gs: &[Gate<C>], f: &mut impl FnMut(&C) -> Option<D>) -> Option<Vec<Gate<D>>> {
    // Map every element (so every unknown name is reported), then fail if any failed.
    let mapped: Vec<Option<Gate<D>>> = gs.iter().map(|g| g.try_map(f)).collect();
    mapped.into_iter().collect()
}

/// A capability name with its byte range inside the expression text.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct Name {
    pub(crate) text: String,
    /// Where the name is in the expression, so that an unknown one is reported at its bytes.
    pub(crate) span: Range<usize>,
}

/// A syntax error at a byte range of the expression.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct SyntaxError {
    pub(crate) span: Range<usize>,
    pub(crate) message: String,
}

/// Parse a gate expression: names of ASCII letters, digits, `_` and `.`, spaces between tokens.
pub(crate) fn parse(text: &str) -> Result<Gate<Name>, SyntaxError> {
    let mut p = Parser { text, pos: 0 };
    let g = p.any()?;
    p.skip_ws();
    if p.pos < text.len() {
        return Err(p.err(p.pos..text.len(), "unexpected text after the gate expression"));
    }
    Ok(g)
}

struct Parser<'a> {
    text: &'a str,
    pos: usize,
}

impl Parser<'_> {
    fn err(&self, span: Range<usize>, message: &str) -> SyntaxError {
        SyntaxError { span, message: message.to_string() }
    }
    fn skip_ws(&mut self) {
        while self.text[self.pos..].starts_with(' ') {
            self.pos += 1;
        }
    }
    fn eat(&mut self, c: char) -> bool {
        self.skip_ws();
        if self.text[self.pos..].starts_with(c) {
            self.pos += 1;
            true
        } else {
            false
        }
    }
    fn any(&mut self) -> Result<Gate<Name>, SyntaxError> {
        let mut terms = vec![self.all()?];
        while self.eat('|') {
            terms.push(self.all()?);
        }
        Ok(if terms.len() == 1 { terms.pop().unwrap() } else { Gate::Any(terms) })
    }
    fn all(&mut self) -> Result<Gate<Name>, SyntaxError> {
        let mut terms = vec![self.atom()?];
        while self.eat('&') {
            terms.push(self.atom()?);
        }
        Ok(if terms.len() == 1 { terms.pop().unwrap() } else { Gate::All(terms) })
    }
    fn atom(&mut self) -> Result<Gate<Name>, SyntaxError> {
        if self.eat('(') {
            let g = self.any()?;
            if !self.eat(')') {
                return Err(self.err(self.pos..self.pos + 1, "expected `)`"));
            }
            return Ok(g);
        }
        self.skip_ws();
        let start = self.pos;
        let len = self.text[start..]
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '.'))
            .unwrap_or(self.text.len() - start);
        if len == 0 {
            let end = (start + 1).min(self.text.len()).max(start);
            return Err(self.err(start..end, "expected a capability name such as `proc2.enable_ept`"));
        }
        self.pos += len;
        Ok(Gate::Cap(Name { text: self.text[start..self.pos].to_string(), span: start..self.pos }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(g: &Gate<Name>) -> String {
        g.render(&|n: &Name| n.text.clone())
    }

    #[test]
    fn precedence_and_parentheses() {
        assert_eq!(names(&parse("a | b & c").unwrap()), "a | b & c");
        assert_eq!(names(&parse("(a | b) & c").unwrap()), "(a | b) & c");
        let g = parse("a.x | b.y").unwrap();
        let mut has = |n: &Name| n.text == "b.y";
        assert!(g.eval(&mut has));
        let g = parse("a.x & b.y").unwrap();
        assert!(!g.eval(&mut has));
    }

    #[test]
    fn errors_are_located() {
        let e = parse("a | ").unwrap_err();
        assert_eq!(e.span.start, 4);
        let e = parse("a b").unwrap_err();
        assert_eq!(e.span, 2..3);
        let e = parse("(a | b").unwrap_err();
        assert!(e.message.contains(')'));
    }
}
