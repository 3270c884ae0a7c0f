//! Frappe's endpoints and conventions, so a client written for Frappe works unchanged.

use authledger::admin::clients::ClientInput;
use reqwest::StatusCode;

use super::flow::*;

/// Frappe's own PKCE test vector.
const FRAPPE_VERIFIER: &str = "420";
const FRAPPE_CHALLENGE: &str = "21XaP8MJjpxCMRxgEzBP82sZ73PRLqkyBUta1R309J0";

const AUTHORIZE: &str = "/api/method/frappe.integrations.oauth2.authorize";
const GET_TOKEN: &str = "/api/method/frappe.integrations.oauth2.get_token";

on_both_stores! {
    async fn a_frappe_client_completes_the_flow_on_the_frappe_paths(kind: Kind) {
        let flow = Flow::new(kind).await;
        flow.user("fiona", &["System Manager"]).await;
        let client = flow.client(ClientInput {
            name: "Frappe App".into(),
            scope: Some("all openid".into()),
            token_endpoint_auth_method: Some("client_secret_post".into()),
            id_token_signed_response_alg: Some("HS256".into()),
            frappe_claims: true,
            ..web_client()
        }).await;
        flow.sign_in("fiona").await;
        let query = form_urlencoded::Serializer::new(String::new())
            .extend_pairs([
                ("client_id", client.client_id.as_str()),
                ("response_type", "code"),
                ("redirect_uri", REDIRECT),
                ("state", "frappe-state"),
                ("code_challenge", FRAPPE_CHALLENGE),
                ("code_challenge_method", "S256"),
            ])
            .finish();
        let page = flow.get(&format!("{AUTHORIZE}?{query}")).await;
        assert_eq!(page.status(), StatusCode::OK);
        let back = redirected(&flow.decide(page, "allow").await);
        assert_eq!(back.get("state"), Some("frappe-state"));
        let code = back.get("code").unwrap();

        // Scope omitted from the request: the client's scopes, as in Frappe.
        let params = [
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", FRAPPE_VERIFIER),
        ];
        let (status, _, strict) = flow.token(Auth::Post(&client), &params).await;
        assert_eq!((status, strict["error"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_request")), "the RFC endpoint keeps RFC 7636");
        let (status, _, tokens) = flow.token_at(GET_TOKEN, Auth::Post(&client), &params).await;
        assert_eq!(status, 200, "{tokens}");
        assert_eq!(tokens["token_type"], "Bearer");
        assert_eq!(tokens["expires_in"], 3600);
        assert_eq!(tokens["scope"], "all openid");
        assert!(tokens["refresh_token"].is_string());

        // What Frappe's clients do: jwt.decode(token, audience=client_id, key=client_secret,
        // algorithms=["HS256"]).
        let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256);
        validation.set_audience(&[client.client_id.as_str()]);
        let claims = jsonwebtoken::decode::<serde_json::Value>(
            tokens["id_token"].as_str().unwrap(),
            &jsonwebtoken::DecodingKey::from_secret(client.client_secret.as_ref().unwrap().reveal().as_bytes()),
            &validation,
        )
        .unwrap()
        .claims;
        assert_eq!(claims["sub"], "fiona");
        assert_eq!(claims["iss"], flow.app.address.as_str());
        assert_eq!(claims["email"], "fiona@example.com");
        assert_eq!(claims["name"], "fiona Example");
        assert_eq!(claims["roles"], serde_json::json!(["System Manager"]));

        let (status, _, refreshed) = flow.token_at(GET_TOKEN, Auth::Post(&client), &[
            ("grant_type", "refresh_token"),
            ("refresh_token", tokens["refresh_token"].as_str().unwrap()),
        ]).await;
        assert_eq!(status, 200, "{refreshed}");
    }
}
