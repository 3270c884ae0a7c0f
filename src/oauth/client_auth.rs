//! Client authentication at the token endpoint (RFC 6749 §2.3): exactly the method the client
//! registered, secrets compared in constant time, every failure the same `invalid_client`.

use authledger_domain::client::{ClientStatus, RegisteredClient};
use authledger_domain::oauth::TokenEndpointAuthMethod;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;

use super::error::TokenError;
use crate::secrets;
use crate::store::Store;

/// The client credentials a request carries (RFC 6749 §2.3.1): its `Authorization` header
/// and its `client_id` and `client_secret` parameters. `Debug` shows only the client id.
#[derive(Clone, Copy, Default)]
pub struct Credentials<'a> {
    pub authorization: Option<&'a str>,
    pub client_id: Option<&'a str>,
    pub client_secret: Option<&'a str>,
}

impl std::fmt::Debug for Credentials<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("client_id", &self.client_id)
            .finish_non_exhaustive()
    }
}

/// What the request presented.
struct Presented {
    client_id: String,
    secret: Option<String>,
    method: TokenEndpointAuthMethod,
}

/// RFC 6749 §2.3.1: the Basic credentials are the form-urlencoded id and secret. The scheme
/// is case-insensitive (RFC 9110 §11.1).
fn parse_basic(value: &str) -> Option<(String, String)> {
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = String::from_utf8(STANDARD.decode(encoded.trim()).ok()?).ok()?;
    let (id, secret) = decoded.split_once(':')?;
    let unescape = |s: &str| {
        form_urlencoded::parse(format!("x={s}").as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
    };
    Some((unescape(id)?, unescape(secret)?))
}

fn presented(credentials: Credentials<'_>) -> Result<Presented, TokenError> {
    let basic = credentials.authorization.filter(|v| {
        v.split_once(' ')
            .is_some_and(|(scheme, _)| scheme.eq_ignore_ascii_case("basic"))
    });
    let fail = |basic_attempted: bool, description: &str| TokenError {
        basic_attempted,
        ..TokenError::invalid_client(description)
    };
    if let Some(value) = basic {
        let (client_id, secret) =
            parse_basic(value).ok_or_else(|| fail(true, "malformed HTTP Basic credentials"))?;
        if credentials.client_secret.is_some() {
            return Err(TokenError::invalid_request(
                "use one client authentication method, not HTTP Basic and client_secret both",
            ));
        }
        if credentials.client_id.is_some_and(|id| id != client_id) {
            return Err(TokenError::invalid_request(
                "client_id differs from the HTTP Basic user name",
            ));
        }
        return Ok(Presented {
            client_id,
            secret: Some(secret),
            method: TokenEndpointAuthMethod::ClientSecretBasic,
        });
    }
    let client_id = credentials
        .client_id
        .ok_or_else(|| fail(false, "client authentication is required"))?
        .to_owned();
    Ok(match credentials.client_secret {
        Some(secret) => Presented {
            client_id,
            secret: Some(secret.to_owned()),
            method: TokenEndpointAuthMethod::ClientSecretPost,
        },
        None => Presented {
            client_id,
            secret: None,
            method: TokenEndpointAuthMethod::None,
        },
    })
}

/// The client a request claims to be (for counting failed authentications), if it names one.
pub fn claimed_client_id(credentials: Credentials<'_>) -> Option<String> {
    presented(credentials).ok().map(|p| p.client_id)
}

/// Authenticates the calling client; returns it as its events make it now.
pub async fn authenticate(
    store: &Store,
    credentials: Credentials<'_>,
) -> Result<RegisteredClient, TokenError> {
    let presented = presented(credentials)?;
    let basic_attempted = presented.method == TokenEndpointAuthMethod::ClientSecretBasic;
    let fail = || TokenError {
        basic_attempted,
        ..TokenError::invalid_client("client authentication failed")
    };
    let client = match store.client(&presented.client_id).await {
        Ok(client) => client,
        Err(crate::error::AppError::NotFound(_)) => None,
        Err(e) => return Err(TokenError::from(e)),
    };
    let Some(client) = client else {
        return Err(fail());
    };
    if client.status != ClientStatus::Active {
        return Err(fail());
    }
    if client.metadata.token_endpoint_auth_method != presented.method {
        return Err(fail());
    }
    match (&client.secret_hash, &presented.secret) {
        (None, None) => Ok(client),
        (Some(expected), Some(secret)) if expected.matches(&secrets::hash(secret)) => Ok(client),
        _ => Err(fail()),
    }
}
