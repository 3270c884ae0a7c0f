//! Resource indicators (RFC 8707) and JWT access tokens (RFC 9068), black box: tokens are
//! restricted to the resources a request names, a request may narrow them and never widen
//! them, and a resource that takes JWTs gets one a resource server verifies with the JWKS.

use authledger::admin::clients::ClientInput;
use authledger::admin::resources::{self, ResourceInput};
use authledger_domain::metadata::Actor;
use reqwest::StatusCode;
use serde_json::{json, Value};

use super::flow::*;
use crate::helpers::*;

const ORDERS: &str = "https://api.example/orders";
const MCP: &str = "https://mcp.example/mcp";
const BILLING: &str = "https://api.example/billing";

async fn resource(flow: &Flow, identifier: &str, format: &str, clients: Vec<String>) {
    let input = ResourceInput {
        name: Some(format!("API at {identifier}")),
        scope: vec!["read write".into()],
        token_format: Some(format.into()),
        access_token_ttl: (format == "jwt").then_some(300),
        allowed_clients: clients,
        introspecting_clients: vec![],
        signing_alg: None,
    };
    resources::create(
        &flow.store,
        identifier,
        input,
        &metadata(Actor::Cli("ops".into())),
    )
    .await
    .unwrap();
    // The server reads resources from its live index, which follows the log.
    flow.app.settle().await;
}

fn machine() -> ClientInput {
    ClientInput {
        name: "Billing job".into(),
        redirect_uris: vec![],
        scope: Some("read write".into()),
        grant_types: vec!["client_credentials".into()],
        ..ClientInput::default()
    }
}

async fn introspect(
    flow: &Flow,
    client: &authledger::admin::clients::NewClient,
    token: &str,
) -> Value {
    flow.token_at(
        "/oauth/introspect",
        Auth::Basic(client),
        &[("token", token)],
    )
    .await
    .2
}

/// Verifies an RFC 9068 access token as a resource server would: the JWKS alone.
async fn verify_access_token(flow: &Flow, token: &str, audience: &str) -> Value {
    let header = jsonwebtoken::decode_header(token).unwrap();
    assert_eq!(header.typ.as_deref(), Some("at+jwt"), "RFC 9068 §2.1");
    let jwks: jsonwebtoken::jwk::JwkSet = flow.get("/oauth/jwks").await.json().await.unwrap();
    let jwk = jwks
        .find(header.kid.as_deref().unwrap())
        .expect("the key is published");
    let key = jsonwebtoken::DecodingKey::from_jwk(jwk).unwrap();
    let mut validation = jsonwebtoken::Validation::new(header.alg);
    validation.set_audience(&[audience]);
    validation.set_issuer(&[flow.app.address.as_str()]);
    validation.set_required_spec_claims(&["exp", "iat", "iss", "aud", "sub"]);
    jsonwebtoken::decode::<Value>(token, &key, &validation)
        .expect("the access token verifies with the JWKS")
        .claims
}

