//! Calls to another provider: discovery, its token endpoint (code, refresh, client
//! credentials), revocation, and verifying its signed tokens (ID tokens at sign-in, any JWT
//! it signed for token exchange) against its keys.
//!
//! Only URLs an administrator configured are called, redirects are not followed (a redirect
//! would reach a URL nobody configured), every call has a timeout, and at most
//! [`MAX_ANSWER`] bytes of an answer are read. What the provider said comes back as
//! [`AppError::Upstream`] in words safe to show: never a token or a secret.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use authledger_domain::connected_app::ProviderEndpoints;
use authledger_domain::oauth::WebUrl;
use base64::Engine;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use serde_json::Value;

use crate::error::AppError;

const TIMEOUT: Duration = Duration::from_secs(10);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Discovery documents, key sets and token answers are a few KiB.
const MAX_ANSWER: usize = 1 << 20;

/// What a token endpoint answered with success (RFC 6749 §5.1).
#[derive(Clone, Deserialize)]
pub struct TokenAnswer {
    pub access_token: String,
    pub token_type: String,
    #[serde(default)]
    pub expires_in: Option<i64>,
    #[serde(default)]
    pub refresh_token: Option<String>,
    #[serde(default)]
    pub scope: Option<String>,
    #[serde(default)]
    pub id_token: Option<String>,
}

impl std::fmt::Debug for TokenAnswer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenAnswer")
            .field("token_type", &self.token_type)
            .field("expires_in", &self.expires_in)
            .field("scope", &self.scope)
            .finish_non_exhaustive()
    }
}

/// Why a token request got no tokens.
#[derive(Debug)]
pub enum TokenRefused {
    /// `invalid_grant`: the code or refresh token is no longer good (RFC 6749 §5.2).
    InvalidGrant(String),
    Failed(AppError),
}

impl From<TokenRefused> for AppError {
    fn from(refused: TokenRefused) -> Self {
        match refused {
            TokenRefused::InvalidGrant(why) => AppError::Upstream(why),
            TokenRefused::Failed(error) => error,
        }
    }
}

/// The claims of a verified ID token that authledger uses.
#[derive(Debug, Clone, Deserialize)]
pub struct IdClaims {
    pub sub: String,
    #[serde(default)]
    pub nonce: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub email_verified: Option<bool>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub given_name: Option<String>,
    #[serde(default)]
    pub family_name: Option<String>,
    #[serde(default)]
    pub preferred_username: Option<String>,
}

#[derive(Clone)]
pub struct ProviderClient {
    http: reqwest::Client,
    keys: Arc<KeySets>,
}

/// How long a fetched key set is used before it is fetched again.
const KEYS_FRESH: Duration = Duration::from_secs(300);
/// A token signed with a key the cached set lacks (the provider rotated) fetches the set
/// again, but no sooner than this after the last fetch: tokens naming unknown keys cannot
/// make this server call the provider at their rate.
const KEYS_REFETCH_AFTER: Duration = Duration::from_secs(30);
/// Key sets of a few providers are kept; more are dropped wholesale.
const KEYS_KEPT: usize = 64;

/// Key sets fetched recently, by URL: a trusted issuer's tokens may arrive at every token
/// exchange, and its keys change rarely.
#[derive(Default)]
struct KeySets {
    by_url: Mutex<HashMap<String, (Instant, Arc<JwkSet>)>>,
}

impl KeySets {
    fn cached(&self, url: &str) -> Option<(Instant, Arc<JwkSet>)> {
        let cached = self.by_url.lock().unwrap_or_else(|p| p.into_inner());
        cached.get(url).cloned()
    }

    fn keep(&self, url: &str, keys: Arc<JwkSet>) {
        let mut cached = self.by_url.lock().unwrap_or_else(|p| p.into_inner());
        if cached.len() >= KEYS_KEPT {
            cached.clear();
        }
        cached.insert(url.to_owned(), (Instant::now(), keys));
    }
}

