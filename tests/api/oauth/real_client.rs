//! An unmodified OpenID Connect relying party (the `openidconnect` crate) completes the flow:
//! discovery, authorization with PKCE and nonce, code exchange, ID token verification against
//! the JWKS, refresh.

use openidconnect::core::{CoreAuthenticationFlow, CoreClient, CoreProviderMetadata};
use openidconnect::{
    AuthorizationCode, ClientId, ClientSecret, CsrfToken, IssuerUrl, Nonce, OAuth2TokenResponse,
    PkceCodeChallenge, RedirectUrl, Scope, TokenResponse,
};

use super::flow::*;
use crate::helpers::ensure_python;

on_both_stores! {
    async fn the_openidconnect_crate_completes_the_whole_flow_unchanged(kind: Kind) {
        let flow = Flow::new(kind).await;
        flow.user("alice", &["reader"]).await;
        let registered = flow.client(web_client()).await;
        let http = openidconnect::reqwest::ClientBuilder::new()
            .redirect(openidconnect::reqwest::redirect::Policy::none())
            .build()
            .unwrap();

        let metadata = CoreProviderMetadata::discover_async(IssuerUrl::new(flow.app.address.clone()).unwrap(), &http)
            .await
            .expect("discovery");
        let client = CoreClient::from_provider_metadata(
            metadata,
            ClientId::new(registered.client_id.to_string()),
            Some(ClientSecret::new(registered.client_secret.as_ref().unwrap().reveal().to_owned())),
        )
        .set_redirect_uri(RedirectUrl::new(REDIRECT.to_owned()).unwrap());
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let (authorize_url, csrf, nonce) = client
            .authorize_url(CoreAuthenticationFlow::AuthorizationCode, CsrfToken::new_random, Nonce::new_random)
            .add_scope(Scope::new("email".into()))
            .add_scope(Scope::new("profile".into()))
            .set_pkce_challenge(challenge)
            .url();

        // The person, in a browser.
        flow.sign_in("alice").await;
        let page = flow.browser.get(authorize_url.as_str()).send().await.unwrap();
        let back = redirected(&flow.decide(page, "allow").await);
        assert_eq!(back.get("state"), Some(csrf.secret().as_str()));
        let code = back.get("code").unwrap().to_owned();

        let tokens = client
            .exchange_code(AuthorizationCode::new(code))
            .unwrap()
            .set_pkce_verifier(verifier)
            .request_async(&http)
            .await
            .expect("code exchange");
        let id_token = tokens.id_token().expect("an ID token");
        let claims = id_token
            .claims(&client.id_token_verifier(), &nonce)
            .expect("the ID token verifies against the JWKS, issuer, audience and nonce");
        assert_eq!(claims.subject().as_str(), "alice");
        assert_eq!(claims.email().map(|e| e.as_str()), Some("alice@example.com"));

        let refreshed = client
            .exchange_refresh_token(tokens.refresh_token().unwrap())
            .unwrap()
            .request_async(&http)
            .await
            .expect("refresh");
        assert_ne!(refreshed.access_token().secret(), tokens.access_token().secret());
    }
}

on_both_stores! {
    async fn the_openidconnect_crate_discovers_registers_itself_and_signs_a_person_in(kind: Kind) {
        use openidconnect::core::{CoreClientRegistrationRequest, CoreGrantType};
        use openidconnect::{ClientName, LocalizedClaim};

        let flow = Flow::new(kind).await;
        flow.set("enable_dynamic_registration", "true").await;
        flow.user("alice", &[]).await;
        let http = openidconnect::reqwest::ClientBuilder::new()
            .redirect(openidconnect::reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let metadata = CoreProviderMetadata::discover_async(IssuerUrl::new(flow.app.address.clone()).unwrap(), &http)
            .await
            .expect("discovery");
        let registration_url = metadata.registration_endpoint().cloned().expect("a registration endpoint");

        let mut name = LocalizedClaim::new();
        name.insert(None, ClientName::new("Agent".into()));
        let registered = CoreClientRegistrationRequest::new(vec![RedirectUrl::new(REDIRECT.to_owned()).unwrap()], Default::default())
            .set_client_name(Some(name))
            .set_grant_types(Some(vec![CoreGrantType::AuthorizationCode, CoreGrantType::RefreshToken]))
            .register_async(&registration_url, &http)
            .await
            .expect("dynamic registration");

        let client = CoreClient::from_provider_metadata(
            metadata,
            registered.client_id().clone(),
            registered.client_secret().cloned(),
        )
        .set_redirect_uri(RedirectUrl::new(REDIRECT.to_owned()).unwrap());
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let (authorize_url, _, nonce) = client
            .authorize_url(CoreAuthenticationFlow::AuthorizationCode, CsrfToken::new_random, Nonce::new_random)
            .set_pkce_challenge(challenge)
            .url();
        flow.sign_in("alice").await;
        let page = flow.browser.get(authorize_url.as_str()).send().await.unwrap();
        let back = redirected(&flow.decide(page, "allow").await);
        let tokens = client
            .exchange_code(AuthorizationCode::new(back.get("code").unwrap().to_owned()))
            .unwrap()
            .set_pkce_verifier(verifier)
            .request_async(&http)
            .await
            .expect("code exchange");
        let claims = tokens.id_token().unwrap().claims(&client.id_token_verifier(), &nonce).unwrap();
        assert_eq!(claims.subject().as_str(), "alice");
    }
}

/// Authlib and requests, from PyPI if missing.
fn ensure_authlib() {
    ensure_python(
        &["-c", "import authlib, requests"],
        &["authlib>=1.3,<2", "requests>=2.31,<3"],
    );
}

/// openid-client, installed from npm into `tests/clients/openid_client` (as its lock file
/// says) if it is not there yet; `.ci/run` installs it beforehand.
fn ensure_openid_client() -> std::path::PathBuf {
    static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _installing = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let dir = std::path::PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/clients/openid_client"
    ));
    if !dir.join("node_modules/openid-client").exists() {
        let installed = std::process::Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund", "--prefix"])
            .arg(&dir)
            .status()
            .expect("npm runs (needed for the openid-client test)");
        assert!(
            installed.success(),
            "could not install openid-client from npm"
        );
    }
    dir
}

