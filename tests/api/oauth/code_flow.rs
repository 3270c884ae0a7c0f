//! The authorization-code flow from a person's and a client's point of view.

use authledger::admin::clients::ClientInput;
use reqwest::StatusCode;

use super::flow::*;
use crate::helpers::*;

on_both_stores! {
    async fn a_person_signs_in_consents_and_the_client_gets_verified_tokens(kind: Kind) {
        let flow = Flow::new(kind).await;
        flow.user("alice", &["reader"]).await;
        let client = flow.client(web_client()).await;
        let id = client.client_id.to_string();
        let (verifier, challenge) = pkce();
        let params = [
            ("response_type", "code"),
            ("client_id", id.as_str()),
            ("redirect_uri", REDIRECT),
            ("scope", "openid profile email roles"),
            ("state", "xyz"),
            ("nonce", "n-0S6_WzA2Mj"),
            ("code_challenge", challenge.as_str()),
            ("code_challenge_method", "S256"),
        ];

        // Not signed in: sent to the sign-in page, and back after signing in.
        let to_login = redirected(&flow.authorize(&params).await);
        assert_eq!(to_login.url.path(), "/login");
        let return_to = to_login.get("return_to").unwrap().to_owned();
        assert!(return_to.starts_with("/oauth/authorize?"));
        let wrong = flow.sign_in_with("alice", "not her password", &return_to).await;
        assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
        assert!(wrong.text().await.unwrap().contains("Wrong username or password"));
        let signed_in = flow.sign_in_with("alice", &password_of("alice"), &return_to).await;
        assert_eq!(redirected(&signed_in).url.as_str().trim_start_matches("http://local"), return_to);

        // The consent page names the client and every scope, and cannot be framed.
        let consent = flow.get(&return_to).await;
        assert_eq!(consent.headers()["x-frame-options"], "DENY");
        assert!(consent.headers()["content-security-policy"].to_str().unwrap().contains("frame-ancestors 'none'"));
        let page = flow.authorize(&params).await;
        let html = flow.get(&return_to).await.text().await.unwrap();
        for words in ["Web App", "openid", "profile", "email", "roles", "see your email address"] {
            assert!(html.contains(words), "consent page lacks {words:?}");
        }
        let back = redirected(&flow.decide(page, "allow").await);
        assert!(back.url.as_str().starts_with(REDIRECT));
        assert_eq!(back.get("state"), Some("xyz"));
        assert_eq!(back.get("iss"), Some(flow.app.address.as_str()));
        let code = back.get("code").unwrap().to_owned();

        let (status, headers, tokens) = flow.exchange(Auth::Basic(&client), &code, &verifier).await;
        assert_eq!(status, 200, "{tokens}");
        assert_eq!(headers["cache-control"], "no-store");
        assert_eq!(headers["pragma"], "no-cache");
        assert_eq!(tokens["token_type"], "Bearer");
        assert_eq!(tokens["expires_in"], 3600);
        assert_eq!(tokens["scope"], "email openid profile roles");
        let access = tokens["access_token"].as_str().unwrap();
        assert!(access.starts_with("alat_"));
        let refresh = tokens["refresh_token"].as_str().unwrap().to_owned();
        assert!(refresh.starts_with("alrt_"));

        let claims = flow.verify_id_token(tokens["id_token"].as_str().unwrap(), &id).await;
        assert_eq!(claims["sub"], "alice");
        assert_eq!(claims["azp"], id.as_str());
        assert_eq!(claims["nonce"], "n-0S6_WzA2Mj");
        assert_eq!(claims["email"], "alice@example.com");
        assert_eq!(claims["name"], "alice Example");
        assert_eq!(claims["roles"], serde_json::json!(["reader"]));
        assert!(claims["auth_time"].as_i64().unwrap() <= claims["iat"].as_i64().unwrap());
        let expected_at_hash = {
            use base64::Engine;
            use sha2::Digest;
            let digest = sha2::Sha256::digest(access.as_bytes());
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&digest[..16])
        };
        assert_eq!(claims["at_hash"], expected_at_hash);

        // Refreshing rotates the refresh token and yields a new ID token.
        let (status, _, refreshed) = flow.token(Auth::Basic(&client), &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &refresh),
        ]).await;
        assert_eq!(status, 200, "{refreshed}");
        assert_ne!(refreshed["refresh_token"], tokens["refresh_token"]);
        assert_ne!(refreshed["access_token"], tokens["access_token"]);
        flow.verify_id_token(refreshed["id_token"].as_str().unwrap(), &id).await;

        // The audit trail has the whole story, with no raw secret in it.
        let grant_id = &code["alac_".len().."alac_".len() + 32];
        assert_eq!(
            flow.history("Grant", grant_id).await,
            ["CodeIssued", "CodeRedeemed", "TokensIssued", "TokensRefreshed"]
        );
        assert_eq!(flow.history("User", "alice").await, ["UserRegistered", "LoginFailed", "LoginSucceeded", "SessionStarted"]);
        let events = cli(&flow.app.db, &["events", "--json"]);
        let log = String::from_utf8(events.stdout).unwrap();
        for secret in [code.as_str(), access, refresh.as_str(), &verifier, &password_of("alice")] {
            assert!(!log.contains(secret), "a raw secret reached the event log");
        }
    }
}

