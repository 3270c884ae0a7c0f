use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use super::error::ClientError;
use crate::oauth::{GrantType, RedirectUri, ResponseType, Scopes, TokenEndpointAuthMethod, WebUrl};
use crate::text;

/// The client's registered metadata: Frappe's OAuth Client fields, named as in RFC 7591 §2.
///
/// Each field is already parsed; [`ClientMetadata::check`] adds the rules that relate fields to
/// one another.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClientMetadata {
    pub name: String,
    pub redirect_uris: Vec<RedirectUri>,
    /// Used when an authorization request omits `redirect_uri` (Frappe's "default redirect URI").
    #[serde(default)]
    pub default_redirect_uri: Option<RedirectUri>,
    pub scopes: Scopes,
    pub grant_types: BTreeSet<GrantType>,
    pub response_types: BTreeSet<ResponseType>,
    pub token_endpoint_auth_method: TokenEndpointAuthMethod,
    /// A "trusted client": people are not asked for consent.
    #[serde(default)]
    pub skip_authorization: bool,
    /// Require PKCE even though the client is confidential (public clients always need it).
    #[serde(default)]
    pub require_pkce: bool,
    /// When non-empty, only users holding one of these roles may authorize the client.
    #[serde(default)]
    pub allowed_roles: BTreeSet<String>,
    #[serde(default)]
    pub client_uri: Option<WebUrl>,
    #[serde(default)]
    pub logo_uri: Option<WebUrl>,
    #[serde(default)]
    pub tos_uri: Option<WebUrl>,
    #[serde(default)]
    pub policy_uri: Option<WebUrl>,
    #[serde(default)]
    pub contacts: Vec<String>,
    #[serde(default)]
    pub software_id: Option<String>,
    #[serde(default)]
    pub software_version: Option<String>,
    /// How ID tokens for this client are signed (OIDC Registration §2); `None` = RS256.
    #[serde(default)]
    pub id_token_signed_response_alg: Option<IdTokenAlg>,
    /// Put every profile claim under `openid`, as Frappe does, instead of filtering by the
    /// `profile`, `email` and `roles` scopes.
    #[serde(default)]
    pub frappe_claims: bool,
    /// Where the client may ask to be sent after signing a person out (OpenID Connect
    /// RP-Initiated Logout 1.0 §3.1), compared exactly as redirect URIs are.
    #[serde(default)]
    pub post_logout_redirect_uris: Vec<RedirectUri>,
    /// Where the client is told that a person's session ended (OpenID Connect Back-Channel
    /// Logout 1.0 §2.2).
    #[serde(default)]
    pub backchannel_logout_uri: Option<WebUrl>,
    /// Whether the client needs `sid` in logout tokens (it always gets one).
    #[serde(default)]
    pub backchannel_logout_session_required: bool,
    /// Token exchange (RFC 8693): the clients whose tokens this client may exchange (its own
    /// always), i.e. whose users it may obtain tokens for.
    #[serde(default)]
    pub token_exchange_subject_clients: BTreeSet<String>,
    /// Token exchange: the external issuers (their `iss`, exactly) whose JWTs this client may
    /// exchange for tokens of the people they name, once the issuer is trusted for token
    /// exchange (a social login provider with `token_exchange` on).
    #[serde(default)]
    pub token_exchange_subject_issuers: BTreeSet<String>,
    /// Token exchange: the clients whose tokens may act for the subject in this client's
    /// exchanges (RFC 8693 `may_act`; the client itself always may).
    #[serde(default)]
    pub token_exchange_actor_clients: BTreeSet<String>,
}

/// ID token signature algorithms (RFC 7518 §3.1). HS256 signs with the client secret, for
/// Frappe compatibility.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum IdTokenAlg {
    RS256,
    ES256,
    EdDSA,
    HS256,
}

impl IdTokenAlg {
    pub const ALL: [IdTokenAlg; 4] = [
        IdTokenAlg::RS256,
        IdTokenAlg::ES256,
        IdTokenAlg::EdDSA,
        IdTokenAlg::HS256,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            IdTokenAlg::RS256 => "RS256",
            IdTokenAlg::ES256 => "ES256",
            IdTokenAlg::EdDSA => "EdDSA",
            IdTokenAlg::HS256 => "HS256",
        }
    }
    pub fn parse(raw: &str) -> Option<Self> {
        IdTokenAlg::ALL.into_iter().find(|alg| alg.as_str() == raw)
    }
}

/// How the client came to exist: the audit trail distinguishes operator-made clients from
/// self-registered ones (RFC 7591).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RegistrationSource {
    Admin,
    Dynamic,
}

const NAME_MAX_CHARS: usize = 200;
/// More redirect URIs than any real client needs; the limit keeps one registration from
/// growing the log and every client lookup without bound.
pub const MAX_REDIRECT_URIS: usize = 100;
const MAX_CONTACTS: usize = 20;
const MAX_ALLOWED_ROLES: usize = 100;
const MAX_EXCHANGE_CLIENTS: usize = 100;

