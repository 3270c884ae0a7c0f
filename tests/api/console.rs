//! The console (`/admin`): who is let in (admins change, auditors only look, others get 403,
//! the signed-out are sent to sign in), CSRF on every change, changes made as the person, the
//! audit log with its export, an aggregate's history with its past views, and escaping.

use authledger::admin::clients::ClientInput;
use reqwest::header::LOCATION;
use reqwest::StatusCode;

use crate::oauth::flow::*;
use crate::people::forms;

async fn page(flow: &Flow, path: &str) -> (StatusCode, String) {
    let response = flow.get(path).await;
    (response.status(), response.text().await.unwrap())
}

on_both_stores! {
    async fn only_admins_and_auditors_get_in_and_only_admins_change_anything(kind: Kind) {
        let mut flow = Flow::new(kind).await;
        flow.user("boss", &["admin"]).await;
        flow.user("carol", &["auditor"]).await;
        flow.user("dave", &["reader"]).await;
        let client = flow.client(web_client()).await;
        let client_page = format!("/admin/clients/{}", client.client_id);

        let signed_out = flow.get("/admin/clients").await;
        assert_eq!(signed_out.status(), StatusCode::SEE_OTHER);
        assert_eq!(signed_out.headers()[LOCATION], "/login?return_to=%2Fadmin%2Fclients");

        flow.sign_in("dave").await;
        let (status, html) = page(&flow, "/admin").await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{html}");
        assert!(html.contains("administrators and auditors"));

        // The auditor sees the client, with no button, and a forged change is refused.
        flow.fresh_browser();
        flow.sign_in("carol").await;
        let (status, html) = page(&flow, &client_page).await;
        assert_eq!(status, StatusCode::OK);
        assert!(html.contains("Web App") && html.contains("Read-only") && !html.contains("/disable\""), "{html}");
        let csrf = crate::oauth::flow::hidden_fields(&page(&flow, "/login?return_to=/admin").await.1);
        let refused = flow.browser.post(flow.app.url(&format!("{client_page}/disable"))).form(&csrf).send().await.unwrap();
        assert_eq!(refused.status(), StatusCode::FORBIDDEN);

        // The admin changes it, with the form's token; without it, nothing happens.
        flow.fresh_browser();
        flow.sign_in("boss").await;
        let (_, html) = page(&flow, &client_page).await;
        let form = forms(&html, &format!("{client_page}/disable")).remove(0);
        let forged = flow.browser.post(flow.app.url(&format!("{client_page}/disable"))).form(&[("reason", "x")]).send().await.unwrap();
        assert_eq!(forged.status(), StatusCode::BAD_REQUEST);
        let mut form = form;
        form.push(("reason".into(), "rotating vendors".into()));
        let done = flow.browser.post(flow.app.url(&format!("{client_page}/disable"))).form(&form).send().await.unwrap();
        assert_eq!(done.status(), StatusCode::SEE_OTHER);
        let (_, html) = page(&flow, &client_page).await;
        assert!(html.contains("badge disabled"), "{html}");

        // The audit page says who did it and from where, and the export carries it.
        let (status, html) = page(&flow, &format!("/admin/audit?type=ClientDisabled&client={}", client.client_id)).await;
        assert_eq!(status, StatusCode::OK);
        assert!(html.contains("ClientDisabled") && html.contains("user:boss") && html.contains("127.0.0.1"), "{html}");
        let csv = flow.get("/admin/audit/export?format=csv&type=ClientDisabled").await;
        assert_eq!(csv.headers()["content-type"], "text/csv; charset=utf-8");
        let csv = csv.text().await.unwrap();
        assert!(csv.starts_with("global_position,occurred_at,event_type") && csv.contains("ClientDisabled") && csv.contains("user:boss"), "{csv}");
        let jsonl = flow.get("/admin/audit/export?format=jsonl&range=24h").await.text().await.unwrap();
        assert!(jsonl.lines().all(|l| serde_json::from_str::<serde_json::Value>(l).is_ok()) && jsonl.contains("ClientRegistered"));

        // The client's history: the latest state, and the state before it was disabled.
        let (status, html) = page(&flow, &format!("/admin/history/client/{}", client.client_id)).await;
        assert_eq!(status, StatusCode::OK);
        assert!(html.contains("ClientDisabled") && html.contains("What the selected event changed"), "{html}");
        let first = html.split("?at=").nth(1).unwrap().split('"').next().unwrap().to_owned();
        let (_, past) = page(&flow, &format!("/admin/history/client/{}?at={first}", client.client_id)).await;
        assert!(past.contains("A past view") && past.contains("registered.status"), "{past}");
        let status_now = html.split("<code>registered.status</code>").nth(1).unwrap_or_default();
        assert!(status_now.contains("active") && status_now.contains("disabled"), "what disabling changed: {html}");
        let (status, _) = page(&flow, "/admin/history/client/no-such-client").await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        let (status, bad) = page(&flow, &format!("/admin/history/client/{}?as_of=yesterday", client.client_id)).await;
        assert_eq!(status, StatusCode::OK);
        assert!(bad.contains("as of `yesterday`"), "{bad}");
    }
}