on_both_stores! {
    async fn openid_client_registers_itself_and_completes_the_code_flow(kind: Kind) {
        let flow = Flow::new(kind).await;
        flow.set("enable_dynamic_registration", "true").await;
        flow.user("alice", &[]).await;
        let dir = ensure_openid_client();
        let issuer = flow.app.address.clone();
        let output = tokio::task::spawn_blocking(move || {
            std::process::Command::new("node")
                .arg(dir.join("flow.mjs"))
                .args([&issuer, "alice", &password_of("alice")])
                .output()
                .expect("node runs")
        })
        .await
        .unwrap();
        assert!(
            output.status.success(),
            "openid-client failed:\n{}\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        let claims: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
        assert_eq!(claims["sub"], "alice");
        assert_eq!(claims["email"], "alice@example.com");
        assert_eq!(claims["userinfo_email"], "alice@example.com");
    }
}

on_both_stores! {
    async fn authlib_discovers_registers_itself_and_completes_the_code_flow(kind: Kind) {
        let flow = Flow::new(kind).await;
        flow.set("enable_dynamic_registration", "true").await;
        flow.user("alice", &[]).await;
        ensure_authlib();
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/clients/authlib_flow.py");
        let issuer = flow.app.address.clone();
        let output = tokio::task::spawn_blocking(move || {
            std::process::Command::new("python3")
                .args([script, &issuer, "alice", &password_of("alice")])
                .output()
                .expect("python3 runs")
        })
        .await
        .unwrap();
        assert!(
            output.status.success(),
            "Authlib failed:\n{}\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        let claims: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
        assert_eq!(claims["sub"], "alice");
        assert_eq!(claims["email"], "alice@example.com");
    }
}

on_both_stores! {
    async fn the_openidconnect_crate_signs_the_person_out_through_the_end_session_endpoint(kind: Kind) {
        use openidconnect::core::CoreIdToken;
        use openidconnect::{LogoutRequest, PostLogoutRedirectUrl, ProviderMetadataWithLogout};
        use std::str::FromStr;

        const BYE: &str = "https://app.example/signed-out";
        let flow = Flow::new(kind).await;
        flow.user("alice", &[]).await;
        let registered = flow
            .client(authledger::admin::clients::ClientInput { post_logout_redirect_uris: vec![BYE.into()], ..web_client() })
            .await;
        let http = openidconnect::reqwest::ClientBuilder::new()
            .redirect(openidconnect::reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let metadata = ProviderMetadataWithLogout::discover_async(IssuerUrl::new(flow.app.address.clone()).unwrap(), &http)
            .await
            .expect("discovery, with the RP-Initiated Logout metadata");
        let end_session = metadata.additional_metadata().end_session_endpoint.clone().expect("end_session_endpoint");

        let (verifier, challenge) = pkce();
        let code = flow.code(&registered, "alice", &[("scope", "openid")], &challenge).await;
        let (_, _, tokens) = flow.exchange(Auth::Basic(&registered), &code, &verifier).await;
        let id_token = CoreIdToken::from_str(tokens["id_token"].as_str().unwrap()).unwrap();

        let url = LogoutRequest::from(end_session)
            .set_id_token_hint(&id_token)
            .set_client_id(ClientId::new(registered.client_id.to_string()))
            .set_post_logout_redirect_uri(PostLogoutRedirectUrl::new(BYE.into()).unwrap())
            .set_state(CsrfToken::new("bye-state".into()))
            .http_get_url();
        let back = redirected(&flow.browser.get(url.as_str()).send().await.unwrap());
        assert_eq!(back.url.as_str(), format!("{BYE}?state=bye-state"));
        let (_, challenge) = pkce();
        let again = flow.authorize(&[
            ("response_type", "code"),
            ("client_id", registered.client_id.as_str()),
            ("code_challenge", challenge.as_str()),
            ("code_challenge_method", "S256"),
        ]).await;
        assert_eq!(redirected(&again).url.path(), "/login", "signed out");
    }
}
