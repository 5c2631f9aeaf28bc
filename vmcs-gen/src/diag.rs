//! Located diagnostics: every schema error names file:line:column and shows the offending text.

use std::fmt;
use std::ops::Range;
use std::sync::OnceLock;

/// One schema error, located, with the text it is about. Display renders it as rustc does:
/// message, `--> file:line:column`, the line with the span underlined, then the notes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    /// The file as shown to the user ([`SourceFile::path`]).
    pub path: String,
    /// 1-based line of the span's start.
    pub line: usize,
    /// 1-based column of the span's start, in characters (not bytes).
    pub column: usize,
    /// What is wrong, one sentence without the location.
    pub message: String,
    /// The source line holding the error (long lines cut around it, with `...`).
    pub line_text: String,
    /// The part of [`Diagnostic::line_text`] to underline, in bytes; never empty.
    pub underline: Range<usize>,
    /// Further lines: what would be right, or where a clashing item is.
    pub notes: Vec<String>,
}

impl Diagnostic {
    /// `path:line:column`, as editors and terminals follow it.
    pub fn location(&self) -> String {
        format!("{}:{}:{}", self.path, self.line, self.column)
    }
    /// Add a note shown under the underlined line.
    pub(crate) fn with_note(mut self, note: impl Into<String>) -> Self {
        self.notes.push(note.into());
        self
    }
    /// The text the span covers (on its first line): what the tests match an error by.
    pub fn snippet(&self) -> &str {
        let end = self.underline.end.min(self.line_text.len());
        self.line_text.get(self.underline.start.min(end)..end).unwrap_or("")
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "error: {}", self.message)?;
        writeln!(f, "  --> {}", self.location())?;
        let gutter = self.line.to_string().len();
        writeln!(f, "{:gutter$} |", "")?;
        writeln!(f, "{} | {}", self.line, self.line_text)?;
        let width = (self.underline.end - self.underline.start).max(1);
        write!(f, "{:gutter$} | {}{}", "", " ".repeat(self.underline.start), "^".repeat(width))?;
        for note in &self.notes {
            write!(f, "\n{:gutter$} = note: {note}", "")?;
        }
        Ok(())
    }
}

/// A schema source file: its display path and text.
#[derive(Clone, Debug)]
pub struct SourceFile {
    /// The path shown in diagnostics.
    pub path: String,
    /// The path relative to the schema directory, e.g. "layouts/vmcs12.toml".
    pub name: String,
    /// The file's whole contents; spans are byte offsets into it.
    pub text: String,
    /// Byte offset of each line's start, built on the first diagnostic (once per file).
    lines: OnceLock<Vec<usize>>,
}

/// The most of a source line a diagnostic echoes; longer lines are cut around the error.
const MAX_EXCERPT: usize = 160;

impl SourceFile {
    /// A file shown as `path`, named by `path` without a leading `schema/`.
    pub fn new(path: impl Into<String>, text: impl Into<String>) -> Self {
        let path = path.into();
        let name = path.strip_prefix("schema/").unwrap_or(&path).to_string();
        SourceFile { name, path, text: text.into(), lines: OnceLock::new() }
    }

    /// A file of a schema directory: `name` relative to it, `path` as shown to the user.
    pub fn in_schema(name: impl Into<String>, path: impl Into<String>, text: impl Into<String>) -> Self {
        SourceFile { path: path.into(), name: name.into(), text: text.into(), lines: OnceLock::new() }
    }

    fn line_starts(&self) -> &[usize] {
        self.lines.get_or_init(|| std::iter::once(0).chain(self.text.match_indices('\n').map(|(i, _)| i + 1)).collect())
    }

