//! A client registration as an operator writes it, checked before any command is built.

use std::collections::BTreeSet;

use authledger_domain::client::{ClientMetadata, IdTokenAlg};
use authledger_domain::oauth::{
    GrantType, RedirectUri, ResponseType, Scopes, TokenEndpointAuthMethod, WebUrl,
};

use crate::error::AppError;

/// Scopes a client gets when registered without `--scope`.
pub const DEFAULT_SCOPES: &str = "openid profile email";

/// A client registration as an operator writes it: the CLI's `client create` flags and the
/// admin API's JSON body are this one type, checked by one [`ClientInput::parse`]. (Dynamic
/// registration speaks RFC 7591: `oauth::registration` reads its request into this type and
/// adds its narrower rules.)
#[derive(
    Debug,
    Clone,
    Default,
    PartialEq,
    clap::Args,
    serde::Serialize,
    serde::Deserialize,
    utoipa::ToSchema,
)]
#[serde(deny_unknown_fields)]
pub struct ClientInput {
    /// What people see on the consent page.
    #[arg(long)]
    #[serde(rename = "client_name")]
    pub name: String,
    /// Where codes may be sent, compared exactly (repeatable): https, a loopback http address, or an app's own scheme.
    #[arg(long = "redirect-uri", value_name = "URI")]
    #[serde(default)]
    pub redirect_uris: Vec<String>,
    /// The redirect URI used when a request names none (one of --redirect-uri).
    #[arg(long, value_name = "URI")]
    pub default_redirect_uri: Option<String>,
    /// Space-separated scopes [default: "openid profile email"].
    #[arg(long)]
    pub scope: Option<String>,
    /// authorization_code | refresh_token | client_credentials | device_code | token_exchange
    /// | implicit [default: authorization_code refresh_token].
    #[arg(long = "grant-type", value_name = "GRANT")]
    #[serde(default)]
    pub grant_types: Vec<String>,
    /// client_secret_basic (default) | client_secret_post | none
    #[arg(long)]
    pub token_endpoint_auth_method: Option<String>,
    /// A public client (no secret; token_endpoint_auth_method `none`).
    #[arg(long)]
    #[serde(default)]
    pub public: bool,
    /// A trusted client: people are not asked for consent.
    #[arg(long)]
    #[serde(default)]
    pub skip_authorization: bool,
    /// Require PKCE although the client is confidential.
    #[arg(long)]
    #[serde(default)]
    pub require_pkce: bool,
    /// Only people holding one of these roles may use the client (repeatable).
    #[arg(long = "allowed-role", value_name = "ROLE")]
    #[serde(default)]
    pub allowed_roles: Vec<String>,
    /// The client's home page, shown on the consent page.
    #[arg(long)]
    pub client_uri: Option<String>,
    /// An https logo, shown on the consent page.
    #[arg(long)]
    pub logo_uri: Option<String>,
    /// The client's terms of service.
    #[arg(long)]
    pub tos_uri: Option<String>,
    /// The client's privacy policy.
    #[arg(long)]
    pub policy_uri: Option<String>,
    /// Someone responsible for the client (repeatable), e.g. an email address.
    #[arg(long = "contact", value_name = "CONTACT")]
    #[serde(default)]
    pub contacts: Vec<String>,
    /// An identifier of the client software (RFC 7591), the same for every instance.
    #[arg(long)]
    pub software_id: Option<String>,
    /// The version of the client software (RFC 7591).
    #[arg(long)]
    pub software_version: Option<String>,
    /// RS256 (default) | ES256 | EdDSA | HS256 (signed with the client secret, as Frappe does).
    #[arg(long)]
    pub id_token_signed_response_alg: Option<String>,
    /// Put every profile claim under `openid`, as Frappe does.
    #[arg(long)]
    #[serde(default)]
    pub frappe_claims: bool,
    /// Where the client may send people after signing them out (RP-Initiated Logout).
    #[arg(long = "post-logout-redirect-uri", value_name = "URI")]
    #[serde(default)]
    pub post_logout_redirect_uris: Vec<String>,
    /// Where to tell the client that a person's session ended (Back-Channel Logout).
    #[arg(long, value_name = "URI")]
    pub backchannel_logout_uri: Option<String>,
    /// The client wants the session id (`sid`) in back-channel logout tokens.
    #[arg(long)]
    #[serde(default)]
    pub backchannel_logout_session_required: bool,
    /// Token exchange: a client whose tokens this one may exchange, i.e. whose users it may
    /// get tokens for (repeatable; its own tokens always).
    #[arg(long = "token-exchange-subject-client", value_name = "ID")]
    #[serde(default)]
    pub token_exchange_subject_clients: Vec<String>,
    /// Token exchange: a client whose tokens may act for the user in this client's
    /// exchanges (RFC 8693 `may_act`; repeatable; the client itself always may).
    #[arg(long = "token-exchange-actor-client", value_name = "ID")]
    #[serde(default)]
    pub token_exchange_actor_clients: Vec<String>,
    /// Token exchange: an external issuer (its `iss`, exactly) whose signed tokens this
    /// client may exchange for tokens of the people they name (repeatable; the issuer must be
    /// a social login provider trusted for token exchange).
    #[arg(long = "token-exchange-subject-issuer", value_name = "ISSUER")]
    #[serde(default)]
    pub token_exchange_subject_issuers: Vec<String>,
}

