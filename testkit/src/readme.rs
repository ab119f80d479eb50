//! The workspace's files: its root, and the README's runnable blocks.

use std::path::Path;

/// The workspace root (the directory of the top `Cargo.toml` and `README.md`).
pub fn workspace_root() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
}

/// The body of the README's first fenced block whose info string is `info` (e.g.
/// `sh audit`): the blocks the README tests run as written. Panics when there is none.
pub fn readme_block(info: &str) -> String {
    let readme =
        std::fs::read_to_string(workspace_root().join("README.md")).expect("read README.md");
    let mut lines = readme
        .lines()
        .skip_while(|l| l.trim() != format!("```{info}"));
    lines
        .next()
        .unwrap_or_else(|| panic!("README has a ```{info} block"));
    lines
        .take_while(|l| l.trim() != "```")
        .collect::<Vec<_>>()
        .join("\n")
}
