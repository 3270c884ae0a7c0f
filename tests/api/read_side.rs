//! The read side, black box: introspection, userinfo, revocation, cascades, the admin API,
//! audit questions, usage, rebuild and replay. Every read here is served by a projection.

use authledger::admin::clients::{ClientInput, NewClient};
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::*;
use crate::oauth::flow::*;

/// Signs `user` in and runs the code flow for `scope`; returns the token response.
async fn tokens_for(flow: &Flow, client: &NewClient, user: &str, scope: &str) -> Value {
    let (verifier, challenge) = pkce();
    let code = flow
        .code(client, user, &[("scope", scope)], &challenge)
        .await;
    let (status, _, tokens) = flow.exchange(Auth::Basic(client), &code, &verifier).await;
    assert_eq!(status, 200, "{tokens}");
    tokens
}

async fn introspect(
    flow: &Flow,
    client: &NewClient,
    token: &str,
    hint: Option<&str>,
) -> (StatusCode, Value) {
    let mut params = vec![("token", token)];
    if let Some(hint) = hint {
        params.push(("token_type_hint", hint));
    }
    let response = flow
        .app
        .http
        .post(flow.app.url("/oauth/introspect"))
        .basic_auth(
            client.client_id.as_str(),
            Some(client.client_secret.as_ref().unwrap().reveal()),
        )
        .form(&params)
        .send()
        .await
        .unwrap();
    let status = response.status();
    (status, response.json().await.unwrap())
}

async fn is_active(flow: &Flow, client: &NewClient, token: &str) -> bool {
    introspect(flow, client, token, None).await.1["active"] == true
}

async fn userinfo(flow: &Flow, token: &str) -> reqwest::Response {
    flow.app
        .http
        .get(flow.app.url("/oauth/userinfo"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
}

async fn revoke(flow: &Flow, client: &NewClient, token: &str) -> StatusCode {
    flow.app
        .http
        .post(flow.app.url("/oauth/revoke"))
        .basic_auth(
            client.client_id.as_str(),
            Some(client.client_secret.as_ref().unwrap().reveal()),
        )
        .form(&[("token", token)])
        .send()
        .await
        .unwrap()
        .status()
}

async fn refresh(flow: &Flow, client: &NewClient, tokens: &Value) -> (StatusCode, Value) {
    let (status, _, body) = flow
        .token(
            Auth::Basic(client),
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", tokens["refresh_token"].as_str().unwrap()),
            ],
        )
        .await;
    (status, body)
}

fn trusted() -> ClientInput {
    ClientInput {
        skip_authorization: true,
        scope: Some("openid profile email roles admin".into()),
        ..web_client()
    }
}

on_both_stores! {
    async fn introspection_answers_for_the_callers_own_active_tokens_only(kind: Kind) {
        let flow = Flow::new(kind).await;
        flow.user("alice", &["reader"]).await;
        let client = flow.client(trusted()).await;
        let other = flow.client(trusted()).await;
        let tokens = tokens_for(&flow, &client, "alice", "openid email").await;
        let access = tokens["access_token"].as_str().unwrap();
        let refresh_token = tokens["refresh_token"].as_str().unwrap();

        let (status, answer) = introspect(&flow, &client, access, Some("refresh_token")).await;
        assert_eq!(status, 200);
        assert_eq!(answer["active"], true, "a wrong hint still finds the token");
        assert_eq!(answer["scope"], "email openid");
        assert_eq!(answer["client_id"], client.client_id.as_str());
        assert_eq!(answer["username"], "alice");
        assert_eq!(answer["sub"], "alice");
        assert_eq!(answer["token_type"], "Bearer");
        assert_eq!(answer["aud"], client.client_id.as_str());
        assert_eq!(answer["iss"], flow.app.address.as_str());
        let (iat, exp) = (answer["iat"].as_i64().unwrap(), answer["exp"].as_i64().unwrap());
        assert_eq!(exp - iat, 3600);
        assert_eq!(answer["nbf"], answer["iat"]);
        let (_, answer) = introspect(&flow, &client, refresh_token, Some("refresh_token")).await;
        assert_eq!((answer["active"].as_bool(), answer["token_type"].as_str()), (Some(true), Some("refresh_token")));

        assert_eq!(introspect(&flow, &other, access, None).await.1, json!({"active": false}), "foreign");
        assert_eq!(introspect(&flow, &client, "alat_unknown", None).await.1, json!({"active": false}), "unknown");
        let anonymous = flow.app.http.post(flow.app.url("/oauth/introspect")).form(&[("token", access)]).send().await.unwrap();
        assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED, "the caller must authenticate");

        // The Frappe alias answers the same.
        let frappe = flow.app.http.post(flow.app.url("/api/method/frappe.integrations.oauth2.introspect_token"))
            .basic_auth(client.client_id.as_str(), Some(client.client_secret.as_ref().unwrap().reveal()))
            .form(&[("token", access)]).send().await.unwrap();
        assert_eq!(frappe.json::<Value>().await.unwrap()["active"], true);

        // Expired tokens are inactive.
        flow.set("access_token_ttl", "1").await;
        let short = tokens_for(&flow, &client, "alice", "openid").await;
        tokio::time::sleep(std::time::Duration::from_millis(1200)).await;
        assert!(!is_active(&flow, &client, short["access_token"].as_str().unwrap()).await);
    }
}

