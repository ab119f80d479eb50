//! A fresh PostgreSQL database per test, on the server of `AUTHMOUNT_TEST_POSTGRES_URL`.

use std::io::Write;

use crate::clock::random_hex;
use crate::tempdir::TempDir;

/// Says, past the test harness's output capture, that a test did not run and why.
pub fn skipped(why: &str) {
    let line = "*".repeat(78);
    let _ = writeln!(
        std::io::stderr(),
        "\n{line}\n*** SKIPPED: {why}: this PostgreSQL test did NOT run.\n\
         *** Set AUTHMOUNT_TEST_POSTGRES_URL (see README: `.ci/postgres.sh`) to run it.\n{line}"
    );
}

/// A fresh database for one test, dropped at the end; `None` without PostgreSQL.
pub struct TestDatabase {
    admin_url: String,
    name: String,
    /// The URL of the fresh database.
    pub url: String,
}

impl TestDatabase {
    /// Creates `authmount_t_<random>` on the server of `AUTHMOUNT_TEST_POSTGRES_URL`; `None`
    /// (with a loud SKIPPED line) when the variable is unset or empty. Panics when it is not
    /// a `postgres://` URL or the server refuses.
    pub async fn create() -> Option<TestDatabase> {
        let admin_url = match std::env::var("AUTHMOUNT_TEST_POSTGRES_URL") {
            Ok(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => url,
            Ok(url) if url.trim().is_empty() => {
                skipped("AUTHMOUNT_TEST_POSTGRES_URL is empty (did `.ci/postgres.sh` fail?)");
                return None;
            }
            Ok(url) => panic!("AUTHMOUNT_TEST_POSTGRES_URL is not a postgres:// URL: {url:?}"),
            Err(_) => {
                skipped("AUTHMOUNT_TEST_POSTGRES_URL is not set");
                return None;
            }
        };
        use sqlx::Connection;
        let name = format!("authmount_t_{}", random_hex());
        let mut conn = sqlx::PgConnection::connect(&admin_url)
            .await
            .expect("connect to PostgreSQL");
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut conn)
            .await
            .expect("create database");
        let mut url = reqwest::Url::parse(&admin_url).expect("URL");
        url.set_path(&format!("/{name}"));
        Some(TestDatabase {
            admin_url,
            name,
            url: url.to_string(),
        })
    }

    /// `-config=<file>` for a server on PostgreSQL at `url` with the `seal` block (e.g.
    /// [`static_seal`](crate::node::static_seal); empty: Shamir keys from `sys/init`).
    pub fn config(&self, dir: &TempDir, url: &str, seal: &str) -> String {
        let file = dir.file(
            &format!("pg-{}.hcl", random_hex()),
            &format!("storage \"postgresql\" {{ connection_url = \"{url}\" }}\n{seal}"),
        );
        format!("-config={}", file.display())
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let (admin, name) = (self.admin_url.clone(), self.name.clone());
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            rt.block_on(async {
                use sqlx::Connection;
                let mut conn = sqlx::PgConnection::connect(&admin).await.ok()?;
                sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .execute(&mut conn)
                    .await
                    .ok()
            })
        })
        .join();
    }
}
