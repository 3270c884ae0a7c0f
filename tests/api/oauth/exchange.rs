//! Token exchange (RFC 8693) with delegation, black box: a gateway exchanges a person's token
//! for one acting through an agent (`act`), hops nest, impersonation is recorded apart,
//! policy and scope refusals answer RFC 6749 JSON, revoking the source ends what was exchanged
//! from it, and the audit answers "everything agent X did for user Y".

use authledger::admin::clients::{ClientInput, NewClient};
use authledger::admin::resources::{self, ResourceInput};
use authledger_domain::metadata::Actor;
use authledger_projections::audit::{AuditFilter, AuditLog};
use authledger_projections::grants::{GrantsView, Subject};
use reqwest::StatusCode;
use serde_json::{json, Value};

use super::flow::*;
use crate::helpers::*;

const ACCESS_TOKEN: &str = "urn:ietf:params:oauth:token-type:access_token";
const ID_TOKEN: &str = "urn:ietf:params:oauth:token-type:id_token";
const EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
const ORDERS: &str = "https://api.example/orders";

/// The application alice signs in to.
fn chat() -> ClientInput {
    ClientInput {
        name: "Chat".into(),
        scope: Some("openid profile read write".into()),
        ..web_client()
    }
}

fn machine(name: &str, scope: &str) -> ClientInput {
    ClientInput {
        name: name.into(),
        redirect_uris: vec![],
        scope: Some(scope.into()),
        grant_types: vec!["client_credentials".into()],
        ..ClientInput::default()
    }
}

struct Parties {
    chat: NewClient,
    gateway: NewClient,
    agent: NewClient,
    planner: NewClient,
    stranger: NewClient,
    /// Alice's access and refresh tokens, from Chat.
    alice: Value,
}

impl Parties {
    async fn new(flow: &Flow) -> Parties {
        flow.user("alice", &[]).await;
        let chat = flow.client(chat()).await;
        let agent = flow.client(machine("Agent X", "read")).await;
        let planner = flow.client(machine("Planner", "read")).await;
        let stranger = flow.client(machine("Stranger", "read")).await;
        let gateway = flow
            .client(ClientInput {
                grant_types: vec!["token_exchange".into(), "client_credentials".into()],
                token_exchange_subject_clients: vec![chat.client_id.to_string()],
                token_exchange_actor_clients: vec![
                    agent.client_id.to_string(),
                    planner.client_id.to_string(),
                ],
                ..machine("Gateway", "read write")
            })
            .await;
        let (verifier, challenge) = pkce();
        let scope = [("scope", "openid profile read write")];
        let code = flow.code(&chat, "alice", &scope, &challenge).await;
        let (status, _, alice) = flow.exchange(Auth::Basic(&chat), &code, &verifier).await;
        assert_eq!(status, StatusCode::OK, "{alice}");
        Parties {
            chat,
            gateway,
            agent,
            planner,
            stranger,
            alice,
        }
    }

    fn alice_access(&self) -> &str {
        self.alice["access_token"].as_str().unwrap()
    }
}

async fn own_token(flow: &Flow, client: &NewClient) -> String {
    let (status, _, tokens) = flow
        .token(Auth::Basic(client), &[("grant_type", "client_credentials")])
        .await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    tokens["access_token"].as_str().unwrap().to_owned()
}

/// A token exchange by `client` with `extra` parameters.
async fn exchange(
    flow: &Flow,
    client: &NewClient,
    subject: &str,
    extra: &[(&str, &str)],
) -> (StatusCode, Value) {
    let mut form = vec![
        ("grant_type", EXCHANGE),
        ("subject_token", subject),
        ("subject_token_type", ACCESS_TOKEN),
    ];
    form.extend_from_slice(extra);
    let (status, _, body) = flow.token(Auth::Basic(client), &form).await;
    (status, body)
}

async fn introspect(flow: &Flow, client: &NewClient, token: &str) -> Value {
    flow.token_at(
        "/oauth/introspect",
        Auth::Basic(client),
        &[("token", token)],
    )
    .await
    .2
}

fn refused(status: StatusCode, body: &Value, error: &str) {
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"], error, "{body}");
    assert!(body["error_description"].is_string(), "{body}");
}

