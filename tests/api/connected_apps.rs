//! Connected Apps: authledger as a client of another provider, here a second authledger
//! server on loopback (a real OpenID provider, no mock). A person connects their account
//! through both servers' pages; services fetch a fresh token from the admin API; expiry
//! forces one refresh however many ask at once; a refresh the provider refuses asks the
//! person to connect again; disconnecting revokes at the provider; the app's own token comes
//! from client credentials. No token or secret reaches the log or the database in clear.

use authledger::admin::clients::{ClientInput, NewClient};
use authledger_projections::on_db;
use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{cli_json, cli_with_env, Kind, TestApp};
use crate::oauth::flow::*;

/// Our server and the provider, with alice at both and authledger registered at the
/// provider as a confidential client.
struct Pair {
    ours: Flow,
    theirs: Flow,
    /// authledger's registration at the provider.
    registration: NewClient,
    admin: String,
}

impl Pair {
    async fn new(kind: Kind) -> Pair {
        let ours = Flow::new(kind).await;
        let theirs = Flow::new(Kind::Sqlite).await;
        ours.user("alice", &[]).await;
        theirs.user("alice", &[]).await;
        let registration = theirs
            .client(ClientInput {
                name: "authledger next door".into(),
                redirect_uris: vec![ours.app.url("/connected-apps/provider/callback")],
                grant_types: vec![
                    "authorization_code".into(),
                    "refresh_token".into(),
                    "client_credentials".into(),
                ],
                scope: Some("openid profile email".into()),
                ..ClientInput::default()
            })
            .await;
        let admin = admin_token(&ours).await;
        Pair {
            ours,
            theirs,
            registration,
            admin,
        }
    }

    /// `connected-app create` with the CLI, as an administrator would.
    async fn create_app(&self) -> Value {
        let db = self.ours.app.db.shared();
        let discovery = self.theirs.app.url("/.well-known/openid-configuration");
        let client_id = self.registration.client_id.to_string();
        let secret = self.secret();
        let issuer = self.ours.app.address.clone();
        let output = tokio::task::spawn_blocking(move || {
            cli_with_env(
                &db,
                &[
                    "connected-app",
                    "create",
                    "--name",
                    "Provider",
                    "--openid-configuration",
                    &discovery,
                    "--client-id",
                    &client_id,
                    "--client-secret-stdin",
                    "--scope",
                    "openid email",
                ],
                &format!("{secret}\n"),
                &[("AUTHLEDGER_ISSUER", &issuer)],
            )
        })
        .await
        .unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        self.ours.app.settle().await;
        serde_json::from_slice(&output.stdout).unwrap()
    }

    /// authledger's client secret at the provider.
    fn secret(&self) -> String {
        let secret = self.registration.client_secret.as_ref().unwrap();
        secret.reveal().to_owned()
    }

    /// The console's new-app form (`form`, its page) sent as an administrator fills it in.
    async fn create_in_console(&self, form: &str, discovery: &str) -> reqwest::Response {
        let client_id = self.registration.client_id.to_string();
        let fields = [
            ("name", "Provider"),
            ("openid_configuration", discovery),
            ("client_id", &client_id),
            ("client_secret", &self.secret()),
            ("scope", "openid email"),
        ];
        self.ours
            .submit(form, "/admin/connected-apps/new", &fields)
            .await
    }

