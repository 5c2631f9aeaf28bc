//! Bad input for every subcommand: devices, FIFOs, huge and sparse files, bytes that are not
//! UTF-8, closed or full standard output. Each run must end with a clear error and a non-zero
//! status, never a panic, within 2 s of CPU and 64 MiB (peak RSS, from wait4).
//!
//! The peak is measured by a probe: this test binary re-executed, small and fresh, which spawns
//! vmcs-gen and reports its wait4 figures. Spawned from the test process itself, vmcs-gen's
//! ru_maxrss would include the test process's own peak (Linux carries the old address space's
//! high-water mark over at exec, and std spawns with vfork). So the tests run under a plain
//! `main` (harness = false), which becomes the probe when asked to.

use std::io::{Read, Write};
use std::os::fd::{FromRawFd, OwnedFd};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use vmcs_test_support::TempDir;

const MAX_CPU_SECONDS: f64 = 2.0;
const MAX_RSS_KIB: i64 = 64 * 1024;
/// Set to a report path, it turns this binary into the probe.
const PROBE: &str = "VMCS_GEN_BAD_INPUT_PROBE";

struct Outcome {
    status: i32,
    stdout: String,
    stderr: String,
}

/// Where the child's standard output goes.
enum Out {
    Pipe,
    /// A pipe whose read end is already closed: every write fails with EPIPE.
    Closed,
    /// /dev/full: every write fails with ENOSPC.
    Full,
}

fn closed_pipe() -> Stdio {
    let mut fds = [0; 2];
    // SAFETY: pipe writes two fresh descriptors into `fds`, which are owned from here on.
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
    // SAFETY: both descriptors were just created and are not owned elsewhere.
    let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    drop(read);
    Stdio::from(write)
}

/// The probe: run the command in our arguments with our standard streams, and write its wait
/// status, peak RSS (KiB) and CPU time (us) to `report`.
fn probe(report: &Path) -> ! {
    let mut args = std::env::args_os().skip(1);
    let program = args.next().expect("probe: no command");
    let child = Command::new(program).args(args).env_remove(PROBE).spawn().expect("probe: spawn");
    let (mut status, pid) = (0, child.id() as libc::pid_t);
    // SAFETY: rusage is plain data; wait4 fills it for our own, not yet reaped, child.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    assert_eq!(unsafe { libc::wait4(pid, &mut status, 0, &mut usage) }, pid, "probe: wait4");
    let micros = |t: libc::timeval| t.tv_sec * 1_000_000 + t.tv_usec;
    let cpu = micros(usage.ru_utime) + micros(usage.ru_stime);
    std::fs::write(report, format!("{status} {} {cpu}", usage.ru_maxrss)).expect("probe: report");
    std::process::exit(0)
}

/// Run vmcs-gen with `args` under the probe, bounding its CPU time and peak memory.
fn run(args: &[&str], out: Out) -> Outcome {
    let stdout = match out {
        Out::Pipe => Stdio::piped(),
        Out::Closed => closed_pipe(),
        Out::Full => Stdio::from(std::fs::File::options().write(true).open("/dev/full").unwrap()),
    };
    let probe = tmp("probe");
    let report = probe.join("report");
    let mut child = Command::new(std::env::current_exe().unwrap())
        .arg(env!("CARGO_BIN_EXE_vmcs-gen"))
        .args(args)
        .env(PROBE, &report)
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let reader = |pipe: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut s = Vec::new();
            if let Some(mut p) = pipe {
                let _ = p.read_to_end(&mut s);
            }
            String::from_utf8_lossy(&s).into_owned()
        })
    };
    let out = reader(child.stdout.take().map(|p| Box::new(p) as Box<dyn Read + Send>));
    let err = reader(child.stderr.take().map(|p| Box::new(p) as Box<dyn Read + Send>));
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > Duration::from_secs(20) {
            let _ = child.kill();
            panic!("vmcs-gen {args:?} hangs");
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    let (stdout, stderr) = (out.join().unwrap(), err.join().unwrap());
    let figures = std::fs::read_to_string(&report).unwrap_or_else(|e| panic!("no probe report ({e}):\n{stderr}"));
    let [status, rss, cpu]: [i64; 3] =
        figures.split(' ').map(|f| f.parse().unwrap()).collect::<Vec<_>>().try_into().unwrap();
    let (status, secs) = (status as i32, cpu as f64 / 1e6);
    assert!(libc::WIFEXITED(status), "vmcs-gen {args:?} was killed by a signal\n{stderr}");
    let code = libc::WEXITSTATUS(status);
    assert!(!stderr.contains("panicked") && code != 101, "vmcs-gen {args:?} panicked:\n{stderr}");
    assert!(secs < MAX_CPU_SECONDS, "vmcs-gen {args:?} took {secs:.2} s of CPU");
    assert!(rss < MAX_RSS_KIB, "vmcs-gen {args:?} peaked at {rss} KiB");
    Outcome { status: code, stdout, stderr }
}

