//! Sign-in and client authentication are throttled after failures, and the log records the
//! throttling once, not every refused attempt.

use reqwest::StatusCode;
use serde_json::Value;

use crate::oauth::flow::*;

on_both_stores! {
    async fn failed_sign_ins_make_the_account_wait_and_a_right_password_shows_nothing(kind: Kind) {
        let flow = Flow::new(kind).await;
        flow.user("alice", &[]).await;
        flow.set("login_max_failures", "3").await;
        flow.set("login_lockout_seconds", "60").await;
        for attempt in 1..=4 {
            let response = flow.sign_in_with("alice", "wrong", "/login").await;
            assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "attempt {attempt}");
        }
        // The fourth failure made the account wait: even the right password is refused
        // unchecked, with when to come back.
        for _ in 0..3 {
            let response = flow.sign_in_with("alice", &password_of("alice"), "/login").await;
            assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
            assert!(response.headers().contains_key("retry-after"));
            let page = response.text().await.unwrap();
            assert!(page.contains("Too many failed sign-ins"), "{page}");
        }
        let history = flow.history("User", "alice").await;
        let failed = history.iter().filter(|e| *e == "LoginFailed").count();
        let throttled = history.iter().filter(|e| *e == "LoginThrottled").count();
        assert_eq!((failed, throttled), (4, 1), "{history:?}");
        assert!(!history.contains(&"LoginSucceeded".to_owned()));
        let metrics = flow.get("/metrics").await.text().await.unwrap();
        for line in [
            "authledger_rate_limited_total{limit=\"sign_in\"} 3",
            "authledger_sign_ins_total{method=\"password\",outcome=\"wrong_password\"} 4",
            "authledger_sign_ins_total{method=\"password\",outcome=\"throttled\"} 1",
        ] {
            assert!(metrics.contains(line), "{line} in {metrics}");
        }

        // Once the wait is over, the right password works, and clears the count.
        tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
        let response = flow.sign_in_with("alice", &password_of("alice"), "/login").await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER);
    }
}

on_both_stores! {
    async fn an_unknown_name_is_answered_and_recorded_like_a_wrong_password(kind: Kind) {
        let mut flow = Flow::new(kind).await;
        flow.user("alice", &[]).await;
        let wrong = flow.sign_in_with("alice", "wrong", "/login").await;
        let wrong_status = wrong.status();
        let wrong_page = wrong.text().await.unwrap();
        flow.fresh_browser();
        let unknown = flow.sign_in_with("nobody", "wrong", "/login").await;
        assert_eq!(unknown.status(), wrong_status);
        let unknown_page = unknown.text().await.unwrap();
        let message = |page: &str| page.contains("Wrong username or password.");
        assert!(message(&wrong_page) && message(&unknown_page));
        assert_eq!(flow.history("User", "nobody").await, vec!["LoginFailed"]);
        // The name stays free to register.
        flow.user("nobody", &[]).await;
        flow.sign_in("nobody").await;
    }
}

on_both_stores! {
    async fn failed_client_authentications_make_that_client_wait_at_that_address(kind: Kind) {
        let flow = Flow::new(kind).await;
        flow.set("login_max_failures", "3").await;
        let client = flow.client(web_client()).await;
        let attempt = || async {
            flow.app
                .http
                .post(flow.app.url("/oauth/token"))
                .basic_auth(client.client_id.as_str(), Some("not-the-secret"))
                .form(&[("grant_type", "refresh_token"), ("refresh_token", "x")])
                .send()
                .await
                .unwrap()
        };
        for _ in 0..4 {
            assert_eq!(attempt().await.status(), StatusCode::UNAUTHORIZED);
        }
        let response = attempt().await;
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert!(response.headers().contains_key("retry-after"));
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"], "invalid_client", "{body}");
        let metrics = flow.get("/metrics").await.text().await.unwrap();
        assert!(metrics.contains("authledger_rate_limited_total{limit=\"client_authentication\"} 1"), "{metrics}");
    }
}

/// Behind a reverse proxy every connection comes from the proxy. With the proxy trusted
/// (`AUTHLEDGER_TRUSTED_PROXIES`), the address it forwards is the client's: in the events,
/// and for throttling, which then stops one client and not everyone. From an untrusted peer
/// the header is the client's own invention and is ignored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behind_a_trusted_proxy_the_forwarded_address_is_the_clients() {
    for trusted in [true, false] {
        let limits = authledger::http::Limits {
            trusted_proxies: authledger::config::TrustedProxies::parse(if trusted {
                "127.0.0.1"
            } else {
                ""
            })
            .unwrap(),
            ..Default::default()
        };
        let app =
            crate::helpers::TestApp::spawn_limited(crate::helpers::Kind::Sqlite, limits).await;
        let mut flow = Flow::with_app(app).await;
        flow.user("alice", &[]).await;
        // An address may fail four times as often as an account: six failures make it wait.
        flow.set("login_max_failures", "1").await;
        flow.set("login_lockout_seconds", "60").await;
        let from = |address: &str| {
            let mut headers = reqwest::header::HeaderMap::new();
            headers.insert(
                "x-forwarded-for",
                format!("6.6.6.6, {address}").parse().unwrap(),
            );
            reqwest::Client::builder()
                .cookie_store(true)
                .redirect(reqwest::redirect::Policy::none())
                .default_headers(headers)
                .build()
                .unwrap()
        };
        // Someone at 198.51.100.7 guesses names until the address waits.
        flow.browser = from("198.51.100.7");
        for n in 1..=6 {
            let response = flow
                .sign_in_with(&format!("guess{n}"), "wrong", "/login")
                .await;
            assert!(
                response.status() == StatusCode::UNAUTHORIZED || n > 5,
                "{n}"
            );
        }
        // alice, at another address, signs in: only the guesser's address waits.
        flow.browser = from("203.0.113.20");
        let alice = flow
            .sign_in_with("alice", &password_of("alice"), "/account")
            .await;
        let expected = if trusted {
            StatusCode::SEE_OTHER
        } else {
            StatusCode::TOO_MANY_REQUESTS
        };
        assert_eq!(alice.status(), expected, "trusted proxy: {trusted}");

        let rows = authledger_projections::audit::AuditLog::query(
            &flow.store.db,
            &authledger_projections::audit::AuditFilter {
                username: Some("guess1".into()),
                ..Default::default()
            },
            10,
        )
        .await
        .unwrap();
        let ip = if trusted { "198.51.100.7" } else { "127.0.0.1" };
        assert_eq!(rows[0].ip.as_deref(), Some(ip), "trusted proxy: {trusted}");
    }
}