    /// alice connects her account: our connect page, the provider's sign-in and consent,
    /// back to our callback. Returns the callback's URL (to replay it) and its answer.
    async fn connect(&self) -> (String, reqwest::Response) {
        let started = self
            .ours
            .get("/connected-apps/provider/connect?success_uri=/account")
            .await;
        assert_eq!(started.status(), StatusCode::SEE_OTHER);
        let to_provider = redirected(&started);
        assert!(
            to_provider
                .url
                .as_str()
                .starts_with(&self.theirs.app.url("/oauth/authorize")),
            "{}",
            to_provider.url
        );
        for (name, expected) in [
            ("code_challenge_method", Some("S256")),
            ("response_type", Some("code")),
            ("scope", Some("email openid")),
        ] {
            assert_eq!(to_provider.get(name), expected, "{name}");
        }
        assert!(
            to_provider.get("state").is_some()
                && to_provider.get("nonce").is_some()
                && to_provider.get("code_challenge").is_some()
        );
        let path = &to_provider.url.as_str()[self.theirs.app.address.len()..];
        let consent = self.theirs.get(path).await;
        let back = self.theirs.decide(consent, "allow").await;
        let callback = redirected(&back).url.to_string();
        assert!(
            callback.starts_with(&self.ours.app.url("/connected-apps/provider/callback")),
            "{callback}"
        );
        let answer = self.ours.browser.get(&callback).send().await.unwrap();
        (callback, answer)
    }

    async fn token(&self, user: Option<&str>) -> (StatusCode, Value) {
        let query = user.map(|u| format!("?user={u}")).unwrap_or_default();
        admin(
            &self.ours,
            &self.admin,
            reqwest::Method::GET,
            &format!("/connected-apps/provider/token{query}"),
            None,
        )
        .await
    }

    async fn introspect_at_provider(&self, token: &str) -> Value {
        let (_, _, body) = self
            .theirs
            .token_at(
                "/oauth/introspect",
                Auth::Basic(&self.registration),
                &[("token", token)],
            )
            .await;
        body
    }

    async fn connection_events(&self, id: &str) -> Vec<String> {
        self.ours.app.settle().await;
        self.ours.history("AppConnection", id).await
    }

    /// Every event's payload and metadata, and every row of the vault's tables, as text.
    async fn everything_stored(&self) -> String {
        let db = &self.ours.app.store.db;
        let mut all = String::new();
        for sql in [
            "SELECT CAST(payload AS TEXT) || ' ' || CAST(metadata AS TEXT) FROM events",
            "SELECT sealed_access_token || ' ' || COALESCE(sealed_refresh_token, '') FROM provider_token_cache",
            "SELECT sealed_secret FROM connected_app_secrets",
            "SELECT config FROM connected_app_view",
        ] {
            let rows: Vec<String> = on_db!(db, pool => sqlx::query_scalar(sql).fetch_all(pool).await).unwrap();
            all.push_str(&rows.join("\n"));
        }
        all
    }
}

