//! The live index: introspection served from memory, kept correct by the event stream, on one
//! instance at once and on every other instance sharing the database shortly after.

use std::time::{Duration, Instant};

use authledger::admin::clients::{ClientInput, NewClient};
use serde_json::Value;

use crate::helpers::TestApp;
use crate::oauth::flow::Flow;

fn service() -> ClientInput {
    ClientInput {
        name: "Backend".into(),
        grant_types: vec!["client_credentials".into()],
        redirect_uris: vec![],
        scope: Some("api:read".into()),
        token_endpoint_auth_method: Some("client_secret_post".into()),
        ..ClientInput::default()
    }
}

async fn post(app: &TestApp, client: &NewClient, path: &str, params: &[(&str, &str)]) -> Value {
    let secret = client.client_secret.as_ref().unwrap().reveal();
    let mut form = vec![
        ("client_id", client.client_id.as_str()),
        ("client_secret", secret),
    ];
    form.extend_from_slice(params);
    let response = app
        .http
        .post(app.url(path))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert!(
        response.status().is_success(),
        "{path}: {}",
        response.status()
    );
    response.json().await.unwrap_or(Value::Null)
}

async fn issue(app: &TestApp, client: &NewClient) -> String {
    let tokens = post(
        app,
        client,
        "/oauth/token",
        &[("grant_type", "client_credentials")],
    )
    .await;
    tokens["access_token"].as_str().unwrap().to_owned()
}

async fn active(app: &TestApp, client: &NewClient, token: &str) -> bool {
    let answer = post(app, client, "/oauth/introspect", &[("token", token)]).await;
    answer["active"] == true
}

