//! The person's pages in a real browser (headless Chromium), at a phone's width (390 CSS
//! pixels): sign-in, consent, the account page and sign-out, as someone clicks through them.
//! One store is enough here: what the browser sees does not depend on it.

use authledger::admin::clients::ClientInput;

use crate::browser::Browser;
use crate::helpers::{Kind, TestApp};
use crate::oauth::flow::*;

const PHONE: u32 = 390;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_signs_in_allows_sees_and_removes_access_and_signs_out_on_a_phone() {
    let flow = Flow::with_app(TestApp::spawn(Kind::Sqlite).await).await;
    flow.user("alice", &[]).await;
    flow.set("site_name", "Example Corp").await;
    // The browser comes back to a page of the server itself (loopback redirect URIs are
    // allowed, RFC 8252 §7.3), so the redirect lands somewhere real.
    let back_to = format!("{}/healthz", flow.app.address);
    let client = flow
        .client(ClientInput {
            redirect_uris: vec![back_to.clone()],
            policy_uri: Some("https://app.example/privacy".into()),
            ..web_client()
        })
        .await;
    let Some(browser) = Browser::open(PHONE).await else {
        return;
    };
    assert_eq!(browser.script("return window.innerWidth").await, PHONE);

    let (_, challenge) = pkce();
    let query = form_urlencoded::Serializer::new(String::new())
        .extend_pairs([
            ("response_type", "code"),
            ("client_id", client.client_id.as_str()),
            ("redirect_uri", back_to.as_str()),
            ("scope", "openid profile email"),
            ("state", "browser-state"),
            ("code_challenge", challenge.as_str()),
            ("code_challenge_method", "S256"),
        ])
        .finish();
    browser
        .goto(&flow.app.url(&format!("/oauth/authorize?{query}")))
        .await;

    // Sign-in: names the site and the application, labels its fields, fits the phone.
    assert_eq!(browser.path().await, "/login");
    let text = browser.text().await;
    assert!(
        text.contains("Example Corp") && text.contains("Sign in to continue to Web App"),
        "{text}"
    );
    assert_eq!(
        browser.script("return document.documentElement.lang").await,
        "en"
    );
    assert_eq!(
        browser
            .script("return document.querySelector('#password').labels.length")
            .await,
        1
    );
    assert!(
        !browser.overflows_sideways().await,
        "the sign-in page scrolls sideways at {PHONE} px"
    );
    browser.screenshot("sign-in").await;
    browser.fill("#username", "alice").await;
    browser.fill("#password", "not her password").await;
    browser.click("button[type=submit]").await;
    assert!(browser.text().await.contains("Wrong username or password."));
    assert_eq!(
        browser
            .script("return document.querySelector('[role=alert]') !== null")
            .await,
        true
    );
    browser.fill("#username", "alice").await;
    browser.fill("#password", &password_of("alice")).await;
    browser.click("button[type=submit]").await;

    // Consent: who asks, what for, where the answer goes; Allow is the primary action.
    let text = browser.text().await;
    assert!(
        text.contains("Web App wants to access your account"),
        "{text}"
    );
    assert!(
        text.contains("see your email address") && text.contains("sent back to 127.0.0.1"),
        "{text}"
    );
    assert!(
        text.contains("Privacy policy") && text.contains("Not you?"),
        "{text}"
    );
    assert_eq!(
        browser
            .style("button[value=allow]", "background-color")
            .await,
        "rgb(11, 87, 208)",
        "the stylesheet loads under the CSP and marks Allow as primary"
    );
    assert_ne!(
        browser
            .style("button[value=deny]", "background-color")
            .await,
        "rgb(11, 87, 208)"
    );
    assert!(
        !browser.overflows_sideways().await,
        "the consent page scrolls sideways at {PHONE} px"
    );
    browser.screenshot("consent").await;
    browser.click("button[value=allow]").await;
    let landed = browser.url().await;
    assert_eq!(landed.path(), "/healthz");
    let params: std::collections::HashMap<_, _> = landed.query_pairs().into_owned().collect();
    assert_eq!(
        params.get("state").map(String::as_str),
        Some("browser-state")
    );
    assert!(params.contains_key("code"), "{landed}");

    // The account page: the application is listed, and its access can be removed.
    browser.goto(&flow.app.url("/account")).await;
    let text = browser.text().await;
    assert!(
        text.contains("Where you are signed in") && text.contains("(this browser)"),
        "{text}"
    );
    assert!(
        text.contains("Web App") && text.contains("see your email address"),
        "{text}"
    );
    assert!(
        !browser.overflows_sideways().await,
        "the account page scrolls sideways at {PHONE} px"
    );
    browser.screenshot("account").await;
    browser
        .click("form[action='/account/applications/remove'] button")
        .await;
    let text = browser.text().await;
    assert!(
        text.contains("access is removed") && text.contains("You have not allowed any application"),
        "{text}"
    );

    // Sign out from the header link: a question, then signed out.
    browser.click("header a[href='/logout']").await;
    assert!(browser.text().await.contains("Sign out of Example Corp?"));
    browser.screenshot("sign-out").await;
    browser.click("button.primary").await;
    assert!(browser.text().await.contains("You are signed out."));
    browser.goto(&flow.app.url("/account")).await;
    assert_eq!(
        browser.path().await,
        "/login",
        "signed out: the account page asks to sign in"
    );
    browser.close().await;
}