/// The public-key signatures a provider's tokens may carry (never `none` or an HMAC, which
/// a key set cannot verify).
fn asymmetric(alg: Algorithm) -> bool {
    matches!(
        alg,
        Algorithm::RS256
            | Algorithm::RS384
            | Algorithm::RS512
            | Algorithm::PS256
            | Algorithm::PS384
            | Algorithm::PS512
            | Algorithm::ES256
            | Algorithm::ES384
            | Algorithm::EdDSA
    )
}

impl Default for ProviderClient {
    fn default() -> Self {
        ProviderClient::new()
    }
}

fn unreachable(what: &str, error: reqwest::Error) -> AppError {
    let why = if error.is_timeout() {
        "it did not answer in time".to_owned()
    } else if error.is_connect() {
        "it could not be reached".to_owned()
    } else {
        // reqwest's message names the URL, which is configuration, not a secret.
        format!("{error}")
    };
    AppError::Upstream(format!("{what}: {why}"))
}

impl ProviderClient {
    pub fn new() -> Self {
        let http = reqwest::Client::builder()
            .timeout(TIMEOUT)
            .connect_timeout(CONNECT_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("authledger/", env!("CARGO_PKG_VERSION")))
            .build()
            .expect("the HTTP client builds");
        ProviderClient {
            http,
            keys: Arc::default(),
        }
    }

