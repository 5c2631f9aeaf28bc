//! checks.toml: facts, defines and VM-entry check rules, type-checked against the fields,
//! capabilities and MSRs. Every error is located in the expression text it concerns.

use std::collections::{HashMap, HashSet};

use super::{duplicate, resolve_gate};
use crate::checks::parse;
use crate::checks::typeck::{self, Env, Origin, TypeError};
use crate::diag::{Diagnostics, SourceFile};
use crate::model::Schema;
use crate::model::expr::{IntTy, Ty};
use crate::model::syntax::{Node, Span};
use crate::model::{Checks, Define, Fact, Outcome, Rule, Segment, Tier};
use crate::raw::{self, NoHead, RawDefine, RawFact, RawRule, S};

pub(super) fn load(file: &SourceFile, schema: &mut Schema, diags: &mut Diagnostics) {
    let mut raw = raw::parse_file::<NoHead>(file, &["fact", "define", "rule"], diags);
    let facts: Vec<RawFact> = raw::entries(file, &mut raw, "fact", diags);
    let defines: Vec<RawDefine> = raw::entries(file, &mut raw, "define", diags);
    let rules: Vec<RawRule> = raw::entries(file, &mut raw, "rule", diags);
    let mut checks = Checks::default();

    let mut names = HashMap::new();
    for f in &facts {
        if duplicate(file, &mut names, &f.name, "name", diags) || !snake(file, &f.name, "fact", diags) {
            continue;
        }
        let ty = match f.ty.get_ref().as_str() {
            "bool" => Ty::Bool,
            t => match IntTy::parse(t) {
                Some(i) => Ty::Int(i),
                None => {
                    let msg =
                        format!("unknown fact type `{t}`: expected \"bool\", \"u8\", \"u16\", \"u32\" or \"u64\"");
                    diags.push(file.error(f.ty.span(), msg));
                    continue;
                }
            },
        };
        checks.facts.push(Fact { name: f.name.get_ref().clone(), ty, doc: f.doc.get_ref().clone() });
    }

    // Defines: names share the facts' namespace; bodies are parsed here, typed where used.
    let mut define_bases = Vec::new();
    let mut broken = Vec::new();
    for d in &defines {
        if duplicate(file, &mut names, &d.name, "name", diags) || !snake(file, &d.name, "define", diags) {
            continue;
        }
        if typeck::BUILTINS.contains(&d.name.get_ref().as_str()) {
            diags.push(file.error(d.name.span(), format!("`{}` is a built-in function", d.name.get_ref())));
            continue;
        }
        let mut params = HashMap::new();
        let mut ok = true;
        for p in &d.params {
            ok &= !duplicate(file, &mut params, p, "parameter", diags) && snake(file, p, "parameter", diags);
        }
        let base = string_base(file, d.expr.span());
        let body = parse_expr(file, &d.expr, base, diags);
        let (Some(body), true) = (body, ok) else {
            broken.push(d.name.get_ref().clone());
            continue;
        };
        define_bases.push(base);
        checks.defines.push(Define {
            name: d.name.get_ref().clone(),
            params: d.params.iter().map(|p| p.get_ref().clone()).collect(),
            body,
            text: d.expr.get_ref().clone(),
            doc: d.doc.get_ref().clone(),
        });
    }

    let mut seen = HashSet::new();
    let mut rule_names = HashMap::new();
    let mut last_tier: Option<(Tier, String)> = None;
    for (declaration, r) in rules.iter().enumerate() {
        if duplicate(file, &mut rule_names, &r.name, "rule", diags) || !snake(file, &r.name, "rule", diags) {
            continue;
        }
        let outcome = Outcome::parse(r.outcome.get_ref());
        let Some(tier) = outcome.and_then(Outcome::tier) else {
            diags.push(file.error(r.outcome.span(), format!("unknown outcome `{}`", r.outcome.get_ref())).with_note(
                "expected VMfailInvalid, VMfailValid(4|5|26) (26.1), VMfailValid(7) (controls), VMfailValid(8) (host state), exit(33, QUALIFICATION) (guest state) or exit(34) (MSR loading)",
            ));
            continue;
        };
        let outcome = outcome.unwrap();
        let section = r.section.get_ref();
        let valid_section =
            !section.is_empty() && section.split('.').all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
        if !valid_section {
            diags.push(file.error(r.section.span(), format!("section `{section}` is not a number like \"26.2.1.1\"")));
        } else if !tier.sections().iter().any(|p| section == p || section.starts_with(&format!("{p}."))) {
            diags.push(
                file.error(
                    r.section.span(),
                    format!("section {section} does not check {} ({})", tier.name(), outcome.text()),
                )
                .with_note(format!(
                    "{} checks are in section {}",
                    tier.name(),
                    tier.sections().join(", ")
                )),
            );
        }
        if let Some((last, name)) = &last_tier
            && tier.rank() < last.rank()
        {
            diags.push(
                file.error(r.outcome.span(), format!("a {} check after the {} check `{name}`", tier.name(), last.name()))
                    .with_note("rules are checked in file order: list them in the SDM's tiers (basic, controls and host state, guest state, MSR loading)"),
            );
        }
        last_tier = Some((tier, r.name.get_ref().clone()));
        if r.reference.get_ref().is_empty() {
            diags.push(file.error(r.reference.span(), "a rule names the reference row it comes from"));
        }
        let kvm_restore = match (&r.kvm, &r.kvm_restore) {
            (None, Some(k)) => {
                diags.push(file.error(k.span(), "`kvm_restore` needs `kvm` (the function that checks the rule)"));
                false
            }
            (Some(_), k) => k.as_ref().is_none_or(|k| *k.get_ref()),
            (None, None) => false,
        };
        let gate = match &r.gate {
            Some(g) => match resolve_gate(file, g, schema, diags) {
                Some(g) => Some(g),
                None => continue,
            },
            None => None,
        };
        let segments: Vec<Option<Segment>> = match &r.segments {
            None => vec![None],
            Some(list) => {
                let mut out = Vec::new();
                for s in list {
                    match Segment::parse(s.get_ref()) {
                        Some(g) if out.contains(&Some(g)) => {
                            diags.push(file.error(s.span(), format!("segment {} is listed twice", s.get_ref())))
                        }
                        Some(g) => out.push(Some(g)),
                        None => diags.push(file.error(
                            s.span(),
                            format!("unknown segment `{}`: expected ES, CS, SS, DS, FS, GS, LDTR or TR", s.get_ref()),
                        )),
                    }
                }
                if list.is_empty() {
                    diags.push(file.error(r.name.span(), "`segments` is empty"));
                }
                out
            }
        };
        let base = string_base(file, r.check.span());
        let Some(node) = parse_expr(file, &r.check, base, diags) else { continue };
        let env = Env { schema, facts: &checks.facts, defines: &checks.defines, broken: &broken };
        for segment in segments {
            match typeck::check_rule(&env, &node, segment, tier == Tier::MsrLoad, gate.as_ref()) {
                Ok(check) => {
                    let name = match segment {
                        Some(s) => format!("{}_{}", r.name.get_ref(), s.name().to_ascii_lowercase()),
                        None => r.name.get_ref().clone(),
                    };
                    if segment.is_some() && rule_names.contains_key(&name) {
                        diags.push(file.error(r.name.span(), format!("rule instance `{name}` is already declared")));
                    }
                    checks.rules.push(Rule {
                        name,
                        declaration,
                        segment,
                        reference: r.reference.get_ref().clone(),
                        section: section.clone(),
                        outcome,
                        tier,
                        gate: gate.clone(),
                        check,
                        text: r.check.get_ref().clone(),
                        doc: r.doc.get_ref().clone(),
                        kvm: r.kvm.as_ref().map(|k| k.get_ref().clone()),
                        kvm_restore,
                    });
                }
                Err(errors) => {
                    for e in errors {
                        report(file, base, &define_bases, &checks.defines, r, &e, &mut seen, diags);
                    }
                }
            }
        }
    }
    for (i, _) in checks.defines.iter().enumerate() {
        let env = Env { schema, facts: &checks.facts, defines: &checks.defines, broken: &broken };
        for e in typeck::check_define_names(&env, i) {
            let at = define_bases[i];
            push_once(file, &mut seen, at, &e, diags, None);
        }
    }
    // Declarations are numbered over the file; renumber over the loaded ones.
    let mut map = HashMap::new();
    for r in &mut checks.rules {
        let next = map.len();
        r.declaration = *map.entry(r.declaration).or_insert(next);
    }
    schema.checks = checks;
}

