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
