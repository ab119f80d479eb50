//! The README's quick start runs as written: its `sh quickstart` block is extracted and run
//! with bash against a real server, twice (it must be re-runnable), and the answers it prints
//! are checked; it leaves the directory it is started in untouched, and without `VAULT_TOKEN`
//! it stops at once with a message saying what to set.

use std::path::Path;
use std::process::{Command, Output};

use authmount_testkit::{readme_block, TempDir, TestServer};

/// Runs `script` with bash in `dir`, with `VAULT_ADDR` and, when given, `VAULT_TOKEN`.
async fn run(script: &str, dir: &Path, addr: &str, token: Option<&str>) -> Output {
    let mut command = Command::new("bash");
    command
        .args(["-c", script])
        .env("VAULT_ADDR", addr)
        .env_remove("VAULT_TOKEN")
        .current_dir(dir);
    if let Some(token) = token {
        command.env("VAULT_TOKEN", token);
    }
    tokio::task::spawn_blocking(move || command.output().expect("run bash"))
        .await
        .expect("join")
}

#[tokio::test]
async fn the_readme_quick_start_runs_as_written_and_again() {
    let script = readme_block("sh quickstart");
    let server = TestServer::start().await;
    let dir = TempDir::new("readme");
    let workdir = dir.path();
    for round in ["first", "second"] {
        let output = run(&script, workdir, &server.base, Some(&server.root)).await;
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            output.status.success(),
            "quick start failed on its {round} run\nstdout:\n{stdout}\nstderr:\n{stderr}"
        );
        for expected in [
            r#""display_name":"jwt-alice""#,
            r#""display_name":"my-path-alice""#,
            r#""path":"auth/my-path/login""#,
            r#""policies":["default","webapps"]"#,
            r#""lease_duration":3600"#,
            r#""metadata":{"role":"demo"}"#,
        ] {
            assert!(
                stdout.contains(expected),
                "{round} run: missing {expected} in:\n{stdout}"
            );
        }
    }
    let left: Vec<_> = std::fs::read_dir(workdir).expect("read dir").collect();
    assert!(
        left.is_empty(),
        "the quick start wrote into its working directory: {left:?}"
    );

    let output = run(&script, workdir, &server.base, None).await;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "ran without VAULT_TOKEN");
    assert!(
        stderr.contains("VAULT_TOKEN: set VAULT_TOKEN to the root token the server printed"),
        "{stderr}"
    );
    assert!(output.stdout.is_empty(), "it went on without VAULT_TOKEN");
}
