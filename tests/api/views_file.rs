//! The SQLite store's views in a file of their own (`projections/src/views_file.rs`): a rebuild
//! switches to a new file that a running server follows, an older copy of the log never meets
//! views from its future, and a store from before the split keeps what its views held.

use std::path::{Path, PathBuf};

use authledger::admin::clients::{self, ClientInput};
use authledger_domain::client::RegistrationSource;
use authledger_domain::metadata::Actor;
use authledger_projections::clients::ClientsView;
use authledger_projections::Db;

use crate::helpers::*;
use crate::oauth::flow::{Auth, Flow};

async fn register(store: &authledger::store::Store, name: &str) {
    let input = ClientInput {
        name: name.into(),
        redirect_uris: vec!["https://app.example/cb".into()],
        ..ClientInput::default()
    };
    let who = metadata(Actor::Cli("ops".into()));
    clients::register(store, input, RegistrationSource::Admin, &who, None)
        .await
        .unwrap();
}

async fn client_names(db: &Db) -> Vec<String> {
    let mut names: Vec<String> = ClientsView::list(db, None, 1000)
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.name)
        .collect();
    names.sort();
    names
}

fn store_path(db: &TestDb) -> PathBuf {
    db.dir.as_ref().unwrap().path().join("authledger.db")
}

/// A views file's tables and indexes (type, name, table, statement with its spacing
/// evened out), and what SQLite's integrity check says of it ("ok": every index holds
/// exactly its table's rows).
async fn schema_and_integrity(file: &Path) -> (Vec<(String, String, String, String)>, String) {
    use sqlx::Connection;
    let options = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(file)
        .read_only(true);
    let mut conn = sqlx::SqliteConnection::connect_with(&options)
        .await
        .unwrap();
    let rows: Vec<(String, String, String, Option<String>)> =
        sqlx::query_as("SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY type, name")
            .fetch_all(&mut conn)
            .await
            .unwrap();
    let integrity: String = sqlx::query_scalar("PRAGMA integrity_check")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    conn.close().await.unwrap();
    let schema = rows
        .into_iter()
        .map(|(kind, name, table, sql)| {
            let sql = sql.unwrap_or_default();
            (
                kind,
                name,
                table,
                sql.split_whitespace().collect::<Vec<_>>().join(" "),
            )
        })
        .collect();
    (schema, integrity)
}