on_both_stores! {
    async fn a_person_connects_through_both_servers_and_services_get_fresh_tokens(kind: Kind) {
        let mut pair = Pair::new(kind).await;
        // Access tokens at the provider live 66 s: 6 s fresh, then within the 60 s margin.
        pair.theirs.set("access_token_ttl", "66").await;
        let created = pair.create_app().await;
        assert_eq!(created["id"], "provider");
        assert_eq!(created["redirect_uri"], pair.ours.app.url("/connected-apps/provider/callback"));
        assert_eq!(created["token_uri"], pair.theirs.app.url("/oauth/token"), "from discovery");
        assert_eq!(created["jwks_uri"], pair.theirs.app.url("/oauth/jwks"));
        assert!(created.get("client_secret").is_none(), "never shown again");

        // Signed out: to our sign-in page and back.
        let signed_out = pair.ours.get("/connected-apps/provider/connect").await;
        assert_eq!(signed_out.status(), StatusCode::SEE_OTHER);
        assert!(redirected(&signed_out).url.path() == "/login");
        pair.ours.sign_in("alice").await;
        pair.theirs.sign_in("alice").await;
        let (callback, answer) = pair.connect().await;
        assert_eq!(answer.status(), StatusCode::SEE_OTHER, "{}", answer.text().await.unwrap());
        assert_eq!(answer.headers()["location"], "/account");
        assert_eq!(pair.connection_events("provider:alice").await, vec!["TokensObtained"]);
        let now = chrono::Utc::now().to_rfc3339();
        let state = cli_json(&pair.ours.app.db, &["state", "connection:provider:alice", "--as-of", &now]);
        assert_eq!(state["state"]["state"]["subject"], "alice", "the ID token was verified and its subject kept: {state}");

        // The same answer again connects nothing: the attempt went with its first use.
        let replayed = pair.ours.browser.get(&callback).send().await.unwrap();
        assert_eq!(replayed.status(), StatusCode::BAD_REQUEST);
        assert!(replayed.text().await.unwrap().contains("Nothing was connected"));

        // The console lists the app with alice connected.
        pair.ours.user("boss", &["admin"]).await;
        pair.ours.fresh_browser();
        pair.ours.sign_in("boss").await;
        let html = pair.ours.get("/admin/connected-apps").await.text().await.unwrap();
        assert!(html.contains("Provider") && html.contains("<td data-label=\"People connected\">1</td>"), "{html}");
        pair.ours.fresh_browser();
        pair.ours.sign_in("alice").await;

        // A service asks for alice's token: the one obtained, valid at the provider.
        let (status, first) = pair.token(Some("alice")).await;
        assert_eq!(status, StatusCode::OK, "{first}");
        let first_token = first["access_token"].as_str().unwrap().to_owned();
        assert_eq!(first["token_type"], "Bearer");
        let at_provider = pair.introspect_at_provider(&first_token).await;
        assert_eq!(at_provider["active"], true, "{at_provider}");
        assert_eq!(at_provider["username"], "alice");

        // Once it is about to expire, a hundred requests at once cause one refresh, with
        // `connected-app token` run at the same moment in other processes on the same store.
        tokio::time::sleep(std::time::Duration::from_millis(6_300)).await;
        let asks = (0..100).map(|_| pair.token(Some("alice")));
        let cli_asks = (0..3).map(|_| {
            let db = pair.ours.app.db.shared();
            tokio::task::spawn_blocking(move || {
                cli_with_env(&db, &["connected-app", "token", "provider", "--user", "alice"], "", &[])
            })
        });
        let (answers, from_cli) = tokio::join!(futures::future::join_all(asks), futures::future::join_all(cli_asks));
        let mut tokens: std::collections::BTreeSet<String> = answers
            .iter()
            .map(|(status, body)| {
                assert_eq!(*status, StatusCode::OK, "{body}");
                body["access_token"].as_str().unwrap().to_owned()
            })
            .collect();
        for output in from_cli {
            let output = output.unwrap();
            assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
            let answer: Value = serde_json::from_slice(&output.stdout).unwrap();
            tokens.insert(answer["access_token"].as_str().unwrap().to_owned());
        }
        assert_eq!(tokens.len(), 1, "every caller got the one refreshed token");
        assert!(!tokens.contains(&first_token), "refreshed");
        assert_eq!(pair.connection_events("provider:alice").await, vec!["TokensObtained", "ProviderTokensRefreshed"]);

        // The app's own token, from client credentials.
        let (status, own) = pair.token(None).await;
        assert_eq!(status, StatusCode::OK, "{own}");
        let own_token = own["access_token"].as_str().unwrap().to_owned();
        let at_provider = pair.introspect_at_provider(&own_token).await;
        assert_eq!(at_provider["active"], true);
        assert_eq!(at_provider["client_id"], pair.registration.client_id.to_string());

        // Nothing secret in the log or the database.
        let stored = pair.everything_stored().await;
        let secret = pair.registration.client_secret.as_ref().unwrap().reveal();
        for value in tokens.iter().chain([&first_token, &own_token]).map(String::as_str).chain([secret]) {
            assert!(!stored.contains(value), "a secret is stored in clear");
        }

        // The provider withdraws alice's consent (her refresh token with it): at the next
        // refresh the service is told she must connect again.
        let withdrawn = crate::helpers::cli(&pair.theirs.app.db, &["consent", "revoke", "--user", "alice", "--client", pair.registration.client_id.as_str()]);
        assert!(withdrawn.status.success());
        tokio::time::sleep(std::time::Duration::from_millis(6_300)).await;
        let (status, refused) = pair.token(Some("alice")).await;
        assert_eq!(status, StatusCode::CONFLICT, "{refused}");
        assert!(refused["error_description"].as_str().unwrap().contains("alice must connect again at /connected-apps/provider/connect"), "{refused}");
        assert_eq!(pair.connection_events("provider:alice").await.last().unwrap(), "ConnectionLost");

        // She connects again, then gives it up: revoked at the provider.
        pair.theirs.fresh_browser();
        pair.theirs.sign_in("alice").await;
        let (_, answer) = pair.connect().await;
        assert_eq!(answer.status(), StatusCode::SEE_OTHER);
        let (_, again) = pair.token(Some("alice")).await;
        let again = again["access_token"].as_str().unwrap().to_owned();
        pair.ours.app.settle().await;
        let page = pair.ours.get("/account").await.text().await.unwrap();
        assert!(page.contains("Your accounts elsewhere") && page.contains("Provider"), "{page}");
        let form = crate::people::forms(&page, "/account/connected-apps/disconnect").remove(0);
        let gone = pair.ours.browser.post(pair.ours.app.url("/account/connected-apps/disconnect")).form(&form).send().await.unwrap();
        assert_eq!(gone.status(), StatusCode::SEE_OTHER);
        assert_eq!(pair.introspect_at_provider(&again).await["active"], false, "revoked at the provider");
        let page = pair.ours.get("/account?done=disconnected").await.text().await.unwrap();
        assert!(page.contains("No account at another service is connected"), "{page}");
        let (status, _) = admin(&pair.ours, &pair.admin, reqwest::Method::POST, "/connected-apps/provider/disconnect?user=alice", None).await;
        assert_eq!(status, StatusCode::CONFLICT, "given up already");
        let (status, _) = pair.token(Some("alice")).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(pair.connection_events("provider:alice").await.last().unwrap(), "Disconnected");
    }
}

