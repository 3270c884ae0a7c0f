//! A person's browser and a client, against a running server.

use authledger::admin::clients::{self, ClientInput, NewClient};
use authledger::admin::users::{self, UserInput};
use authledger::master_key::MasterKey;
use authledger::store::Store;
use authledger_domain::client::RegistrationSource;
use authledger_domain::metadata::Actor;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, LOCATION};
use reqwest::{Response, StatusCode};
use serde_json::Value;
use sha2::{Digest, Sha256};
use url::Url;

use crate::helpers::*;

pub const REDIRECT: &str = "https://app.example/callback";
/// The test browser's User-Agent, which the audit trail records.
pub const BROWSER: &str = "authledger-tests browser";

pub struct Flow {
    pub app: TestApp,
    pub store: Store,
    /// The person's browser: keeps cookies, does not follow redirects.
    pub browser: reqwest::Client,
    master: MasterKey,
}

pub fn password_of(user: &str) -> String {
    format!("password of {user}")
}

/// A PKCE pair (RFC 7636): a 43-character verifier and its S256 challenge.
pub fn pkce() -> (String, String) {
    let verifier = format!("{}{}", uuid::Uuid::new_v4().simple(), "abcdefghijk");
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    (verifier, challenge)
}

pub fn web_client() -> ClientInput {
    ClientInput {
        name: "Web App".into(),
        redirect_uris: vec![REDIRECT.into()],
        scope: Some("openid profile email roles".into()),
        ..ClientInput::default()
    }
}

