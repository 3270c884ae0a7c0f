//! Projections: checkpointed with their views, repaired after a crash, equal to a rebuild.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use authledger::admin::clients::{self, ClientInput};
use authledger::admin::users::{self, UserInput};
use authledger_domain::client::{ClientEvent, ClientMetadata, RegistrationSource};
use authledger_domain::metadata::Actor;
use authledger_projections::clients::{ClientSummary, ClientsView};
use authledger_projections::users::{UserSummary, UsersView};
use authledger_projections::{
    batch::ViewTx, Db, Projection, ProjectionError, ProjectionRunner, StoredEvent,
};

use crate::helpers::*;

fn client_input(name: &str) -> ClientInput {
    ClientInput {
        name: name.into(),
        redirect_uris: vec!["https://app.example/cb".into()],
        ..ClientInput::default()
    }
}

/// Commits a `ClientRegistered` event the way the store does, but stops there: the state a
/// process leaves when it dies between the event commit and the view update.
async fn commit_event_then_crash(db: &Db, client_id: &str) {
    let metadata = ClientInput {
        token_endpoint_auth_method: Some("none".into()),
        public: true,
        ..client_input("Committed before the crash")
    }
    .parse()
    .unwrap();
    let event = ClientEvent::ClientRegistered {
        client_id: client_id.into(),
        metadata,
        secret_hash: None,
        registered_via: RegistrationSource::Admin,
        registration_access_token_hash: None,
    };
    let payload = serde_json::to_string(&event).unwrap();
    let meta = serde_json::to_string(&metadata_map()).unwrap();
    let cast = if matches!(db, Db::Postgres(_)) {
        "::json"
    } else {
        ""
    };
    let sql = format!(
        "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, \
         payload, metadata) VALUES ('Client', $1, 1, 'ClientRegistered', '1', $2{cast}, $3{cast})"
    );
    authledger_projections::on_db!(db, pool => sqlx::query(&sql)
        .bind(client_id)
        .bind(&payload)
        .bind(&meta)
        .execute(pool)
        .await
        .map(drop))
    .unwrap();
}

fn metadata_map() -> std::collections::HashMap<String, String> {
    metadata(Actor::Cli("ops".into())).to_map()
}

on_both_stores! {
    async fn a_crash_between_event_commit_and_view_update_is_repaired_at_the_next_start(kind: Kind) {
        let app = TestApp::spawn(kind).await;
        let db = app.stop().await;
        {
            let store = db.store().await;
            commit_event_then_crash(&store.db, "crashed-client").await;
            assert_eq!(ClientsView::get(&store.db, "crashed-client").await.unwrap(), None);
            store.db.close().await;
        }

        let app = TestApp::spawn_on(db).await;

        let store = app.db.store().await;
        let client = ClientsView::get(&store.db, "crashed-client").await.unwrap();
        let client = client.expect("the restarted server repaired the view");
        assert_eq!(client.name, "Committed before the crash");
        assert_eq!(client.status, "active");
        // And the CLI, a separate process, sees it too.
        let shown = cli_json(&app.db, &["client", "show", "crashed-client"]);
        assert_eq!(shown["name"], "Committed before the crash");
    }
}

/// Wraps a projection and fails on its `fail_at`-th event, as a crash mid-batch would.
struct FailsMidway<P> {
    inner: P,
    applied: AtomicUsize,
    fail_at: usize,
}

#[async_trait]
impl<P: Projection> Projection for FailsMidway<P> {
    fn name(&self) -> &'static str {
        self.inner.name()
    }
    fn tables(&self) -> &'static [&'static str] {
        self.inner.tables()
    }
    async fn apply(&self, tx: &mut ViewTx, event: &StoredEvent) -> Result<(), ProjectionError> {
        if self.applied.fetch_add(1, Ordering::SeqCst) + 1 == self.fail_at {
            return Err(ProjectionError::Decode("injected failure".into()));
        }
        self.inner.apply(tx, event).await
    }
}