on_both_stores! {
    async fn a_forged_or_foreign_answer_connects_nothing(kind: Kind) {
        let pair = Pair::new(kind).await;
        pair.create_app().await;
        pair.ours.sign_in("alice").await;
        let started = pair.ours.get("/connected-apps/provider/connect").await;
        let state = redirected(&started).get("state").unwrap().to_owned();

        // Someone else's code and state, delivered to alice's browser (login CSRF).
        let forged = pair.ours.get("/connected-apps/provider/callback?code=alac_forged&state=not-the-one").await;
        assert_eq!(forged.status(), StatusCode::BAD_REQUEST);
        assert!(forged.text().await.unwrap().contains("its state differs"));

        // The right state, but in another browser that began nothing.
        let mut stranger = Flow::with_app(TestApp::spawn(Kind::Sqlite).await).await;
        stranger.fresh_browser();
        let elsewhere = stranger.browser.get(pair.ours.app.url(&format!("/connected-apps/provider/callback?code=x&state={state}"))).send().await.unwrap();
        assert_eq!(elsewhere.status(), StatusCode::BAD_REQUEST);

        // The provider refused: said so, nothing kept.
        let started = pair.ours.get("/connected-apps/provider/connect").await;
        let state = redirected(&started).get("state").unwrap().to_owned();
        let denied = pair.ours.get(&format!("/connected-apps/provider/callback?error=access_denied&state={state}")).await;
        assert_eq!(denied.status(), StatusCode::BAD_GATEWAY);
        assert!(denied.text().await.unwrap().contains("access_denied"));

        // A code the provider never issued: its token endpoint's refusal, nothing kept.
        let started = pair.ours.get("/connected-apps/provider/connect").await;
        let state = redirected(&started).get("state").unwrap().to_owned();
        let bad_code = pair.ours.get(&format!("/connected-apps/provider/callback?code=alac_bogus&state={state}")).await;
        assert_eq!(bad_code.status(), StatusCode::BAD_GATEWAY);
        assert!(bad_code.text().await.unwrap().contains("invalid_grant"));
        assert!(pair.connection_events("provider:alice").await.is_empty());

        // An unknown app, and a bad id.
        assert_eq!(pair.ours.get("/connected-apps/nope/connect").await.status(), StatusCode::NOT_FOUND);
        assert_eq!(pair.ours.get("/connected-apps/..%2Fx/connect").await.status(), StatusCode::NOT_FOUND);
        let listed = cli_json(&pair.ours.app.db, &["connected-app", "list"]);
        assert_eq!(listed.as_array().unwrap().len(), 1);
    }
}

