//! Throw-away Postgres databases, for the test suites and the benchmark: each gets a database
//! of its own on a real server, dropped when it is done with it.
//!
//! The server is `AUTHLEDGER_TEST_POSTGRES_URL` (default
//! `postgres://postgres@127.0.0.1:5432/postgres`, which `.ci/run` starts). A server that cannot
//! be reached is a failure with instructions, never a skipped test.

use sqlx::Connection;

/// Where scratch databases are created.
pub fn admin_url() -> String {
    std::env::var("AUTHLEDGER_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// A database created for one test or benchmark run; [`ScratchPostgres::drop_now`] (or
/// dropping the value) removes it.
#[derive(Debug)]
pub struct ScratchPostgres {
    pub url: String,
    name: Option<String>,
}

impl ScratchPostgres {
    /// Creates `PREFIX_<random>` on the scratch server.
    pub async fn create(prefix: &str) -> ScratchPostgres {
        let admin = admin_url();
        let name = format!("{prefix}_{}", uuid::Uuid::new_v4().simple());
        let mut connection = sqlx::PgConnection::connect(&admin)
            .await
            .unwrap_or_else(|e| {
                panic!(
                    "PostgreSQL is not reachable at {admin} ({e}). Start it with \
                     `pg_ctlcluster --skip-systemctl-redirect 15 main start` (.ci/run does), \
                     or point AUTHLEDGER_TEST_POSTGRES_URL at a server."
                )
            });
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut connection)
            .await
            .expect("create the scratch database");
        let mut url = url::Url::parse(&admin).expect("AUTHLEDGER_TEST_POSTGRES_URL is a URL");
        url.set_path(&name);
        ScratchPostgres {
            url: url.to_string(),
            name: Some(name),
        }
    }

    /// A handle on the same database that does not drop it (a second server on one store).
    pub fn share(&self) -> ScratchPostgres {
        ScratchPostgres {
            url: self.url.clone(),
            name: None,
        }
    }

    /// Hands the database over to the returned value; this one will not drop it.
    pub fn take(&mut self) -> ScratchPostgres {
        ScratchPostgres {
            url: self.url.clone(),
            name: self.name.take(),
        }
    }

    /// Drops the database now, closing whatever connections are still open to it.
    pub async fn drop_now(mut self) {
        if let Some(name) = self.name.take() {
            drop_database(&name).await;
        }
    }
}

async fn drop_database(name: &str) {
    if let Ok(mut admin) = sqlx::PgConnection::connect(&admin_url()).await {
        let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .execute(&mut admin)
            .await;
    }
}

impl Drop for ScratchPostgres {
    fn drop(&mut self) {
        let Some(name) = self.name.take() else {
            return;
        };
        // Drop runs outside async: a short-lived runtime on a thread of its own cleans up.
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime for cleaning up");
            runtime.block_on(drop_database(&name));
        })
        .join();
    }
}