on_both_stores! {
    async fn what_people_typed_is_shown_as_text(kind: Kind) {
        let flow = Flow::new(kind).await;
        flow.user("boss", &["admin"]).await;
        let client = flow.client(ClientInput { name: "<script>alert(1)</script>".into(), ..web_client() }).await;
        flow.sign_in("boss").await;
        for path in ["/admin/clients".to_owned(), format!("/admin/clients/{}", client.client_id), "/admin".to_owned(), "/admin/audit".to_owned()] {
            let (status, html) = page(&flow, &path).await;
            assert_eq!(status, StatusCode::OK, "{path}");
            assert!(!html.contains("<script>alert(1)"), "{path}: {html}");
        }
        let (_, html) = page(&flow, "/admin/clients?q=script").await;
        assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;") || html.contains("&#60;script&#62;"), "{html}");
        let response = flow.get("/admin/clients").await;
        let csp = response.headers()["content-security-policy"].to_str().unwrap().to_owned();
        assert!(!csp.contains("script-src") || !csp.contains("unsafe-inline"), "{csp}");
        assert_eq!(response.headers()["x-frame-options"], "DENY");
    }
}

on_both_stores! {
    async fn an_admin_finds_a_persons_grant_and_revokes_it(kind: Kind) {
        let mut flow = Flow::new(kind).await;
        flow.user("alice", &[]).await;
        flow.user("boss", &["admin"]).await;
        let client = flow.client(web_client()).await;
        let tokens = crate::people::tokens_for_alice(&flow, &client).await;
        let access = tokens["access_token"].as_str().unwrap().to_owned();

        flow.fresh_browser();
        flow.sign_in("boss").await;
        let (status, html) = page(&flow, "/admin/grants?user=alice&status=active").await;
        assert_eq!(status, StatusCode::OK);
        let grant_path = html.split("href=\"/admin/grants/").nth(1).unwrap().split('"').next().unwrap().to_owned();
        let (_, grant) = page(&flow, &format!("/admin/grants/{grant_path}")).await;
        assert!(grant.contains("authorization_code") && grant.contains("access token") && grant.contains("badge active"), "{grant}");
        assert!(!grant.contains(&access) && !grant.contains(tokens["refresh_token"].as_str().unwrap()), "never a token's value");

        let form = forms(&grant, &format!("/admin/grants/{grant_path}/revoke")).remove(0);
        let revoked = flow.browser.post(flow.app.url(&format!("/admin/grants/{grant_path}/revoke"))).form(&form).send().await.unwrap();
        assert_eq!(revoked.status(), StatusCode::SEE_OTHER);
        let (_, body) = {
            let (status, _, body) = flow.token_at("/oauth/introspect", Auth::Basic(&client), &[("token", &access)]).await;
            (status, body)
        };
        assert_eq!(body["active"], false, "revoked in the console: inactive at introspection");
        let (_, grant) = page(&flow, &format!("/admin/grants/{grant_path}")).await;
        assert!(grant.contains("badge revoked") && grant.contains("by user:boss"), "{grant}");
    }
}