/// A port nothing listens on.
fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_or_confused_provider_gets_a_clear_error_and_nothing_is_kept() {
    let pair = Pair::new(Kind::Sqlite).await;
    let db = pair.ours.app.db.shared();
    let theirs = pair.theirs.app.address.clone();
    let outputs = tokio::task::spawn_blocking(move || {
        let create = |extra: &[&str], stdin: &str| {
            let mut args = vec!["connected-app", "create", "--client-id", "x"];
            args.extend_from_slice(extra);
            cli_with_env(&db, &args, stdin, &[])
        };
        let closed = format!(
            "http://127.0.0.1:{}/.well-known/openid-configuration",
            closed_port()
        );
        let html = format!("{theirs}/login");
        vec![
            // Nothing listens there.
            create(
                &[
                    "--name",
                    "Closed",
                    "--openid-configuration",
                    &closed,
                    "--client-secret-stdin",
                ],
                "s\n",
            ),
            // A page for people, not a discovery document.
            create(
                &[
                    "--name",
                    "Html",
                    "--openid-configuration",
                    &html,
                    "--client-secret-stdin",
                ],
                "s\n",
            ),
            // No secret given.
            create(
                &[
                    "--name",
                    "Secretless",
                    "--authorization-uri",
                    &html,
                    "--token-uri",
                    &html,
                ],
                "",
            ),
            // An extra parameter that would replace one of the flow's.
            create(
                &[
                    "--name",
                    "Sneaky",
                    "--authorization-uri",
                    &html,
                    "--token-uri",
                    &html,
                    "--param",
                    "state=fixed",
                    "--client-secret-stdin",
                ],
                "s\n",
            ),
            // Its token endpoint is a page for people: created (nothing is called yet).
            create(
                &[
                    "--name",
                    "Confused",
                    "--authorization-uri",
                    &format!("{theirs}/oauth/authorize"),
                    "--token-uri",
                    &html,
                    "--client-secret-stdin",
                ],
                "s\n",
            ),
        ]
    })
    .await
    .unwrap();
    let said = |n: usize| String::from_utf8_lossy(&outputs[n].stderr).to_string();
    assert!(
        !outputs[0].status.success() && said(0).contains("could not be reached"),
        "{}",
        said(0)
    );
    assert!(
        !outputs[1].status.success() && said(1).contains("something other than a JSON object"),
        "{}",
        said(1)
    );
    assert!(
        !outputs[2].status.success() && said(2).contains("--client-secret-stdin"),
        "{}",
        said(2)
    );
    assert!(
        !outputs[3].status.success() && said(3).contains("`state`"),
        "{}",
        said(3)
    );
    assert!(outputs[4].status.success(), "{}", said(4));
    pair.ours.app.settle().await;

    // The app's own token from a token endpoint that answers HTML: a 502 that says so.
    let (status, body) = admin(
        &pair.ours,
        &pair.admin,
        reqwest::Method::GET,
        "/connected-apps/confused/token",
        None,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_GATEWAY, "{body}");
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("something other than a JSON object"),
        "{body}"
    );
    assert!(
        pair.connection_events("confused:").await.is_empty(),
        "nothing recorded"
    );
    let listed = cli_json(&pair.ours.app.db, &["connected-app", "list"]);
    assert_eq!(
        listed.as_array().unwrap().len(),
        1,
        "only the one created: {listed}"
    );

    // Pointed at the provider's real token endpoint, the same request gets a token.
    let token_uri = pair.theirs.app.url("/oauth/token");
    let client_id = pair.registration.client_id.to_string();
    let secret = pair
        .registration
        .client_secret
        .as_ref()
        .unwrap()
        .reveal()
        .to_owned();
    let db = pair.ours.app.db.shared();
    let updated = tokio::task::spawn_blocking(move || {
        cli_with_env(
            &db,
            &[
                "connected-app",
                "update",
                "confused",
                "--token-uri",
                &token_uri,
                "--client-id",
                &client_id,
                "--client-secret-stdin",
            ],
            &format!("{secret}\n"),
            &[],
        )
    })
    .await
    .unwrap();
    assert!(
        updated.status.success(),
        "{}",
        String::from_utf8_lossy(&updated.stderr)
    );
    let shown: Value = serde_json::from_slice(&updated.stdout).unwrap();
    assert_eq!(
        shown["authorization_uri"],
        pair.theirs.app.url("/oauth/authorize"),
        "what was not given stays"
    );
    pair.ours.app.settle().await;
    let (status, body) = admin(
        &pair.ours,
        &pair.admin,
        reqwest::Method::GET,
        "/connected-apps/confused/token",
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        pair.ours.history("ConnectedApp", "confused").await,
        vec![
            "ConnectedAppCreated",
            "ConnectedAppUpdated",
            "ConnectedAppSecretChanged"
        ]
    );
}

