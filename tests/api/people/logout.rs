//! Signing out, and OpenID Connect RP-Initiated Logout 1.0: `end_session_endpoint` in
//! discovery, `sid` in ID tokens, `post_logout_redirect_uri` only when registered, and a
//! confirmation page when the request cannot be tied to the session.

use authledger::admin::clients::ClientInput;
use reqwest::StatusCode;
use serde_json::Value;

use super::{forms, signed_in, tokens_for_alice};
use crate::oauth::flow::*;

const BYE: &str = "https://app.example/signed-out";

fn client_with_logout() -> ClientInput {
    ClientInput {
        post_logout_redirect_uris: vec![BYE.into()],
        ..web_client()
    }
}

async fn logout(flow: &Flow, params: &[(&str, &str)]) -> reqwest::Response {
    let query = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(params)
        .finish();
    flow.get(&format!("/logout?{query}")).await
}

on_both_stores! {
    async fn discovery_names_the_end_session_endpoint_and_id_tokens_carry_the_session(kind: Kind) {
        let flow = Flow::new(kind).await;
        flow.user("alice", &[]).await;
        let client = flow.client(client_with_logout()).await;
        let discovery: Value = flow.get("/.well-known/openid-configuration").await.json().await.unwrap();
        assert_eq!(discovery["end_session_endpoint"], format!("{}/logout", flow.app.address));

        let tokens = tokens_for_alice(&flow, &client).await;
        let claims = flow.verify_id_token(tokens["id_token"].as_str().unwrap(), client.client_id.as_str()).await;
        let sid = claims["sid"].as_str().expect("an ID token from a sign-in names its session");
        assert!(sid.len() == 64 && sid.chars().all(|c| c.is_ascii_hexdigit()), "{sid}");

        // A second sign-in elsewhere is another session.
        let mut other = Flow::with_app(flow.app.another_instance(authledger::config::DEFAULT_TOKEN_CACHE).await).await;
        other.fresh_browser();
        let again = tokens_for_alice(&other, &client).await;
        let other_claims = other.verify_id_token(again["id_token"].as_str().unwrap(), client.client_id.as_str()).await;
        assert_ne!(other_claims["sid"], claims["sid"]);
        other.app.stop().await;
    }
}

on_both_stores! {
    async fn a_relying_party_signs_the_person_out_and_gets_them_back_with_its_state(kind: Kind) {
        let flow = Flow::new(kind).await;
        flow.user("alice", &[]).await;
        let client = flow.client(client_with_logout()).await;
        let tokens = tokens_for_alice(&flow, &client).await;
        let id_token = tokens["id_token"].as_str().unwrap();

        let back = logout(&flow, &[("id_token_hint", id_token), ("post_logout_redirect_uri", BYE), ("state", "s-1")]).await;
        assert_eq!(back.status(), StatusCode::SEE_OTHER, "tied to the session by the hint: no question");
        let back = redirected(&back);
        assert_eq!(back.url.as_str().split('?').next(), Some(BYE));
        assert_eq!(back.get("state"), Some("s-1"));
        assert!(!signed_in(&flow, &client).await, "the session ended");
        let history = flow.history("User", "alice").await;
        assert_eq!(history.last().map(String::as_str), Some("SessionEnded"), "{history:?}");
    }
}

on_both_stores! {
    async fn an_unregistered_post_logout_redirect_uri_is_refused_on_a_page(kind: Kind) {
        let flow = Flow::new(kind).await;
        flow.user("alice", &[]).await;
        let client = flow.client(client_with_logout()).await;
        let tokens = tokens_for_alice(&flow, &client).await;
        let id_token = tokens["id_token"].as_str().unwrap();

        for params in [
            vec![("id_token_hint", id_token), ("post_logout_redirect_uri", "https://evil.example/")],
            vec![("client_id", client.client_id.as_str()), ("post_logout_redirect_uri", "https://app.example/signed-out/other")],
            vec![("post_logout_redirect_uri", BYE)],
            vec![("id_token_hint", "not.a.token"), ("post_logout_redirect_uri", BYE)],
            vec![("id_token_hint", id_token), ("client_id", "someone-else"), ("post_logout_redirect_uri", BYE)],
        ] {
            let refused = logout(&flow, &params).await;
            assert_eq!(refused.status(), StatusCode::BAD_REQUEST, "{params:?}");
            assert!(refused.headers().get("location").is_none());
            assert!(refused.headers()["content-type"].to_str().unwrap().starts_with("text/html"));
        }
        assert!(signed_in(&flow, &client).await, "nothing was signed out");
    }
}

