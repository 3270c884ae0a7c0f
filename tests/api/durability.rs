//! Acknowledged means durable on the embedded store, with commands committed in groups: a
//! server killed with SIGKILL under load has every token it answered with 200 in its log, and
//! the log's positions stay contiguous. And the store's file is shared: a CLI command writes
//! beside a server that is busy writing.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use serde_json::Value;

use crate::server_log::{authledger, serve};

/// A client-credentials client made with the CLI in `dir`'s store: its id and secret.
fn cli_client(dir: &std::path::Path, name: &str) -> (String, String) {
    let created = authledger(
        dir,
        &[
            "client",
            "create",
            "--name",
            name,
            "--grant-type",
            "client_credentials",
            "--scope",
            "read",
        ],
    )
    .output()
    .unwrap();
    assert!(
        created.status.success(),
        "client create failed: {}",
        String::from_utf8_lossy(&created.stderr)
    );
    let client: Value = serde_json::from_slice(&created.stdout).unwrap();
    (
        client["client_id"].as_str().unwrap().to_owned(),
        client["client_secret"].as_str().unwrap().to_owned(),
    )
}

/// `loops` concurrent client-credentials requests, one after another each, until stopped;
/// the tokens answered with 200 are kept.
struct Load {
    stop: Arc<AtomicBool>,
    answered: Arc<Mutex<Vec<String>>>,
    workers: Vec<tokio::task::JoinHandle<()>>,
}

impl Load {
    fn start(token_url: &str, (id, secret): &(String, String), loops: usize) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let answered = Arc::new(Mutex::new(Vec::<String>::new()));
        let http = reqwest::Client::new();
        let workers = (0..loops)
            .map(|_| {
                let (stop, answered, http) = (stop.clone(), answered.clone(), http.clone());
                let (url, id, secret) = (token_url.to_owned(), id.clone(), secret.clone());
                tokio::spawn(async move {
                    while !stop.load(Ordering::Relaxed) {
                        let sent = http
                            .post(&url)
                            .basic_auth(&id, Some(&secret))
                            .form(&[("grant_type", "client_credentials")])
                            .send()
                            .await;
                        let Ok(response) = sent else { break };
                        if response.status() != 200 {
                            continue;
                        }
                        if let Ok(body) = response.json::<Value>().await {
                            if let Some(token) = body["access_token"].as_str() {
                                answered.lock().unwrap().push(token.to_owned());
                            }
                        }
                    }
                })
            })
            .collect();
        Load {
            stop,
            answered,
            workers,
        }
    }

    /// Stops the loops (after the server is gone, or while it runs) and returns the tokens.
    async fn stop(self) -> Vec<String> {
        self.stop.store(true, Ordering::Relaxed);
        futures::future::join_all(self.workers).await;
        let answered = self.answered.lock().unwrap().clone();
        answered
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_killed_under_load_loses_no_token_it_answered() {
    let dir = tempfile::tempdir().unwrap();
    let client = cli_client(dir.path(), "Load");
    let (mut server, _lines, _, started) = serve(authledger(dir.path(), &["serve"]));
    let url = format!("http://{}/oauth/token", started["listen"].as_str().unwrap());

    let load = Load::start(&url, &client, 32);
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    server.kill().unwrap(); // SIGKILL: no shutdown, no flush
    server.wait().unwrap();
    let answered = load.stop().await;
    assert!(
        answered.len() > 50,
        "only {} tokens issued before the kill",
        answered.len()
    );

    // The store as the next start finds it.
    let url = format!("sqlite://{}", dir.path().join("authledger.db").display());
    let store = authledger::store::Store::open(&url).await.unwrap();
    store.runner.catch_up_fully().await.unwrap();
    let authledger_projections::Db::Sqlite(pool) = &store.db else {
        unreachable!()
    };
    for token in &answered {
        let hash = authledger::secrets::hash(token);
        let status: Option<String> =
            sqlx::query_scalar("SELECT status FROM token_view WHERE token_hash = ?")
                .bind(hash.as_hex())
                .fetch_optional(pool)
                .await
                .unwrap();
        assert_eq!(
            status.as_deref(),
            Some("active"),
            "a token answered 200 is not in the log after the kill"
        );
    }
    let (count, first, last): (i64, i64, i64) =
        sqlx::query_as("SELECT COUNT(*), MIN(global_position), MAX(global_position) FROM events")
            .fetch_one(pool)
            .await
            .unwrap();
    assert_eq!((first, last), (1, count), "positions are contiguous");
}

/// SQLite lets one connection write at a time, and a server under load always has a writer
/// waiting: its writers hand the lock on among themselves, so a process polling for it from
/// outside (a CLI command an operator runs beside the server) could wait out its busy timeout
/// and fail. Each of these commands must get its turn while the load goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_commands_write_beside_a_server_under_load() {
    let dir = tempfile::tempdir().unwrap();
    let client = cli_client(dir.path(), "Load");
    let (mut server, _lines, _, started) = serve(authledger(dir.path(), &["serve"]));
    let url = format!("http://{}/oauth/token", started["listen"].as_str().unwrap());
    let load = Load::start(&url, &client, 32);
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;

    for n in 0..5 {
        let path = dir.path().to_owned();
        let started = std::time::Instant::now();
        tokio::task::spawn_blocking(move || cli_client(&path, &format!("Beside {n}")))
            .await
            .unwrap();
        eprintln!("client create {n} beside the load: {:?}", started.elapsed());
    }
    let answered = load.stop().await;
    server.kill().unwrap();
    server.wait().unwrap();
    assert!(
        answered.len() > 50,
        "the server issued only {} tokens meanwhile",
        answered.len()
    );
}

