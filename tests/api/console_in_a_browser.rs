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
