//! Discovery, dynamic registration, settings and CORS: what MCP and AI-agent clients rely on.

use authledger::admin::clients::ClientInput;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::*;
use crate::oauth::flow::*;

async fn get_json(flow: &Flow, path: &str) -> (StatusCode, reqwest::header::HeaderMap, Value) {
    let response = flow.app.http.get(flow.app.url(path)).send().await.unwrap();
    let (status, headers) = (response.status(), response.headers().clone());
    (
        status,
        headers,
        response.json().await.unwrap_or(Value::Null),
    )
}

fn strings(value: &Value) -> Vec<String> {
    value
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect()
}

on_both_stores! {
    async fn the_metadata_advertises_exactly_what_the_server_does(kind: Kind) {
        let flow = Flow::new(kind).await;
        flow.set("enable_dynamic_registration", "true").await;
        let (status, headers, openid) = get_json(&flow, "/.well-known/openid-configuration").await;
        assert_eq!(status, 200);
        assert_eq!(headers["cache-control"], "public, max-age=300");
        assert_eq!(headers["access-control-allow-origin"], "*");
        let (_, _, rfc8414) = get_json(&flow, "/.well-known/oauth-authorization-server").await;
        assert_eq!(openid, rfc8414, "one document under two names");
        let issuer = flow.app.address.as_str();
        assert_eq!(openid["issuer"], issuer);
        assert_eq!(openid["authorization_response_iss_parameter_supported"], true);
        assert_eq!(strings(&openid["code_challenge_methods_supported"])[0], "S256");

        // Every advertised endpoint exists (no 404, no 405 for its method).
        for (name, method) in [
            ("authorization_endpoint", Method::GET), ("token_endpoint", Method::POST),
            ("userinfo_endpoint", Method::GET), ("jwks_uri", Method::GET),
            ("introspection_endpoint", Method::POST), ("revocation_endpoint", Method::POST),
            ("device_authorization_endpoint", Method::POST),
            ("registration_endpoint", Method::POST),
        ] {
            let url = openid[name].as_str().unwrap_or_else(|| panic!("{name} is advertised"));
            assert!(url.starts_with(issuer), "{name}");
            let status = flow.app.http.request(method, url).send().await.unwrap().status();
            assert!(status != StatusCode::NOT_FOUND && status != StatusCode::METHOD_NOT_ALLOWED, "{name}: {status}");
        }

        // Response types: `code` works; `token` is advertised only while implicit is allowed.
        assert_eq!(strings(&openid["response_types_supported"]), ["code"]);
        assert!(!strings(&openid["grant_types_supported"]).contains(&"implicit".to_owned()));
        flow.set("allow_implicit", "true").await;
        let (_, _, with_implicit) = get_json(&flow, "/.well-known/openid-configuration").await;
        assert_eq!(strings(&with_implicit["response_types_supported"]), ["code", "token"]);
        assert!(strings(&with_implicit["grant_types_supported"]).contains(&"implicit".to_owned()));

        // Every advertised client authentication method, grant type and PKCE method works.
        flow.user("alice", &[]).await;
        for method in strings(&openid["token_endpoint_auth_methods_supported"]) {
            let client = flow.client(ClientInput {
                token_endpoint_auth_method: Some(method.clone()),
                public: method == "none",
                skip_authorization: true,
                ..web_client()
            }).await;
            let (verifier, challenge) = pkce();
            let code = flow.code(&client, "alice", &[], &challenge).await;
            let auth = match method.as_str() {
                "client_secret_basic" => Auth::Basic(&client),
                "client_secret_post" => Auth::Post(&client),
                _ => Auth::PublicId(client.client_id.as_str()),
            };
            let (status, _, body) = flow.exchange(auth, &code, &verifier).await;
            assert_eq!(status, 200, "{method}: {body}");
        }
        for grant in strings(&openid["grant_types_supported"]) {
            let device = "urn:ietf:params:oauth:grant-type:device_code";
            // Token exchange is driven end to end in tests/api/oauth/exchange.rs.
            let exchange = "urn:ietf:params:oauth:grant-type:token-exchange";
            assert!(["authorization_code", "refresh_token", "client_credentials", "implicit", device, exchange].contains(&grant.as_str()), "{grant}");
        }
        let machine = flow.client(ClientInput { grant_types: vec!["client_credentials".into()], redirect_uris: vec![], ..web_client() }).await;
        assert_eq!(flow.token(Auth::Basic(&machine), &[("grant_type", "client_credentials")]).await.0, 200);
        for method in strings(&openid["code_challenge_methods_supported"]) {
            let client = flow.client(ClientInput { skip_authorization: true, ..web_client() }).await;
            let (verifier, challenge) = pkce();
            let challenge = if method == "plain" { verifier.clone() } else { challenge };
            let back = redirected(&flow.authorize(&[
                ("response_type", "code"), ("client_id", client.client_id.as_str()),
                ("code_challenge", &challenge), ("code_challenge_method", &method),
            ]).await);
            let (status, _, body) = flow.exchange(Auth::Basic(&client), back.get("code").unwrap(), &verifier).await;
            assert_eq!(status, 200, "{method}: {body}");
        }
        // Every advertised ID token algorithm signs a token that verifies.
        for alg in strings(&openid["id_token_signing_alg_values_supported"]) {
            let client = flow.client(ClientInput { id_token_signed_response_alg: Some(alg.clone()), skip_authorization: true, ..web_client() }).await;
            let (verifier, challenge) = pkce();
            let code = flow.code(&client, "alice", &[("scope", "openid")], &challenge).await;
            let (_, _, tokens) = flow.exchange(Auth::Basic(&client), &code, &verifier).await;
            let id_token = tokens["id_token"].as_str().unwrap();
            assert_eq!(format!("{:?}", jsonwebtoken::decode_header(id_token).unwrap().alg), alg);
        }
        assert!(strings(&openid["id_token_signing_alg_values_supported"]).contains(&"RS256".to_owned()));
        assert_eq!(strings(&openid["subject_types_supported"]), ["public"]);

        flow.set("enable_dynamic_registration", "false").await;
        let (_, _, without) = get_json(&flow, "/.well-known/openid-configuration").await;
        assert!(without.get("registration_endpoint").is_none());
        assert_eq!(register(&flow, json!({ "redirect_uris": ["https://a.example/cb"] })).await.0, StatusCode::NOT_FOUND);
    }
}

