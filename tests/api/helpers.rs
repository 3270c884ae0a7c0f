//! Test stores, a running server, and the CLI binary.
//!
//! Each test gets its own store: a SQLite file in a temporary directory, or a fresh Postgres
//! database created for it and dropped afterwards. Postgres is used for real: if it cannot be
//! reached, the test fails with instructions (it never skips).

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

use authledger::config::Config;
use authledger::http::Application;
use authledger::scratch_db::ScratchPostgres;
use authledger::store::Store;
use authledger_domain::metadata::{Actor, EventMetadata, Source};
use tokio::sync::oneshot;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Sqlite,
    Postgres,
}

pub struct TestDb {
    pub kind: Kind,
    pub url: String,
    /// The master key of this store (sealed signing keys and HS256 secrets need the same one
    /// across restarts).
    pub master_key: String,
    /// The SQLite file's directory (kept alive until the test ends).
    pub dir: Option<tempfile::TempDir>,
    /// The Postgres database, dropped with this value when it owns it.
    postgres: Option<ScratchPostgres>,
}

impl TestDb {
    pub async fn new(kind: Kind) -> TestDb {
        match kind {
            Kind::Sqlite => {
                let dir = tempfile::tempdir().expect("temporary directory");
                let url = format!("sqlite://{}", dir.path().join("authledger.db").display());
                TestDb {
                    kind,
                    url,
                    master_key: authledger::master_key::MasterKey::generate().to_base64(),
                    dir: Some(dir),
                    postgres: None,
                }
            }
            Kind::Postgres => {
                let scratch = ScratchPostgres::create("authledger_test").await;
                TestDb {
                    kind,
                    url: scratch.url.clone(),
                    master_key: authledger::master_key::MasterKey::generate().to_base64(),
                    dir: None,
                    postgres: Some(scratch),
                }
            }
        }
    }

    pub async fn store(&self) -> Store {
        Store::open(&self.url).await.expect("open the test store")
    }

    /// Every file of the SQLite store (database, WAL, shared memory).
    pub fn sqlite_files(&self) -> Vec<PathBuf> {
        let dir = self.dir.as_ref().expect("a SQLite store");
        std::fs::read_dir(dir.path())
            .unwrap()
            .map(|entry| entry.unwrap().path())
            .collect()
    }
}

/// The real server on port 0, against its own store.
pub struct TestApp {
    pub address: String,
    /// The server's own store (not a second one opened on the same database).
    pub store: std::sync::Arc<authledger::store::Store>,
    /// The server's protocol state (its key ring, master key, usage counters).
    pub authority: std::sync::Arc<authledger::oauth::Authority>,
    pub http: reqwest::Client,
    pub db: TestDb,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

impl TestDb {
    /// The same store, not owned: dropping it drops nothing (for another instance, or a CLI
    /// run on a thread of its own).
    pub fn shared(&self) -> TestDb {
        TestDb {
            kind: self.kind,
            url: self.url.clone(),
            master_key: self.master_key.clone(),
            dir: None,
            postgres: None,
        }
    }
}

impl TestApp {
    pub async fn spawn(kind: Kind) -> TestApp {
        TestApp::spawn_on(TestDb::new(kind).await).await
    }

    /// Starts a server on an existing store (a restart, when the store was used before).
    pub async fn spawn_on(db: TestDb) -> TestApp {
        TestApp::spawn_with(db, authledger::config::DEFAULT_TOKEN_CACHE).await
    }

    /// A second server on this one's store, as another instance behind a load balancer would
    /// be. The database stays this app's to drop.
    pub async fn another_instance(&self, token_cache_capacity: usize) -> TestApp {
        TestApp::spawn_with(self.db.shared(), token_cache_capacity).await
    }

    pub async fn spawn_with(db: TestDb, token_cache_capacity: usize) -> TestApp {
        TestApp::spawn_configured(db, token_cache_capacity, Default::default()).await
    }

    /// A server with its own connection limits (short timeouts, a small cap).
    pub async fn spawn_limited(kind: Kind, limits: authledger::http::Limits) -> TestApp {
        let db = TestDb::new(kind).await;
        TestApp::spawn_configured(db, authledger::config::DEFAULT_TOKEN_CACHE, limits).await
    }

