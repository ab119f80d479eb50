//! The README's server config file runs as written: its `sh server-config` block makes a
//! directory with a self-signed certificate, a seal key and `server.hcl`; a server started
//! from that file answers over TLS and is initialised with `authmount operator init`, as the
//! README says. A config naming a missing file stops the start with the file's name, before
//! any storage is created.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use authmount_testkit::node::start_fails;
use authmount_testkit::{free_port, Binary, TempDir};

/// The `authmount` binary cargo built for these tests.
const BIN: Binary = Binary::at(env!("CARGO_BIN_EXE_authmount"));

/// Runs the README's config block with `AUTHMOUNT_DIR=dir`; its stdout.
fn make_config(dir: &Path) -> String {
    let out = Command::new("bash")
        .args(["-c", &authmount_testkit::readme_block("sh server-config")])
        .env("AUTHMOUNT_DIR", dir)
        .output()
        .expect("run bash");
    assert!(
        out.status.success(),
        "the config block failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The server process, killed when dropped.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn the_readme_config_file_starts_a_tls_server_that_operator_init_initialises() {
    let dir = TempDir::new("readme-config");
    let printed = make_config(dir.path());
    let config = dir.path().join("server.hcl");
    assert!(
        printed.contains(&format!("authmount server -config={}", config.display())),
        "{printed}"
    );
    // Safe to run again: the certificate and the key are kept.
    let cert_before = std::fs::read(dir.path().join("tls.crt")).expect("tls.crt");
    make_config(dir.path());
    assert_eq!(
        std::fs::read(dir.path().join("tls.crt")).expect("tls.crt"),
        cert_before
    );

    // The same file on a free port (the README's 8200 may be taken where tests run).
    let port = free_port();
    let text = std::fs::read_to_string(&config).expect("read server.hcl");
    assert!(text.contains("127.0.0.1:8200"), "{text}");
    std::fs::write(
        &config,
        text.replace("127.0.0.1:8200", &format!("127.0.0.1:{port}")),
    )
    .expect("write server.hcl");
    let log = std::fs::File::create(dir.path().join("server.log")).expect("log");
    let _server = Running(
        BIN.command()
            .arg("server")
            .arg(format!("-config={}", config.display()))
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .stdin(Stdio::null())
            .spawn()
            .expect("start the server"),
    );
    let addr = format!("https://127.0.0.1:{port}");
    let cli = |args: &[&str]| {
        BIN.command()
            .args(args)
            .env_clear()
            .env("HOME", dir.path())
            .env("VAULT_ADDR", &addr)
            .env("VAULT_CACERT", dir.path().join("tls.crt"))
            .output()
            .expect("run authmount")
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        // `status` prints the seal status table once the server answers.
        let status = cli(&["status"]);
        if String::from_utf8_lossy(&status.stdout).contains("Initialized")
            || Instant::now() > deadline
        {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let init = cli(&["operator", "init"]);
    let stdout = String::from_utf8_lossy(&init.stdout);
    assert!(
        init.status.success() && stdout.contains("Initial Root Token: hvs."),
        "operator init: {stdout}\n{}\nserver log:\n{}",
        String::from_utf8_lossy(&init.stderr),
        std::fs::read_to_string(dir.path().join("server.log")).unwrap_or_default()
    );
    let banner = std::fs::read_to_string(dir.path().join("server.log")).expect("server log");
    for line in [
        format!("export VAULT_ADDR='{addr}'"),
        format!(
            "export VAULT_CACERT='{}'",
            dir.path().join("tls.crt").display()
        ),
    ] {
        assert!(banner.contains(&line), "banner lacks {line}:\n{banner}");
    }
}

#[test]
fn a_missing_file_in_the_config_stops_the_start_before_anything_is_created() {
    let dir = TempDir::new("readme-missing");
    make_config(dir.path());
    let config = dir.path().join("server.hcl");
    let text = std::fs::read_to_string(&config).expect("read server.hcl");
    for (file, setting) in [
        ("tls.crt", "tls_cert_file"),
        ("tls.key", "tls_key_file"),
        ("seal.key", "current_key"),
    ] {
        let moved = dir.path().join(format!("{file}.away"));
        std::fs::rename(dir.path().join(file), &moved).expect("move the file away");
        let (code, output) = start_fails(
            BIN,
            &[&format!("-config={}", config.display())],
            &[],
            dir.path(),
        );
        std::fs::rename(&moved, dir.path().join(file)).expect("put the file back");
        assert_eq!(code, Some(1), "{output}");
        let named = dir.path().join(file);
        assert!(
            output.contains(setting) && output.contains(&named.display().to_string()),
            "the error should name {setting} and {}:\n{output}",
            named.display()
        );
        assert!(!output.contains("server started"), "{output}");
        assert!(
            !dir.path().join("authmount.db").exists(),
            "storage was created before the start failed ({file} missing)"
        );
    }
    assert!(text.contains("tls_cert_file"));
}