fn tmp(name: &str) -> TempDir {
    TempDir::new("gen-bad", name)
}

/// A copy of the shipped schema in a temporary directory.
fn schema_copy(name: &str) -> TempDir {
    let dir = tmp(name);
    for f in vmcs_gen::SchemaSources::embedded().files {
        let path = dir.join(&f.name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, f.text).unwrap();
    }
    dir
}

fn fails_with(o: &Outcome, message: &str) {
    assert_ne!(o.status, 0, "accepted:\n{}", o.stdout);
    assert!(o.stderr.contains(message), "want {message:?} in:\n{}", o.stderr);
}

/// A FIFO fed with endless bytes by a writer thread (which ends when the reader closes it).
fn endless_fifo(dir: &Path, name: &str) -> (String, std::thread::JoinHandle<()>) {
    let path = dir.join(name);
    let c = std::ffi::CString::new(path.to_str().unwrap()).unwrap();
    // SAFETY: `c` is a valid C string naming a path in our temporary directory.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    let p = path.clone();
    let writer = std::thread::spawn(move || {
        let mut f = std::fs::File::options().write(true).open(p).unwrap();
        let chunk = vec![b'x'; 1 << 16];
        while f.write_all(&chunk).is_ok() {}
    });
    (path.to_str().unwrap().to_string(), writer)
}

fn sparse(dir: &Path, name: &str) -> String {
    let path = dir.join(name);
    std::fs::File::create(&path).unwrap().set_len(1 << 30).unwrap();
    path.to_str().unwrap().to_string()
}

fn capability_files_are_read_with_a_bound() {
    let dir = tmp("caps");
    let big = sparse(&dir, "big.json");
    for cmd in ["fields", "enum"] {
        fails_with(
            &run(&[cmd, "--caps", "/dev/zero"], Out::Pipe),
            "cannot read /dev/zero: more than the 65536 bytes read",
        );
        fails_with(&run(&[cmd, "--caps", &big], Out::Pipe), "1073741824 bytes, more than the 65536 read");
        let (fifo, writer) = endless_fifo(&dir, &format!("{cmd}.fifo"));
        fails_with(&run(&[cmd, "--caps", &fifo], Out::Pipe), "more than the 65536 bytes read");
        writer.join().unwrap();
    }
    let bad = dir.join("bad.json");
    std::fs::write(&bad, b"{\"0x480\":\n  \"\xff\"}").unwrap();
    fails_with(&run(&["fields", "--caps", bad.to_str().unwrap()], Out::Pipe), "bad.json:2:4: not UTF-8 (byte 0xff)");
}

