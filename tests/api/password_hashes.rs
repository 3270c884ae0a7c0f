//! Password hashes stay out of the event log: events name where a hash is kept, so no one who
//! reads the log, its history or an export of it gets a hash to attack offline. Stores that
//! recorded hashes in events before move them out when they upgrade.

use authledger_projections::on_db;
use reqwest::StatusCode;

use crate::helpers::*;
use crate::oauth::flow::*;

/// Every event's payload and metadata, as stored.
async fn stored_events(db: &authledger_projections::Db) -> String {
    let sql = "SELECT CAST(payload AS TEXT) || ' ' || CAST(metadata AS TEXT) FROM events";
    let rows: Vec<String> =
        on_db!(db, pool => sqlx::query_scalar(sql).fetch_all(pool).await).unwrap();
    rows.join("\n")
}

/// The hashes kept for `username`, oldest first.
async fn kept_hashes(db: &TestDb, username: &str) -> Vec<String> {
    let store = db.store().await;
    let sql = "SELECT hash FROM password_credentials WHERE username = $1 ORDER BY created_at, id";
    on_db!(&store.db, pool => sqlx::query_scalar(sql).bind(username).fetch_all(pool).await).unwrap()
}

on_both_stores! {
    async fn a_password_is_kept_outside_the_log_and_nothing_that_shows_history_shows_a_hash(kind: Kind) {
        let flow = Flow::new(kind).await;
        flow.user("alice", &[]).await;
        let changed = cli_with_stdin(&flow.app.db, &["user", "set-password", "alice", "--password-stdin"], "through the looking-glass\n");
        assert!(changed.status.success(), "{}", String::from_utf8_lossy(&changed.stderr));
        flow.app.settle().await;

        // Signing in reads the hash from where it is kept.
        let old = flow.sign_in_with("alice", &password_of("alice"), "/account").await;
        assert_eq!(old.status(), StatusCode::UNAUTHORIZED, "the old password no longer works");
        let new = flow.sign_in_with("alice", "through the looking-glass", "/account").await;
        assert_eq!(new.status(), StatusCode::SEE_OTHER);

        let kept = kept_hashes(&flow.app.db, "alice").await;
        assert_eq!(kept.len(), 2, "one per password set");
        assert!(kept.iter().all(|h| h.starts_with("$argon2id$")));

        // The events name each hash by the id of where it is kept.
        let history = cli_stdout(&flow.app.db, &["events", "--aggregate", "user:alice", "--format", "json"]);
        let credentials: Vec<String> = history
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
            .filter_map(|e| {
                let payload = &e["payload"][e["event_type"].as_str().unwrap()];
                payload["credential"].as_str().map(str::to_owned)
            })
            .collect();
        assert_eq!(credentials.len(), 2, "{history}");
        assert!(credentials.iter().all(|id| id.starts_with("pw-")));

        // No hash in the log itself, nor in anything that shows it.
        let export = cli_stdout(&flow.app.db, &["ledger", "export", "--since", "1h"]);
        let state = cli_stdout(&flow.app.db, &["state", "user:alice", "--as-of", "now"]);
        let text = cli_stdout(&flow.app.db, &["events"]);
        for (what, shown) in [
            ("the events table", stored_events(&flow.store.db).await),
            ("events --format json", history),
            ("events", text),
            ("ledger export", export),
            ("state", state),
        ] {
            assert!(!shown.contains("$argon2"), "{what} shows a password hash");
            for hash in &kept {
                assert!(!shown.contains(hash.as_str()), "{what} shows a password hash");
            }
        }
    }
}

on_both_stores! {
    async fn an_older_store_moves_the_hashes_its_events_held_out_of_the_log(kind: Kind) {
        let db = TestDb::new(kind).await;
        let hash = authledger::services::hash_password(
            &authledger_domain::secret::Password::parse(&password_of("olga")).unwrap(),
        )
        .await
        .unwrap();
        {
            // Olga registered before hashes left the log: her event holds the hash itself.
            // (Written as that release wrote it, beside an event of today's for its metadata.)
            let store = db.store().await;
            let input = authledger::admin::users::UserInput {
                username: "someone".into(),
                password: "someone's password".into(),
                ..Default::default()
            };
            authledger::admin::users::create(&store, input, &metadata(authledger_domain::metadata::Actor::Cli("test".into())))
                .await
                .unwrap();
            let legacy = serde_json::json!({"UserRegistered": {
                "username": "olga",
                "password_hash": hash.as_str(),
                "profile": {"email": "olga@example.com"},
                "roles": [],
            }})
            .to_string();
            let insert = match kind {
                Kind::Sqlite => "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata) \
                                 SELECT aggregate_type, 'olga', sequence, event_type, event_version, $1, metadata FROM events WHERE aggregate_id = 'someone'",
                Kind::Postgres => "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata) \
                                   SELECT aggregate_type, 'olga', sequence, event_type, event_version, $1::json, metadata FROM events WHERE aggregate_id = 'someone'",
            };
            on_db!(&store.db, pool => sqlx::query(insert).bind(&legacy).execute(pool).await.map(|_| ())).unwrap();
            // The store as it was before the migration that moves hashes out.
            for sql in [
                "DELETE FROM _sqlx_migrations WHERE version = 20261127000016",
                "DROP TABLE password_credentials",
            ] {
                on_db!(&store.db, pool => sqlx::query(sql).execute(pool).await.map(|_| ())).unwrap();
            }
            assert!(stored_events(&store.db).await.contains("$argon2id$"));
        }

        // The upgrade: the server migrates the store as it starts.
        let flow = Flow::with_app(TestApp::spawn_on(db).await).await;
        let stored = stored_events(&flow.store.db).await;
        assert!(!stored.contains("$argon2"), "the hash left the log: {stored}");
        let sql = "SELECT CAST(payload AS TEXT) FROM events WHERE aggregate_id = 'olga'";
        let payload: String = on_db!(&flow.store.db, pool => sqlx::query_scalar(sql).fetch_one(pool).await).unwrap();
        let payload: serde_json::Value = serde_json::from_str(&payload).unwrap();
        assert_eq!(payload["UserRegistered"]["credential"], "moved:olga:1", "{payload}");
        // Her profile, recorded in the clear then, is sealed under her own key now.
        assert!(payload["UserRegistered"]["profile"]["$personal"].is_object(), "{payload}");
        assert!(payload["UserRegistered"].get("password_hash").is_none());
        assert_eq!(kept_hashes(&flow.app.db, "olga").await, [hash.as_str()]);
        // Olga signs in with the password she always had, and the chain covers the new form.
        let signed_in = flow.sign_in_with("olga", &password_of("olga"), "/account").await;
        assert_eq!(signed_in.status(), StatusCode::SEE_OTHER);
        let verified = cli(&flow.app.db, &["ledger", "verify"]);
        assert!(verified.status.success(), "{}", String::from_utf8_lossy(&verified.stderr));
    }
}