on_both_stores! {
    async fn an_admin_withdraws_a_persons_consent_and_its_tokens_stop(kind: Kind) {
        let mut flow = Flow::new(kind).await;
        flow.user("alice", &[]).await;
        flow.user("boss", &["admin"]).await;
        let client = flow.client(web_client()).await;
        let tokens = crate::people::tokens_for_alice(&flow, &client).await;
        let access = tokens["access_token"].as_str().unwrap().to_owned();

        flow.fresh_browser();
        flow.sign_in("boss").await;
        flow.app.settle().await;
        let (_, html) = page(&flow, "/admin/users/alice").await;
        let action = format!("/admin/users/alice/consents/{}/revoke", client.client_id);
        let form = forms(&html, &action).remove(0);
        let withdrawn = flow.browser.post(flow.app.url(&action)).form(&form).send().await.unwrap();
        assert_eq!(withdrawn.status(), StatusCode::SEE_OTHER);
        let (_, _, body) = flow.token_at("/oauth/introspect", Auth::Basic(&client), &[("token", &access)]).await;
        assert_eq!(body["active"], false, "the consent's grants are revoked with it");
        flow.app.settle().await;
        let (_, html) = page(&flow, "/admin/users/alice").await;
        assert!(html.contains("revoked") && forms(&html, &action).is_empty(), "nothing left to withdraw: {html}");
        let (_, audit) = page(&flow, "/admin/audit?type=ConsentRevoked").await;
        assert!(audit.contains("user:boss"), "{audit}");

        let again = flow.browser.post(flow.app.url(&action)).form(&form).send().await.unwrap();
        assert_eq!(again.status(), StatusCode::NOT_FOUND, "no consent in force to withdraw");
    }
}

on_both_stores! {
    async fn settings_are_changed_from_their_form_and_a_bad_value_is_shown_at_its_field(kind: Kind) {
        let mut flow = Flow::new(kind).await;
        flow.user("boss", &["admin"]).await;
        flow.user("carol", &["auditor"]).await;
        flow.sign_in("boss").await;
        let (status, html) = page(&flow, "/admin/settings").await;
        assert_eq!(status, StatusCode::OK);
        assert!(html.contains("Sign-in and sessions") && html.contains("value=\"force\""), "{html}");
        let mut form = forms(&html, "/admin/settings").into_iter().find(|f| f.contains(&("key".into(), "site_name".into()))).unwrap();
        form.push(("value".into(), "Example Corp".into()));
        let saved = flow.browser.post(flow.app.url("/admin/settings")).form(&form).send().await.unwrap();
        assert_eq!(saved.status(), StatusCode::SEE_OTHER);
        let (_, html) = page(&flow, "/admin/settings").await;
        assert!(html.contains("value=\"Example Corp\""));
        let history = flow.history("Settings", "settings").await;
        assert_eq!(history.last().map(String::as_str), Some("SettingsChanged"));

        let mut form = forms(&html, "/admin/settings").into_iter().find(|f| f.contains(&("key".into(), "code_ttl".into()))).unwrap();
        form.push(("value".into(), "9999".into()));
        let refused = flow.browser.post(flow.app.url("/admin/settings")).form(&form).send().await.unwrap();
        assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
        let html = refused.text().await.unwrap();
        let field = html.split("id=\"code_ttl\"").nth(1).unwrap().split("</form>").next().unwrap();
        assert!(field.contains("role=\"alert\"") && field.contains("value=\"9999\""), "the error at its field: {field}");

        flow.fresh_browser();
        flow.sign_in("carol").await;
        let (_, html) = page(&flow, "/admin/settings").await;
        assert!(html.contains("readonly") && !html.contains(">Save</button>"), "{html}");
    }
}

