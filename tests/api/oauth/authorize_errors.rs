//! Every refusal of the authorization endpoint: an HTML page when the client or redirect URI
//! cannot be trusted, otherwise a redirect with `error`, `error_description`, `state`, `iss`.

use authledger::admin::clients::ClientInput;
use reqwest::StatusCode;

use super::flow::*;
use crate::helpers::*;

async fn signed_in_flow(kind: Kind) -> (Flow, authledger::admin::clients::NewClient) {
    let flow = Flow::new(kind).await;
    flow.user("alice", &[]).await;
    let client = flow.client(web_client()).await;
    flow.sign_in("alice").await;
    (flow, client)
}

async fn assert_page_not_redirect(response: reqwest::Response, words: &str) {
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert!(
        response.headers().get("location").is_none(),
        "an untrusted request must not redirect"
    );
    assert!(response.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    let html = response.text().await.unwrap();
    assert!(html.contains(words), "{html}");
}

fn assert_error(back: &Redirected, error: &str) {
    assert!(back.url.as_str().starts_with(REDIRECT), "{back:?}");
    assert_eq!(back.get("error"), Some(error), "{back:?}");
    assert!(back.get("error_description").is_some());
    assert_eq!(back.get("state"), Some("s"));
    assert!(back.get("iss").is_some());
    assert!(back.get("code").is_none());
}

on_both_stores! {
    async fn an_unknown_client_gets_an_error_page_not_a_redirect(kind: Kind) {
        let (flow, _) = signed_in_flow(kind).await;
        let response = flow.authorize(&[
            ("response_type", "code"),
            ("client_id", "no-such-client"),
            ("redirect_uri", REDIRECT),
            ("state", "s"),
        ]).await;
        assert_page_not_redirect(response, "Unknown client").await;
        assert_page_not_redirect(flow.authorize(&[("response_type", "code")]).await, "Missing client").await;
    }
}

on_both_stores! {
    async fn an_unregistered_or_missing_redirect_uri_gets_an_error_page(kind: Kind) {
        let (flow, client) = signed_in_flow(kind).await;
        let unregistered = flow.authorize(&[
            ("response_type", "code"),
            ("client_id", client.client_id.as_str()),
            ("redirect_uri", "https://attacker.example/callback"),
            ("state", "s"),
        ]).await;
        assert_page_not_redirect(unregistered, "Unregistered redirect URI").await;

        let prefix = flow.authorize(&[
            ("response_type", "code"),
            ("client_id", client.client_id.as_str()),
            ("redirect_uri", "https://app.example/callback/../other"),
        ]).await;
        assert_page_not_redirect(prefix, "Unregistered redirect URI").await;

        let two = flow.client(ClientInput {
            redirect_uris: vec![REDIRECT.into(), "https://app.example/second".into()],
            ..web_client()
        }).await;
        let missing = flow.authorize(&[("response_type", "code"), ("client_id", two.client_id.as_str())]).await;
        assert_page_not_redirect(missing, "Missing redirect URI").await;
    }
}

on_both_stores! {
    async fn a_disabled_client_gets_an_error_page(kind: Kind) {
        let (flow, client) = signed_in_flow(kind).await;
        let output = cli(&flow.app.db, &["client", "disable", client.client_id.as_str()]);
        assert!(output.status.success());
        let response = flow.authorize(&[("response_type", "code"), ("client_id", client.client_id.as_str())]).await;
        assert_page_not_redirect(response, "disabled").await;
    }
}

on_both_stores! {
    async fn protocol_errors_go_back_to_the_client_with_state_and_issuer(kind: Kind) {
        let (flow, client) = signed_in_flow(kind).await;
        let id = client.client_id.to_string();
        let (_, challenge) = pkce();
        let base = |extra: &[(&'static str, &'static str)]| {
            let mut params: Vec<(&str, String)> = vec![
                ("client_id", id.clone()),
                ("state", "s".into()),
                ("code_challenge", challenge.clone()),
                ("code_challenge_method", "S256".into()),
            ];
            params.extend(extra.iter().map(|(k, v)| (*k, v.to_string())));
            params
        };
        let cases: Vec<(Vec<(&str, String)>, &str)> = vec![
            (base(&[]), "invalid_request"),
            (base(&[("response_type", "id_token")]), "unsupported_response_type"),
            (base(&[("response_type", "code"), ("scope", "openid admin")]), "invalid_scope"),
            (base(&[("response_type", "code"), ("scope", "openid \"bad")]), "invalid_scope"),
            (base(&[("response_type", "code"), ("prompt", "none login")]), "invalid_request"),
            (base(&[("response_type", "code"), ("max_age", "-1")]), "invalid_request"),
            (base(&[("response_type", "token")]), "unauthorized_client"),
        ];
        for (params, error) in cases {
            let borrowed: Vec<(&str, &str)> = params.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let back = redirected(&flow.authorize(&borrowed).await);
            assert_error(&back, error);
        }

        let bad_method = redirected(&flow.authorize(&[
            ("response_type", "code"), ("client_id", &id), ("state", "s"),
            ("code_challenge", &challenge), ("code_challenge_method", "S512"),
        ]).await);
        assert_error(&bad_method, "invalid_request");

        let implicit_only = flow.client(ClientInput { grant_types: vec!["implicit".into()], ..web_client() }).await;
        let back = redirected(&flow.authorize(&[
            ("response_type", "code"), ("client_id", implicit_only.client_id.as_str()), ("state", "s"),
        ]).await);
        assert_error(&back, "unauthorized_client");
    }
}

on_both_stores! {
    async fn prompt_none_answers_login_required_or_consent_required(kind: Kind) {
        let flow = Flow::new(kind).await;
        flow.user("alice", &[]).await;
        let client = flow.client(web_client()).await;
        let (_, challenge) = pkce();
        let params = [
            ("response_type", "code"),
            ("client_id", client.client_id.as_str()),
            ("state", "s"),
            ("prompt", "none"),
            ("code_challenge", challenge.as_str()),
            ("code_challenge_method", "S256"),
        ];
        assert_error(&redirected(&flow.authorize(&params).await), "login_required");
        flow.sign_in("alice").await;
        assert_error(&redirected(&flow.authorize(&params).await), "consent_required");
    }
}

on_both_stores! {
    async fn a_client_restricted_to_roles_refuses_other_people(kind: Kind) {
        let (flow, _) = signed_in_flow(kind).await;
        let client = flow.client(ClientInput {
            allowed_roles: vec!["staff".into()],
            skip_authorization: true,
            ..web_client()
        }).await;
        let (_, challenge) = pkce();
        let back = redirected(&flow.authorize(&[
            ("response_type", "code"), ("client_id", client.client_id.as_str()), ("state", "s"),
            ("code_challenge", &challenge), ("code_challenge_method", "S256"),
        ]).await);
        assert_error(&back, "access_denied");
    }
}

on_both_stores! {
    async fn public_clients_must_use_pkce_with_s256(kind: Kind) {
        let (flow, _) = signed_in_flow(kind).await;
        let spa = flow.client(ClientInput { public: true, ..web_client() }).await;
        let id = spa.client_id.as_str();
        let without = redirected(&flow.authorize(&[("response_type", "code"), ("client_id", id), ("state", "s")]).await);
        assert_error(&without, "invalid_request");
        let (verifier, _) = pkce();
        let plain = redirected(&flow.authorize(&[
            ("response_type", "code"), ("client_id", id), ("state", "s"),
            ("code_challenge", &verifier), ("code_challenge_method", "plain"),
        ]).await);
        assert_error(&plain, "invalid_request");
        assert!(plain.get("error_description").unwrap().contains("S256"));
    }
}

on_both_stores! {
    async fn a_confidential_client_can_be_required_to_use_pkce(kind: Kind) {
        let (flow, _) = signed_in_flow(kind).await;
        let strict = flow.client(ClientInput { require_pkce: true, skip_authorization: true, ..web_client() }).await;
        let lax = flow.client(ClientInput { skip_authorization: true, ..web_client() }).await;
        let without = |id: String| {
            let flow = &flow;
            async move { redirected(&flow.authorize(&[("response_type", "code"), ("client_id", &id), ("state", "s")]).await) }
        };
        assert_error(&without(strict.client_id.to_string()).await, "invalid_request");
        assert!(without(lax.client_id.to_string()).await.get("code").is_some());
    }
}

on_both_stores! {
    async fn signing_out_ends_the_session_and_max_age_forces_a_fresh_sign_in(kind: Kind) {
        let (flow, client) = signed_in_flow(kind).await;
        let (_, challenge) = pkce();
        let params = [
            ("response_type", "code"),
            ("client_id", client.client_id.as_str()),
            ("code_challenge", challenge.as_str()),
            ("code_challenge_method", "S256"),
        ];
        assert_eq!(flow.authorize(&params).await.status(), StatusCode::OK, "signed in: consent page");

        tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
        let mut aged = params.to_vec();
        aged.push(("max_age", "0"));
        assert_eq!(redirected(&flow.authorize(&aged).await).url.path(), "/login");

        let login_page = flow.get("/login").await.text().await.unwrap();
        assert!(login_page.contains("signed in as alice"));
        let csrf = hidden_fields(&flow.get("/login?return_to=/login").await.text().await.unwrap())
            .into_iter()
            .find(|(name, _)| name == "csrf_token")
            .unwrap()
            .1;
        let forged = flow.browser.post(flow.app.url("/logout")).form(&[("csrf_token", "forged")]).send().await.unwrap();
        assert_eq!(forged.status(), StatusCode::BAD_REQUEST);
        let out = flow.browser.post(flow.app.url("/logout")).form(&[("csrf_token", csrf)]).send().await.unwrap();
        assert_eq!(out.status(), StatusCode::OK);
        assert_eq!(redirected(&flow.authorize(&params).await).url.path(), "/login");
    }
}