/// Another process holding the log's write lock past the busy timeout (a `sqlite3` shell left
/// inside a transaction, say): the commands waiting meanwhile are refused together, each group
/// after one busy timeout (10 s), with 503 `temporarily_unavailable`, rather than one command
/// after another each waiting out the timeout again (16 commands would take minutes); and the
/// server issues again as soon as the lock is let go.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_waiting_on_a_lock_held_elsewhere_are_refused_together() {
    use sqlx::Connection;

    let dir = tempfile::tempdir().unwrap();
    let (id, secret) = cli_client(dir.path(), "Locked out");
    let (mut server, _lines, _, started) = serve(authledger(dir.path(), &["serve"]));
    let url = format!("http://{}/oauth/token", started["listen"].as_str().unwrap());
    let http = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(150))
        .build()
        .unwrap();
    let issue = || {
        http.post(&url)
            .basic_auth(&id, Some(&secret))
            .form(&[("grant_type", "client_credentials")])
            .send()
    };
    assert_eq!(issue().await.unwrap().status(), 200);

    let file = format!("sqlite://{}", dir.path().join("authledger.db").display());
    let mut holder = sqlx::SqliteConnection::connect(&file).await.unwrap();
    sqlx::query("BEGIN IMMEDIATE")
        .execute(&mut holder)
        .await
        .unwrap();
    let started = std::time::Instant::now();
    let answers = futures::future::join_all((0..16).map(|_| issue())).await;
    let waited = started.elapsed();
    for answer in answers {
        let answer = answer.unwrap();
        assert_eq!(answer.status(), 503);
        let body: Value = answer.json().await.unwrap();
        assert_eq!(body["error"], "temporarily_unavailable", "{body}");
    }
    assert!(
        waited < std::time::Duration::from_secs(70),
        "16 commands took {waited:?} to be refused: one busy timeout after another"
    );
    sqlx::query("ROLLBACK").execute(&mut holder).await.unwrap();
    holder.close().await.unwrap();

    assert_eq!(issue().await.unwrap().status(), 200);
    server.kill().unwrap();
    server.wait().unwrap();
}
