//! `/account`: a person sees who they are, where they are signed in, which applications they
//! allowed and their recent sign-ins, and can end sessions and remove an application's access.

use reqwest::header::LOCATION;
use reqwest::StatusCode;

use super::{forms, signed_in, tokens_for_alice};
use crate::oauth::flow::*;

async fn account(flow: &Flow) -> String {
    let page = flow.get("/account").await;
    assert_eq!(page.status(), StatusCode::OK);
    page.text().await.unwrap()
}

async fn active(flow: &Flow, client: &authledger::admin::clients::NewClient, token: &str) -> bool {
    let (status, _, body) = flow
        .token_at(
            "/oauth/introspect",
            Auth::Basic(client),
            &[("token", token)],
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["active"] == true
}

on_both_stores! {
    async fn a_signed_out_visitor_is_sent_to_sign_in_and_back(kind: Kind) {
        let flow = Flow::new(kind).await;
        flow.user("alice", &[]).await;
        let page = flow.get("/account").await;
        assert_eq!(page.status(), StatusCode::SEE_OTHER);
        assert_eq!(page.headers()[LOCATION], "/login?return_to=/account");
        let signed = flow.sign_in_with("alice", &password_of("alice"), "/account").await;
        assert_eq!(signed.headers()[LOCATION], "/account");
        let html = account(&flow).await;
        assert!(html.contains("alice Example") && html.contains("alice@example.com"), "{html}");
    }
}

on_both_stores! {
    async fn removing_an_application_withdraws_consent_and_its_tokens_stop_working(kind: Kind) {
        let flow = Flow::new(kind).await;
        flow.user("alice", &[]).await;
        let client = flow.client(web_client()).await;
        let tokens = tokens_for_alice(&flow, &client).await;
        let access = tokens["access_token"].as_str().unwrap();
        assert!(active(&flow, &client, access).await);

        let html = account(&flow).await;
        assert!(html.contains("Web App") && html.contains("see your name and picture"), "{html}");
        let form = forms(&html, "/account/applications/remove").remove(0);
        assert!(form.contains(&("client_id".into(), client.client_id.to_string())));
        let removed = flow.browser.post(flow.app.url("/account/applications/remove")).form(&form).send().await.unwrap();
        assert_eq!(removed.status(), StatusCode::SEE_OTHER);
        let location = removed.headers()[LOCATION].to_str().unwrap().to_owned();

        assert!(!active(&flow, &client, access).await, "the token stopped working at once");
        let (status, _, refused) = flow.token(Auth::Basic(&client), &[("grant_type", "refresh_token"), ("refresh_token", tokens["refresh_token"].as_str().unwrap())]).await;
        assert_eq!((status, refused["error"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_grant")));
        let html = flow.get(&location).await.text().await.unwrap();
        assert!(html.contains("access is removed") && !html.contains("see your name and picture"), "{html}");
        let audit = crate::helpers::cli(&flow.app.db, &["audit", "--user", "alice", "--type", "ConsentRevoked", "--format", "json"]);
        let line = String::from_utf8_lossy(&audit.stdout);
        assert!(line.contains("\"actor\":\"user:alice\""), "{line}");

        // A forged form does nothing.
        let forged = flow.browser.post(flow.app.url("/account/applications/remove")).form(&[("csrf_token", "x"), ("client_id", "y")]).send().await.unwrap();
        assert_eq!(forged.status(), StatusCode::BAD_REQUEST);
    }
}

on_both_stores! {
    async fn a_person_ends_another_session_and_then_every_other_one(kind: Kind) {
        let mut flow = Flow::new(kind).await;
        flow.user("alice", &[]).await;
        let client = flow.client(web_client()).await;
        let browsers: Vec<reqwest::Client> = {
            let mut signed = vec![];
            for _ in 0..3 {
                flow.fresh_browser();
                flow.sign_in("alice").await;
                signed.push(flow.browser.clone());
            }
            signed
        };
        // Wrong password once, to show up in the recent sign-ins.
        flow.fresh_browser();
        let failed = flow.sign_in_with("alice", "wrong password", "/account").await;
        assert_eq!(failed.status(), StatusCode::UNAUTHORIZED);
        flow.browser = browsers[0].clone();
        let html = account(&flow).await;
        assert!(html.contains("(this browser)"));
        let this_row = html.split("(this browser)").nth(1).unwrap();
        let last_active = this_row.split("data-label=\"Last active\">").nth(1).unwrap().split('<').next().unwrap();
        assert!(last_active.ends_with("UTC"), "the session in use was seen: {last_active}");
        assert!(html.contains("Failed") && html.contains("Signed in"), "{html}");

        let ends = forms(&html, "/account/sessions/end");
        let one = ends.iter().find(|f| f.iter().any(|(n, _)| n == "session")).unwrap().clone();
        let ended = flow.browser.post(flow.app.url("/account/sessions/end")).form(&one).send().await.unwrap();
        assert_eq!(ended.status(), StatusCode::SEE_OTHER);
        let still: Vec<bool> = {
            let mut still = vec![];
            for browser in &browsers {
                flow.browser = browser.clone();
                still.push(signed_in(&flow, &client).await);
            }
            still
        };
        assert_eq!(still.iter().filter(|s| **s).count(), 2, "exactly one other session ended: {still:?}");
        assert!(still[0], "not this one");

        flow.browser = browsers[0].clone();
        let html = account(&flow).await;
        let others = forms(&html, "/account/sessions/end").into_iter().find(|f| f.iter().any(|(n, _)| n == "others")).unwrap();
        flow.browser.post(flow.app.url("/account/sessions/end")).form(&others).send().await.unwrap();
        for (i, browser) in browsers.iter().enumerate() {
            flow.browser = browser.clone();
            assert_eq!(signed_in(&flow, &client).await, i == 0, "browser {i}");
        }
        let history = flow.history("User", "alice").await;
        assert!(history.iter().filter(|e| *e == "SessionEnded").count() >= 2, "{history:?}");
    }
}

on_both_stores! {
    async fn the_session_lifetime_is_a_setting_and_an_idle_limit_keeps_active_sessions_alive(kind: Kind) {
        let flow = Flow::new(kind).await;
        flow.user("alice", &[]).await;
        flow.set("session_lifetime", "600").await;
        let signed = flow.sign_in_with("alice", &password_of("alice"), "/account").await;
        let cookie = signed.headers().get_all("set-cookie").iter()
            .map(|c| c.to_str().unwrap().to_owned())
            .find(|c| c.starts_with("authledger_session="))
            .unwrap();
        assert!(cookie.contains("Max-Age=600"), "{cookie}");
        let history = flow.history("User", "alice").await;
        assert_eq!(history.last().map(String::as_str), Some("SessionStarted"));

        // With an idle limit, page views keep the session going; the settings refuse nonsense.
        flow.set("session_idle_timeout", "900").await;
        assert_eq!(flow.get("/account").await.status(), StatusCode::OK);
        let refused = crate::helpers::cli(&flow.app.db, &["settings", "set", "session_idle_timeout", "5"]);
        assert!(!refused.status.success());
        let refused = crate::helpers::cli(&flow.app.db, &["settings", "set", "session_lifetime", "10"]);
        assert!(!refused.status.success());
    }
}
