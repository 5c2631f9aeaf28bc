//! Scratch directories for tests that drive the command line on files.

use std::path::{Path, PathBuf};

/// A fresh directory under the system's temporary directory, removed when dropped — unless the
/// test is panicking, when it is kept (and its path printed) so the failure can be inspected.
/// The name carries the process id, so parallel test binaries never share one.
#[derive(Debug)]
pub struct TempDir(PathBuf);

impl TempDir {
    /// An empty directory named `vmcs-{prefix}-{pid}-{name}`; a leftover of that name is removed
    /// first.
    pub fn new(prefix: &str, name: &str) -> TempDir {
        let dir = std::env::temp_dir().join(std::format!("vmcs-{prefix}-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        TempDir(dir)
    }

    /// The directory's path.
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl core::ops::Deref for TempDir {
    type Target = Path;

    fn deref(&self) -> &Path {
        &self.0
    }
}

impl AsRef<Path> for TempDir {
    fn as_ref(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if std::thread::panicking() {
            std::eprintln!("kept for inspection: {}", self.0.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}
