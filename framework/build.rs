//! Gives the crate `AUTHMOUNT_COMMIT_DATE`: the RFC 3339 UTC date of the commit being built
//! (answered as `commit_date` by `sys/seal-status`, as OpenBao does), or empty outside a git
//! checkout. A value set in the environment wins (for reproducible packaging).

use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=AUTHMOUNT_COMMIT_DATE");
    println!("cargo:rerun-if-changed=../.git/HEAD");
    println!("cargo:rerun-if-changed=../.git/refs/heads");
    let date = std::env::var("AUTHMOUNT_COMMIT_DATE")
        .ok()
        .unwrap_or_else(|| {
            Command::new("git")
                .args([
                    "log",
                    "-1",
                    "--format=%cd",
                    "--date=format-local:%Y-%m-%dT%H:%M:%SZ",
                ])
                .env("TZ", "UTC")
                .output()
                .ok()
                .filter(|out| out.status.success())
                .map(|out| String::from_utf8_lossy(&out.stdout).trim().to_string())
                .unwrap_or_default()
        });
    println!("cargo:rustc-env=AUTHMOUNT_COMMIT_DATE={date}");
}
