//! Erasure of a person's data by crypto-shredding: what identifies them beyond their username
//! is sealed in events under a key of their own; `authledger user erase` (or the admin API)
//! destroys it. Afterwards their email, name, IP address and user agent are nowhere: not in
//! any table or database file, not in what shows history, not in an export, not in views
//! rebuilt from the log; and the ledger still verifies.

use authledger::admin::users::{self, UserInput};
use authledger_domain::metadata::Actor;
use reqwest::{Method, StatusCode};

use crate::helpers::*;
use crate::oauth::flow::*;

const EMAIL: &str = "marguerite.oysterby@example.org";
const NAME: &str = "Marguerite Oysterby";
const ADDRESS: &str = "198.51.100.77";
const BROWSER_NAME: &str = "OysterBrowser/7.7";

/// What must not be found after the erasure.
const PERSONAL: [&str; 4] = [EMAIL, NAME, ADDRESS, BROWSER_NAME];

/// A server behind a trusted proxy, so the person's address is their own, and a browser
/// that comes from that address with its own user agent.
async fn setting(kind: Kind) -> Flow {
    let limits = authledger::http::Limits {
        trusted_proxies: authledger::config::TrustedProxies::parse("127.0.0.1").unwrap(),
        ..Default::default()
    };
    let mut flow = Flow::with_app(TestApp::spawn_limited(kind, limits).await).await;
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert("x-forwarded-for", ADDRESS.parse().unwrap());
    flow.browser = reqwest::Client::builder()
        .cookie_store(true)
        .user_agent(BROWSER_NAME)
        .redirect(reqwest::redirect::Policy::none())
        .default_headers(headers)
        .build()
        .unwrap();
    for (username, email, name) in [("u7", EMAIL, NAME), ("bob", "bob@example.com", "Bob")] {
        let input = UserInput {
            username: username.into(),
            password: password_of(username),
            email: Some(email.into()),
            name: Some(name.into()),
            ..UserInput::default()
        };
        users::create(&flow.store, input, &metadata(Actor::Cli("test".into())))
            .await
            .unwrap();
    }
    flow.app.settle().await;
    flow
}

/// Where a person's data could be: every table (or database file), the history as the CLI
/// shows it, a ledger export.
async fn everywhere(flow: &Flow) -> Vec<(&'static str, String)> {
    vec![
        ("the store", everything_stored(&flow.app.db).await),
        (
            "events",
            cli_stdout(&flow.app.db, &["events", "--format", "json"]),
        ),
        (
            "history",
            cli_stdout(&flow.app.db, &["events", "--aggregate", "user:u7"]),
        ),
        (
            "state",
            cli_stdout(&flow.app.db, &["state", "user:u7", "--as-of", "now"]),
        ),
        (
            "ledger export",
            cli_stdout(&flow.app.db, &["ledger", "export", "--since", "1h"]),
        ),
    ]
}