on_both_stores! {
    async fn an_admin_creates_a_client_rotates_its_secret_and_deletes_it(kind: Kind) {
        let flow = Flow::new(kind).await;
        flow.user("boss", &["admin"]).await;
        flow.sign_in("boss").await;
        let (status, html) = page(&flow, "/admin/clients/new").await;
        assert_eq!(status, StatusCode::OK);
        let base = forms(&html, "/admin/clients/new").remove(0);
        let post = |fields: Vec<(&str, &str)>| {
            let mut form = base.clone();
            form.extend(fields.into_iter().map(|(k, v)| (k.to_owned(), v.to_owned())));
            flow.browser.post(flow.app.url("/admin/clients/new")).form(&form).send()
        };

        let refused = post(vec![("client_name", "Payroll"), ("redirect_uris", "/relative"), ("grant_authorization_code", "on")]).await.unwrap();
        assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
        let html = refused.text().await.unwrap();
        let at_field = html.split("id=\"redirect_uris\"").nth(1).unwrap().split("<label").next().unwrap();
        assert!(at_field.contains("class=\"error\"") && at_field.contains("/relative"), "the error at its field: {at_field}");
        assert!(html.contains("value=\"Payroll\""), "what was typed is kept");

        let created = post(vec![("client_name", "Payroll"), ("redirect_uris", "https://payroll.example/cb"), ("grant_authorization_code", "on"), ("grant_refresh_token", "on"), ("scope", "openid email")]).await.unwrap();
        assert_eq!(created.status(), StatusCode::CREATED);
        let html = created.text().await.unwrap();
        assert!(html.contains("alcs_") && html.contains("shown only this once"), "{html}");
        let id = html.split("<dt>Client id</dt><dd><code>").nth(1).unwrap().split('<').next().unwrap().to_owned();
        let audit = crate::helpers::cli(&flow.app.db, &["audit", "--type", "ClientRegistered", "--format", "json"]);
        assert!(String::from_utf8_lossy(&audit.stdout).contains("\"actor\":\"user:boss\""));

        let (_, client) = page(&flow, &format!("/admin/clients/{id}")).await;
        let rotate = forms(&client, &format!("/admin/clients/{id}/rotate-secret")).remove(0);
        let rotated = flow.browser.post(flow.app.url(&format!("/admin/clients/{id}/rotate-secret"))).form(&rotate).send().await.unwrap();
        assert_eq!(rotated.status(), StatusCode::OK);
        assert!(rotated.text().await.unwrap().contains("alcs_"));

        let mut delete = forms(&client, &format!("/admin/clients/{id}/delete")).remove(0);
        delete.push(("confirm_name".into(), "Payrol".into()));
        let wrong = flow.browser.post(flow.app.url(&format!("/admin/clients/{id}/delete"))).form(&delete).send().await.unwrap();
        assert_eq!(wrong.status(), StatusCode::BAD_REQUEST, "a mistyped name deletes nothing");
        delete.pop();
        delete.push(("confirm_name".into(), "Payroll".into()));
        let deleted = flow.browser.post(flow.app.url(&format!("/admin/clients/{id}/delete"))).form(&delete).send().await.unwrap();
        assert_eq!(deleted.status(), StatusCode::SEE_OTHER);
        let history = flow.history("Client", &id).await;
        assert_eq!(history, vec!["ClientRegistered", "ClientSecretRotated", "ClientDeleted"]);
    }
}