/// A field of a [`ClientInput`] that does not parse: which field (and which of its values,
/// for a list), the value, and why. The CLI and the admin API say it as
/// [`InvalidClientInput::message`]; RFC 7591 registration names the field its own way.
#[derive(Debug)]
pub struct InvalidClientInput {
    pub field: &'static str,
    /// The position of the refused value in a list field.
    pub index: Option<usize>,
    /// The refused value, where quoting it helps.
    pub value: Option<String>,
    pub reason: String,
}

impl InvalidClientInput {
    fn new(field: &'static str, reason: impl std::fmt::Display) -> Self {
        InvalidClientInput {
            field,
            index: None,
            value: None,
            reason: reason.to_string(),
        }
    }

    fn of(field: &'static str, value: &str, reason: impl std::fmt::Display) -> Self {
        InvalidClientInput {
            value: Some(value.to_owned()),
            ..Self::new(field, reason)
        }
    }

    /// The problem as people read it, under the field name `name`.
    pub fn message_as(&self, name: &str) -> String {
        match &self.value {
            Some(value) => format!("{name} `{value}`: {}", self.reason),
            None => format!("{name}: {}", self.reason),
        }
    }

    /// The problem under the field's own name.
    pub fn message(&self) -> String {
        self.message_as(self.field)
    }
}

impl From<InvalidClientInput> for AppError {
    fn from(invalid: InvalidClientInput) -> Self {
        AppError::invalid_field(invalid.field, invalid.message())
    }
}

impl ClientInput {
    /// The input that [`ClientInput::parse`]s back to `metadata`: how `export` writes a
    /// client, so that `import` checks it as any operator's input.
    pub fn from_metadata(metadata: &ClientMetadata) -> ClientInput {
        let text = |url: &Option<WebUrl>| url.as_ref().map(|u| u.as_str().to_owned());
        ClientInput {
            name: metadata.name.clone(),
            redirect_uris: metadata
                .redirect_uris
                .iter()
                .map(|u| u.to_string())
                .collect(),
            default_redirect_uri: metadata
                .default_redirect_uri
                .as_ref()
                .map(|u| u.to_string()),
            scope: Some(metadata.scopes.to_string()),
            grant_types: metadata.grant_types.iter().map(|g| g.to_string()).collect(),
            token_endpoint_auth_method: Some(metadata.token_endpoint_auth_method.to_string()),
            public: false,
            skip_authorization: metadata.skip_authorization,
            require_pkce: metadata.require_pkce,
            allowed_roles: metadata.allowed_roles.iter().cloned().collect(),
            client_uri: text(&metadata.client_uri),
            logo_uri: text(&metadata.logo_uri),
            tos_uri: text(&metadata.tos_uri),
            policy_uri: text(&metadata.policy_uri),
            contacts: metadata.contacts.clone(),
            software_id: metadata.software_id.clone(),
            software_version: metadata.software_version.clone(),
            id_token_signed_response_alg: metadata
                .id_token_signed_response_alg
                .map(|alg| alg.as_str().to_owned()),
            frappe_claims: metadata.frappe_claims,
            post_logout_redirect_uris: metadata
                .post_logout_redirect_uris
                .iter()
                .map(|u| u.to_string())
                .collect(),
            backchannel_logout_uri: text(&metadata.backchannel_logout_uri),
            backchannel_logout_session_required: metadata.backchannel_logout_session_required,
            token_exchange_subject_clients: metadata
                .token_exchange_subject_clients
                .iter()
                .cloned()
                .collect(),
            token_exchange_actor_clients: metadata
                .token_exchange_actor_clients
                .iter()
                .cloned()
                .collect(),
            token_exchange_subject_issuers: metadata
                .token_exchange_subject_issuers
                .iter()
                .cloned()
                .collect(),
        }
    }

