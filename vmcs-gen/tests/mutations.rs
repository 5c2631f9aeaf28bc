//! The mutation suite: one copy of the shipped schema per class of mistake, each with one
//! mutation, checked through the command line as a user runs it. Every run must exit non-zero
//! without a panic, with a diagnostic at the mutated line that names the item (and, where a
//! mistake is one edit, with that one diagnostic only: no follow-on errors).

use std::process::Command;
use vmcs_test_support::TempDir;

/// One mutation: in `file`, replace the first `from` after `marker` with `to`; the diagnostic must
/// contain `message` and point at the line of the first `at` after `marker` in the mutated text.
struct Mutation {
    class: &'static str,
    file: &'static str,
    marker: &'static str,
    from: &'static str,
    to: &'static str,
    at: &'static str,
    message: &'static str,
    /// The mutation causes exactly one diagnostic.
    alone: bool,
}

const fn m(
    class: &'static str,
    file: &'static str,
    (marker, from, to): (&'static str, &'static str, &'static str),
    at: &'static str,
    message: &'static str,
    alone: bool,
) -> Mutation {
    Mutation { class, file, marker, from, to, at, message, alone }
}

const V: &str = "layouts/vmcs12.toml";
const F: &str = "fields.toml";
const C: &str = "capabilities.toml";

const MUTATIONS: &[Mutation] = &[
    m(
        "offset past 4 GiB",
        V,
        ("name = \"guest_es_selector\"", "offset = 964", "offset = 0xfffffffc"),
        "0xfffffffc",
        "member `guest_es_selector` (0xfffffffc..0xfffffffe) leaves the 0x1000-byte region",
        true,
    ),
    m(
        "huge reserved size",
        V,
        ("name = \"padding64\"", "size = 8", "size = 0xfffffff8"),
        "offset = 336",
        "member `padding64` (0x150..0x100000148) leaves the 0x1000-byte region",
        true,
    ),
    m(
        "hole between members",
        V,
        ("name = \"padding64\"", "size = 8", "size = 4"),
        "offset = 344",
        "bytes 0x154..0x158 between member `padding64` and member",
        true,
    ),
    m(
        "region size above 4096",
        V,
        ("", "size = 0x1000", "size = 0x4096"),
        "size = 0x4096",
        "region size 0x4096 is outside 1..=0x1000",
        false,
    ),
    m(
        "revision with bit 31",
        V,
        ("", "revision = 0x11e57ed0", "revision = 0x91e57ed0"),
        "revision = 0x91",
        "revision 0x91e57ed0 sets bit 31",
        false,
    ),
    m(
        "released revision changed",
        V,
        ("", "revision = 0x11e57ed0", "revision = 0x11e57ed1"),
        "revision = 0x11e57ed1",
        "revision of layout `vmcs12` (released revision 0x11e57ed0) changed to 0x11e57ed1",
        true,
    ),
    m(
        "released region size changed",
        V,
        ("", "size = 0x1000", "size = 0x3f0"),
        "size = 0x3f0",
        "region size of layout `vmcs12` (released revision 0x11e57ed0) changed from 0x1000 to 0x3f0",
        true,
    ),
    m(
        "pinned type changed",
        V,
        ("name = \"launch_state\"", "type = \"u32\"", "type = \"reserved\"\nsize = 4"),
        "type = \"reserved\"",
        "pinned member `launch_state` of layout `vmcs12`",
        true,
    ),
    m(
        "retires typo",
        "layouts/vmcs12_dead_space.toml",
        ("name = \"dead_space\"", "\"cr3_target_value2\"", "\"cr3_target_valu2\""),
        "\"cr3_target_valu2\"",
        "`dead_space` retires `cr3_target_valu2`",
        false,
    ),
    m(
        "two names for one bit",
        C,
        ("name = \"entry.load_ia32_spec_ctrl\"", "bit = 24", "bit = 23"),
        "bit = 23",
        "bit 23 of MSR `entry` is already `entry.load_fred`",
        true,
    ),
    m(
        "unknown gate capability",
        F,
        ("name = \"GUEST_IA32_PAT\"", "entry.load_ia32_pat", "entry.load_ia32_patt"),
        "entry.load_ia32_patt",
        "gate names unknown capability `entry.load_ia32_patt`",
        true,
    ),
    m(
        "width against encoding",
        F,
        ("name = \"GUEST_RSP\"", "\"natural\"", "\"16\""),
        "width = \"16\"",
        "width 16 disagrees",
        true,
    ),
    m(
        "duplicate field",
        F,
        ("encoding = 0x681C", "name = \"GUEST_RIP\"", "name = \"GUEST_RSP\""),
        "name = \"GUEST_RSP\"",
        "duplicate field name `GUEST_RSP`",
        true,
    ),
    m("missing bracket", F, ("", "[[field]]", "[[field]"), "[[field]", "unclosed array table", true),
    m("empty fields", F, ("", "", ""), "", "fields.toml declares no [[field]]", true),
    m(
        "member maps unknown field",
        V,
        ("name = \"io_bitmap_b\"", "\"IO_BITMAP_B\"", "\"IO_BITMAP_Z\""),
        "\"IO_BITMAP_Z\"",
        "member maps unknown field `IO_BITMAP_Z`",
        true,
    ),
    m(
        "overlapping members",
        V,
        ("name = \"guest_es_selector\"", "offset = 964", "offset = 963"),
        "offset = 963",
        "overlaps member",
        false,
    ),
    m(
        "unknown exit qualification",
        "exits.toml",
        ("name = \"CR_ACCESS\"", "\"cr_access_qualification\"", "\"cr_qualification\""),
        "\"cr_qualification\"",
        "unknown bitfield `cr_qualification`",
        true,
    ),
    m(
        "overlapping bit ranges",
        "exits.toml",
        ("name = \"enclave_mode\"", "bits = \"27\"", "bits = \"15\""),
        "bits = \"15\"",
        "bits 15 overlap `basic`",
        true,
    ),
    m(
        "TRUE MSR undeclared",
        C,
        ("name = \"pin\"", "true_index = 0x48D", "true_index = 0x4A0"),
        "true_index = 0x4A0",
        "true_index 0x4a0 is not a declared MSR",
        true,
    ),
];

fn schema_copy(name: &str) -> TempDir {
    let dir = TempDir::new("gen-mutation", name);
    for f in vmcs_gen::SchemaSources::embedded().files {
        let path = dir.join(&f.name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, f.text).unwrap();
    }
    dir
}

fn vmcs_gen(args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_vmcs-gen")).args(args).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    let code = out.status.code().expect("vmcs-gen was killed by a signal");
    assert!(code != 101 && !err.contains("panicked"), "vmcs-gen {args:?} panicked:\n{err}");
    (code, err)
}

#[test]
fn every_class_of_mistake_is_located() {
    for (i, mu) in MUTATIONS.iter().enumerate() {
        let dir = schema_copy(&i.to_string());
        let path = dir.join(mu.file);
        let text = std::fs::read_to_string(&path).unwrap();
        let start = text.find(mu.marker).unwrap_or_else(|| panic!("{}: no marker", mu.class));
        let new = if mu.class == "empty fields" {
            String::new()
        } else {
            let at = start + text[start..].find(mu.from).unwrap_or_else(|| panic!("{}: no {:?}", mu.class, mu.from));
            format!("{}{}{}", &text[..at], mu.to, &text[at + mu.from.len()..])
        };
        std::fs::write(&path, &new).unwrap();
        let start = new.find(mu.marker).unwrap_or(0);
        let at =
            start + new[start..].find(mu.at).unwrap_or_else(|| panic!("{}: no {:?} after the edit", mu.class, mu.at));
        let line = new[..at].matches('\n').count() + 1;
        let (code, err) = vmcs_gen(&["--schema", dir.to_str().unwrap(), "check"]);
        assert_ne!(code, 0, "{}: accepted", mu.class);
        let location = format!("{}:{line}:", path.display());
        let hit = err.split("\n\n").find(|d| d.contains(mu.message));
        let hit = hit.unwrap_or_else(|| panic!("{}: no {:?} in:\n{err}", mu.class, mu.message));
        assert!(hit.contains(&location), "{}: not at {location}:\n{hit}", mu.class);
        if mu.alone {
            assert!(err.ends_with("1 error in the schema\n"), "{}: follow-on errors:\n{err}", mu.class);
        }
    }
}

#[test]
fn diff_refuses_what_check_refuses() {
    let dir = schema_copy("diff");
    let text = std::fs::read_to_string(dir.join(V)).unwrap();
    let bad = dir.join("bad_vmcs12.toml");
    let text =
        text.replace("name = \"vmcs12\"", "name = \"bad_vmcs12\"").replace("released = true", "released = false");
    std::fs::write(&bad, text.replacen("offset = 964", "offset = 0xffffffff", 1)).unwrap();
    let (code, err) = vmcs_gen(&["diff", "vmcs12", bad.to_str().unwrap()]);
    assert_ne!(code, 0);
    assert!(
        err.contains("member `guest_es_selector` (0xffffffff..0x100000001) leaves the 0x1000-byte region"),
        "{err}"
    );
    assert!(!err.contains("compatible"), "{err}");
}