on_both_stores! {
    async fn an_admin_creates_a_person_and_sets_their_roles_and_password(kind: Kind) {
        let mut flow = Flow::new(kind).await;
        flow.user("boss", &["admin"]).await;
        flow.sign_in("boss").await;
        let (status, html) = page(&flow, "/admin/users/new").await;
        assert_eq!(status, StatusCode::OK);
        let mut form = forms(&html, "/admin/users/new").remove(0);
        let mut short = form.clone();
        short.extend([("username".into(), "erin".into()), ("password".into(), "short".into())]);
        let refused = flow.browser.post(flow.app.url("/admin/users/new")).form(&short).send().await.unwrap();
        assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
        assert!(refused.text().await.unwrap().contains("value=\"erin\""));
        form.extend([
            ("username".into(), "erin".into()),
            ("password".into(), "a long enough password".into()),
            ("email".into(), "erin@example.com".into()),
            ("roles".into(), "auditor, reader".into()),
        ]);
        let created = flow.browser.post(flow.app.url("/admin/users/new")).form(&form).send().await.unwrap();
        assert_eq!(created.status(), StatusCode::SEE_OTHER);
        assert_eq!(created.headers()[LOCATION], "/admin/users/erin");

        let (_, html) = page(&flow, "/admin/users/erin").await;
        assert!(html.contains("auditor, reader"), "{html}");
        let mut roles = forms(&html, "/admin/users/erin/roles").remove(0);
        roles.push(("roles".into(), "reader".into()));
        flow.browser.post(flow.app.url("/admin/users/erin/roles")).form(&roles).send().await.unwrap();
        let mut password = forms(&html, "/admin/users/erin/password").remove(0);
        password.push(("password".into(), "another long password".into()));
        let set = flow.browser.post(flow.app.url("/admin/users/erin/password")).form(&password).send().await.unwrap();
        assert_eq!(set.status(), StatusCode::SEE_OTHER);
        let profile = forms(&html, "/admin/users/erin/profile").remove(0);
        let mut bad = profile.clone();
        bad.push(("email".into(), "not an address".into()));
        let refused = flow.browser.post(flow.app.url("/admin/users/erin/profile")).form(&bad).send().await.unwrap();
        assert_eq!(refused.status(), StatusCode::BAD_REQUEST, "nothing recorded");
        let mut good = profile.clone();
        good.extend([("name".into(), "Erin Example".into()), ("given_name".into(), "Erin".into()), ("email".into(), "erin@new.example".into()), ("picture".into(), "".into())]);
        let saved = flow.browser.post(flow.app.url("/admin/users/erin/profile")).form(&good).send().await.unwrap();
        assert_eq!(saved.status(), StatusCode::SEE_OTHER);
        let (_, html) = page(&flow, "/admin/users/erin").await;
        assert!(html.contains("value=\"Erin Example\"") && html.contains("value=\"erin@new.example\""), "{html}");
        let history = flow.history("User", "erin").await;
        assert_eq!(history, vec!["UserRegistered", "RolesSet", "PasswordChanged", "ProfileUpdated"]);

        flow.fresh_browser();
        let signed = flow.sign_in_with("erin", "another long password", "/account").await;
        assert_eq!(signed.status(), StatusCode::SEE_OTHER, "the new password works");
        let (status, _) = page(&flow, "/admin").await;
        assert_eq!(status, StatusCode::FORBIDDEN, "no longer an auditor");
    }
}

on_both_stores! {
    async fn an_admin_rotates_the_keys_and_rebuilds_the_views(kind: Kind) {
        let flow = Flow::new(kind).await;
        flow.user("boss", &["admin"]).await;
        flow.sign_in("boss").await;
        let (status, html) = page(&flow, "/admin/keys").await;
        assert_eq!(status, StatusCode::OK);
        let before = html.matches("<tr><td data-label=\"Key id\">").count();
        assert!(before >= 3, "{html}");
        let form = forms(&html, "/admin/keys/rotate").remove(0);
        let rotated = flow.browser.post(flow.app.url("/admin/keys/rotate")).form(&form).send().await.unwrap();
        assert_eq!(rotated.status(), StatusCode::SEE_OTHER);
        let (_, html) = page(&flow, "/admin/keys").await;
        assert_eq!(html.matches("<tr><td data-label=\"Key id\">").count(), before + 3);
        assert!(html.contains("published"), "{html}");

        let (status, html) = page(&flow, "/admin/projections").await;
        assert_eq!(status, StatusCode::OK);
        assert!(html.contains("clients") && html.contains("audit"), "{html}");
        let mut form = forms(&html, "/admin/projections/rebuild").remove(0);
        form.push(("name".into(), "users".into()));
        let started = flow.browser.post(flow.app.url("/admin/projections/rebuild")).form(&form).send().await.unwrap();
        assert_eq!(started.status(), StatusCode::SEE_OTHER, "the rebuild runs on while the page follows it");
        assert_eq!(started.headers()["location"], "/admin/projections");
        let mut waited = 0;
        let html = loop {
            let (status, html) = page(&flow, "/admin/projections").await;
            assert_eq!(status, StatusCode::OK);
            if html.contains("Rebuilt the users view from") {
                break html;
            }
            assert!(html.contains("Rebuilding the users view") && html.contains("<progress"), "{html}");
            assert!(html.contains("http-equiv=\"refresh\""), "the page follows a running rebuild: {html}");
            waited += 1;
            assert!(waited < 300, "the rebuild did not end: {html}");
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        };
        assert!(html.contains("events/s"), "{html}");
        assert!(!html.contains("http-equiv=\"refresh\""), "nothing to follow once it ended: {html}");

        let mut form = forms(&html, "/admin/projections/rebuild").remove(0);
        form.push(("name".into(), "nonsense".into()));
        let refused = flow.browser.post(flow.app.url("/admin/projections/rebuild")).form(&form).send().await.unwrap();
        assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
        let html = refused.text().await.unwrap();
        assert!(html.contains("There is no view named “nonsense”") && html.contains("aria-invalid=\"true\""), "{html}");
        let (status, html) = page(&flow, "/admin/users").await;
        assert_eq!(status, StatusCode::OK);
        assert!(html.contains("boss"), "the rebuilt view serves");
    }
}