on_both_stores! {
    async fn the_protected_resource_metadata_comes_from_settings_and_each_document_can_be_switched_off(kind: Kind) {
        let flow = Flow::new(kind).await;
        flow.set("resource_name", "Example API").await;
        flow.set("resource_documentation", "https://docs.example/api").await;
        flow.set("resource_policy_uri", "https://docs.example/policy").await;
        flow.set("resource_tos_uri", "https://docs.example/tos").await;
        let (status, headers, document) = get_json(&flow, "/.well-known/oauth-protected-resource").await;
        assert_eq!(status, 200);
        assert_eq!(headers["access-control-allow-origin"], "*");
        assert_eq!(document["resource"], flow.app.address.as_str());
        assert_eq!(document["authorization_servers"], json!([flow.app.address]));
        assert_eq!(document["bearer_methods_supported"], json!(["header", "body"]));
        assert_eq!(document["resource_name"], "Example API");
        assert_eq!(document["resource_documentation"], "https://docs.example/api");
        assert_eq!(document["resource_policy_uri"], "https://docs.example/policy");
        assert_eq!(document["resource_tos_uri"], "https://docs.example/tos");
        assert!(strings(&document["scopes_supported"]).contains(&"openid".to_owned()));
        let (_, _, with_path) = get_json(&flow, "/.well-known/oauth-protected-resource/mcp/v1").await;
        assert_eq!(with_path["resource"], format!("{}/mcp/v1", flow.app.address));

        for (setting, path) in [
            ("show_openid_configuration", "/.well-known/openid-configuration"),
            ("show_auth_server_metadata", "/.well-known/oauth-authorization-server"),
            ("show_protected_resource_metadata", "/.well-known/oauth-protected-resource"),
        ] {
            flow.set(setting, "false").await;
            assert_eq!(get_json(&flow, path).await.0, StatusCode::NOT_FOUND, "{setting}");
        }
        assert_eq!(get_json(&flow, "/.well-known/oauth-protected-resource/mcp").await.0, StatusCode::NOT_FOUND);
    }
}

