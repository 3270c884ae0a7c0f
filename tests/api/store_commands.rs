//! Client and User commands through the real store: what the aggregate tests cannot show
//! (uniqueness enforced by the store itself, metadata persisted, views updated at once).

use authledger::admin::clients::{self, ClientInput};
use authledger::admin::users::{self, UserInput};
use authledger::error::AppError;
use authledger_domain::client::RegistrationSource;
use authledger_domain::metadata::{Actor, Source};
use authledger_projections::event_log;

use crate::helpers::*;

fn web_app() -> ClientInput {
    ClientInput {
        name: "Web App".into(),
        redirect_uris: vec!["https://app.example/cb".into()],
        scope: Some("openid profile".into()),
        ..ClientInput::default()
    }
}

fn carol() -> UserInput {
    UserInput {
        username: "Carol".into(),
        password: "correct horse battery".into(),
        email: Some("carol@example.com".into()),
        roles: vec!["reader".into()],
        ..UserInput::default()
    }
}

on_both_stores! {
    async fn concurrent_registrations_of_one_username_conflict_in_the_store(kind: Kind) {
        let db = TestDb::new(kind).await;
        let store = std::sync::Arc::new(db.store().await);

        let attempts = (0..6).map(|_| {
            let store = store.clone();
            tokio::spawn(async move {
                users::create(&store, carol(), &metadata(Actor::Anonymous)).await
            })
        });
        let results: Vec<_> = futures::future::join_all(attempts).await;

        let succeeded = results.iter().filter(|r| r.as_ref().unwrap().is_ok()).count();
        assert_eq!(succeeded, 1, "exactly one registration wins");
        for result in results {
            if let Err(error) = result.unwrap() {
                assert!(
                    matches!(&error, AppError::Conflict(m) if m.contains("already taken")),
                    "the others are told the name is taken, got {error:?}"
                );
            }
        }
        let history = event_log::read_aggregate(&store.db, "User", "carol").await.unwrap();
        assert_eq!(history.len(), 1);
    }
}

on_both_stores! {
    /// On Postgres, commands arriving together are committed in one transaction (group
    /// commit); a group holding a conflicting command fails whole and each of its commands is
    /// committed again alone. Either way each command gets the answer it would get alone.
    async fn commands_committed_together_each_get_their_own_answer(kind: Kind) {
        let db = TestDb::new(kind).await;
        let store = std::sync::Arc::new(db.store().await);

        let attempts = (0..36).map(|n| {
            let store = store.clone();
            let user = match n % 6 {
                0 => carol(),
                _ => UserInput { username: format!("user{n}"), ..carol() },
            };
            tokio::spawn(async move { users::create(&store, user, &metadata(Actor::Anonymous)).await })
        });
        let results: Vec<_> = futures::future::join_all(attempts).await.into_iter().map(|r| r.unwrap()).collect();

        let refused: Vec<_> = results.iter().filter_map(|r| r.as_ref().err()).collect();
        assert_eq!(refused.len(), 5, "only the other registrations of carol fail: {refused:?}");
        for error in refused {
            assert!(matches!(error, AppError::Conflict(m) if m.contains("already taken")), "{error:?}");
        }
        for n in (0..36).filter(|n| n % 6 != 0) {
            let history = event_log::read_aggregate(&store.db, "User", &format!("user{n}")).await.unwrap();
            assert_eq!(history.len(), 1, "user{n}");
        }
        assert_eq!(event_log::read_aggregate(&store.db, "User", "carol").await.unwrap().len(), 1);
        assert_eq!(authledger_projections::users::UsersView::list(&store.db, None, 100).await.unwrap().len(), 31);
    }
}

on_both_stores! {
    async fn events_carry_who_did_it_from_where_and_when(kind: Kind) {
        let db = TestDb::new(kind).await;
        let store = db.store().await;
        let who = metadata(Actor::User("admin".into()));

        let client = clients::register(&store, web_app(), RegistrationSource::Admin, &who, None)
            .await
            .unwrap();

        let history = event_log::read_aggregate(&store.db, "Client", client.client_id.as_str())
            .await
            .unwrap();
        assert_eq!(history.len(), 1);
        let recorded = &history[0].metadata;
        assert_eq!(recorded.actor, Actor::User("admin".into()));
        assert_eq!(recorded.request_id, who.request_id);
        assert_eq!(
            recorded.source,
            Source::Http {
                ip: Some("203.0.113.7".into()),
                user_agent: Some("integration-test".into())
            }
        );
        assert_eq!(recorded.at.timestamp_micros(), who.at.timestamp_micros());
        assert!(history[0].position.global > 0);
    }
}