on_both_stores! {
    async fn client_credentials_tokens_are_restricted_to_the_resources_named(kind: Kind) {
        let flow = Flow::new(kind).await;
        let job = flow.client(machine()).await;
        let other = flow.client(ClientInput { name: "Other job".into(), ..machine() }).await;
        resource(&flow, ORDERS, "opaque", vec![]).await;
        resource(&flow, MCP, "jwt", vec![]).await;
        resource(&flow, BILLING, "opaque", vec![other.client_id.to_string()]).await;
        let cc = |resources: &[&'static str]| {
            let mut form = vec![("grant_type", "client_credentials")];
            form.extend(resources.iter().map(|r| ("resource", *r)));
            form
        };

        // An opaque token for one resource: introspection says it is for that resource.
        let (status, _, tokens) = flow.token(Auth::Basic(&job), &cc(&[ORDERS])).await;
        assert_eq!(status, StatusCode::OK, "{tokens}");
        let opaque = tokens["access_token"].as_str().unwrap();
        assert!(opaque.starts_with("alat_"));
        let answer = introspect(&flow, &job, opaque).await;
        assert_eq!(answer["active"], true);
        assert_eq!(answer["aud"], json!([ORDERS]), "{answer}");

        // Without a resource, a token is the client's, as before.
        let (_, _, plain) = flow.token(Auth::Basic(&job), &cc(&[])).await;
        let plain = plain["access_token"].as_str().unwrap().to_owned();
        let answer = introspect(&flow, &job, &plain).await;
        assert_eq!(answer["aud"], job.client_id.as_str());

        // The resource's server introspects the tokens for it (with its own client), and
        // nothing else of other clients'.
        let server = flow.client(ClientInput { name: "Orders server".into(), ..machine() }).await;
        assert_eq!(introspect(&flow, &server, opaque).await["active"], false, "not yet its server");
        let who = metadata(Actor::Cli("ops".into()));
        let input = ResourceInput { introspecting_clients: vec![server.client_id.to_string()], ..ResourceInput::default() };
        resources::update(&flow.store, ORDERS, input, &who).await.unwrap();
        flow.app.settle().await;
        let answer = introspect(&flow, &server, opaque).await;
        assert_eq!((answer["active"].clone(), answer["client_id"].clone()), (json!(true), json!(job.client_id.as_str())), "{answer}");
        assert_eq!(introspect(&flow, &server, &plain).await["active"], false);

        // A JWT for a resource that takes one, verified with the JWKS alone.
        let (status, _, tokens) = flow.token(Auth::Basic(&job), &cc(&[MCP])).await;
        assert_eq!(status, StatusCode::OK, "{tokens}");
        assert_eq!(tokens["expires_in"], 300, "the resource's lifetime");
        let jwt = tokens["access_token"].as_str().unwrap().to_owned();
        let claims = verify_access_token(&flow, &jwt, MCP).await;
        assert_eq!(claims["sub"], job.client_id.as_str());
        assert_eq!(claims["client_id"], job.client_id.as_str());
        assert_eq!(claims["scope"], "read write");
        assert_eq!(claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(), 300);
        assert!(claims["jti"].is_string());
        // The server knows it too: introspection, then revocation.
        let answer = introspect(&flow, &job, &jwt).await;
        assert_eq!((answer["active"].clone(), answer["aud"].clone()), (json!(true), json!([MCP])), "{answer}");
        let (status, _, _) = flow.token_at("/oauth/revoke", Auth::Basic(&job), &[("token", &jwt)]).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(introspect(&flow, &job, &jwt).await["active"], false);

        // A resource may ask for another algorithm the JWKS publishes: ES256 here. HS256,
        // which no JWKS can verify, is refused.
        let es256 = ResourceInput { signing_alg: Some("ES256".into()), ..ResourceInput::default() };
        resources::update(&flow.store, MCP, es256, &who).await.unwrap();
        let hs256 = ResourceInput { signing_alg: Some("HS256".into()), ..ResourceInput::default() };
        let refused = resources::update(&flow.store, MCP, hs256, &who).await.unwrap_err();
        assert!(refused.to_string().contains("signing_alg"), "{refused}");
        flow.app.settle().await;
        let (status, _, tokens) = flow.token(Auth::Basic(&job), &cc(&[MCP])).await;
        assert_eq!(status, StatusCode::OK, "{tokens}");
        let es256_jwt = tokens["access_token"].as_str().unwrap();
        assert_eq!(jsonwebtoken::decode_header(es256_jwt).unwrap().alg, jsonwebtoken::Algorithm::ES256);
        assert_eq!(verify_access_token(&flow, es256_jwt, MCP).await["sub"], job.client_id.as_str());

        // Resources that cannot be granted: invalid_target (RFC 8707 §2).
        for (resources, why) in [
            (vec!["https://unknown.example/api"], "unknown"),
            (vec![BILLING], "not open to this client"),
            (vec!["/relative"], "absolute"),
            (vec!["https://api.example/orders#frag"], "fragment"),
            (vec![ORDERS, MCP], "different formats"),
        ] {
            let (status, _, refused) = flow.token(Auth::Basic(&job), &cc(&resources)).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{resources:?}");
            assert_eq!(refused["error"], "invalid_target", "{refused}");
            assert!(refused["error_description"].as_str().unwrap().contains(why), "{refused}");
        }
        let (status, _, _) = flow.token(Auth::Basic(&other), &cc(&[BILLING])).await;
        assert_eq!(status, StatusCode::OK);

        // The ledger records each token's audience.
        let everything = everything_stored(&flow.app.db).await;
        assert!(everything.contains(MCP) && !everything.contains(&jwt));
    }
}