/// An administrator sets the app up from the console alone: the form reads the provider's
/// discovery document, a refused field is answered next to it with what was typed kept (the
/// secret never echoed), the created page shows the redirect URI to register, and a person
/// connects through it. The edit form changes the scope and keeps the sealed secret; the
/// delete form wants the name typed. An auditor gets none of the forms.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_administrator_sets_up_a_connected_app_from_the_console() {
    let mut pair = Pair::new(Kind::Sqlite).await;
    pair.ours.user("boss", &["admin"]).await;
    pair.ours.sign_in("boss").await;
    let list = pair
        .ours
        .get("/admin/connected-apps")
        .await
        .text()
        .await
        .unwrap();
    assert!(
        list.contains("href=\"/admin/connected-apps/new\""),
        "{list}"
    );
    let form = pair
        .ours
        .get("/admin/connected-apps/new")
        .await
        .text()
        .await
        .unwrap();
    let secret = pair.secret();

    // Not a URL: refused next to its field, the name kept, the secret not sent back.
    let refused = pair.create_in_console(&form, "not a url").await;
    assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
    let html = refused.text().await.unwrap();
    assert!(
        html.contains("openid_configuration:") && html.contains("value=\"Provider\""),
        "{html}"
    );
    assert!(!html.contains(&secret), "the secret is never echoed");
    // Nothing listens there: the provider could not be reached, nothing created.
    let closed = format!(
        "http://127.0.0.1:{}/.well-known/openid-configuration",
        closed_port()
    );
    let unreachable = pair.create_in_console(&form, &closed).await;
    assert_eq!(unreachable.status(), StatusCode::BAD_GATEWAY);
    assert!(unreachable
        .text()
        .await
        .unwrap()
        .contains("could not be reached"));

    let discovery = pair.theirs.app.url("/.well-known/openid-configuration");
    let created = pair.create_in_console(&form, &discovery).await;
    assert_eq!(created.status(), StatusCode::CREATED);
    let html = created.text().await.unwrap();
    assert!(
        html.contains(&pair.ours.app.url("/connected-apps/provider/callback")),
        "{html}"
    );
    assert!(!html.contains(&secret));
    pair.ours.app.settle().await;
    let shown = cli_json(&pair.ours.app.db, &["connected-app", "show", "provider"]);
    assert_eq!(
        shown["token_uri"],
        pair.theirs.app.url("/oauth/token"),
        "from discovery: {shown}"
    );
    let audit = crate::helpers::cli(
        &pair.ours.app.db,
        &["audit", "--type", "ConnectedAppCreated", "--format", "json"],
    );
    assert!(String::from_utf8_lossy(&audit.stdout).contains("\"actor\":\"user:boss\""));

    // A person connects through it.
    pair.ours.fresh_browser();
    pair.ours.sign_in("alice").await;
    pair.theirs.sign_in("alice").await;
    let (_, answer) = pair.connect().await;
    assert_eq!(
        answer.status(),
        StatusCode::SEE_OTHER,
        "{}",
        answer.text().await.unwrap()
    );

    // The edit form: a new scope, the secret left empty (kept: tokens still come).
    pair.ours.fresh_browser();
    pair.ours.sign_in("boss").await;
    let edit = "/admin/connected-apps/provider/edit";
    let html = pair.ours.get(edit).await.text().await.unwrap();
    assert!(
        html.contains("value=\"email openid\"") && !html.contains(&secret),
        "{html}"
    );
    let client_id = pair.registration.client_id.to_string();
    let saved = pair
        .ours
        .submit(
            &html,
            edit,
            &[
                ("name", "Provider"),
                ("client_id", &client_id),
                ("scope", "openid email profile"),
                ("client_secret", ""),
            ],
        )
        .await;
    assert_eq!(
        saved.status(),
        StatusCode::SEE_OTHER,
        "{}",
        saved.text().await.unwrap()
    );
    pair.ours.app.settle().await;
    let shown = cli_json(&pair.ours.app.db, &["connected-app", "show", "provider"]);
    assert_eq!(shown["scope"], "email openid profile", "{shown}");
    let (status, token) = pair.token(None).await;
    assert_eq!(status, StatusCode::OK, "the sealed secret stayed: {token}");

    // An auditor sees the list, and no form.
    pair.ours.user("watcher", &["auditor"]).await;
    pair.ours.fresh_browser();
    pair.ours.sign_in("watcher").await;
    let list = pair
        .ours
        .get("/admin/connected-apps")
        .await
        .text()
        .await
        .unwrap();
    assert!(
        list.contains("Provider") && !list.contains("/admin/connected-apps/new"),
        "{list}"
    );
    assert_eq!(pair.ours.get(edit).await.status(), StatusCode::FORBIDDEN);

    // Deleting wants the name typed.
    pair.ours.fresh_browser();
    pair.ours.sign_in("boss").await;
    let html = pair.ours.get(edit).await.text().await.unwrap();
    let delete = "/admin/connected-apps/provider/delete";
    let wrong = pair
        .ours
        .submit(&html, delete, &[("confirm_name", "provider")])
        .await;
    assert_eq!(wrong.status(), StatusCode::BAD_REQUEST);
    let deleted = pair
        .ours
        .submit(&html, delete, &[("confirm_name", "Provider")])
        .await;
    assert_eq!(deleted.status(), StatusCode::SEE_OTHER);
    pair.ours.app.settle().await;
    let listed = cli_json(&pair.ours.app.db, &["connected-app", "list"]);
    assert_eq!(listed, serde_json::json!([]));
}

