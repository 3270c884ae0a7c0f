//! Token exchange with subject tokens from a trusted external issuer (RFC 8693), black box:
//! a second authledger on loopback is an OpenID provider people sign in here through; once an
//! administrator trusts it for token exchange and a client names its issuer, that client
//! exchanges the provider's signed tokens (an ID token issued to this server, a JWT access
//! token whose audience is this server) for tokens of the linked person here. Everything else
//! is refused with RFC 6749 JSON: an untrusted or disabled issuer, a client that does not
//! name it, a forged signature, another audience, a person with no linked account.

use authledger::admin::clients::{ClientInput, NewClient};
use authledger::admin::resources::{self, ResourceInput};
use authledger_domain::metadata::Actor;
use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::*;
use crate::oauth::flow::*;
use crate::social_login::Pair;

const EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
const ACCESS_TOKEN: &str = "urn:ietf:params:oauth:token-type:access_token";
const ID_TOKEN: &str = "urn:ietf:params:oauth:token-type:id_token";
const JWT: &str = "urn:ietf:params:oauth:token-type:jwt";

fn exchanger(name: &str, issuers: Vec<String>) -> ClientInput {
    ClientInput {
        name: name.into(),
        redirect_uris: vec![],
        scope: Some("read write".into()),
        grant_types: vec!["token_exchange".into()],
        skip_authorization: true,
        token_exchange_subject_issuers: issuers,
        ..ClientInput::default()
    }
}

async fn exchange(
    flow: &Flow,
    client: &NewClient,
    subject: &str,
    subject_type: &str,
    extra: &[(&str, &str)],
) -> (StatusCode, Value) {
    let mut form = vec![
        ("grant_type", EXCHANGE),
        ("subject_token", subject),
        ("subject_token_type", subject_type),
    ];
    form.extend_from_slice(extra);
    let (status, _, body) = flow.token(Auth::Basic(client), &form).await;
    (status, body)
}

fn refused_because(status: StatusCode, body: &Value, why: &str) {
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"], "invalid_request", "{body}");
    let description = body["error_description"].as_str().unwrap_or_default();
    assert!(description.contains(why), "`{why}` not in {body}");
}

/// `who`'s tokens from the provider, through `client` there (signed in afresh).
async fn tokens_at_provider(
    theirs: &mut Flow,
    client: &NewClient,
    who: &str,
    extra: &[(&str, &str)],
) -> Value {
    theirs.fresh_browser();
    let (verifier, challenge) = pkce();
    let code = theirs.code(client, who, extra, &challenge).await;
    let (status, _, tokens) = theirs.exchange(Auth::Basic(client), &code, &verifier).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    tokens
}

