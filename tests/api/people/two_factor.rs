//! Two-factor sign-in (TOTP, RFC 6238) with recovery codes: enrolment, the code after the
//! password, a code used once, a recovery code used once, the policy that forces enrolment,
//! throttling of wrong codes, `amr`/`acr` in ID tokens and `acr_values` step-up, and an
//! administrator's reset.

use reqwest::header::LOCATION;
use reqwest::StatusCode;

use super::forms;
use crate::oauth::flow::*;

/// The TOTP code for the current time step plus `steps_ahead` (one step either way is
/// accepted). Enrolment uses the step before the current one, so that the tests' sign-ins
/// have two unused steps left without waiting 30 seconds.
pub fn code(secret_base32: &str, steps_ahead: i64) -> String {
    let secret = totp_rs::Secret::Encoded(secret_base32.to_owned())
        .to_bytes()
        .unwrap();
    let totp = totp_rs::TOTP::new_unchecked(
        totp_rs::Algorithm::SHA1,
        6,
        0,
        30,
        secret,
        None,
        String::new(),
    );
    let now = chrono::Utc::now().timestamp();
    totp.generate((now + 30 * steps_ahead) as u64)
}

/// The key the set-up page shows for typing into an app.
fn secret_on(html: &str) -> String {
    html.split("Or type this key into the app: <code>")
        .nth(1)
        .unwrap()
        .split('<')
        .next()
        .unwrap()
        .to_owned()
}

fn recovery_codes_on(html: &str) -> Vec<String> {
    html.split("<li><code>")
        .skip(1)
        .map(|rest| rest.split('<').next().unwrap().to_owned())
        .collect()
}

/// Signs alice in with her password (she has a session) and sets up two-factor sign-in from
/// her account page; returns the secret and the recovery codes.
pub async fn enrol(flow: &Flow) -> (String, Vec<String>) {
    flow.sign_in("alice").await;
    let setup = flow.get("/account/two-factor").await;
    assert_eq!(setup.status(), StatusCode::OK);
    let html = setup.text().await.unwrap();
    assert!(
        html.contains("<svg") && html.contains("name=\"code\""),
        "a QR code and a code field: {html}"
    );
    let secret = secret_on(&html);

    let mut form = forms(&html, "/account/two-factor").remove(0);
    form.push(("code".into(), "000000".into()));
    let wrong = flow
        .browser
        .post(flow.app.url("/account/two-factor"))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        secret_on(&wrong.text().await.unwrap()),
        secret,
        "the same key, to try again"
    );

    form.pop();
    form.push(("code".into(), code(&secret, -1)));
    let done = flow
        .browser
        .post(flow.app.url("/account/two-factor"))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(done.status(), StatusCode::OK);
    let codes = recovery_codes_on(&done.text().await.unwrap());
    assert_eq!(codes.len(), 10);
    (secret, codes)
}

/// A new browser signs alice in with her password; returns the page that follows.
async fn password_step(flow: &mut Flow) -> reqwest::Response {
    flow.fresh_browser();
    flow.sign_in_with("alice", &password_of("alice"), "/account")
        .await
}

pub async fn send_code(flow: &Flow, code_page: reqwest::Response, code: &str) -> reqwest::Response {
    assert_eq!(code_page.status(), StatusCode::OK);
    send_code_on(flow, &code_page.text().await.unwrap(), code).await
}

/// Sends `code` through the code form of the page `html`.
async fn send_code_on(flow: &Flow, html: &str, code: &str) -> reqwest::Response {
    assert!(
        html.contains("name=\"code\""),
        "the page after the password asks for the code: {html}"
    );
    let mut form = forms(html, "/login/two-factor").remove(0);
    form.push(("code".into(), code.into()));
    flow.browser
        .post(flow.app.url("/login/two-factor"))
        .form(&form)
        .send()
        .await
        .unwrap()
}

