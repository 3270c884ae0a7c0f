//! The console in a real browser (headless Chromium): an admin signs in, finds a client by
//! name, disables it, and finds their own `ClientDisabled` in the audit log and the client's
//! history; at a phone's width nothing scrolls sideways.

use authledger::admin::clients::ClientInput;

use crate::browser::Browser;
use crate::helpers::{Kind, TestApp};
use crate::oauth::flow::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_finds_disables_and_audits_a_client() {
    let flow = Flow::with_app(TestApp::spawn(Kind::Sqlite).await).await;
    flow.user("boss", &["admin"]).await;
    flow.client(ClientInput {
        name: "Payroll".into(),
        ..web_client()
    })
    .await;
    flow.client(ClientInput {
        name: "Web App".into(),
        ..web_client()
    })
    .await;
    let Some(browser) = Browser::open(1280).await else {
        return;
    };
    browser
        .run("console", async |browser| {
            browser.goto(&flow.app.url("/admin/clients")).await;
            assert_eq!(
                browser.path().await,
                "/login",
                "signed out: to the sign-in page"
            );
            browser.fill("#username", "boss").await;
            browser.fill("#password", &password_of("boss")).await;
            browser.click("button[type=submit]").await;
            assert_eq!(browser.path().await, "/admin/clients", "and back");

            browser.fill("#q", "payr").await;
            browser.click("form[role=search] button").await;
            let text = browser.text().await;
            assert!(
                text.contains("Payroll") && !text.contains("Web App"),
                "{text}"
            );
            browser.click("td a").await;
            browser.screenshot("console-client").await;
            browser.fill("#reason", "vendor contract ended").await;
            browser.click("button.danger").await;
            assert!(browser.text().await.contains("disabled"));

            browser
                .goto(&flow.app.url("/admin/audit?type=ClientDisabled"))
                .await;
            let text = browser.text().await;
            assert!(
                text.contains("ClientDisabled") && text.contains("user:boss"),
                "{text}"
            );
            browser.screenshot("console-audit").await;
            // What the filters select, exported as the person's browser saves it.
            let csv = browser.download("a[href*='format=csv']", "audit.csv").await;
            let lines: Vec<&str> = csv.lines().collect();
            assert!(
                lines[0].starts_with("global_position,occurred_at,event_type"),
                "{csv}"
            );
            assert_eq!(
                lines.len(),
                2,
                "the header and the one ClientDisabled: {csv}"
            );
            assert!(
                lines[1].contains("ClientDisabled") && lines[1].contains("user:boss"),
                "{csv}"
            );
            // The one script (allowed by the CSP as from this host) shows times in the
            // viewer's zone and keeps the UTC instant as the title.
            let title = browser
                .script("return document.querySelector('time').title")
                .await;
            assert!(
                title.as_str().is_some_and(|t| t.ends_with("UTC")),
                "{title}"
            );
            browser.click("tbody td a").await;
            let text = browser.text().await;
            assert!(
                text.contains("History of Client") && text.contains("registered.status"),
                "{text}"
            );
            browser.screenshot("console-history").await;

            browser.set_width(390).await;
            for path in ["/admin", "/admin/clients", "/admin/audit"] {
                browser.goto(&flow.app.url(path)).await;
                assert!(
                    !browser.overflows_sideways().await,
                    "{path} scrolls sideways at 390 px"
                );
            }
        })
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_creates_a_client_and_revokes_a_grant_an_auditor_only_looks_others_are_refused() {
    let flow = Flow::with_app(TestApp::spawn(Kind::Sqlite).await).await;
    flow.user("boss", &["admin"]).await;
    flow.user("carol", &["auditor"]).await;
    flow.user("dave", &[]).await;
    flow.user("alice", &[]).await;
    let web = flow.client(web_client()).await;
    let tokens = crate::people::tokens_for_alice(&flow, &web).await;
    let access = tokens["access_token"].as_str().unwrap().to_owned();
    let Some(browser) = Browser::open(1280).await else {
        return;
    };
    let sign_in = async |browser: &Browser, who: &str, path: &str| {
        browser.goto(&flow.app.url("/logout")).await;
        if browser.path().await == "/logout" && browser.text().await.contains("Sign out of") {
            browser.click("button.primary").await;
        }
        browser.goto(&flow.app.url(path)).await;
        browser.fill("#username", who).await;
        browser.fill("#password", &password_of(who)).await;
        browser.click("button[type=submit]").await;
    };
    browser
        .run("console-roles", async |browser| {
            // An admin creates a client whose name is markup: it shows as text.
            sign_in(browser, "boss", "/admin/clients/new").await;
            browser
                .fill("#client_name", "<script>alert(1)</script>")
                .await;
            browser
                .fill("#redirect_uris", "https://xss.example/cb")
                .await;
            browser.click("button.primary").await;
            let text = browser.text().await;
            assert!(
                text.contains("Client created") && text.contains("alcs_"),
                "{text}"
            );
            browser.goto(&flow.app.url("/admin/clients?q=script")).await;
            assert!(
                browser.text().await.contains("<script>alert(1)</script>"),
                "shown as text"
            );
            let scripts = browser
                .script("return document.querySelectorAll('main script').length")
                .await;
            assert_eq!(scripts, 0, "never run");

            // The admin revokes alice's grant; the token stops working.
            browser
                .goto(&flow.app.url("/admin/grants?user=alice"))
                .await;
            browser.click("tbody td a").await;
            let before_revocation = chrono::Utc::now().to_rfc3339();
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            browser.click("button.danger").await;
            assert!(browser.text().await.contains("revoked"));

            // The grant's history, and the grant as it was before the revocation.
            browser.click("a[href^='/admin/history/Grant/']").await;
            let text = browser.text().await;
            assert!(
                text.contains("History of Grant") && text.contains("GrantRevoked"),
                "{text}"
            );
            assert!(!text.contains("A past view"), "the present: {text}");
            browser.fill("#as_of", &before_revocation).await;
            browser.click("form[role=search] button").await;
            let past = browser.text().await;
            assert!(past.contains("A past view"), "{past}");
            let state = browser
                .script("return document.querySelector('pre.state').textContent")
                .await;
            let state = state.as_str().unwrap();
            assert!(
                state.contains("\"revoked\": null"),
                "not revoked then: {state}"
            );
            browser.screenshot("console-grant-as-of").await;
            let (_, _, body) = flow
                .token_at(
                    "/oauth/introspect",
                    Auth::Basic(&web),
                    &[("token", &access)],
                )
                .await;
            assert_eq!(body["active"], false);

            // The auditor sees the same pages without a single button that changes anything.
            sign_in(browser, "carol", "/admin/clients").await;
            assert!(browser.text().await.contains("Read-only"));
            browser.click("tbody td a").await;
            let forms = browser
                .script("return document.querySelectorAll('main form[method=post]').length")
                .await;
            assert_eq!(forms, 0, "no change forms for an auditor");

            // Anyone else is refused.
            sign_in(browser, "dave", "/admin").await;
            assert!(browser.text().await.contains("Not allowed"));
        })
        .await;
}
