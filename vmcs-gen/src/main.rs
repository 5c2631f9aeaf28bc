//! `vmcs-gen`: check the schema, show layouts and fields, compute VMCS_ENUM, generate code.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use vmcs_gen::source::{MAX_SCHEMA_FILE, read_bounded, read_text};
use vmcs_gen::{Caps, Schema, SchemaSources, report};

/// The largest capability file read: a JSON object of a few dozen MSRs is well below it.
const MAX_CAPS_FILE: u64 = 1 << 16;
/// The largest nested-state blob read: a VMX blob is at most the 128-byte header and two 4 KiB
/// areas (vmcs12, shadow vmcs12); one more page of margin gives longer blobs a clear refusal.
const MAX_STATE_BLOB: u64 = 128 + 3 * 4096;

#[derive(Parser)]
#[command(name = "vmcs-gen", version, about = "VMCS schema compiler for Rust hypervisors")]
struct Cli {
    /// Read the schema from this directory instead of the one embedded at build time.
    #[arg(long, global = true, value_name = "DIR")]
    schema: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Validate the schema and print a summary, or every error found.
    Check,
    /// Print a layout's members: offset, size, member, field, encodings.
    Layout {
        /// Layout name, e.g. vmcs12.
        name: String,
        #[arg(long)]
        json: bool,
    },
    /// List every field, or only those that exist for a capability set.
    Fields {
        /// JSON capability file: {"0x480": "0x...", ...} (MSR index -> value, hex strings).
        #[arg(long, value_name = "FILE")]
        caps: Option<PathBuf>,
        #[arg(long)]
        json: bool,
    },
    /// Print IA32_VMX_VMCS_ENUM for a capability set (default: every capability).
    Enum {
        #[arg(long, value_name = "FILE")]
        caps: Option<PathBuf>,
        /// Compute over a layout's mapped fields (as KVM does for vmcs12) instead of all fields.
        #[arg(long, value_name = "NAME")]
        layout: Option<String>,
    },
    /// Write the generated Rust sources into DIR, for reading.
    Generate {
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
    },
    /// Compare two layouts (names, or paths to layout .toml files): moved, added, removed members,
    /// and whether NEW can read what OLD wrote. Exits 1 when incompatible.
    Diff { old: String, new: String },
    /// Pin a released layout's current members in its lock file (schema/locks/NAME.lock.toml).
    Lock { name: String },
    /// KVM_GET/SET_NESTED_STATE blobs (VMX format): decode, or check against KVM's restore rules.
    #[command(subcommand)]
    State(StateCommand),
}

#[derive(Subcommand)]
enum StateCommand {
    /// Print the header and every vmcs12 (and shadow vmcs12) member by name, then the verdict of
    /// `state check`. Decodes rejected blobs too; fails only when the header is missing.
    Decode {
        file: PathBuf,
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        target: StateTarget,
    },
    /// Exit 0 if KVM_SET_NESTED_STATE would accept the blob, 1 with the rule that refuses it.
    Check {
        file: PathBuf,
        #[command(flatten)]
        target: StateTarget,
    },
}

/// The destination: its vmcs12 layout and the vCPU facts some rules need.
#[derive(Args)]
struct StateTarget {
    /// The vmcs12 layout of the kernel that reads the blob (a layout of the schema).
    #[arg(long, value_name = "NAME", default_value = "vmcs12")]
    layout: String,
    /// The guest CPUID does not advertise VMX.
    #[arg(long)]
    no_vmx: bool,
    /// The vCPU is in SMM.
    #[arg(long)]
    smm: bool,
    /// Enlightened VMCS is enabled on the vCPU.
    #[arg(long)]
    evmcs: bool,
    /// The guest MAXPHYADDR.
    #[arg(long, value_name = "BITS", default_value_t = 52)]
    maxphyaddr: u8,
    /// The IA32_VMX_* MSRs the vCPU gives L1 (a capability file): with it, a vmcs12 in guest mode
    /// is also checked as KVM's nested_vmx_check_restored_vmcs12 does (rule 22).
    #[arg(long, value_name = "FILE")]
    caps: Option<PathBuf>,
}

impl StateTarget {
    fn vcpu(&self) -> vmcs_nested_state::VcpuContext {
        vmcs_nested_state::VcpuContext {
            has_vmx: !self.no_vmx,
            in_smm: self.smm,
            evmcs_enabled: self.evmcs,
            maxphyaddr: self.maxphyaddr,
        }
    }
}

/// Output is collected, then written at once: a closed pipe (EPIPE) ends the command quietly and a
/// full device (ENOSPC) with one line on stderr, both with a non-zero status, never a panic.
fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        // Help, version and usage errors: clap writes them, and its write may fail too.
        Err(e) => {
            return match e.print() {
                Ok(()) => ExitCode::from(e.exit_code() as u8),
                Err(w) => output_error(&w),
            };
        }
    };
    let mut out = String::new();
    let result = run(&cli, &mut out);
    let written = std::io::stdout().lock().write_all(out.as_bytes()).and_then(|()| std::io::stdout().flush());
    if let Err(e) = written {
        return output_error(&e);
    }
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(msg) => {
            if !msg.is_empty() {
                let _ = writeln!(std::io::stderr(), "{msg}");
            }
            ExitCode::FAILURE
        }
    }
}

