//! Validation of authorization requests (RFC 6749 §4.1.1, §4.2.1; RFC 7636 §4.3; OIDC Core
//! §3.1.2.1), in the order the RFC prescribes: first whether the client and redirect URI can be
//! trusted (if not, the person is told and nothing is redirected), then everything else, whose
//! failures go back to the client.

use authledger_domain::client::{ClientStatus, RegisteredClient};
use authledger_domain::oauth::{RedirectUri, ResponseType, Scopes};
use authledger_domain::pkce::{ChallengeMethod, CodeChallenge};
use authledger_domain::settings::SettingsValues;

use super::error::{AuthorizeError, AuthorizeErrorCode, ResponseTarget};
use super::params::Params;
use super::Authority;
use crate::error::client_error;

/// OIDC Core §3.1.2.1 `prompt`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Prompt {
    pub none: bool,
    pub login: bool,
    pub consent: bool,
}

/// An authorization request that passed every check that does not depend on the person.
#[derive(Debug, Clone)]
pub struct AuthorizationRequest {
    /// As received (minus any consent-form fields), to carry through sign-in and consent.
    pub params: Params,
    pub client: RegisteredClient,
    pub target: ResponseTarget,
    pub redirect_uri_explicit: bool,
    pub response_type: ResponseType,
    pub scopes: Scopes,
    pub challenge: Option<CodeChallenge>,
    pub nonce: Option<String>,
    pub prompt: Prompt,
    pub max_age: Option<i64>,
    pub login_hint: Option<String>,
    /// The authentication context classes asked for, most wanted first (OIDC Core §3.1.2.1).
    pub acr_values: Vec<String>,
    /// The resources the tokens are for (RFC 8707); empty when the request named none.
    pub resources: super::resources::Target,
}

impl AuthorizationRequest {
    /// Whether the client asked for a sign-in with two factors (`acr_values=2`).
    pub fn wants_two_factors(&self) -> bool {
        self.acr_values
            .iter()
            .any(|v| v == super::id_token::ACR_TWO_FACTORS)
    }
}

fn untrusted(title: &'static str, message: impl Into<String>) -> AuthorizeError {
    AuthorizeError::Untrusted {
        title,
        message: message.into(),
    }
}

/// RFC 6749 §3.1.2.3 exact matching, with RFC 8252 §7.3's exception: a native app's loopback
/// redirect may use any port.
fn resolve_redirect_uri(
    client: &RegisteredClient,
    requested: Option<&str>,
) -> Result<(String, bool), AuthorizeError> {
    let registered = &client.metadata.redirect_uris;
    let Some(requested) = requested else {
        let only = match (&client.metadata.default_redirect_uri, registered.as_slice()) {
            (Some(default), _) => default,
            (None, [only]) => only,
            _ => return Err(untrusted(
                "Missing redirect URI",
                "This client has several redirect URIs registered, so the request must name one.",
            )),
        };
        return Ok((only.as_str().to_owned(), false));
    };
    if registered.iter().any(|r| r.as_str() == requested) {
        return Ok((requested.to_owned(), true));
    }
    let loopback_match = RedirectUri::parse(requested).is_ok_and(|uri| uri.is_loopback())
        && registered
            .iter()
            .any(|r| r.is_loopback() && same_but_port(r.as_str(), requested));
    if loopback_match {
        return Ok((requested.to_owned(), true));
    }
    Err(untrusted(
        "Unregistered redirect URI",
        "The redirect URI in this request is not registered for the client, so the answer \
         cannot be sent back to it.",
    ))
}

fn same_but_port(registered: &str, requested: &str) -> bool {
    match (url::Url::parse(registered), url::Url::parse(requested)) {
        (Ok(mut a), Ok(mut b)) => {
            let _ = a.set_port(None);
            let _ = b.set_port(None);
            a == b
        }
        _ => false,
    }
}

