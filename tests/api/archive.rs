//! Retention: `authledger ledger archive` moves the events of grants that ended long ago out
//! of the live log into segment files; the chain and its seals still verify, an export still
//! verifies offline, a rebuild gives the same views, and tampering with a segment is found.

use authledger::admin::clients::ClientInput;
use authledger_projections::db::Db;
use serde_json::Value;

use crate::helpers::*;
use crate::oauth::flow::{Auth, Flow};
use authledger::admin::clients::NewClient;

/// Every row of every view, as text, sorted: what a rebuild must give again.
async fn views(db: &Db) -> Vec<String> {
    let mut rows = Vec::new();
    for projection in authledger_projections::all() {
        for table in projection.tables() {
            let mut table_rows: Vec<String> = match db {
                Db::Sqlite(pool) => {
                    let columns: Vec<String> = sqlx::query_scalar(&format!(
                        "SELECT name FROM pragma_table_info('{table}')"
                    ))
                    .fetch_all(pool)
                    .await
                    .unwrap();
                    let sql = format!("SELECT json_array({}) FROM {table}", columns.join(", "));
                    sqlx::query_scalar(&sql).fetch_all(pool).await.unwrap()
                }
                Db::Postgres(pool) => {
                    let sql = format!("SELECT row_to_json(t)::text FROM {table} t");
                    sqlx::query_scalar(&sql).fetch_all(pool).await.unwrap()
                }
            };
            table_rows.sort();
            rows.extend(table_rows.into_iter().map(|row| format!("{table}: {row}")));
        }
    }
    rows
}

/// The live log's events of `grant`.
async fn events_of(db: &Db, grant: &str) -> i64 {
    let sql = "SELECT COUNT(*) FROM events WHERE aggregate_type = 'Grant' AND aggregate_id = $1";
    authledger_projections::on_db!(db, pool => sqlx::query_scalar(sql).bind(grant).fetch_one(pool).await)
        .unwrap()
}

/// The grant behind an access token, from the introspection answer's `jti`-free view: the
/// token index by hash.
async fn grant_of(flow: &Flow, token: &str) -> String {
    use sha2::Digest;
    let hash = hex::encode(sha2::Sha256::digest(token.as_bytes()));
    let sql = "SELECT grant_id FROM token_view WHERE token_hash = $1";
    authledger_projections::on_db!(&flow.store.db, pool => sqlx::query_scalar(sql).bind(&hash).fetch_one(pool).await)
        .unwrap()
}

/// The CLI with the archive directory configured.
fn archived_cli(db: &TestDb, dir: &std::path::Path, args: &[&str]) -> std::process::Output {
    cli_with_env(
        db,
        args,
        "",
        &[("AUTHLEDGER_ARCHIVE_DIR", dir.to_str().unwrap())],
    )
}

