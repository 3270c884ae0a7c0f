//! The device authorization grant (RFC 8628), black box: a device (a TV, a command line) asks,
//! polls the token endpoint, and a person approves or denies on the `/device` page.

use authledger::admin::clients::{ClientInput, NewClient};
use reqwest::header::{CACHE_CONTROL, LOCATION, RETRY_AFTER};
use reqwest::StatusCode;
use serde_json::Value;

use super::flow::*;
use crate::helpers::*;

const DEVICE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

fn tv_client() -> ClientInput {
    ClientInput {
        name: "Living Room TV".into(),
        scope: Some("openid profile email".into()),
        grant_types: vec!["device_code".into(), "refresh_token".into()],
        public: true,
        ..ClientInput::default()
    }
}

/// `POST /oauth/device_authorization` for a public client.
async fn ask(flow: &Flow, client_id: &str, scope: &str) -> (StatusCode, Value) {
    let mut form = vec![("client_id", client_id)];
    if !scope.is_empty() {
        form.push(("scope", scope));
    }
    let response = flow
        .app
        .http
        .post(flow.app.url("/oauth/device_authorization"))
        .form(&form)
        .send()
        .await
        .unwrap();
    let status = response.status();
    if status == StatusCode::OK {
        assert_eq!(response.headers()[CACHE_CONTROL], "no-store");
    }
    (status, response.json().await.unwrap())
}

async fn poll(flow: &Flow, client_id: &str, device_code: &str) -> (StatusCode, Value) {
    let (status, _, body) = flow
        .token(
            Auth::PublicId(client_id),
            &[("grant_type", DEVICE_GRANT), ("device_code", device_code)],
        )
        .await;
    (status, body)
}

/// The person, in a browser: opens `/device?user_code=`, signs in if asked, and returns the
/// approval page.
async fn approval_page(flow: &Flow, user: &str, user_code: &str) -> reqwest::Response {
    let path = format!("/device?user_code={}", urlencode(user_code));
    let mut page = flow.get(&path).await;
    if page.status() == StatusCode::SEE_OTHER {
        let to_login = redirected(&page);
        assert_eq!(to_login.url.path(), "/login");
        let back = to_login.get("return_to").unwrap().to_owned();
        assert!(back.starts_with("/device?user_code="), "{back}");
        let signed_in = flow.sign_in_with(user, &password_of(user), &back).await;
        assert_eq!(signed_in.status(), StatusCode::SEE_OTHER);
        assert_eq!(signed_in.headers()[LOCATION].to_str().unwrap(), back);
        page = flow.get(&back).await;
    }
    page
}

fn grant_of(device_code: &str) -> String {
    device_code
        .strip_prefix("aldc_")
        .and_then(|rest| rest.split('.').next())
        .unwrap()
        .to_owned()
}

