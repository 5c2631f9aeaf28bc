//! Schema sources -> validated [`Schema`], reporting every error of the run at once.

mod caps;
mod checks;
mod copycheck;
mod copysets;
mod exits;
mod fields;
mod layouts;
mod lock;

use std::ops::Range;

use crate::compat;
use crate::diag::{Diagnostics, SourceFile};
use crate::gate::{self, Gate};
use crate::model::{CapId, Schema};
use crate::raw::S;
use crate::source::SchemaSources;

/// How strictly to load.
#[derive(Clone, Copy, Debug, Default)]
pub struct LoadOptions {
    /// Accept a released layout that has no lock yet (only `vmcs-gen lock` does this, to create
    /// the first lock). Drift against an existing lock is always an error.
    pub allow_missing_lock: bool,
    /// Skip the lock and step checks (for `vmcs-gen diff`, which reports those changes itself).
    pub skip_compat: bool,
}

impl Schema {
    /// Parse and validate a schema. On failure, every error found is returned.
    pub fn load(sources: &SchemaSources) -> Result<Schema, Diagnostics> {
        Schema::load_with(sources, LoadOptions::default())
    }

    /// [`Schema::load`] with options.
    pub fn load_with(sources: &SchemaSources, options: LoadOptions) -> Result<Schema, Diagnostics> {
        let mut diags = Diagnostics::default();
        let mut schema = Schema {
            sources: sources.files.iter().map(|f| format!("schema/{}", f.name)).collect(),
            files: sources.files.clone(),
            ..Schema::default()
        };
        for f in &sources.files {
            let known = matches!(
                f.name.as_str(),
                "fields.toml"
                    | "capabilities.toml"
                    | "copysets.toml"
                    | "checks.toml"
                    | "exits.toml"
                    | "instruction_errors.toml"
            ) || (f.name.starts_with("layouts/") && !f.name[8..].contains('/'))
                || (f.name.starts_with("locks/") && f.name.ends_with(".lock.toml"));
            if !known {
                diags.push(f.error(0..0, format!("unknown schema file `{}`", f.name)).with_note(
                    "a schema holds fields.toml, capabilities.toml, exits.toml, instruction_errors.toml, copysets.toml, checks.toml, layouts/*.toml and locks/*.lock.toml",
                ));
            }
        }
        // Each phase reads what the ones before it produced; a phase with errors ends the load, as
        // later checks would only echo them (a field that failed to load is "unknown" everywhere).
        let control_fields = match sources.file("capabilities.toml") {
            Some(f) => caps::load(f, &mut schema, &mut diags),
            None => {
                diags.push(missing("capabilities.toml"));
                Vec::new()
            }
        };
        if let (Some(f), true, true) = (sources.file("capabilities.toml"), schema.msrs.is_empty(), diags.is_empty()) {
            diags.push(f.error(0..0, "capabilities.toml declares no [[msr]]"));
        }
        stop_on_errors(&diags)?;
        // Names of fields that were declared but rejected: layouts mapping them get no second error.
        let mut rejected = None;
        match sources.file("fields.toml") {
            Some(f) => rejected = Some(fields::load(f, &mut schema, &mut diags)),
            None => diags.push(missing("fields.toml")),
        }
        if let (Some(f), true, true) = (sources.file("fields.toml"), schema.fields.is_empty(), diags.is_empty()) {
            diags.push(f.error(0..0, "fields.toml declares no [[field]]"));
        }
        stop_on_errors(&diags)?;
        if let Some(f) = sources.file("capabilities.toml") {
            let rejected = rejected.clone().unwrap_or_default();
            caps::resolve_control_fields(f, &control_fields, &rejected, &mut schema, &mut diags);
        }
        for (name, load) in [("exits.toml", exits::load as Loader), ("instruction_errors.toml", exits::load_errors)] {
            match sources.file(name) {
                Some(f) => load(f, &mut schema, &mut diags),
                None => diags.push(missing(name)),
            }
        }
        lock::load_all(sources, &mut schema, &mut diags);
        for f in sources.in_dir("layouts") {
            layouts::load(f, rejected.as_ref(), &mut schema, &mut diags);
        }
        // The compatibility pass, over the layouts and locks as loaded: each released layout
        // against its lock first; steps and orphaned locks relate layout files to each other.
        if !options.skip_compat {
            compat::check_locks(&schema, options.allow_missing_lock, &mut diags);
        }
        stop_on_errors(&diags)?;
        if !options.skip_compat {
            compat::check_steps(&schema, &mut diags);
        }
        compat::check_orphans(&schema, &mut diags);
        stop_on_errors(&diags)?;
        if let Some(f) = sources.file("copysets.toml") {
            copysets::load(f, &mut schema, &mut diags);
        }
        if let Some(f) = sources.file("checks.toml") {
            checks::load(f, &mut schema, &mut diags);
        }
        if diags.is_empty() { Ok(schema) } else { Err(diags) }
    }

