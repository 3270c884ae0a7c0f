//! Social login: people sign in here through another provider, a second authledger server
//! on loopback (a real OpenID provider; Frappe's "Add Primary Server"). The first sign-in
//! links an account by a trusted email or creates one; the next signs the linked person in;
//! sign-ups can be denied; an unverified email links nothing; a forged or replayed answer
//! signs no one in; the plain OAuth 2 preset reads the person from the user-info endpoint.

use authledger::admin::clients::{ClientInput, NewClient};
use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{cli_json, cli_with_env, Kind};
use crate::oauth::flow::*;

pub(crate) struct Pair {
    pub(crate) ours: Flow,
    pub(crate) theirs: Flow,
}

impl Pair {
    pub(crate) async fn new(kind: Kind) -> Pair {
        let ours = Flow::new(kind).await;
        let theirs = Flow::new(Kind::Sqlite).await;
        for person in ["alice", "carol", "dave"] {
            theirs.user(person, &[]).await;
        }
        ours.user("alice", &[]).await;
        Pair { ours, theirs }
    }

    /// authledger's registration at the provider, for the provider `id` here.
    async fn registration(&self, id: &str) -> NewClient {
        self.theirs
            .client(ClientInput {
                name: format!("authledger ({id})"),
                redirect_uris: vec![self.ours.app.url(&format!("/login/social/{id}/callback"))],
                scope: Some("openid profile email".into()),
                skip_authorization: true,
                ..ClientInput::default()
            })
            .await
    }