on_both_stores! {
    async fn the_overview_charts_tokens_and_sign_ins_per_hour(kind: Kind) {
        let mut flow = Flow::new(kind).await;
        flow.user("alice", &[]).await;
        flow.user("boss", &["admin"]).await;
        let client = flow.client(web_client()).await;
        crate::people::tokens_for_alice(&flow, &client).await;
        flow.fresh_browser();
        flow.sign_in("boss").await;
        flow.app.settle().await;
        let (status, html) = page(&flow, "/admin").await;
        assert_eq!(status, StatusCode::OK);
        assert!(html.contains("1 grants in force"), "{html}");
        assert_eq!(html.matches("<svg viewBox").count(), 5, "five charts");
        assert!(html.contains(": 1 tokens</title>"), "{html}");
        assert!(html.contains("aria-label=\"2 sign-ins in all"), "alice and boss: {html}");
        assert!(html.contains("Top clients") && html.contains("Web App"), "{html}");
        let (_, client_page) = page(&flow, &format!("/admin/clients/{}", client.client_id)).await;
        assert!(client_page.contains("aria-label=\"1 tokens in all"), "the client's own usage: {client_page}");
        let (_, alice_page) = page(&flow, "/admin/users/alice").await;
        assert!(alice_page.contains("aria-label=\"1 tokens in all"), "the person's own usage: {alice_page}");
        let (_, boss_page) = page(&flow, "/admin/users/boss").await;
        assert!(boss_page.contains("aria-label=\"0 tokens in all"), "{boss_page}");
    }
}

on_both_stores! {
    async fn an_admin_edits_a_client_and_what_the_form_does_not_show_stays(kind: Kind) {
        let flow = Flow::new(kind).await;
        flow.user("boss", &["admin"]).await;
        let client = flow
            .client(ClientInput {
                token_endpoint_auth_method: Some("client_secret_post".into()),
                contacts: vec!["ops@app.example".into()],
                ..web_client()
            })
            .await;
        flow.sign_in("boss").await;
        let path = format!("/admin/clients/{}/edit", client.client_id);
        let (status, html) = page(&flow, &path).await;
        assert_eq!(status, StatusCode::OK);
        assert!(html.contains("value=\"Web App\"") && html.contains("https://app.example/callback"), "{html}");
        let mut form: Vec<(String, String)> = forms(&html, &path).remove(0).into_iter().collect();
        form.extend([
            ("client_name".to_owned(), "Web App 2".to_owned()),
            ("redirect_uris".to_owned(), "https://app.example/callback https://app.example/other".to_owned()),
            ("scope".to_owned(), "openid email".to_owned()),
            ("grant_authorization_code".to_owned(), "on".to_owned()),
        ]);
        let saved = flow.browser.post(flow.app.url(&path)).form(&form).send().await.unwrap();
        assert_eq!(saved.status(), StatusCode::SEE_OTHER);
        let shown = authledger::admin::clients::show(&flow.store, client.client_id.as_str()).await.unwrap();
        assert_eq!(shown.name, "Web App 2");
        assert_eq!(shown.metadata.redirect_uris.len(), 2);
        assert_eq!(shown.metadata.token_endpoint_auth_method.as_str(), "client_secret_post", "kept");
        assert_eq!(shown.metadata.contacts, vec!["ops@app.example".to_owned()], "kept");
        let history = flow.history("Client", client.client_id.as_str()).await;
        assert_eq!(history.last().map(String::as_str), Some("ClientUpdated"));
    }
}
