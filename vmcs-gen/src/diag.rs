//! Located diagnostics: every schema error names file:line:column and shows the offending text.

use std::fmt;
use std::ops::Range;

/// One schema error.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    pub path: String,
    pub line: usize,
    pub column: usize,
    pub message: String,
    /// The source line holding the error, and the underlined part of it (byte columns).
    pub line_text: String,
    pub underline: Range<usize>,
    pub notes: Vec<String>,
}

impl Diagnostic {
    pub fn location(&self) -> String {
        format!("{}:{}:{}", self.path, self.line, self.column)
    }
    pub fn with_note(mut self, note: impl Into<String>) -> Self {
        self.notes.push(note.into());
        self
    }
    /// The text the span covers (on its first line).
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
    pub text: String,
}

impl SourceFile {
    pub fn new(path: impl Into<String>, text: impl Into<String>) -> Self {
        let path = path.into();
        SourceFile { name: path.strip_prefix("schema/").unwrap_or(&path).to_string(), path, text: text.into() }
    }

    /// A file of a schema directory: `name` relative to it, `path` as shown to the user.
    pub fn in_schema(name: impl Into<String>, path: impl Into<String>, text: impl Into<String>) -> Self {
        SourceFile { path: path.into(), name: name.into(), text: text.into() }
    }

    /// Build a diagnostic for a byte span of this file.
    pub fn error(&self, span: Range<usize>, message: impl Into<String>) -> Diagnostic {
        let start = span.start.min(self.text.len());
        let line_start = self.text[..start].rfind('\n').map_or(0, |i| i + 1);
        let line_end = self.text[start..].find('\n').map_or(self.text.len(), |i| start + i);
        let line = self.text[..start].matches('\n').count() + 1;
        let column = self.text[line_start..start].chars().count() + 1;
        let end = span.end.clamp(start, line_end.max(start));
        Diagnostic {
            path: self.path.clone(),
            line,
            column,
            message: message.into(),
            line_text: self.text[line_start..line_end].trim_end_matches('\r').to_string(),
            underline: (start - line_start)..(end.max(start + 1) - line_start),
            notes: Vec::new(),
        }
    }
}

/// All the errors of a run, reported together.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Diagnostics(pub Vec<Diagnostic>);

/// Shown like Display, so that a failed `unwrap` prints readable diagnostics.
impl fmt::Debug for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "\n{self}")
    }
}

impl Diagnostics {
    pub fn push(&mut self, d: Diagnostic) {
        self.0.push(d);
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    pub fn len(&self) -> usize {
        self.0.len()
    }
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
}
