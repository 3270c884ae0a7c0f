//! `/admin/api/openapi.json`: the document covers every route, each documented operation is
//! served, and a fuzzer driving the real server from the document finds no 5xx and no answer
//! that contradicts it.

use std::collections::BTreeSet;

use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::helpers::*;
use crate::oauth::flow::{admin_token, Flow};

async fn document(flow: &Flow) -> Value {
    let response = flow
        .app
        .http
        .get(flow.app.url("/admin/api/openapi.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    response.json().await.unwrap()
}

/// Every (METHOD, path) the document lists.
fn operations(document: &Value) -> BTreeSet<(String, String)> {
    let mut found = BTreeSet::new();
    for (path, item) in document["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            if ["get", "put", "post", "delete", "patch"].contains(&method.as_str()) {
                found.insert((method.to_uppercase(), path.clone()));
            }
        }
    }
    found
}

/// The admin API and registration routes as the contract (docs/contract.md) and the tests of
/// each resource know them. The router mounts only documented handlers (`routes!`); this list
/// keeps a route from disappearing from the document unnoticed.
const KNOWN: &[(&str, &str)] = &[
    ("GET", "/admin/api/clients"),
    ("POST", "/admin/api/clients"),
    ("GET", "/admin/api/clients/{id}"),
    ("PATCH", "/admin/api/clients/{id}"),
    ("POST", "/admin/api/clients/{id}/disable"),
    ("POST", "/admin/api/clients/{id}/enable"),
    ("POST", "/admin/api/clients/{id}/rotate-secret"),
    ("GET", "/admin/api/users"),
    ("POST", "/admin/api/users"),
    ("GET", "/admin/api/users/{username}"),
    ("POST", "/admin/api/users/{username}/disable"),
    ("POST", "/admin/api/users/{username}/enable"),
    ("POST", "/admin/api/users/{username}/erase"),
    ("POST", "/admin/api/users/{username}/two-factor/reset"),
    ("PUT", "/admin/api/users/{username}/roles"),
    ("GET", "/admin/api/consents"),
    ("POST", "/admin/api/consents/revoke"),
    ("GET", "/admin/api/grants"),
    ("GET", "/admin/api/grants/{id}"),
    ("POST", "/admin/api/grants/{id}/revoke"),
    ("GET", "/admin/api/tokens"),
    ("GET", "/admin/api/audit"),
    ("GET", "/admin/api/usage"),
    ("GET", "/admin/api/ledger/export"),
    ("GET", "/admin/api/connected-apps"),
    ("POST", "/admin/api/connected-apps"),
    ("GET", "/admin/api/connected-apps/{id}"),
    ("DELETE", "/admin/api/connected-apps/{id}"),
    ("GET", "/admin/api/connected-apps/{id}/token"),
    ("POST", "/admin/api/connected-apps/{id}/disconnect"),
    ("GET", "/admin/api/social-logins"),
    ("POST", "/admin/api/social-logins"),
    ("GET", "/admin/api/social-logins/identities"),
    ("GET", "/admin/api/social-logins/{id}"),
    ("PATCH", "/admin/api/social-logins/{id}"),
    ("DELETE", "/admin/api/social-logins/{id}"),
    ("POST", "/admin/api/social-logins/{id}/unlink"),
    ("GET", "/admin/api/resources"),
    ("POST", "/admin/api/resources"),
    ("GET", "/admin/api/resources/{identifier}"),
    ("PATCH", "/admin/api/resources/{identifier}"),
    ("DELETE", "/admin/api/resources/{identifier}"),
    ("GET", "/admin/api/settings"),
    ("PATCH", "/admin/api/settings"),
    ("GET", "/admin/api/openapi.json"),
    ("POST", "/oauth/register"),
    ("GET", "/oauth/register/{client_id}"),
    ("PUT", "/oauth/register/{client_id}"),
    ("DELETE", "/oauth/register/{client_id}"),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_document_is_openapi_3_1_and_lists_every_route() {
    let flow = Flow::new(Kind::Sqlite).await;
    let document = document(&flow).await;
    assert_eq!(document["openapi"], "3.1.0");
    let known: BTreeSet<(String, String)> = KNOWN
        .iter()
        .map(|(m, p)| (m.to_string(), p.to_string()))
        .collect();
    let listed = operations(&document);
    let missing: Vec<_> = known.difference(&listed).collect();
    assert!(
        missing.is_empty(),
        "routes missing from the document: {missing:?}"
    );
    let unknown: Vec<_> = listed.difference(&known).collect();
    assert!(
        unknown.is_empty(),
        "the document lists routes this test does not know (add them to KNOWN): {unknown:?}"
    );
    for (method, path) in &listed {
        let operation = &document["paths"][path][method.to_lowercase()];
        let responses = operation["responses"].as_object().unwrap();
        assert!(
            responses.keys().any(|s| s.starts_with('2')),
            "{method} {path}: no success response"
        );
        if path.starts_with("/admin/api/") && !path.ends_with("openapi.json") {
            for status in ["400", "401", "403", "500", "503"] {
                assert!(
                    responses.contains_key(status),
                    "{method} {path}: {status} undocumented"
                );
            }
            assert_eq!(
                operation["security"][0]["admin_token"],
                serde_json::json!([])
            );
        }
        if path.contains('{') {
            assert!(responses.contains_key("404"), "{method} {path}: no 404");
        }
    }
    // Request bodies refuse unknown fields, as the handlers do.
    let new_user = &document["components"]["schemas"]["NewUserBody"];
    assert_eq!(new_user["additionalProperties"], false);
    assert!(new_user["required"]
        .as_array()
        .unwrap()
        .contains(&"username".into()));
}

/// Each documented operation is served (a missing one answers 404 or 405), and each admin
/// operation refuses a caller without a token with the documented 401; a method the document
/// does not list on a path is 405.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_documented_operation_is_served_and_guarded() {
    let flow = Flow::new(Kind::Sqlite).await;
    flow.set("enable_dynamic_registration", "true").await;
    let document = document(&flow).await;
    for (method, path) in operations(&document) {
        let concrete = path
            .replace("{id}", "nosuch")
            .replace("{username}", "nosuch")
            .replace("{client_id}", "nosuch");
        let response = flow
            .app
            .http
            .request(
                Method::from_bytes(method.as_bytes()).unwrap(),
                flow.app.url(&concrete),
            )
            .send()
            .await
            .unwrap();
        let status = response.status();
        let expected = match (method.as_str(), path.as_str()) {
            ("GET", "/admin/api/openapi.json") => StatusCode::OK,
            // No JSON content type: refused before anything else is looked at.
            ("POST", "/oauth/register") => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            _ => StatusCode::UNAUTHORIZED,
        };
        assert_eq!(status, expected, "{method} {concrete}");
        if status == StatusCode::UNAUTHORIZED {
            assert!(
                response.headers().contains_key("www-authenticate"),
                "{method} {concrete}: 401 without WWW-Authenticate"
            );
        }
        let documented = &document["paths"][&path][method.to_lowercase()]["responses"];
        assert!(
            documented.get(status.as_str()).is_some(),
            "{method} {concrete}: {status} is not in the document"
        );
    }
    let paths: BTreeSet<String> = operations(&document).into_iter().map(|(_, p)| p).collect();
    for path in paths {
        let concrete = path.replace("{id}", "x").replace("{username}", "x");
        let concrete = concrete.replace("{client_id}", "x");
        for method in ["GET", "PUT", "POST", "DELETE", "PATCH"] {
            if document["paths"][&path][method.to_lowercase()].is_object() {
                continue;
            }
            let response = flow
                .app
                .http
                .request(
                    Method::from_bytes(method.as_bytes()).unwrap(),
                    flow.app.url(&concrete),
                )
                .send()
                .await
                .unwrap();
            assert_eq!(
                response.status(),
                StatusCode::METHOD_NOT_ALLOWED,
                "{method} {concrete} is served but not documented"
            );
        }
    }
}

/// schemathesis, from PyPI if missing.
fn ensure_schemathesis() {
    ensure_python(
        &["-m", "schemathesis.cli", "--version"],
        &["schemathesis>=4,<5"],
    );
}

/// schemathesis generates requests from the document (valid and invalid), sends them with an
/// admin token, and checks each answer: no 5xx, a documented status, content type and body
/// schema, invalid input refused. Against a store with a client, a person, a grant and a
/// connected app in it, so that reads find something.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fuzzer_driven_by_the_document_finds_no_server_error_and_no_contradiction() {
    ensure_schemathesis();
    let flow = Flow::new(Kind::Sqlite).await;
    flow.set("enable_dynamic_registration", "true").await;
    flow.user("alice", &["admin"]).await;
    let token = admin_token(&flow).await;
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/clients/openapi_fuzz.sh");
    let base = flow.app.address.clone();
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new("bash")
            .args([script, &base, &token])
            .output()
            .expect("bash runs")
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "schemathesis found problems:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
}