/// Validates `params` against the client's registration and the settings.
pub async fn validate(
    authority: &Authority,
    settings: &SettingsValues,
    params: Params,
) -> Result<AuthorizationRequest, AuthorizeError> {
    let client_id = params.get("client_id").ok_or_else(|| {
        untrusted(
            "Missing client",
            "The request does not name a client (client_id).",
        )
    })?;
    let client = authority
        .store
        .clients
        .load(client_id)
        .await
        .map_err(|e| AuthorizeError::Failure(client_error(client_id, e)))?;
    let client = match client.registered() {
        Some(client) if client.status == ClientStatus::Active => client.clone(),
        Some(client) if client.status == ClientStatus::Disabled => {
            return Err(untrusted(
                "Client disabled",
                "This client has been disabled.",
            ))
        }
        _ => {
            return Err(untrusted(
                "Unknown client",
                "No client is registered with this client_id.",
            ))
        }
    };
    let (redirect_uri, redirect_uri_explicit) =
        resolve_redirect_uri(&client, params.get("redirect_uri"))?;

    // From here on the redirect URI is trusted: errors go back to the client.
    let response_type = params.get("response_type");
    let target = ResponseTarget {
        redirect_uri,
        in_fragment: response_type == Some("token"),
        state: params.get("state").map(str::to_owned),
        issuer: authority.issuer.clone(),
    };
    let fail = |code: AuthorizeErrorCode, description: &str| AuthorizeError::Redirect {
        target: target.clone(),
        code,
        description: description.to_owned(),
    };

    let response_type = match response_type {
        None => {
            return Err(fail(
                AuthorizeErrorCode::InvalidRequest,
                "response_type is required",
            ))
        }
        Some("code") => ResponseType::Code,
        Some("token") => ResponseType::Token,
        Some(_) => {
            return Err(fail(
                AuthorizeErrorCode::UnsupportedResponseType,
                "only response_type `code` (and `token` where enabled) is supported",
            ))
        }
    };
    if !client.metadata.response_types.contains(&response_type) {
        return Err(fail(
            AuthorizeErrorCode::UnauthorizedClient,
            "the client is not registered for this response_type",
        ));
    }
    if response_type == ResponseType::Token && !settings.allow_implicit {
        return Err(fail(
            AuthorizeErrorCode::UnauthorizedClient,
            "the implicit grant is disabled on this server",
        ));
    }

    let scopes = match params.get("scope") {
        None => client.metadata.scopes.clone(),
        Some(raw) => {
            let scopes = Scopes::parse(raw)
                .map_err(|e| fail(AuthorizeErrorCode::InvalidScope, &e.to_string()))?;
            if !scopes.is_subset_of(&client.metadata.scopes) {
                return Err(fail(
                    AuthorizeErrorCode::InvalidScope,
                    "the requested scope exceeds the scope registered for the client",
                ));
            }
            scopes
        }
    };

    let challenge = if response_type == ResponseType::Code {
        let method = match params.get("code_challenge_method") {
            None => ChallengeMethod::Plain,
            Some(raw) => ChallengeMethod::parse(raw).ok_or_else(|| {
                fail(
                    AuthorizeErrorCode::InvalidRequest,
                    "code_challenge_method must be S256 or plain",
                )
            })?,
        };
        let challenge = params
            .get("code_challenge")
            .map(|raw| CodeChallenge::parse(raw, method))
            .transpose()
            .map_err(|e| fail(AuthorizeErrorCode::InvalidRequest, &e.to_string()))?;
        let public = client.metadata.token_endpoint_auth_method.is_public();
        match &challenge {
            None if public => {
                return Err(fail(
                    AuthorizeErrorCode::InvalidRequest,
                    "a public client must use PKCE with code_challenge_method S256",
                ))
            }
            None if client.metadata.require_pkce => {
                return Err(fail(
                    AuthorizeErrorCode::InvalidRequest,
                    "this client must use PKCE (code_challenge)",
                ))
            }
            Some(c) if public && c.method == ChallengeMethod::Plain => {
                return Err(fail(
                    AuthorizeErrorCode::InvalidRequest,
                    "a public client must use code_challenge_method S256, not plain",
                ))
            }
            _ => {}
        }
        challenge
    } else {
        None
    };

    let mut prompt = Prompt::default();
    if let Some(raw) = params.get("prompt") {
        for value in raw.split(' ').filter(|v| !v.is_empty()) {
            match value {
                "none" => prompt.none = true,
                "login" => prompt.login = true,
                "consent" => prompt.consent = true,
                "select_account" => {}
                _ => {
                    return Err(fail(
                        AuthorizeErrorCode::InvalidRequest,
                        "unknown prompt value",
                    ))
                }
            }
        }
        if prompt.none && (prompt.login || prompt.consent) {
            return Err(fail(
                AuthorizeErrorCode::InvalidRequest,
                "prompt=none cannot be combined with other values",
            ));
        }
    }
    let max_age = params
        .get("max_age")
        .map(|raw| raw.parse::<i64>().ok().filter(|v| *v >= 0))
        .map(|parsed| {
            parsed.ok_or_else(|| {
                fail(
                    AuthorizeErrorCode::InvalidRequest,
                    "max_age must be a non-negative integer",
                )
            })
        })
        .transpose()?;
    // RFC 8707 §2: each resource registered and open to the client; the implicit grant's
    // tokens are never restricted, so it may name none.
    let resources = super::resources::Target::resolve(
        authority,
        &client.client_id,
        &params.get_all("resource"),
    )
    .await
    .map_err(|refused| match refused {
        super::resources::TargetRefused::Invalid(why) => {
            fail(AuthorizeErrorCode::InvalidTarget, &why)
        }
        super::resources::TargetRefused::Failed(error) => AuthorizeError::Failure(error),
    })?;
    if response_type == ResponseType::Token && !resources.is_empty() {
        return Err(fail(
            AuthorizeErrorCode::InvalidTarget,
            "resources can be named with the code grant only",
        ));
    }

    Ok(AuthorizationRequest {
        resources,
        acr_values: params
            .get("acr_values")
            .map(|v| {
                v.split(' ')
                    .filter(|v| !v.is_empty())
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default(),
        nonce: params.get("nonce").map(str::to_owned),
        login_hint: params.get("login_hint").map(str::to_owned),
        params,
        client,
        target,
        redirect_uri_explicit,
        response_type,
        scopes,
        challenge,
        prompt,
        max_age,
    })
}

impl AuthorizationRequest {
    pub fn refuse(&self, code: AuthorizeErrorCode, description: &str) -> AuthorizeError {
        AuthorizeError::Redirect {
            target: self.target.clone(),
            code,
            description: description.to_owned(),
        }
    }
}
