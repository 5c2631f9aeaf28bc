//! Capability files: `{"0x480": "0x00d810000000002b", ...}`, MSR index to value, both hex strings,
//! exactly what `rdmsr` prints. A small strict parser, so that every mistake (an MSR the schema
//! does not declare, a key given twice, a value that is not 64-bit hex) is reported at its
//! line:column, in time linear in the text and memory bounded by the number of entries.

use std::collections::BTreeMap;
use std::fmt;

use crate::caps::Caps;
use crate::model::Schema;

/// A located mistake in a capability file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CapsFileError {
    /// 1-based line of the offending text.
    pub line: usize,
    /// 1-based column of the offending text, in characters.
    pub column: usize,
    /// What is wrong there, e.g. that the schema declares no such MSR.
    pub message: String,
}

/// `LINE:COLUMN: message`; the caller prefixes the file name.
impl fmt::Display for CapsFileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.line, self.column, self.message)
    }
}

impl std::error::Error for CapsFileError {}

impl Caps {
    /// Parse a capability file against `schema`: a JSON object from MSR index to value, both hex
    /// strings (e.g. `{"0x480": "0x00d810000000002b"}`), every index an MSR the schema declares.
    pub fn from_json(text: &str, schema: &Schema) -> Result<Caps, CapsFileError> {
        parse(text, schema)
    }
}

/// One `"key": "value"` pair with the position of its key.
struct Pair<'a> {
    key: &'a str,
    value: &'a str,
    at: usize,
    value_at: usize,
}

struct Parser<'a> {
    text: &'a str,
    pos: usize,
}

impl<'a> Parser<'a> {
    fn error(&self, at: usize, message: impl Into<String>) -> CapsFileError {
        let before = &self.text[..at.min(self.text.len())];
        let line = before.matches('\n').count() + 1;
        let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        CapsFileError { line, column, message: message.into() }
    }

    fn skip_ws(&mut self) {
        let rest = &self.text[self.pos..];
        self.pos += rest.len() - rest.trim_start_matches([' ', '\t', '\n', '\r']).len();
    }

    fn expect(&mut self, c: char, what: &str) -> Result<(), CapsFileError> {
        self.skip_ws();
        if self.text[self.pos..].starts_with(c) {
            self.pos += 1;
            Ok(())
        } else {
            Err(self.error(self.pos, format!("expected {what}")))
        }
    }

    fn peek(&mut self) -> Option<char> {
        self.skip_ws();
        self.text[self.pos..].chars().next()
    }

    /// A string without escapes (keys and values are hex numbers).
    fn string(&mut self, what: &str) -> Result<(&'a str, usize), CapsFileError> {
        self.skip_ws();
        let at = self.pos;
        if !self.text[at..].starts_with('"') {
            return Err(self.error(at, format!("expected {what} as a hex string")));
        }
        let body = &self.text[at + 1..];
        let Some(end) = body.find(['"', '\\', '\n']) else {
            return Err(self.error(at, "unterminated string"));
        };
        if !body[end..].starts_with('"') {
            return Err(self.error(at + 1 + end, "a hex string has no escapes or line breaks"));
        }
        self.pos = at + 1 + end + 1;
        Ok((&body[..end], at))
    }

    fn pairs(&mut self) -> Result<Vec<Pair<'a>>, CapsFileError> {
        self.expect('{', "a JSON object from MSR index to value, e.g. {\"0x480\": \"0x...\"}")?;
        let mut pairs = Vec::new();
        if self.peek() == Some('}') {
            self.pos += 1;
        } else {
            loop {
                let (key, at) = self.string("an MSR index (e.g. \"0x480\")")?;
                self.expect(':', "`:` after the MSR index")?;
                let (value, value_at) = self.string("the MSR value (e.g. \"0x00d810000000002b\")")?;
                pairs.push(Pair { key, value, at, value_at });
                match self.peek() {
                    Some(',') => self.pos += 1,
                    Some('}') => {
                        self.pos += 1;
                        break;
                    }
                    _ => return Err(self.error(self.pos, "expected `,` or `}`")),
                }
            }
        }
        if self.peek().is_some() {
            return Err(self.error(self.pos, "text after the object"));
        }
        Ok(pairs)
    }
}

