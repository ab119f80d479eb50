//! Temporary directories removed when dropped.

use std::path::{Path, PathBuf};

use crate::clock::random_hex;

/// A fresh directory `authmount-<label>-<random>` under the system temp dir, removed (with
/// everything in it) when dropped.
pub struct TempDir(PathBuf);

impl TempDir {
    /// Creates the directory; panics if it cannot.
    pub fn new(label: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("authmount-{label}-{}", random_hex()));
        std::fs::create_dir_all(&dir).expect("create temp dir");
        TempDir(dir)
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.0
    }

    /// Writes `name` in the directory and returns its path.
    pub fn file(&self, name: &str, contents: &str) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, contents).expect("write temp file");
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