/// How a client authenticates a token request.
pub enum Auth<'a> {
    Basic(&'a NewClient),
    Post(&'a NewClient),
    PublicId(&'a str),
    Nothing,
}

/// What came back from the authorization endpoint: where it redirects, and its parameters.
#[derive(Debug)]
pub struct Redirected {
    pub url: Url,
    pub params: std::collections::HashMap<String, String>,
}

impl Redirected {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.params.get(name).map(String::as_str)
    }
}

pub fn redirected(response: &Response) -> Redirected {
    assert!(
        response.status().is_redirection(),
        "expected a redirect, got {}",
        response.status()
    );
    let location = response.headers()[LOCATION].to_str().unwrap();
    let url = Url::parse(location)
        .unwrap_or_else(|_| Url::parse("http://local").unwrap().join(location).unwrap());
    let mut params: std::collections::HashMap<String, String> =
        url.query_pairs().into_owned().collect();
    if let Some(fragment) = url.fragment() {
        params.extend(form_urlencoded::parse(fragment.as_bytes()).into_owned());
    }
    Redirected { url, params }
}

/// Decodes HTML character references as a browser does (named ones askama emits, and numeric
/// ones such as `&#38;`).
pub fn unescape(html: &str) -> String {
    let mut out = String::with_capacity(html.len());
    let mut rest = html;
    while let Some(start) = rest.find('&') {
        out.push_str(&rest[..start]);
        let tail = &rest[start..];
        let Some(end) = tail.find(';') else {
            out.push_str(tail);
            return out;
        };
        let entity = &tail[1..end];
        let decoded = match entity {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            _ => entity
                .strip_prefix("#x")
                .or_else(|| entity.strip_prefix("#X"))
                .and_then(|hex| u32::from_str_radix(hex, 16).ok())
                .or_else(|| entity.strip_prefix('#').and_then(|dec| dec.parse().ok()))
                .and_then(char::from_u32),
        };
        match decoded {
            Some(c) => {
                out.push(c);
                rest = &tail[end + 1..];
            }
            None => {
                out.push('&');
                rest = &tail[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// The hidden inputs of the page's form.
pub fn hidden_fields(html: &str) -> Vec<(String, String)> {
    html.split("<input type=\"hidden\" ")
        .skip(1)
        .filter_map(|rest| {
            let name = rest.strip_prefix("name=\"")?.split('"').next()?;
            let value = rest.split("value=\"").nth(1)?.split('"').next()?;
            Some((unescape(name), unescape(value)))
        })
        .collect()
}

impl Flow {
    pub async fn new(kind: Kind) -> Flow {
        Flow::with_app(TestApp::spawn(kind).await).await
    }

    /// A browser and a client against a server started by the test.
    pub async fn with_app(app: TestApp) -> Flow {
        let store = app.db.store().await;
        let master = MasterKey::from_base64(&app.db.master_key).unwrap();
        let browser = reqwest::Client::builder()
            .cookie_store(true)
            .user_agent(BROWSER)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        Flow {
            app,
            store,
            browser,
            master,
        }
    }

    /// A new browser with no cookies (a different person at another computer).
    pub fn fresh_browser(&mut self) {
        self.browser = reqwest::Client::builder()
            .cookie_store(true)
            .user_agent(BROWSER)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
    }

    pub async fn user(&self, name: &str, roles: &[&str]) {
        let input = UserInput {
            username: name.into(),
            password: password_of(name),
            email: Some(format!("{name}@example.com")),
            name: Some(format!("{name} Example")),
            given_name: Some(name.into()),
            roles: roles.iter().map(|r| r.to_string()).collect(),
            ..UserInput::default()
        };
        users::create(&self.store, input, &metadata(Actor::Cli("test".into())))
            .await
            .unwrap();
        self.app.settle().await;
    }

    pub async fn client(&self, input: ClientInput) -> NewClient {
        let client = clients::register(
            &self.store,
            input,
            RegistrationSource::Admin,
            &metadata(Actor::Cli("test".into())),
            Some(&self.master),
        )
        .await
        .unwrap();
        self.app.settle().await;
        client
    }

    pub async fn set(&self, key: &str, value: &str) {
        let output = cli(&self.app.db, &["settings", "set", key, value]);
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        self.app.settle().await;
    }

    pub async fn get(&self, path: &str) -> Response {
        self.browser.get(self.app.url(path)).send().await.unwrap()
    }

    /// Signs `user` in through the login form.
    pub async fn sign_in(&self, user: &str) {
        let response = self.sign_in_with(user, &password_of(user), "/login").await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER, "sign-in failed");
    }

    pub async fn sign_in_with(&self, user: &str, password: &str, return_to: &str) -> Response {
        let page = self
            .get(&format!("/login?return_to={}", urlencode(return_to)))
            .await;
        assert_eq!(page.status(), 200);
        let html = page.text().await.unwrap();
        assert!(html.contains("name=\"username\"") && html.contains("name=\"password\""));
        let mut form = hidden_fields(&html);
        form.push(("username".into(), user.into()));
        form.push(("password".into(), password.into()));
        self.browser
            .post(self.app.url("/login"))
            .form(&form)
            .send()
            .await
            .unwrap()
    }

    pub async fn authorize(&self, params: &[(&str, &str)]) -> Response {
        let query = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(params)
            .finish();
        self.get(&format!("/oauth/authorize?{query}")).await
    }

    /// Submits the consent page's form with `decision`.
    pub async fn decide(&self, consent_page: Response, decision: &str) -> Response {
        assert_eq!(consent_page.status(), 200, "expected the consent page");
        let html = consent_page.text().await.unwrap();
        assert!(html.contains("name=\"decision\" value=\"allow\""), "{html}");
        assert!(html.contains("name=\"decision\" value=\"deny\""));
        let action = html
            .split("<form method=\"post\" action=\"")
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap()
            .to_owned();
        let mut form = hidden_fields(&html);
        form.push(("decision".into(), decision.into()));
        self.browser
            .post(self.app.url(&unescape(&action)))
            .form(&form)
            .send()
            .await
            .unwrap()
    }

    /// Signs in (if needed), authorizes with PKCE and allows; returns the code.
    pub async fn code(
        &self,
        client: &NewClient,
        user: &str,
        extra: &[(&str, &str)],
        challenge: &str,
    ) -> String {
        let mut params = vec![
            ("response_type", "code"),
            ("client_id", client.client_id.as_str()),
            ("redirect_uri", REDIRECT),
            ("state", "st-1"),
            ("code_challenge", challenge),
            ("code_challenge_method", "S256"),
        ];
        params.extend_from_slice(extra);
        let mut response = self.authorize(&params).await;
        if response.status() == StatusCode::SEE_OTHER
            && redirected(&response).url.path() == "/login"
        {
            self.sign_in(user).await;
            response = self.authorize(&params).await;
        }
        if response.status() == StatusCode::OK {
            response = self.decide(response, "allow").await;
        }
        let back = redirected(&response);
        assert_eq!(back.get("state"), Some("st-1"), "{back:?}");
        back.get("code")
            .unwrap_or_else(|| panic!("no code in {back:?}"))
            .to_owned()
    }

    /// Exchanges a code (with its PKCE verifier) at the token endpoint.
    pub async fn exchange(
        &self,
        auth: Auth<'_>,
        code: &str,
        verifier: &str,
    ) -> (StatusCode, reqwest::header::HeaderMap, Value) {
        self.token(
            auth,
            &[
                ("grant_type", "authorization_code"),
                ("code", code),
                ("redirect_uri", REDIRECT),
                ("code_verifier", verifier),
            ],
        )
        .await
    }

    /// POSTs a form to the token endpoint.
    pub async fn token(
        &self,
        auth: Auth<'_>,
        params: &[(&str, &str)],
    ) -> (StatusCode, reqwest::header::HeaderMap, Value) {
        self.token_at("/oauth/token", auth, params).await
    }

    pub async fn token_at(
        &self,
        path: &str,
        auth: Auth<'_>,
        params: &[(&str, &str)],
    ) -> (StatusCode, reqwest::header::HeaderMap, Value) {
        let mut form: Vec<(String, String)> = params
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let mut request = self.app.http.post(self.app.url(path));
        match auth {
            Auth::Basic(client) => {
                let credentials = format!(
                    "{}:{}",
                    client.client_id.as_str(),
                    client.client_secret.as_ref().unwrap().reveal()
                );
                request = request.header(
                    AUTHORIZATION,
                    format!(
                        "Basic {}",
                        base64::engine::general_purpose::STANDARD.encode(credentials)
                    ),
                );
            }
            Auth::Post(client) => {
                form.push(("client_id".into(), client.client_id.to_string()));
                form.push((
                    "client_secret".into(),
                    client.client_secret.as_ref().unwrap().reveal().into(),
                ));
            }
            Auth::PublicId(id) => form.push(("client_id".into(), id.into())),
            Auth::Nothing => {}
        }
        let response = request
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(
                form_urlencoded::Serializer::new(String::new())
                    .extend_pairs(form)
                    .finish(),
            )
            .send()
            .await
            .unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        (
            status,
            headers,
            response.json().await.unwrap_or(Value::Null),
        )
    }

    /// Posts the first form of the page `html` that goes to `action`, as a person would: its
    /// hidden fields (the CSRF token) and `fields` as typed.
    pub async fn submit(&self, html: &str, action: &str, fields: &[(&str, &str)]) -> Response {
        let opening = format!("<form method=\"post\" action=\"{action}\">");
        let form = html
            .split(&opening)
            .nth(1)
            .unwrap_or_else(|| panic!("no form posts to {action}: {html}"));
        let mut sent = hidden_fields(form.split("</form>").next().unwrap_or_default());
        sent.extend(fields.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        self.browser
            .post(self.app.url(action))
            .form(&sent)
            .send()
            .await
            .unwrap()
    }

    /// The event types recorded for one aggregate.
    pub async fn history(&self, aggregate_type: &str, id: &str) -> Vec<String> {
        authledger_projections::event_log::read_aggregate(&self.store.db, aggregate_type, id)
            .await
            .unwrap()
            .into_iter()
            .map(|e| e.event_type)
            .collect()
    }

    /// Verifies an ID token against the published JWKS; returns its claims.
    pub async fn verify_id_token(&self, id_token: &str, audience: &str) -> Value {
        let header = jsonwebtoken::decode_header(id_token).unwrap();
        let jwks: jsonwebtoken::jwk::JwkSet = self
            .app
            .http
            .get(self.app.url("/oauth/jwks"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let kid = header.kid.expect("asymmetric ID tokens name their key");
        let jwk = jwks.find(&kid).expect("the key is published");
        let key = jsonwebtoken::DecodingKey::from_jwk(jwk).unwrap();
        let mut validation = jsonwebtoken::Validation::new(header.alg);
        validation.set_audience(&[audience]);
        validation.set_issuer(&[self.app.address.as_str()]);
        jsonwebtoken::decode::<Value>(id_token, &key, &validation)
            .unwrap()
            .claims
    }
}

pub fn urlencode(raw: &str) -> String {
    form_urlencoded::byte_serialize(raw.as_bytes()).collect()
}

/// An admin bearer token, from a client registered for scope `admin` (client credentials).
pub async fn admin_token(flow: &Flow) -> String {
    let ops = flow
        .client(ClientInput {
            name: "Operations".into(),
            grant_types: vec!["client_credentials".into()],
            redirect_uris: vec![],
            scope: Some("admin".into()),
            ..ClientInput::default()
        })
        .await;
    let (status, _, tokens) = flow
        .token(Auth::Basic(&ops), &[("grant_type", "client_credentials")])
        .await;
    assert_eq!(status, 200, "{tokens}");
    tokens["access_token"].as_str().unwrap().to_owned()
}

pub async fn admin(
    flow: &Flow,
    token: &str,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut request = flow
        .app
        .http
        .request(method, flow.app.url(&format!("/admin/api{path}")))
        .bearer_auth(token);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// A dynamic registration (RFC 7591): status, headers and JSON body.
pub async fn register(flow: &Flow, body: Value) -> (StatusCode, reqwest::header::HeaderMap, Value) {
    let response = flow
        .app
        .http
        .post(flow.app.url("/oauth/register"))
        .json(&body)
        .send()
        .await
        .unwrap();
    let (status, headers) = (response.status(), response.headers().clone());
    (
        status,
        headers,
        response.json().await.unwrap_or(Value::Null),
    )
}