/// The file the views link names.
fn views_target(store: &Path) -> PathBuf {
    let link = PathBuf::from(format!("{}-views", store.display()));
    store
        .parent()
        .unwrap()
        .join(std::fs::read_link(link).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rebuild_in_another_process_switches_the_views_file_and_the_server_follows_it() {
    let app = TestApp::spawn(Kind::Sqlite).await;
    for n in 0..5 {
        register(&app.store, &format!("before {n}")).await;
    }
    app.store.runner.catch_up_fully().await.unwrap();
    let store = store_path(&app.db);
    let before = views_target(&store);
    let (schema_before, _) = schema_and_integrity(&before).await;

    // `authledger projections rebuild` beside the running server, as an operator runs it.
    let db = app.db.shared();
    let rebuilt = tokio::task::spawn_blocking(move || cli(&db, &["projections", "rebuild"]))
        .await
        .unwrap();
    assert!(
        rebuilt.status.success(),
        "{}",
        String::from_utf8_lossy(&rebuilt.stderr)
    );

    let after = views_target(&store);
    assert_ne!(after, before, "the link names the rebuilt file");
    assert!(!before.exists(), "the replaced views file is removed");
    // Built in parts and merged into one of them: every table and index the migrations make,
    // each index whole.
    let (schema_after, integrity) = schema_and_integrity(&after).await;
    assert_eq!(schema_after, schema_before);
    assert_eq!(integrity, "ok");

    // The server reads the rebuilt views and projects what comes next into them.
    for n in 0..3 {
        register(&app.store, &format!("after {n}")).await;
    }
    app.store.runner.catch_up_fully().await.unwrap();
    let names = client_names(&app.store.db).await;
    assert_eq!(names.len(), 8, "{names:?}");
    assert!(names.contains(&"after 2".to_owned()) && names.contains(&"before 0".to_owned()));
    // In the file the link names, not in the one that was replaced.
    let reopened = app.db.store().await;
    assert_eq!(client_names(&reopened.db).await, names);
    let leftovers: Vec<String> = std::fs::read_dir(store.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.contains("-views-"))
        .filter(|name| !name.starts_with(&*after.file_name().unwrap().to_string_lossy()))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn views_further_along_than_a_restored_log_are_built_again_from_it() {
    let test_db = TestDb::new(Kind::Sqlite).await;
    let store = test_db.store().await;
    register(&store, "in the backup").await;
    store.runner.catch_up_fully().await.unwrap();
    let path = store_path(&test_db);
    let backup = path.with_file_name("backup.db");
    let Db::Sqlite(pool) = &store.db else {
        unreachable!()
    };
    sqlx::query("VACUUM main INTO ?")
        .bind(backup.to_string_lossy().into_owned())
        .execute(pool)
        .await
        .unwrap();
    register(&store, "after the backup").await;
    store.runner.catch_up_fully().await.unwrap();
    assert_eq!(client_names(&store.db).await.len(), 2);
    store.db.close().await;
    drop(store);

    // The operator restores the log's file beside the views files, which are from later. (In
    // a directory of its own: in this process a connection of the first store may still be
    // closing, and would write its log back into a file restored in place.)
    let restored_dir = tempfile::tempdir().unwrap();
    let restored_path = restored_dir.path().join("authledger.db");
    std::fs::copy(&backup, &restored_path).unwrap();
    for entry in std::fs::read_dir(path.parent().unwrap()).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.starts_with("authledger.db-views") {
            continue;
        }
        let to = restored_dir.path().join(&name);
        match std::fs::read_link(entry.path()) {
            Ok(target) => std::os::unix::fs::symlink(target, to).unwrap(),
            Err(_) => drop(std::fs::copy(entry.path(), to).unwrap()),
        }
    }
    let mut restored = test_db.shared();
    restored.url = format!("sqlite://{}", restored_path.display());

    let store = restored.store().await;
    store.runner.catch_up_fully().await.unwrap();
    assert_eq!(
        client_names(&store.db).await,
        vec!["in the backup".to_owned()],
        "no view shows what the restored log does not hold"
    );
}

/// An upgrade that changes the views' schema (`views_file::VERSION`) finds the previous
/// release's views file at its first start: it builds a new one from the log and follows it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn views_of_an_older_schema_are_built_again_from_the_log() {
    use sqlx::Connection;
    let test_db = TestDb::new(Kind::Sqlite).await;
    let store = test_db.store().await;
    register(&store, "before the upgrade").await;
    store.runner.catch_up_fully().await.unwrap();
    let path = store_path(&test_db);
    let old = views_target(&path);
    store.db.close().await;
    drop(store);

    // The views file as the previous release left it: the version before this one.
    let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite://{}", old.display()))
        .await
        .unwrap();
    let previous = authledger_projections::views_file::VERSION - 1;
    sqlx::query(&format!("PRAGMA user_version = {previous}"))
        .execute(&mut conn)
        .await
        .unwrap();
    conn.close().await.unwrap();

    let store = test_db.shared().store().await;
    store.runner.catch_up_fully().await.unwrap();
    assert_eq!(
        client_names(&store.db).await,
        vec!["before the upgrade".to_owned()]
    );
    let new = views_target(&path);
    assert_ne!(new, old, "a views file of this version, built from the log");
    let (schema, integrity) = schema_and_integrity(&new).await;
    assert_eq!(integrity, "ok");
    assert!(
        schema
            .iter()
            .any(|(_, name, _, sql)| name == "audit_by_user" && sql.ends_with("IS NOT NULL")),
        "{schema:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_from_before_the_views_file_keeps_its_views_and_checkpoints() {
    use sqlx::Connection;
    let test_db = TestDb::new(Kind::Sqlite).await;
    let path = store_path(&test_db);
    // The store as the release before this one left it: every migration but the last, its
    // views in the log's file.
    let mut migrator = sqlx::migrate::Migrator::new(Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/migrations/sqlite"
    )))
    .await
    .unwrap();
    let split = 20261129000021;
    migrator.migrations = migrator
        .migrations
        .iter()
        .filter(|m| m.version < split)
        .cloned()
        .collect::<Vec<_>>()
        .into();
    let mut old = sqlx::SqliteConnection::connect(&format!("sqlite://{}?mode=rwc", path.display()))
        .await
        .unwrap();
    migrator.run(&mut old).await.unwrap();
    sqlx::query(
        "INSERT INTO client_view (client_id, name, status, metadata, registered_via, \
         registered_at, registered_by, updated_at, version) \
         VALUES ('kept', 'Projected before the upgrade', 'active', '{}', 'admin', 'then', 'ops', 'then', 1)",
    )
    .execute(&mut old)
    .await
    .unwrap();
    for (name, position) in [("clients", 0), ("users", 0), ("ledger", 0), ("cascade", 0)] {
        sqlx::query(
            "INSERT INTO projection_checkpoints (projection, transaction_id, global_position) \
             VALUES ($1, 0, $2)",
        )
        .bind(name)
        .bind(position)
        .execute(&mut old)
        .await
        .unwrap();
    }
    old.close().await.unwrap();

    let store = test_db.store().await;
    let Db::Sqlite(pool) = &store.db else {
        unreachable!()
    };
    let carried: Vec<String> = sqlx::query_scalar("SELECT name FROM views.client_view")
        .fetch_all(pool)
        .await
        .unwrap();
    assert_eq!(carried, vec!["Projected before the upgrade".to_owned()]);
    let in_the_log_file: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM main.sqlite_master WHERE name IN ('client_view', 'token_view', 'audit_log')",
    )
    .fetch_one(pool)
    .await
    .unwrap();
    assert_eq!(in_the_log_file, 0, "the views left the log's file");
    let readers: Vec<String> = sqlx::query_scalar(
        "SELECT projection FROM main.projection_checkpoints ORDER BY projection",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    assert!(readers.contains(&"ledger".to_owned()) && readers.contains(&"cascade".to_owned()));
    assert!(!readers.contains(&"clients".to_owned()), "{readers:?}");
    let views: Vec<String> = sqlx::query_scalar(
        "SELECT projection FROM views.projection_checkpoints ORDER BY projection",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    assert!(views.contains(&"clients".to_owned()) && views.contains(&"users".to_owned()));
}

/// The log's file and the views file have write locks of their own: while another process
/// holds the views file's (a rebuild putting a projection's rows in, say), tokens are still
/// issued at once (before, commands waited out SQLite's 10 s busy timeout and were answered
/// 503), and the views catch up once it lets go.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_are_issued_while_another_process_holds_the_views_files_lock() {
    use sqlx::{ConnectOptions, Executor};

    let flow = Flow::new(Kind::Sqlite).await;
    let client = flow
        .client(ClientInput {
            name: "Batch".into(),
            grant_types: vec!["client_credentials".into()],
            redirect_uris: vec![],
            ..ClientInput::default()
        })
        .await;
    flow.app.store.runner.catch_up_fully().await.unwrap();
    let views = views_target(&store_path(&flow.app.db));
    let mut other = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(&views)
        .connect()
        .await
        .unwrap();
    other.execute("BEGIN IMMEDIATE").await.unwrap();

    let mut issued = Vec::new();
    for _ in 0..5 {
        let started = std::time::Instant::now();
        let (status, _, body) = flow
            .token(
                Auth::Basic(&client),
                &[("grant_type", "client_credentials")],
            )
            .await;
        assert_eq!(status, 200, "{body}");
        assert!(
            started.elapsed() < std::time::Duration::from_secs(3),
            "issued in {:?}",
            started.elapsed()
        );
        issued.push(body["access_token"].as_str().unwrap().to_owned());
    }
    // Introspection answers from memory, views or not.
    let (_, _, introspected) = flow
        .token_at(
            "/oauth/introspect",
            Auth::Basic(&client),
            &[("token", issued[4].as_str())],
        )
        .await;
    assert_eq!(introspected["active"], true, "{introspected}");

    other.execute("ROLLBACK").await.unwrap();
    drop(other);
    flow.app.store.runner.catch_up_fully().await.unwrap();
    let grants: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM grant_view WHERE client_id = $1")
        .bind(client.client_id.as_str())
        .fetch_one(match &flow.app.store.db {
            Db::Sqlite(pool) => pool,
            Db::Postgres(_) => unreachable!("a SQLite store"),
        })
        .await
        .unwrap();
    assert_eq!(grants, 5, "the views caught up with every token");
}
