//! exits.toml (basic exit reasons and exit-information bitfields) and instruction_errors.toml.

use std::collections::HashMap;

use super::fields::valid_field_name;
use super::{duplicate, uint};
use crate::diag::{Diagnostics, SourceFile};
use crate::encoding::Width;
use crate::model::{Bitfield, Bits, Decode, ExitReason, InstructionError, NamedValue, Schema};
use crate::raw::{self, NoHead, RawBitfield, RawBits, RawInstructionError, RawReason, S};

/// Load exits.toml; runs after fields.toml (bitfields name the fields they decode).
pub(super) fn load(file: &SourceFile, schema: &mut Schema, diags: &mut Diagnostics) {
    let mut raw = raw::parse_file::<NoHead>(file, &["reason", "bitfield"], diags);
    let reasons: Vec<RawReason> = raw::entries(file, &mut raw, "reason", diags);
    let bitfields: Vec<RawBitfield> = raw::entries(file, &mut raw, "bitfield", diags);

    let mut names = HashMap::new();
    let mut enums = HashMap::new();
    for b in &bitfields {
        if !duplicate(file, &mut names, &b.name, "bitfield", diags) {
            check_snake(file, &b.name, "bitfield name", diags);
        }
        if let Some(bf) = bitfield(file, b, schema, &mut enums, diags) {
            schema.bitfields.push(bf);
        }
    }

    let mut names = HashMap::new();
    let mut numbers = HashMap::new();
    for r in &reasons {
        let mut ok = !duplicate(file, &mut names, &r.name, "exit reason", diags);
        ok &= check_upper(file, &r.name, "exit reason", diags);
        let number = uint(file, &r.number, u16::MAX as u64, "exit reason number", diags);
        if let Some(n) = number
            && let Some(first) = numbers.insert(n, r.name.get_ref().clone())
        {
            diags.push(file.error(r.number.span(), format!("exit reason {n} is already `{first}`")));
            ok = false;
        }
        let qualification = r.qualification.as_ref().and_then(|q| {
            let found = schema.bitfields.iter().position(|b| &b.name == q.get_ref());
            let exit_qualification = schema.field("EXIT_QUALIFICATION").map(|f| f.encoding);
            match found {
                None if !names_bitfield(&bitfields, q) => {
                    diags.push(
                        file.error(q.span(), format!("unknown bitfield `{}`", q.get_ref()))
                            .with_note("declare it as a [[bitfield]] of EXIT_QUALIFICATION in exits.toml"),
                    );
                    ok = false;
                }
                Some(b)
                    if !schema.bitfields[b]
                        .fields
                        .iter()
                        .any(|&f| Some(schema.fields[f].encoding) == exit_qualification) =>
                {
                    diags.push(
                        file.error(q.span(), format!("bitfield `{}` does not decode EXIT_QUALIFICATION", q.get_ref())),
                    );
                    ok = false;
                }
                _ => {}
            }
            found
        });
        if let (true, Some(number)) = (ok, number) {
            schema.reasons.push(ExitReason {
                number: number as u16,
                name: r.name.get_ref().clone(),
                doc: r.doc.get_ref().clone(),
                qualification,
            });
        }
    }
    schema.reasons.sort_by_key(|r| r.number);
}

/// A bitfield declared (and rejected) in the file: a reason naming it gets no second error.
fn names_bitfield(bitfields: &[RawBitfield], name: &S<String>) -> bool {
    bitfields.iter().any(|b| b.name.get_ref() == name.get_ref())
}

