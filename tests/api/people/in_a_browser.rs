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
    browser
        .run("sign-in-consent-account", async |browser| {
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
            let params: std::collections::HashMap<_, _> =
                landed.query_pairs().into_owned().collect();
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
                text.contains("access is removed")
                    && text.contains("You have not allowed any application"),
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
        })
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_sets_up_two_factor_sign_in_and_signs_in_with_a_code_on_a_phone() {
    let flow = Flow::with_app(TestApp::spawn(Kind::Sqlite).await).await;
    flow.user("alice", &[]).await;
    let Some(browser) = Browser::open(PHONE).await else {
        return;
    };
    browser
        .run("two-factor", async |browser| {
            let totp = |secret: &str, steps: i64| {
                let bytes = totp_rs::Secret::Encoded(secret.to_owned())
                    .to_bytes()
                    .unwrap();
                let totp = totp_rs::TOTP::new_unchecked(
                    totp_rs::Algorithm::SHA1,
                    6,
                    0,
                    30,
                    bytes,
                    None,
                    String::new(),
                );
                totp.generate((chrono::Utc::now().timestamp() + 30 * steps) as u64)
            };

            browser.goto(&flow.app.url("/account")).await;
            browser.fill("#username", "alice").await;
            browser.fill("#password", &password_of("alice")).await;
            browser.click("button[type=submit]").await;
            assert!(browser
                .text()
                .await
                .contains("Off: your password alone signs you in."));
            browser.click("a[href='/account/two-factor']").await;

            // The QR code is drawn in the page, at a size a phone camera reads, and fits the screen.
            let qr_width = browser
                .script("return document.querySelector('.qr svg').getBoundingClientRect().width")
                .await;
            assert_eq!(qr_width, 200, "{qr_width}");
            assert!(
                !browser.overflows_sideways().await,
                "the set-up page scrolls sideways at {PHONE} px"
            );
            browser.screenshot("two-factor-setup").await;
            let secret = browser
                .script("return document.querySelector('main code').textContent")
                .await;
            let secret = secret.as_str().unwrap().to_owned();
            browser.fill("#code", &totp(&secret, -1)).await;
            browser.click("button.primary").await;
            let text = browser.text().await;
            assert!(
                text.contains("Two-factor sign-in is on") && text.contains("shown only now"),
                "{text}"
            );
            let codes = browser
                .script("return document.querySelectorAll('ul.codes li').length")
                .await;
            assert_eq!(codes, 10);
            assert!(
                !browser.overflows_sideways().await,
                "the recovery codes scroll sideways at {PHONE} px"
            );
            browser.screenshot("recovery-codes").await;

            // Sign out, and in again: the password, then the code.
            browser.goto(&flow.app.url("/logout")).await;
            browser.click("button.primary").await;
            browser.goto(&flow.app.url("/account")).await;
            browser.fill("#username", "alice").await;
            browser.fill("#password", &password_of("alice")).await;
            browser.click("button[type=submit]").await;
            assert!(browser.text().await.contains("Enter your sign-in code"));
            assert_eq!(
                browser
                    .script("return document.querySelector('#code').autocomplete")
                    .await,
                "one-time-code"
            );
            browser.screenshot("two-factor-code").await;
            browser.fill("#code", "000000").await;
            browser.click("button.primary").await;
            assert!(browser.text().await.contains("That code is not right"));
            browser.fill("#code", &totp(&secret, 0)).await;
            browser.click("button.primary").await;
            assert_eq!(browser.path().await, "/account");
            assert!(browser
                .text()
                .await
                .contains("On: signing in asks for a code"));
        })
        .await;
}
