//! Acknowledged means durable on the embedded store, with commands committed in groups: a
//! server killed with SIGKILL under load has every token it answered with 200 in its log, and
//! the log's positions stay contiguous.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use serde_json::Value;

use crate::server_log::{authledger, serve};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_killed_under_load_loses_no_token_it_answered() {
    let dir = tempfile::tempdir().unwrap();
    let created = authledger(
        dir.path(),
        &[
            "client",
            "create",
            "--name",
            "Load",
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
        "{}",
        String::from_utf8_lossy(&created.stderr)
    );
    let client: Value = serde_json::from_slice(&created.stdout).unwrap();
    let (id, secret) = (
        client["client_id"].as_str().unwrap().to_owned(),
        client["client_secret"].as_str().unwrap().to_owned(),
    );
    let (mut server, _lines, _, started) = serve(authledger(dir.path(), &["serve"]));
    let url = format!("http://{}/oauth/token", started["listen"].as_str().unwrap());

    let stop = Arc::new(AtomicBool::new(false));
    let answered = Arc::new(Mutex::new(Vec::<String>::new()));
    let http = reqwest::Client::new();
    let workers: Vec<_> = (0..32)
        .map(|_| {
            let (stop, answered, http, url) =
                (stop.clone(), answered.clone(), http.clone(), url.clone());
            let (id, secret) = (id.clone(), secret.clone());
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
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    server.kill().unwrap(); // SIGKILL: no shutdown, no flush
    server.wait().unwrap();
    stop.store(true, Ordering::Relaxed);
    futures::future::join_all(workers).await;
    let answered = answered.lock().unwrap().clone();
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