on_both_stores! {
    async fn a_view_update_that_fails_midway_leaves_neither_rows_nor_checkpoint_behind(kind: Kind) {
        let test_db = TestDb::new(kind).await;
        {
            let store = test_db.store().await;
            commit_event_then_crash(&store.db, "first").await;
            commit_event_then_crash(&store.db, "second").await;
            store.db.close().await;
        }
        let store = test_db.store().await;
        // On Postgres an event becomes readable once every older transaction of the cluster has
        // ended (other tests' included): wait until both are, so they land in one batch.
        for _ in 0..500 {
            let mut tx = store.db.begin().await.unwrap();
            let readable = authledger_projections::event_log::read_after(&mut tx, Default::default(), 10).await.unwrap();
            if readable.len() == 2 {
                break;
            }
            drop(tx);
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }

        let failing = ProjectionRunner::new(
            store.db.clone(),
            vec![Arc::new(FailsMidway { inner: ClientsView, applied: AtomicUsize::new(0), fail_at: 2 })],
        )
        .await
        .unwrap();
        assert!(failing.catch_up().await.is_err());
        // The first event was applied inside the failed transaction: it must not show.
        assert_eq!(ClientsView::get(&store.db, "first").await.unwrap(), None);

        store.runner.catch_up().await.unwrap();
        assert!(ClientsView::get(&store.db, "first").await.unwrap().is_some());
        assert!(ClientsView::get(&store.db, "second").await.unwrap().is_some());
    }
}

async fn snapshot(db: &Db) -> (Vec<ClientSummary>, Vec<UserSummary>) {
    (
        ClientsView::list(db, None, 1000).await.unwrap(),
        UsersView::list(db, None, 1000).await.unwrap(),
    )
}

on_both_stores! {
    async fn views_updated_after_each_command_equal_views_rebuilt_from_the_log(kind: Kind) {
        let test_db = TestDb::new(kind).await;
        let store = test_db.store().await;
        let who = metadata(Actor::Cli("ops".into()));
        for n in 0..4 {
            let client = clients::register(&store, client_input(&format!("c{n}")), RegistrationSource::Admin, &who, None)
                .await
                .unwrap();
            let id = client.client_id.as_str();
            if n % 2 == 0 {
                clients::disable(&store, id, None, &who).await.unwrap();
            }
            if n == 2 {
                clients::rotate_secret(&store, id, true, &who, None).await.unwrap();
                clients::delete(&store, id, &who).await.unwrap();
            }
            let mut update = store.clients.load(id).await.unwrap().registered().unwrap().metadata.clone();
            update.name = format!("renamed {n}");
            if n != 2 {
                store
                    .clients
                    .execute(id, authledger_domain::client::ClientCommand::Update { metadata: ClientMetadata { ..update } }, &who)
                    .await
                    .unwrap();
            }
        }
        for name in ["dora", "eve"] {
            users::create(&store, UserInput {
                username: name.into(),
                password: "long enough password".into(),
                roles: vec!["reader".into()],
                ..UserInput::default()
            }, &who).await.unwrap();
        }
        users::set_roles(&store, "dora", &["admin".into(), "reader".into()], &who).await.unwrap();
        users::set_password(&store, "eve", "another long password", &who).await.unwrap();
        users::disable(&store, "eve", &who).await.unwrap();

        let live = snapshot(&store.db).await;
        assert_eq!(live.0.len(), 4);
        assert_eq!(live.1.len(), 2);

        let replayed = store.runner.rebuild(None).await.unwrap();
        assert!(replayed > 0);

        assert_eq!(snapshot(&store.db).await, live);
    }
}

/// Registers `count` clients named `prefix 0`, `prefix 1`...
async fn register_clients(store: &authledger::store::Store, prefix: &str, count: usize) {
    let who = metadata(Actor::Cli("ops".into()));
    for n in 0..count {
        let input = client_input(&format!("{prefix} {n}"));
        clients::register(store, input, RegistrationSource::Admin, &who, None)
            .await
            .unwrap();
    }
}