on_both_stores! {
    async fn userinfo_releases_the_claims_the_token_scopes_allow(kind: Kind) {
        let flow = Flow::new(kind).await;
        flow.user("alice", &["reader"]).await;
        let client = flow.client(trusted()).await;

        let email_only = tokens_for(&flow, &client, "alice", "openid email").await;
        let response = userinfo(&flow, email_only["access_token"].as_str().unwrap()).await;
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["cache-control"], "no-store");
        let claims: Value = response.json().await.unwrap();
        assert_eq!(claims, json!({ "sub": "alice", "email": "alice@example.com" }));

        let everything = tokens_for(&flow, &client, "alice", "openid profile email roles").await;
        let claims: Value = userinfo(&flow, everything["access_token"].as_str().unwrap()).await.json().await.unwrap();
        assert_eq!(claims["name"], "alice Example");
        assert_eq!(claims["given_name"], "alice");
        assert_eq!(claims["roles"], json!(["reader"]));
        let by_post = flow.app.http.post(flow.app.url("/oauth/userinfo"))
            .form(&[("access_token", everything["access_token"].as_str().unwrap())]).send().await.unwrap();
        assert_eq!(by_post.json::<Value>().await.unwrap(), claims);
        let frappe = flow.app.http.get(flow.app.url("/api/method/frappe.integrations.oauth2.openid_profile"))
            .bearer_auth(everything["access_token"].as_str().unwrap()).send().await.unwrap();
        assert_eq!(frappe.json::<Value>().await.unwrap()["sub"], "alice");

        let challenge = |response: &reqwest::Response| response.headers()["www-authenticate"].to_str().unwrap().to_owned();
        let missing = flow.app.http.get(flow.app.url("/oauth/userinfo")).send().await.unwrap();
        assert_eq!(missing.status(), StatusCode::UNAUTHORIZED);
        let header = challenge(&missing);
        assert!(header.contains("error=\"invalid_token\""), "{header}");
        assert!(header.contains(&format!("resource_metadata=\"{}/.well-known/oauth-protected-resource\"", flow.app.address)), "{header}");
        assert_eq!(userinfo(&flow, "alat_forged").await.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(userinfo(&flow, everything["refresh_token"].as_str().unwrap()).await.status(), StatusCode::UNAUTHORIZED, "a refresh token is not an access token");

        let no_openid = tokens_for(&flow, &client, "alice", "email").await;
        let forbidden = userinfo(&flow, no_openid["access_token"].as_str().unwrap()).await;
        assert_eq!(forbidden.status(), StatusCode::FORBIDDEN);
        assert!(challenge(&forbidden).contains("insufficient_scope"));
    }
}

on_both_stores! {
    async fn revocation_ends_a_token_or_a_family_and_ignores_the_unknown(kind: Kind) {
        let flow = Flow::new(kind).await;
        flow.user("alice", &[]).await;
        let client = flow.client(trusted()).await;
        let other = flow.client(trusted()).await;

        let first = tokens_for(&flow, &client, "alice", "openid").await;
        let access = first["access_token"].as_str().unwrap();
        assert_eq!(revoke(&flow, &other, access).await, StatusCode::OK, "another client's token: 200");
        assert!(is_active(&flow, &client, access).await, "and nothing changed");
        assert_eq!(revoke(&flow, &client, "alat_not-a-token").await, StatusCode::OK);
        assert_eq!(revoke(&flow, &client, access).await, StatusCode::OK);
        assert!(!is_active(&flow, &client, access).await, "the access token is revoked");
        assert_eq!(refresh(&flow, &client, &first).await.0, 200, "its refresh token lives on");

        let second = tokens_for(&flow, &client, "alice", "openid").await;
        assert_eq!(revoke(&flow, &client, second["refresh_token"].as_str().unwrap()).await, StatusCode::OK);
        assert!(!is_active(&flow, &client, second["access_token"].as_str().unwrap()).await, "the family is revoked");
        assert_eq!(refresh(&flow, &client, &second).await.1["error"], "invalid_grant");

        let frappe = flow.app.http.post(flow.app.url("/api/method/frappe.integrations.oauth2.revoke_token"))
            .basic_auth(client.client_id.as_str(), Some(client.client_secret.as_ref().unwrap().reveal()))
            .form(&[("token", "whatever")]).send().await.unwrap();
        assert_eq!(frappe.status(), StatusCode::OK);
    }
}

