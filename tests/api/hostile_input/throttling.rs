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