/// The checkpoints, and on Postgres the schemas a rebuild builds in.
async fn checkpoints_and_scratch(db: &Db) -> (Vec<(String, i64)>, Vec<String>) {
    let checkpoints = authledger_projections::checkpoint::all(db).await.unwrap();
    let scratch = match db {
        // The SQLite rebuild's scratch files sit beside the store, named as views files are:
        // any but the views file the link names (and its WAL files) would be one left over.
        Db::Sqlite(pool) => {
            let store = pool.connect_options().get_filename().to_path_buf();
            let link = format!("{}-views", store.display());
            let current = std::fs::read_link(&link)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            let prefix = format!("{}-views-", store.file_name().unwrap().to_string_lossy());
            std::fs::read_dir(store.parent().unwrap())
                .unwrap()
                .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
                .filter(|name| name.starts_with(&prefix))
                .filter(|name| {
                    ![
                        current.clone(),
                        format!("{current}-wal"),
                        format!("{current}-shm"),
                    ]
                    .contains(name)
                })
                .collect()
        }
        Db::Postgres(pool) => sqlx::query_scalar(
            "SELECT nspname::text FROM pg_namespace WHERE nspname LIKE 'authledger%'",
        )
        .fetch_all(pool)
        .await
        .unwrap(),
    };
    (checkpoints, scratch)
}

on_both_stores! {
    async fn a_rebuild_that_fails_leaves_the_views_and_checkpoints_as_they_were(kind: Kind) {
        let test_db = TestDb::new(kind).await;
        let store = test_db.store().await;
        let who = metadata(Actor::Cli("ops".into()));
        for n in 0..3 {
            clients::register(&store, client_input(&format!("c{n}")), RegistrationSource::Admin, &who, None).await.unwrap();
            users::create(&store, UserInput {
                username: format!("user{n}"),
                password: "long enough password".into(),
                ..UserInput::default()
            }, &who).await.unwrap();
        }
        store.runner.catch_up_fully().await.unwrap();
        if let Db::Postgres(pool) = &store.db {
            // What a rebuild that crashed half-way leaves: the next one clears it away.
            sqlx::query("CREATE SCHEMA authledger_rebuild_1").execute(pool).await.unwrap();
            sqlx::query("CREATE TABLE authledger_rebuild_1.client_view (client_id text)").execute(pool).await.unwrap();
        }
        let views = snapshot(&store.db).await;
        let (checkpoints, _) = checkpoints_and_scratch(&store.db).await;

        // The users projection fails at its fifth event, after the clients projection (on
        // Postgres, rebuilt on another connection) may have finished its own tables.
        let failing = ProjectionRunner::new(
            store.db.clone(),
            vec![
                Arc::new(ClientsView),
                Arc::new(FailsMidway { inner: UsersView, applied: AtomicUsize::new(0), fail_at: 5 }),
            ],
        )
        .await
        .unwrap();
        failing.rebuild_in_pages_of(2);
        let error = failing.rebuild(None).await.unwrap_err();
        assert!(error.to_string().contains("injected failure"), "{error}");

        assert_eq!(snapshot(&store.db).await, views);
        assert_eq!(checkpoints_and_scratch(&store.db).await, (checkpoints, Vec::new()), "no scratch schema is left");
        // And the next rebuild works.
        store.runner.rebuild(None).await.unwrap();
        assert_eq!(snapshot(&store.db).await, views);
    }
}

on_both_stores! {
    async fn events_committed_during_a_rebuild_reach_the_rebuilt_views(kind: Kind) {
        let test_db = TestDb::new(kind).await;
        let store = Arc::new(test_db.store().await);
        let who = metadata(Actor::Cli("ops".into()));
        register_clients(&store, "before", 30).await;
        store.runner.catch_up_fully().await.unwrap();

        // Two rebuilds at once, reading the log an event at a time, while commands keep
        // committing: the rebuilds take turns, and what was committed meanwhile is in the views
        // they leave (on Postgres the old views follow the log during the build, and the swap
        // replays onto the new ones what the build did not read).
        store.runner.rebuild_in_pages_of(1);
        let rebuilds: Vec<_> = (0..2)
            .map(|_| {
                let store = store.clone();
                tokio::spawn(async move { store.runner.rebuild(None).await })
            })
            .collect();
        for n in 0..6 {
            clients::register(&store, client_input(&format!("during {n}")), RegistrationSource::Admin, &who, None).await.unwrap();
            store.runner.catch_up().await.unwrap();
        }
        for rebuild in rebuilds {
            rebuild.await.unwrap().unwrap();
        }
        store.runner.catch_up_fully().await.unwrap();

        let names: Vec<String> = ClientsView::list(&store.db, None, 1000).await.unwrap().into_iter().map(|c| c.name).collect();
        assert_eq!(names.len(), 36, "{names:?}");
        for n in 0..6 {
            assert!(names.contains(&format!("during {n}")), "{names:?}");
        }
        // One audit row per event, none twice.
        let events: i64 = authledger_projections::on_db!(&store.db, pool => sqlx::query_scalar("SELECT count(*) FROM events").fetch_one(pool).await).unwrap();
        let audited: i64 = authledger_projections::on_db!(&store.db, pool => sqlx::query_scalar("SELECT count(DISTINCT global_position) FROM audit_log").fetch_one(pool).await).unwrap();
        let rows: i64 = authledger_projections::on_db!(&store.db, pool => sqlx::query_scalar("SELECT count(*) FROM audit_log").fetch_one(pool).await).unwrap();
        assert_eq!((audited, rows), (events, events));
        let (checkpoints, scratch) = checkpoints_and_scratch(&store.db).await;
        assert!(scratch.is_empty(), "{scratch:?}");
        let last = authledger_projections::event_log::last_position(&store.db).await.unwrap().unwrap();
        for (projection, position) in checkpoints {
            // Readers of the log that are not projections, run by the server's background.
            if !["cascade", "ledger"].contains(&projection.as_str()) {
                assert_eq!(position, last.global, "{projection}");
            }
        }
    }
}

