//! Every refusal of the token endpoint: RFC 6749 §5.2 JSON, 400 except `invalid_client` (401).

use authledger::admin::clients::ClientInput;
use base64::Engine;
use reqwest::StatusCode;

use super::flow::*;
use crate::helpers::*;

on_both_stores! {
    async fn the_token_endpoint_takes_only_form_encoded_bodies(kind: Kind) {
        let flow = Flow::new(kind).await;
        let client = flow.client(ClientInput { grant_types: vec!["client_credentials".into()], redirect_uris: vec![], ..web_client() }).await;
        let response = flow.app.http.post(flow.app.url("/oauth/token"))
            .basic_auth(client.client_id.as_str(), Some(client.client_secret.as_ref().unwrap().reveal()))
            .json(&serde_json::json!({ "grant_type": "client_credentials" }))
            .send().await.unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        assert_eq!(response.headers()["cache-control"], "no-store");
        let body: serde_json::Value = response.json().await.unwrap();
        assert_eq!(body["error"], "invalid_request");
        assert!(body["error_description"].as_str().unwrap().contains("x-www-form-urlencoded"));
    }
}

on_both_stores! {
    async fn failed_client_authentication_is_a_401_invalid_client(kind: Kind) {
        let flow = Flow::new(kind).await;
        let client = flow.client(ClientInput { grant_types: vec!["client_credentials".into()], redirect_uris: vec![], ..web_client() }).await;
        let id = client.client_id.as_str();
        let form = [("grant_type", "client_credentials")];

        let wrong_secret = flow.app.http.post(flow.app.url("/oauth/token"))
            .basic_auth(id, Some("alcs_wrong"))
            .form(&form).send().await.unwrap();
        assert_eq!(wrong_secret.status(), StatusCode::UNAUTHORIZED);
        assert!(wrong_secret.headers()["www-authenticate"].to_str().unwrap().starts_with("Basic"));
        let body: serde_json::Value = wrong_secret.json().await.unwrap();
        assert_eq!(body["error"], "invalid_client");
        assert!(!body.to_string().contains("alcs_wrong"), "errors never echo a secret");

        let (status, headers, body) = flow.token(Auth::Post(&client), &form).await;
        assert_eq!((status, body["error"].as_str()), (StatusCode::UNAUTHORIZED, Some("invalid_client")), "registered for Basic, tried Post");
        assert!(headers.get("www-authenticate").is_none());

        let (status, _, body) = flow.token(Auth::PublicId(id), &form).await;
        assert_eq!((status, body["error"].as_str()), (StatusCode::UNAUTHORIZED, Some("invalid_client")), "no secret at all");

        let (status, _, body) = flow.token(Auth::Nothing, &form).await;
        assert_eq!((status, body["error"].as_str()), (StatusCode::UNAUTHORIZED, Some("invalid_client")));

        let unknown = flow.app.http.post(flow.app.url("/oauth/token"))
            .basic_auth("no-such-client", Some("whatever"))
            .form(&form).send().await.unwrap();
        assert_eq!(unknown.status(), StatusCode::UNAUTHORIZED);

        let garbage = flow.app.http.post(flow.app.url("/oauth/token"))
            .header("authorization", format!("Basic {}", base64::engine::general_purpose::STANDARD.encode("no-colon")))
            .form(&form).send().await.unwrap();
        assert_eq!(garbage.status(), StatusCode::UNAUTHORIZED);

        cli(&flow.app.db, &["client", "disable", id]);
        flow.app.settle().await;
        let (status, _, body) = flow.token(Auth::Basic(&client), &form).await;
        assert_eq!((status, body["error"].as_str()), (StatusCode::UNAUTHORIZED, Some("invalid_client")), "a disabled client");
    }
}

on_both_stores! {
    async fn grant_type_errors_are_told_apart(kind: Kind) {
        let flow = Flow::new(kind).await;
        let client = flow.client(web_client()).await;
        let cases: &[(&[(&str, &str)], &str)] = &[
            (&[], "invalid_request"),
            (&[("grant_type", "password"), ("username", "a"), ("password", "b")], "unsupported_grant_type"),
            (&[("grant_type", "implicit")], "unsupported_grant_type"),
            (&[("grant_type", "client_credentials")], "unauthorized_client"),
            (&[("grant_type", "authorization_code")], "invalid_request"),
            (&[("grant_type", "authorization_code"), ("code", "alac_nonsense")], "invalid_grant"),
            (&[("grant_type", "refresh_token")], "invalid_request"),
            (&[("grant_type", "refresh_token"), ("refresh_token", "alrt_00000000000000000000000000000000.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")], "invalid_grant"),
        ];
        for (params, error) in cases {
            let (status, _, body) = flow.token(Auth::Basic(&client), params).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{params:?}: {body}");
            assert_eq!(body["error"], *error, "{params:?}");
            assert!(body["error_description"].is_string());
        }
        let repeated = flow.app.http.post(flow.app.url("/oauth/token"))
            .basic_auth(client.client_id.as_str(), Some(client.client_secret.as_ref().unwrap().reveal()))
            .header("content-type", "application/x-www-form-urlencoded")
            .body("grant_type=authorization_code&grant_type=refresh_token")
            .send().await.unwrap();
        let body: serde_json::Value = repeated.json().await.unwrap();
        assert_eq!(body["error"], "invalid_request");
    }
}

on_both_stores! {
    /// RFC 9110 §11.1: `BASIC` and `Bearer` are case-insensitive; `BASIC` was once taken for a
    /// Basic attempt and then refused as malformed.
    async fn authorization_schemes_are_case_insensitive(kind: Kind) {
        let flow = Flow::new(kind).await;
        let client = flow.client(ClientInput { grant_types: vec!["client_credentials".into()], redirect_uris: vec![], scope: Some("admin".into()), ..web_client() }).await;
        let credentials = format!("{}:{}", client.client_id.as_str(), client.client_secret.as_ref().unwrap().reveal());
        let encoded = base64::engine::general_purpose::STANDARD.encode(credentials);
        let response = flow.app.http.post(flow.app.url("/oauth/token"))
            .header("authorization", format!("BASIC {encoded}"))
            .form(&[("grant_type", "client_credentials")])
            .send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let body: serde_json::Value = response.json().await.unwrap();
        let token = body["access_token"].as_str().unwrap();
        let listed = flow.app.http.get(flow.app.url("/admin/api/clients"))
            .header("authorization", format!("BEARER {token}"))
            .send().await.unwrap();
        assert_eq!(listed.status(), StatusCode::OK);
    }
}