fn bitfield(
    file: &SourceFile,
    b: &RawBitfield,
    schema: &Schema,
    enums: &mut HashMap<String, std::ops::Range<usize>>,
    diags: &mut Diagnostics,
) -> Option<Bitfield> {
    let before = diags.len();
    let mut fields = Vec::new();
    let mut width: Option<(u32, &S<String>)> = None;
    if b.fields.get_ref().is_empty() {
        diags.push(file.error(b.fields.span(), "a bitfield decodes at least one field"));
    }
    for name in b.fields.get_ref() {
        let Some(id) = schema.fields.iter().position(|f| &f.name == name.get_ref()) else {
            diags.push(file.error(name.span(), format!("unknown field `{}`", name.get_ref())));
            continue;
        };
        let bits = match schema.fields[id].width {
            Width::W16 => 16,
            Width::W32 => 32,
            Width::W64 | Width::Natural => 64,
        };
        match width {
            Some((w, first)) if w != bits => diags.push(
                file.error(name.span(), format!("`{}` has {bits} bits, `{}` {w}", name.get_ref(), first.get_ref()))
                    .with_note("every field a bitfield decodes has the same width"),
            ),
            Some(_) => {}
            None => width = Some((bits, name)),
        }
        fields.push(id);
    }
    let width = width.map_or(64, |(w, _)| w);
    let mut out: Vec<(Bits, &RawBits)> = Vec::new();
    let mut names = HashMap::new();
    for raw in &b.bits {
        if duplicate(file, &mut names, &raw.name, "bit range", diags) {
            continue;
        }
        if check_snake(file, &raw.name, "bit range name", diags)
            && RESERVED_NAMES.contains(&raw.name.get_ref().as_str())
        {
            diags.push(file.error(raw.name.span(), format!("`{}` cannot name a bit range", raw.name.get_ref())));
        }
        let Some(bits) = range(file, raw, width, diags) else { continue };
        if let Some((other, _)) = out.iter().find(|(o, _)| o.mask() & bits.mask() != 0) {
            diags.push(
                file.error(
                    raw.bits.span(),
                    format!("bits {} overlap `{}` (bits {})", bits.range_text(), other.name, other.range_text()),
                )
                .with_note(format!("declared at line {}", file.error(other_span(&out, &other.name), "").line)),
            );
            continue;
        }
        let Some(decode) = decode(file, raw, &bits, enums, diags) else { continue };
        out.push((Bits { decode, ..bits }, raw));
    }
    (diags.len() == before).then(|| Bitfield {
        name: b.name.get_ref().clone(),
        doc: b.doc.get_ref().clone(),
        fields,
        width,
        bits: out.into_iter().map(|(b, _)| b).collect(),
    })
}

fn other_span(out: &[(Bits, &RawBits)], name: &str) -> std::ops::Range<usize> {
    out.iter().find(|(b, _)| b.name == name).map_or(0..0, |(_, r)| r.bits.span())
}

/// Generated method names a bit range may not take (`name()` and `with_name()` are its accessors).
const RESERVED_NAMES: &[&str] = &[
    "bits",
    "from_bits",
    "as",
    "async",
    "await",
    "box",
    "break",
    "const",
    "continue",
    "crate",
    "do",
    "dyn",
    "else",
    "enum",
    "extern",
    "false",
    "final",
    "fn",
    "for",
    "gen",
    "if",
    "impl",
    "in",
    "let",
    "loop",
    "macro",
    "match",
    "mod",
    "move",
    "mut",
    "override",
    "priv",
    "pub",
    "ref",
    "return",
    "self",
    "static",
    "struct",
    "super",
    "trait",
    "true",
    "try",
    "type",
    "typeof",
    "unsafe",
    "unsized",
    "use",
    "virtual",
    "where",
    "while",
    "yield",
];

/// "hi:lo" or "n", within the bitfield's width.
fn range(file: &SourceFile, raw: &RawBits, width: u32, diags: &mut Diagnostics) -> Option<Bits> {
    let text = raw.bits.get_ref();
    let parse = |s: &str| s.trim().parse::<u32>().ok();
    let (hi, lo) = match text.split_once(':') {
        Some((h, l)) => (parse(h), parse(l)),
        None => (parse(text), parse(text)),
    };
    let span = raw.bits.span();
    let (Some(hi), Some(lo)) = (hi, lo) else {
        diags.push(file.error(span, format!("bits `{text}` must be \"HI:LO\" or one bit number, e.g. \"15:0\"")));
        return None;
    };
    if hi < lo {
        diags.push(file.error(span, format!("bits `{text}`: the high bit comes first (\"{lo}:{hi}\")")));
        return None;
    }
    if hi >= width {
        diags.push(file.error(span, format!("bit {hi} is outside the {width}-bit field")));
        return None;
    }
    Some(Bits { name: raw.name.get_ref().clone(), doc: raw.doc.get_ref().clone(), lo, hi, decode: Decode::Plain })
}