    /// Sends `request` and reads at most [`MAX_ANSWER`] bytes of a JSON answer.
    async fn json(
        &self,
        request: reqwest::RequestBuilder,
        what: &str,
    ) -> Result<(reqwest::StatusCode, Value), AppError> {
        let mut response = request
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(|e| unreachable(what, e))?;
        let status = response.status();
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| unreachable(what, e))? {
            if body.len() + chunk.len() > MAX_ANSWER {
                return Err(AppError::Upstream(format!(
                    "{what}: the answer is larger than {MAX_ANSWER} bytes"
                )));
            }
            body.extend_from_slice(&chunk);
        }
        match serde_json::from_slice::<Value>(&body) {
            Ok(value) if value.is_object() => Ok((status, value)),
            _ => Err(AppError::Upstream(format!(
                "{what} answered HTTP {} with something other than a JSON object",
                status.as_u16()
            ))),
        }
    }

    /// The endpoints an OpenID provider's discovery document names (OIDC Discovery §4;
    /// RFC 8414 documents have the same fields).
    pub async fn discover(&self, url: &WebUrl) -> Result<ProviderEndpoints, AppError> {
        let what = "the provider's discovery document";
        let (status, document) = self.json(self.http.get(url.as_str()), what).await?;
        if !status.is_success() {
            return Err(AppError::Upstream(format!(
                "{what} answered HTTP {}",
                status.as_u16()
            )));
        }
        let url_at = |field: &str| -> Result<Option<WebUrl>, AppError> {
            match document.get(field) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(raw)) => WebUrl::parse(raw).map(Some).map_err(|_| {
                    AppError::Upstream(format!("{what}: `{field}` is not an http(s) URL"))
                }),
                Some(_) => Err(AppError::Upstream(format!(
                    "{what}: `{field}` is not a string"
                ))),
            }
        };
        let required = |field: &str| -> Result<WebUrl, AppError> {
            url_at(field)?.ok_or_else(|| AppError::Upstream(format!("{what} has no `{field}`")))
        };
        Ok(ProviderEndpoints {
            authorization: required("authorization_endpoint")?,
            token: required("token_endpoint")?,
            revocation: url_at("revocation_endpoint")?,
            userinfo: url_at("userinfo_endpoint")?,
            introspection: url_at("introspection_endpoint")?,
            issuer: document
                .get("issuer")
                .and_then(Value::as_str)
                .map(str::to_owned),
            jwks: url_at("jwks_uri")?,
        })
    }

    /// A token request (RFC 6749 §4.1.3, §4.4.2, §6) authenticated with HTTP Basic
    /// (`client_secret_basic`, §2.3.1: both parts form-encoded first).
    pub async fn token(
        &self,
        endpoint: &WebUrl,
        client_id: &str,
        client_secret: &str,
        form: &[(&str, &str)],
    ) -> Result<TokenAnswer, TokenRefused> {
        let what = "the provider's token endpoint";
        let encode = |v: &str| form_urlencoded::byte_serialize(v.as_bytes()).collect::<String>();
        let basic = base64::engine::general_purpose::STANDARD.encode(format!(
            "{}:{}",
            encode(client_id),
            encode(client_secret)
        ));
        let request = self
            .http
            .post(endpoint.as_str())
            .header(reqwest::header::AUTHORIZATION, format!("Basic {basic}"))
            .form(form);
        let (status, answer) = self
            .json(request, what)
            .await
            .map_err(TokenRefused::Failed)?;
        if !status.is_success() {
            let code = answer.get("error").and_then(Value::as_str).unwrap_or("");
            let description = answer
                .get("error_description")
                .and_then(Value::as_str)
                .map(|d| format!(": {}", d.chars().take(200).collect::<String>()))
                .unwrap_or_default();
            let said = format!(
                "{what} refused (HTTP {}, {}{description})",
                status.as_u16(),
                if code.is_empty() {
                    "no error code"
                } else {
                    code
                }
            );
            return Err(if code == "invalid_grant" {
                TokenRefused::InvalidGrant(said)
            } else {
                TokenRefused::Failed(AppError::Upstream(said))
            });
        }
        let answer: TokenAnswer = serde_json::from_value(answer).map_err(|e| {
            TokenRefused::Failed(AppError::Upstream(format!(
                "{what} answered without the fields of a token response: {e}"
            )))
        })?;
        // RFC 6750 bearer tokens are all authledger knows how to present.
        if !answer.token_type.eq_ignore_ascii_case("bearer") {
            return Err(TokenRefused::Failed(AppError::Upstream(format!(
                "{what} issued a `{}` token; only Bearer tokens are supported",
                answer.token_type.chars().take(40).collect::<String>()
            ))));
        }
        if answer.access_token.is_empty() {
            return Err(TokenRefused::Failed(AppError::Upstream(format!(
                "{what} answered with an empty access token"
            ))));
        }
        Ok(answer)
    }

    /// The user-info endpoint's JSON answer for `access_token` (OIDC Core §5.3, or a plain
    /// OAuth 2 provider's own, such as GitHub's `/user`).
    pub async fn user_info(
        &self,
        endpoint: &WebUrl,
        access_token: &str,
    ) -> Result<Value, AppError> {
        let what = "the provider's user-info endpoint";
        let request = self.http.get(endpoint.as_str()).bearer_auth(access_token);
        let (status, answer) = self.json(request, what).await?;
        if !status.is_success() {
            return Err(AppError::Upstream(format!(
                "{what} answered HTTP {}",
                status.as_u16()
            )));
        }
        Ok(answer)
    }

    /// RFC 7009 revocation of `token`; `Ok(false)` when the provider did not confirm it.
    pub async fn revoke(
        &self,
        endpoint: &WebUrl,
        client_id: &str,
        client_secret: &str,
        token: &str,
        hint: &str,
    ) -> bool {
        let encode = |v: &str| form_urlencoded::byte_serialize(v.as_bytes()).collect::<String>();
        let basic = base64::engine::general_purpose::STANDARD.encode(format!(
            "{}:{}",
            encode(client_id),
            encode(client_secret)
        ));
        let sent = self
            .http
            .post(endpoint.as_str())
            .header(reqwest::header::AUTHORIZATION, format!("Basic {basic}"))
            .form(&[("token", token), ("token_type_hint", hint)])
            .send()
            .await;
        sent.is_ok_and(|r| r.status().is_success())
    }

    /// Verifies an ID token (OIDC Core §3.1.3.7): signed by one of the provider's keys with
    /// an asymmetric algorithm, issued by its issuer, for `client_id`, not expired, and
    /// carrying `nonce`.
    pub async fn verify_id_token(
        &self,
        endpoints: &ProviderEndpoints,
        client_id: &str,
        id_token: &str,
        nonce: &str,
    ) -> Result<IdClaims, AppError> {
        let refused = |why: String| AppError::Upstream(format!("the ID token was refused: {why}"));
        let claims = self
            .verify_signed(endpoints, &[client_id], id_token)
            .await
            .map_err(|e| match e {
                Verification::Refused(why) => refused(why),
                Verification::Failed(error) => error,
            })?;
        let claims: IdClaims =
            serde_json::from_value(claims).map_err(|e| refused(format!("its claims: {e}")))?;
        if claims.nonce.as_deref() != Some(nonce) {
            return Err(refused("its nonce is not the one this sign-in sent".into()));
        }
        Ok(claims)
    }

    /// Verifies a JWT the provider signed: one of its keys with an asymmetric algorithm, its
    /// issuer, one of `audiences`, not expired and already valid (a minute's leeway). Returns
    /// its claims.
    pub async fn verify_signed(
        &self,
        endpoints: &ProviderEndpoints,
        audiences: &[&str],
        token: &str,
    ) -> Result<Value, Verification> {
        let refused = |why: &str| Verification::Refused(why.to_owned());
        let (Some(issuer), Some(jwks)) = (&endpoints.issuer, &endpoints.jwks) else {
            return Err(refused(
                "the provider has no issuer and key set configured to check it against",
            ));
        };
        let header =
            jsonwebtoken::decode_header(token).map_err(|_| refused("it is not a signed JWT"))?;
        if !asymmetric(header.alg) {
            return Err(Verification::Refused(format!(
                "{:?} is not a public-key signature",
                header.alg
            )));
        }
        let key = self
            .key_for(jwks, header.kid.as_deref())
            .await?
            .ok_or_else(|| refused("no key of the provider's key set matches it"))?;
        let mut validation = Validation::new(header.alg);
        validation.set_issuer(&[issuer]);
        validation.set_audience(audiences);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.validate_nbf = true;
        validation.leeway = 60;
        jsonwebtoken::decode::<Value>(token, &key, &validation)
            .map(|data| data.claims)
            .map_err(|e| Verification::Refused(e.to_string()))
    }

    /// The key `kid` names (or the only key, when the token names none), from the cached
    /// key set while it is fresh and holds it, fetched otherwise.
    async fn key_for(
        &self,
        jwks: &WebUrl,
        kid: Option<&str>,
    ) -> Result<Option<DecodingKey>, Verification> {
        let pick = |keys: &JwkSet| {
            match kid {
                Some(kid) => keys.find(kid),
                None if keys.keys.len() == 1 => keys.keys.first(),
                None => None,
            }
            .map(|jwk| {
                DecodingKey::from_jwk(jwk)
                    .map_err(|e| Verification::Refused(format!("its key: {e}")))
            })
            .transpose()
        };
        let cached = self.keys.cached(jwks.as_str());
        if let Some((fetched, keys)) = &cached {
            let age = fetched.elapsed();
            let found = pick(keys)?;
            if age < KEYS_FRESH && (found.is_some() || age < KEYS_REFETCH_AFTER) {
                return Ok(found);
            }
        }
        let keys = Arc::new(self.key_set(jwks).await.map_err(Verification::Failed)?);
        self.keys.keep(jwks.as_str(), keys.clone());
        pick(&keys)
    }

    async fn key_set(&self, jwks: &WebUrl) -> Result<JwkSet, AppError> {
        let (status, keys) = self
            .json(self.http.get(jwks.as_str()), "the provider's key set")
            .await?;
        if !status.is_success() {
            return Err(AppError::Upstream(format!(
                "the provider's key set answered HTTP {}",
                status.as_u16()
            )));
        }
        serde_json::from_value(keys).map_err(|e| {
            AppError::Upstream(format!("the provider's key set is not a JWK set: {e}"))
        })
    }
}

/// Why a provider's signed token was not taken.
#[derive(Debug)]
pub enum Verification {
    /// The token itself: its signature, issuer, audience or times (words safe to show).
    Refused(String),
    /// The provider's keys could not be read.
    Failed(AppError),
}