on_both_stores! {
    async fn a_client_registers_itself_and_manages_its_registration(kind: Kind) {
        let flow = Flow::new(kind).await;
        flow.set("enable_dynamic_registration", "true").await;
        let (status, headers, registered) = register(&flow, json!({
            "client_name": "MCP agent",
            "redirect_uris": ["https://agent.example/cb", "http://127.0.0.1:33418/callback", "http://localhost/cb"],
            "software_id": "agent-kit",
            "software_version": "1.2.3",
            "contacts": ["ops@agent.example"],
            "scope": "openid email",
            "logo_uri": "https://agent.example/logo.png",
            "unknown_extension": "ignored"
        })).await;
        assert_eq!(status, StatusCode::CREATED, "{registered}");
        assert_eq!(headers["cache-control"], "no-store");
        let id = registered["client_id"].as_str().unwrap().to_owned();
        assert!(registered["client_secret"].as_str().unwrap().starts_with("alcs_"));
        assert_eq!(registered["client_secret_expires_at"], 0);
        assert!(registered["client_id_issued_at"].as_i64().unwrap() > 1_700_000_000);
        assert_eq!(registered["token_endpoint_auth_method"], "client_secret_basic");
        assert_eq!(registered["redirect_uris"].as_array().unwrap().len(), 3, "several redirect URIs, none mangled");
        assert_eq!(registered["grant_types"], json!(["authorization_code"]));
        assert_eq!(registered["response_types"], json!(["code"]));
        assert_eq!(registered["software_id"], "agent-kit");
        assert_eq!(registered["registration_client_uri"], format!("{}/oauth/register/{id}", flow.app.address));
        let token = registered["registration_access_token"].as_str().unwrap().to_owned();

        // The event says who registered it and how; the token is only a hash there.
        let events = cli(&flow.app.db, &["events", "--aggregate", &format!("client:{id}"), "--json"]);
        let event: Value = serde_json::from_slice(&events.stdout).unwrap();
        assert_eq!(event["payload"]["ClientRegistered"]["registered_via"], "dynamic");
        assert_eq!(event["metadata"]["actor"], "registrant:agent-kit");
        assert!(!event.to_string().contains(&token));

        // RFC 7592: read, update, delete with the registration access token.
        let manage = |method: Method, bearer: Option<&str>, body: Option<Value>| {
            let flow = &flow;
            let url = flow.app.url(&format!("/oauth/register/{id}"));
            let bearer = bearer.map(str::to_owned);
            async move {
                let mut request = flow.app.http.request(method, url);
                if let Some(bearer) = bearer { request = request.bearer_auth(bearer); }
                if let Some(body) = body { request = request.json(&body); }
                let response = request.send().await.unwrap();
                let status = response.status();
                (status, response.json::<Value>().await.unwrap_or(Value::Null))
            }
        };
        assert_eq!(manage(Method::GET, None, None).await.0, StatusCode::UNAUTHORIZED);
        assert_eq!(manage(Method::GET, Some("alrat_wrong"), None).await.0, StatusCode::UNAUTHORIZED);
        let (status, read) = manage(Method::GET, Some(&token), None).await;
        assert_eq!((status, read["client_name"].as_str()), (StatusCode::OK, Some("MCP agent")));
        assert!(read.get("client_secret").is_none(), "only the hash is kept");
        let (status, updated) = manage(Method::PUT, Some(&token), Some(json!({
            "client_id": id, "client_name": "MCP agent 2", "redirect_uris": ["https://agent.example/cb"]
        }))).await;
        assert_eq!((status, updated["client_name"].as_str()), (StatusCode::OK, Some("MCP agent 2")), "{updated}");
        let (status, refused) = manage(Method::PUT, Some(&token), Some(json!({
            "client_name": "x", "redirect_uris": ["https://agent.example/cb"], "token_endpoint_auth_method": "none"
        }))).await;
        assert_eq!((status, refused["error"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_client_metadata")), "{refused}");
        assert_eq!(manage(Method::DELETE, Some(&token), None).await.0, StatusCode::NO_CONTENT);
        assert_eq!(manage(Method::GET, Some(&token), None).await.0, StatusCode::UNAUTHORIZED, "deleted");

        // A public client gets no secret; Frappe's alias registers too.
        let (status, _, public) = register(&flow, json!({ "redirect_uris": ["http://127.0.0.1/cb"], "token_endpoint_auth_method": "none" })).await;
        assert_eq!(status, StatusCode::CREATED);
        assert!(public.get("client_secret").is_none());
        let frappe = flow.app.http.post(flow.app.url("/api/method/frappe.integrations.oauth2.register_client"))
            .json(&json!({ "redirect_uris": ["https://frappe-client.example/cb"], "client_name": "Frappe client" }))
            .send().await.unwrap();
        assert_eq!(frappe.status(), StatusCode::CREATED);
    }
}

on_both_stores! {
    async fn registration_errors_name_the_field(kind: Kind) {
        let flow = Flow::new(kind).await;
        flow.set("enable_dynamic_registration", "true").await;
        for (body, error, words) in [
            (json!({ "redirect_uris": ["/callback"] }), "invalid_redirect_uri", "redirect_uris[0]"),
            (json!({ "redirect_uris": ["https://a.example/cb", "https://a.example/cb#frag"] }), "invalid_redirect_uri", "redirect_uris[1]"),
            (json!({ "redirect_uris": ["http://remote.example/cb"] }), "invalid_redirect_uri", "loopback"),
            (json!({ "redirect_uris": ["https://a.example/cb"], "grant_types": ["authorization_code"], "response_types": ["token"] }), "invalid_client_metadata", "response_types"),
            (json!({ "redirect_uris": ["https://a.example/cb"], "token_endpoint_auth_method": "private_key_jwt" }), "invalid_client_metadata", "token_endpoint_auth_method"),
            (json!({ "redirect_uris": ["https://a.example/cb"], "scope": "openid admin" }), "invalid_client_metadata", "scope"),
            (json!({ "redirect_uris": ["https://a.example/cb"], "grant_types": ["implicit"] }), "invalid_client_metadata", "grant_types"),
            (json!({ "redirect_uris": "not a list" }), "invalid_client_metadata", "body"),
        ] {
            let (status, _, answer) = register(&flow, body.clone()).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {answer}");
            assert_eq!(answer["error"], error, "{body}");
            assert!(answer["error_description"].as_str().unwrap().contains(words), "{answer}");
        }
    }
}

on_both_stores! {
    /// An MCP client registers itself as public, asks for `offline_access`, and gets a refresh
    /// token; a headless agent registers for the device grant. The operator narrows both.
    async fn an_agent_registers_itself_for_refresh_and_the_device_grant(kind: Kind) {
        let flow = Flow::new(kind).await;
        flow.user("alice", &[]).await;
        flow.set("enable_dynamic_registration", "true").await;
        let (status, _, agent) = register(&flow, json!({
            "client_name": "MCP agent",
            "redirect_uris": ["http://127.0.0.1:33418/callback"],
            "grant_types": ["authorization_code", "refresh_token"],
            "token_endpoint_auth_method": "none",
            "scope": "openid profile offline_access",
        })).await;
        assert_eq!(status, StatusCode::CREATED, "{agent}");
        let agent_id = agent["client_id"].as_str().unwrap().to_owned();
        let (verifier, challenge) = pkce();
        let params = [
            ("response_type", "code"), ("client_id", agent_id.as_str()),
            ("redirect_uri", "http://127.0.0.1:33418/callback"), ("scope", "openid offline_access"),
            ("state", "s"), ("code_challenge", challenge.as_str()), ("code_challenge_method", "S256"),
        ];
        flow.sign_in("alice").await;
        let page = flow.authorize(&params).await;
        let back = redirected(&flow.decide(page, "allow").await);
        let (status, _, tokens) = flow.token(Auth::PublicId(&agent_id), &[
            ("grant_type", "authorization_code"), ("code", back.get("code").unwrap()),
            ("redirect_uri", "http://127.0.0.1:33418/callback"), ("code_verifier", &verifier),
        ]).await;
        assert_eq!(status, StatusCode::OK, "{tokens}");
        assert!(tokens["refresh_token"].is_string(), "{tokens}");
        assert_eq!(tokens["scope"], "offline_access openid");

        let (status, _, device) = register(&flow, json!({
            "client_name": "Headless agent",
            "grant_types": ["urn:ietf:params:oauth:grant-type:device_code"],
            "token_endpoint_auth_method": "none",
            "scope": "profile",
        })).await;
        assert_eq!(status, StatusCode::CREATED, "{device}");
        assert_eq!(device["grant_types"], json!(["urn:ietf:params:oauth:grant-type:device_code"]));

        // Token exchange is open to registrants once the operator says so (a confidential
        // client; with no subject or actor clients named, it can exchange only its own tokens).
        let exchange = "urn:ietf:params:oauth:grant-type:token-exchange";
        let body = json!({ "grant_types": ["client_credentials", exchange], "scope": "profile" });
        let (status, _, refused) = register(&flow, body.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{refused}");
        flow.set("registration_grant_types", "authorization_code refresh_token client_credentials token_exchange").await;
        let (status, _, agent) = register(&flow, body).await;
        assert_eq!(status, StatusCode::CREATED, "{agent}");
        assert_eq!(agent["grant_types"], json!(["client_credentials", exchange]));

        // The operator closes both doors; what is already registered stays.
        flow.set("registration_grant_types", "authorization_code").await;
        flow.set("registration_scopes", "openid profile").await;
        for (body, field) in [
            (json!({ "grant_types": ["urn:ietf:params:oauth:grant-type:device_code"], "token_endpoint_auth_method": "none" }), "grant_types"),
            (json!({ "redirect_uris": ["https://a.example/cb"], "scope": "openid offline_access" }), "scope"),
        ] {
            let (status, _, refused) = register(&flow, body.clone()).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {refused}");
            assert_eq!(refused["error"], "invalid_client_metadata");
            let description = refused["error_description"].as_str().unwrap();
            assert!(description.starts_with(field) && description.contains("cannot be registered dynamically"), "{refused}");
        }
        let refused = cli(&flow.app.db, &["settings", "set", "registration_grant_types", "implicit"]);
        assert!(!refused.status.success());
        assert!(String::from_utf8_lossy(&refused.stderr).contains("never open to registrants"));
    }
}

on_both_stores! {
    async fn registration_can_require_an_initial_access_token_and_is_rate_limited_per_ip(kind: Kind) {
        let flow = Flow::new(kind).await;
        flow.set("enable_dynamic_registration", "true").await;
        let initial = "initial-access-token-0123456789-abcdefghij";
        flow.set("registration_initial_access_token", initial).await;
        flow.set("registration_rate_limit", "3").await;
        let body = json!({ "redirect_uris": ["https://a.example/cb"] });

        let (status, headers, _) = register(&flow, body.clone()).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert!(headers["www-authenticate"].to_str().unwrap().contains("invalid_token"));
        let with = |token: &str| flow.app.http.post(flow.app.url("/oauth/register")).bearer_auth(token).json(&body).send();
        assert_eq!(with("wrong-token").await.unwrap().status(), StatusCode::UNAUTHORIZED);
        for _ in 0..3 {
            assert_eq!(with(initial).await.unwrap().status(), StatusCode::CREATED);
        }
        let limited = with(initial).await.unwrap();
        assert_eq!(limited.status(), StatusCode::TOO_MANY_REQUESTS);
        assert!(limited.headers()["retry-after"].to_str().unwrap().parse::<u64>().unwrap() >= 1);
        let log = String::from_utf8(cli(&flow.app.db, &["events", "--json"]).stdout).unwrap();
        assert!(!log.contains(initial), "the initial access token is kept as a hash only");
    }
}

on_both_stores! {
    async fn listed_browser_origins_get_cors_and_others_get_nothing(kind: Kind) {
        let flow = Flow::new(kind).await;
        let preflight = |origin: &'static str, path: &'static str| {
            let flow = &flow;
            async move {
                flow.app.http.request(Method::OPTIONS, flow.app.url(path))
                    .header("origin", origin)
                    .header("access-control-request-method", "POST")
                    .header("access-control-request-headers", "content-type")
                    .send().await.unwrap()
            }
        };
        let before = preflight("https://spa.example", "/oauth/token").await;
        assert!(before.headers().get("access-control-allow-origin").is_none());

        flow.set("allowed_public_client_origins", "https://spa.example http://localhost:5173").await;
        for path in ["/oauth/token", "/oauth/revoke", "/oauth/introspect", "/oauth/userinfo", "/oauth/register"] {
            let allowed = preflight("https://spa.example", path).await;
            assert_eq!(allowed.headers()["access-control-allow-origin"], "https://spa.example", "{path}");
            assert!(allowed.headers()["vary"].to_str().unwrap().to_lowercase().contains("origin"), "{path}");
            let other = preflight("https://evil.example", path).await;
            assert!(other.headers().get("access-control-allow-origin").is_none(), "{path}");
        }
        let actual = flow.app.http.post(flow.app.url("/oauth/token")).header("origin", "http://localhost:5173")
            .form(&[("grant_type", "client_credentials")]).send().await.unwrap();
        assert_eq!(actual.headers()["access-control-allow-origin"], "http://localhost:5173");

        flow.set("allowed_public_client_origins", "*").await;
        let any = preflight("https://anyone.example", "/oauth/token").await;
        assert_eq!(any.headers()["access-control-allow-origin"], "https://anyone.example");
        let well_known = flow.app.http.get(flow.app.url("/.well-known/openid-configuration")).header("origin", "https://x.example").send().await.unwrap();
        assert_eq!(well_known.headers()["access-control-allow-origin"], "*");
    }
}

on_both_stores! {
    async fn settings_are_read_and_changed_through_the_admin_api_as_events(kind: Kind) {
        let flow = Flow::new(kind).await;
        let ops = flow.client(ClientInput {
            name: "ops".into(), grant_types: vec!["client_credentials".into()], redirect_uris: vec![], scope: Some("admin".into()), ..ClientInput::default()
        }).await;
        let (_, _, tokens) = flow.token(Auth::Basic(&ops), &[("grant_type", "client_credentials")]).await;
        let token = tokens["access_token"].as_str().unwrap();
        let url = flow.app.url("/admin/api/settings");
        let current: Value = flow.app.http.get(&url).bearer_auth(token).send().await.unwrap().json().await.unwrap();
        assert_eq!(current["consent_mode"], "force");
        assert_eq!(current["enable_dynamic_registration"], false);

        let changed = flow.app.http.patch(&url).bearer_auth(token)
            .json(&json!({ "consent_mode": "auto", "enable_dynamic_registration": true, "allowed_public_client_origins": ["https://spa.example"] }))
            .send().await.unwrap();
        assert_eq!(changed.status(), 200);
        let changed: Value = changed.json().await.unwrap();
        assert_eq!(changed["consent_mode"], "auto");
        assert_eq!(changed["allowed_public_client_origins"], json!(["https://spa.example"]));
        let bad = flow.app.http.patch(&url).bearer_auth(token).json(&json!({ "code_ttl": 9999 })).send().await.unwrap();
        assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
        assert_eq!(bad.json::<Value>().await.unwrap()["field"], "code_ttl");

        let history = String::from_utf8(cli(&flow.app.db, &["history", "settings:settings"]).stdout).unwrap();
        assert_eq!(history.lines().filter(|l| l.starts_with('#') && l.contains("SettingsChanged")).count(), 3);
        assert!(history.contains(&format!("actor=client:{}", ops.client_id)));
        let shown = cli_json(&flow.app.db, &["settings", "show"]);
        assert_eq!(shown["consent_mode"], "auto");
    }
}

/// Issues an RS256 ID token through the code flow; returns it and its key id.
async fn id_token(flow: &Flow, client: &authledger::admin::clients::NewClient) -> (String, String) {
    let (verifier, challenge) = pkce();
    let code = flow
        .code(client, "alice", &[("scope", "openid")], &challenge)
        .await;
    let (_, _, tokens) = flow.exchange(Auth::Basic(client), &code, &verifier).await;
    let token = tokens["id_token"].as_str().unwrap().to_owned();
    let kid = jsonwebtoken::decode_header(&token).unwrap().kid.unwrap();
    (token, kid)
}

async fn published_kids(flow: &Flow) -> Vec<String> {
    let (_, _, jwks) = get_json(flow, "/oauth/jwks").await;
    jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_owned())
        .collect()
}

/// Waits (at most 15 s) until `condition` holds, polling.
async fn eventually<F, Fut>(what: &str, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..150 {
        if condition().await {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("gave up waiting: {what}");
}

on_both_stores! {
    async fn a_rotated_key_is_published_first_and_old_id_tokens_verify_until_they_expire(kind: Kind) {
        let flow = Flow::new(kind).await;
        flow.user("alice", &[]).await;
        let client = flow.client(ClientInput { skip_authorization: true, ..web_client() }).await;
        flow.set("access_token_ttl", "3").await;
        flow.set("key_activation_delay", "2").await;
        let (old_token, old_kid) = id_token(&flow, &client).await;

        let rotated = cli(&flow.app.db, &["keys", "rotate", "--alg", "RS256"]);
        assert!(rotated.status.success(), "{}", String::from_utf8_lossy(&rotated.stderr));
        let listed: Value = serde_json::from_slice(&rotated.stdout).unwrap();
        let new_kid = listed.as_array().unwrap().iter()
            .find(|k| k["alg"] == "RS256" && k["state"] == "published")
            .expect("the new key is published, not yet active")["kid"].as_str().unwrap().to_owned();

        eventually("the new key is in the JWKS", || async { published_kids(&flow).await.contains(&new_kid) }).await;
        let (_, kid_meanwhile) = id_token(&flow, &client).await;
        assert_eq!(kid_meanwhile, old_kid, "a published key does not sign before its activation time");

        eventually("new ID tokens are signed with the new key", || async { id_token(&flow, &client).await.1 == new_kid }).await;
        assert!(published_kids(&flow).await.contains(&old_kid), "the retired key stays published");
        flow.verify_id_token(&old_token, client.client_id.as_str()).await;

        eventually("the retired key is removed once its tokens have expired", || async {
            !published_kids(&flow).await.contains(&old_kid)
        }).await;
        let keys = cli_json(&flow.app.db, &["keys", "list"]);
        let state = |kid: &str| keys.as_array().unwrap().iter().find(|k| k["kid"] == kid).unwrap()["state"].clone();
        assert_eq!(state(&old_kid), "removed");
        assert_eq!(state(&new_kid), "active");

        let log = String::from_utf8(cli(&flow.app.db, &["events", "--aggregate", "keys:signing-keys", "--json"]).stdout).unwrap();
        for line in log.lines().filter(|l| l.contains("\"KeyGenerated\"")) {
            let event: Value = serde_json::from_str(line).unwrap();
            let jwk = &event["payload"]["KeyGenerated"]["public_jwk"];
            assert!(jwk.get("d").is_none() && jwk.get("p").is_none(), "no private key material in events");
        }
        assert!(log.contains("\"KeyRetired\"") && log.contains("\"KeyRemoved\""));
        let bad = cli(&flow.app.db, &["keys", "rotate", "--alg", "HS256"]);
        assert!(!bad.status.success());
    }
}

on_both_stores! {
    async fn keys_rotate_by_themselves_when_a_rotation_period_is_set(kind: Kind) {
        let flow = Flow::new(kind).await;
        flow.user("alice", &[]).await;
        let client = flow.client(ClientInput { skip_authorization: true, ..web_client() }).await;
        let (_, first_kid) = id_token(&flow, &client).await;
        flow.set("key_activation_delay", "0").await;
        flow.set("key_rotation_period", "1").await;
        eventually("a new key signs without anyone rotating", || async { id_token(&flow, &client).await.1 != first_kid }).await;
        flow.set("key_rotation_period", "0").await;
        let history = String::from_utf8(cli(&flow.app.db, &["history", "keys:signing-keys"]).stdout).unwrap();
        assert!(history.contains("KeyGenerated") && history.contains("actor=system"), "{history}");
    }
}

on_both_stores! {
    /// The server reloads its keys every few seconds; it once read and parsed every private
    /// key each time, changed or not.
    async fn the_key_ring_parses_private_keys_again_only_when_the_keys_changed(kind: Kind) {
        let app = TestApp::spawn(kind).await;
        let keys = &app.authority.keys;
        let loads = keys.loads();
        keys.reload(&app.store, &app.authority.master).await.unwrap();
        keys.reload(&app.store, &app.authority.master).await.unwrap();
        assert_eq!(keys.loads(), loads, "nothing changed, nothing parsed");
        let output = cli(&app.db, &["keys", "rotate", "--now"]);
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        keys.reload(&app.store, &app.authority.master).await.unwrap();
        assert_eq!(keys.loads(), loads + 1);
    }
}