on_both_stores! {
    async fn an_erased_person_is_found_nowhere_and_the_ledger_still_verifies(kind: Kind) {
        let mut flow = setting(kind).await;
        let client = flow.client(web_client()).await;
        // The person signs in (a failed try first), allows a client, and revokes its access.
        assert_eq!(flow.sign_in_with("u7", "not it", "/login").await.status(), StatusCode::UNAUTHORIZED);
        let (verifier, challenge) = pkce();
        let code = flow.code(&client, "u7", &[("scope", "openid email profile")], &challenge).await;
        let (status, _, tokens) = flow.exchange(Auth::Basic(&client), &code, &verifier).await;
        assert_eq!(status, 200, "{tokens}");
        let account = flow.get("/account").await.text().await.unwrap();
        assert!(account.contains(ADDRESS) && account.contains(NAME), "the person sees their own data");

        // Before: the log holds it only sealed; the views and history show it.
        let stored = everything_stored(&flow.app.db).await;
        let store = flow.store.db.clone();
        let events: Vec<String> = authledger_projections::on_db!(&store, pool =>
            sqlx::query_scalar("SELECT CAST(payload AS TEXT) || CAST(metadata AS TEXT) FROM events").fetch_all(pool).await).unwrap();
        for personal in PERSONAL {
            assert!(!events.concat().contains(personal), "{personal} is sealed in the log");
            assert!(stored.contains(personal), "{personal} is in the views before");
        }
        assert!(cli_stdout(&flow.app.db, &["events", "--format", "json"]).contains(ADDRESS), "and history shows it");

        // The erasure.
        let output = cli(&flow.app.db, &["user", "erase", "u7", "--reason", "erasure request 2026-114"]);
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        assert!(String::from_utf8_lossy(&output.stderr).contains("user u7 erased"));
        flow.app.settle().await;

        for (what, text) in everywhere(&flow).await {
            for personal in PERSONAL {
                assert!(!text.contains(personal), "{personal} is still in {what}");
            }
        }
        // The person's own events are still there, in place, and say what happened.
        let history = cli_stdout(&flow.app.db, &["events", "--aggregate", "user:u7", "--format", "json"]);
        let types: Vec<String> = history.lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["event_type"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(types.first().map(String::as_str), Some("UserRegistered"));
        assert!(types.iter().any(|t| t == "LoginFailed") && types.iter().any(|t| t == "SessionStarted"));
        let erased: serde_json::Value = serde_json::from_str(history.lines().find(|l| l.contains("UserErased")).unwrap()).unwrap();
        assert_eq!(erased["payload"]["UserErased"]["reason"], "erasure request 2026-114");
        assert!(erased["metadata"]["actor"].as_str().unwrap().starts_with("cli:"));
        // Another person's data is untouched.
        assert!(cli_stdout(&flow.app.db, &["user", "show", "bob"]).contains("bob@example.com"));

        let verified = cli(&flow.app.db, &["ledger", "verify"]);
        assert!(verified.status.success(), "{}", String::from_utf8_lossy(&verified.stderr));

        // The account stays, disabled: no sign-in, no token.
        let shown: serde_json::Value = serde_json::from_str(&cli_stdout(&flow.app.db, &["user", "show", "u7"])).unwrap();
        assert_eq!(shown["status"], "disabled");
        assert!(shown["erased_at"].is_string());
        assert!(shown["profile"].as_object().unwrap().values().all(|v| v.is_null()), "{shown}");
        flow.fresh_browser();
        assert_eq!(flow.sign_in_with("u7", &password_of("u7"), "/login").await.status(), StatusCode::UNAUTHORIZED);
        let (_, _, introspected) = flow.token_at(
            "/oauth/introspect",
            Auth::Basic(&client),
            &[("token", tokens["access_token"].as_str().unwrap())],
        ).await;
        assert_eq!(introspected["active"], false);
        // Once is enough.
        let again = cli(&flow.app.db, &["user", "erase", "u7"]);
        assert!(again.status.success());
        assert!(String::from_utf8_lossy(&again.stderr).contains("already erased"));

        // Views rebuilt from the log find nothing either.
        let rebuilt = cli(&flow.app.db, &["projections", "rebuild"]);
        assert!(rebuilt.status.success(), "{}", String::from_utf8_lossy(&rebuilt.stderr));
        for (what, text) in everywhere(&flow).await {
            for personal in PERSONAL {
                assert!(!text.contains(personal), "{personal} is back in {what} after a rebuild");
            }
        }
    }
}

on_both_stores! {
    async fn the_admin_api_erases_a_person_and_says_what_it_did(kind: Kind) {
        let flow = setting(kind).await;
        let token = admin_token(&flow).await;
        let (status, body) = admin(&flow, &token, Method::POST, "/users/u7/erase", Some(serde_json::json!({"reason": "request 15"}))).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!((body["username"].as_str(), body["recorded"].as_bool()), (Some("u7"), Some(true)));
        let (status, body) = admin(&flow, &token, Method::POST, "/users/u7/erase", None).await;
        assert_eq!((status, body["recorded"].as_bool()), (StatusCode::OK, Some(false)));
        let (status, body) = admin(&flow, &token, Method::POST, "/users/nobody/erase", None).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
        let (status, body) = admin(&flow, &token, Method::POST, "/users/bob/erase", Some(serde_json::json!({"reason": "x\u{0}y"}))).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        let (status, body) = admin(&flow, &token, Method::GET, "/users/u7", None).await;
        assert_eq!(status, StatusCode::OK);
        assert!(body["profile"].as_object().unwrap().values().all(|v| v.is_null()), "{body}");
        let (_, bob) = admin(&flow, &token, Method::GET, "/users/bob", None).await;
        assert_eq!(bob["profile"]["email"], "bob@example.com", "a refused erasure changed nothing");
    }
}

on_both_stores! {
    async fn an_older_store_seals_the_personal_data_its_events_held_in_the_clear(kind: Kind) {
        let db = TestDb::new(kind).await;
        {
            // Olga registered and signed in before personal data was sealed: her events hold
            // it in the clear, as that release wrote them.
            let store = db.store().await;
            let at = "2026-11-01T09:00:00.000000Z";
            let metadata = |actor: &str| serde_json::json!({
                "actor": actor, "source": "http", "ip": ADDRESS, "user_agent": BROWSER_NAME,
                "request_id": "r-1", "time": at,
            }).to_string();
            let registered = serde_json::json!({"UserRegistered": {
                "username": "olga", "credential": "pw-none",
                "profile": {"email": EMAIL, "name": NAME}, "roles": [],
            }}).to_string();
            let signed_in = serde_json::json!({"LoginSucceeded": {}}).to_string();
            let cast = if kind == Kind::Postgres { "::json" } else { "" };
            let insert = format!(
                "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata) \
                 VALUES ('User', 'olga', $1, $2, '1', $3{cast}, $4{cast})"
            );
            for (sequence, event_type, payload, actor) in [
                (1_i64, "UserRegistered", &registered, "cli:root"),
                (2, "LoginSucceeded", &signed_in, "anonymous"),
            ] {
                authledger_projections::on_db!(&store.db, pool => sqlx::query(&insert)
                    .bind(sequence).bind(event_type).bind(payload).bind(metadata(actor))
                    .execute(pool).await.map(|_| ())).unwrap();
            }
            let events: Vec<String> = authledger_projections::on_db!(&store.db, pool =>
                sqlx::query_scalar("SELECT CAST(payload AS TEXT) || CAST(metadata AS TEXT) FROM events").fetch_all(pool).await).unwrap();
            assert!(events.concat().contains(EMAIL) && events.concat().contains(ADDRESS));
        }

        // The upgrade: the server seals them as it starts, before the ledger links them.
        let flow = Flow::with_app(TestApp::spawn_on(db).await).await;
        let events: Vec<String> = authledger_projections::on_db!(&flow.store.db, pool =>
            sqlx::query_scalar("SELECT CAST(payload AS TEXT) || CAST(metadata AS TEXT) FROM events").fetch_all(pool).await).unwrap();
        for personal in PERSONAL {
            assert!(!events.concat().contains(personal), "{personal} is sealed now");
        }
        let shown = cli_stdout(&flow.app.db, &["user", "show", "olga"]);
        assert!(shown.contains(EMAIL), "and still read: {shown}");
        assert!(cli_stdout(&flow.app.db, &["events", "--aggregate", "user:olga"]).contains(ADDRESS));

        let output = cli(&flow.app.db, &["user", "erase", "olga"]);
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        let stored = everything_stored(&flow.app.db).await;
        for personal in PERSONAL {
            assert!(!stored.contains(personal), "{personal} is gone");
        }
        let verified = cli(&flow.app.db, &["ledger", "verify"]);
        assert!(verified.status.success(), "{}", String::from_utf8_lossy(&verified.stderr));
    }
}