    /// Build a diagnostic for a byte span of this file (clamped to the text and to characters).
    pub(crate) fn error(&self, span: Range<usize>, message: impl Into<String>) -> Diagnostic {
        let start = floor_char(&self.text, span.start);
        let starts = self.line_starts();
        let line = starts.partition_point(|&s| s <= start);
        let line_start = starts[line - 1];
        let line_end = starts.get(line).map_or(self.text.len(), |&next| next - 1);
        let end = floor_char(&self.text, span.end.clamp(start, line_end.max(start)));
        let column = self.text[line_start..start].chars().count() + 1;
        let full = self.text[line_start..line_end].trim_end_matches('\r');
        let (line_text, offset) = excerpt(full, start - line_start);
        let from = (start - line_start).saturating_sub(offset).min(line_text.len());
        let to = (end - line_start).saturating_sub(offset).clamp(from, line_text.len());
        Diagnostic {
            path: self.path.clone(),
            line,
            column,
            message: message.into(),
            line_text,
            underline: from..to.max(from + 1),
            notes: Vec::new(),
        }
    }
}

/// The largest character boundary of `text` at or below `i`.
fn floor_char(text: &str, i: usize) -> usize {
    let mut i = i.min(text.len());
    while !text.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// At most [`MAX_EXCERPT`] bytes of `line` around byte `at`, with `...` where it was cut, and the
/// byte offset in `line` that the excerpt's first byte of `line` text stands for (minus the `...`).
fn excerpt(line: &str, at: usize) -> (String, usize) {
    if line.len() <= MAX_EXCERPT {
        return (line.to_string(), 0);
    }
    let from = floor_char(line, at.saturating_sub(MAX_EXCERPT / 4));
    let to = floor_char(line, from + MAX_EXCERPT);
    let mut s = String::new();
    let mut offset = from;
    if from > 0 {
        s.push_str("...");
        offset -= 3;
    }
    s.push_str(&line[from..to]);
    if to < line.len() {
        s.push_str("...");
    }
    (s, offset)
}

/// All the errors of a run, reported together: the `Err` of [`Schema::load`](crate::Schema::load).
/// Display lists them, then counts them ("3 errors in the schema").
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Diagnostics(pub Vec<Diagnostic>);

/// Shown like Display, so that a failed `unwrap` prints readable diagnostics.
impl fmt::Debug for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "\n{self}")
    }
}

impl Diagnostics {
    /// Record one more error.
    pub fn push(&mut self, d: Diagnostic) {
        self.0.push(d);
    }
    /// No error recorded: the pass that collected these found nothing wrong.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    /// How many errors were recorded.
    pub fn len(&self) -> usize {
        self.0.len()
    }
    /// The errors in the order found.
    pub fn iter(&self) -> impl Iterator<Item = &Diagnostic> {
        self.0.iter()
    }
}

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for d in &self.0 {
            writeln!(f, "{d}\n")?;
        }
        write!(f, "{} error{} in the schema", self.0.len(), if self.0.len() == 1 { "" } else { "s" })
    }
}

impl std::error::Error for Diagnostics {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locates_line_and_column() {
        let f = SourceFile::new("x.toml", "a = 1\nbb = \"oops\"\n");
        let d = f.error(11..17, "bad value");
        assert_eq!(d.location(), "x.toml:2:6");
        assert_eq!(d.snippet(), "\"oops\"");
        let shown = d.to_string();
        assert!(shown.contains("2 | bb = \"oops\""), "{shown}");
        assert!(shown.contains("^^^^^^"), "{shown}");
    }

    #[test]
    fn long_lines_are_cut_around_the_error() {
        let value = "x".repeat(100_000);
        let f = SourceFile::new("x.toml", format!("a = 1\nname = \"{value}\" # é\n"));
        let at = 8 + 50_000;
        let d = f.error(at..at + 4, "bad");
        assert_eq!((d.line, d.column), (2, 50_003));
        assert!(d.line_text.len() <= MAX_EXCERPT + 6, "{}", d.line_text.len());
        assert!(d.line_text.starts_with("...") && d.line_text.ends_with("..."));
        assert_eq!(d.snippet(), "xxxx");
    }

    #[test]
    fn spans_inside_a_character_or_past_the_end_do_not_panic() {
        let f = SourceFile::new("x.toml", "a = \"é\"\nb");
        let d = f.error(6..7, "inside é");
        assert_eq!((d.line, d.column), (1, 6));
        let d = f.error(100..200, "past the end");
        assert_eq!(d.line, 2);
    }
}