    /// The schema shipped in the repository, as embedded when vmcs-gen was built
    /// ([`SchemaSources::embedded`]); the tests keep it free of errors.
    pub fn shipped() -> Result<Schema, Diagnostics> {
        Schema::load(&SchemaSources::embedded())
    }
}

type Loader = fn(&SourceFile, &mut Schema, &mut Diagnostics);

/// End the load at a phase that found errors, returning them all.
fn stop_on_errors(diags: &Diagnostics) -> Result<(), Diagnostics> {
    if diags.is_empty() { Ok(()) } else { Err(diags.clone()) }
}

fn missing(name: &str) -> crate::diag::Diagnostic {
    SourceFile::new(format!("schema/{name}"), "").error(0..0, format!("{name} is missing"))
}

/// The byte range of the text inside a quoted TOML string value (assumes a basic string).
fn inner(span: Range<usize>) -> Range<usize> {
    (span.start + 1)..span.end.saturating_sub(1).max(span.start + 1)
}

/// Parse and resolve a gate expression (capability names) written in a string value.
fn resolve_gate(file: &SourceFile, text: &S<String>, schema: &Schema, diags: &mut Diagnostics) -> Option<Gate<CapId>> {
    let hint = "declare it as a [[cap]] in capabilities.toml";
    resolve_expr(file, text, &|n| schema.cap(n), ("gate", "capability"), hint, diags)
}

/// Parse an `a | b & (c)` expression in a string value and resolve its names with `lookup`.
fn resolve_expr(
    file: &SourceFile,
    text: &S<String>,
    lookup: &dyn Fn(&str) -> Option<usize>,
    (expr, what): (&str, &str),
    hint: &str,
    diags: &mut Diagnostics,
) -> Option<Gate<usize>> {
    let base = inner(text.span()).start;
    let parsed = match gate::parse(text.get_ref()) {
        Ok(g) => g,
        Err(e) => {
            let span = (base + e.span.start)..(base + e.span.end);
            let message = e.message.replace("a capability name such as `proc2.enable_ept`", &format!("a {what} name"));
            diags.push(file.error(span, format!("invalid {expr}: {message}")));
            return None;
        }
    };
    parsed.try_map(&mut |name: &gate::Name| {
        let id = lookup(&name.text);
        if id.is_none() {
            let span = (base + name.span.start)..(base + name.span.end);
            diags.push(file.error(span, format!("{expr} names unknown {what} `{}`", name.text)).with_note(hint));
        }
        id
    })
}

/// A non-negative integer that must fit in `max`.
fn uint(file: &SourceFile, v: &S<i64>, max: u64, what: &str, diags: &mut Diagnostics) -> Option<u64> {
    let n = *v.get_ref();
    if n < 0 || n as u64 > max {
        diags.push(file.error(v.span(), format!("{what} {n} ({n:#x}) is out of range (0..={max})")));
        None
    } else {
        Some(n as u64)
    }
}

/// Report a duplicate name; returns true if `name` was seen before.
fn duplicate(
    file: &SourceFile,
    seen: &mut std::collections::HashMap<String, Range<usize>>,
    name: &S<String>,
    what: &str,
    diags: &mut Diagnostics,
) -> bool {
    if let Some(first) = seen.get(name.get_ref()) {
        let line = file.error(first.clone(), "").line;
        diags.push(
            file.error(name.span(), format!("duplicate {what} `{}`", name.get_ref()))
                .with_note(format!("first declared at line {line}")),
        );
        true
    } else {
        seen.insert(name.get_ref().clone(), name.span());
        false
    }
}