/// A projection with no tables whose replay pauses at the event at `pause_at` until the test
/// lets it go on. Having written nothing, its transaction holds back no reader of the log.
struct PausesAt {
    pause_at: i64,
    paused: tokio::sync::Notify,
    resume: tokio::sync::Notify,
}

#[async_trait]
impl Projection for PausesAt {
    fn name(&self) -> &'static str {
        "test_pause"
    }
    fn tables(&self) -> &'static [&'static str] {
        &[]
    }
    async fn apply(&self, _: &mut ViewTx, event: &StoredEvent) -> Result<(), ProjectionError> {
        if event.position.global == self.pause_at {
            self.paused.notify_one();
            self.resume.notified().await;
        }
        Ok(())
    }
}

// Both stores build the new views while the server goes on committing and projecting (SQLite
// in a scratch file beside the store, holding no lock on it): what was committed after the
// build read the end of the log is replayed onto the new views when they are swapped in, and
// no scratch is left behind.
on_both_stores! {
async fn what_is_committed_while_a_rebuild_builds_is_in_the_views_it_swaps_in(kind: Kind) {
    let test_db = TestDb::new(kind).await;
    let store = test_db.store().await;
    register_clients(&store, "before", 3).await;
    store.runner.catch_up_fully().await.unwrap();
    let last = authledger_projections::event_log::last_position(&store.db)
        .await
        .unwrap()
        .unwrap();

    let gate = Arc::new(PausesAt {
        pause_at: last.global,
        paused: Default::default(),
        resume: Default::default(),
    });
    let runner = Arc::new(
        ProjectionRunner::new(store.db.clone(), vec![Arc::new(ClientsView), gate.clone()])
            .await
            .unwrap(),
    );
    let rebuild = tokio::spawn({
        let runner = runner.clone();
        async move { runner.rebuild(None).await }
    });
    gate.paused.notified().await;
    // The build has the last event; give the reader the moment it needs to find the log's end
    // and the clients' build the moment it needs to finish.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    register_clients(&store, "during", 3).await;
    // The old views keep following the log meanwhile.
    store.runner.catch_up_fully().await.unwrap();
    assert_eq!(
        ClientsView::list(&store.db, None, 1000)
            .await
            .unwrap()
            .len(),
        6
    );
    gate.resume.notify_one();
    assert!(rebuild.await.unwrap().unwrap() >= 3);

    let names: Vec<String> = ClientsView::list(&store.db, None, 1000)
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.name)
        .collect();
    assert_eq!(names.len(), 6, "{names:?}");
    let (checkpoints, scratch) = checkpoints_and_scratch(&store.db).await;
    assert!(scratch.is_empty(), "{scratch:?}");
    let now = authledger_projections::event_log::last_position(&store.db)
        .await
        .unwrap()
        .unwrap();
    assert!(
        checkpoints.contains(&("clients".to_owned(), now.global)),
        "{checkpoints:?}"
    );
}
}