on_both_stores! {
    async fn a_code_grant_narrows_its_resources_and_never_widens_them(kind: Kind) {
        let flow = Flow::new(kind).await;
        flow.user("alice", &[]).await;
        let client = flow.client(ClientInput { skip_authorization: true, ..web_client() }).await;
        resource(&flow, ORDERS, "opaque", vec![]).await;
        resource(&flow, BILLING, "opaque", vec![]).await;
        resource(&flow, MCP, "jwt", vec![]).await;
        let (verifier, challenge) = pkce();
        let code = flow
            .code(&client, "alice", &[("resource", ORDERS), ("resource", BILLING)], &challenge)
            .await;
        let (status, _, tokens) = flow
            .token(
                Auth::Basic(&client),
                &[
                    ("grant_type", "authorization_code"), ("code", &code), ("redirect_uri", REDIRECT),
                    ("code_verifier", &verifier), ("resource", ORDERS),
                ],
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{tokens}");
        let answer = introspect(&flow, &client, tokens["access_token"].as_str().unwrap()).await;
        assert_eq!(answer["aud"], json!([ORDERS]), "{answer}");
        assert_eq!(answer["username"], "alice");

        // A refresh may pick another of the granted resources...
        let refresh = tokens["refresh_token"].as_str().unwrap();
        let (status, _, refreshed) = flow
            .token(Auth::Basic(&client), &[("grant_type", "refresh_token"), ("refresh_token", refresh), ("resource", BILLING)])
            .await;
        assert_eq!(status, StatusCode::OK, "{refreshed}");
        let answer = introspect(&flow, &client, refreshed["access_token"].as_str().unwrap()).await;
        assert_eq!(answer["aud"], json!([BILLING]), "{answer}");
        // ...and never one that was not granted.
        let refresh = refreshed["refresh_token"].as_str().unwrap();
        let (status, _, refused) = flow
            .token(Auth::Basic(&client), &[("grant_type", "refresh_token"), ("refresh_token", refresh), ("resource", MCP)])
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(refused["error"], "invalid_target", "{refused}");
        // Without `resource`, the token is for every granted resource.
        let (status, _, both) = flow
            .token(Auth::Basic(&client), &[("grant_type", "refresh_token"), ("refresh_token", refresh)])
            .await;
        assert_eq!(status, StatusCode::OK, "{both}");
        let answer = introspect(&flow, &client, both["access_token"].as_str().unwrap()).await;
        assert_eq!(answer["aud"], json!([ORDERS, BILLING]), "{answer}");

        // A person's JWT access token names them.
        let (verifier, challenge) = pkce();
        let code = flow.code(&client, "alice", &[("resource", MCP), ("scope", "openid profile")], &challenge).await;
        let (_, _, tokens) = flow.exchange(Auth::Basic(&client), &code, &verifier).await;
        let claims = verify_access_token(&flow, tokens["access_token"].as_str().unwrap(), MCP).await;
        assert_eq!(claims["sub"], "alice");
        assert_eq!(claims["client_id"], client.client_id.as_str());
        assert!(claims["auth_time"].is_i64());

        // A person asked for consent sees which APIs the access is limited to.
        let asking = flow.client(web_client()).await;
        let (_, challenge) = pkce();
        let page = flow
            .authorize(&[
                ("response_type", "code"), ("client_id", asking.client_id.as_str()),
                ("redirect_uri", REDIRECT), ("state", "s"), ("code_challenge", &challenge),
                ("code_challenge_method", "S256"), ("resource", ORDERS), ("resource", BILLING),
            ])
            .await;
        assert_eq!(page.status(), StatusCode::OK);
        let html = page.text().await.unwrap();
        assert!(html.contains(&format!("API at {ORDERS}")) && html.contains(BILLING), "{html}");
        // Both resources travel with the form, and the code covers both.
        let back = redirected(&flow.submit(&html, "/oauth/authorize", &[("decision", "allow")]).await);
        assert!(back.get("code").is_some(), "{back:?}");

        // An unknown resource at the authorization endpoint goes back to the client.
        let back = redirected(
            &flow
                .authorize(&[
                    ("response_type", "code"), ("client_id", client.client_id.as_str()),
                    ("redirect_uri", REDIRECT), ("state", "s"), ("code_challenge", &challenge),
                    ("code_challenge_method", "S256"), ("resource", "https://unknown.example/"),
                ])
                .await,
        );
        assert_eq!(back.get("error"), Some("invalid_target"), "{back:?}");
        assert_eq!(back.get("state"), Some("s"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operators_manage_resources_from_the_command_line() {
    let db = TestDb::new(Kind::Sqlite).await;
    let created = cli_json(
        &db,
        &[
            "resource",
            "create",
            "--identifier",
            MCP,
            "--name",
            "MCP server",
            "--scope",
            "mcp:read",
            "--scope",
            "mcp:write",
            "--token-format",
            "jwt",
            "--access-token-ttl",
            "600",
        ],
    );
    assert_eq!(created["identifier"], MCP);
    assert_eq!(created["settings"]["token_format"], "jwt");
    assert_eq!(created["settings"]["scopes"], "mcp:read mcp:write");
    let listed = cli_json(&db, &["resource", "list"]);
    assert_eq!(listed.as_array().unwrap().len(), 1, "{listed}");
    let table = cli_stdout(&db, &["resource", "list", "--format", "table"]);
    assert!(
        table.contains("MCP server") && table.contains("jwt"),
        "{table}"
    );
    let updated = cli_json(
        &db,
        &[
            "resource",
            "update",
            MCP,
            "--name",
            "Agents' API",
            "--client",
            "agent-1",
        ],
    );
    assert_eq!(updated["settings"]["name"], "Agents' API");
    assert_eq!(updated["settings"]["allowed_clients"], json!(["agent-1"]));
    assert_eq!(
        updated["settings"]["token_format"], "jwt",
        "what is not given stays"
    );

    for (args, words) in [
        (
            vec![
                "resource",
                "create",
                "--identifier",
                "not a uri",
                "--name",
                "X",
            ],
            "identifier",
        ),
        (
            vec!["resource", "create", "--identifier", MCP, "--name", "Again"],
            "exists",
        ),
        (
            vec![
                "resource",
                "create",
                "--identifier",
                ORDERS,
                "--name",
                "X",
                "--token-format",
                "paseto",
            ],
            "token_format",
        ),
        (
            vec![
                "resource",
                "create",
                "--identifier",
                ORDERS,
                "--name",
                "X",
                "--access-token-ttl",
                "0",
            ],
            "access_token_ttl",
        ),
        (vec!["resource", "show", ORDERS], "no such resource"),
    ] {
        let output = cli(&db, &args);
        assert!(!output.status.success(), "{args:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(words), "{args:?}: {stderr}");
    }
    let deleted = cli(&db, &["resource", "delete", MCP]);
    assert!(deleted.status.success());
    assert_eq!(cli_json(&db, &["resource", "list"]), json!([]));
    let history = cli_stdout(&db, &["history", &format!("resource:{MCP}")]);
    for event in ["ResourceRegistered", "ResourceUpdated", "ResourceDeleted"] {
        assert!(history.contains(event), "{history}");
    }
}

on_both_stores! {
    async fn resources_are_managed_through_the_admin_api_and_describe_themselves(kind: Kind) {
        let flow = Flow::new(kind).await;
        let token = admin_token(&flow).await;
        let api = format!("{}/mcp", flow.app.address);
        let (status, created) = admin(
            &flow, &token, reqwest::Method::POST, "/resources",
            Some(json!({ "identifier": api, "name": "MCP here", "scope": "mcp:read mcp:write", "token_format": "jwt" })),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{created}");
        assert_eq!(created["token_format"], "jwt");
        let path = format!("/resources/{}", urlencode(&api));
        let (status, changed) = admin(
            &flow, &token, reqwest::Method::PATCH, &path,
            Some(json!({ "name": "MCP tools", "access_token_ttl": 120 })),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{changed}");
        assert_eq!((changed["name"].clone(), changed["access_token_ttl"].clone()), (json!("MCP tools"), json!(120)));
        assert_eq!(changed["scope"], "mcp:read mcp:write", "what is not sent stays");
        let (_, listed) = admin(&flow, &token, reqwest::Method::GET, "/resources", None).await;
        assert_eq!(listed["items"][0]["identifier"], api.as_str(), "{listed}");

        // RFC 9728: the resource's own metadata, from its registration.
        let metadata: Value = flow.get("/.well-known/oauth-protected-resource/mcp").await.json().await.unwrap();
        assert_eq!(metadata["resource"], api.as_str());
        assert_eq!(metadata["resource_name"], "MCP tools");
        assert_eq!(metadata["scopes_supported"], json!(["mcp:read", "mcp:write"]));

        // Bad input names its field; unknown ones are 404; a second registration 409.
        for (method, path, body, expected, field) in [
            (reqwest::Method::POST, "/resources".to_owned(), json!({ "identifier": "relative", "name": "X" }), StatusCode::BAD_REQUEST, "identifier"),
            (reqwest::Method::POST, "/resources".to_owned(), json!({ "identifier": api, "name": "X" }), StatusCode::CONFLICT, ""),
            (reqwest::Method::POST, "/resources".to_owned(), json!({ "identifier": "https://x.example/", "name": "X", "color": "red" }), StatusCode::BAD_REQUEST, ""),
            (reqwest::Method::PATCH, path.clone(), json!({ "token_format": "paseto" }), StatusCode::BAD_REQUEST, "token_format"),
            (reqwest::Method::GET, format!("/resources/{}", urlencode("https://none.example/")), Value::Null, StatusCode::NOT_FOUND, ""),
        ] {
            let body = (!body.is_null()).then_some(body);
            let (status, answer) = admin(&flow, &token, method, &path, body).await;
            assert_eq!(status, expected, "{path}: {answer}");
            if !field.is_empty() {
                assert_eq!(answer["field"], field, "{answer}");
            }
        }
        let (status, _) = admin(&flow, &token, reqwest::Method::DELETE, &path, None).await;
        assert_eq!(status, StatusCode::NO_CONTENT);
        let (status, _) = admin(&flow, &token, reqwest::Method::GET, &path, None).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }
}