on_both_stores! {
    async fn a_device_gets_tokens_once_the_person_approves_it(kind: Kind) {
        let flow = Flow::new(kind).await;
        flow.user("alice", &[]).await;
        flow.set("device_poll_interval", "1").await;
        let tv = flow.client(tv_client()).await;
        let tv_id = tv.client_id.to_string();

        let (status, started) = ask(&flow, &tv_id, "openid profile").await;
        assert_eq!(status, StatusCode::OK, "{started}");
        let user_code = started["user_code"].as_str().unwrap().to_owned();
        let device_code = started["device_code"].as_str().unwrap().to_owned();
        let shape = |c: char| "BCDFGHJKLMNPQRSTVWXZ".contains(c);
        assert!(
            user_code.len() == 9 && user_code.chars().nth(4) == Some('-')
                && user_code.chars().filter(|c| *c != '-').all(shape),
            "{user_code}"
        );
        assert_eq!(started["verification_uri"], flow.app.url("/device"));
        assert_eq!(
            started["verification_uri_complete"],
            format!("{}?user_code={user_code}", flow.app.url("/device"))
        );
        assert_eq!(started["expires_in"], 600);
        assert_eq!(started["interval"], 1);

        let (status, pending) = poll(&flow, &tv_id, &device_code).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(pending["error"], "authorization_pending", "{pending}");

        // The person types the code as they read it: lower case, no dash.
        let typed = user_code.replace('-', "").to_lowercase();
        let page = approval_page(&flow, "alice", &typed).await;
        assert_eq!(page.status(), StatusCode::OK);
        let html = page.text().await.unwrap();
        assert!(html.contains("Living Room TV"), "{html}");
        assert!(html.contains(&user_code), "the page shows the code to compare: {html}");
        assert!(html.contains("(profile)") && html.contains("(openid)"), "{html}");
        assert!(html.contains("The request came from 127.0.0.1"), "where the device asked from: {html}");
        let done = flow.submit(&html, "/device", &[("decision", "allow")]).await;
        assert_eq!(done.status(), StatusCode::OK);
        assert!(done.text().await.unwrap().contains("Device connected"));

        tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
        let (status, tokens) = poll(&flow, &tv_id, &device_code).await;
        assert_eq!(status, StatusCode::OK, "{tokens}");
        assert_eq!(tokens["token_type"], "Bearer");
        assert_eq!(tokens["scope"], "openid profile");
        assert!(tokens["refresh_token"].is_string());
        let claims = flow
            .verify_id_token(tokens["id_token"].as_str().unwrap(), &tv_id)
            .await;
        assert_eq!(claims["sub"], "alice");

        // The token is alice's, through the TV's client.
        let (_, _, introspected) = flow
            .token_at(
                "/oauth/introspect",
                Auth::PublicId(&tv_id),
                &[("token", tokens["access_token"].as_str().unwrap())],
            )
            .await;
        assert_eq!(introspected["active"], true, "{introspected}");
        assert_eq!(introspected["username"], "alice");
        assert_eq!(introspected["client_id"], tv_id.as_str());

        // The device code is one-time.
        tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
        let (status, again) = poll(&flow, &tv_id, &device_code).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(again["error"], "invalid_grant", "{again}");

        // The refresh token works as any other.
        let (status, _, refreshed) = flow
            .token(
                Auth::PublicId(&tv_id),
                &[
                    ("grant_type", "refresh_token"),
                    ("refresh_token", tokens["refresh_token"].as_str().unwrap()),
                ],
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{refreshed}");

        // The ledger says who approved which device, and the person sees it in their account.
        let grant = grant_of(&device_code);
        let steps = flow.history("Grant", &grant).await;
        assert_eq!(
            steps[..4],
            [
                "DeviceAuthorizationStarted",
                "DeviceAuthorizationApproved",
                "DeviceCodeRedeemed",
                "TokensIssued"
            ],
            "{steps:?}"
        );
        let audit = cli_stdout(&flow.app.db, &["audit", "export", "--grant", &grant]);
        let approved: Value = audit
            .lines()
            .map(|l| serde_json::from_str::<Value>(l).unwrap())
            .find(|row| row["event_type"] == "DeviceAuthorizationApproved")
            .unwrap_or_else(|| panic!("{audit}"));
        assert_eq!(approved["username"], "alice", "{approved}");
        assert_eq!(approved["actor"], "user:alice", "{approved}");
        assert_eq!(approved["client_id"], tv_id.as_str(), "{approved}");
        flow.app.settle().await;
        let account = flow.get("/account").await.text().await.unwrap();
        assert!(account.contains("Living Room TV"), "{account}");
        // Nothing in the log holds either code.
        let everything = everything_stored(&flow.app.db).await;
        assert!(!everything.contains(&device_code));
        assert!(!everything.contains(&user_code) && !everything.contains(&user_code.replace('-', "")));

        // The person removes the TV from their account: its tokens stop working.
        let form = crate::people::forms(&account, "/account/applications/remove").remove(0);
        assert!(form.contains(&("client_id".into(), tv_id.clone())), "{form:?}");
        let removed = flow.browser.post(flow.app.url("/account/applications/remove")).form(&form).send().await.unwrap();
        assert_eq!(removed.status(), StatusCode::SEE_OTHER);
        let (_, _, introspected) = flow
            .token_at(
                "/oauth/introspect",
                Auth::PublicId(&tv_id),
                &[("token", refreshed["access_token"].as_str().unwrap())],
            )
            .await;
        assert_eq!(introspected["active"], false, "{introspected}");
        let (status, _, refused) = flow
            .token(
                Auth::PublicId(&tv_id),
                &[("grant_type", "refresh_token"), ("refresh_token", refreshed["refresh_token"].as_str().unwrap())],
            )
            .await;
        assert_eq!((status, refused["error"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_grant")));
    }
}

on_both_stores! {
    async fn polls_are_answered_as_rfc_8628_says(kind: Kind) {
        let flow = Flow::new(kind).await;
        flow.user("bob", &[]).await;
        let tv = flow.client(tv_client()).await;
        let tv_id = tv.client_id.to_string();

        // Polling faster than the interval: slow_down, and the interval grows.
        let (_, started) = ask(&flow, &tv_id, "").await;
        assert_eq!(started["scope"], Value::Null);
        assert_eq!(started["interval"], 5);
        let device_code = started["device_code"].as_str().unwrap().to_owned();
        assert_eq!(poll(&flow, &tv_id, &device_code).await.1["error"], "authorization_pending");
        let (status, slow) = poll(&flow, &tv_id, &device_code).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(slow["error"], "slow_down", "{slow}");
        assert!(slow["error_description"].as_str().unwrap().contains("10 seconds"), "{slow}");

        // Denied: access_denied, and the denial is bob's in the ledger.
        let (_, started) = ask(&flow, &tv_id, "profile").await;
        let denied_code = started["device_code"].as_str().unwrap().to_owned();
        let page = approval_page(&flow, "bob", started["user_code"].as_str().unwrap()).await;
        let html = page.text().await.unwrap();
        let done = flow.submit(&html, "/device", &[("decision", "deny")]).await;
        assert_eq!(done.status(), StatusCode::OK);
        assert!(done.text().await.unwrap().contains("Access denied"));
        let (status, denied) = poll(&flow, &tv_id, &denied_code).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(denied["error"], "access_denied", "{denied}");
        let steps = flow.history("Grant", &grant_of(&denied_code)).await;
        assert_eq!(steps, ["DeviceAuthorizationStarted", "DeviceAuthorizationDenied"]);
        // A decided code cannot be decided again.
        let again = flow.submit(&html, "/device", &[("decision", "allow")]).await;
        assert_eq!(again.status(), StatusCode::BAD_REQUEST);

        // Codes that name nothing, another client's code, a client without the grant.
        for made_up in ["aldc_nonsense", "alac_0123456789abcdef0123456789abcdef.xxx"] {
            let (status, error) = poll(&flow, &tv_id, made_up).await;
            assert_eq!((status, error["error"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_grant")));
        }
        let other = flow.client(ClientInput { name: "Other TV".into(), ..tv_client() }).await;
        let (_, theirs) = ask(&flow, other.client_id.as_str(), "").await;
        let (_, error) = poll(&flow, &tv_id, theirs["device_code"].as_str().unwrap()).await;
        assert_eq!(error["error"], "invalid_grant", "{error}");
        let (_, _, missing) = flow
            .token(Auth::PublicId(&tv_id), &[("grant_type", DEVICE_GRANT)])
            .await;
        assert_eq!(missing["error"], "invalid_request", "{missing}");
        let web = flow.client(web_client()).await;
        let (status, _, refused) = flow
            .token(Auth::Basic(&web), &[("grant_type", DEVICE_GRANT), ("device_code", &device_code)])
            .await;
        assert_eq!((status, refused["error"].as_str()), (StatusCode::BAD_REQUEST, Some("unauthorized_client")));
        let (status, refused) = ask_confidential(&flow, &web).await;
        assert_eq!((status, refused["error"].as_str()), (StatusCode::BAD_REQUEST, Some("unauthorized_client")), "{refused}");
        let (status, refused) = ask(&flow, &tv_id, "openid admin").await;
        assert_eq!((status, refused["error"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_scope")));
        let (status, refused) = ask(&flow, "no-such-client", "").await;
        assert_eq!((status, refused["error"].as_str()), (StatusCode::UNAUTHORIZED, Some("invalid_client")));
    }
}

async fn ask_confidential(flow: &Flow, client: &NewClient) -> (StatusCode, Value) {
    let response = flow
        .app
        .http
        .post(flow.app.url("/oauth/device_authorization"))
        .basic_auth(
            client.client_id.as_str(),
            Some(client.client_secret.as_ref().unwrap().reveal()),
        )
        .form(&[("scope", "openid")])
        .send()
        .await
        .unwrap();
    (response.status(), response.json().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unapproved_device_code_expires() {
    let flow = Flow::new(Kind::Sqlite).await;
    flow.user("carol", &[]).await;
    flow.set("device_code_ttl", "60").await;
    let tv = flow.client(tv_client()).await;
    let (_, started) = ask(&flow, tv.client_id.as_str(), "").await;
    assert_eq!(started["expires_in"], 60);
    let user_code = started["user_code"].as_str().unwrap().to_owned();
    let device_code = started["device_code"].as_str().unwrap().to_owned();
    // The server's clock cannot be moved from outside: the recorded expiry is moved into the
    // past instead, as a device that waited too long would find it.
    expire_device_grant(&flow, &grant_of(&device_code)).await;
    let (status, expired) = poll(&flow, tv.client_id.as_str(), &device_code).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(expired["error"], "expired_token", "{expired}");
    let page = approval_page(&flow, "carol", &user_code).await;
    assert_eq!(page.status(), StatusCode::BAD_REQUEST);
    assert!(page.text().await.unwrap().contains("not valid"));
}

/// Moves a pending device grant's expiry into the past, in the log itself: a test may lift
/// the trigger that keeps events immutable; the server never edits an event.
async fn expire_device_grant(flow: &Flow, grant: &str) {
    let authledger_projections::Db::Sqlite(pool) = &flow.store.db else {
        panic!("SQLite only");
    };
    sqlx::query("DROP TRIGGER events_are_immutable")
        .execute(pool)
        .await
        .unwrap();
    let past = (chrono::Utc::now() - chrono::Duration::minutes(1)).to_rfc3339();
    let rows = sqlx::query(
        "UPDATE events SET payload = json_set(payload, '$.DeviceAuthorizationStarted.expires_at', ?1) \
         WHERE aggregate_type = 'Grant' AND aggregate_id = ?2 AND sequence = 1",
    )
    .bind(&past)
    .bind(grant)
    .execute(pool)
    .await
    .unwrap()
    .rows_affected();
    assert_eq!(rows, 1);
    let rows = sqlx::query(
        "UPDATE events SET payload = json_set(payload, '$.UserCodeAssigned.expires_at', ?1) \
         WHERE aggregate_type = 'UserCode' AND json_extract(payload, '$.UserCodeAssigned.grant_id') = ?2",
    )
    .bind(&past)
    .bind(grant)
    .execute(pool)
    .await
    .unwrap()
    .rows_affected();
    assert_eq!(rows, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guessing_user_codes_is_throttled() {
    let flow = Flow::new(Kind::Sqlite).await;
    flow.set("login_max_failures", "2").await;
    let form = flow.get("/device").await;
    assert_eq!(form.status(), StatusCode::OK);
    let html = form.text().await.unwrap();
    assert!(html.contains("name=\"user_code\""), "{html}");

    // A malformed code, markup included, is shown back escaped with the form.
    let page = flow.get("/device?user_code=%3Cscript%3E").await;
    assert_eq!(page.status(), StatusCode::BAD_REQUEST);
    let html = page.text().await.unwrap();
    assert!(
        html.contains("not valid") && !html.contains("<script>"),
        "{html}"
    );
    // Two wrong codes are allowed; the third makes the address wait.
    for code in ["BCDF-GHJK", "BCDF-GHJL"] {
        let page = flow.get(&format!("/device?user_code={code}")).await;
        assert_eq!(page.status(), StatusCode::BAD_REQUEST);
    }
    let throttled = flow.get("/device?user_code=BCDF-GHJM").await;
    assert_eq!(throttled.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(throttled.headers().contains_key(RETRY_AFTER));
    assert!(throttled
        .text()
        .await
        .unwrap()
        .contains("Too many wrong codes"));
    // A POST without the form's token decides nothing.
    let forged = flow
        .browser
        .post(flow.app.url("/device"))
        .form(&[("user_code", "BCDF-GHJK"), ("decision", "allow")])
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), StatusCode::BAD_REQUEST);
    assert!(forged.text().await.unwrap().contains("Form expired"));
}

/// An unmodified client library (the `openidconnect` crate, over `oauth2`'s RFC 8628
/// support) drives the device side: it asks, shows the code, and polls at the interval it was
/// given until the person approves.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openidconnect_crate_drives_the_device_grant_unchanged() {
    use openidconnect::core::{CoreClient, CoreDeviceAuthorizationResponse, CoreProviderMetadata};
    use openidconnect::{
        ClientId, DeviceAuthorizationUrl, IssuerUrl, OAuth2TokenResponse, Scope, TokenResponse,
    };

    let flow = Flow::new(Kind::Postgres).await;
    flow.user("dave", &[]).await;
    flow.set("device_poll_interval", "1").await;
    let registered = flow.client(tv_client()).await;
    let http = openidconnect::reqwest::ClientBuilder::new()
        .redirect(openidconnect::reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let metadata = CoreProviderMetadata::discover_async(
        IssuerUrl::new(flow.app.address.clone()).unwrap(),
        &http,
    )
    .await
    .expect("discovery");
    let discovery: Value = flow
        .get("/.well-known/openid-configuration")
        .await
        .json()
        .await
        .unwrap();
    let endpoint = discovery["device_authorization_endpoint"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(discovery["grant_types_supported"]
        .as_array()
        .unwrap()
        .contains(&Value::from(DEVICE_GRANT)));
    let client = CoreClient::from_provider_metadata(
        metadata,
        ClientId::new(registered.client_id.to_string()),
        None,
    )
    .set_device_authorization_url(DeviceAuthorizationUrl::new(endpoint).unwrap());

    let details: CoreDeviceAuthorizationResponse = client
        .exchange_device_code()
        .add_scope(Scope::new("profile".into()))
        .request_async(&http)
        .await
        .expect("device authorization");
    let user_code = details.user_code().secret().to_owned();
    let person = async {
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        let page = approval_page(&flow, "dave", &user_code).await;
        let html = page.text().await.unwrap();
        let done = flow
            .submit(&html, "/device", &[("decision", "allow")])
            .await;
        assert_eq!(done.status(), StatusCode::OK);
    };
    let device = async {
        client
            .exchange_device_access_token(&details)
            .unwrap()
            .request_async(
                &http,
                tokio::time::sleep,
                Some(std::time::Duration::from_secs(30)),
            )
            .await
            .expect("the device gets its tokens")
    };
    let ((), tokens) = tokio::join!(person, device);
    assert!(!tokens.access_token().secret().is_empty());
    assert!(tokens.refresh_token().is_some());
    let id_token = tokens.id_token().expect("an ID token: openid was asked");
    let claims = id_token
        .claims(
            &client.id_token_verifier(),
            |_: Option<&openidconnect::Nonce>| Ok(()),
        )
        .expect("the ID token verifies against the JWKS");
    assert_eq!(claims.subject().as_str(), "dave");
}