on_both_stores! {
    async fn a_request_that_cannot_be_tied_to_the_session_asks_the_person_first(kind: Kind) {
        let flow = Flow::new(kind).await;
        flow.user("alice", &[]).await;
        let client = flow.client(client_with_logout()).await;
        flow.sign_in("alice").await;

        // A bare link (a third-party page could embed it): a question, not a sign-out.
        let page = logout(&flow, &[("client_id", client.client_id.as_str()), ("post_logout_redirect_uri", BYE), ("state", "s-2")]).await;
        assert_eq!(page.status(), StatusCode::OK);
        let html = page.text().await.unwrap();
        assert!(html.contains("Sign out of authledger?") && html.contains("Web App"), "{html}");
        assert!(signed_in(&flow, &client).await, "asking signs nobody out");

        // A forged confirmation is refused.
        let forged = flow.browser.post(flow.app.url("/logout")).form(&[("csrf_token", "forged")]).send().await.unwrap();
        assert_eq!(forged.status(), StatusCode::BAD_REQUEST);
        assert!(signed_in(&flow, &client).await);

        // The person confirms: signed out, and back to the client with its state.
        let form = forms(&html, "/logout").remove(0);
        let confirmed = flow.browser.post(flow.app.url("/logout")).form(&form).send().await.unwrap();
        let back = redirected(&confirmed);
        assert_eq!(back.get("state"), Some("s-2"));
        assert!(!signed_in(&flow, &client).await);

        // Signed out already: nothing to ask, straight back.
        let again = logout(&flow, &[("client_id", client.client_id.as_str()), ("post_logout_redirect_uri", BYE)]).await;
        assert_eq!(again.status(), StatusCode::SEE_OTHER);
    }
}

on_both_stores! {
    async fn the_sign_out_link_on_every_signed_in_page_works(kind: Kind) {
        let flow = Flow::new(kind).await;
        flow.user("alice", &[]).await;
        let client = flow.client(web_client()).await;
        flow.sign_in("alice").await;
        let (_, challenge) = pkce();
        let consent = flow.authorize(&[
            ("response_type", "code"),
            ("client_id", client.client_id.as_str()),
            ("code_challenge", challenge.as_str()),
            ("code_challenge_method", "S256"),
        ]).await;
        let html = consent.text().await.unwrap();
        assert!(html.contains("href=\"/logout\""), "the consent page links sign-out");
        assert!(html.contains("Not you?"));
        for path in ["/account", "/login"] {
            let page = flow.get(path).await.text().await.unwrap();
            assert!(page.contains("href=\"/logout\""), "{path}");
        }

        // "Not you?": sign out, then back to the same request, which asks to sign in.
        let not_you = html.split("Not you?").next().unwrap().rsplit("href=\"").next().unwrap().split('"').next().unwrap();
        let question = flow.get(&unescape(not_you)).await;
        let form = forms(&question.text().await.unwrap(), "/logout").remove(0);
        let out = flow.browser.post(flow.app.url("/logout")).form(&form).send().await.unwrap();
        let next = redirected(&out);
        assert_eq!(next.url.path(), "/oauth/authorize");
        let to_login = flow.get(&format!("{}?{}", next.url.path(), next.url.query().unwrap())).await;
        assert_eq!(redirected(&to_login).url.path(), "/login");
        let login = flow.get(&format!("/login?return_to={}", urlencode(&format!("{}?{}", next.url.path(), next.url.query().unwrap())))).await;
        assert!(login.text().await.unwrap().contains("Sign in to continue to Web App"));
    }
}

on_both_stores! {
    async fn registrants_declare_their_logout_addresses_in_rfc_7591_metadata(kind: Kind) {
        let flow = Flow::new(kind).await;
        flow.set("enable_dynamic_registration", "true").await;
        let (status, _, body) = register(&flow, serde_json::json!({
            "redirect_uris": ["https://rp.example/cb"],
            "post_logout_redirect_uris": ["https://rp.example/bye"],
            "backchannel_logout_uri": "https://rp.example/backchannel",
            "backchannel_logout_session_required": true,
        })).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        assert_eq!(body["post_logout_redirect_uris"], serde_json::json!(["https://rp.example/bye"]));
        assert_eq!(body["backchannel_logout_uri"], "https://rp.example/backchannel");
        assert_eq!(body["backchannel_logout_session_required"], true);

        // The server would POST there by itself: a registrant may not aim it at plain HTTP.
        let (status, _, body) = register(&flow, serde_json::json!({
            "redirect_uris": ["https://rp.example/cb"],
            "backchannel_logout_uri": "http://10.0.0.1/internal",
        })).await;
        assert_eq!((status, body["error"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_client_metadata")), "{body}");
        let (status, _, body) = register(&flow, serde_json::json!({
            "redirect_uris": ["https://rp.example/cb"],
            "post_logout_redirect_uris": ["/relative"],
        })).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert!(body["error_description"].as_str().unwrap().contains("post_logout_redirect_uris[0]"), "{body}");
    }
}