/// Polls until `app` reports the token `expected`; returns how long that took. The server
/// follows the log every 100 ms; the generous bound only keeps a loaded machine from failing
/// the test, and the time taken is printed.
async fn until(app: &TestApp, client: &NewClient, token: &str, expected: bool) -> Duration {
    let started = Instant::now();
    while active(app, client, token).await != expected {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "never became {expected}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    started.elapsed()
}

on_both_stores! {
    async fn another_instance_sees_issuance_and_revocation_shortly_and_its_own_at_once(kind: Kind) {
        let flow = Flow::new(kind).await;
        let client = flow.client(service()).await;
        let a = &flow.app;
        let b = a.another_instance(authledger::config::DEFAULT_TOKEN_CACHE).await;

        let token = issue(a, &client).await;
        assert!(active(a, &client, &token).await, "read-your-writes on the issuing instance");
        let seen = until(&b, &client, &token, true).await;
        eprintln!("issued on A, active on B after {seen:?}");

        post(&b, &client, "/oauth/revoke", &[("token", &token)]).await;
        assert!(!active(&b, &client, &token).await, "the next introspection on the revoking instance");
        let seen = until(a, &client, &token, false).await;
        eprintln!("revoked on B, inactive on A after {seen:?}");

        // A client disabled elsewhere (here, by the CLI) is refused shortly after.
        let other = issue(a, &client).await;
        let disabled = crate::helpers::cli(&a.db, &["client", "disable", client.client_id.as_str()]);
        assert!(disabled.status.success());
        let started = Instant::now();
        loop {
            let form = [("client_id", client.client_id.as_str()), ("client_secret", client.client_secret.as_ref().unwrap().reveal()), ("token", other.as_str())];
            let response = b.http.post(b.url("/oauth/introspect")).form(&form).send().await.unwrap();
            if response.status() == 401 {
                break;
            }
            assert!(started.elapsed() < Duration::from_secs(10), "the disabled client was never refused");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        eprintln!("disabled by the CLI, refused by B after {:?}", started.elapsed());
        b.stop().await;
    }
}

on_both_stores! {
    async fn a_restarted_instance_loads_the_live_tokens_from_the_views(kind: Kind) {
        let flow = Flow::new(kind).await;
        let client = flow.client(service()).await;
        let kept = issue(&flow.app, &client).await;
        let ended = issue(&flow.app, &client).await;
        post(&flow.app, &client, "/oauth/revoke", &[("token", &ended)]).await;

        let restarted = flow.app.another_instance(authledger::config::DEFAULT_TOKEN_CACHE).await;
        assert!(active(&restarted, &client, &kept).await, "active at once, without following the log");
        assert!(!active(&restarted, &client, &ended).await);

        // A client-credentials token is loaded without an entry for its grant, as it is held
        // when issued; revoking the grant (on the first instance: this one follows the log)
        // still ends it.
        use crate::oauth::flow::{admin, admin_token};
        let grant = &kept["alat_".len().."alat_".len() + 32];
        let token = admin_token(&flow).await;
        let path = format!("/grants/{grant}/revoke");
        let (status, revoked) = admin(&flow, &token, reqwest::Method::POST, &path, None).await;
        assert_eq!(status, reqwest::StatusCode::OK, "{revoked}");
        until(&restarted, &client, &kept, false).await;
        restarted.stop().await;
    }
}

on_both_stores! {
    async fn an_instance_whose_index_is_full_answers_from_the_views(kind: Kind) {
        let flow = Flow::new(kind).await;
        let client = flow.client(service()).await;
        let small = flow.app.another_instance(1).await;
        let tokens = [issue(&small, &client).await, issue(&small, &client).await, issue(&small, &client).await];
        for token in &tokens {
            assert!(active(&small, &client, token).await, "held or not, every token is active");
        }
        post(&small, &client, "/oauth/revoke", &[("token", &tokens[2])]).await;
        assert!(!active(&small, &client, &tokens[2]).await);
        assert!(!active(&small, &client, "alat_not-a-token").await);
        small.stop().await;
    }
}

/// A refresh on `app`, authenticated with HTTP Basic; the status and the response body.
async fn refresh_on(app: &TestApp, client: &NewClient, refresh_token: &str) -> (u16, Value) {
    let response = app
        .http
        .post(app.url("/oauth/token"))
        .basic_auth(
            client.client_id.as_str(),
            Some(client.client_secret.as_ref().unwrap().reveal()),
        )
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
        ])
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

/// Runs the code flow for alice on the flow's own instance; returns the refresh token.
async fn refresh_token_for_alice(flow: &Flow, client: &NewClient) -> String {
    use crate::oauth::flow::{pkce, Auth};
    let (verifier, challenge) = pkce();
    let code = flow
        .code(client, "alice", &[("scope", "openid")], &challenge)
        .await;
    let (status, _, tokens) = flow.exchange(Auth::Basic(client), &code, &verifier).await;
    assert_eq!(status, 200, "{tokens}");
    tokens["refresh_token"].as_str().unwrap().to_owned()
}

on_both_stores! {
    async fn a_grant_kept_in_memory_by_one_instance_follows_what_another_did_to_it(kind: Kind) {
        use crate::oauth::flow::web_client;
        let flow = Flow::new(kind).await;
        flow.user("alice", &[]).await;
        let client = flow.client(web_client()).await;
        let a = &flow.app;
        let b = a.another_instance(authledger::config::DEFAULT_TOKEN_CACHE).await;
        // A keeps the grant after the exchange; B rotates its refresh token; A is handed the
        // new one, which its kept grant has never seen, and must accept it.
        let first = refresh_token_for_alice(&flow, &client).await;
        let (status, rotated) = refresh_on(&b, &client, &first).await;
        assert_eq!(status, 200, "{rotated}");
        let second = rotated["refresh_token"].as_str().unwrap();
        let (status, body) = refresh_on(a, &client, second).await;
        assert_eq!(status, 200, "a token rotated on another instance: {body}");

        // A keeps a grant whose refresh token B then rotates; presenting the old token to A,
        // which still holds it as current, is a replay and revokes the family (RFC 9700 §4.14.2).
        let old = refresh_token_for_alice(&flow, &client).await;
        let (status, rotated) = refresh_on(&b, &client, &old).await;
        assert_eq!(status, 200, "{rotated}");
        let (status, body) = refresh_on(a, &client, &old).await;
        assert_eq!(status, 400, "{body}");
        assert_eq!(body["error"], "invalid_grant");
        let newest = rotated["refresh_token"].as_str().unwrap();
        let (status, body) = refresh_on(&b, &client, newest).await;
        assert_eq!((status, body["error"].as_str()), (400, Some("invalid_grant")), "the family is revoked: {body}");
        b.stop().await;
    }
}

on_both_stores! {
    async fn an_instance_that_missed_another_process_change_still_sees_its_own_next_one(kind: Kind) {
        // The CLI (another process) rotates the client's secret; before this instance follows
        // the log, its own admin API disables and enables the client. The index learns from
        // events alone: it must notice the event it has not seen and read the client whole, so
        // the next request already authenticates with the new secret.
        let flow = Flow::new(kind).await;
        let client = flow.client(service()).await;
        let token = issue(&flow.app, &client).await;
        let admin_token = crate::oauth::flow::admin_token(&flow).await;
        let id = client.client_id.as_str();

        let rotated = crate::helpers::cli(&flow.app.db, &["client", "rotate-secret", id]);
        assert!(rotated.status.success(), "{}", String::from_utf8_lossy(&rotated.stderr));
        let rotated: Value = serde_json::from_slice(&rotated.stdout).unwrap();
        let secret = rotated["client_secret"].as_str().unwrap();
        for action in ["disable", "enable"] {
            let path = format!("/clients/{id}/{action}");
            let (status, body) = crate::oauth::flow::admin(&flow, &admin_token, reqwest::Method::POST, &path, None).await;
            assert!(status.is_success(), "{action}: {status}: {body}");
        }

        let introspect = |secret: &str| {
            let form = [("client_id", id), ("client_secret", secret), ("token", token.as_str())];
            flow.app.http.post(flow.app.url("/oauth/introspect")).form(&form).send()
        };
        assert_eq!(introspect(secret).await.unwrap().status(), 200, "the new secret, at once");
        let old = client.client_secret.as_ref().unwrap().reveal();
        assert_eq!(introspect(old).await.unwrap().status(), 401, "the old secret is gone");
    }
}