fn decode(
    file: &SourceFile,
    raw: &RawBits,
    bits: &Bits,
    enums: &mut HashMap<String, std::ops::Range<usize>>,
    diags: &mut Diagnostics,
) -> Option<Decode> {
    match (&raw.ty, &raw.enum_name, &raw.values) {
        (None, None, None) => Some(Decode::Plain),
        (Some(ty), None, None) if ty.get_ref() == "exit-reason" => {
            if bits.width() > 16 {
                diags.push(file.error(raw.bits.span(), "an exit reason has 16 bits; this range is wider"));
                return None;
            }
            Some(Decode::ExitReason)
        }
        (Some(ty), None, None) => {
            diags.push(file.error(ty.span(), format!("unknown type `{}`: expected \"exit-reason\"", ty.get_ref())));
            None
        }
        (None, Some(name), Some(values)) => {
            let dup = duplicate(file, enums, name, "enum", diags);
            if !valid_type_name(name.get_ref()) {
                diags.push(file.error(name.span(), format!("enum name `{}` must be UpperCamelCase", name.get_ref())));
                return None;
            }
            let values = named_values(file, values, bits, diags)?;
            (!dup).then(|| Decode::Values { name: name.get_ref().clone(), values })
        }
        (None, Some(name), None) => {
            diags.push(file.error(name.span(), "an enum needs `values`"));
            None
        }
        (None, None, Some(values)) => {
            diags.push(file.error(values.span(), "named values need `enum`, the name of their Rust type"));
            None
        }
        (Some(ty), ..) => {
            diags.push(file.error(ty.span(), "`type` and `enum`/`values` exclude each other"));
            None
        }
    }
}

fn named_values(
    file: &SourceFile,
    values: &S<Vec<raw::RawValue>>,
    bits: &Bits,
    diags: &mut Diagnostics,
) -> Option<Vec<NamedValue>> {
    let before = diags.len();
    if values.get_ref().is_empty() {
        diags.push(file.error(values.span(), "`values` is empty"));
    }
    let max = u64::MAX >> (64 - bits.width());
    let mut names = HashMap::new();
    let mut seen: HashMap<u64, String> = HashMap::new();
    let mut out = Vec::new();
    for v in values.get_ref() {
        if !duplicate(file, &mut names, &v.name, "value", diags) {
            check_snake(file, &v.name, "value name", diags);
        }
        let Some(n) = uint(file, &v.value, max, "value", diags) else {
            if let Some(d) = diags.0.last_mut() {
                d.notes.push(format!("`{}` is bits {}", bits.name, bits.range_text()));
            }
            continue;
        };
        if let Some(first) = seen.insert(n, v.name.get_ref().clone()) {
            diags.push(file.error(v.value.span(), format!("value {n} is already `{first}`")));
            continue;
        }
        out.push(NamedValue { name: v.name.get_ref().clone(), value: n, doc: v.doc.get_ref().clone() });
    }
    (diags.len() == before).then_some(out)
}

/// Load instruction_errors.toml.
pub(super) fn load_errors(file: &SourceFile, schema: &mut Schema, diags: &mut Diagnostics) {
    let mut raw = raw::parse_file::<NoHead>(file, &["error"], diags);
    let errors: Vec<RawInstructionError> = raw::entries(file, &mut raw, "error", diags);
    let mut names = HashMap::new();
    let mut numbers = HashMap::new();
    for e in &errors {
        let mut ok = !duplicate(file, &mut names, &e.name, "VM-instruction error", diags);
        ok &= check_upper(file, &e.name, "VM-instruction error", diags);
        let Some(n) = uint(file, &e.number, u32::MAX as u64, "VM-instruction error number", diags) else { continue };
        if n == 0 {
            diags.push(file.error(e.number.span(), "VM-instruction error 0 means no error: numbers start at 1"));
            continue;
        }
        if let Some(first) = numbers.insert(n, e.name.get_ref().clone()) {
            diags.push(file.error(e.number.span(), format!("VM-instruction error {n} is already `{first}`")));
            continue;
        }
        if ok {
            schema.instruction_errors.push(InstructionError {
                number: n as u32,
                name: e.name.get_ref().clone(),
                doc: e.doc.get_ref().clone(),
            });
        }
    }
    schema.instruction_errors.sort_by_key(|e| e.number);
}

fn check_upper(file: &SourceFile, name: &S<String>, what: &str, diags: &mut Diagnostics) -> bool {
    let ok = valid_field_name(name.get_ref());
    if !ok {
        diags.push(file.error(name.span(), format!("{what} name `{}` must be UPPER_SNAKE_CASE", name.get_ref())));
    }
    ok
}

fn check_snake(file: &SourceFile, name: &S<String>, what: &str, diags: &mut Diagnostics) -> bool {
    let n = name.get_ref();
    let ok = n.starts_with(|c: char| c.is_ascii_lowercase())
        && n.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if !ok {
        diags.push(file.error(name.span(), format!("{what} `{n}` must be snake_case")));
    }
    ok
}

fn valid_type_name(name: &str) -> bool {
    name.starts_with(|c: char| c.is_ascii_uppercase()) && name.chars().all(|c| c.is_ascii_alphanumeric())
}