    pub async fn spawn_configured(
        db: TestDb,
        token_cache_capacity: usize,
        limits: authledger::http::Limits,
    ) -> TestApp {
        let app = Application::build(Config {
            database_url: db.url.clone().into(),
            listen: "127.0.0.1:0".into(),
            issuer: None,
            master_key: Some(db.master_key.clone().into()),
            master_key_file: "unused-when-a-key-is-configured".into(),
            token_cache_capacity,
            limits,
            link_ledger: true,
            archive_dir: None,
        })
        .await
        .expect("the application starts");
        let address = format!("http://{}", app.local_addr());
        let store = app.state().authority.store.clone();
        let authority = app.state().authority.clone();
        let (shutdown, stop) = oneshot::channel::<()>();
        let server = tokio::spawn(app.run_until(async {
            let _ = stop.await;
        }));
        TestApp {
            address,
            store,
            authority,
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            db,
            shutdown: Some(shutdown),
            server: Some(server),
        }
    }

    /// Makes the server see, now, what the CLI or another store handle just committed: the
    /// server itself picks such changes up within `live::FOLLOW_INTERVAL`; tests that change
    /// something from outside and then act on it at once call this instead of sleeping.
    pub async fn settle(&self) {
        if let Some(live) = self.store.live() {
            live.follow_to_end()
                .await
                .expect("the server follows the log");
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    /// Asks the server to stop and waits until it has; returns the store.
    pub async fn stop(mut self) -> TestDb {
        let _ = self.shutdown.take().unwrap().send(());
        self.server
            .take()
            .unwrap()
            .await
            .expect("the server task ends")
            .expect("the server stops cleanly");
        // Moves the store out; the emptied `self.db` then drops without dropping the database.
        TestDb {
            kind: self.db.kind,
            url: self.db.url.clone(),
            master_key: self.db.master_key.clone(),
            dir: self.db.dir.take(),
            postgres: self.db.postgres.as_mut().map(ScratchPostgres::take),
        }
    }
}

/// Runs the `authledger` binary against `db`.
pub fn cli(db: &TestDb, args: &[&str]) -> Output {
    cli_with_stdin(db, args, "")
}

pub fn cli_with_stdin(db: &TestDb, args: &[&str], stdin: &str) -> Output {
    cli_with_env(db, args, stdin, &[])
}

/// Runs the CLI with `stdin` and extra environment variables.
pub fn cli_with_env(db: &TestDb, args: &[&str], stdin: &str, env: &[(&str, &str)]) -> Output {
    use std::io::Write;
    let mut child = Command::new(env!("CARGO_BIN_EXE_authledger"))
        .args(args)
        .envs(env.iter().copied())
        .env("AUTHLEDGER_DATABASE_URL", &db.url)
        .env("AUTHLEDGER_MASTER_KEY", &db.master_key)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the authledger binary runs");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

/// Runs the CLI, expects success, parses stdout as JSON.
/// What a successful CLI command printed on stdout (it fails the test otherwise).
pub fn cli_stdout(db: &TestDb, args: &[&str]) -> String {
    let output = cli(db, args);
    assert!(
        output.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

pub fn cli_json(db: &TestDb, args: &[&str]) -> serde_json::Value {
    let output = cli(db, args);
    assert!(
        output.status.success(),
        "authledger {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "authledger {args:?} printed no JSON ({e}): {}",
            String::from_utf8_lossy(&output.stdout)
        )
    })
}

pub fn metadata(actor: Actor) -> EventMetadata {
    EventMetadata {
        actor,
        request_id: uuid::Uuid::new_v4().to_string(),
        source: Source::Http {
            ip: Some("203.0.113.7".into()),
            user_agent: Some("integration-test".into()),
        },
        at: chrono::Utc::now(),
    }
}

/// Declares one async test that runs once per store: `NAME::sqlite` and `NAME::postgres`.
macro_rules! on_both_stores {
    ($(#[$meta:meta])* async fn $name:ident($kind:ident: Kind) $body:block) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            $(#[$meta])*
            async fn run($kind: $crate::helpers::Kind) $body

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                run($crate::helpers::Kind::Sqlite).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                run($crate::helpers::Kind::Postgres).await
            }
        }
    };
}

/// The log lines this thread writes while a [`LogCapture`] lives: what a server running on a
/// `current_thread` test runtime logs. One subscriber for the whole process, installed once,
/// lets through only the events of a capturing thread. Among many tests' threads it still
/// misses call sites, so a test that captures runs alone in a process of its own (see
/// `connected_apps::the_server_log_holds_no_secret_of_a_connection`).
pub struct LogCapture(());

thread_local! {
    static CAPTURED: std::cell::RefCell<Option<Vec<u8>>> = const { std::cell::RefCell::new(None) };
}

impl LogCapture {
    /// Captures this thread's log lines at `debug` and above until dropped.
    pub fn start() -> LogCapture {
        LogCapture::install();
        CAPTURED.with(|c| *c.borrow_mut() = Some(Vec::new()));
        LogCapture(())
    }

    /// The one subscriber of the test binary (every server start calls this first).
    pub fn install() {
        static INSTALLED: std::sync::Once = std::sync::Once::new();
        INSTALLED.call_once(|| {
            use tracing_subscriber::layer::SubscriberExt;
            use tracing_subscriber::Layer;
            let capturing = tracing_subscriber::filter::filter_fn(|metadata| {
                *metadata.level() <= tracing::Level::DEBUG
                    && CAPTURED.with(|c| c.borrow().is_some())
            });
            let lines = tracing_subscriber::fmt::layer()
                .with_ansi(false)
                .with_writer(|| ThreadBuffer)
                .with_filter(capturing);
            tracing::subscriber::set_global_default(tracing_subscriber::registry().with(lines))
                .expect("no other global subscriber in the tests");
        });
    }

    pub fn text(&self) -> String {
        CAPTURED.with(|c| {
            String::from_utf8_lossy(c.borrow().as_deref().unwrap_or_default()).into_owned()
        })
    }
}

impl Drop for LogCapture {
    fn drop(&mut self) {
        CAPTURED.with(|c| *c.borrow_mut() = None);
    }
}

/// Writes into this thread's capture, if any.
struct ThreadBuffer;

impl std::io::Write for ThreadBuffer {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        CAPTURED.with(|c| {
            if let Some(buffer) = c.borrow_mut().as_mut() {
                buffer.extend_from_slice(bytes);
            }
        });
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Makes sure a Python package is importable (`check` is what to run after `python3`),
/// installing `specs` from PyPI if not: `.ci/run` installs them beforehand, and this keeps
/// `cargo test` self-sufficient on a fresh machine. One pip at a time: tests on both stores
/// may ask at once, and the second finds it installed.
pub fn ensure_python(check: &[&str], specs: &[&str]) {
    static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _installing = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let ready = || {
        Command::new("python3")
            .args(check)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if ready() {
        return;
    }
    let installed = Command::new("python3")
        .args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
        ])
        .args(specs)
        .status()
        .expect("python3 runs");
    assert!(
        installed.success() && ready(),
        "could not install {specs:?} from PyPI"
    );
}

/// Everything the store holds, as text: every table's rows on Postgres (what a dump holds);
/// the database files themselves, free pages and write-ahead log included, on SQLite.
pub async fn everything_stored(db: &TestDb) -> String {
    match db.kind {
        // Read by another process: closing a file descriptor of the database in this one would
        // release every POSIX lock SQLite holds on it here (fcntl locks are per process), and
        // a server running in this process would then read pages another process is changing.
        Kind::Sqlite => db
            .sqlite_files()
            .iter()
            .map(|path| {
                let read = Command::new("cat").arg(path).output().expect("cat runs");
                String::from_utf8_lossy(&read.stdout).into_owned()
            })
            .collect(),
        Kind::Postgres => {
            let store = db.store().await;
            let authledger_projections::Db::Postgres(pool) = &store.db else {
                unreachable!()
            };
            let tables: Vec<String> = sqlx::query_scalar(
                "SELECT tablename::text FROM pg_tables WHERE schemaname = 'public'",
            )
            .fetch_all(pool)
            .await
            .unwrap();
            let mut all = String::new();
            for table in tables {
                let rows: Vec<String> =
                    sqlx::query_scalar(&format!("SELECT t::text FROM {table} t"))
                        .fetch_all(pool)
                        .await
                        .unwrap();
                all.extend(rows);
            }
            all
        }
    }
}