/// A failed write of the output: quiet for a closed pipe, one line otherwise; never a success.
fn output_error(e: &std::io::Error) -> ExitCode {
    if e.kind() != std::io::ErrorKind::BrokenPipe {
        let _ = writeln!(std::io::stderr(), "error: cannot write the output: {e}");
    }
    ExitCode::FAILURE
}

fn run(cli: &Cli, out: &mut String) -> Result<(), String> {
    let mut sources = match &cli.schema {
        Some(dir) => {
            SchemaSources::from_dir(dir).map_err(|e| format!("error: cannot read schema {}: {e}", dir.display()))?
        }
        None => SchemaSources::embedded(),
    };
    // `diff` takes layout files too: they join the schema under their own names.
    let mut diff_names = Vec::new();
    if let Command::Diff { old, new } = &cli.command {
        for arg in [old, new] {
            diff_names.push(layout_arg(&mut sources, arg)?);
        }
    }
    let options = vmcs_gen::LoadOptions {
        allow_missing_lock: matches!(cli.command, Command::Lock { .. }),
        skip_compat: matches!(cli.command, Command::Diff { .. }),
    };
    let schema = Schema::load_with(&sources, options).map_err(|d| d.to_string())?;
    match &cli.command {
        Command::Check => out.push_str(&report::summary(&schema)),
        Command::Layout { name, json } => {
            let layout = find_layout(&schema, name)?;
            if *json {
                let _ = writeln!(out, "{}", pretty(&report::layout_json(&schema, layout)));
            } else {
                out.push_str(&report::layout_table(&schema, layout));
            }
        }
        Command::Fields { caps, json } => {
            let caps = read_caps(caps.as_deref(), &schema)?;
            let fields = schema.existing_fields(&caps);
            if *json {
                let _ = writeln!(out, "{}", pretty(&report::fields_json(&schema, &fields)));
            } else {
                out.push_str(&report::field_table(&schema, &fields));
            }
        }
        Command::Enum { caps, layout } => {
            let caps = read_caps(caps.as_deref(), &schema)?;
            let value = match layout {
                Some(name) => schema.layout_vmcs_enum(find_layout(&schema, name)?, &caps),
                None => schema.arch_vmcs_enum(&caps),
            };
            let _ = writeln!(out, "{value:#x}");
        }
        Command::Generate { out: dir } => {
            std::fs::create_dir_all(dir).map_err(|e| format!("error: cannot create {}: {e}", dir.display()))?;
            for a in vmcs_gen::emit::all(&schema) {
                let path = dir.join(&a.file);
                std::fs::write(&path, a.contents)
                    .map_err(|e| format!("error: cannot write {}: {e}", path.display()))?;
                let _ = writeln!(out, "wrote {}", path.display());
            }
        }
        Command::Diff { .. } => {
            let (text, compatible) =
                report::diff(find_layout(&schema, &diff_names[0])?, find_layout(&schema, &diff_names[1])?);
            out.push_str(&text);
            if !compatible {
                return Err(String::new());
            }
        }
        Command::Lock { name } => {
            let layout = find_layout(&schema, name)?;
            if !layout.released {
                return Err(format!("error: layout `{name}` is not released; set `released = true` first"));
            }
            // Without --schema: the directory the embedded schema came from, if it is still there.
            let dir = cli.schema.clone().unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("schema"));
            if !dir.join("fields.toml").is_file() {
                return Err(format!("error: no schema directory at {}; name one with --schema DIR", dir.display()));
            }
            let path = dir.join("locks").join(format!("{name}.lock.toml"));
            std::fs::write(&path, vmcs_gen::lock_text(layout))
                .map_err(|e| format!("error: cannot write {}: {e}", path.display()))?;
            let _ = writeln!(out, "pinned {} members of `{name}` in {}", layout.members.len(), path.display());
        }
        Command::State(cmd) => run_state(&schema, cmd, out)?,
    }
    Ok(())
}

