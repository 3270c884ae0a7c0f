//! The tamper-evident ledger: `authledger ledger verify` recomputes the hash chain from the
//! events and finds every kind of change a database superuser could make, at its position.

use authledger_projections::db::Db;

use crate::helpers::*;

/// A store with six events (positions 1 to 6), all linked.
async fn linked_store(kind: Kind) -> TestDb {
    let db = TestDb::new(kind).await;
    for name in ["alice", "bob", "carol", "dave", "erin", "frank"] {
        let output = cli(
            &db,
            &[
                "user",
                "create",
                "--username",
                name,
                "--password",
                "long enough pass",
                "--email",
                &format!("{name}@example.com"),
            ],
        );
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let output = cli(&db, &["migrate"]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    db
}

/// Runs `statements` as the database's owner would, with the immutability triggers out of
/// the way.
pub(crate) async fn as_superuser(db: &TestDb, statements: &[&str]) {
    let store = db.store().await;
    match &store.db {
        Db::Sqlite(pool) => {
            for drop in [
                "DROP TRIGGER IF EXISTS events_are_immutable",
                "DROP TRIGGER IF EXISTS events_are_never_deleted",
                "DROP TRIGGER IF EXISTS events_assign_global_position",
                "DROP TRIGGER IF EXISTS events_take_the_next_global_position",
                "DROP TRIGGER IF EXISTS ledger_chain_is_immutable",
                "DROP TRIGGER IF EXISTS ledger_chain_is_never_deleted",
                "DROP TRIGGER IF EXISTS ledger_seals_are_immutable",
                "DROP TRIGGER IF EXISTS ledger_seals_are_never_deleted",
                "DROP TRIGGER IF EXISTS ledger_segments_are_immutable",
                "DROP TRIGGER IF EXISTS ledger_segments_are_never_deleted",
            ] {
                sqlx::query(drop).execute(pool).await.unwrap();
            }
            for statement in statements {
                sqlx::query(statement).execute(pool).await.unwrap();
            }
        }
        Db::Postgres(pool) => {
            let mut tx = pool.begin().await.unwrap();
            sqlx::query("ALTER TABLE events DISABLE TRIGGER USER")
                .execute(&mut *tx)
                .await
                .unwrap();
            sqlx::query("ALTER TABLE ledger_seals DISABLE TRIGGER USER")
                .execute(&mut *tx)
                .await
                .unwrap();
            sqlx::query("ALTER TABLE ledger_chain DISABLE TRIGGER USER")
                .execute(&mut *tx)
                .await
                .unwrap();
            sqlx::query("ALTER TABLE ledger_segments DISABLE TRIGGER USER")
                .execute(&mut *tx)
                .await
                .unwrap();
            for statement in statements {
                sqlx::query(statement).execute(&mut *tx).await.unwrap();
            }
            tx.commit().await.unwrap();
        }
    }
}

/// `ledger verify` exits 7 and names `kind` at `position`.
fn refused(db: &TestDb, kind: &str, position: i64) {
    let output = cli(db, &["ledger", "verify"]);
    let said = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(7), "{said}");
    assert!(
        said.contains(&format!("{kind}: ")),
        "expected {kind}: {said}"
    );
    assert!(
        said.contains(&format!("position {position}")),
        "expected position {position}: {said}"
    );
    let json = cli(db, &["ledger", "verify", "--format", "json"]);
    let report: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(report["first_break"]["kind"], kind, "{report}");
}

on_both_stores! {
    async fn an_untouched_ledger_verifies_and_new_events_are_linked(kind: Kind) {
        let db = linked_store(kind).await;
        let output = cli(&db, &["ledger", "verify", "--format", "json"]);
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
        assert_eq!(report["links"], 6);
        assert_eq!(report["first_break"], serde_json::Value::Null);

        // A CLI command links what it wrote before it ends (the server links continuously:
        // `events_committed_concurrently_are_all_linked_and_verify`).
        let output = cli(&db, &["user", "disable", "alice"]);
        assert!(output.status.success());
        let output = cli(&db, &["ledger", "verify", "--format", "json"]);
        let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
        assert_eq!((report["links"].as_i64(), report["unlinked"].as_i64()), (Some(7), Some(0)), "{report}");
    }
}

on_both_stores! {
    async fn a_changed_payload_or_metadata_is_found_at_its_position(kind: Kind) {
        let db = linked_store(kind).await;
        let payload = match kind {
            Kind::Sqlite => "UPDATE events SET payload = replace(payload, '\"carol\"', '\"carla\"') WHERE global_position = 3",
            Kind::Postgres => "UPDATE events SET payload = replace(payload::text, '\"carol\"', '\"carla\"')::json WHERE global_position = 3",
        };
        as_superuser(&db, &[payload]).await;
        refused(&db, "altered", 3);

        let db = linked_store(kind).await;
        let metadata = match kind {
            Kind::Sqlite => "UPDATE events SET metadata = replace(metadata, '\"cli\"', '\"http\"') WHERE global_position = 5",
            Kind::Postgres => "UPDATE events SET metadata = replace(metadata::text, '\"cli\"', '\"http\"')::json WHERE global_position = 5",
        };
        as_superuser(&db, &[metadata]).await;
        refused(&db, "altered", 5);
    }
}

on_both_stores! {
    async fn a_deleted_an_inserted_or_a_swapped_event_is_found(kind: Kind) {
        let db = linked_store(kind).await;
        as_superuser(&db, &["DELETE FROM events WHERE global_position = 4"]).await;
        refused(&db, "missing", 4);

        // Slipped in before what the chain has passed (on Postgres with an old transaction).
        let db = linked_store(kind).await;
        let insert = match kind {
            Kind::Sqlite => "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata, global_position) \
                             SELECT aggregate_type, 'mallory', 1, event_type, event_version, payload, metadata, -1 FROM events WHERE global_position = 2",
            Kind::Postgres => "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata, global_position, transaction_id) \
                               SELECT aggregate_type, 'mallory', 1, event_type, event_version, payload, metadata, -1, '1'::xid8 FROM events WHERE global_position = 2",
        };
        as_superuser(&db, &[insert]).await;
        refused(&db, "inserted", -1);

        let db = linked_store(kind).await;
        as_superuser(&db, &[
            "UPDATE events SET global_position = -2 WHERE global_position = 2",
            "UPDATE events SET global_position = 2 WHERE global_position = 3",
            "UPDATE events SET global_position = 3 WHERE global_position = -2",
        ]).await;
        refused(&db, "reordered", 2);
    }
}

on_both_stores! {
    async fn a_changed_or_removed_link_of_the_chain_is_found(kind: Kind) {
        let db = linked_store(kind).await;
        let zeros = format!("UPDATE ledger_chain SET digest = '{}' WHERE link = 4", "0".repeat(64));
        as_superuser(&db, &[&zeros]).await;
        refused(&db, "altered", 4);

        let db = linked_store(kind).await;
        as_superuser(&db, &["DELETE FROM ledger_chain WHERE link = 5"]).await;
        let output = cli(&db, &["ledger", "verify"]);
        assert_eq!(output.status.code(), Some(7));
        assert!(String::from_utf8_lossy(&output.stderr).contains("gap: the chain jumps from link 4 to link 6"));
    }
}

on_both_stores! {
    async fn events_committed_concurrently_are_all_linked_and_verify(kind: Kind) {
        use crate::oauth::flow::{Auth, Flow};
        let flow = Flow::new(kind).await;
        let client = flow
            .client(authledger::admin::clients::ClientInput {
                name: "Batch".into(),
                grant_types: vec!["client_credentials".into()],
                scope: Some("openid".into()),
                ..Default::default()
            })
            .await;
        // Forty token requests at once: on Postgres their transactions commit out of
        // position order, which the chain must follow.
        let requests = (0..40).map(|_| flow.token(Auth::Basic(&client), &[("grant_type", "client_credentials")]));
        for (status, _, body) in futures::future::join_all(requests).await {
            assert_eq!(status, 200, "{body}");
        }
        let mut report = serde_json::Value::Null;
        for _ in 0..50 {
            let output = cli(&flow.app.db, &["ledger", "verify", "--format", "json"]);
            assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
            report = serde_json::from_slice(&output.stdout).unwrap();
            if report["unlinked"] == 0 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        assert_eq!(report["unlinked"], 0, "{report}");
        assert!(report["links"].as_i64().unwrap() >= 41, "{report}");
    }
}

on_both_stores! {
    /// Linkers of several instances race for the same events: each reads ahead and hashes
    /// before it takes the lock (SQLite), so all but one find the checkpoint moved and must
    /// link from where it is now, never an event twice, never a link with the wrong parent.
    async fn linkers_racing_on_one_store_link_each_event_once(kind: Kind) {
        use crate::oauth::flow::{Auth, Flow};
        let flow = Flow::new(kind).await;
        let client = flow
            .client(authledger::admin::clients::ClientInput {
                name: "Race".into(),
                grant_types: vec!["client_credentials".into()],
                scope: Some("openid".into()),
                ..Default::default()
            })
            .await;
        for _ in 0..3 {
            let requests = (0..30).map(|_| flow.token(Auth::Basic(&client), &[("grant_type", "client_credentials")]));
            for (status, _, body) in futures::future::join_all(requests).await {
                assert_eq!(status, 200, "{body}");
            }
            let linkers = (0..4).map(|_| {
                let url = flow.app.db.url.clone();
                tokio::spawn(async move {
                    let db = Db::connect(&url).await.unwrap();
                    authledger_projections::ledger::link_all(&db).await.unwrap()
                })
            });
            for linker in futures::future::join_all(linkers).await {
                linker.unwrap();
            }
        }
        // On Postgres a pass stops at the read horizon: events behind a transaction still open
        // elsewhere (the server's projector, under a loaded machine) wait for a later pass,
        // which links them, as the server's own linker would.
        let db = Db::connect(&flow.app.db.url).await.unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while authledger_projections::event_log::unlinked_before(&db, authledger_projections::ledger::READER)
            .await
            .unwrap()
            .after_checkpoint
            > 0
            && std::time::Instant::now() < deadline
        {
            authledger_projections::ledger::link_all(&db).await.unwrap();
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        let output = cli(&flow.app.db, &["ledger", "verify", "--format", "json"]);
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
        let events = authledger_projections::event_log::last_position(&db).await.unwrap().unwrap();
        assert!(report["links"].as_i64().unwrap() >= events.global, "{report}");
        assert_eq!(report["unlinked"], 0, "{report}");
    }
}

fn sealed(db: &TestDb) {
    let output = cli(db, &["ledger", "seal"]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(String::from_utf8_lossy(&output.stderr).contains("sealed link 6"));
}

on_both_stores! {
    async fn an_edit_with_the_chain_recomputed_after_it_is_caught_by_the_seal(kind: Kind) {
        use authledger_projections::ledger::{canonical, digest, GENESIS};
        let db = linked_store(kind).await;
        sealed(&db);
        let payload = match kind {
            Kind::Sqlite => "UPDATE events SET payload = replace(payload, '\"carol\"', '\"carla\"') WHERE global_position = 3",
            Kind::Postgres => "UPDATE events SET payload = replace(payload::text, '\"carol\"', '\"carla\"')::json WHERE global_position = 3",
        };
        as_superuser(&db, &[payload]).await;
        // What someone covering their tracks does next: recompute every digest from there on.
        let store = db.store().await;
        let events = authledger_projections::event_log::read_positions(&store.db, &[1, 2, 3, 4, 5, 6]).await.unwrap();
        let mut previous = GENESIS;
        let mut rewrites = Vec::new();
        for position in 1..=6 {
            previous = digest(&previous, &canonical(&events[&position]));
            rewrites.push(format!("UPDATE ledger_chain SET digest = '{}' WHERE link = {position}", hex::encode(previous)));
        }
        let rewrites: Vec<&str> = rewrites.iter().map(String::as_str).collect();
        as_superuser(&db, &rewrites).await;
        let output = cli(&db, &["ledger", "verify", "--format", "json"]);
        assert_eq!(output.status.code(), Some(7), "{}", String::from_utf8_lossy(&output.stderr));
        let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
        assert_eq!(report["links"], 6, "the chain alone agrees: {report}");
        assert_eq!(report["first_break"]["kind"], "resealed", "{report}");
        assert!(String::from_utf8_lossy(&output.stderr).contains("not what was sealed"));
    }
}

on_both_stores! {
    async fn a_changed_seal_or_a_substituted_key_is_a_bad_seal(kind: Kind) {
        let db = linked_store(kind).await;
        sealed(&db);
        let output = cli(&db, &["ledger", "verify"]);
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        assert!(String::from_utf8_lossy(&output.stderr).contains("1 seal(s) checked"));

        // The keys an auditor kept, and a store whose keys were replaced.
        let kept = tempfile::NamedTempFile::new().unwrap();
        let keys = cli(&db, &["ledger", "keys"]);
        std::fs::write(kept.path(), &keys.stdout).unwrap();
        let published: serde_json::Value = serde_json::from_slice(&keys.stdout).unwrap();
        assert_eq!(published["keys"][0]["crv"], "Ed25519");
        let other = linked_store(kind).await;
        sealed(&other);
        let foreign = tempfile::NamedTempFile::new().unwrap();
        let mut keys: serde_json::Value = serde_json::from_slice(&cli(&other, &["ledger", "keys"]).stdout).unwrap();
        keys["keys"][0]["kid"] = published["keys"][0]["kid"].clone();
        std::fs::write(foreign.path(), keys.to_string()).unwrap();
        let output = cli(&db, &["ledger", "verify", "--keys", foreign.path().to_str().unwrap()]);
        assert_eq!(output.status.code(), Some(7));
        assert!(String::from_utf8_lossy(&output.stderr).contains("bad seal"));
        let output = cli(&db, &["ledger", "verify", "--keys", kept.path().to_str().unwrap()]);
        assert!(output.status.success());

        as_superuser(
            &db,
            &["UPDATE ledger_seals SET sealed_at = '2020-01-01T00:00:00.000000Z'"],
        )
        .await;
        let output = cli(&db, &["ledger", "verify", "--format", "json"]);
        assert_eq!(output.status.code(), Some(7));
        let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
        assert_eq!(report["first_break"]["kind"], "bad_seal", "{report}");
    }
}

on_both_stores! {
    async fn the_server_seals_by_itself_and_publishes_the_key(kind: Kind) {
        let db = linked_store(kind).await;
        let output = cli(&db, &["settings", "set", "ledger_seal_every", "1"]);
        assert!(output.status.success());
        let app = TestApp::spawn_on(db).await;
        let mut report = serde_json::Value::Null;
        for _ in 0..100 {
            let output = cli(&app.db, &["ledger", "verify", "--format", "json"]);
            assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
            report = serde_json::from_slice(&output.stdout).unwrap();
            if report["seals_checked"].as_i64() > Some(0) {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        assert!(report["seals_checked"].as_i64() > Some(0), "{report}");
        let keys: serde_json::Value = app.http.get(app.url("/.well-known/ledger-keys")).send().await.unwrap().json().await.unwrap();
        assert_eq!(keys["keys"][0]["kty"], "OKP");
        assert_eq!(keys["keys"][0]["alg"], "EdDSA");
    }
}

/// Runs the repository's Python verifier on an export.
pub(crate) fn python_verifier(
    export: &std::path::Path,
    keys: &std::path::Path,
) -> std::process::Output {
    ensure_python(&["-c", "import cryptography"], &["cryptography>=41"]);
    std::process::Command::new("python3")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tools/verify_ledger_export.py"
        ))
        .args([export, keys])
        .output()
        .expect("python3 runs")
}

on_both_stores! {
    async fn an_export_verifies_offline_and_a_changed_byte_does_not(kind: Kind) {
        let db = linked_store(kind).await;
        sealed(&db);
        // Events after the seal are in the export too, checked by the chain alone.
        assert!(cli(&db, &["user", "disable", "bob"]).status.success());
        let dir = tempfile::tempdir().unwrap();
        let (export, keys) = (dir.path().join("ledger.jsonl"), dir.path().join("keys.json"));
        let output = cli(&db, &["ledger", "export", "--since", "1h", "--output", export.to_str().unwrap()]);
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        assert!(String::from_utf8_lossy(&output.stderr).contains("exported 7 event(s) and 1 seal(s)"));
        std::fs::write(&keys, cli(&db, &["ledger", "keys"]).stdout).unwrap();

        let output = cli(&db, &["ledger", "verify-export", export.to_str().unwrap(), "--keys", keys.to_str().unwrap()]);
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        assert!(String::from_utf8_lossy(&output.stderr).contains("7 event(s) and 1 seal(s) verified; 1 event(s) after"));
        let python = python_verifier(&export, &keys);
        assert!(python.status.success(), "{}", String::from_utf8_lossy(&python.stderr));
        let said: serde_json::Value = serde_json::from_slice(&python.stdout).unwrap();
        assert_eq!((said["events"].as_i64(), said["seals"].as_i64()), (Some(7), Some(1)));

        // One byte of one event, then a seal's signature: both verifiers refuse.
        let text = std::fs::read_to_string(&export).unwrap();
        for (from, to) in [("\"carol\"", "\"carla\""), ("\"signature\":\"", "\"signature\":\"A")] {
            std::fs::write(&export, text.replacen(from, to, 1)).unwrap();
            let output = cli(&db, &["ledger", "verify-export", export.to_str().unwrap(), "--keys", keys.to_str().unwrap()]);
            assert_eq!(output.status.code(), Some(7), "{from}: {}", String::from_utf8_lossy(&output.stderr));
            let python = python_verifier(&export, &keys);
            assert_eq!(python.status.code(), Some(1), "{from}: the Python verifier agrees");
        }
        // The last event's line removed: the file ends before the link its header announces.
        let shorter: Vec<&str> = text.lines().filter(|l| !l.contains("UserDisabled")).collect();
        assert_eq!(shorter.len() + 1, text.lines().count());
        std::fs::write(&export, shorter.join("\n")).unwrap();
        let output = cli(&db, &["ledger", "verify-export", export.to_str().unwrap(), "--keys", keys.to_str().unwrap()]);
        assert_eq!(output.status.code(), Some(7));
        assert!(String::from_utf8_lossy(&output.stderr).contains("missing"));
        assert_eq!(python_verifier(&export, &keys).status.code(), Some(1));
    }
}

on_both_stores! {
    async fn the_admin_api_streams_the_same_export(kind: Kind) {
        use crate::oauth::flow::{admin_token, Flow};
        let flow = Flow::new(kind).await;
        flow.user("alice", &[]).await;
        let token = admin_token(&flow).await;
        let db = &flow.app.db;
        let output = cli(db, &["ledger", "seal"]);
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        let dir = tempfile::tempdir().unwrap();
        let (cli_file, keys) = (dir.path().join("cli.jsonl"), dir.path().join("keys.json"));
        let output = cli(db, &["ledger", "export", "--output", cli_file.to_str().unwrap()]);
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        std::fs::write(&keys, cli(db, &["ledger", "keys"]).stdout).unwrap();

        let response = flow.app.http.get(flow.app.url("/admin/api/ledger/export"))
            .bearer_auth(&token).send().await.unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["content-type"], "application/jsonl");
        let streamed = response.text().await.unwrap();
        let from_cli = std::fs::read_to_string(&cli_file).unwrap();
        // The same lines but the header's time; more events may have been linked since.
        let body = |text: &str| text.lines().skip(1).take(5).map(str::to_owned).collect::<Vec<_>>();
        assert_eq!(body(&streamed), body(&from_cli));
        let api_file = dir.path().join("api.jsonl");
        std::fs::write(&api_file, &streamed).unwrap();
        let output = cli(db, &["ledger", "verify-export", api_file.to_str().unwrap(), "--keys", keys.to_str().unwrap()]);
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));

        // Nothing in the range: a 404 in the API's format, not an empty stream.
        let response = flow.app.http.get(flow.app.url("/admin/api/ledger/export?until=2000-01-01"))
            .bearer_auth(&token).send().await.unwrap();
        assert_eq!(response.status(), 404);
        let refused: serde_json::Value = response.json().await.unwrap();
        assert_eq!(refused["error"], "not_found");
    }
}

on_both_stores! {
    async fn events_recorded_with_a_nul_character_link_and_verify(kind: Kind) {
        // Input is checked at the edge now, but a log written before may hold a NUL in a
        // payload or metadata string; the chain covers it as readers see it.
        let db = linked_store(kind).await;
        let store = db.store().await;
        let insert = "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata) \
                      VALUES ('User', 'nul', 1, 'ProfileUpdated', '1', $1, $2)";
        let payload = r#"{"ProfileUpdated":{"note":"a\u0000b"}}"#;
        let metadata = r#"{"actor":"cli:o\u0000ps","request_id":"r-1","source":"cli","time":"2026-11-27T09:00:00.000000Z"}"#;
        match &store.db {
            Db::Sqlite(pool) => sqlx::query(insert).bind(payload).bind(metadata).execute(pool).await.map(drop),
            Db::Postgres(pool) => sqlx::query(&insert.replace("$1, $2", "$1::json, $2::json")).bind(payload).bind(metadata).execute(pool).await.map(drop),
        }
        .unwrap();
        // On Postgres the linker reads only below the cluster's oldest open transaction, which
        // another test's may hold back for a moment.
        for _ in 0..100 {
            authledger_projections::ledger::link_all(&store.db).await.unwrap();
            let links: i64 = authledger_projections::on_db!(&store.db, pool => sqlx::query_scalar("SELECT COUNT(*) FROM ledger_chain").fetch_one(pool).await).unwrap();
            if links == 7 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        let output = cli(&db, &["ledger", "verify", "--format", "json"]);
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
        assert_eq!(report["links"], 7, "{report}");
    }
}
