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