fn run_state(schema: &Schema, cmd: &StateCommand, out: &mut String) -> Result<(), String> {
    let (StateCommand::Decode { file, target, .. } | StateCommand::Check { file, target }) = cmd;
    let layout = find_layout(schema, &target.layout)?;
    let shape = schema.nested_state_shape(layout).map_err(|e| format!("error: {e}"))?;
    let shown = file.display().to_string();
    let blob = read_bounded(file, MAX_STATE_BLOB).map_err(|e| format!("error: cannot read {shown}: {e}"))?;
    let checked = vmcs_nested_state::check(&blob, shape, &target.vcpu());
    let result = checked.map(|_| ());
    let verdict = vmcs_gen::state::verdict(&result);
    // Rule 22: the contents of a vmcs12 in guest mode, with the vCPU's capabilities.
    let contents = match (&checked, &target.caps) {
        (Ok(state), Some(caps)) if state.flags() & vmcs_nested_state::KVM_STATE_NESTED_GUEST_MODE != 0 => {
            let caps = read_caps(Some(caps), schema)?;
            let vmcs12 = state.vmcs12().unwrap_or(&[]);
            let c = vmcs_gen::state_contents::check(schema, layout, vmcs12, &caps, target.maxphyaddr)
                .map_err(|e| format!("error: {shown}: {e}"))?;
            Some(c)
        }
        _ => None,
    };
    let contents_line = match (&contents, &checked) {
        (Some(c), _) => Some(vmcs_gen::state_contents::text(schema, c)),
        (None, Ok(state)) if state.flags() & vmcs_nested_state::KVM_STATE_NESTED_GUEST_MODE != 0 => {
            Some("vmcs12 contents not checked (give --caps FILE: the IA32_VMX_* MSRs the vCPU gives L1)".to_string())
        }
        _ => None,
    };
    let refused = matches!(contents, Some(vmcs_gen::state_contents::Contents::Failed { .. }));
    match cmd {
        StateCommand::Check { .. } => {
            if result.is_err() {
                return Err(format!("{}: {verdict}", file.display()));
            }
            if refused {
                return Err(format!("{}: {}", file.display(), contents_line.unwrap_or_default()));
            }
            let _ = writeln!(out, "{}: {verdict}", file.display());
            if let Some(line) = contents_line {
                let _ = writeln!(out, "{}: {line}", file.display());
            }
        }
        StateCommand::Decode { json, .. } => {
            let state = vmcs_nested_state::read(&blob, shape)
                .map_err(|e| format!("error: {}: cannot decode: {e}", file.display()))?;
            if *json {
                let mut v = vmcs_gen::state::decode_json(schema, layout, &state, &result);
                if let (Some(c), Some(obj)) = (&contents, v.as_object_mut()) {
                    let j = match c {
                        vmcs_gen::state_contents::Contents::Passed { rules } => {
                            serde_json::json!({"accepted": true, "rules": rules})
                        }
                        vmcs_gen::state_contents::Contents::Failed { rule } => {
                            let r = &schema.checks.rules[*rule];
                            serde_json::json!({"accepted": false, "rule": r.name, "section": r.section, "reference": r.reference, "outcome": r.outcome.text(), "reason": r.doc})
                        }
                    };
                    obj.insert("vmcs12_checks".into(), j);
                }
                let _ = writeln!(out, "{}", pretty(&v));
            } else {
                out.push_str(&vmcs_gen::state::decode_text(schema, layout, &state, &result));
                if let Some(line) = contents_line {
                    let _ = writeln!(out, "{line}");
                }
            }
        }
    }
    Ok(())
}

/// A layout name, or a path to a layout file added to the sources; returns the layout's name.
fn layout_arg(sources: &mut SchemaSources, arg: &str) -> Result<String, String> {
    let path = Path::new(arg);
    if !arg.ends_with(".toml") {
        return Ok(arg.to_string());
    }
    let text = read_text(path, MAX_SCHEMA_FILE, arg).map_err(|e| format!("error: {e}"))?;
    let name = text
        .lines()
        .find_map(|l| l.strip_prefix("name = \"").and_then(|r| r.strip_suffix('"')))
        .ok_or_else(|| format!("error: {arg} has no top-level `name = \"...\"`"))?
        .to_string();
    let rel = format!("layouts/{}", path.file_name().unwrap_or_default().to_string_lossy());
    if sources.files.iter().any(|f| f.name == rel) {
        return Err(format!("error: {arg} has the same file name as a layout of the schema; rename it"));
    }
    sources.files.push(vmcs_gen::SourceFile::in_schema(rel, arg, text));
    Ok(name)
}

fn find_layout<'a>(schema: &'a Schema, name: &str) -> Result<&'a vmcs_gen::model::Layout, String> {
    schema.layout(name).ok_or_else(|| {
        let known: Vec<_> = schema.layouts.iter().map(|l| l.name.as_str()).collect();
        format!("error: no layout `{name}` (layouts: {})", known.join(", "))
    })
}

fn read_caps(path: Option<&Path>, schema: &Schema) -> Result<Caps, String> {
    let Some(path) = path else { return Ok(Caps::All) };
    let shown = path.display().to_string();
    let text = read_text(path, MAX_CAPS_FILE, &shown).map_err(|e| format!("error: {e}"))?;
    Caps::from_json(&text, schema).map_err(|e| format!("error: {shown}:{e}"))
}

fn pretty(v: &serde_json::Value) -> String {
    serde_json::to_string_pretty(v).unwrap_or_default()
}