on_both_stores! {
    async fn a_command_is_visible_in_the_views_as_soon_as_it_returns(kind: Kind) {
        let db = TestDb::new(kind).await;
        let store = db.store().await;
        let who = metadata(Actor::Cli("ops".into()));

        let client = clients::register(&store, web_app(), RegistrationSource::Admin, &who, None)
            .await
            .unwrap();
        let id = client.client_id.as_str();
        assert_eq!(clients::show(&store, id).await.unwrap().status, "active");

        clients::disable(&store, id, Some("leaked".into()), &who).await.unwrap();
        assert_eq!(clients::show(&store, id).await.unwrap().status, "disabled");

        clients::enable(&store, id, &who).await.unwrap();
        let shown = clients::show(&store, id).await.unwrap();
        assert_eq!(shown.status, "active");
        assert_eq!(shown.version, 3);
        assert_eq!(shown.registered_by, "cli:ops");

        let user = users::create(&store, carol(), &who).await.unwrap();
        assert_eq!(user.username, "carol");
        let user = users::set_roles(&store, "carol", &["admin".into()], &who).await.unwrap();
        assert_eq!(user.roles.iter().map(|r| r.as_str()).collect::<Vec<_>>(), ["admin"]);
        assert_eq!(users::disable(&store, "carol", &who).await.unwrap().status, "disabled");
    }
}

on_both_stores! {
    async fn refusals_reach_the_caller_with_the_reason(kind: Kind) {
        let db = TestDb::new(kind).await;
        let store = db.store().await;
        let who = metadata(Actor::Cli("ops".into()));
        let client = clients::register(&store, web_app(), RegistrationSource::Admin, &who, None)
            .await
            .unwrap();
        let id = client.client_id.as_str();

        clients::disable(&store, id, None, &who).await.unwrap();
        let twice = clients::disable(&store, id, None, &who).await.unwrap_err();
        assert!(matches!(&twice, AppError::Conflict(m) if m.contains("already disabled")), "{twice:?}");

        clients::delete(&store, id, &who).await.unwrap();
        let rotate = clients::rotate_secret(&store, id, false, &who, None).await.unwrap_err();
        assert!(matches!(&rotate, AppError::Conflict(m) if m.contains("deleted")), "{rotate:?}");
        assert_eq!(clients::show(&store, id).await.unwrap().status, "deleted");

        let unknown = clients::enable(&store, "no-such-client", &who).await.unwrap_err();
        assert!(matches!(unknown, AppError::NotFound(_)), "{unknown:?}");

        let relative = ClientInput {
            redirect_uris: vec!["/cb".into()],
            ..web_app()
        };
        let refused = clients::register(&store, relative, RegistrationSource::Admin, &who, None)
            .await
            .unwrap_err();
        assert!(matches!(&refused, AppError::Invalid { message: m, .. } if m.starts_with("redirect_uri `/cb`")), "{refused:?}");

        let fragment = ClientInput {
            redirect_uris: vec!["https://app.example/cb#x".into()],
            ..web_app()
        };
        let refused = clients::register(&store, fragment, RegistrationSource::Admin, &who, None)
            .await
            .unwrap_err();
        assert!(matches!(&refused, AppError::Invalid { message: m, .. } if m.contains("fragment")), "{refused:?}");

        let short = UserInput { password: "short".into(), ..carol() };
        let refused = users::create(&store, short, &who).await.unwrap_err();
        assert!(matches!(&refused, AppError::Invalid { message: m, .. } if m.starts_with("password")), "{refused:?}");
        // No event was written for any refusal but the three accepted commands.
        let history = event_log::read_aggregate(&store.db, "Client", id).await.unwrap();
        assert_eq!(
            history.iter().map(|e| e.event_type.as_str()).collect::<Vec<_>>(),
            ["ClientRegistered", "ClientDisabled", "ClientDeleted"]
        );
    }
}

on_both_stores! {
    /// A grant kept in memory between commands must be exactly what its events make: its
    /// events were once applied to it twice, giving it duplicate tokens.
    async fn a_grant_kept_in_memory_equals_the_grant_its_events_make(kind: Kind) {
        use crate::oauth::flow::*;
        let flow = Flow::new(kind).await;
        flow.user("alice", &[]).await;
        let client = flow.client(web_client()).await;
        let (verifier, challenge) = pkce();
        let code = flow.code(&client, "alice", &[("scope", "openid")], &challenge).await;
        let (status, _, tokens) = flow.exchange(Auth::Basic(&client), &code, &verifier).await;
        assert_eq!(status, 200, "{tokens}");
        let refresh = tokens["refresh_token"].as_str().unwrap();
        let (status, _, refreshed) = flow
            .token(Auth::Basic(&client), &[("grant_type", "refresh_token"), ("refresh_token", refresh)])
            .await;
        assert_eq!(status, 200, "{refreshed}");

        let grant_id = authledger::oauth::tokens::grant_of(&code, "alac_").unwrap();
        let kept = flow.app.store.grants.load(grant_id.as_str()).await.unwrap();
        let stored = event_log::read_aggregate(&flow.app.store.db, "Grant", grant_id.as_str())
            .await
            .unwrap();
        let folded: authledger_domain::grant::Grant = event_log::fold(&stored).unwrap();
        assert_eq!(kept, folded);
    }
}