fn nested_state_blobs_are_read_with_a_bound() {
    let dir = tmp("state");
    let big = sparse(&dir, "big.bin");
    for cmd in ["check", "decode"] {
        fails_with(&run(&["state", cmd, "/dev/zero"], Out::Pipe), "more than the 12416 bytes read");
        fails_with(&run(&["state", cmd, &big], Out::Pipe), "1073741824 bytes, more than the 12416 read");
        let (fifo, writer) = endless_fifo(&dir, &format!("{cmd}.fifo"));
        fails_with(&run(&["state", cmd, &fifo], Out::Pipe), "more than the 12416 bytes read");
        writer.join().unwrap();
    }
}

fn schema_files_are_read_with_a_bound() {
    let dir = schema_copy("schema-big");
    std::fs::remove_file(dir.join("fields.toml")).unwrap();
    sparse(&dir, "fields.toml");
    let d = dir.to_str().unwrap();
    fails_with(&run(&["--schema", d, "check"], Out::Pipe), "fields.toml: 1073741824 bytes, more than the 2097152 read");
    // A layout file for `diff` that never ends.
    let (fifo, writer) = endless_fifo(&dir, "endless.toml");
    fails_with(&run(&["diff", "vmcs12", &fifo], Out::Pipe), "more than the 2097152 bytes read");
    writer.join().unwrap();
}

fn schema_bytes_that_are_not_utf8_are_located() {
    let dir = schema_copy("schema-utf8");
    let path = dir.join("layouts/vmcs12.toml");
    let mut text = std::fs::read(&path).unwrap();
    let at = text.windows(4).position(|w| w == b"doc ").unwrap();
    text.splice(at..at, *b"# caf\xe9\n");
    std::fs::write(&path, &text).unwrap();
    let line = text[..at].iter().filter(|&&b| b == b'\n').count() + 1;
    let o = run(&["--schema", dir.to_str().unwrap(), "check"], Out::Pipe);
    fails_with(&o, &format!("layouts/vmcs12.toml:{line}:6: not UTF-8 (byte 0xe9)"));
}

fn a_closed_or_full_stdout_ends_quietly() {
    let dir = schema_copy("stdout");
    let d = dir.to_str().unwrap();
    let gen_dir = dir.join("gen");
    let state = dir.join("state.bin");
    std::fs::write(&state, [0u8; 128]).unwrap();
    let runs: &[&[&str]] = &[
        &["check"],
        &["layout", "vmcs12"],
        &["layout", "vmcs12", "--json"],
        &["fields", "--json"],
        &["enum"],
        &["generate", "--out", gen_dir.to_str().unwrap()],
        &["diff", "vmcs12_base", "vmcs12"],
        &["--schema", d, "lock", "vmcs12"],
        &["state", "decode", state.to_str().unwrap()],
        &["--help"],
    ];
    for args in runs {
        let o = run(args, Out::Closed);
        assert_ne!(o.status, 0, "{args:?} ignored EPIPE");
        assert_eq!(o.stderr, "", "{args:?} is not quiet on EPIPE");
        let o = run(args, Out::Full);
        assert_ne!(o.status, 0, "{args:?} ignored ENOSPC");
        assert!(o.stderr.contains("No space left on device"), "{args:?}: {}", o.stderr);
    }
}

fn thousands_of_errors_in_a_big_file_are_fast() {
    let dir = schema_copy("many-errors");
    let mut text = String::new();
    for i in 0..8000 {
        text.push_str(&format!(
            "[[field]]\nname = \"bad-{i}\"\nencoding = 0x0\nwidth = \"16\"\nkind = \"control\"\ndoc = \"x\"\n\n"
        ));
    }
    assert!(text.len() > 400_000);
    std::fs::write(dir.join("fields.toml"), &text).unwrap();
    let o = run(&["--schema", dir.to_str().unwrap(), "check"], Out::Pipe);
    fails_with(&o, "15999 errors in the schema");
}

