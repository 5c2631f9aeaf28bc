//! Helpers shared by the vmcs-gen integration tests: edit the shipped schema, load it, and find
//! where an expected error must point.

#![allow(dead_code, unused_imports)]

use vmcs_gen::{Diagnostic, Diagnostics, Schema, SchemaSources};

/// The shipped schema with `edits` applied: (file, entry marker, from, to). The replacement applies
/// to the first `from` after the marker (the marker itself may be "" for the file start).
pub fn edited(edits: &[(&str, &str, &str, &str)]) -> SchemaSources {
    let mut sources = SchemaSources::embedded();
    for (file, marker, from, to) in edits {
        let text = text_of(&sources, file);
        let start = text.find(marker).unwrap_or_else(|| panic!("marker {marker:?} not in {file}"));
        let at = start + text[start..].find(from).unwrap_or_else(|| panic!("{from:?} not after {marker:?} in {file}"));
        let new = format!("{}{}{}", &text[..at], to, &text[at + from.len()..]);
        sources.set(file, new);
    }
    sources
}

pub fn text_of(sources: &SchemaSources, file: &str) -> String {
    sources.files.iter().find(|f| f.name == *file).unwrap_or_else(|| panic!("no {file}")).text.clone()
}

pub fn errors(sources: &SchemaSources) -> Diagnostics {
    match Schema::load(sources) {
        Ok(_) => panic!("the edited schema was accepted"),
        Err(d) => d,
    }
}

/// Line and column (1-based) of the first `needle` after `marker` in `file`'s text.
pub fn position(sources: &SchemaSources, file: &str, marker: &str, needle: &str) -> (usize, usize) {
    let text = text_of(sources, file);
    let start = text.find(marker).unwrap();
    let at = start + text[start..].find(needle).unwrap_or_else(|| panic!("{needle:?} not after {marker:?}"));
    let line = text[..at].matches('\n').count() + 1;
    let col = at - text[..at].rfind('\n').map_or(0, |i| i + 1) + 1;
    (line, col)
}

/// The one diagnostic whose message contains `message`; it must point at `needle` after `marker`.
pub fn expect_at<'a>(
    diags: &'a Diagnostics,
    sources: &SchemaSources,
    file: &str,
    marker: &str,
    needle: &str,
    message: &str,
) -> &'a Diagnostic {
    let found: Vec<_> = diags.iter().filter(|d| d.message.contains(message)).collect();
    assert_eq!(found.len(), 1, "want exactly one error containing {message:?}, got:\n{diags}");
    let d = found[0];
    let (line, col) = position(sources, file, marker, needle);
    assert!(d.path.ends_with(file), "error in {} instead of {file}:\n{d}", d.path);
    assert_eq!((d.line, d.column), (line, col), "wrong location for:\n{d}");
    assert!(
        d.snippet().starts_with(needle.trim_matches('"')) || d.snippet().starts_with(needle),
        "snippet {:?} for:\n{d}",
        d.snippet()
    );
    d
}

pub use vmcs_test_support::reference;