on_both_stores! {
    async fn a_trusted_issuers_tokens_are_exchanged_for_the_linked_person(kind: Kind) {
        let mut pair = Pair::new(kind).await;
        let ours = pair.ours.app.address.clone();
        let their_issuer = pair.theirs.app.address.clone();
        // authledger's registration at the provider: its ID tokens for us carry its id as `aud`.
        let registration = pair
            .theirs
            .client(ClientInput {
                name: "authledger".into(),
                redirect_uris: vec![pair.ours.app.url("/login/social/primary/callback"), REDIRECT.into()],
                scope: Some("openid profile email read".into()),
                skip_authorization: true,
                ..ClientInput::default()
            })
            .await;
        pair.create(&registration, &["--name", "Primary", "--base-url", &their_issuer, "--trusted-emails"]).await;
        // alice signs in here through the provider once: her identity there is linked.
        let (answer, _) = pair.sign_in_through("primary", "alice").await;
        assert_eq!(answer.status(), StatusCode::SEE_OTHER);

        let gateway = pair.ours.client(exchanger("Gateway", vec![their_issuer.clone()])).await;
        let stranger = pair.ours.client(exchanger("Stranger", vec![])).await;
        let alice = tokens_at_provider(&mut pair.theirs, &registration, "alice", &[("scope", "openid")]).await;
        let id_token = alice["id_token"].as_str().unwrap();

        // Not trusted for token exchange yet: signing in through a provider is not enough.
        let (status, body) = exchange(&pair.ours, &gateway, id_token, ID_TOKEN, &[]).await;
        refused_because(status, &body, "not trusted for token exchange");

        let shown = cli_json(&pair.ours.app.db, &["social-login", "update", "primary", "--token-exchange", "true"]);
        assert_eq!(shown["token_exchange"], true, "{shown}");
        pair.ours.app.settle().await;

        // A client that does not name the issuer may not exchange its tokens.
        let (status, body) = exchange(&pair.ours, &stranger, id_token, ID_TOKEN, &[]).await;
        refused_because(status, &body, "may not exchange tokens issued by");

        // The gateway gets a token for alice here, narrowed as asked.
        let (status, body) = exchange(&pair.ours, &gateway, id_token, ID_TOKEN, &[("scope", "read")]).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["issued_token_type"], ACCESS_TOKEN);
        assert_eq!(body["scope"], "read");
        assert!(body.get("refresh_token").is_none(), "{body}");
        let introspected = pair
            .ours
            .token_at("/oauth/introspect", Auth::Basic(&gateway), &[("token", body["access_token"].as_str().unwrap())])
            .await
            .2;
        assert_eq!(introspected["active"], true, "{introspected}");
        assert_eq!(introspected["sub"], "alice");
        assert_eq!(introspected["client_id"], gateway.client_id.as_str());
        // Presented as a plain JWT (RFC 8693 §3), it is the same.
        let (status, body) = exchange(&pair.ours, &gateway, id_token, JWT, &[]).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["scope"], "read write", "the client's registered scopes: it is trusted");

        // The audit says whose token it was.
        pair.ours.store.runner.catch_up_fully().await.unwrap();
        let audit = cli(&pair.ours.app.db, &["audit", "--user", "alice", "--format", "json"]);
        let printed = String::from_utf8_lossy(&audit.stdout);
        let expected = format!("a token of {their_issuer} for its subject alice");
        assert_eq!(printed.matches(&expected).count(), 2, "{printed}");

        // A JWT access token the provider issued with this server as its audience (RFC 8707
        // at the provider) works the same.
        let who = metadata(Actor::Cli("ops".into()));
        let input = ResourceInput {
            name: Some("authledger".into()),
            scope: vec!["read".into()],
            token_format: Some("jwt".into()),
            ..ResourceInput::default()
        };
        resources::create(&pair.theirs.store, &ours, input, &who).await.unwrap();
        pair.theirs.app.settle().await;
        let for_us = tokens_at_provider(&mut pair.theirs, &registration, "alice", &[("scope", "read"), ("resource", &ours)]).await;
        let access = for_us["access_token"].as_str().unwrap();
        assert_eq!(jsonwebtoken::decode_header(access).unwrap().typ.as_deref(), Some("at+jwt"));
        let (status, body) = exchange(&pair.ours, &gateway, access, ACCESS_TOKEN, &[]).await;
        assert_eq!(status, StatusCode::OK, "{body}");

        // A forged signature, another audience, a person nobody linked: refused.
        let (head, _) = id_token.rsplit_once('.').unwrap();
        let forged = format!("{head}.c2lnbmF0dXJl");
        let (status, body) = exchange(&pair.ours, &gateway, &forged, ID_TOKEN, &[]).await;
        refused_because(status, &body, "subject_token was refused");
        let other_app = pair.theirs.client(ClientInput { name: "Other app".into(), ..web_client() }).await;
        let elsewhere = tokens_at_provider(&mut pair.theirs, &other_app, "alice", &[("scope", "openid")]).await;
        let (status, body) = exchange(&pair.ours, &gateway, elsewhere["id_token"].as_str().unwrap(), ID_TOKEN, &[]).await;
        refused_because(status, &body, "subject_token was refused");
        let carol = tokens_at_provider(&mut pair.theirs, &registration, "carol", &[("scope", "openid")]).await;
        let (status, body) = exchange(&pair.ours, &gateway, carol["id_token"].as_str().unwrap(), ID_TOKEN, &[]).await;
        refused_because(status, &body, "no account linked here");

        // Disabled, the provider is trusted no more.
        cli_json(&pair.ours.app.db, &["social-login", "update", "primary", "--enabled", "false"]);
        pair.ours.app.settle().await;
        let (status, body) = exchange(&pair.ours, &gateway, id_token, ID_TOKEN, &[]).await;
        refused_because(status, &body, "not trusted for token exchange");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_an_openid_provider_can_be_trusted_for_token_exchange() {
    let flow = Flow::new(Kind::Sqlite).await;
    let output = cli_with_stdin(
        &flow.app.db,
        &[
            "social-login",
            "create",
            "--name",
            "Plain",
            "--authorize-url",
            "https://plain.example/authorize",
            "--token-url",
            "https://plain.example/token",
            "--api-endpoint",
            "https://plain.example/user",
            "--user-id-property",
            "id",
            "--client-id",
            "x",
            "--client-secret-stdin",
            "--token-exchange",
        ],
        "secret\n",
    );
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("only an OpenID provider"), "{stderr}");
    // A client's issuer must read as a URL.
    let output = cli(
        &flow.app.db,
        &[
            "client",
            "create",
            "--name",
            "Gateway",
            "--grant-type",
            "token_exchange",
            "--token-exchange-subject-issuer",
            "not a url",
        ],
    );
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("token_exchange_subject_issuers"),
        "{stderr}"
    );
}
