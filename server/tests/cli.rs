//! The command line end to end: the real `authmount` binary, run as an operator would
//! (private HOME, clean environment), against a real server on an ephemeral port, with
//! JWTs signed by freshly generated keys.

use std::process::Command;

use authmount_testkit::{
    free_port, seed_claims, Binary, Cli, Key, TempDir, TestServer, SEED_AUDIENCE, SEED_ISSUER,
    SEED_SUBJECT,
};
use serde_json::{json, Value};

/// The `authmount` binary cargo built for these tests.
const BIN: Binary = Binary::at(env!("CARGO_BIN_EXE_authmount"));

/// The seed role's arguments, exactly as the seed document writes them.
fn seed_role_args(mount: &str) -> Vec<String> {
    vec![
        "write".into(),
        format!("auth/{mount}/role/demo"),
        format!("bound_subject={SEED_SUBJECT}"),
        format!("bound_audiences={SEED_AUDIENCE}"),
        "user_claim=https://vault/user".into(),
        "groups_claim=https://vault/groups".into(),
        "policies=webapps".into(),
        "ttl=1h".into(),
    ]
}

fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

#[test]
fn the_seeds_commands_run_as_written_at_jwt_and_my_path() {
    let server = TestServer::start_blocking();
    let cli = Cli::new(BIN, &server);
    let signer = Key::rsa();
    cli.home().file("pub.pem", &signer.public_pem());

    // The operator logs in with the root token: it is checked, stored and shown.
    let login = cli.run(&["login", &server.root]);
    assert!(login
        .ok()
        .starts_with("Success! You are now authenticated."));
    assert_eq!(login.row("token"), server.root);
    assert_eq!(login.row("token_policies"), r#"["root"]"#);
    assert_eq!(login.row("token_duration"), "∞");
    assert_token_file(&cli, &server.root);

    // vault auth enable jwt; vault auth enable -path=my-path jwt
    assert_eq!(
        cli.run(&["auth", "enable", "jwt"]).ok(),
        "Success! Enabled jwt auth method at: jwt/\n"
    );
    assert_eq!(
        cli.run(&["auth", "enable", "-path=my-path", "jwt"]).ok(),
        "Success! Enabled jwt auth method at: my-path/\n"
    );
    let list = cli.run(&["auth", "list"]);
    let lines: Vec<&str> = list.ok().lines().collect();
    assert!(
        lines[0].starts_with("Path        Type     Accessor"),
        "{lines:?}"
    );
    assert!(
        lines[1].starts_with("----        ----     --------"),
        "{lines:?}"
    );
    assert!(
        lines[2].starts_with("jwt/        jwt      auth_jwt_"),
        "{lines:?}"
    );
    assert!(
        lines[3].starts_with("my-path/    jwt      auth_jwt_"),
        "{lines:?}"
    );
    // The token store is listed too, as Vault lists it.
    assert!(
        lines[4].starts_with("token/      token    auth_token_"),
        "{lines:?}"
    );

    for mount in ["jwt", "my-path"] {
        // vault write auth/jwt/config jwt_validation_pubkeys=@pub.pem ...
        let config = format!("auth/{mount}/config");
        assert_eq!(
            cli.run(&[
                "write",
                &config,
                "jwt_validation_pubkeys=@pub.pem",
                &format!("bound_issuer={SEED_ISSUER}"),
            ])
            .ok(),
            format!("Success! Data written to: {config}\n")
        );
        let read = cli.run(&["read", "-format=json", &config]).json();
        assert_eq!(
            read["data"]["jwt_validation_pubkeys"][0]
                .as_str()
                .map(str::trim),
            Some(signer.public_pem().trim())
        );

        // vault write auth/jwt/role/demo bound_subject=... policies=webapps ttl=1h
        assert_eq!(
            cli.run(&strs(&seed_role_args(mount))).ok(),
            format!("Success! Data written to: auth/{mount}/role/demo\n")
        );
        let role = cli.run(&["read", &format!("auth/{mount}/role/demo")]);
        role.ok();
        assert_eq!(role.row("bound_subject"), SEED_SUBJECT);
        assert_eq!(role.row("bound_audiences"), format!("[{SEED_AUDIENCE}]"));
        assert_eq!(role.row("user_claim"), "https://vault/user");
        assert_eq!(role.row("groups_claim"), "https://vault/groups");
        assert_eq!(role.row("token_policies"), "[webapps]");
        assert_eq!(role.row("token_ttl"), "1h");
        assert_eq!(
            cli.run(&["list", &format!("auth/{mount}/role")]).ok(),
            "Keys\n----\ndemo\n"
        );
    }

    // vault write auth/jwt/login role=demo jwt=...: the token table, nothing stored.
    let jwt = signer.jwt(&seed_claims("alice"));
    let written = cli.run(&[
        "write",
        "auth/jwt/login",
        "role=demo",
        &format!("jwt={jwt}"),
    ]);
    assert!(written.ok().starts_with("Key                  Value\n---"));
    let token = written.row("token");
    assert!(token.starts_with("hvs."), "{token}");
    assert_eq!(written.row("token_duration"), "1h");
    assert_eq!(written.row("token_renewable"), "true");
    assert_eq!(written.row("token_policies"), r#"["default" "webapps"]"#);
    assert_eq!(written.row("policies"), r#"["default" "webapps"]"#);
    assert_eq!(written.row("token_meta_role"), "demo");
    assert_token_file(&cli, &server.root);
    let lookup = cli.run(&["token", "lookup", &token]);
    assert_eq!(lookup.row("display_name"), "jwt-alice");
    assert_eq!(lookup.row("path"), "auth/jwt/login");

    // vault login -method=jwt -path=/my-path role=demo jwt=...: stored in ~/.vault-token.
    let login = cli.run(&[
        "login",
        "-method=jwt",
        "-path=/my-path", // the seed's spelling
        "role=demo",
        &format!("jwt={jwt}"),
    ]);
    assert!(login.ok().starts_with(
        "Success! You are now authenticated. The token information displayed below\n\
         is already stored in the token helper."
    ));
    let token = login.row("token");
    assert_eq!(login.row("token_policies"), r#"["default" "webapps"]"#);
    assert_eq!(login.row("token_meta_role"), "demo");
    assert_token_file(&cli, &token);

    // Later commands use the stored token.
    let lookup = cli.run(&["token", "lookup"]);
    lookup.ok();
    assert_eq!(lookup.row("id"), token);
    assert_eq!(lookup.row("display_name"), "my-path-alice");
    assert_eq!(lookup.row("path"), "auth/my-path/login");
    assert_eq!(lookup.row("policies"), "[default webapps]");
    assert_eq!(lookup.row("meta"), "map[role:demo]");
    assert_eq!(lookup.row("creation_ttl"), "1h");
    let json = cli.run(&["token", "lookup", "-format=json"]).json();
    assert_eq!(json["data"]["id"], json!(token));
    assert_eq!(json["data"]["policies"], json!(["default", "webapps"]));
    // -field prints the bare value (no newline: stdout is a pipe).
    assert_eq!(
        cli.run(&["token", "lookup", "-field=display_name"]).ok(),
        "my-path-alice"
    );

    let renew = cli.run(&["token", "renew", "-increment=30m"]);
    assert_eq!(renew.row("token"), token);
    assert_eq!(renew.row("token_duration"), "30m");
    assert_eq!(
        cli.run(&["token", "revoke", "-self"]).ok(),
        "Success! Revoked token (if it existed)\n"
    );
    cli.run(&["token", "lookup"]).remote_error(&[
        "Error looking up token",
        "Code: 403",
        "* permission denied",
    ]);

    // -token-only prints the token alone and stores nothing.
    let only = cli.run(&[
        "login",
        "-method=jwt",
        "-token-only",
        "role=demo",
        &format!("jwt={jwt}"),
    ]);
    assert!(only.ok().starts_with("hvs.") && !only.stdout.contains('\n'));
    assert_token_file(&cli, &token);
}

#[track_caller]
fn assert_token_file(cli: &Cli, token: &str) {
    let path = cli.token_file();
    assert_eq!(std::fs::read_to_string(&path).expect("token file"), token);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).expect("stat").permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "mode of {}", path.display());
    }
}

#[test]
fn auth_methods_are_enabled_tuned_listed_and_disabled() {
    let server = TestServer::start_blocking();
    let cli = Cli::new(BIN, &server).env("VAULT_TOKEN", &server.root);

    assert_eq!(
        cli.run(&[
            "auth",
            "enable",
            "-path=/team/a/jwt",
            "-description=team A logins",
            "-default-lease-ttl=30m",
            "--max-lease-ttl",
            "2h",
            "jwt",
        ])
        .ok(),
        "Success! Enabled jwt auth method at: team/a/jwt/\n"
    );
    let list = cli.run(&["auth", "list"]);
    let row = list
        .ok()
        .lines()
        .find(|l| l.starts_with("team/a/jwt/"))
        .expect("the mount is listed");
    assert!(row.contains("team A logins"), "{row}");
    let detailed = cli.run(&["auth", "list", "-detailed"]);
    let row = detailed
        .ok()
        .lines()
        .find(|l| l.starts_with("team/a/jwt/"))
        .expect("the mount is listed");
    assert!(row.contains("30m") && row.contains("2h"), "{row}");

    let tune = cli.run(&["read", "sys/auth/team/a/jwt/tune"]);
    assert_eq!(tune.row("default_lease_ttl"), "30m");
    assert_eq!(tune.row("max_lease_ttl"), "2h");
    assert_eq!(tune.row("description"), "team A logins");

    assert_eq!(
        cli.run(&[
            "auth",
            "tune",
            "-default-lease-ttl=1h",
            "-description=tuned",
            "team/a/jwt"
        ])
        .ok(),
        "Success! Tuned the auth method at: team/a/jwt/\n"
    );
    let tune = cli.run(&["read", "sys/auth/team/a/jwt/tune"]);
    assert_eq!(tune.row("default_lease_ttl"), "1h");
    assert_eq!(tune.row("max_lease_ttl"), "2h");
    assert_eq!(tune.row("description"), "tuned");

    let json = cli.run(&["auth", "list", "-format=json"]).json();
    assert_eq!(json["team/a/jwt/"]["type"], json!("jwt"));
    assert_eq!(
        json["team/a/jwt/"]["config"]["default_lease_ttl"],
        json!(3600)
    );

    assert_eq!(
        cli.run(&["auth", "disable", "team/a/jwt"]).ok(),
        "Success! Disabled the auth method (if it existed) at: team/a/jwt/\n"
    );
    assert!(!cli.run(&["auth", "list"]).ok().contains("team/a/jwt/"));
}

#[test]
fn write_takes_values_as_vault_does() {
    let server = TestServer::start_blocking();
    let cli = Cli::new(BIN, &server).env("VAULT_TOKEN", &server.root);
    cli.run(&["auth", "enable", "jwt"]).ok();
    cli.home()
        .file("mappings.json", r#"{"email": "mail", "name": "display"}"#);

    // Repeated keys become a list, JSON values become maps, `k=-` reads stdin,
    // `k=@file` reads a file.
    cli.run_stdin(
        &[
            "write",
            "auth/jwt/role/x",
            "bound_audiences=a",
            "bound_audiences=b",
            r#"bound_claims={"team":"dev","level":["1","2"]}"#,
            "claim_mappings=@mappings.json",
            "user_claim=-",
        ],
        "sub-from-stdin",
    )
    .ok();
    let role = cli.run(&["read", "-format=json", "auth/jwt/role/x"]).json();
    // -format=yaml prints the same answer as YAML.
    let yaml = cli.run(&["read", "-format=yaml", "auth/jwt/role/x"]);
    let yaml = yaml.ok();
    for line in [
        "data:",
        "  bound_audiences:",
        "  - a",
        "  - b",
        "  user_claim: sub-from-stdin",
    ] {
        assert!(yaml.lines().any(|l| l == line), "{line:?} not in:\n{yaml}");
    }
    let data = &role["data"];
    assert_eq!(data["bound_audiences"], json!(["a", "b"]));
    assert_eq!(
        data["bound_claims"],
        json!({"team": "dev", "level": ["1", "2"]})
    );
    assert_eq!(
        data["claim_mappings"],
        json!({"email": "mail", "name": "display"})
    );
    assert_eq!(data["user_claim"], json!("sub-from-stdin"));
    // Fields print as Go's %v, or as JSON with -format=json.
    assert_eq!(
        cli.run(&["read", "-field=bound_claims", "auth/jwt/role/x"])
            .ok(),
        "map[level:[1 2] team:dev]"
    );
    assert_eq!(
        cli.run(&[
            "read",
            "-field=bound_audiences",
            "-format=json",
            "auth/jwt/role/x"
        ])
        .json(),
        json!(["a", "b"])
    );

    // A lone `-` reads the whole body as JSON from stdin.
    cli.run_stdin(
        &["write", "auth/jwt/role/y", "-"],
        r#"{"user_claim": "email", "bound_audiences": ["z"], "token_policies": "p1,p2"}"#,
    )
    .ok();
    let role = cli.run(&["read", "auth/jwt/role/y"]);
    assert_eq!(role.row("user_claim"), "email");
    assert_eq!(role.row("token_policies"), "[p1 p2]");

    // `\@` is a literal @.
    cli.run(&[
        "write",
        "auth/jwt/role/z",
        r"user_claim=\@odd",
        "bound_audiences=a",
    ])
    .ok();
    assert_eq!(
        cli.run(&["read", "-field=user_claim", "auth/jwt/role/z"])
            .ok(),
        "@odd"
    );

    // The server's warnings go to stderr; the write still succeeds.
    let warned = cli.run(&[
        "write",
        "auth/jwt/role/w",
        "user_claim=sub",
        "bound_audiences=a",
        "bogus=1",
    ]);
    assert_eq!(warned.ok(), "Success! Data written to: auth/jwt/role/w\n");
    assert!(
        warned
            .stderr
            .starts_with("WARNING! The following warnings were returned from Vault:"),
        "{warned:#?}"
    );
    assert!(warned.stderr.contains("bogus"), "{warned:#?}");

    assert_eq!(
        cli.run(&["list", "auth/jwt/role/"]).ok(),
        "Keys\n----\nw\nx\ny\nz\n"
    );
    assert_eq!(
        cli.run(&["delete", "auth/jwt/role/y"]).ok(),
        "Success! Data deleted (if it existed) at: auth/jwt/role/y\n"
    );
    cli.run(&["read", "auth/jwt/role/y"])
        .remote_error(&["No value found at auth/jwt/role/y"]);
    assert_eq!(
        cli.run(&["list", "-format=json", "auth/jwt/role"]).json(),
        json!(["w", "x", "z"])
    );
}

#[test]
fn usage_errors_exit_1_before_any_request() {
    // Nothing listens at this address: a local error must not even try to connect.
    let cli = Cli::with_address(BIN, &authmount_testkit::unreachable_address());
    cli.run(&["auth", "enable"])
        .local_error("required arguments were not provided");
    cli.run(&["read", "-bogus-flag", "auth/jwt/config"])
        .local_error("unexpected argument '--bogus-flag'");
    cli.run(&["frobnicate"])
        .local_error("unrecognized subcommand 'frobnicate'");
    cli.run(&["auth", "disable"])
        .local_error("required arguments were not provided");
    cli.run(&["read", "a", "b"])
        .local_error("unexpected argument 'b'");
    cli.run(&["write", "auth/jwt/role/x"])
        .local_error("Must supply data or use -force");
    cli.run(&["write", "auth/jwt/role/x", "novalue"])
        .local_error(r#"Failed to parse K=V data: invalid key/value pair "novalue": format must be key=value"#);
    cli.run(&[
        "write",
        "auth/jwt/config",
        "jwt_validation_pubkeys=@missing.pem",
    ])
    .local_error("error reading file");
    cli.run_stdin(&["write", "auth/jwt/config", "-"], "[1, 2]")
        .local_error("the JSON must be an object");
    cli.run(&["auth", "enable", "-default-lease-ttl=1hr", "jwt"])
        .local_error("invalid duration");
    cli.run(&["read", "-format=xml", "auth/jwt/config"])
        .local_error("Invalid output format: xml");
    cli.run(&["token", "revoke"])
        .local_error("required arguments were not provided");
    cli.run(&["token", "revoke", "-self", "hvs.x"])
        .local_error("cannot be used with");
    cli.run(&["login"]).local_error("Not enough arguments");
    cli.run(&["policy", "write", "webapps", "missing.hcl"])
        .local_error("Error opening policy file");
    let cli = cli.env("VAULT_SKIP_VERIFY", "maybe");
    cli.run(&["auth", "list"])
        .local_error("could not parse VAULT_SKIP_VERIFY");
}

#[test]
fn server_errors_exit_2_with_the_servers_message() {
    let server = TestServer::start_blocking();
    let root = Cli::new(BIN, &server).env("VAULT_TOKEN", &server.root);
    root.run(&["auth", "enable", "jwt"]).ok();

    root.run(&["auth", "enable", "jwt"]).remote_error(&[
        "Error enabling jwt auth: Error making API request.",
        &format!("URL: POST {}/v1/sys/auth/jwt", server.base),
        "Code: 400. Errors:",
        "* path is already in use at jwt/",
    ]);
    root.run(&["write", "auth/nowhere/role/x", "ttl=1h"])
        .remote_error(&[
            "Error writing data to auth/nowhere/role/x: Error making API request.",
            &format!("URL: PUT {}/v1/auth/nowhere/role/x", server.base),
            "Code: 404. Errors:",
            "no handler for route \"auth/nowhere/role/x\"",
        ]);
    root.run(&["write", "auth/jwt/role/bad", "user_claim=sub", "ttl=1hr"])
        .remote_error(&["Code: 400", "ttl"]);
    root.run(&["read", "auth/jwt/role/none"])
        .remote_error(&["No value found at auth/jwt/role/none"]);
    root.run(&["list", "auth/jwt/role"])
        .remote_error(&["No value found at auth/jwt/role/"]);
    root.run(&["auth", "tune", "-max-lease-ttl=1h", "nope"])
        .remote_error(&[
            "Error tuning auth method nope/",
            "tune of path \"auth/nope/\" failed: no mount entry found",
        ]);

    // A JWT signed by a key the mount does not know.
    let trusted = Key::rsa();
    let stranger = Key::rsa();
    root.home().file("pub.pem", &trusted.public_pem());
    root.run(&[
        "write",
        "auth/jwt/config",
        "jwt_validation_pubkeys=@pub.pem",
    ])
    .ok();
    root.run(&strs(&seed_role_args("jwt"))).ok();
    let forged = stranger.jwt(&seed_claims("mallory"));
    let refused = root.run(&[
        "login",
        "-method=jwt",
        "role=demo",
        &format!("jwt={forged}"),
    ]);
    refused.remote_error(&[
        "Error authenticating: Error making API request.",
        &format!("URL: PUT {}/v1/auth/jwt/login", server.base),
        "Code: 400. Errors:",
    ]);
    assert!(
        !root.token_file().exists(),
        "a refused login stores nothing"
    );
    root.run(&["login", "-method=jwt", "role=nope", "jwt=x.y.z"])
        .remote_error(&["Error authenticating:", "Code: 400"]);

    // No token at all.
    let anonymous = Cli::new(BIN, &server);
    anonymous.run(&["auth", "list"]).remote_error(&[
        "Error listing enabled authentications: Error making API request.",
        "Code: 403. Errors:",
        "* permission denied",
    ]);
    anonymous
        .run(&["login", "not-a-token"])
        .remote_error(&["error looking up token", "Code: 403"]);

    // Nobody answers.
    let address = authmount_testkit::unreachable_address();
    let nobody = Cli::with_address(BIN, &address);
    nobody.run(&["auth", "list"]).remote_error(&[&format!(
        "Error listing enabled authentications: Get \"{address}/v1/sys/auth\": "
    )]);
    nobody
        .run(&["write", "auth/jwt/role/x", "ttl=1h"])
        .remote_error(&[&format!("Put \"{address}/v1/auth/jwt/role/x\": ")]);
}

/// The policy endpoints come with ACL policies (another change): here the client side is
/// checked to send Vault's requests and to report the server's refusal. Without a token,
/// the server refuses them with 403 before and after ACL policies exist.
#[test]
fn policy_commands_report_the_servers_error() {
    let server = TestServer::start_blocking();
    let cli = Cli::new(BIN, &server);
    let policy = cli.home().file(
        "webapps.hcl",
        "path \"secret/webapps/*\" {\n  capabilities = [\"read\"]\n}\n",
    );
    let policy = policy.display().to_string();
    let url = |method: &str, path: &str| format!("URL: {method} {}/v1/{path}", server.base);

    cli.run(&["policy", "write", "WebApps", &policy])
        .remote_error(&[
            "Error uploading policy: Error making API request.",
            &url("PUT", "sys/policies/acl/webapps"),
            "Code: 403. Errors:",
            "* permission denied",
        ]);
    cli.run_stdin(&["policy", "write", "webapps", "-"], "path \"x\" {}")
        .remote_error(&[
            &url("PUT", "sys/policies/acl/webapps"),
            "* permission denied",
        ]);
    cli.run(&["policy", "read", "webapps"]).remote_error(&[
        "Error reading policy named webapps: Error making API request.",
        &url("GET", "sys/policies/acl/webapps"),
        "* permission denied",
    ]);
    cli.run(&["policy", "list"]).remote_error(&[
        "Error listing policies: Error making API request.",
        &url("GET", "sys/policy"),
        "* permission denied",
    ]);
    cli.run(&["policy", "delete", "webapps"]).remote_error(&[
        "Error deleting webapps: Error making API request.",
        &url("DELETE", "sys/policies/acl/webapps"),
        "* permission denied",
    ]);
}

#[test]
fn help_is_everywhere_with_one_dash_or_two() {
    let cli = Cli::with_address(BIN, &authmount_testkit::unreachable_address());
    for command in [
        "",
        "server",
        "auth",
        "auth enable",
        "auth disable",
        "auth list",
        "auth tune",
        "write",
        "read",
        "list",
        "delete",
        "login",
        "token",
        "token lookup",
        "token renew",
        "token revoke",
        "policy",
        "policy write",
        "policy read",
        "policy list",
        "policy delete",
    ] {
        for flag in ["-h", "-help", "--help"] {
            let mut args: Vec<&str> = command.split_whitespace().collect();
            args.push(flag);
            let run = cli.run(&args);
            let usage = format!("Usage: authmount {command}").trim_end().to_string();
            assert!(
                run.ok().contains(&usage),
                "{args:?}: no {usage:?} in {run:#?}"
            );
        }
    }
    let write = cli.run(&["write", "-h"]);
    assert!(write.ok().contains("k=@file"), "{write:#?}");
    assert!(write.stdout.contains("-address"), "{write:#?}");
}

#[test]
fn the_environment_configures_the_client() {
    let server = TestServer::start_blocking();
    let cli = Cli::new(BIN, &server);
    std::fs::write(cli.token_file(), "hvs.stale").expect("token file");

    // The stored token is used, and refused.
    cli.run(&["auth", "list"]).remote_error(&["Code: 403"]);
    // VAULT_TOKEN wins over it; VAULT_FORMAT picks the format.
    let cli = cli.env("VAULT_TOKEN", &server.root);
    cli.run(&["auth", "list"]).ok();
    let cli = cli.env("VAULT_FORMAT", "json");
    assert!(cli.run(&["auth", "list"]).json().is_object());
    // -format wins over VAULT_FORMAT; -address wins over VAULT_ADDR.
    let cli = Cli::with_address(BIN, &authmount_testkit::unreachable_address())
        .env("VAULT_TOKEN", &server.root)
        .env("VAULT_FORMAT", "json");
    let list = cli.run(&[
        "auth",
        "list",
        "-format=table",
        &format!("-address={}", server.base),
    ]);
    assert!(list.ok().starts_with("Path"), "{list:#?}");

    // Logging in while VAULT_TOKEN is set warns that it wins.
    let login = cli.run(&[
        "login",
        "-format=table",
        &format!("-address={}", server.base),
        &server.root,
    ]);
    login.ok();
    assert!(
        login
            .stderr
            .contains("WARNING! The VAULT_TOKEN environment variable is set!"),
        "{login:#?}"
    );
    // -no-store stores nothing.
    let other = Cli::new(BIN, &server);
    other.run(&["login", "-no-store", &server.root]).ok();
    assert!(!other.token_file().exists());
}

/// VAULT_CACERT and VAULT_SKIP_VERIFY against a TLS server (`openssl s_server` serving a
/// canned `sys/auth` answer): the given CA is trusted, an unknown one is refused, and
/// skipping verification is explicit.
#[test]
fn tls_trusts_the_given_ca_or_skips_verification_when_told() {
    let dir = TempDir::new("tls");
    let openssl = |args: &[&str]| {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(dir.path())
            .output()
            .expect("run openssl");
        assert!(out.status.success(), "openssl {args:?}: {out:?}");
    };
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
    ];
    openssl(
        &[
            &["req", "-x509"][..],
            &ec,
            &[
                "-keyout",
                "ca.key",
                "-out",
                "ca.pem",
                "-days",
                "1",
                "-subj",
                "/CN=authmount test CA",
            ],
        ]
        .concat(),
    );
    openssl(
        &[
            &["req"][..],
            &ec,
            &[
                "-keyout",
                "leaf.key",
                "-out",
                "leaf.csr",
                "-subj",
                "/CN=localhost",
            ],
        ]
        .concat(),
    );
    dir.file(
        "leaf.ext",
        "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
    );
    openssl(&[
        "x509",
        "-req",
        "-in",
        "leaf.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "leaf.pem",
        "-days",
        "1",
        "-extfile",
        "leaf.ext",
    ]);
    // s_server -WWW serves files under its working directory: GET /v1/sys/auth.
    std::fs::create_dir_all(dir.path().join("v1/sys")).expect("mkdir");
    dir.file(
        "v1/sys/auth",
        r#"{"data":{"tls-jwt/":{"type":"jwt","accessor":"auth_jwt_tls","description":"over TLS"}}}"#,
    );
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").port()
    };
    let mut tls_server = Command::new("openssl")
        .args([
            "s_server", "-quiet", "-WWW", "-cert", "leaf.pem", "-key", "leaf.key",
        ])
        .args(["-accept", &format!("127.0.0.1:{port}")])
        .current_dir(dir.path())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start openssl s_server");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "s_server did not start"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let address = format!("https://localhost:{port}");
    let ca = dir.path().join("ca.pem").display().to_string();

    let trusting = Cli::with_address(BIN, &address)
        .env("VAULT_TOKEN", "t")
        .env("VAULT_CACERT", &ca);
    let list = trusting.run(&["auth", "list"]);
    let by_flag =
        Cli::with_address(BIN, &address).run(&["auth", "list", &format!("-ca-cert={ca}")]);
    let refusing = Cli::with_address(BIN, &address).run(&["auth", "list"]);
    let skipping = Cli::with_address(BIN, &address)
        .env("VAULT_SKIP_VERIFY", "true")
        .run(&["auth", "list"]);
    let skipping_by_flag =
        Cli::with_address(BIN, &address).run(&["auth", "list", "-tls-skip-verify"]);
    let _ = tls_server.kill();
    let _ = tls_server.wait();

    assert!(
        list.ok()
            .contains("tls-jwt/    jwt     auth_jwt_tls    over TLS"),
        "{list:#?}"
    );
    assert!(by_flag.ok().contains("tls-jwt/"), "{by_flag:#?}");
    refusing.remote_error(&["Error listing enabled authentications: Get", "certificate"]);
    assert!(skipping.ok().contains("tls-jwt/"), "{skipping:#?}");
    assert!(
        skipping_by_flag.ok().contains("tls-jwt/"),
        "{skipping_by_flag:#?}"
    );
    Cli::with_address(BIN, &address)
        .env("VAULT_CACERT", "/nonexistent/ca.pem")
        .run(&["auth", "list"])
        .local_error("Error reading CA file /nonexistent/ca.pem");
}

/// The README's command-line block runs as written (bash, with `authmount` on PATH), and
/// again: the second run finds the mounts enabled. It leaves its working directory untouched.
#[test]
fn the_readme_command_line_runs_as_written() {
    let script = authmount_testkit::readme_block("sh cli");
    let server = TestServer::start_blocking();
    let home = TempDir::new("readme-home");
    let bin_dir = BIN.path().parent().expect("binary directory");
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let run = || {
        Command::new("bash")
            .args(["-c", &script])
            .env_clear()
            .env("PATH", &path)
            .env("HOME", home.path())
            .env("VAULT_ADDR", &server.base)
            .env("VAULT_TOKEN", &server.root)
            .current_dir(home.path())
            .output()
            .expect("run bash")
    };
    let first = run();
    assert!(
        first.status.success(),
        "the README block failed\nstdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&first.stdout),
        String::from_utf8_lossy(&first.stderr)
    );
    let out = run();
    assert!(
        out.status.success(),
        "the README block failed on its second run\nstdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let left: Vec<_> = std::fs::read_dir(home.path())
        .expect("read home")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name())
        .filter(|name| name != ".vault-token")
        .collect();
    assert!(
        left.is_empty(),
        "the block wrote into its directory: {left:?}"
    );
    let out = first;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "the README block failed\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    for expected in [
        "Success! Enabled jwt auth method at: jwt/\n",
        "Success! Enabled jwt auth method at: my-path/\n",
        "Success! Data written to: auth/jwt/config\n",
        "Success! Data written to: auth/my-path/role/demo\n",
        "Keys\n----\ndemo\n",
        "Success! You are now authenticated.",
        "Success! Revoked token (if it existed)\n",
    ] {
        assert!(
            stdout.contains(expected),
            "missing {expected:?} in:\n{stdout}"
        );
    }
    let has_row = |key: &str, value: &str| {
        stdout.lines().any(|line| {
            line.split_once(' ')
                .is_some_and(|(k, v)| k == key && v.trim() == value)
        })
    };
    for (key, value) in [
        ("bound_subject", SEED_SUBJECT),
        ("token_policies", r#"["default" "webapps"]"#),
        ("token_meta_role", "demo"),
        ("display_name", "my-path-alice"),
        ("path", "auth/my-path/login"),
    ] {
        assert!(has_row(key, value), "no row {key} {value} in:\n{stdout}");
    }
}

/// With the root token the policy commands work end to end: write from a file, read, list,
/// delete; a malformed policy is the server's 400.
#[test]
fn policy_commands_manage_acl_policies() {
    let server = TestServer::start_blocking();
    let cli = Cli::new(BIN, &server).env("VAULT_TOKEN", &server.root);
    let text = "path \"auth/jwt/role/*\" {\n  capabilities = [\"read\", \"list\"]\n}\n";
    let file = cli.home().file("readers.hcl", text);
    let file = file.display().to_string();
    assert_eq!(
        cli.run(&["policy", "write", "Readers", &file]).ok(),
        "Success! Uploaded policy: readers\n"
    );
    assert_eq!(
        cli.run(&["policy", "read", "readers"]).ok().trim(),
        text.trim()
    );
    let list = cli.run(&["policy", "list"]);
    assert_eq!(
        list.ok().lines().collect::<Vec<_>>(),
        ["default", "readers", "root"]
    );
    let bad = cli
        .home()
        .file("bad.hcl", "path \"x\" { capabilities = [\"reed\"] }");
    cli.run(&["policy", "write", "bad", &bad.display().to_string()])
        .remote_error(&["Code: 400", "invalid capability \"reed\""]);
    cli.run(&["policy", "delete", "readers"]).ok();
    cli.run(&["policy", "read", "readers"])
        .remote_error(&["No policy named: readers"]);
}

/// `path-help` prints the help the server generates from the path table.
#[test]
fn path_help_prints_the_servers_help() {
    let server = TestServer::start_blocking();
    let cli = Cli::new(BIN, &server).env("VAULT_TOKEN", &server.root);
    cli.run(&["auth", "enable", "jwt"]).ok();
    let help = cli.run(&["path-help", "auth/jwt/role/demo"]);
    let text = help.ok();
    for needle in ["bound_audiences", "user_claim", "token_policies"] {
        assert!(text.contains(needle), "{needle} missing from:\n{text}");
    }
    let json = cli
        .run(&["path-help", "-format=json", "auth/jwt/login"])
        .json();
    assert!(json["openapi"]["paths"].is_object(), "{json}");
    cli.run(&["path-help", "auth/jwt/nope"])
        .remote_error(&["Error retrieving help", "unsupported path"]);
}

/// Runs `authmount login -method=oidc ...` (a child process with a private HOME), waits for the
/// authorization URL on stderr, drives the real provider's forms with the browser stand-in,
/// which then makes the browser's last hop to the command's listener; returns the command's
/// exit status, stdout and stderr, and what the listener answered the browser.
fn oidc_login(cli: &Cli, args: &[&str]) -> (i32, String, String, Value) {
    use std::io::{BufRead, BufReader, Read};
    let mut child = cli.spawn(args);
    let mut stderr = BufReader::new(child.stderr.take().expect("stderr"));
    let mut seen = String::new();
    let url = loop {
        let mut line = String::new();
        if stderr.read_line(&mut line).expect("stderr") == 0 {
            let _ = child.kill();
            panic!("no authorization URL on stderr:\n{seen}");
        }
        seen.push_str(&line);
        if let Some(url) = line.trim().strip_prefix("http://127.0.0.1:") {
            break format!("http://127.0.0.1:{url}");
        }
    };
    let browser = authmount_testkit::oidc::driver(&[&url, "--login", "alice", "--deliver"]);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("login -method=oidc did not finish; browser: {browser}\n{seen}");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    let mut out = String::new();
    child
        .stdout
        .take()
        .expect("stdout")
        .read_to_string(&mut out)
        .expect("stdout");
    let _ = stderr.read_to_string(&mut seen);
    (status.code().unwrap_or(-1), out, seen, browser)
}

/// `login -method=oidc`: the command listens on loopback, prints the provider's URL
/// (`skip_browser=true`), completes the callback (query, and form_post with an ID token),
/// stores the token and prints the token table.
#[test]
fn oidc_login_listens_completes_the_callback_and_stores_the_token() {
    let Some(idp) = authmount_testkit::oidc::shared_idp() else {
        return;
    };
    let (client_id, secret) = authmount_testkit::oidc::CLIENT;
    let server = TestServer::start_blocking();
    let cli = Cli::new(BIN, &server);
    cli.run(&["login", &server.root]).ok();
    for (mount, extra) in [
        ("team/oidc", vec![]),
        (
            "team/fp",
            vec![
                "oidc_response_mode=form_post",
                "oidc_response_types=id_token",
            ],
        ),
    ] {
        cli.run(&["auth", "enable", &format!("-path={mount}"), "oidc"])
            .ok();
        let discovery = format!("oidc_discovery_url={}", idp.issuer);
        let id = format!("oidc_client_id={client_id}");
        let key = format!("oidc_client_secret={secret}");
        let mut config = vec!["write", &format!("auth/{mount}/config")]
            .into_iter()
            .map(str::to_string)
            .collect::<Vec<_>>();
        config.extend([discovery, id, key, "default_role=r1".into()]);
        config.extend(extra.iter().map(|s| s.to_string()));
        cli.run(&strs(&config)).ok();
        cli.run(&[
            "write",
            &format!("auth/{mount}/role/r1"),
            "role_type=oidc",
            "user_claim=sub",
            "oidc_scopes=email",
            "allowed_redirect_uris=http://localhost:8250/oidc/callback",
            "token_policies=p1",
        ])
        .ok();
    }
    std::fs::remove_file(cli.token_file()).expect("forget the root token");

    for mount in ["team/oidc", "team/fp"] {
        let port = free_port();
        let (code, out, err, browser) = oidc_login(
            &cli,
            &[
                "login",
                "-method=oidc",
                &format!("-path={mount}"),
                "role=r1",
                "skip_browser=true",
                &format!("port={port}"),
            ],
        );
        assert_eq!(
            code, 0,
            "{mount}\nstdout: {out}\nstderr: {err}\nbrowser: {browser}"
        );
        assert!(
            err.contains("Open the following link in your browser"),
            "{err}"
        );
        assert_eq!(browser["delivered"]["status"], 200, "{browser}");
        assert!(
            browser["delivered"]["body"]
                .as_str()
                .unwrap_or_default()
                .contains("Signed in"),
            "{browser}"
        );
        assert!(
            out.starts_with("Success! You are now authenticated."),
            "{out}"
        );
        let token = std::fs::read_to_string(cli.token_file()).expect("the token is stored");
        assert!(out.contains(&token), "{out}");
        let lookup = cli.run(&["token", "lookup", "-format=json"]).json();
        assert_eq!(
            lookup["data"]["path"],
            format!("auth/{mount}/oidc/callback"),
            "{lookup}"
        );
        assert_eq!(lookup["data"]["meta"]["role"], "r1");
        assert_eq!(lookup["data"]["policies"], json!(["default", "p1"]));
        std::fs::remove_file(cli.token_file()).expect("remove the token");
    }

    // A refusal of auth_url ends the command at once: a remote error, nothing stored.
    let port = free_port();
    cli.run(&[
        "login",
        "-method=oidc",
        "-path=team/oidc",
        "role=nope",
        "skip_browser=true",
        &format!("port={port}"),
    ])
    .remote_error(&["Error authenticating", "role \"nope\" could not be found"]);
    assert!(!cli.token_file().exists());
    cli.run(&["login", "-method=oidc", "skip_browser=maybe"])
        .local_error("skip_browser");
}

/// `-wrap-ttl` wraps any answer (the table shows the wrapping rows) and `unwrap` hands it
/// over once: by TOKEN beside the current token, or as the current token.
#[test]
fn wrap_ttl_wraps_an_answer_and_unwrap_hands_it_over_once() {
    let server = TestServer::start_blocking();
    let cli = Cli::new(BIN, &server).env("VAULT_TOKEN", &server.root);
    let wrapped = cli.run(&[
        "write",
        "-wrap-ttl=5m",
        "sys/wrapping/wrap",
        "password=hunter2",
    ]);
    let wrapping = wrapped.row("wrapping_token:");
    assert_eq!(wrapped.row("wrapping_token_ttl:"), "5m");
    assert_eq!(
        wrapped.row("wrapping_token_creation_path:"),
        "sys/wrapping/wrap"
    );
    let unwrapped = cli.run(&["unwrap", "-field=password", &wrapping]);
    assert_eq!(unwrapped.ok().trim(), "hunter2");
    cli.run(&["unwrap", &wrapping])
        .remote_error(&["Code: 400", "wrapping token is not valid or does not exist"]);

    // A wrapped token creation, unwrapped by the wrapping token itself (VAULT_TOKEN).
    let created = Cli::new(BIN, &server)
        .env("VAULT_TOKEN", &server.root)
        .env("VAULT_WRAP_TTL", "90")
        .run(&[
            "write",
            "-format=json",
            "auth/token/create",
            "policies=default",
        ]);
    let info = created.json()["wrap_info"].clone();
    assert_eq!(info["ttl"], 90);
    let wrapping = info["token"].as_str().unwrap().to_string();
    let receiver = Cli::new(BIN, &server).env("VAULT_TOKEN", &wrapping);
    let token = receiver.run(&["unwrap", "-field=token"]);
    let token = token.ok().trim().to_string();
    assert!(token.starts_with("hvs."), "{token}");
    let me =
        Cli::new(BIN, &server)
            .env("VAULT_TOKEN", &token)
            .run(&["token", "lookup", "-format=json"]);
    assert_eq!(me.json()["data"]["accessor"], info["wrapped_accessor"]);
    // The same token, looked up by its accessor.
    let accessor = info["wrapped_accessor"].as_str().unwrap();
    let by_accessor = cli.run(&["token", "lookup", "-accessor", accessor]);
    assert_eq!(by_accessor.row("accessor"), accessor);
    assert_eq!(by_accessor.row("id"), "n/a");
    // A bad VAULT_WRAP_TTL is a usage error before any request.
    cli.env("VAULT_WRAP_TTL", "soon")
        .run(&["read", "auth/token/lookup-self"])
        .local_error("VAULT_WRAP_TTL");
}

/// `token create` with Vault's flags prints the token table (or one field), and `token
/// capabilities` prints what a token may do, as `bao` prints them.
#[test]
fn token_create_and_capabilities_print_as_vaults_cli() {
    let server = TestServer::start_blocking();
    let cli = Cli::new(BIN, &server).env("VAULT_TOKEN", &server.root);
    let text = "path \"auth/jwt/role/*\" {\n  capabilities = [\"read\", \"list\"]\n}\n";
    let file = cli.home().file("readers.hcl", text);
    cli.run(&["policy", "write", "readers", &file.display().to_string()])
        .ok();

    let created = cli.run(&[
        "token",
        "create",
        "-policy=readers",
        "-ttl=1h",
        "-display-name=ci",
        "-metadata=team=a",
        "-metadata=purpose=ci",
        "-use-limit=5",
    ]);
    created.ok();
    let token = created.row("token");
    assert!(token.starts_with("hvs."), "{token}");
    assert_eq!(created.row("token_duration"), "1h");
    assert_eq!(created.row("token_renewable"), "true");
    assert_eq!(created.row("token_policies"), r#"["default" "readers"]"#);
    assert_eq!(created.row("token_meta_team"), "a");
    assert_eq!(created.row("token_meta_purpose"), "ci");
    let looked = cli.run(&["token", "lookup", "-format=json", &token]).json();
    assert_eq!(looked["data"]["display_name"], "token-ci");
    assert_eq!(looked["data"]["num_uses"], 5);
    assert_eq!(looked["data"]["orphan"], false);

    // -orphan, -type=batch, -renewable=false, -field.
    let orphan = cli
        .run(&[
            "token",
            "create",
            "-orphan",
            "-policy=readers",
            "-format=json",
        ])
        .json();
    assert_eq!(orphan["auth"]["orphan"], true, "{orphan}");
    let batch = cli.run(&["token", "create", "-type=batch", "-policy=readers"]);
    batch.ok();
    assert!(batch.row("token").starts_with("hvb."));
    assert_eq!(batch.row("token_accessor"), "n/a");
    let fixed = cli
        .run(&["token", "create", "-renewable=false", "-format=json"])
        .json();
    assert_eq!(fixed["auth"]["renewable"], false, "{fixed}");
    let bare = cli.run(&["token", "create", "-field=token", "-policy=readers"]);
    assert!(bare.ok().starts_with("hvs."), "{}", bare.ok());
    cli.run(&["token", "create", "-type=gold"])
        .remote_error(&["Error creating token", "Code: 400"]);
    cli.run(&["token", "create", "-metadata=novalue"])
        .local_error("missing = in KV pair");

    // token capabilities PATH (the current token), TOKEN PATH, TOKEN PATH PATH.
    assert_eq!(
        cli.run(&["token", "capabilities", "sys/auth"]).ok(),
        "root\n"
    );
    assert_eq!(
        cli.run(&["token", "capabilities", &token, "auth/jwt/role/demo"])
            .ok(),
        "list, read\n"
    );
    let json = cli
        .run(&[
            "token",
            "capabilities",
            "-format=json",
            &token,
            "auth/jwt/role/demo",
        ])
        .json();
    assert_eq!(json, json!(["list", "read"]));
    let two = cli.run(&[
        "token",
        "capabilities",
        &token,
        "auth/jwt/role/x",
        "sys/auth",
    ]);
    let lines: Vec<&str> = two.ok().lines().collect();
    assert_eq!(
        lines[0].split_whitespace().collect::<Vec<_>>(),
        ["Path", "Capabilities"]
    );
    assert_eq!(
        lines[2].split_whitespace().collect::<Vec<_>>(),
        ["auth/jwt/role/x", "list,", "read"]
    );
    assert_eq!(
        lines[3].split_whitespace().collect::<Vec<_>>(),
        ["sys/auth", "deny"]
    );
    // The token itself may ask about itself: the default policy allows capabilities-self.
    let own = Cli::new(BIN, &server).env("VAULT_TOKEN", &token);
    assert_eq!(
        own.run(&["token", "capabilities", "auth/jwt/role/demo"])
            .ok(),
        "list, read\n"
    );
    cli.run(&[
        "token",
        "capabilities",
        "hvs.bogus00000000000000",
        "sys/auth",
    ])
    .remote_error(&["Error listing capabilities", "invalid token"]);
}