fn a_huge_value_is_echoed_in_part() {
    let dir = schema_copy("huge-value");
    let path = dir.join("fields.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    let huge = "x".repeat(1_500_000);
    std::fs::write(&path, text.replacen("doc = \"", &format!("doc = \"{huge}\"\nbad = \""), 1)).unwrap();
    let o = run(&["--schema", dir.to_str().unwrap(), "check"], Out::Pipe);
    fails_with(&o, "unknown field `bad`");
    assert!(o.stderr.len() < 4096, "{} bytes of diagnostics", o.stderr.len());
}

fn what_parsing_costs_is_bounded_before_parsing() {
    // Each below 2 MiB, each far more memory parsed than its text (486 MB for the inline tables).
    let cases: [(&str, String, &str); 3] = [
        ("deep", format!("x = {}{}\n", "[".repeat(1_000_000), "]".repeat(1_000_000)), "nest deeper than 16"),
        ("tables", format!("x = [{}]\n", "{a=1},".repeat(300_000)), "more than 16384 arrays, inline tables"),
        ("values", format!("x = [{}]\n", "\"a\",".repeat(400_000)), "more than 65536 values in one file"),
    ];
    for (name, text, message) in cases {
        let dir = schema_copy(&format!("cost-{name}"));
        std::fs::write(dir.join("layouts/costly.toml"), text).unwrap();
        let o = run(&["--schema", dir.to_str().unwrap(), "check"], Out::Pipe);
        fails_with(&o, message);
        assert!(o.stderr.contains("layouts/costly.toml:1:"), "{}", o.stderr);
    }
    // Many files, each within its bound: the total is bounded too.
    let dir = schema_copy("cost-total");
    for i in 0..5 {
        std::fs::write(dir.join(format!("layouts/pad{i}.toml")), format!("# {}\n", "x".repeat(2_000_000))).unwrap();
    }
    fails_with(&run(&["--schema", dir.to_str().unwrap(), "check"], Out::Pipe), "hold more than 8388608 bytes");
}

fn other_bad_arguments_fail_cleanly() {
    fails_with(&run(&["layout", "vmcs13"], Out::Pipe), "no layout `vmcs13` (layouts:");
    fails_with(&run(&["generate", "--out", "/dev/null/gen"], Out::Pipe), "cannot create /dev/null/gen");
    fails_with(&run(&["--schema", "/nonexistent", "check"], Out::Pipe), "cannot read schema /nonexistent");
    fails_with(&run(&["state", "check", "/nonexistent.bin"], Out::Pipe), "cannot read /nonexistent.bin");
    fails_with(&run(&["frobnicate"], Out::Pipe), "unrecognized subcommand");
}

/// Every test, in order: a plain main, so that the binary can also be the probe.
const TESTS: &[(&str, fn())] = &[
    ("capability_files_are_read_with_a_bound", capability_files_are_read_with_a_bound),
    ("nested_state_blobs_are_read_with_a_bound", nested_state_blobs_are_read_with_a_bound),
    ("schema_files_are_read_with_a_bound", schema_files_are_read_with_a_bound),
    ("schema_bytes_that_are_not_utf8_are_located", schema_bytes_that_are_not_utf8_are_located),
    ("a_closed_or_full_stdout_ends_quietly", a_closed_or_full_stdout_ends_quietly),
    ("thousands_of_errors_in_a_big_file_are_fast", thousands_of_errors_in_a_big_file_are_fast),
    ("a_huge_value_is_echoed_in_part", a_huge_value_is_echoed_in_part),
    ("what_parsing_costs_is_bounded_before_parsing", what_parsing_costs_is_bounded_before_parsing),
    ("other_bad_arguments_fail_cleanly", other_bad_arguments_fail_cleanly),
];

fn main() {
    if let Some(report) = std::env::var_os(PROBE) {
        probe(Path::new(&report));
    }
    let filters: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with('-')).collect();
    for (name, test) in TESTS {
        if filters.is_empty() || filters.iter().any(|f| name.contains(f.as_str())) {
            test();
            println!("test {name} ... ok");
        }
    }
}