on_both_stores! {
    async fn an_agent_acts_for_a_person_and_hops_nest(kind: Kind) {
        let flow = Flow::new(kind).await;
        let p = Parties::new(&flow).await;
        let agent_token = own_token(&flow, &p.agent).await;

        // Delegation: the gateway gets a token for alice, with Agent X acting, narrowed.
        let (status, delegated) = exchange(&flow, &p.gateway, p.alice_access(), &[
            ("actor_token", &agent_token),
            ("actor_token_type", ACCESS_TOKEN),
            ("scope", "read"),
        ]).await;
        assert_eq!(status, StatusCode::OK, "{delegated}");
        assert_eq!(delegated["issued_token_type"], ACCESS_TOKEN);
        assert_eq!(delegated["token_type"], "Bearer");
        assert_eq!(delegated["scope"], "read");
        assert!(delegated.get("refresh_token").is_none(), "{delegated}");
        assert!(delegated["expires_in"].as_i64().unwrap() <= 3600);
        let delegated = delegated["access_token"].as_str().unwrap().to_owned();
        let answer = introspect(&flow, &p.gateway, &delegated).await;
        assert_eq!(answer["active"], true, "{answer}");
        assert_eq!(answer["sub"], "alice");
        assert_eq!(answer["client_id"], p.gateway.client_id.as_str());
        assert_eq!(answer["scope"], "read");
        let agent = p.agent.client_id.as_str();
        assert_eq!(answer["act"], json!({"sub": agent, "client_id": agent}), "{answer}");

        // A second hop: the planner acts on the delegated token; `act` nests, most recent
        // outermost (RFC 8693 §4.1).
        let planner_token = own_token(&flow, &p.planner).await;
        let (status, hop) = exchange(&flow, &p.gateway, &delegated, &[
            ("actor_token", &planner_token),
            ("actor_token_type", ACCESS_TOKEN),
        ]).await;
        assert_eq!(status, StatusCode::OK, "{hop}");
        let hop = hop["access_token"].as_str().unwrap().to_owned();
        let answer = introspect(&flow, &p.gateway, &hop).await;
        let planner = p.planner.client_id.as_str();
        assert_eq!(
            answer["act"],
            json!({"sub": planner, "client_id": planner, "act": {"sub": agent, "client_id": agent}}),
            "{answer}"
        );

        // Impersonation: no actor, no `act`; an exchange without an actor keeps the actors
        // already there rather than laundering them away.
        let (status, plain) = exchange(&flow, &p.gateway, p.alice_access(), &[]).await;
        assert_eq!(status, StatusCode::OK, "{plain}");
        assert_eq!(plain["scope"], "read write", "the subject's scope within the client's");
        let plain = plain["access_token"].as_str().unwrap().to_owned();
        assert!(introspect(&flow, &p.gateway, &plain).await.get("act").is_none());
        let (_, kept) = exchange(&flow, &p.gateway, &delegated, &[]).await;
        let kept = kept["access_token"].as_str().unwrap().to_owned();
        assert_eq!(introspect(&flow, &p.gateway, &kept).await["act"]["sub"], agent);

        // The audit answers "everything Agent X did for alice": the exchange it acted in.
        flow.app.settle().await;
        flow.store.runner.catch_up().await.unwrap();
        let filter = AuditFilter {
            acting_client_id: Some(agent.to_owned()),
            username: Some("alice".into()),
            ..AuditFilter::default()
        };
        let rows = AuditLog::query(&flow.store.db, &filter, 50).await.unwrap();
        assert_eq!(rows.len(), 2, "the delegation, and the exchange that kept it: {rows:?}");
        assert!(rows[0].summary.contains(&format!("client {agent} acting")), "{}", rows[0].summary);
        assert_eq!(rows[0].client_id.as_deref(), Some(p.gateway.client_id.as_str()));
        // The same from the command line, one JSON object per row.
        let out = cli(&flow.app.db, &["audit", "--acting-client", agent, "--user", "alice", "--format", "json"]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let printed = String::from_utf8_lossy(&out.stdout);
        assert_eq!(printed.matches(&format!("client {agent} acting")).count(), 2, "{printed}");
        let filter = AuditFilter { acting_client_id: Some(planner.to_owned()), ..AuditFilter::default() };
        let rows = AuditLog::query(&flow.store.db, &filter, 50).await.unwrap();
        assert_eq!(rows.len(), 1);
        assert!(rows[0].summary.contains(&format!("client {planner} acting for client {agent}")), "{}", rows[0].summary);

        // Revoking alice's Chat grant (its refresh token, RFC 7009) ends every token exchanged
        // from it at once, and the cascade revokes their grants for good.
        let refresh = p.alice["refresh_token"].as_str().unwrap();
        let (status, _, _) = flow.token_at("/oauth/revoke", Auth::Basic(&p.chat), &[("token", refresh)]).await;
        assert_eq!(status, StatusCode::OK);
        for token in [&delegated, &hop, &plain, &kept] {
            assert_eq!(introspect(&flow, &p.gateway, token).await["active"], false);
        }
        let gateway = Subject { client_id: Some(p.gateway.client_id.to_string()), username: Some("alice".into()) };
        let mut ended = vec![];
        for _ in 0..100 {
            flow.store.runner.catch_up().await.unwrap();
            ended = GrantsView::grants(&flow.store.db, &gateway, false, None, 50).await.unwrap();
            if ended.iter().all(|g| g.status == "revoked") {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        assert_eq!(ended.len(), 4);
        for grant in &ended {
            assert_eq!((grant.status.as_str(), grant.revoked_reason.as_deref()), ("revoked", Some("source_revoked")), "{grant:?}");
            assert!(grant.source_grant.is_some());
        }
        let the_hop = ended.iter().find(|g| g.act.as_deref().is_some_and(|a| a.contains(planner))).unwrap();
        assert!(ended.iter().any(|g| Some(&g.grant_id) == the_hop.source_grant.as_ref()), "the hop came from the first exchange");
    }
}

on_both_stores! {
    async fn exchanges_outside_the_policy_are_refused(kind: Kind) {
        let flow = Flow::new(kind).await;
        let p = Parties::new(&flow).await;
        let alice = p.alice_access();
        let stranger_token = own_token(&flow, &p.stranger).await;

        // A client not registered for the grant.
        let (status, body) = exchange(&flow, &p.agent, alice, &[]).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(body["error"], "unauthorized_client", "{body}");
        // A client registered for it, but not for Chat's tokens.
        let other = flow.client(ClientInput {
            grant_types: vec!["token_exchange".into()],
            ..machine("Other gateway", "read")
        }).await;
        let (status, body) = exchange(&flow, &other, alice, &[]).await;
        refused(status, &body, "invalid_request");
        // An actor the gateway does not accept (may_act).
        let (status, body) = exchange(&flow, &p.gateway, alice, &[
            ("actor_token", &stranger_token),
            ("actor_token_type", ACCESS_TOKEN),
        ]).await;
        refused(status, &body, "invalid_request");
        assert!(body["error_description"].as_str().unwrap().contains("may_act"), "{body}");
        // Another client's own (client credentials) token is nobody's to exchange.
        let (status, body) = exchange(&flow, &p.gateway, &stranger_token, &[]).await;
        refused(status, &body, "invalid_request");
        // Scopes only narrow.
        let (status, body) = exchange(&flow, &p.gateway, alice, &[("scope", "read admin")]).await;
        refused(status, &body, "invalid_scope");
        // A resource nobody registered.
        let (status, body) = exchange(&flow, &p.gateway, alice, &[("resource", "https://nowhere.example/")]).await;
        refused(status, &body, "invalid_target");
        let (status, body) = exchange(&flow, &p.gateway, alice, &[("audience", "https://nowhere.example/")]).await;
        refused(status, &body, "invalid_target");
        // Malformed requests.
        for (form, why) in [
            (vec![("grant_type", EXCHANGE), ("subject_token", alice)], "subject_token_type is required"),
            (vec![("grant_type", EXCHANGE), ("subject_token_type", ACCESS_TOKEN)], "subject_token is required"),
            (vec![("grant_type", EXCHANGE), ("subject_token", alice), ("subject_token_type", "urn:ietf:params:oauth:token-type:saml2")], "not supported"),
            (vec![("grant_type", EXCHANGE), ("subject_token", alice), ("subject_token_type", ACCESS_TOKEN), ("actor_token", &stranger_token)], "actor_token_type is required"),
            (vec![("grant_type", EXCHANGE), ("subject_token", alice), ("subject_token_type", ACCESS_TOKEN), ("requested_token_type", "urn:ietf:params:oauth:token-type:refresh_token")], "requested_token_type"),
            (vec![("grant_type", EXCHANGE), ("subject_token", "alat_not-a-token"), ("subject_token_type", ACCESS_TOKEN)], "not an active access token"),
            (vec![("grant_type", EXCHANGE), ("subject_token", alice), ("subject_token_type", ID_TOKEN)], "not a valid ID token"),
        ] {
            let (status, _, body) = flow.token(Auth::Basic(&p.gateway), &form).await;
            refused(status, &body, "invalid_request");
            assert!(body["error_description"].as_str().unwrap().contains(why), "{why}: {body}");
        }
        // The refusals made no grant for the gateway.
        flow.store.runner.catch_up().await.unwrap();
        let gateway = Subject { client_id: Some(p.gateway.client_id.to_string()), username: None };
        assert!(GrantsView::grants(&flow.store.db, &gateway, false, None, 50).await.unwrap().is_empty());
    }
}

on_both_stores! {
    async fn an_id_token_stands_for_its_person_and_jwt_resources_carry_act(kind: Kind) {
        let flow = Flow::new(kind).await;
        let p = Parties::new(&flow).await;
        let who = metadata(Actor::Cli("ops".into()));
        let input = ResourceInput {
            name: Some("Orders".into()),
            scope: vec!["read write".into()],
            token_format: Some("jwt".into()),
            access_token_ttl: Some(300),
            ..ResourceInput::default()
        };
        resources::create(&flow.store, ORDERS, input, &who).await.unwrap();
        flow.app.settle().await;

        // The ID token alice got from Chat: what she consents to Chat bounds the exchange.
        let id_token = p.alice["id_token"].as_str().unwrap();
        let agent_token = own_token(&flow, &p.agent).await;
        let (status, body) = {
            let form = [
                ("grant_type", EXCHANGE),
                ("subject_token", id_token),
                ("subject_token_type", ID_TOKEN),
                ("actor_token", agent_token.as_str()),
                ("actor_token_type", ACCESS_TOKEN),
                ("resource", ORDERS),
                ("scope", "read"),
            ];
            let (status, _, body) = flow.token(Auth::Basic(&p.gateway), &form).await;
            (status, body)
        };
        assert_eq!(status, StatusCode::OK, "{body}");
        assert!(body["expires_in"].as_i64().unwrap() <= 300, "the resource's lifetime");
        let jwt = body["access_token"].as_str().unwrap();
        let header = jsonwebtoken::decode_header(jwt).unwrap();
        assert_eq!(header.typ.as_deref(), Some("at+jwt"));
        let jwks: jsonwebtoken::jwk::JwkSet = flow.get("/oauth/jwks").await.json().await.unwrap();
        let key = jsonwebtoken::DecodingKey::from_jwk(jwks.find(header.kid.as_deref().unwrap()).unwrap()).unwrap();
        let mut validation = jsonwebtoken::Validation::new(header.alg);
        validation.set_audience(&[ORDERS]);
        let claims = jsonwebtoken::decode::<Value>(jwt, &key, &validation).unwrap().claims;
        assert_eq!(claims["sub"], "alice");
        assert_eq!(claims["client_id"], p.gateway.client_id.as_str());
        assert_eq!(claims["act"]["client_id"], p.agent.client_id.as_str(), "{claims}");

        // Beyond the consent: refused.
        let form = [
            ("grant_type", EXCHANGE),
            ("subject_token", id_token),
            ("subject_token_type", ID_TOKEN),
            ("scope", "read write admin"),
        ];
        let (status, _, body) = flow.token(Auth::Basic(&p.gateway), &form).await;
        refused(status, &body, "invalid_scope");

        // Once alice withdraws her consent to Chat, its ID token authorizes nothing.
        let (status, _) = {
            let token = admin_token(&flow).await;
            let body = json!({"user": "alice", "client_id": p.chat.client_id.as_str()});
            admin(&flow, &token, reqwest::Method::POST, "/consents/revoke", Some(body)).await
        };
        assert!(status.is_success(), "{status}");
        let form = [
            ("grant_type", EXCHANGE),
            ("subject_token", id_token),
            ("subject_token_type", ID_TOKEN),
        ];
        let (status, _, body) = flow.token(Auth::Basic(&p.gateway), &form).await;
        refused(status, &body, "invalid_request");
    }
}
