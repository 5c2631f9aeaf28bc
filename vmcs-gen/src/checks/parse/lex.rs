//! Tokens of the check expressions.

use super::{Span, SyntaxError};

#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Tok {
    Int(u64),
    Ident(String),
    Punct(&'static str),
}

const PUNCT: [&str; 28] = [
    "..=", "=>", "||", "&&", "==", "!=", "<=", ">=", "<<", ">>", "<", ">", "!", "~", "|", "^", "&", "+", "-", "*", "(",
    ")", "[", "]", "{", "}", ",", ":",
];

pub(super) fn tokenize(text: &str) -> Result<Vec<(Tok, Span)>, SyntaxError> {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        if c.is_ascii_whitespace() {
            i += 1;
            continue;
        }
        let start = i;
        if c.is_ascii_digit() {
            while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_') {
                i += 1;
            }
            let raw: String = text[start..i].chars().filter(|&c| c != '_').collect();
            let value = match raw.strip_prefix("0x").or_else(|| raw.strip_prefix("0X")) {
                Some(hex) => u64::from_str_radix(hex, 16),
                None => raw.parse(),
            };
            let Ok(value) = value else {
                return Err(SyntaxError { span: start..i, message: "not a 64-bit integer".into() });
            };
            out.push((Tok::Int(value), start..i));
            continue;
        }
        if c.is_ascii_alphabetic() || c == b'_' {
            while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_') {
                i += 1;
            }
            out.push((Tok::Ident(text[start..i].to_string()), start..i));
            continue;
        }
        if c == b'.' && !text[i..].starts_with("..=") {
            out.push((Tok::Punct("."), i..i + 1));
            i += 1;
            continue;
        }
        let Some(p) = PUNCT.iter().find(|p| text[i..].starts_with(**p)) else {
            let end = i + text[i..].chars().next().map_or(1, char::len_utf8);
            return Err(SyntaxError { span: i..end, message: format!("unexpected `{}`", &text[i..end]) });
        };
        out.push((Tok::Punct(p), i..i + p.len()));
        i += p.len();
    }
    Ok(out)
}