    pub(crate) async fn create(&self, registration: &NewClient, args: &[&str]) -> Value {
        let db = self.ours.app.db.shared();
        let secret = registration
            .client_secret
            .as_ref()
            .unwrap()
            .reveal()
            .to_owned();
        let mut all: Vec<String> = [
            "social-login",
            "create",
            "--client-id",
            registration.client_id.as_str(),
            "--client-secret-stdin",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        all.extend(args.iter().map(|s| s.to_string()));
        let issuer = self.ours.app.address.clone();
        let output = tokio::task::spawn_blocking(move || {
            let args: Vec<&str> = all.iter().map(String::as_str).collect();
            cli_with_env(
                &db,
                &args,
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

    /// `who` signs in here through the provider `id`; returns our callback's answer and URL.
    pub(crate) async fn sign_in_through(
        &mut self,
        id: &str,
        who: &str,
    ) -> (reqwest::Response, String) {
        self.ours.fresh_browser();
        self.theirs.fresh_browser();
        self.theirs.sign_in(who).await;
        let started = self
            .ours
            .get(&format!("/login/social/{id}?return_to=/account"))
            .await;
        assert_eq!(started.status(), StatusCode::SEE_OTHER);
        let to_provider = redirected(&started);
        assert_eq!(to_provider.get("code_challenge_method"), Some("S256"));
        assert!(to_provider.get("state").is_some() && to_provider.get("nonce").is_some());
        let path = &to_provider.url.as_str()[self.theirs.app.address.len()..];
        let back = self.theirs.get(path).await;
        assert_eq!(
            back.status(),
            StatusCode::SEE_OTHER,
            "{}",
            back.text().await.unwrap()
        );
        let callback = redirected(&back).url.to_string();
        (
            self.ours.browser.get(&callback).send().await.unwrap(),
            callback,
        )
    }
}

on_both_stores! {
    async fn people_sign_in_through_another_authledger_linked_or_new(kind: Kind) {
        let mut pair = Pair::new(kind).await;
        let registration = pair.registration("primary").await;
        let created = pair.create(&registration, &["--name", "Primary", "--base-url", &pair.theirs.app.address, "--trusted-emails"]).await;
        assert_eq!(created["id"], "primary");
        assert_eq!(created["redirect_uri"], pair.ours.app.url("/login/social/primary/callback"));
        assert_eq!(created["identification"]["kind"], "open_id");

        let login = pair.ours.get("/login").await.text().await.unwrap();
        assert!(login.contains("href=\"/login/social/primary\"") && login.contains("Sign in with Primary"), "{login}");

        // alice has an account here with the same (trusted) email: linked, signed in.
        let (answer, callback) = pair.sign_in_through("primary", "alice").await;
        assert_eq!(answer.status(), StatusCode::SEE_OTHER, "{}", answer.text().await.unwrap());
        assert_eq!(answer.headers()["location"], "/account");
        let account = pair.ours.get("/account").await;
        assert_eq!(account.status(), StatusCode::OK);
        assert!(account.text().await.unwrap().contains("alice"));
        assert_eq!(pair.ours.history("ExternalIdentity", "primary:alice").await, vec!["IdentityLinked"]);
        let audit = cli_json(&pair.ours.app.db, &["audit", "--type", "LoginSucceeded", "--format", "json"]);
        assert!(audit.to_string().contains("sign-in succeeded (social:primary)"), "{audit}");

        // The same answer again signs no one in.
        pair.ours.fresh_browser();
        let replayed = pair.ours.browser.get(&callback).send().await.unwrap();
        assert_eq!(replayed.status(), StatusCode::BAD_REQUEST);

        // Next time: the link, nothing new.
        let (answer, _) = pair.sign_in_through("primary", "alice").await;
        assert_eq!(answer.status(), StatusCode::SEE_OTHER);
        assert_eq!(pair.ours.history("ExternalIdentity", "primary:alice").await, vec!["IdentityLinked"]);

        // carol has no account here: sign-ups are allowed, so one is made from her claims.
        let (answer, _) = pair.sign_in_through("primary", "carol").await;
        assert_eq!(answer.status(), StatusCode::SEE_OTHER, "{}", answer.text().await.unwrap());
        let carol = cli_json(&pair.ours.app.db, &["user", "show", "carol"]);
        assert_eq!(carol["profile"]["email"], "carol@example.com", "{carol}");
        // Erasing carol unlinks her identity there too.
        pair.ours.app.settle().await;
        crate::helpers::cli_stdout(&pair.ours.app.db, &["user", "erase", "carol"]);
        pair.ours.app.settle().await;
        let identities = cli_json(&pair.ours.app.db, &["social-login", "identities", "--user", "carol"]);
        assert_eq!(identities, serde_json::json!([]), "{identities}");
        assert_eq!(pair.ours.history("ExternalIdentity", "primary:carol").await, vec!["IdentityLinked", "IdentityUnlinked"]);

        // Someone else's answer, delivered to this browser: its state is not this browser's.
        let started = pair.ours.get("/login/social/primary").await;
        assert_eq!(started.status(), StatusCode::SEE_OTHER);
        let forged = pair.ours.get("/login/social/primary/callback?code=alac_forged&state=theirs").await;
        assert_eq!(forged.status(), StatusCode::BAD_REQUEST);
        assert!(forged.text().await.unwrap().contains("its state differs"));

        // alice sees the link on her account page and undoes it; an admin sees the same.
        let (answer, _) = pair.sign_in_through("primary", "alice").await;
        assert_eq!(answer.status(), StatusCode::SEE_OTHER);
        pair.ours.app.settle().await;
        let identities = cli_json(&pair.ours.app.db, &["social-login", "identities", "--user", "alice"]);
        assert_eq!(identities[0]["provider_id"], "primary", "{identities}");
        let page = pair.ours.get("/account").await.text().await.unwrap();
        assert!(page.contains("Signing in through other servers") && page.contains("Primary"), "{page}");
        let form = crate::people::forms(&page, "/account/identities/unlink").remove(0);
        let unlinked = pair.ours.browser.post(pair.ours.app.url("/account/identities/unlink")).form(&form).send().await.unwrap();
        assert_eq!(unlinked.status(), StatusCode::SEE_OTHER);
        assert_eq!(pair.ours.history("ExternalIdentity", "primary:alice").await, vec!["IdentityLinked", "IdentityUnlinked"]);

        // The console lists it.
        pair.ours.user("boss", &["admin"]).await;
        pair.ours.fresh_browser();
        pair.ours.sign_in("boss").await;
        let html = pair.ours.get("/admin/social-logins").await.text().await.unwrap();
        assert!(html.contains("Primary") && html.contains("OpenID Connect") && html.contains("badge active"), "{html}");

        // Turned off, its button goes and its path answers 404; an icon shows on the button.
        let off = crate::helpers::cli(&pair.ours.app.db, &["social-login", "update", "primary", "--enabled", "false", "--icon", "https://icons.example/p.png"]);
        assert!(off.status.success(), "{}", String::from_utf8_lossy(&off.stderr));
        pair.ours.app.settle().await;
        pair.ours.fresh_browser();
        let login = pair.ours.get("/login").await.text().await.unwrap();
        assert!(login.contains("name=\"password\"") && !login.contains("/login/social/primary"), "{login}");
        assert_eq!(pair.ours.get("/login/social/primary").await.status(), StatusCode::NOT_FOUND);
        let on = crate::helpers::cli(&pair.ours.app.db, &["social-login", "update", "primary", "--enabled", "true"]);
        assert!(on.status.success());
        pair.ours.app.settle().await;
        assert!(pair.ours.get("/login").await.text().await.unwrap().contains("icons.example"));
        let refused = crate::helpers::cli(&pair.ours.app.db, &["social-login", "update", "primary", "--icon", "http://plain.example/p.png"]);
        assert!(!refused.status.success() && String::from_utf8_lossy(&refused.stderr).contains("https"));

        // RFC 9728: with Frappe's setting on, the provider's issuer is listed as an
        // authorization server of this resource.
        pair.ours.set("show_social_login_key_as_authorization_server", "true").await;
        let metadata: Value = pair.ours.get("/.well-known/oauth-protected-resource").await.json().await.unwrap();
        assert_eq!(metadata["authorization_servers"], serde_json::json!([pair.ours.app.address, pair.theirs.app.address]), "{metadata}");
        // Frappe's per-provider show_in_resource_metadata: off, it is no longer listed.
        let hidden = crate::helpers::cli(&pair.ours.app.db, &["social-login", "update", "primary", "--show-in-resource-metadata", "false"]);
        assert!(hidden.status.success(), "{}", String::from_utf8_lossy(&hidden.stderr));
        pair.ours.app.settle().await;
        let metadata: Value = pair.ours.get("/.well-known/oauth-protected-resource").await.json().await.unwrap();
        assert_eq!(metadata["authorization_servers"], serde_json::json!([pair.ours.app.address]), "{metadata}");
    }
}

on_both_stores! {
    async fn with_sign_ups_denied_an_unknown_or_unverified_person_gets_no_account(kind: Kind) {
        let mut pair = Pair::new(kind).await;
        // The plain OAuth 2 preset: the person is the user-info answer's `sub`.
        let registration = pair.registration("plain").await;
        let userinfo = pair.theirs.app.url("/oauth/userinfo");
        let authorize = pair.theirs.app.url("/oauth/authorize");
        let token = pair.theirs.app.url("/oauth/token");
        let created = pair
            .create(&registration, &[
                "--name", "Plain", "--authorize-url", &authorize, "--token-url", &token,
                "--api-endpoint", &userinfo, "--user-id-property", "sub",
                "--scope", "openid email", "--sign-ups", "deny",
            ])
            .await;
        assert_eq!(created["identification"]["property"], "sub");

        // dave has no account here, and sign-ups are denied.
        let (answer, _) = pair.sign_in_through("plain", "dave").await;
        assert_eq!(answer.status(), StatusCode::FORBIDDEN);
        assert!(answer.text().await.unwrap().contains("you have no account here"));
        let listed = cli_json(&pair.ours.app.db, &["user", "list"]);
        assert!(!listed.to_string().contains("dave"), "no account made: {listed}");

        // alice's email is not said to be verified and the provider is not trusted for
        // emails: her account here is not taken over.
        let (answer, _) = pair.sign_in_through("plain", "alice").await;
        assert_eq!(answer.status(), StatusCode::FORBIDDEN);
        assert!(pair.ours.history("ExternalIdentity", "plain:alice").await.is_empty());
    }
}

/// The checks on a provider's ID token, against a real one: the second server's, issued to
/// one client with one nonce.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_id_token_for_another_audience_or_with_another_nonce_is_refused() {
    use authledger::connected_apps::provider::ProviderClient;
    use authledger_domain::oauth::WebUrl;

    let theirs = Flow::new(Kind::Sqlite).await;
    theirs.user("alice", &[]).await;
    let client = theirs.client(web_client()).await;
    let (verifier, challenge) = pkce();
    let code = theirs
        .code(
            &client,
            "alice",
            &[("scope", "openid"), ("nonce", "n-1")],
            &challenge,
        )
        .await;
    let (status, _, tokens) = theirs
        .exchange(Auth::Basic(&client), &code, &verifier)
        .await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    let id_token = tokens["id_token"].as_str().unwrap();

    let provider = ProviderClient::new();
    let document = WebUrl::parse(&theirs.app.url("/.well-known/openid-configuration")).unwrap();
    let endpoints = provider.discover(&document).await.unwrap();
    let own = client.client_id.to_string();
    let claims = provider
        .verify_id_token(&endpoints, &own, id_token, "n-1")
        .await
        .unwrap();
    assert_eq!(claims.sub, "alice", "the real one passes");

    let refused = |e: authledger::error::AppError| e.to_string();
    let other_audience = provider
        .verify_id_token(&endpoints, "another-client", id_token, "n-1")
        .await
        .unwrap_err();
    assert!(
        refused(other_audience).contains("InvalidAudience"),
        "for another client"
    );
    let other_nonce = provider
        .verify_id_token(&endpoints, &own, id_token, "n-2")
        .await
        .unwrap_err();
    assert!(refused(other_nonce).contains("nonce"), "another sign-in's");
    let mut other_issuer = endpoints.clone();
    other_issuer.issuer = Some("https://elsewhere.example".into());
    let from_elsewhere = provider
        .verify_id_token(&other_issuer, &own, id_token, "n-1")
        .await
        .unwrap_err();
    assert!(refused(from_elsewhere).contains("InvalidIssuer"));
    let mut parts: Vec<String> = id_token.split('.').map(str::to_owned).collect();
    parts[2] = parts[2].chars().rev().collect();
    let tampered = provider
        .verify_id_token(&endpoints, &own, &parts.join("."), "n-1")
        .await
        .unwrap_err();
    assert!(refused(tampered).contains("refused"), "a bad signature");
}

on_both_stores! {
    async fn the_admin_api_manages_providers_and_identities(kind: Kind) {
        let flow = Flow::new(kind).await;
        flow.user("alice", &[]).await;
        let token = admin_token(&flow).await;
        let call = async |method: reqwest::Method, path: &str, body: Option<Value>| admin(&flow, &token, method, path, body).await;
        let (status, refused) = call(reqwest::Method::POST, "/social-logins", Some(serde_json::json!({"name": "X", "client_id": "c", "client_secret": "s", "colour": "red"}))).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{refused}");
        let body = serde_json::json!({
            "name": "Git Hub", "authorize_url": "https://github.example/login/oauth/authorize",
            "token_url": "https://github.example/login/oauth/access_token", "api_endpoint": "https://api.github.example/user",
            "user_id_property": "id", "client_id": "gh", "client_secret": "gh secret", "sign_ups": "deny",
        });
        let (status, created) = call(reqwest::Method::POST, "/social-logins", Some(body)).await;
        assert_eq!(status, StatusCode::CREATED, "{created}");
        assert_eq!(created["id"], "git-hub");
        assert!(!created.to_string().contains("gh secret"), "never shown");
        let (status, listed) = call(reqwest::Method::GET, "/social-logins", None).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(listed["items"].as_array().unwrap().len(), 1);
        let (status, changed) = call(reqwest::Method::PATCH, "/social-logins/git-hub", Some(serde_json::json!({"enabled": false, "sign_ups": "sometimes"}))).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{changed}");
        assert_eq!(changed["field"], "sign_ups");
        let (status, changed) = call(reqwest::Method::PATCH, "/social-logins/git-hub", Some(serde_json::json!({"enabled": false}))).await;
        assert_eq!(status, StatusCode::OK, "{changed}");
        assert_eq!(changed["enabled"], false);
        let (status, identities) = call(reqwest::Method::GET, "/social-logins/identities?user=alice", None).await;
        assert_eq!((status, identities["items"].as_array().unwrap().len()), (StatusCode::OK, 0));
        let (status, _) = call(reqwest::Method::POST, "/social-logins/git-hub/unlink?user=alice", None).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        let (status, _) = call(reqwest::Method::DELETE, "/social-logins/git-hub", None).await;
        assert_eq!(status, StatusCode::NO_CONTENT);
        let (status, _) = call(reqwest::Method::GET, "/social-logins/git-hub", None).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert!(!crate::helpers::cli(&flow.app.db, &["events", "--json"]).stdout.windows(9).any(|w| w == b"gh secret"), "not in the log");
    }
}

/// The other server stands in for the password, not for a second factor: alice, who set one
/// up here, signs in through the provider and is then asked for her code. The sign-in event
/// still says how it began.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_factor_set_up_here_still_follows_a_sign_in_elsewhere() {
    use crate::people::two_factor::{code, enrol, send_code};
    let mut pair = Pair::new(Kind::Sqlite).await;
    let registration = pair.registration("primary").await;
    pair.create(
        &registration,
        &[
            "--name",
            "Primary",
            "--base-url",
            &pair.theirs.app.address,
            "--trusted-emails",
        ],
    )
    .await;
    let (secret, _) = enrol(&pair.ours).await;

    let (answer, _) = pair.sign_in_through("primary", "alice").await;
    assert!(
        pair.ours.get("/account").await.status().is_redirection(),
        "no session before the code"
    );
    let signed = send_code(&pair.ours, answer, &code(&secret, 0)).await;
    assert_eq!(signed.status(), StatusCode::SEE_OTHER);
    assert_eq!(signed.headers()["location"], "/account");
    assert_eq!(pair.ours.get("/account").await.status(), StatusCode::OK);

    let history = pair.ours.history("User", "alice").await;
    let tail: Vec<&str> = history
        .iter()
        .rev()
        .take(4)
        .rev()
        .map(String::as_str)
        .collect();
    assert_eq!(
        tail,
        [
            "VouchedElsewhere",
            "SecondFactorPassed",
            "LoginSucceeded",
            "SessionStarted"
        ],
        "{history:?}"
    );
    let audit = crate::helpers::cli(
        &pair.ours.app.db,
        &["audit", "--user", "alice", "--format", "json"],
    );
    let said = String::from_utf8_lossy(&audit.stdout);
    assert!(
        said.contains("vouched for (social:primary); second factor required")
            && said.contains("sign-in succeeded (social:primary)"),
        "{said}"
    );
}

/// An administrator adds the provider from the console alone (Frappe's "Add Primary Server"
/// as a form): a plain OAuth 2 provider without the property that holds its id is refused
/// next to that field; the base URL of another authledger is enough for an OpenID one, whose
/// button then signs people in. The edit form turns it off and keeps it out of the resource
/// metadata; the delete form wants its name.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_administrator_adds_a_provider_from_the_console() {
    let mut pair = Pair::new(Kind::Sqlite).await;
    let registration = pair.registration("primary").await;
    let client_id = registration.client_id.to_string();
    let secret = registration
        .client_secret
        .as_ref()
        .unwrap()
        .reveal()
        .to_owned();
    pair.ours.user("boss", &["admin"]).await;
    pair.ours.sign_in("boss").await;
    let list = pair
        .ours
        .get("/admin/social-logins")
        .await
        .text()
        .await
        .unwrap();
    assert!(list.contains("href=\"/admin/social-logins/new\""), "{list}");
    let new = "/admin/social-logins/new";
    let form = pair.ours.get(new).await.text().await.unwrap();

    let authorize = pair.theirs.app.url("/oauth/authorize");
    let refused = pair
        .ours
        .submit(
            &form,
            new,
            &[
                ("name", "Plain"),
                ("authorize_url", &authorize),
                ("client_id", &client_id),
                ("client_secret", &secret),
                ("sign_ups", "allow"),
            ],
        )
        .await;
    assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
    let html = refused.text().await.unwrap();
    assert!(
        html.contains("`user_id_property` (the user-info property")
            && html.contains(&format!("value=\"{authorize}\"")),
        "{html}"
    );
    assert!(!html.contains(&secret));

    let base_url = pair.theirs.app.address.clone();
    let created = pair
        .ours
        .submit(
            &form,
            new,
            &[
                ("name", "Primary"),
                ("issuer", &base_url),
                ("client_id", &client_id),
                ("client_secret", &secret),
                ("sign_ups", "deny"),
                ("trusted_emails", "on"),
                ("show_in_resource_metadata", "on"),
            ],
        )
        .await;
    assert_eq!(created.status(), StatusCode::CREATED);
    let html = created.text().await.unwrap();
    assert!(
        html.contains(&pair.ours.app.url("/login/social/primary/callback")),
        "{html}"
    );
    pair.ours.app.settle().await;
    let shown = cli_json(&pair.ours.app.db, &["social-login", "show", "primary"]);
    assert_eq!(shown["sign_ups"], "deny", "{shown}");
    assert_eq!(shown["trusted_emails"], true);

    // alice signs in through it (linked by her trusted email).
    let (answer, _) = pair.sign_in_through("primary", "alice").await;
    assert_eq!(
        answer.status(),
        StatusCode::SEE_OTHER,
        "{}",
        answer.text().await.unwrap()
    );

    // Turned off and out of the metadata from its edit form.
    pair.ours.fresh_browser();
    pair.ours.sign_in("boss").await;
    let edit = "/admin/social-logins/primary/edit";
    let html = pair.ours.get(edit).await.text().await.unwrap();
    assert!(
        html.contains("OpenID Connect, issuer") && html.contains("name=\"enabled\" checked"),
        "{html}"
    );
    let saved = pair
        .ours
        .submit(
            &html,
            edit,
            &[
                ("name", "Primary"),
                ("client_id", &client_id),
                ("scope", "openid email profile"),
                ("sign_ups", "deny"),
                ("trusted_emails", "on"),
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
    let shown = cli_json(&pair.ours.app.db, &["social-login", "show", "primary"]);
    assert_eq!(
        (
            shown["enabled"].clone(),
            shown["show_in_resource_metadata"].clone()
        ),
        (Value::Bool(false), Value::Bool(false)),
        "{shown}"
    );
    pair.ours.fresh_browser();
    assert!(!pair
        .ours
        .get("/login")
        .await
        .text()
        .await
        .unwrap()
        .contains("/login/social/primary"));

    pair.ours.sign_in("boss").await;
    let html = pair.ours.get(edit).await.text().await.unwrap();
    let delete = "/admin/social-logins/primary/delete";
    assert_eq!(
        pair.ours
            .submit(&html, delete, &[("confirm_name", "nope")])
            .await
            .status(),
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        pair.ours
            .submit(&html, delete, &[("confirm_name", "Primary")])
            .await
            .status(),
        StatusCode::SEE_OTHER
    );
    pair.ours.app.settle().await;
    assert_eq!(
        cli_json(&pair.ours.app.db, &["social-login", "list"]),
        serde_json::json!([])
    );
}
