//! OpenID Connect Back-Channel Logout 1.0: when a session ends, each client that got an ID
//! token in it and registered a `backchannel_logout_uri` receives a logout token that
//! verifies against the JWKS; a client that never answers delays nobody.

use std::time::Duration;

use authledger::admin::clients::ClientInput;
use reqwest::StatusCode;
use serde_json::Value;
use tokio::sync::mpsc;

use super::tokens_for_alice;
use crate::oauth::flow::*;

/// A client's back-channel endpoint on loopback: hands each `logout_token` it is POSTed to
/// the test.
async fn receiver() -> (String, mpsc::UnboundedReceiver<String>) {
    let (sender, received) = mpsc::unbounded_channel();
    let app = axum::Router::new().route(
        "/backchannel",
        axum::routing::post(move |body: String| {
            let sender = sender.clone();
            async move {
                let token = form_urlencoded::parse(body.as_bytes())
                    .find(|(k, _)| k == "logout_token")
                    .map(|(_, v)| v.into_owned())
                    .unwrap_or_default();
                let _ = sender.send(token);
                StatusCode::OK
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{address}/backchannel"), received)
}

/// A client's back-channel endpoint that accepts connections and never answers.
async fn hanging_receiver() -> (String, mpsc::UnboundedReceiver<()>) {
    let (sender, accepted) = mpsc::unbounded_channel();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = vec![];
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
            let _ = sender.send(());
        }
    });
    (format!("http://{address}/backchannel"), accepted)
}

on_both_stores! {
    async fn ending_a_session_sends_each_client_a_logout_token_and_a_hanging_one_delays_nobody(kind: Kind) {
        let flow = Flow::new(kind).await;
        flow.user("alice", &[]).await;
        let (good_uri, mut tokens) = receiver().await;
        let (hanging_uri, mut accepted) = hanging_receiver().await;
        let listening = flow.client(ClientInput { backchannel_logout_uri: Some(good_uri), ..web_client() }).await;
        let hanging = flow.client(ClientInput { name: "Slow App".into(), backchannel_logout_uri: Some(hanging_uri), ..web_client() }).await;
        let silent = flow.client(ClientInput { name: "Other App".into(), ..web_client() }).await;
        let discovery: Value = flow.get("/.well-known/openid-configuration").await.json().await.unwrap();
        assert_eq!(discovery["backchannel_logout_supported"], true);
        assert_eq!(discovery["backchannel_logout_session_supported"], true);

        let issued = tokens_for_alice(&flow, &listening).await;
        tokens_for_alice(&flow, &hanging).await;
        tokens_for_alice(&flow, &silent).await;
        let id_token = issued["id_token"].as_str().unwrap();
        let sid = flow.verify_id_token(id_token, listening.client_id.as_str()).await["sid"].clone();

        // The person signs out; the answer does not wait for any client.
        let query = form_urlencoded::Serializer::new(String::new()).append_pair("id_token_hint", id_token).finish();
        let out = flow.get(&format!("/logout?{query}")).await;
        assert_eq!(out.status(), StatusCode::OK, "signed out");
        assert!(out.text().await.unwrap().contains("You are signed out."));

        let token = tokio::time::timeout(Duration::from_secs(10), tokens.recv()).await.expect("a logout token within 10 s").unwrap();
        let header = jsonwebtoken::decode_header(&token).unwrap();
        assert_eq!(header.typ.as_deref(), Some("logout+jwt"));
        let claims = flow.verify_id_token(&token, listening.client_id.as_str()).await;
        assert_eq!(claims["sub"], "alice");
        assert_eq!(claims["sid"], sid, "the session the ID token named");
        assert!(claims["events"]["http://schemas.openid.net/event/backchannel-logout"].is_object(), "{claims}");
        assert!(claims.get("nonce").is_none() && claims["jti"].is_string() && claims["iat"].is_number());

        // The hanging client was called too, and is still hanging.
        tokio::time::timeout(Duration::from_secs(10), accepted.recv()).await.expect("the slow client was called");
        // One session, one notice each.
        tokio::time::sleep(Duration::from_millis(1500)).await;
        assert!(tokens.try_recv().is_err(), "a second logout token for the same session");
    }
}

on_both_stores! {
    async fn a_session_ended_by_disabling_the_person_is_told_to_clients_too(kind: Kind) {
        let flow = Flow::new(kind).await;
        flow.user("alice", &[]).await;
        let (uri, mut tokens) = receiver().await;
        let client = flow.client(ClientInput { backchannel_logout_uri: Some(uri), ..web_client() }).await;
        tokens_for_alice(&flow, &client).await;

        let disabled = crate::helpers::cli(&flow.app.db, &["user", "disable", "alice"]);
        assert!(disabled.status.success());
        let token = tokio::time::timeout(Duration::from_secs(10), tokens.recv()).await.expect("a logout token").unwrap();
        let claims = flow.verify_id_token(&token, client.client_id.as_str()).await;
        assert_eq!(claims["sub"], "alice");
    }
}