impl ClientMetadata {
    /// The cross-field rules of RFC 7591 §2 and RFC 6749.
    pub fn check(&self) -> Result<(), ClientError> {
        let name = self.name.trim();
        if name.is_empty() || name.chars().count() > NAME_MAX_CHARS {
            return Err(ClientError::invalid(
                "client_name",
                format!("must be 1 to {NAME_MAX_CHARS} characters"),
            ));
        }
        if self.name.chars().any(char::is_control) {
            return Err(ClientError::invalid(
                "client_name",
                "must not contain control characters",
            ));
        }
        if self.grant_types.is_empty() {
            return Err(ClientError::invalid("grant_types", "must not be empty"));
        }
        if self.scopes.is_empty() {
            return Err(ClientError::invalid("scope", "must not be empty"));
        }

        let grants = |g| self.grant_types.contains(&g);
        let responses = |r| self.response_types.contains(&r);
        // RFC 7591 §2.1: each response type needs its grant type, and the other way round.
        for (grant, response) in [
            (GrantType::AuthorizationCode, ResponseType::Code),
            (GrantType::Implicit, ResponseType::Token),
        ] {
            if grants(grant) != responses(response) {
                return Err(ClientError::invalid(
                    "response_types",
                    format!("response type `{response}` goes with grant type `{grant}`, and only with it"),
                ));
            }
        }
        if grants(GrantType::RefreshToken)
            && !grants(GrantType::AuthorizationCode)
            && !grants(GrantType::DeviceCode)
        {
            return Err(ClientError::invalid(
                "grant_types",
                "`refresh_token` is only issued through `authorization_code` or the device grant",
            ));
        }
        if self.token_endpoint_auth_method.is_public() && grants(GrantType::ClientCredentials) {
            return Err(ClientError::invalid(
                "grant_types",
                "a public client cannot use `client_credentials` (RFC 6749 §4.4)",
            ));
        }
        // Anyone holding a token could exchange it through a client that cannot authenticate.
        if self.token_endpoint_auth_method.is_public() && grants(GrantType::TokenExchange) {
            return Err(ClientError::invalid(
                "grant_types",
                "a public client cannot use token exchange (RFC 8693 §2.1: the client authenticates)",
            ));
        }

        let redirects = grants(GrantType::AuthorizationCode) || grants(GrantType::Implicit);
        if redirects && self.redirect_uris.is_empty() {
            return Err(ClientError::invalid(
                "redirect_uris",
                "required for the authorization_code and implicit grants",
            ));
        }
        if let Some(default) = &self.default_redirect_uri {
            if !self.redirect_uris.contains(default) {
                return Err(ClientError::invalid(
                    "default_redirect_uri",
                    "must be one of redirect_uris",
                ));
            }
        }
        if self.id_token_signed_response_alg == Some(IdTokenAlg::HS256)
            && self.token_endpoint_auth_method.is_public()
        {
            return Err(ClientError::invalid(
                "id_token_signed_response_alg",
                "HS256 signs with the client secret, and a public client has none",
            ));
        }
        if let Some(contact) = self.contacts.iter().find(|c| c.trim().is_empty()) {
            return Err(ClientError::invalid(
                "contacts",
                format!("`{contact}` is empty"),
            ));
        }
        self.check_sizes()
    }

    /// Every string is printable and bounded, and every list is bounded (see [`crate::text`]).
    fn check_sizes(&self) -> Result<(), ClientError> {
        for (field, count, max) in [
            ("redirect_uris", self.redirect_uris.len(), MAX_REDIRECT_URIS),
            (
                "post_logout_redirect_uris",
                self.post_logout_redirect_uris.len(),
                MAX_REDIRECT_URIS,
            ),
            ("contacts", self.contacts.len(), MAX_CONTACTS),
            ("allowed_roles", self.allowed_roles.len(), MAX_ALLOWED_ROLES),
            (
                "token_exchange_subject_clients",
                self.token_exchange_subject_clients.len(),
                MAX_EXCHANGE_CLIENTS,
            ),
            (
                "token_exchange_actor_clients",
                self.token_exchange_actor_clients.len(),
                MAX_EXCHANGE_CLIENTS,
            ),
            (
                "token_exchange_subject_issuers",
                self.token_exchange_subject_issuers.len(),
                MAX_EXCHANGE_CLIENTS,
            ),
        ] {
            if count > max {
                return Err(ClientError::invalid(
                    field,
                    format!("at most {max} entries, not {count}"),
                ));
            }
        }
        let uris = self
            .redirect_uris
            .iter()
            .chain(&self.default_redirect_uri)
            .map(|u| ("redirect_uris", u.as_str()))
            .chain(
                self.post_logout_redirect_uris
                    .iter()
                    .map(|u| ("post_logout_redirect_uris", u.as_str())),
            )
            .chain(
                [
                    ("client_uri", &self.client_uri),
                    ("logo_uri", &self.logo_uri),
                    ("tos_uri", &self.tos_uri),
                    ("policy_uri", &self.policy_uri),
                    ("backchannel_logout_uri", &self.backchannel_logout_uri),
                ]
                .into_iter()
                .filter_map(|(field, uri)| uri.as_ref().map(|u| (field, u.as_str()))),
            )
            .map(|(field, value)| (field, value, text::MAX_URI_CHARS));
        let lines = [
            ("software_id", &self.software_id),
            ("software_version", &self.software_version),
        ]
        .into_iter()
        .filter_map(|(field, value)| value.as_deref().map(|v| (field, v, text::MAX_LINE_CHARS)))
        .chain(self.contacts.iter().map(|c| ("contacts", c.as_str(), 254)))
        .chain(
            self.allowed_roles
                .iter()
                .map(|r| ("allowed_roles", r.as_str(), 64)),
        )
        .chain(
            self.token_exchange_subject_clients
                .iter()
                .map(|c| ("token_exchange_subject_clients", c.as_str(), 200)),
        )
        .chain(
            self.token_exchange_actor_clients
                .iter()
                .map(|c| ("token_exchange_actor_clients", c.as_str(), 200)),
        )
        .chain(self.token_exchange_subject_issuers.iter().map(|i| {
            (
                "token_exchange_subject_issuers",
                i.as_str(),
                text::MAX_URI_CHARS,
            )
        }));
        for (field, value, max) in uris.chain(lines) {
            text::check(value, max).map_err(|why| ClientError::invalid(field, why))?;
        }
        Ok(())
    }
}