on_both_stores! {
    async fn a_person_enrols_and_then_signs_in_with_a_code_that_works_once(kind: Kind) {
        let mut flow = Flow::new(kind).await;
        flow.user("alice", &[]).await;
        let (secret, recovery) = enrol(&flow).await;
        assert!(flow.get("/account").await.text().await.unwrap().contains("10 recovery codes left"));

        // The password alone no longer signs in: the code page follows.
        let page = password_step(&mut flow).await;
        assert!(flow.get("/account").await.status().is_redirection(), "no session before the code");
        let current = code(&secret, 0);
        let signed = send_code(&flow, page, &current).await;
        assert_eq!(signed.status(), StatusCode::SEE_OTHER);
        assert_eq!(signed.headers()[LOCATION], "/account");
        assert_eq!(flow.get("/account").await.status(), StatusCode::OK);

        // The same code again, in another browser: refused (RFC 6238 §5.2).
        let page = password_step(&mut flow).await;
        let replayed = send_code(&flow, page, &current).await;
        assert_eq!(replayed.status(), StatusCode::UNAUTHORIZED);
        let history = flow.history("User", "alice").await;
        assert_eq!(history.last().map(String::as_str), Some("SecondFactorFailed"), "{history:?}");
        // The next step's code is fine (one step of drift is allowed).
        let next = send_code_on(&flow, &replayed.text().await.unwrap(), &code(&secret, 1)).await;
        assert_eq!(next.status(), StatusCode::SEE_OTHER);

        // A recovery code signs in once.
        let page = password_step(&mut flow).await;
        assert_eq!(send_code(&flow, page, &recovery[3].to_uppercase()).await.status(), StatusCode::SEE_OTHER);
        let page = password_step(&mut flow).await;
        assert_eq!(send_code(&flow, page, &recovery[3]).await.status(), StatusCode::UNAUTHORIZED);
        assert!(flow.get("/account").await.status().is_redirection());

        let history = flow.history("User", "alice").await;
        for event in ["TwoFactorEnrolled", "PasswordVerified", "SecondFactorPassed", "RecoveryCodeUsed"] {
            assert!(history.iter().any(|e| e == event), "{event} in {history:?}");
        }
        // The secret is not in the log.
        let raw = crate::helpers::cli(&flow.app.db, &["events", "--aggregate", "User:alice", "--json"]);
        assert!(!String::from_utf8_lossy(&raw.stdout).contains(&secret));
    }
}

on_both_stores! {
    async fn id_tokens_say_how_the_person_signed_in_and_acr_values_asks_for_two_factors(kind: Kind) {
        let mut flow = Flow::new(kind).await;
        flow.user("alice", &[]).await;
        let client = flow.client(web_client()).await;
        // Signed in with a password, then enrolled: this session has one factor.
        let (secret, _) = enrol(&flow).await;
        let (_, challenge) = pkce();
        let mut params = vec![
            ("response_type", "code"),
            ("client_id", client.client_id.as_str()),
            ("code_challenge", challenge.as_str()),
            ("code_challenge_method", "S256"),
        ];
        assert_eq!(flow.authorize(&params).await.status(), StatusCode::OK, "one factor is enough when not asked");
        params.push(("acr_values", "2"));
        let step_up = flow.authorize(&params).await;
        assert_eq!(redirected(&step_up).url.path(), "/login", "asked for two factors: sign in again");

        let page = password_step(&mut flow).await;
        send_code(&flow, page, &code(&secret, 0)).await;
        let (verifier, challenge) = pkce();
        let code = flow.code(&client, "alice", &[("acr_values", "2")], &challenge).await;
        let (_, _, tokens) = flow.exchange(Auth::Basic(&client), &code, &verifier).await;
        let claims = flow.verify_id_token(tokens["id_token"].as_str().unwrap(), client.client_id.as_str()).await;
        assert_eq!(claims["amr"], serde_json::json!(["pwd", "otp"]));
        assert_eq!(claims["acr"], "2");
        let discovery: serde_json::Value = flow.get("/.well-known/openid-configuration").await.json().await.unwrap();
        assert_eq!(discovery["acr_values_supported"], serde_json::json!(["1", "2"]));
    }
}