on_both_stores! {
    async fn deny_sends_access_denied_with_the_state(kind: Kind) {
        let flow = Flow::new(kind).await;
        flow.user("bob", &[]).await;
        let client = flow.client(web_client()).await;
        flow.sign_in("bob").await;
        let (_, challenge) = pkce();
        let page = flow.authorize(&[
            ("response_type", "code"),
            ("client_id", client.client_id.as_str()),
            ("state", "s-deny"),
            ("code_challenge", &challenge),
            ("code_challenge_method", "S256"),
        ]).await;

        let back = redirected(&flow.decide(page, "deny").await);

        assert!(back.url.as_str().starts_with(REDIRECT));
        assert_eq!(back.get("error"), Some("access_denied"));
        assert_eq!(back.get("state"), Some("s-deny"));
        assert_eq!(back.get("iss"), Some(flow.app.address.as_str()));
        assert!(back.get("code").is_none());
    }
}

on_both_stores! {
    async fn a_consent_form_without_its_csrf_token_is_refused(kind: Kind) {
        let flow = Flow::new(kind).await;
        flow.user("carol", &[]).await;
        let client = flow.client(web_client()).await;
        flow.sign_in("carol").await;
        let (_, challenge) = pkce();
        let form = [
            ("response_type", "code"),
            ("client_id", client.client_id.as_str()),
            ("code_challenge", challenge.as_str()),
            ("code_challenge_method", "S256"),
            ("decision", "allow"),
        ];
        let forged = flow.browser.post(flow.app.url("/oauth/authorize")).form(&form).send().await.unwrap();
        assert_eq!(forged.status(), StatusCode::BAD_REQUEST);
        assert!(forged.headers().get("location").is_none());
        // Nor does a GET with decision=allow skip the page.
        let get = flow.authorize(&form).await;
        assert_eq!(get.status(), StatusCode::OK);
    }
}

on_both_stores! {
    async fn in_auto_mode_a_second_authorization_skips_consent(kind: Kind) {
        let flow = Flow::new(kind).await;
        flow.set("consent_mode", "auto").await;
        flow.user("dave", &[]).await;
        let client = flow.client(web_client()).await;
        flow.sign_in("dave").await;
        let (_, challenge) = pkce();
        let params = [
            ("response_type", "code"),
            ("client_id", client.client_id.as_str()),
            ("scope", "openid email"),
            ("code_challenge", challenge.as_str()),
            ("code_challenge_method", "S256"),
        ];

        let first = flow.authorize(&params).await;
        assert_eq!(first.status(), StatusCode::OK, "the first time, the person is asked");
        assert!(redirected(&flow.decide(first, "allow").await).get("code").is_some());

        let second = flow.authorize(&params).await;
        assert!(redirected(&second).get("code").is_some(), "the second time, no page");

        let wider = flow.authorize(&[
            ("response_type", "code"),
            ("client_id", client.client_id.as_str()),
            ("scope", "openid email profile"),
            ("code_challenge", challenge.as_str()),
            ("code_challenge_method", "S256"),
        ]).await;
        assert_eq!(wider.status(), StatusCode::OK, "more scope asks again");
        let consent_id = format!("dave:{}", client.client_id);
        assert_eq!(flow.history("Consent", &consent_id).await, ["ConsentGranted"]);
    }
}

on_both_stores! {
    async fn a_trusted_client_is_never_shown_the_consent_page(kind: Kind) {
        let flow = Flow::new(kind).await;
        flow.user("erin", &[]).await;
        let client = flow.client(ClientInput { skip_authorization: true, ..web_client() }).await;
        flow.sign_in("erin").await;
        let (_, challenge) = pkce();
        let response = flow.authorize(&[
            ("response_type", "code"),
            ("client_id", client.client_id.as_str()),
            ("code_challenge", &challenge),
            ("code_challenge_method", "S256"),
        ]).await;
        assert!(redirected(&response).get("code").is_some());
    }
}

