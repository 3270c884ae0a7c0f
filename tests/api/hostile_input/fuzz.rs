//! A few thousand generated requests against every endpoint, from a fixed seed (so a failure
//! reproduces): no 5xx, no answer slower than the timeouts, every refusal in its endpoint's
//! format, and the server still serving and rebuilding afterwards.

use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use reqwest::{Method, StatusCode};

use crate::helpers::*;
use crate::oauth::flow::*;

const PATHS: &[&str] = &[
    "/oauth/authorize",
    "/oauth/token",
    "/oauth/introspect",
    "/oauth/revoke",
    "/oauth/userinfo",
    "/oauth/jwks",
    "/oauth/register",
    "/oauth/register/x",
    "/login",
    "/logout",
    "/.well-known/openid-configuration",
    "/.well-known/oauth-protected-resource/a",
    "/admin/api/clients",
    "/admin/api/clients/x",
    "/admin/api/users",
    "/admin/api/audit",
    "/admin/api/usage",
    "/admin/api/settings",
    "/api/method/frappe.integrations.oauth2.get_token",
    "/api/method/frappe.integrations.oauth2.authorize",
    "/healthz",
    "/readyz",
    "/metrics",
    "/nowhere",
];
const NAMES: &[&str] = &[
    "grant_type",
    "client_id",
    "client_secret",
    "code",
    "redirect_uri",
    "scope",
    "state",
    "response_type",
    "code_verifier",
    "code_challenge",
    "refresh_token",
    "token",
    "username",
    "password",
    "return_to",
    "csrf_token",
    "decision",
    "prompt",
    "nonce",
    "cursor",
    "limit",
];
const VALUES: &[&str] = &[
    "authorization_code",
    "client_credentials",
    "refresh_token",
    "code",
    "token",
    "openid",
    "https://app.example/callback",
    "alat_",
    "",
    "%00",
    "%0A",
    "%FF",
    "a%00b",
    "\u{e9}",
    "9999999999999999999999",
    "-1",
    "true",
    "none",
    "login consent",
    "//evil.example",
];

fn value(rng: &mut StdRng) -> String {
    match rng.gen_range(0..4) {
        0 => (0..rng.gen_range(0..40))
            .map(|_| rng.gen_range(1u8..128) as char)
            .collect(),
        1 => "x".repeat(rng.gen_range(0..5000)),
        _ => VALUES[rng.gen_range(0..VALUES.len())].to_owned(),
    }
}

fn form(rng: &mut StdRng) -> String {
    (0..rng.gen_range(0..6))
        .map(|_| format!("{}={}", NAMES[rng.gen_range(0..NAMES.len())], value(rng)))
        .collect::<Vec<_>>()
        .join("&")
}

on_both_stores! {
    async fn thousands_of_generated_requests_get_no_5xx_and_answers_in_their_format(kind: Kind) {
        let flow = Flow::new(kind).await;
        flow.set("enable_dynamic_registration", "true").await;
        flow.set("registration_rate_limit", "100000").await;
        let mut rng = StdRng::seed_from_u64(0x617574686c6564);
        let methods = [Method::GET, Method::POST, Method::PUT, Method::DELETE, Method::PATCH];
        let mut answered = 0;
        for i in 0..1500 {
            let path = PATHS[rng.gen_range(0..PATHS.len())];
            let method = methods[rng.gen_range(0..methods.len())].clone();
            let url = format!("{}?{}", flow.app.url(path), form(&mut rng));
            let mut request = flow.app.http.request(method.clone(), &url);
            request = match rng.gen_range(0..5) {
                0 => request.header("content-type", "application/x-www-form-urlencoded").body(form(&mut rng)),
                1 => request.header("content-type", "application/json").body(format!("{{\"client_name\":\"{}\",\"redirect_uris\":[\"{}\"]}}", value(&mut rng).replace('"', ""), value(&mut rng).replace('"', ""))),
                2 => request.header("content-type", "application/json").body(value(&mut rng)),
                3 => request.header("authorization", format!("{} {}", ["Basic", "Bearer", "basic"][rng.gen_range(0..3)], value(&mut rng).replace(['\r', '\n'], ""))),
                _ => request,
            };
            let started = Instant::now();
            let Ok(response) = request.send().await else {
                continue; // a header value reqwest itself refuses to send
            };
            let took = started.elapsed();
            answered += 1;
            let status = response.status();
            let content_type = response.headers().get("content-type").map(|v| v.to_str().unwrap_or("").to_owned()).unwrap_or_default();
            let body = response.text().await.unwrap_or_default();
            let what = format!("#{i} {method} {url}");
            assert!(!status.is_server_error(), "{what}: {status} {body}");
            assert!(took < Duration::from_secs(5), "{what}: {took:?}");
            if status.is_client_error() {
                let page = ["/login", "/logout", "/oauth/authorize", "/api/method/frappe.integrations.oauth2.authorize"].contains(&path);
                if page {
                    assert!(content_type.starts_with("text/html"), "{what}: {status} {content_type} {body}");
                } else {
                    assert!(content_type.starts_with("application/json"), "{what}: {status} {content_type} {body}");
                    let json: serde_json::Value = serde_json::from_str(&body).unwrap_or_else(|e| panic!("{what}: {e}: {body}"));
                    assert!(json["error"].is_string(), "{what}: {body}");
                }
            }
        }
        assert!(answered > 1400, "only {answered} requests could be sent");
        let health = flow.app.http.get(flow.app.url("/readyz")).send().await.unwrap();
        assert_eq!(health.status(), StatusCode::OK);
        let output = cli(&flow.app.db, &["projections", "rebuild"]);
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        let db = flow.app.stop().await;
        let again = TestApp::spawn_on(db).await;
        let health = again.http.get(again.url("/healthz")).send().await.unwrap();
        assert_eq!(health.status(), StatusCode::OK);
    }
}
