//! The rules the grants enforce, seen from a client: one-time codes bound to client, redirect
//! URI and PKCE; rotating refresh tokens; client credentials.

use authledger::admin::clients::ClientInput;
use reqwest::StatusCode;

use super::flow::*;

async fn exchange(
    flow: &Flow,
    client: &authledger::admin::clients::NewClient,
    code: &str,
    verifier: &str,
) -> (StatusCode, serde_json::Value) {
    let (status, _, body) = flow.exchange(Auth::Basic(client), code, verifier).await;
    (status, body)
}

fn grant_of(code: &str) -> &str {
    &code["alac_".len().."alac_".len() + 32]
}

on_both_stores! {
    async fn a_second_use_of_a_code_fails_and_revokes_the_tokens_it_produced(kind: Kind) {
        let flow = Flow::new(kind).await;
        flow.user("alice", &[]).await;
        let client = flow.client(ClientInput { skip_authorization: true, ..web_client() }).await;
        let (verifier, challenge) = pkce();
        let code = flow.code(&client, "alice", &[], &challenge).await;

        let (status, first) = exchange(&flow, &client, &code, &verifier).await;
        assert_eq!(status, 200);
        let (status, second) = exchange(&flow, &client, &code, &verifier).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(second["error"], "invalid_grant");

        // The refresh token the first exchange produced died with the replay.
        let (status, _, refreshed) = flow.token(Auth::Basic(&client), &[
            ("grant_type", "refresh_token"),
            ("refresh_token", first["refresh_token"].as_str().unwrap()),
        ]).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(refreshed["error"], "invalid_grant");
        assert_eq!(
            flow.history("Grant", grant_of(&code)).await,
            ["CodeIssued", "CodeRedeemed", "TokensIssued", "CodeReplayDetected", "GrantRevoked"]
        );
    }
}

