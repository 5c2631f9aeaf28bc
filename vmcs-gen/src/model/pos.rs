//! Source positions on model items: the passes after loading (compatibility, copy-set checks)
//! report from the model at the declaration, with no side tables.

use std::ops::Range;

use super::Schema;
use crate::diag::{Diagnostic, SourceFile};

/// Index of a file in [`Schema::files`].
pub type FileId = usize;

/// Where a model item (or one of its values) is written: a file and a byte range in it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Pos {
    /// The file, in [`Schema::files`].
    pub file: FileId,
    /// Byte range in that file's text.
    pub span: Range<usize>,
}

impl Schema {
    /// The position of `span` in `file`, a file this schema was read from.
    pub(crate) fn pos(&self, file: &SourceFile, span: Range<usize>) -> Pos {
        let file = self.files.iter().position(|f| f.name == file.name).expect("a file of this schema");
        Pos { file, span }
    }

    /// The file `pos` points into.
    pub fn file_at(&self, pos: &Pos) -> &SourceFile {
        &self.files[pos.file]
    }

    /// A located error at `pos`.
    pub(crate) fn error_at(&self, pos: &Pos, message: impl Into<String>) -> Diagnostic {
        self.file_at(pos).error(pos.span.clone(), message)
    }
}