/// A provider that hands out a token of another type than Bearer (RFC 6750): authledger
/// could not present it, so it is not kept, and the service asking is told why. The provider
/// here is a stand-in that answers only that, since no real provider on loopback issues
/// such tokens.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_of_another_type_than_bearer_is_refused_and_not_kept() {
    let pair = Pair::new(Kind::Sqlite).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let provider = format!("http://{}", listener.local_addr().unwrap());
    let answers = axum::Router::new().route(
        "/token",
        axum::routing::post(|| async {
            axum::Json(serde_json::json!({
                "access_token": "mac-token-value",
                "token_type": "mac",
                "expires_in": 3600,
                "mac_key": "k",
            }))
        }),
    );
    tokio::spawn(async move { axum::serve(listener, answers).await });

    let db = pair.ours.app.db.shared();
    let (authorize, token) = (format!("{provider}/authorize"), format!("{provider}/token"));
    let created = tokio::task::spawn_blocking(move || {
        let args = [
            "connected-app",
            "create",
            "--name",
            "Mac",
            "--client-id",
            "x",
            "--authorization-uri",
            &authorize,
            "--token-uri",
            &token,
            "--client-secret-stdin",
        ];
        cli_with_env(&db, &args, "s\n", &[])
    })
    .await
    .unwrap();
    assert!(
        created.status.success(),
        "{}",
        String::from_utf8_lossy(&created.stderr)
    );
    pair.ours.app.settle().await;

    let (status, body) = admin(
        &pair.ours,
        &pair.admin,
        reqwest::Method::GET,
        "/connected-apps/mac/token",
        None,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_GATEWAY, "{body}");
    let said = body["error_description"].as_str().unwrap();
    assert!(
        said.contains("`mac` token") && said.contains("only Bearer"),
        "{body}"
    );
    assert!(!body.to_string().contains("mac-token-value"));
    assert!(
        pair.connection_events("mac:").await.is_empty(),
        "nothing recorded"
    );
    assert!(!pair.everything_stored().await.contains("mac-token-value"));
}