on_both_stores! {
    async fn the_implicit_grant_works_only_where_enabled_and_registered(kind: Kind) {
        let flow = Flow::new(kind).await;
        flow.user("frank", &[]).await;
        let client = flow.client(ClientInput {
            grant_types: vec!["implicit".into()],
            skip_authorization: true,
            ..web_client()
        }).await;
        flow.sign_in("frank").await;
        let params = [
            ("response_type", "token"),
            ("client_id", client.client_id.as_str()),
            ("state", "imp"),
        ];

        let off = redirected(&flow.authorize(&params).await);
        assert!(off.url.fragment().is_some(), "implicit errors go in the fragment");
        assert_eq!(off.get("error"), Some("unauthorized_client"));
        assert_eq!(off.get("state"), Some("imp"));

        flow.set("allow_implicit", "true").await;
        let on = redirected(&flow.authorize(&params).await);
        assert!(on.url.query().is_none(), "tokens never go in the query");
        assert!(on.get("access_token").unwrap().starts_with("alat_"));
        assert_eq!(on.get("token_type"), Some("Bearer"));
        assert_eq!(on.get("expires_in"), Some("3600"));
        assert!(on.get("refresh_token").is_none());
        assert_eq!(on.get("state"), Some("imp"));

        // A code-flow client may not use it even when it is on.
        let code_client = flow.client(web_client()).await;
        let refused = redirected(&flow.authorize(&[
            ("response_type", "token"),
            ("client_id", code_client.client_id.as_str()),
        ]).await);
        assert_eq!(refused.get("error"), Some("unauthorized_client"));
    }
}

on_both_stores! {
    async fn a_native_app_may_use_any_loopback_port(kind: Kind) {
        let flow = Flow::new(kind).await;
        flow.user("gina", &[]).await;
        let client = flow.client(ClientInput {
            name: "CLI tool".into(),
            public: true,
            skip_authorization: true,
            redirect_uris: vec!["http://127.0.0.1/callback".into()],
            ..ClientInput::default()
        }).await;
        flow.sign_in("gina").await;
        let (verifier, challenge) = pkce();
        let back = redirected(&flow.authorize(&[
            ("response_type", "code"),
            ("client_id", client.client_id.as_str()),
            ("redirect_uri", "http://127.0.0.1:51234/callback"),
            ("code_challenge", &challenge),
            ("code_challenge_method", "S256"),
        ]).await);
        assert_eq!(back.url.port(), Some(51234));
        let code = back.get("code").unwrap();

        let (status, _, tokens) = flow.token(Auth::PublicId(client.client_id.as_str()), &[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", "http://127.0.0.1:51234/callback"),
            ("code_verifier", &verifier),
        ]).await;
        assert_eq!(status, 200, "{tokens}");

        // Another path on loopback is still a different redirect URI.
        let other_path = flow.authorize(&[
            ("response_type", "code"),
            ("client_id", client.client_id.as_str()),
            ("redirect_uri", "http://127.0.0.1:51234/elsewhere"),
            ("code_challenge", &challenge),
            ("code_challenge_method", "S256"),
        ]).await;
        assert_eq!(other_path.status(), StatusCode::BAD_REQUEST);
    }
}