on_both_stores! {
    async fn disabling_a_client_ends_its_tokens_and_enabling_it_resurrects_none(kind: Kind) {
        let flow = Flow::new(kind).await;
        flow.user("alice", &[]).await;
        let client = flow.client(trusted()).await;
        let tokens = tokens_for(&flow, &client, "alice", "openid").await;
        let access = tokens["access_token"].as_str().unwrap();
        assert_eq!(userinfo(&flow, access).await.status(), 200);

        assert!(cli(&flow.app.db, &["client", "disable", client.client_id.as_str()]).status.success());
        flow.app.settle().await;
        assert_eq!(userinfo(&flow, access).await.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(refresh(&flow, &client, &tokens).await.1["error"], "invalid_client");

        assert!(cli(&flow.app.db, &["client", "enable", client.client_id.as_str()]).status.success());
        flow.app.settle().await;
        assert_eq!(userinfo(&flow, access).await.status(), StatusCode::UNAUTHORIZED, "still dead");
        assert!(!is_active(&flow, &client, access).await);
        assert_eq!(refresh(&flow, &client, &tokens).await.1["error"], "invalid_grant");
    }
}

on_both_stores! {
    async fn deleting_a_client_ends_its_tokens(kind: Kind) {
        let flow = Flow::new(kind).await;
        flow.user("alice", &[]).await;
        let client = flow.client(trusted()).await;
        let tokens = tokens_for(&flow, &client, "alice", "openid").await;
        assert!(cli(&flow.app.db, &["client", "delete", client.client_id.as_str()]).status.success());
        flow.app.settle().await;
        assert_eq!(userinfo(&flow, tokens["access_token"].as_str().unwrap()).await.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(refresh(&flow, &client, &tokens).await.1["error"], "invalid_client");
    }
}

on_both_stores! {
    async fn disabling_a_user_ends_their_tokens(kind: Kind) {
        let flow = Flow::new(kind).await;
        flow.user("alice", &[]).await;
        let client = flow.client(trusted()).await;
        let tokens = tokens_for(&flow, &client, "alice", "openid").await;
        let access = tokens["access_token"].as_str().unwrap();

        assert!(cli(&flow.app.db, &["user", "disable", "alice"]).status.success());
        flow.app.settle().await;
        assert!(!is_active(&flow, &client, access).await);
        assert_eq!(userinfo(&flow, access).await.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(refresh(&flow, &client, &tokens).await.1["error"], "invalid_grant");

        assert!(cli(&flow.app.db, &["user", "enable", "alice"]).status.success());
        flow.app.settle().await;
        assert!(!is_active(&flow, &client, access).await, "re-enabling resurrects nothing");
        assert_eq!(refresh(&flow, &client, &tokens).await.1["error"], "invalid_grant");
    }
}

on_both_stores! {
    async fn revoking_consent_from_the_cli_or_the_admin_api_ends_the_tokens(kind: Kind) {
        let flow = Flow::new(kind).await;
        flow.set("consent_mode", "auto").await;
        flow.user("alice", &[]).await;
        let client = flow.client(web_client()).await;
        let first = tokens_for(&flow, &client, "alice", "openid email").await;
        let access = first["access_token"].as_str().unwrap();

        let revoked = cli(&flow.app.db, &["consent", "revoke", "--user", "alice", "--client", client.client_id.as_str()]);
        flow.app.settle().await;
        assert!(revoked.status.success(), "{}", String::from_utf8_lossy(&revoked.stderr));
        assert!(!is_active(&flow, &client, access).await);
        assert_eq!(userinfo(&flow, access).await.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(refresh(&flow, &client, &first).await.1["error"], "invalid_grant");

        // Consent is asked again, and granted again; the admin API withdraws it this time.
        let second = tokens_for(&flow, &client, "alice", "openid email").await;
        let token = admin_token(&flow).await;
        let (status, body) = admin(&flow, &token, reqwest::Method::POST, "/consents/revoke",
            Some(json!({ "user": "alice", "client_id": client.client_id.as_str() }))).await;
        assert_eq!(status, 200, "{body}");
        assert!(!is_active(&flow, &client, second["access_token"].as_str().unwrap()).await);
        let (status, body) = admin(&flow, &token, reqwest::Method::POST, "/consents/revoke",
            Some(json!({ "user": "alice", "client_id": client.client_id.as_str() }))).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    }
}

on_both_stores! {
    async fn rotating_the_secret_with_revoke_tokens_ends_every_token_of_the_client(kind: Kind) {
        let flow = Flow::new(kind).await;
        flow.user("alice", &[]).await;
        let client = flow.client(trusted()).await;
        let kept = tokens_for(&flow, &client, "alice", "openid").await;
        let rotated = cli(&flow.app.db, &["client", "rotate-secret", client.client_id.as_str()]);
        flow.app.settle().await;
        assert!(rotated.status.success());
        let secret: Value = serde_json::from_slice(&rotated.stdout).unwrap();
        let id = client.client_id.to_string();
        let new_secret = secret["client_secret"].as_str().unwrap().to_owned();
        let active = |token: String, secret: String| {
            let flow = &flow;
            let id = id.clone();
            async move {
                let response = flow.app.http.post(flow.app.url("/oauth/introspect")).basic_auth(&id, Some(secret)).form(&[("token", token)]).send().await.unwrap();
                response.json::<Value>().await.unwrap()["active"] == true
            }
        };
        assert!(active(kept["access_token"].as_str().unwrap().into(), new_secret.clone()).await, "a plain rotation keeps tokens");

        let revoking = cli(&flow.app.db, &["client", "rotate-secret", &id, "--revoke-tokens"]);
        flow.app.settle().await;
        assert!(revoking.status.success());
        let newest: Value = serde_json::from_slice(&revoking.stdout).unwrap();
        let newest = newest["client_secret"].as_str().unwrap().to_owned();
        assert!(!active(kept["access_token"].as_str().unwrap().into(), newest.clone()).await);
        let response = flow.app.http.post(flow.app.url("/oauth/token")).basic_auth(&id, Some(newest))
            .form(&[("grant_type", "refresh_token"), ("refresh_token", kept["refresh_token"].as_str().unwrap())]).send().await.unwrap();
        assert_eq!(response.json::<Value>().await.unwrap()["error"], "invalid_grant");
    }
}

on_both_stores! {
    async fn the_admin_api_needs_an_admin_token_and_names_bad_fields(kind: Kind) {
        let mut flow = Flow::new(kind).await;
        flow.user("root", &["admin"]).await;
        flow.user("bob", &[]).await;
        let client = flow.client(trusted()).await;
        let token = admin_token(&flow).await;

        let (status, _) = admin(&flow, "nonsense", reqwest::Method::GET, "/clients", None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        let bob = tokens_for(&flow, &client, "bob", "openid admin").await;
        let (status, _) = admin(&flow, bob["access_token"].as_str().unwrap(), reqwest::Method::GET, "/clients", None).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "bob lacks the admin role");
        let plain = tokens_for(&flow, &client, "bob", "openid").await;
        let (status, _) = admin(&flow, plain["access_token"].as_str().unwrap(), reqwest::Method::GET, "/clients", None).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "no admin scope");
        flow.fresh_browser();
        let root_tokens = tokens_for(&flow, &client, "root", "openid admin").await;
        let (status, body) = admin(&flow, root_tokens["access_token"].as_str().unwrap(), reqwest::Method::GET, "/users", None).await;
        assert_eq!(status, 200, "{body}");

        let (status, created) = admin(&flow, &token, reqwest::Method::POST, "/clients", Some(json!({
            "client_name": "From the API", "redirect_uris": ["https://api.example/cb"], "scope": "openid"
        }))).await;
        assert_eq!(status, StatusCode::CREATED, "{created}");
        assert!(created["client_secret"].as_str().unwrap().starts_with("alcs_"));
        let id = created["client_id"].as_str().unwrap().to_owned();
        let (status, updated) = admin(&flow, &token, reqwest::Method::PATCH, &format!("/clients/{id}"), Some(json!({ "name": "Renamed" }))).await;
        assert_eq!((status, updated["name"].as_str()), (StatusCode::OK, Some("Renamed")));

        for (path, body, field) in [
            ("/clients", json!({ "client_name": "x", "redirect_uris": ["/relative"] }), "redirect_uri"),
            ("/clients", json!({ "redirect_uris": [] }), "client_name"),
            ("/clients", json!({ "client_name": "x", "colour": "blue" }), "colour"),
            ("/users", json!({ "username": "eve", "password": "short" }), "password"),
            ("/users", json!({ "username": "e v e", "password": "long enough" }), "username"),
        ] {
            let (status, error) = admin(&flow, &token, reqwest::Method::POST, path, Some(body)).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{error}");
            assert_eq!(error["error"], "invalid_request");
            assert_eq!(error["field"], field, "{error}");
        }
        let (status, error) = admin(&flow, &token, reqwest::Method::PATCH, &format!("/clients/{id}"), Some(json!({ "redirect_uris": ["http://remote.example/cb"] }))).await;
        assert_eq!((status, error["field"].as_str()), (StatusCode::BAD_REQUEST, Some("redirect_uris")), "{error}");
        let (status, _) = admin(&flow, &token, reqwest::Method::GET, "/clients/no-such", None).await;
        assert_eq!(status, StatusCode::NOT_FOUND);

        // Keyset pagination.
        for n in 0..3 {
            flow.client(ClientInput { name: format!("extra {n}"), ..web_client() }).await;
        }
        let (_, first) = admin(&flow, &token, reqwest::Method::GET, "/clients?limit=2", None).await;
        assert_eq!(first["items"].as_array().unwrap().len(), 2);
        let mut seen: Vec<String> = first["items"].as_array().unwrap().iter().map(|c| c["client_id"].as_str().unwrap().to_owned()).collect();
        let mut cursor = first["next_cursor"].as_str().map(str::to_owned);
        while let Some(c) = cursor {
            let (_, next) = admin(&flow, &token, reqwest::Method::GET, &format!("/clients?limit=2&cursor={c}"), None).await;
            seen.extend(next["items"].as_array().unwrap().iter().map(|c| c["client_id"].as_str().unwrap().to_owned()));
            cursor = next["next_cursor"].as_str().map(str::to_owned);
        }
        let unique: std::collections::BTreeSet<&String> = seen.iter().collect();
        assert_eq!(unique.len(), seen.len());
        assert_eq!(seen.len(), 6, "the trusted client, the ops client, the API's and three extras");
    }
}

on_both_stores! {
    async fn the_audit_answers_who_had_access_and_who_revoked_it(kind: Kind) {
        let mut flow = Flow::new(kind).await;
        flow.user("alice", &[]).await;
        flow.user("bob", &[]).await;
        let client = flow.client(trusted()).await;
        let before_failures = chrono::Utc::now();
        assert_eq!(flow.sign_in_with("alice", "wrong-1", "/login").await.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(flow.sign_in_with("alice", "wrong-2", "/login").await.status(), StatusCode::UNAUTHORIZED);
        let after_failures = chrono::Utc::now();
        let first = tokens_for(&flow, &client, "alice", "openid").await;
        let second = tokens_for(&flow, &client, "alice", "openid email").await;
        let (_, _) = refresh(&flow, &client, &second).await;
        flow.fresh_browser();
        tokens_for(&flow, &client, "bob", "openid").await;
        let token = admin_token(&flow).await;

        // 1. Every token ever issued to client C for user U, and which are still active.
        let grant = &first["access_token"].as_str().unwrap()["alat_".len().."alat_".len() + 32];
        let (status, revoked) = admin(&flow, &token, reqwest::Method::POST, &format!("/grants/{grant}/revoke"), None).await;
        assert_eq!((status, revoked["status"].as_str()), (StatusCode::OK, Some("revoked")), "{revoked}");
        let (_, tokens) = admin(&flow, &token, reqwest::Method::GET, &format!("/tokens?client_id={}&user=alice", client.client_id), None).await;
        let items = tokens["items"].as_array().unwrap();
        // Two code exchanges (access + refresh each) and one refresh (access + refresh).
        assert_eq!(items.len(), 6, "{tokens}");
        assert!(items.iter().all(|t| t["username"] == "alice"));
        let active: Vec<&Value> = items.iter().filter(|t| t["active"] == true).collect();
        // Refreshing retires the refresh token; the access token issued before it stays valid
        // until it expires.
        assert_eq!(active.len(), 3, "the second grant's three live tokens: {tokens}");
        assert!(items.iter().any(|t| t["status"] == "rotated"));
        assert!(!tokens.to_string().contains("alat_"), "the index holds hashes, never tokens");

        // 2. Who revoked grant G, and from which IP.
        let (_, audit) = admin(&flow, &token, reqwest::Method::GET, &format!("/audit?grant={grant}&type=GrantRevoked"), None).await;
        let rows = audit["items"].as_array().unwrap();
        assert_eq!(rows.len(), 1, "{audit}");
        assert!(rows[0]["actor"].as_str().unwrap().starts_with("client:"), "the ops client revoked it: {audit}");
        assert_eq!(rows[0]["ip"], "127.0.0.1");
        assert_eq!(rows[0]["summary"], "grant revoked (admin)");
        let (_, grant_view) = admin(&flow, &token, reqwest::Method::GET, &format!("/grants/{grant}"), None).await;
        assert_eq!(grant_view["revoked_ip"], "127.0.0.1");

        // 3. Every failed sign-in of user U in a time window.
        let window = format!(
            "/audit?user=alice&type=LoginFailed&since={}&until={}",
            before_failures.to_rfc3339_opts(chrono::SecondsFormat::Micros, true).replace('+', "%2B"),
            after_failures.to_rfc3339_opts(chrono::SecondsFormat::Micros, true).replace('+', "%2B"),
        );
        let (status, failures) = admin(&flow, &token, reqwest::Method::GET, &window, None).await;
        assert_eq!(status, 200, "{failures}");
        let rows = failures["items"].as_array().unwrap();
        assert_eq!(rows.len(), 2, "{failures}");
        assert!(rows.iter().all(|r| r["summary"] == "sign-in failed: wrong password" && r["user_agent"] == BROWSER && r["ip"] == "127.0.0.1"));
        let (status, bad) = admin(&flow, &token, reqwest::Method::GET, "/audit?since=yesterday", None).await;
        assert_eq!((status, bad["field"].as_str()), (StatusCode::BAD_REQUEST, Some("since")));

        // The same questions from the CLI.
        let json_rows = cli(&flow.app.db, &["audit", "--user", "alice", "--type", "LoginFailed", "--format", "json"]);
        assert_eq!(String::from_utf8(json_rows.stdout).unwrap().lines().count(), 2);
        let table = cli(&flow.app.db, &["audit", "--grant", grant]);
        let table = String::from_utf8(table.stdout).unwrap();
        assert!(table.starts_with("POS") && table.contains("GrantRevoked") && table.contains("127.0.0.1"), "{table}");
        // Newest first; a client actor by its name.
        let first_row = table.lines().nth(1).unwrap();
        assert!(first_row.contains("GrantRevoked") && first_row.contains("client:Operations"), "{table}");
        // A type in any case; an unknown one lists the types; a limit says what it left out.
        let any_case = cli(&flow.app.db, &["audit", "--user", "alice", "--type", "loginfailed", "--format", "json"]);
        assert_eq!(String::from_utf8(any_case.stdout).unwrap().lines().count(), 2);
        let unknown = cli(&flow.app.db, &["audit", "--type", "LoginFailure"]);
        assert_eq!(unknown.status.code(), Some(5));
        assert!(String::from_utf8_lossy(&unknown.stderr).contains("the types are") && String::from_utf8_lossy(&unknown.stderr).contains("LoginFailed"));
        let limited = cli(&flow.app.db, &["audit", "--user", "alice", "--limit", "1"]);
        assert_eq!(String::from_utf8(limited.stdout).unwrap().lines().count(), 2, "a header and one row");
        assert!(String::from_utf8_lossy(&limited.stderr).contains("more match"));
        let failed = cli(&flow.app.db, &["audit", "--type", "LoginFailed", "--limit", "1"]);
        let failed = String::from_utf8(failed.stdout).unwrap();
        assert!(failed.contains("USER") && failed.lines().nth(1).unwrap().contains("alice"), "the name tried: {failed}");
        let export = cli(&flow.app.db, &["audit", "export", "--since", &before_failures.to_rfc3339()]);
        let lines: Vec<Value> = String::from_utf8(export.stdout).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert!(lines.len() > 10);
        assert!(lines.windows(2).all(|w| w[0]["global_position"].as_i64() < w[1]["global_position"].as_i64()));
        let everything = lines.iter().map(|l| l.to_string()).collect::<String>();
        for secret in [first["access_token"].as_str().unwrap(), second["refresh_token"].as_str().unwrap(), "wrong-1"] {
            assert!(!everything.contains(secret), "the audit never shows a secret");
        }
    }
}

on_both_stores! {
    async fn usage_is_counted_per_client_and_user_and_exported_as_metrics(kind: Kind) {
        let flow = Flow::new(kind).await;
        flow.user("alice", &[]).await;
        let client = flow.client(trusted()).await;
        let tokens = tokens_for(&flow, &client, "alice", "openid").await;
        let access = tokens["access_token"].as_str().unwrap();
        for _ in 0..3 {
            assert!(is_active(&flow, &client, access).await);
        }
        assert_eq!(userinfo(&flow, access).await.status(), 200);
        refresh(&flow, &client, &tokens).await;
        let failed = flow.app.http.post(flow.app.url("/oauth/token")).basic_auth(client.client_id.as_str(), Some("wrong"))
            .form(&[("grant_type", "client_credentials")]).send().await.unwrap();
        assert_eq!(failed.status(), StatusCode::UNAUTHORIZED);
        let token = admin_token(&flow).await;

        let (status, usage) = admin(&flow, &token, reqwest::Method::GET, &format!("/usage?client_id={}", client.client_id), None).await;
        assert_eq!(status, 200, "{usage}");
        let count = |metric: &str| -> i64 {
            usage["items"].as_array().unwrap().iter().filter(|r| r["metric"] == metric).map(|r| r["count"].as_i64().unwrap()).sum()
        };
        assert_eq!(count("tokens_issued"), 1);
        assert_eq!(count("tokens_refreshed"), 1);
        assert_eq!(count("introspections_active"), 3);
        assert_eq!(count("userinfo_calls"), 1);
        assert_eq!(count("client_auth_failures"), 1);
        let (_, by_user) = admin(&flow, &token, reqwest::Method::GET, "/usage?user=alice", None).await;
        assert!(by_user["items"].as_array().unwrap().iter().all(|r| r["username"] == "alice"));
        // The same names as everywhere (since/until/client), times as people type them.
        let (status, recent) = admin(&flow, &token, reqwest::Method::GET, &format!("/usage?since=24h&client={}", client.client_id), None).await;
        assert_eq!(status, 200, "{recent}");
        assert_eq!(recent["totals"]["introspections_active"], 3, "{recent}");
        let (status, refused) = admin(&flow, &token, reqwest::Method::GET, "/usage?since=yesterday", None).await;
        assert_eq!((status, refused["field"].as_str()), (StatusCode::BAD_REQUEST, Some("since")), "{refused}");
        // And from the command line: totals and an hourly table, or JSON.
        let report = cli_json(&flow.app.db, &["usage", "--since", "2h", "--client", client.client_id.as_str(), "--format", "json"]);
        assert_eq!(report["totals"]["tokens_issued"], 1, "{report}");
        assert_eq!(report["totals"]["userinfo_calls"], 1, "{report}");
        let table = String::from_utf8(cli(&flow.app.db, &["usage", "--user", "alice"]).stdout).unwrap();
        assert!(table.contains("HOUR") && table.contains("TOKENS_ISSUED") && table.contains("tokens_refreshed"), "{table}");

        let metrics = flow.app.http.get(flow.app.url("/metrics")).send().await.unwrap().text().await.unwrap();
        assert!(metrics.contains(&format!("authledger_tokens_issued_total{{client_id=\"{}\",grant_type=\"authorization_code\"}} 1", client.client_id)), "{metrics}");
        assert!(metrics.contains("authledger_http_request_duration_seconds_bucket{method=\"POST\",route=\"/oauth/token\""));
        assert!(metrics.contains("metric=\"introspections_active\"} 3"));

        // What the server did, by kind, with bounded labels (never a user or a token).
        let bogus = flow.app.http.post(flow.app.url("/oauth/introspect")).basic_auth(client.client_id.as_str(), client.client_secret.as_ref().map(|s| s.reveal()))
            .form(&[("token", "not-a-token")]).send().await.unwrap();
        assert_eq!(bogus.status(), StatusCode::OK);
        assert_eq!(revoke(&flow, &client, access).await, StatusCode::OK);
        let metrics = flow.app.http.get(flow.app.url("/metrics")).send().await.unwrap().text().await.unwrap();
        for line in [
            "authledger_sign_ins_total{method=\"password\",outcome=\"succeeded\"} 1".to_owned(),
            format!("authledger_token_refreshes_total{{client_id=\"{}\"}} 1", client.client_id),
            "authledger_oauth_errors_total{error=\"invalid_client\",route=\"/oauth/token\"} 1".to_owned(),
            "authledger_introspections_total{result=\"active\"} 3".to_owned(),
            "authledger_introspections_total{result=\"inactive\"} 1".to_owned(),
            "authledger_revocations_total{cause=\"client_request\"} 1".to_owned(),
            "authledger_db_pool_connections{state=\"max\"}".to_owned(),
            "authledger_db_pool_acquire_seconds ".to_owned(),
            "authledger_projection_lag_events{projection=\"grants\"}".to_owned(),
            "authledger_projection_lag_seconds{projection=\"grants\"}".to_owned(),
        ] {
            assert!(metrics.contains(&line), "{line} in {metrics}");
        }
        let head: i64 = metrics.lines().find_map(|l| l.strip_prefix("authledger_event_log_head_position ")).unwrap().parse().unwrap();
        assert!(head > 5, "{metrics}");
        assert!(!metrics.contains("alice") && !metrics.contains(access), "no user or token as a label");
    }
}

on_both_stores! {
    async fn history_and_state_as_of_show_when_a_grant_stopped_being_usable(kind: Kind) {
        let flow = Flow::new(kind).await;
        flow.user("alice", &[]).await;
        let client = flow.client(trusted()).await;
        let tokens = tokens_for(&flow, &client, "alice", "openid").await;
        let grant = tokens["access_token"].as_str().unwrap()["alat_".len().."alat_".len() + 32].to_owned();
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        let while_active = chrono::Utc::now().to_rfc3339();
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        assert_eq!(revoke(&flow, &client, tokens["refresh_token"].as_str().unwrap()).await, StatusCode::OK);

        let history = cli(&flow.app.db, &["history", &format!("grant:{grant}")]);
        let text = String::from_utf8(history.stdout).unwrap();
        for event in ["CodeIssued", "CodeRedeemed", "TokensIssued", "GrantRevoked"] {
            assert!(text.contains(event), "{text}");
        }

        let at = cli_json(&flow.app.db, &["state", &format!("grant:{grant}"), "--as-of", &while_active]);
        assert_eq!(at["active_access_token_hashes"].as_array().unwrap().len(), 1, "{at}");
        assert_eq!(at["last_event"]["event_type"], "TokensIssued");
        assert_eq!(at["next_event"]["event_type"], "GrantRevoked", "the event that changed it");
        assert!(at["next_event"]["actor"].as_str().unwrap().starts_with("client:"));
        let now = cli_json(&flow.app.db, &["state", &format!("grant:{grant}"), "--as-of", &chrono::Utc::now().to_rfc3339()]);
        assert_eq!(now["active_access_token_hashes"], json!([]));
        assert_eq!(now["state"]["state"]["revoked"], "client_request");
        let before = cli_json(&flow.app.db, &["state", "user:alice", "--as-of", "2000-01-01T00:00:00Z"]);
        assert_eq!(before["existed"], false);
        let bad = cli(&flow.app.db, &["state", "grant:nope", "--as-of", "now"]);
        assert!(!bad.status.success());

        // The same question about one token, read from stdin and never printed back.
        let access = tokens["access_token"].as_str().unwrap();
        let inspect = cli_with_stdin(&flow.app.db, &["token", "inspect", "--as-of", &while_active], &format!("{access}\n"));
        assert!(inspect.status.success(), "{}", String::from_utf8_lossy(&inspect.stderr));
        let printed = String::from_utf8(inspect.stdout).unwrap();
        assert!(!printed.contains(access), "the token is never printed");
        let inspected: Value = serde_json::from_str(&printed).unwrap();
        assert_eq!(inspected["kind"], "access_token");
        assert_eq!(inspected["grant"], format!("grant:{grant}"));
        assert_eq!(inspected["issued_by"]["event_type"], "TokensIssued");
        assert_eq!((inspected["usable_now"].as_bool(), inspected["as_of"]["usable"].as_bool()), (Some(false), Some(true)), "{inspected}");
        assert_eq!(inspected["timeline"].as_array().unwrap().last().unwrap()["event_type"], "GrantRevoked");
        let garbage = cli_with_stdin(&flow.app.db, &["token", "inspect"], "not-a-token\n");
        assert_eq!(garbage.status.code(), Some(5));
        let elsewhere = cli_with_stdin(&flow.app.db, &["token", "inspect"], &format!("alat_{}.{}\n", "0".repeat(32), "a".repeat(43)));
        assert_eq!(elsewhere.status.code(), Some(3), "{}", String::from_utf8_lossy(&elsewhere.stderr));
    }
}

/// Every view, as the read side serves it.
/// Every table and index definition, as the store's catalog gives them, and on Postgres each
/// table's privileges and the schemas a rebuild might have left behind.
async fn schema(db: &authledger_projections::Db) -> Vec<(String, Option<String>)> {
    use authledger_projections::Db;
    match db {
        // The log's file and the views file (`views_file.rs`).
        Db::Sqlite(pool) => sqlx::query_as(
            "SELECT name, sql FROM main.sqlite_master WHERE type IN ('table', 'index') \
             UNION ALL SELECT name, sql FROM views.sqlite_master WHERE type IN ('table', 'index') \
             ORDER BY name",
        )
        .fetch_all(pool)
        .await
        .unwrap(),
        Db::Postgres(pool) => sqlx::query_as(
            "SELECT indexname::text, indexdef FROM pg_indexes WHERE schemaname = current_schema() \
             UNION ALL SELECT relname::text, relacl::text FROM pg_class \
                 WHERE relkind = 'r' AND relnamespace = (SELECT oid FROM pg_namespace WHERE nspname = current_schema()) \
             UNION ALL SELECT nspname::text, NULL FROM pg_namespace WHERE nspname LIKE 'authledger%' \
             ORDER BY 1, 2",
        )
        .fetch_all(pool)
        .await
        .unwrap(),
    }
}

async fn all_views(db: &authledger_projections::Db) -> Value {
    use authledger_projections::{audit, clients, consents, grants, usage, users};
    let everyone = grants::Subject::default();
    json!({
        "clients": clients::ClientsView::list(db, None, 1000).await.unwrap(),
        "users": users::UsersView::list(db, None, 1000).await.unwrap(),
        "grants": grants::GrantsView::grants(db, &everyone, false, None, 1000).await.unwrap(),
        "tokens": grants::GrantsView::tokens(db, &everyone, None, 1000).await.unwrap(),
        "consents": consents::ConsentsView::list(db, None, None, None, 1000).await.unwrap(),
        "audit": audit::AuditLog::query(db, &audit::AuditFilter::default(), 10_000).await.unwrap(),
        "usage": usage::report(db, None, None, None, None).await.unwrap(),
    })
}

on_both_stores! {
    async fn views_rebuilt_from_the_log_equal_the_live_views_row_by_row(kind: Kind) {
        let mut flow = Flow::new(kind).await;
        flow.set("consent_mode", "auto").await;
        flow.user("alice", &["reader"]).await;
        flow.user("bob", &[]).await;
        let client = flow.client(web_client()).await;
        let other = flow.client(trusted()).await;
        let a = tokens_for(&flow, &client, "alice", "openid email").await;
        refresh(&flow, &client, &a).await;
        refresh(&flow, &client, &a).await; // a replay: revokes the family
        let b = tokens_for(&flow, &other, "alice", "openid").await;
        revoke(&flow, &other, b["access_token"].as_str().unwrap()).await;
        flow.sign_in_with("alice", "wrong", "/login").await;
        flow.fresh_browser();
        tokens_for(&flow, &other, "bob", "openid").await;
        tokens_for(&flow, &client, "bob", "openid").await;
        assert!(cli(&flow.app.db, &["consent", "revoke", "--user", "bob", "--client", client.client_id.as_str()]).status.success());
        assert!(cli(&flow.app.db, &["user", "disable", "bob"]).status.success());
        assert!(cli(&flow.app.db, &["client", "rotate-secret", other.client_id.as_str(), "--revoke-tokens"]).status.success());
        flow.app.settle().await;
        admin_token(&flow).await;
        flow.store.runner.catch_up_fully().await.unwrap();

        let live = all_views(&flow.store.db).await;
        assert!(live["audit"].as_array().unwrap().len() > 25);
        assert!(live["tokens"].as_array().unwrap().len() > 8);

        if let authledger_projections::Db::Postgres(pool) = &flow.store.db {
            // A reporting role's access must survive the rebuild's table swap.
            sqlx::query("GRANT SELECT ON audit_log TO PUBLIC").execute(pool).await.unwrap();
        }
        let tables_and_indexes = schema(&flow.store.db).await;
        assert!(tables_and_indexes.iter().any(|(name, _)| name == "audit_by_grant"));

        let rebuilt = cli(&flow.app.db, &["projections", "rebuild"]);
        assert!(rebuilt.status.success(), "{}", String::from_utf8_lossy(&rebuilt.stderr));
        let message = String::from_utf8(rebuilt.stderr).unwrap();
        assert!(message.contains("events/s"), "the rebuild prints its rate: {message}");

        // The rebuild builds the secondary indexes after the replay (and on Postgres in
        // tables it then swaps in): what comes back is what the migrations made.
        assert_eq!(schema(&flow.store.db).await, tables_and_indexes);
        let after = all_views(&flow.store.db).await;
        for view in ["clients", "users", "grants", "tokens", "consents", "audit", "usage"] {
            assert_eq!(after[view], live[view], "{view} differs after the rebuild");
        }
        // A large log's rebuild meets a grant's later events pages after its first: with pages
        // of two events, every refresh and revocation finds its grant in the rebuilt views.
        flow.store.runner.rebuild_in_pages_of(2);
        flow.store.runner.rebuild(None).await.unwrap();
        assert_eq!(all_views(&flow.store.db).await, live, "rebuilt in pages of two events");
        let one = cli(&flow.app.db, &["projections", "rebuild", "audit"]);
        assert!(one.status.success());
        assert_eq!(all_views(&flow.store.db).await, live);
        assert_eq!(schema(&flow.store.db).await, tables_and_indexes);
        let unknown = cli(&flow.app.db, &["projections", "rebuild", "nonsense"]);
        assert!(!unknown.status.success());
        assert!(String::from_utf8_lossy(&unknown.stderr).contains("no projection is named `nonsense`"));
    }
}