/// Everything the servers log while a person connects, a service fetches tokens (the
/// person's and the app's own) and the person disconnects, at debug level: none of the
/// secrets that pass through (authledger's client secret at the provider, the code, the
/// provider's tokens) is in it.
///
/// The capture runs in a process of its own (this test binary, running only
/// [`server_log_capture`]): among the other tests' threads, some of the call sites it needs
/// were missed by the one process-wide subscriber.
#[test]
fn the_server_log_holds_no_secret_of_a_connection() {
    let output = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "connected_apps::server_log_capture",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && said.contains("1 passed"),
        "{said}{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// The body of [`the_server_log_holds_no_secret_of_a_connection`], alone in its process. One
/// thread, so that the servers' tasks log where it captures.
#[tokio::test(flavor = "current_thread")]
#[ignore = "run in its own process by the_server_log_holds_no_secret_of_a_connection"]
async fn server_log_capture() {
    let captured = crate::helpers::LogCapture::start();
    let pair = Pair::new(Kind::Sqlite).await;
    pair.create_app().await;
    pair.ours.sign_in("alice").await;
    pair.theirs.sign_in("alice").await;
    let (callback, answer) = pair.connect().await;
    assert_eq!(answer.status(), StatusCode::SEE_OTHER);
    let code = reqwest::Url::parse(&callback)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "code")
        .map(|(_, v)| v.into_owned())
        .unwrap();
    let (_, person) = pair.token(Some("alice")).await;
    let (_, own) = pair.token(None).await;
    // In another thread: this one runs both servers, and the CLI calls the provider.
    let db = pair.ours.app.db.shared();
    let disconnected = tokio::task::spawn_blocking(move || {
        crate::helpers::cli(
            &db,
            &["connected-app", "disconnect", "provider", "--user", "alice"],
        )
    })
    .await
    .unwrap();
    assert!(
        disconnected.status.success(),
        "{}",
        String::from_utf8_lossy(&disconnected.stderr)
    );

    let log = captured.text();
    assert!(
        log.contains("route=/connected-apps/{id}/callback"),
        "the requests are logged: {log}"
    );
    for secret in [
        pair.secret(),
        code,
        person["access_token"].as_str().unwrap().to_owned(),
        own["access_token"].as_str().unwrap().to_owned(),
    ] {
        assert!(!log.contains(&secret), "a secret in the log: {log}");
    }
}