on_both_stores! {
    async fn reuse_of_a_rotated_refresh_token_revokes_the_whole_family(kind: Kind) {
        let flow = Flow::new(kind).await;
        flow.user("alice", &[]).await;
        let client = flow.client(ClientInput { skip_authorization: true, ..web_client() }).await;
        let (verifier, challenge) = pkce();
        let code = flow.code(&client, "alice", &[], &challenge).await;
        let (_, first) = exchange(&flow, &client, &code, &verifier).await;
        let refresh = |token: String| {
            let flow = &flow;
            let client = &client;
            async move {
                flow.token(Auth::Basic(client), &[("grant_type", "refresh_token"), ("refresh_token", &token)]).await
            }
        };
        let r1 = first["refresh_token"].as_str().unwrap().to_owned();
        let (status, _, second) = refresh(r1.clone()).await;
        assert_eq!(status, 200);
        let r2 = second["refresh_token"].as_str().unwrap().to_owned();

        let (status, _, replay) = refresh(r1).await;
        assert_eq!((status, replay["error"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_grant")));
        let (status, _, after) = refresh(r2).await;
        assert_eq!((status, after["error"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_grant")), "the family is dead");
        let history = flow.history("Grant", grant_of(&code)).await;
        assert_eq!(&history[history.len() - 2..], ["RefreshReplayDetected", "GrantRevoked"]);
    }
}

on_both_stores! {
    async fn refresh_tokens_are_bound_to_their_client_and_scope_only_narrows(kind: Kind) {
        let flow = Flow::new(kind).await;
        flow.user("alice", &[]).await;
        let client = flow.client(ClientInput { skip_authorization: true, ..web_client() }).await;
        let other = flow.client(ClientInput { skip_authorization: true, ..web_client() }).await;
        let (verifier, challenge) = pkce();
        let code = flow.code(&client, "alice", &[("scope", "openid email")], &challenge).await;
        let (_, tokens) = exchange(&flow, &client, &code, &verifier).await;
        let refresh = tokens["refresh_token"].as_str().unwrap();

        let (status, _, stolen) = flow.token(Auth::Basic(&other), &[("grant_type", "refresh_token"), ("refresh_token", refresh)]).await;
        assert_eq!((status, stolen["error"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_grant")));

        let (status, _, wider) = flow.token(Auth::Basic(&client), &[("grant_type", "refresh_token"), ("refresh_token", refresh), ("scope", "openid email profile")]).await;
        assert_eq!((status, wider["error"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_scope")));

        let (status, _, narrower) = flow.token(Auth::Basic(&client), &[("grant_type", "refresh_token"), ("refresh_token", refresh), ("scope", "email")]).await;
        assert_eq!(status, 200, "{narrower}");
        assert_eq!(narrower["scope"], "email");
        assert!(narrower.get("id_token").is_none(), "no openid, no ID token");
    }
}

on_both_stores! {
    async fn a_code_is_bound_to_its_pkce_verifier_redirect_uri_and_client(kind: Kind) {
        let flow = Flow::new(kind).await;
        flow.user("alice", &[]).await;
        let client = flow.client(ClientInput { skip_authorization: true, ..web_client() }).await;
        let other = flow.client(ClientInput { skip_authorization: true, ..web_client() }).await;
        let (verifier, challenge) = pkce();
        let code = flow.code(&client, "alice", &[], &challenge).await;
        let (wrong_verifier, _) = pkce();

        let cases: Vec<(Vec<(&str, &str)>, &str)> = vec![
            (vec![("code_verifier", wrong_verifier.as_str()), ("redirect_uri", REDIRECT)], "does not match"),
            (vec![("redirect_uri", REDIRECT)], "code_verifier is required"),
            (vec![("code_verifier", verifier.as_str()), ("redirect_uri", "https://app.example/other")], "redirect_uri"),
            (vec![("code_verifier", verifier.as_str())], "redirect_uri is required"),
        ];
        for (extra, reason) in cases {
            let mut params = vec![("grant_type", "authorization_code"), ("code", code.as_str())];
            params.extend(extra);
            let (status, _, body) = flow.token(Auth::Basic(&client), &params).await;
            assert_eq!((status, body["error"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_grant")), "{reason}");
            assert!(body["error_description"].as_str().unwrap().contains(reason), "{body}");
        }
        let (status, body) = exchange(&flow, &other, &code, &verifier).await;
        assert_eq!((status, body["error"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_grant")), "another client");
        let malformed = exchange(&flow, &client, &code, "420").await;
        assert_eq!(malformed.1["error"], "invalid_request", "RFC 7636 verifiers are 43 to 128 characters");

        // None of the failures burnt the code.
        let (status, body) = exchange(&flow, &client, &code, &verifier).await;
        assert_eq!(status, 200, "{body}");
    }
}

on_both_stores! {
    async fn a_code_expires(kind: Kind) {
        let flow = Flow::new(kind).await;
        flow.set("code_ttl", "1").await;
        flow.user("alice", &[]).await;
        let client = flow.client(ClientInput { skip_authorization: true, ..web_client() }).await;
        let (verifier, challenge) = pkce();
        let code = flow.code(&client, "alice", &[], &challenge).await;
        tokio::time::sleep(std::time::Duration::from_millis(1100)).await;

        let (status, body) = exchange(&flow, &client, &code, &verifier).await;

        assert_eq!((status, body["error"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_grant")));
        assert!(body["error_description"].as_str().unwrap().contains("expired"));
    }
}

on_both_stores! {
    async fn client_credentials_give_an_access_token_only(kind: Kind) {
        let flow = Flow::new(kind).await;
        let client = flow.client(ClientInput {
            name: "Backend".into(),
            grant_types: vec!["client_credentials".into()],
            redirect_uris: vec![],
            scope: Some("api:read api:write".into()),
            token_endpoint_auth_method: Some("client_secret_post".into()),
            ..ClientInput::default()
        }).await;

        let (status, headers, tokens) = flow.token(Auth::Post(&client), &[("grant_type", "client_credentials"), ("scope", "api:read")]).await;
        assert_eq!(status, 200, "{tokens}");
        assert_eq!(headers["cache-control"], "no-store");
        assert_eq!(tokens["scope"], "api:read");
        assert!(tokens["access_token"].as_str().unwrap().starts_with("alat_"));
        assert!(tokens.get("refresh_token").is_none());
        assert!(tokens.get("id_token").is_none());

        let (_, _, all) = flow.token(Auth::Post(&client), &[("grant_type", "client_credentials")]).await;
        assert_eq!(all["scope"], "api:read api:write", "scope omitted: the registered scopes");

        let (status, _, wider) = flow.token(Auth::Post(&client), &[("grant_type", "client_credentials"), ("scope", "admin")]).await;
        assert_eq!((status, wider["error"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_scope")));
    }
}
