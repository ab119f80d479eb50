//! The README's "Beyond Vault" block (`sh beyond-vault`) runs as written, twice, against a
//! real server: inline keys, a single-use role, login explain naming the failing bound claim,
//! the replayed login refused, and the role lint's warning for a GitHub role bound by names
//! while the recommended GitHub and GitLab roles are written without one.

use authmount_testkit::{readme_block, TestServer};

#[tokio::test]
async fn the_readme_beyond_vault_block_runs_as_written_and_again() {
    let script = readme_block("sh beyond-vault");
    let server = TestServer::start().await;
    for round in ["first", "second"] {
        let stdout = server.run_script(&script, round).await;
        for expected in [
            r#""allowed":true"#,
            r#""failed_check":"bound_claim""#,
            r#""claim":"project_id""#,
            r#""token":"7""#,
            r#"claim \"project_id\" does not match any associated bound claim values"#,
            r#""key_source":"jwks_inline""#,
            r#""client_token":"hvs."#,
            "second login: 400",
            "token already used",
            "weak binding: GitHub Actions role bound by repository or owner names",
            "recommended roles written without warnings",
        ] {
            assert!(
                stdout.contains(expected),
                "{round} run: missing {expected} in:\n{stdout}"
            );
        }
        assert_eq!(
            stdout.matches("warnings\":[").count(),
            1,
            "{round} run: only the names-only GitHub role warns:\n{stdout}"
        );
    }
}