on_both_stores! {
    async fn a_policy_makes_people_with_a_role_enrol_at_their_next_sign_in(kind: Kind) {
        let mut flow = Flow::new(kind).await;
        flow.user("alice", &["admin"]).await;
        flow.user("bob", &["reader"]).await;
        flow.set("require_two_factor", "admin").await;

        let bob = flow.sign_in_with("bob", &password_of("bob"), "/account").await;
        assert_eq!(bob.status(), StatusCode::SEE_OTHER, "not required of bob");

        let page = password_step(&mut flow).await;
        assert_eq!(page.status(), StatusCode::OK);
        let html = page.text().await.unwrap();
        assert!(html.contains("requires a second step") && html.contains("<svg"), "{html}");
        let secret = secret_on(&html);
        let mut form = forms(&html, "/login/two-factor/enrol").remove(0);
        form.push(("code".into(), code(&secret, 0)));
        let done = flow.browser.post(flow.app.url("/login/two-factor/enrol")).form(&form).send().await.unwrap();
        assert_eq!(done.status(), StatusCode::OK);
        assert_eq!(recovery_codes_on(&done.text().await.unwrap()).len(), 10);
        assert_eq!(flow.get("/account").await.status(), StatusCode::OK, "signed in");
        let audit = crate::helpers::cli(&flow.app.db, &["audit", "--user", "alice", "--type", "TwoFactorEnrolled", "--format", "json"]);
        assert!(String::from_utf8_lossy(&audit.stdout).contains("\"actor\":\"user:alice\""));

        // The admin API shows it, and resets it.
        let token = admin_token(&flow).await;
        let (_, shown) = admin(&flow, &token, reqwest::Method::GET, "/users/alice", None).await;
        assert_eq!(shown["two_factor"], true, "{shown}");
        let (status, reset) = admin(&flow, &token, reqwest::Method::POST, "/users/alice/two-factor/reset", None).await;
        assert_eq!((status, reset["two_factor"].as_bool()), (StatusCode::OK, Some(false)), "{reset}");
        let (status, _) = admin(&flow, &token, reqwest::Method::POST, "/users/nobody/two-factor/reset", None).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }
}

on_both_stores! {
    async fn wrong_codes_are_throttled_like_wrong_passwords_and_an_admin_can_reset(kind: Kind) {
        let mut flow = Flow::new(kind).await;
        flow.user("alice", &[]).await;
        flow.set("login_max_failures", "2").await;
        let (secret, _) = enrol(&flow).await;

        let page = password_step(&mut flow).await;
        let mut html = page.text().await.unwrap();
        let mut statuses = vec![];
        for _ in 0..4 {
            let answer = send_code_on(&flow, &html, "123456").await;
            statuses.push(answer.status());
            if answer.status() == StatusCode::TOO_MANY_REQUESTS {
                assert!(answer.headers().contains_key("retry-after"));
            }
            // Each answer is the code page again.
            html = answer.text().await.unwrap();
        }
        assert_eq!(statuses.last(), Some(&StatusCode::TOO_MANY_REQUESTS), "{statuses:?}");
        // Throttled, even the right code is not checked.
        let right = send_code_on(&flow, &html, &code(&secret, 0)).await;
        assert_eq!(right.status(), StatusCode::TOO_MANY_REQUESTS);

        // A lost phone: the administrator resets, and the password alone signs in again.
        let reset = crate::helpers::cli(&flow.app.db, &["user", "reset-two-factor", "alice"]);
        assert!(reset.status.success(), "{}", String::from_utf8_lossy(&reset.stderr));
        let shown: serde_json::Value = serde_json::from_slice(&reset.stdout).unwrap();
        assert_eq!(shown["two_factor"], false);
        flow.app.settle().await;
        let history = flow.history("User", "alice").await;
        assert_eq!(history.last().map(String::as_str), Some("TwoFactorRemoved"));
    }
}