fn parse_hex(s: &str) -> Option<u64> {
    let digits = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X"))?;
    if digits.is_empty() || digits.len() > 16 {
        return None;
    }
    u64::from_str_radix(digits, 16).ok()
}

/// Parse a capability file against `schema`: every key an MSR the schema declares, at most once.
fn parse(text: &str, schema: &Schema) -> Result<Caps, CapsFileError> {
    let mut p = Parser { text, pos: 0 };
    let pairs = p.pairs()?;
    let mut msrs: BTreeMap<u32, (u64, usize)> = BTreeMap::new();
    for pair in &pairs {
        let index = parse_hex(pair.key).and_then(|i| u32::try_from(i).ok()).ok_or_else(|| {
            p.error(pair.at, format!("MSR index \"{}\" is not a 32-bit hex number like \"0x480\"", pair.key))
        })?;
        let value = parse_hex(pair.value).ok_or_else(|| {
            p.error(pair.value_at, format!("value \"{}\" of MSR {index:#x} is not a 64-bit hex number", pair.value))
        })?;
        if !schema.msrs.iter().any(|m| m.index == index) {
            let known: Vec<String> = schema.msrs.iter().map(|m| format!("{:#x}", m.index)).collect();
            return Err(p.error(
                pair.at,
                format!("MSR {index:#x} is not a capability MSR of the schema ({})", known.join(", ")),
            ));
        }
        if let Some((_, first)) = msrs.insert(index, (value, pair.at)) {
            let first = p.error(first, "");
            return Err(p.error(pair.at, format!("MSR {index:#x} is given twice (first at line {})", first.line)));
        }
    }
    Ok(Caps::Msrs(msrs.into_iter().map(|(i, (v, _))| (i, v)).collect()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(text: &str) -> String {
        parse(text, &Schema::shipped().unwrap()).unwrap_err().to_string()
    }

    #[test]
    fn reads_rdmsr_output() {
        let caps = parse(
            "{\"0x480\": \"0x00d810000000002b\",\n \"0x48B\": \"0x02977fff00000000\"}",
            &Schema::shipped().unwrap(),
        );
        let Ok(Caps::Msrs(m)) = caps else { panic!("{caps:?}") };
        assert_eq!(m.get(&0x480), Some(&0x00d8_1000_0000_002b));
        assert_eq!(m.get(&0x48b), Some(&0x0297_7fff_0000_0000));
        assert_eq!(m.len(), 2);
    }

    #[test]
    fn every_mistake_is_located() {
        assert_eq!(err("[1]"), "1:1: expected a JSON object from MSR index to value, e.g. {\"0x480\": \"0x...\"}");
        assert_eq!(err("{\"480\": \"0x1\"}"), "1:2: MSR index \"480\" is not a 32-bit hex number like \"0x480\"");
        assert_eq!(err("{\"0x480\": 5}"), "1:11: expected the MSR value (e.g. \"0x00d810000000002b\") as a hex string");
        assert_eq!(
            err("{\"0x480\": \"0x1ffffffffffffffff\"}"),
            "1:11: value \"0x1ffffffffffffffff\" of MSR 0x480 is not a 64-bit hex number"
        );
        assert!(
            err("{\"0x480\": \"0x1\",\n \"0x4a0\": \"0x1\"}").starts_with("2:2: MSR 0x4a0 is not a capability MSR")
        );
        assert_eq!(
            err("{\"0x480\": \"0x1\",\n\n \"0x0480\": \"0x2\"}"),
            "3:2: MSR 0x480 is given twice (first at line 1)"
        );
        assert_eq!(err("{\"0x480\": \"0x1\"} x"), "1:18: text after the object");
        assert_eq!(err("{\"0x480\": \"0x1\" \"0x481\""), "1:17: expected `,` or `}`");
        assert_eq!(err("{\"0x48\\u0030\": \"0x1\"}"), "1:7: a hex string has no escapes or line breaks");
        assert_eq!(err("{\"0x480"), "1:2: unterminated string");
    }
}