#[allow(clippy::too_many_arguments)]
fn report(
    file: &SourceFile,
    base: usize,
    define_bases: &[usize],
    defines: &[Define],
    r: &RawRule,
    e: &TypeError,
    seen: &mut HashSet<(usize, usize, String)>,
    diags: &mut Diagnostics,
) {
    let (at, note) = match e.origin {
        Origin::Check => (base, None),
        Origin::Define(i) => {
            (define_bases[i], Some(format!("in define `{}`, expanded by rule `{}`", defines[i].name, r.name.get_ref())))
        }
    };
    push_once(file, seen, at, e, diags, note);
}

/// Errors inside a define would repeat for every rule using it: report each once.
fn push_once(
    file: &SourceFile,
    seen: &mut HashSet<(usize, usize, String)>,
    at: usize,
    e: &TypeError,
    diags: &mut Diagnostics,
    note: Option<String>,
) {
    let span = (at + e.span.start)..(at + e.span.end);
    if !seen.insert((span.start, span.end, e.message.clone())) {
        return;
    }
    let mut d = file.error(span, e.message.clone());
    for n in e.notes.iter().cloned().chain(note) {
        d = d.with_note(n);
    }
    diags.push(d);
}

fn parse_expr(file: &SourceFile, text: &S<String>, base: usize, diags: &mut Diagnostics) -> Option<Node> {
    match parse::parse(text.get_ref()) {
        Ok(n) => Some(n),
        Err(e) => {
            let span: Span = (base + e.span.start)..(base + e.span.end);
            diags.push(file.error(span, format!("invalid expression: {}", e.message)));
            None
        }
    }
}

/// Where the text of a string value starts in the file: after `"`, `'`, or `"""`/`'''` and the
/// newline TOML trims right after them. Expressions hold no escapes, so offsets map one to one.
fn string_base(file: &SourceFile, span: Span) -> usize {
    let rest = &file.text[span.start.min(file.text.len())..];
    if rest.starts_with("\"\"\"") || rest.starts_with("'''") {
        let after = span.start + 3;
        let tail = &file.text[after.min(file.text.len())..];
        if tail.starts_with("\r\n") {
            after + 2
        } else if tail.starts_with('\n') {
            after + 1
        } else {
            after
        }
    } else {
        span.start + 1
    }
}

fn snake(file: &SourceFile, name: &S<String>, what: &str, diags: &mut Diagnostics) -> bool {
    let n = name.get_ref();
    let ok = n.starts_with(|c: char| c.is_ascii_lowercase())
        && n.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if !ok {
        diags.push(file.error(name.span(), format!("{what} name `{n}` must be snake_case")));
    }
    ok
}