fn ok(output: std::process::Output) -> String {
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// A server with a client_credentials client: `ended` tokens whose grants have expired and
/// `live` ones still valid. Returns the flow, the client and the tokens.
async fn history(
    kind: Kind,
    ended: usize,
    live: usize,
) -> (Flow, NewClient, Vec<String>, Vec<String>) {
    let flow = Flow::new(kind).await;
    let client = flow
        .client(ClientInput {
            name: "Batch".into(),
            grant_types: vec!["client_credentials".into()],
            scope: Some("openid".into()),
            ..Default::default()
        })
        .await;
    let issue = |count| {
        let flow = &flow;
        let client = &client;
        async move {
            let mut tokens = Vec::new();
            for _ in 0..count {
                let (status, _, body) = flow
                    .token(Auth::Basic(client), &[("grant_type", "client_credentials")])
                    .await;
                assert_eq!(status, 200, "{body}");
                tokens.push(body["access_token"].as_str().unwrap().to_owned());
            }
            tokens
        }
    };
    flow.set("access_token_ttl", "1").await;
    let ended_tokens = issue(ended).await;
    flow.set("access_token_ttl", "3600").await;
    let live_tokens = issue(live).await;
    // Past the short tokens' second.
    tokio::time::sleep(std::time::Duration::from_millis(1_500)).await;
    flow.app.settle().await;
    (flow, client, ended_tokens, live_tokens)
}

async fn introspect(flow: &Flow, client: &NewClient, token: &str) -> Value {
    let (_, _, body) = flow
        .token_at(
            "/oauth/introspect",
            Auth::Basic(client),
            &[("token", token)],
        )
        .await;
    body
}

on_both_stores! {
    async fn archived_grants_leave_the_log_and_the_chain_views_and_exports_still_hold(kind: Kind) {
        let (flow, client, ended, live) = history(kind, 5, 2).await;
        let db = flow.app.db.shared();
        let archive = tempfile::tempdir().unwrap();
        let dir = archive.path();
        let ended_grants: Vec<String> = {
            let mut grants = Vec::new();
            for token in &ended {
                grants.push(grant_of(&flow, token).await);
            }
            grants
        };
        let live_grant = grant_of(&flow, &live[0]).await;

        // Nothing says what to archive yet, and nowhere to put it.
        let output = archived_cli(&db, dir, &["ledger", "archive"]);
        assert_eq!(output.status.code(), Some(5), "{}", String::from_utf8_lossy(&output.stderr));
        assert!(String::from_utf8_lossy(&output.stderr).contains("retention_days"));
        let output = cli(&db, &["ledger", "archive", "--ended-before", "now"]);
        assert_eq!(output.status.code(), Some(5));
        assert!(String::from_utf8_lossy(&output.stderr).contains("archive_dir"));
        // The retention period: the grants ended a second ago, not a day.
        ok(cli(&db, &["settings", "set", "retention_days", "1"]));
        let output = archived_cli(&db, dir, &["ledger", "archive"]);
        assert!(String::from_utf8_lossy(&output.stderr).contains("nothing to archive"), "{}", String::from_utf8_lossy(&output.stderr));

        // Views as a rebuild makes them, before anything leaves the log.
        flow.store.runner.rebuild(None).await.unwrap();
        let before = views(&flow.store.db).await;

        let dry: Value = serde_json::from_str(&ok(archived_cli(&db, dir, &["ledger", "archive", "--ended-before", "now", "--dry-run", "--format", "json"]))).unwrap();
        assert_eq!((dry["grants"].as_u64(), dry["events"].as_u64()), (Some(5), Some(5)), "{dry}");
        assert_eq!(std::fs::read_dir(dir).unwrap().count(), 0, "a dry run writes nothing");
        assert_eq!(events_of(&flow.store.db, &ended_grants[0]).await, 1);

        let done: Value = serde_json::from_str(&ok(archived_cli(&db, dir, &["ledger", "archive", "--ended-before", "now", "--format", "json"]))).unwrap();
        let segment = &done["segment"];
        assert_eq!((segment["grants"].as_i64(), segment["events"].as_i64()), (Some(5), Some(5)), "{done}");
        assert!(segment["archived_by"].as_str().unwrap().starts_with("cli:"), "{done}");
        let file = dir.join(segment["name"].as_str().unwrap());
        assert!(file.exists());
        for grant in &ended_grants {
            assert_eq!(events_of(&flow.store.db, grant).await, 0, "{grant} left the live log");
        }
        assert_eq!(events_of(&flow.store.db, &live_grant).await, 1, "a live grant stays");
        // An archived grant's history is read from its segment.
        let grant = format!("grant:{}", ended_grants[0]);
        let history = ok(archived_cli(&db, dir, &["history", &grant, "--format", "json"]));
        assert!(history.contains("TokensIssued"), "{history}");
        let output = cli(&db, &["history", &grant]);
        assert_eq!(output.status.code(), Some(5), "{}", String::from_utf8_lossy(&output.stderr));
        let output = cli_with_env(&db, &["token", "inspect"], &ended[0], &[("AUTHLEDGER_ARCHIVE_DIR", dir.to_str().unwrap())]);
        let inspected: Value = serde_json::from_str(&ok(output)).unwrap();
        assert_eq!(inspected["usable_now"], false, "{inspected}");
        assert_eq!(inspected["timeline"].as_array().map(Vec::len), Some(1), "{inspected}");

        // A second run finds nothing more.
        let again = archived_cli(&db, dir, &["ledger", "archive", "--ended-before", "now"]);
        assert!(String::from_utf8_lossy(&again.stderr).contains("nothing to archive"));

        // The views did not change, and a rebuild (segments and log merged) gives them again.
        assert_eq!(views(&flow.store.db).await, before);
        let output = cli(&db, &["projections", "rebuild"]);
        assert_eq!(output.status.code(), Some(5), "a rebuild without the archive is refused");
        assert!(String::from_utf8_lossy(&output.stderr).contains("archive"));
        assert_eq!(views(&flow.store.db).await, before);
        ok(archived_cli(&db, dir, &["projections", "rebuild"]));
        assert_eq!(views(&flow.store.db).await, before, "views rebuilt with the archive");

        // The server goes on: a live token is active, an archived one is not.
        assert_eq!(introspect(&flow, &client, &live[0]).await["active"], true);
        assert_eq!(introspect(&flow, &client, &ended[0]).await["active"], false);

        // The chain verifies, reading archived events from the segment; without it, it cannot.
        let report: Value = serde_json::from_str(&ok(archived_cli(&db, dir, &["ledger", "verify", "--format", "json"]))).unwrap();
        assert_eq!(report["archived"], 5, "{report}");
        assert_eq!(report["first_break"], Value::Null, "{report}");
        let output = cli(&db, &["ledger", "verify"]);
        assert_eq!(output.status.code(), Some(5));
        assert!(String::from_utf8_lossy(&output.stderr).contains("archive"));

        // An export over the archived stretch verifies offline, with the Rust and the Python
        // verifier.
        ok(cli(&db, &["ledger", "seal"]));
        let work = tempfile::tempdir().unwrap();
        let (export, keys) = (work.path().join("export.jsonl"), work.path().join("keys.json"));
        std::fs::write(&keys, ok(cli(&db, &["ledger", "keys"]))).unwrap();
        ok(archived_cli(&db, dir, &["ledger", "export", "--output", export.to_str().unwrap()]));
        let text = std::fs::read_to_string(&export).unwrap();
        for grant in &ended_grants {
            assert!(text.contains(grant.as_str()), "the export holds archived grant {grant}");
        }
        ok(cli(&db, &["ledger", "verify-export", export.to_str().unwrap(), "--keys", keys.to_str().unwrap()]));
        let python = crate::ledger::python_verifier(&export, &keys);
        assert!(python.status.success(), "{}", String::from_utf8_lossy(&python.stdout));

        // A live grant revoked: a second segment; verify and a rebuild read both.
        let (status, _, body) = flow
            .token_at("/oauth/revoke", Auth::Basic(&client), &[("token", &live[1])])
            .await;
        assert_eq!(status, 200, "{body}");
        flow.store.runner.catch_up_fully().await.unwrap();
        let before = views(&flow.store.db).await;
        let done: Value = serde_json::from_str(&ok(archived_cli(&db, dir, &["ledger", "archive", "--ended-before", "now", "--format", "json"]))).unwrap();
        assert_eq!(done["segment"]["grants"], 1, "{done}");
        assert_eq!(std::fs::read_dir(dir).unwrap().count(), 2);
        let report: Value = serde_json::from_str(&ok(archived_cli(&db, dir, &["ledger", "verify", "--format", "json"]))).unwrap();
        assert_eq!(report["first_break"], Value::Null, "{report}");
        assert!(report["archived"].as_i64().unwrap() > 5, "{report}");
        ok(archived_cli(&db, dir, &["projections", "rebuild"]));
        assert_eq!(views(&flow.store.db).await, before, "views rebuilt from two segments and the log");

        // Disabling the client revokes its grants in force; the archived ones (expired, still
        // "active" in the grants view) are passed over, not an error that stops the cascade.
        ok(cli(&db, &["client", "disable", client.client_id.as_str()]));
        flow.store.runner.catch_up_fully().await.unwrap();
        let status: String = authledger_projections::on_db!(&flow.store.db, pool => sqlx::query_scalar(
            "SELECT status FROM grant_view WHERE grant_id = $1").bind(&live_grant).fetch_one(pool).await).unwrap();
        assert_eq!(status, "revoked");
        ok(archived_cli(&db, dir, &["ledger", "verify"]));
        drop(flow);
    }
}

on_both_stores! {
    async fn a_changed_or_lost_segment_and_an_event_deleted_outside_an_archive_are_found(kind: Kind) {
        let (flow, _, ended, _) = history(kind, 3, 1).await;
        let db = flow.app.db.shared();
        let archive = tempfile::tempdir().unwrap();
        let dir = archive.path();
        let first = grant_of(&flow, &ended[0]).await;
        let done: Value = serde_json::from_str(&ok(archived_cli(&db, dir, &["ledger", "archive", "--ended-before", "now", "--format", "json"]))).unwrap();
        let file = dir.join(done["segment"]["name"].as_str().unwrap());
        let original = std::fs::read_to_string(&file).unwrap();
        ok(archived_cli(&db, dir, &["ledger", "verify"]));

        // One byte of an archived event changed: the file is not the one archived.
        assert!(original.contains(&first));
        std::fs::write(&file, original.replacen("\"sequence\":1", "\"sequence\":9", 1)).unwrap();
        let output = archived_cli(&db, dir, &["ledger", "verify", "--format", "json"]);
        assert_eq!(output.status.code(), Some(7));
        let report: Value = serde_json::from_slice(&output.stdout).unwrap();
        assert_eq!(report["first_break"]["kind"], "segment_altered", "{report}");

        // ... and with the recorded SHA-256 forged to match, the chain finds the event.
        let forged = {
            use sha2::Digest;
            hex::encode(sha2::Sha256::digest(std::fs::read(&file).unwrap()))
        };
        crate::ledger::as_superuser(&db, &[&format!("UPDATE ledger_segments SET sha256 = '{forged}'")]).await;
        let output = archived_cli(&db, dir, &["ledger", "verify", "--format", "json"]);
        assert_eq!(output.status.code(), Some(7));
        let report: Value = serde_json::from_slice(&output.stdout).unwrap();
        assert_eq!(report["first_break"]["kind"], "altered", "{report}");

        // The file lost.
        std::fs::remove_file(&file).unwrap();
        let output = archived_cli(&db, dir, &["ledger", "verify"]);
        assert_eq!(output.status.code(), Some(7));
        assert!(String::from_utf8_lossy(&output.stderr).contains("missing segment"), "{}", String::from_utf8_lossy(&output.stderr));
        std::fs::write(&file, &original).unwrap();
        crate::ledger::as_superuser(&db, &[&format!("UPDATE ledger_segments SET sha256 = '{}'", done["segment"]["sha256"].as_str().unwrap())]).await;
        ok(archived_cli(&db, dir, &["ledger", "verify"]));

        // An event deleted from the live log without archiving is still missing.
        let position: i64 = authledger_projections::on_db!(&flow.store.db, pool => sqlx::query_scalar(
            "SELECT MAX(global_position) FROM events WHERE aggregate_type = 'Grant'").fetch_one(pool).await).unwrap();
        crate::ledger::as_superuser(&db, &[&format!("DELETE FROM events WHERE global_position = {position}")]).await;
        let output = archived_cli(&db, dir, &["ledger", "verify"]);
        assert_eq!(output.status.code(), Some(7));
        assert!(String::from_utf8_lossy(&output.stderr).contains(&format!("missing: the event at position {position}")), "{}", String::from_utf8_lossy(&output.stderr));
    }
}

on_both_stores! {
    async fn the_log_still_refuses_a_deletion_outside_an_archive(kind: Kind) {
        let db = TestDb::new(kind).await;
        ok(cli(&db, &["user", "create", "--username", "ann", "--password", "long enough pass"]));
        let store = db.store().await;
        let deleted = authledger_projections::on_db!(&store.db, pool => sqlx::query("DELETE FROM events").execute(pool).await.map(drop));
        let error = deleted.unwrap_err().to_string();
        assert!(error.contains("events are immutable"), "{error}");
    }
}