    /// Parses every field; the first problem found is reported with the field's name.
    pub fn parse(self) -> Result<ClientMetadata, InvalidClientInput> {
        let redirect_uris = self
            .redirect_uris
            .iter()
            .enumerate()
            .map(|(i, raw)| {
                RedirectUri::parse(raw).map_err(|e| InvalidClientInput {
                    index: Some(i),
                    ..InvalidClientInput::of("redirect_uri", raw, e)
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let post_logout_redirect_uris = self
            .post_logout_redirect_uris
            .iter()
            .enumerate()
            .map(|(i, raw)| {
                RedirectUri::parse(raw).map_err(|e| InvalidClientInput {
                    index: Some(i),
                    ..InvalidClientInput::of("post_logout_redirect_uri", raw, e)
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let default_redirect_uri = self
            .default_redirect_uri
            .as_deref()
            .map(|raw| {
                RedirectUri::parse(raw)
                    .map_err(|e| InvalidClientInput::of("default_redirect_uri", raw, e))
            })
            .transpose()?;
        let scopes = Scopes::parse(self.scope.as_deref().unwrap_or(DEFAULT_SCOPES))
            .map_err(|e| InvalidClientInput::new("scope", e))?;
        let grant_types: BTreeSet<GrantType> = if self.grant_types.is_empty() {
            BTreeSet::from([GrantType::AuthorizationCode, GrantType::RefreshToken])
        } else {
            self.grant_types
                .iter()
                .map(|g| match g.as_str() {
                    // RFC 8628's URN is long to type: operators may say `device_code`.
                    "device_code" => Ok(GrantType::DeviceCode),
                    "token_exchange" | "token-exchange" => Ok(GrantType::TokenExchange),
                    g => g
                        .parse()
                        .map_err(|e| InvalidClientInput::new("grant_types", e)),
                })
                .collect::<Result<_, _>>()?
        };
        // Response types follow from grant types (RFC 7591 §2.1), so operators need not
        // spell both.
        let response_types = grant_types
            .iter()
            .filter_map(|g| match g {
                GrantType::AuthorizationCode => Some(ResponseType::Code),
                GrantType::Implicit => Some(ResponseType::Token),
                _ => None,
            })
            .collect();
        let token_endpoint_auth_method = match (&self.token_endpoint_auth_method, self.public) {
            (Some(method), _) => method
                .parse::<TokenEndpointAuthMethod>()
                .map_err(|e| InvalidClientInput::new("token_endpoint_auth_method", e))?,
            (None, true) => TokenEndpointAuthMethod::None,
            (None, false) => TokenEndpointAuthMethod::ClientSecretBasic,
        };
        if self.public && !token_endpoint_auth_method.is_public() {
            return Err(InvalidClientInput::new(
                "token_endpoint_auth_method",
                "a public client uses `none`",
            ));
        }
        let web = |field: &'static str, raw: &Option<String>| {
            raw.as_deref()
                .map(|raw| WebUrl::parse(raw).map_err(|e| InvalidClientInput::of(field, raw, e)))
                .transpose()
        };
        // Kept as typed (`iss` is compared exactly), once it reads as a URL.
        let field = "token_exchange_subject_issuers";
        let token_exchange_subject_issuers = self
            .token_exchange_subject_issuers
            .into_iter()
            .map(|raw| match WebUrl::parse(raw.trim()) {
                Ok(_) => Ok(raw.trim().to_owned()),
                Err(e) => Err(InvalidClientInput::of(field, &raw, e)),
            })
            .collect::<Result<_, _>>()?;
        Ok(ClientMetadata {
            name: self.name.trim().to_owned(),
            redirect_uris,
            default_redirect_uri,
            scopes,
            grant_types,
            response_types,
            token_endpoint_auth_method,
            skip_authorization: self.skip_authorization,
            require_pkce: self.require_pkce,
            allowed_roles: self.allowed_roles.into_iter().collect(),
            client_uri: web("client_uri", &self.client_uri)?,
            logo_uri: web("logo_uri", &self.logo_uri)?,
            tos_uri: web("tos_uri", &self.tos_uri)?,
            policy_uri: web("policy_uri", &self.policy_uri)?,
            contacts: self.contacts,
            software_id: self.software_id,
            software_version: self.software_version,
            id_token_signed_response_alg: self
                .id_token_signed_response_alg
                .as_deref()
                .map(|raw| {
                    IdTokenAlg::parse(raw).ok_or_else(|| {
                        InvalidClientInput::new(
                            "id_token_signed_response_alg",
                            format!("`{raw}` is not one of RS256, ES256, EdDSA, HS256"),
                        )
                    })
                })
                .transpose()?,
            frappe_claims: self.frappe_claims,
            post_logout_redirect_uris,
            backchannel_logout_uri: web("backchannel_logout_uri", &self.backchannel_logout_uri)?,
            backchannel_logout_session_required: self.backchannel_logout_session_required,
            token_exchange_subject_clients: self
                .token_exchange_subject_clients
                .into_iter()
                .collect(),
            token_exchange_actor_clients: self.token_exchange_actor_clients.into_iter().collect(),
            token_exchange_subject_issuers,
        })
    }
}
