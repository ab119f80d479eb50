//! The README's quick start runs as written: its `sh quickstart` block is extracted and run
//! with bash against a real server, and the answers it prints are checked.

mod support;

use std::process::Command;

use support::TestServer;

/// The body of the first fenced block whose info string is `sh quickstart`.
fn quickstart_block(readme: &str) -> String {
    let mut lines = readme
        .lines()
        .skip_while(|l| l.trim() != "```sh quickstart");
    lines.next().expect("README has a ```sh quickstart block");
    lines
        .take_while(|l| l.trim() != "```")
        .collect::<Vec<_>>()
        .join("\n")
}

#[tokio::test]
async fn the_readme_quick_start_runs_as_written() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"))
        .expect("read README.md");
    let script = quickstart_block(&readme);
    let server = TestServer::start().await;
    let workdir = std::env::temp_dir().join(format!("authmount-readme-{}", support::random_hex()));
    std::fs::create_dir_all(&workdir).expect("temp dir");
    let output = tokio::task::spawn_blocking(move || {
        Command::new("bash")
            .args(["-euo", "pipefail", "-c", &script])
            .env("VAULT_ADDR", &server.base)
            .env("VAULT_TOKEN", &server.root)
            .current_dir(&workdir)
            .output()
            .expect("run bash")
    })
    .await
    .expect("join");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "quick start failed\nstdout:\n{stdout}\nstderr:\n{stderr}"
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
            "missing {expected} in:\n{stdout}"
        );
    }
}
