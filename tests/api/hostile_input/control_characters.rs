//! A NUL (or another control character) in any input that could reach an event is refused at
//! the edge, and a log that already holds one is still served, rebuilt and followed.

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::*;
use crate::oauth::flow::*;

/// A dynamic registration's status and body.
async fn registered(flow: &Flow, body: Value) -> (StatusCode, Value) {
    let (status, _, body) = register(flow, body).await;
    (status, body)
}

on_both_stores! {
    async fn a_nul_in_registration_metadata_is_refused_naming_the_field(kind: Kind) {
        let flow = Flow::new(kind).await;
        flow.set("enable_dynamic_registration", "true").await;
        let (status, body) = registered(
            &flow,
            json!({"redirect_uris": ["http://127.0.0.1:9/cb"], "software_id": "a\u{0}b"}),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(body["error"], "invalid_client_metadata");
        assert!(body["error_description"].as_str().unwrap().contains("software_id"), "{body}");

        // Nothing was committed, and the server starts again on its store.
        let db = flow.app.stop().await;
        let again = TestApp::spawn_on(db).await;
        let health = again.http.get(again.url("/healthz")).send().await.unwrap();
        assert_eq!(health.status(), StatusCode::OK);
    }
}

on_both_stores! {
    async fn registrations_that_are_too_large_are_refused(kind: Kind) {
        let flow = Flow::new(kind).await;
        flow.set("enable_dynamic_registration", "true").await;
        let many: Vec<String> = (0..101).map(|i| format!("http://127.0.0.1:9/cb{i}")).collect();
        let (status, body) = registered(&flow, json!({"redirect_uris": many})).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(body["error"], "invalid_redirect_uri", "RFC 7591 §3.2.2");
        assert!(body["error_description"].as_str().unwrap().contains("redirect_uris"), "{body}");

        let long = format!("http://127.0.0.1:9/{}", "a".repeat(2100));
        let (status, body) = registered(&flow, json!({"redirect_uris": [long]})).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");

        let (status, body) = registered(
            &flow,
            json!({"redirect_uris": ["http://127.0.0.1:9/cb"], "client_name": "x".repeat(5000)}),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");

        // RFC 7591 §3.1: the metadata is JSON, and says so.
        let response = flow
            .app
            .http
            .post(flow.app.url("/oauth/register"))
            .header("content-type", "text/plain")
            .body(r#"{"redirect_uris":["http://127.0.0.1:9/cb"]}"#)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"], "invalid_request");
    }
}

on_both_stores! {
    async fn a_nul_in_a_token_request_is_invalid_request_and_usage_is_still_saved(kind: Kind) {
        let flow = Flow::new(kind).await;
        let response = flow
            .app
            .http
            .post(flow.app.url("/oauth/token"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body("grant_type=client_credentials&client_id=a%00b&client_secret=x")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"], "invalid_request");
        assert!(body["error_description"].as_str().unwrap().contains("client_id"), "{body}");

        // A count the database refuses (as Postgres refuses a NUL) is dropped alone: the
        // counts beside it are saved.
        let usage = authledger::usage::Usage::new();
        usage.count("a\u{0}b", None, authledger::usage::ReadMetric::ClientAuthFailed);
        usage.count("good-client", None, authledger::usage::ReadMetric::Userinfo);
        usage.flush(&flow.app.store.db).await;
        let rows = authledger_projections::usage::report(&flow.app.store.db, Some("good-client"), None, None, None)
            .await
            .unwrap();
        assert_eq!(rows.len(), 1, "{rows:?}");
    }
}

on_both_stores! {
    async fn a_nul_in_an_admin_path_or_query_is_a_400_in_json(kind: Kind) {
        let flow = Flow::new(kind).await;
        let token = admin_token(&flow).await;
        for path in [
            "/audit?grant=%00",
            "/tokens?client_id=%00",
            "/grants?user=a%00",
            "/consents?user=%00",
            "/usage?client_id=%00",
            "/clients/a%00b",
        ] {
            let (status, body) = admin(&flow, &token, reqwest::Method::GET, path, None).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{path}: {body}");
            assert_eq!(body["error"], "invalid_request", "{path}");
        }
        let response = flow.app.http.get(flow.app.url("/oauth/register/a%00b")).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"], "invalid_request");

        // A body with a NUL anywhere is refused too, naming where.
        let (status, body) = admin(
            &flow,
            &token,
            reqwest::Method::POST,
            "/clients",
            Some(json!({"client_name": "ops", "redirect_uris": ["https://a.example/\u{0}"]})),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(body["field"], "redirect_uris[0]", "{body}");
    }
}

on_both_stores! {
    async fn the_cli_refuses_control_characters_in_its_arguments(kind: Kind) {
        let db = TestDb::new(kind).await;
        let created = cli_json(&db, &["client", "create", "--name", "ops", "--grant-type", "client_credentials", "--scope", "admin"]);
        let id = created["client_id"].as_str().unwrap();
        let output = cli(&db, &["client", "disable", id, "--reason", "leak\u{1}ed"]);
        assert_eq!(output.status.code(), Some(2));
        assert!(String::from_utf8_lossy(&output.stderr).contains("control character"));
        // The store still serves and rebuilds.
        let output = cli(&db, &["projections", "rebuild"]);
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    }
}

/// Writes `event` as the next event of a new aggregate, straight into the log, as an older
/// version that checked nothing would have: the test of the read side's own defence.
async fn write_raw_event(
    db: &TestDb,
    store: &authledger::store::Store,
    aggregate_id: &str,
    payload: &Value,
    metadata: &Value,
) {
    let sql = "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata) \
               VALUES ('Client', $1, 1, 'ClientRegistered', '1', $2, $3)";
    match &store.db {
        authledger_projections::Db::Sqlite(pool) => {
            sqlx::query(sql)
                .bind(aggregate_id)
                .bind(payload.to_string())
                .bind(metadata.to_string())
                .execute(pool)
                .await
                .unwrap();
        }
        authledger_projections::Db::Postgres(pool) => {
            let sql = sql.replace("$2, $3", "$2::json, $3::json");
            sqlx::query(&sql)
                .bind(aggregate_id)
                .bind(payload.to_string())
                .bind(metadata.to_string())
                .execute(pool)
                .await
                .unwrap();
        }
    }
    let _ = db;
}

on_both_stores! {
    async fn a_log_that_already_holds_a_nul_serves_rebuilds_and_catches_up(kind: Kind) {
        let flow = Flow::new(kind).await;
        let model = flow.client(web_client()).await;
        let store = &flow.app.store;
        let events = authledger_projections::event_log::read_aggregate(&store.db, "Client", model.client_id.as_str()).await.unwrap();
        let mut payload = events[0].payload.clone();
        payload["ClientRegistered"]["metadata"]["software_id"] = json!("a\u{0}b");
        payload["ClientRegistered"]["metadata"]["name"] = json!("Legacy\u{0}App");
        let mut metadata: Value = serde_json::to_value(&events[0].raw_metadata).unwrap();
        metadata["actor"] = json!("registrant:a\u{0}b");

        // Followed by the running server...
        write_raw_event(&flow.app.db, store, "legacy-client", &payload, &metadata).await;
        store.current_views().await.expect("the views pass the event");
        flow.app.settle().await;
        let token = admin_token(&flow).await;
        let (status, body) = admin(&flow, &token, reqwest::Method::GET, "/clients/legacy-client", None).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["name"], "Legacy\\u0000App", "stored as JSON writes it: {body}");
        let (status, body) = admin(&flow, &token, reqwest::Method::GET, "/audit?limit=500", None).await;
        assert_eq!(status, StatusCode::OK, "{body}");

        // ... rebuilt ...
        let output = cli(&flow.app.db, &["projections", "rebuild"]);
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));

        // ... and caught up by a server starting on it.
        let db = flow.app.stop().await;
        let again = TestApp::spawn_on(db).await;
        let health = again.http.get(again.url("/healthz")).send().await.unwrap();
        assert_eq!(health.status(), StatusCode::OK);
    }
}