on_both_stores! {
    async fn an_hs256_client_gets_id_tokens_that_verify_with_its_secret(kind: Kind) {
        let flow = Flow::new(kind).await;
        flow.user("hank", &["System Manager"]).await;
        let client = flow.client(ClientInput {
            id_token_signed_response_alg: Some("HS256".into()),
            frappe_claims: true,
            skip_authorization: true,
            scope: Some("openid all".into()),
            ..web_client()
        }).await;
        let (verifier, challenge) = pkce();
        let code = flow.code(&client, "hank", &[("scope", "openid")], &challenge).await;

        let (status, _, tokens) = flow.exchange(Auth::Basic(&client), &code, &verifier).await;
        assert_eq!(status, 200, "{tokens}");

        let secret = client.client_secret.as_ref().unwrap().reveal();
        let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256);
        validation.set_audience(&[client.client_id.as_str()]);
        let claims = jsonwebtoken::decode::<serde_json::Value>(
            tokens["id_token"].as_str().unwrap(),
            &jsonwebtoken::DecodingKey::from_secret(secret.as_bytes()),
            &validation,
        )
        .expect("the ID token verifies with the client secret")
        .claims;
        // Frappe-compatible claims: everything under `openid` alone.
        assert_eq!(claims["email"], "hank@example.com");
        assert_eq!(claims["roles"], serde_json::json!(["System Manager"]));

        // After a secret rotation, ID tokens are signed with the new secret.
        let rotated = cli(&flow.app.db, &["client", "rotate-secret", client.client_id.as_str()]);
        flow.app.settle().await;
        assert!(rotated.status.success(), "{}", String::from_utf8_lossy(&rotated.stderr));
        let rotated: serde_json::Value = serde_json::from_slice(&rotated.stdout).unwrap();
        let new_secret = rotated["client_secret"].as_str().unwrap();
        let (verifier, challenge) = pkce();
        let code = flow.code(&client, "hank", &[("scope", "openid")], &challenge).await;
        let response = flow.app.http.post(flow.app.url("/oauth/token"))
            .basic_auth(client.client_id.as_str(), Some(new_secret))
            .form(&[("grant_type", "authorization_code"), ("code", &code), ("redirect_uri", REDIRECT), ("code_verifier", &verifier)])
            .send().await.unwrap();
        let tokens: serde_json::Value = response.json().await.unwrap();
        jsonwebtoken::decode::<serde_json::Value>(
            tokens["id_token"].as_str().unwrap(),
            &jsonwebtoken::DecodingKey::from_secret(new_secret.as_bytes()),
            &validation,
        )
        .expect("signed with the rotated secret");
    }
}

on_both_stores! {
    async fn es256_and_eddsa_clients_get_id_tokens_signed_with_published_keys(kind: Kind) {
        let flow = Flow::new(kind).await;
        flow.user("ivy", &[]).await;
        for alg in ["ES256", "EdDSA"] {
            let client = flow.client(ClientInput {
                id_token_signed_response_alg: Some(alg.into()),
                skip_authorization: true,
                ..web_client()
            }).await;
            let (verifier, challenge) = pkce();
            let code = flow.code(&client, "ivy", &[("scope", "openid")], &challenge).await;
            let (status, _, tokens) = flow.exchange(Auth::Post(&client), &code, &verifier).await;
            assert_eq!(status, 401, "a client_secret_basic client may not use client_secret_post");
            assert_eq!(tokens["error"], "invalid_client");
            let (status, _, tokens) = flow.exchange(Auth::Basic(&client), &code, &verifier).await;
            assert_eq!(status, 200, "{tokens}");
            let id_token = tokens["id_token"].as_str().unwrap();
            assert_eq!(format!("{:?}", jsonwebtoken::decode_header(id_token).unwrap().alg), alg);
            flow.verify_id_token(id_token, client.client_id.as_str()).await;
        }
    }
}

on_both_stores! {
    async fn signing_keys_survive_a_restart_so_earlier_id_tokens_still_verify(kind: Kind) {
        let flow = Flow::new(kind).await;
        flow.user("jack", &[]).await;
        let client = flow.client(ClientInput { skip_authorization: true, ..web_client() }).await;
        let (verifier, challenge) = pkce();
        let code = flow.code(&client, "jack", &[("scope", "openid")], &challenge).await;
        let (_, _, tokens) = flow.exchange(Auth::Basic(&client), &code, &verifier).await;
        let id_token = tokens["id_token"].as_str().unwrap().to_owned();
        let before: serde_json::Value = flow.app.http.get(flow.app.url("/oauth/jwks")).send().await.unwrap().json().await.unwrap();
        assert_eq!(before["keys"].as_array().unwrap().len(), 3, "RS256, ES256 and EdDSA");
        assert!(before.to_string().contains("\"kid\""));
        assert!(!before.to_string().contains("\"d\""), "no private key material is published");

        let Flow { app, .. } = flow;
        let db = app.stop().await;
        let app = TestApp::spawn_on(db).await;

        let after: serde_json::Value = app.http.get(app.url("/oauth/jwks")).send().await.unwrap().json().await.unwrap();
        assert_eq!(before, after);
        let header = jsonwebtoken::decode_header(&id_token).unwrap();
        let set: jsonwebtoken::jwk::JwkSet = serde_json::from_value(after).unwrap();
        let key = jsonwebtoken::DecodingKey::from_jwk(set.find(&header.kid.unwrap()).unwrap()).unwrap();
        let mut validation = jsonwebtoken::Validation::new(header.alg);
        validation.set_audience(&[client.client_id.as_str()]);
        jsonwebtoken::decode::<serde_json::Value>(&id_token, &key, &validation).expect("still verifies");
    }
}
