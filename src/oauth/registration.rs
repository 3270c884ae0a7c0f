//! Dynamic client registration (RFC 7591) and its management protocol (RFC 7592).
//!
//! A registered client is an ordinary `Client` aggregate, registered via `dynamic` by an actor
//! naming the registrant's software id or IP address. What a registrant may ask for is
//! narrower than what an operator may: no implicit grant, no trusted (consent-skipping)
//! clients, and only the scopes whose meaning the server defines, so that registering a
//! client never grants more than a person then consents to.

use std::collections::BTreeSet;

use authledger_domain::client::{ClientError, ClientMetadata, IdTokenAlg};
use authledger_domain::oauth::{GrantType, ResponseType, WebUrl};
use authledger_domain::settings::SettingsValues;

use crate::admin::clients::{ClientInput, InvalidClientInput};
use serde::Deserialize;
use serde_json::{json, Map, Value};

/// The scope of a registration that names none. Which scopes a registrant may register at
/// all is the `registration_scopes` setting; `admin` stays with operators unless it says so.
const DEFAULT_SCOPE: &str = "openid profile email";

/// RFC 7591 §2 client metadata, as sent. Unknown members are ignored (RFC 7591 §2).
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
pub struct RegistrationRequest {
    #[serde(default)]
    pub redirect_uris: Vec<String>,
    pub client_name: Option<String>,
    pub token_endpoint_auth_method: Option<String>,
    pub grant_types: Option<Vec<String>>,
    pub response_types: Option<Vec<String>>,
    pub scope: Option<String>,
    pub client_uri: Option<String>,
    pub logo_uri: Option<String>,
    pub tos_uri: Option<String>,
    pub policy_uri: Option<String>,
    #[serde(default)]
    pub contacts: Vec<String>,
    pub software_id: Option<String>,
    pub software_version: Option<String>,
    pub id_token_signed_response_alg: Option<String>,
    /// OpenID Connect RP-Initiated Logout 1.0 §3.1.
    #[serde(default)]
    pub post_logout_redirect_uris: Vec<String>,
    /// OpenID Connect Back-Channel Logout 1.0 §2.2.
    pub backchannel_logout_uri: Option<String>,
    #[serde(default)]
    pub backchannel_logout_session_required: bool,
    /// RFC 7592 §2.2: an update names the client it updates.
    pub client_id: Option<String>,
    #[serde(flatten)]
    #[schema(ignore)]
    pub other: Map<String, Value>,
}

/// RFC 7591 §3.2.2 errors.
#[derive(Debug)]
pub enum RegistrationError {
    InvalidRedirectUri(String),
    InvalidClientMetadata(String),
}

fn metadata_error(field: &str, reason: impl std::fmt::Display) -> RegistrationError {
    RegistrationError::InvalidClientMetadata(format!("{field}: {reason}"))
}

/// A field the shared client input refused, named as RFC 7591 names it.
fn input_error(invalid: InvalidClientInput) -> RegistrationError {
    match (invalid.field, invalid.index) {
        ("redirect_uri", Some(i)) => RegistrationError::InvalidRedirectUri(
            invalid.message_as(&format!("redirect_uris[{i}]")),
        ),
        ("post_logout_redirect_uri", Some(i)) => RegistrationError::InvalidClientMetadata(
            invalid.message_as(&format!("post_logout_redirect_uris[{i}]")),
        ),
        _ => RegistrationError::InvalidClientMetadata(invalid.message()),
    }
}

/// Turns a registration request into client metadata, or names the field that is wrong. The
/// fields are read as an operator's are ([`ClientInput::parse`]), with RFC 7591's defaults;
/// then come the rules for registrants.
pub fn to_metadata(
    request: RegistrationRequest,
    settings: &SettingsValues,
) -> Result<ClientMetadata, RegistrationError> {
    let input = ClientInput {
        name: request
            .client_name
            .unwrap_or_else(|| "Dynamically registered client".into()),
        redirect_uris: request.redirect_uris,
        scope: Some(request.scope.unwrap_or_else(|| DEFAULT_SCOPE.into())),
        grant_types: request
            .grant_types
            .unwrap_or_else(|| vec![GrantType::AuthorizationCode.as_str().to_owned()]),
        token_endpoint_auth_method: request.token_endpoint_auth_method,
        client_uri: request.client_uri,
        logo_uri: request.logo_uri,
        tos_uri: request.tos_uri,
        policy_uri: request.policy_uri,
        contacts: request.contacts,
        software_id: request.software_id,
        software_version: request.software_version,
        id_token_signed_response_alg: request.id_token_signed_response_alg,
        post_logout_redirect_uris: request.post_logout_redirect_uris,
        backchannel_logout_uri: request.backchannel_logout_uri,
        backchannel_logout_session_required: request.backchannel_logout_session_required,
        // What only an operator may ask for stays off: consent-skipping, roles, Frappe's
        // claim layout.
        ..ClientInput::default()
    };
    let metadata = input.parse().map_err(input_error)?;
    if metadata.grant_types.contains(&GrantType::Implicit) {
        return Err(metadata_error(
            "grant_types",
            "the implicit grant is not available to dynamically registered clients",
        ));
    }
    let allowed_grants = &settings.registration_grant_types;
    if let Some(grant) = metadata
        .grant_types
        .iter()
        .find(|g| !allowed_grants.contains(g))
    {
        let allowed: Vec<&str> = allowed_grants.iter().map(|g| g.as_str()).collect();
        return Err(metadata_error(
            "grant_types",
            format!(
                "`{grant}` cannot be registered dynamically (allowed: {})",
                allowed.join(" ")
            ),
        ));
    }
    if let Some(requested) = &request.response_types {
        let requested: BTreeSet<ResponseType> = requested
            .iter()
            .map(|r| r.parse().map_err(|e| metadata_error("response_types", e)))
            .collect::<Result<_, _>>()?;
        if requested != metadata.response_types {
            return Err(metadata_error(
                "response_types",
                "must be [\"code\"] exactly when grant_types includes authorization_code (RFC 7591 §2.1)",
            ));
        }
    }
    // The server POSTs to this address by itself: a registrant may not point it at hosts
    // inside the network the server sits in over plain HTTP.
    if let Some(uri) = &metadata.backchannel_logout_uri {
        if !uri.as_str().starts_with("https://") {
            return Err(metadata_error(
                "backchannel_logout_uri",
                "must be an https URL",
            ));
        }
    }
    let allowed_scopes = &settings.registration_scopes;
    if let Some(scope) = metadata.scopes.iter().find(|s| !allowed_scopes.contains(s)) {
        return Err(metadata_error(
            "scope",
            format!("`{scope}` cannot be registered dynamically (allowed: {allowed_scopes})"),
        ));
    }
    metadata.check().map_err(refusal)?;
    Ok(metadata)
}

/// The aggregate's refusal, as a registration error naming its field.
pub fn refusal(error: ClientError) -> RegistrationError {
    match error {
        ClientError::InvalidMetadata { field, reason } if field.starts_with("redirect_uri") => {
            RegistrationError::InvalidRedirectUri(format!("{field}: {reason}"))
        }
        ClientError::InvalidMetadata { field, reason } => {
            RegistrationError::InvalidClientMetadata(format!("{field}: {reason}"))
        }
        other => RegistrationError::InvalidClientMetadata(other.to_string()),
    }
}

/// The registered metadata as RFC 7591 §3.2.1 returns it.
pub fn describe(client_id: &str, metadata: &ClientMetadata) -> Map<String, Value> {
    let strings = |items: Vec<&str>| json!(items);
    let mut out = Map::new();
    out.insert("client_id".into(), json!(client_id));
    out.insert("client_name".into(), json!(metadata.name));
    out.insert(
        "redirect_uris".into(),
        strings(metadata.redirect_uris.iter().map(|u| u.as_str()).collect()),
    );
    out.insert(
        "token_endpoint_auth_method".into(),
        json!(metadata.token_endpoint_auth_method.as_str()),
    );
    out.insert(
        "grant_types".into(),
        strings(metadata.grant_types.iter().map(|g| g.as_str()).collect()),
    );
    out.insert(
        "response_types".into(),
        strings(metadata.response_types.iter().map(|r| r.as_str()).collect()),
    );
    out.insert("scope".into(), json!(metadata.scopes.to_string()));
    for (name, value) in [
        (
            "client_uri",
            metadata.client_uri.as_ref().map(WebUrl::as_str),
        ),
        ("logo_uri", metadata.logo_uri.as_ref().map(WebUrl::as_str)),
        ("tos_uri", metadata.tos_uri.as_ref().map(WebUrl::as_str)),
        (
            "policy_uri",
            metadata.policy_uri.as_ref().map(WebUrl::as_str),
        ),
        ("software_id", metadata.software_id.as_deref()),
        (
            "backchannel_logout_uri",
            metadata.backchannel_logout_uri.as_ref().map(WebUrl::as_str),
        ),
        ("software_version", metadata.software_version.as_deref()),
        (
            "id_token_signed_response_alg",
            metadata
                .id_token_signed_response_alg
                .map(IdTokenAlg::as_str),
        ),
    ] {
        if let Some(value) = value {
            out.insert(name.into(), json!(value));
        }
    }
    if !metadata.post_logout_redirect_uris.is_empty() {
        out.insert(
            "post_logout_redirect_uris".into(),
            strings(
                metadata
                    .post_logout_redirect_uris
                    .iter()
                    .map(|u| u.as_str())
                    .collect(),
            ),
        );
    }
    if metadata.backchannel_logout_session_required {
        out.insert("backchannel_logout_session_required".into(), json!(true));
    }
    if !metadata.contacts.is_empty() {
        out.insert("contacts".into(), json!(metadata.contacts));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use authledger_domain::oauth::TokenEndpointAuthMethod;

    fn request(json: Value) -> RegistrationRequest {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn a_minimal_registration_gets_rfc7591_defaults() {
        let metadata = to_metadata(
            request(json!({ "redirect_uris": ["https://app.example/cb"] })),
            &SettingsValues::default(),
        )
        .unwrap();
        assert_eq!(
            metadata.token_endpoint_auth_method,
            TokenEndpointAuthMethod::ClientSecretBasic
        );
        assert_eq!(
            metadata.grant_types,
            BTreeSet::from([GrantType::AuthorizationCode])
        );
        assert!(!metadata.skip_authorization);
    }

    #[test]
    fn several_redirect_uris_are_kept_apart() {
        let metadata = to_metadata(
            request(json!({
                "redirect_uris": ["https://a.example/cb", "http://127.0.0.1:33418/cb", "com.example.app:/cb"]
            })),
            &SettingsValues::default(),
        )
        .unwrap();
        assert_eq!(metadata.redirect_uris.len(), 3);
    }

    #[test]
    fn bad_redirect_uris_and_metadata_name_their_field() {
        for (body, error) in [
            (json!({ "redirect_uris": ["/cb"] }), "redirect_uris[0]"),
            (
                json!({ "redirect_uris": ["https://a.example/cb#x"] }),
                "fragment",
            ),
            (
                json!({ "redirect_uris": ["http://remote.example/cb"] }),
                "loopback",
            ),
        ] {
            match to_metadata(request(body), &SettingsValues::default()) {
                Err(RegistrationError::InvalidRedirectUri(d)) => assert!(d.contains(error), "{d}"),
                other => panic!("{other:?}"),
            }
        }
        for (body, field) in [
            (
                json!({ "redirect_uris": ["https://a.example/cb"], "token_endpoint_auth_method": "private_key_jwt" }),
                "token_endpoint_auth_method",
            ),
            (
                json!({ "redirect_uris": ["https://a.example/cb"], "response_types": ["token"] }),
                "response_types",
            ),
            (
                json!({ "redirect_uris": ["https://a.example/cb"], "scope": "openid admin" }),
                "scope",
            ),
            (
                json!({ "grant_types": ["authorization_code"] }),
                "redirect_uris",
            ),
        ] {
            match to_metadata(request(body), &SettingsValues::default()) {
                Err(
                    RegistrationError::InvalidClientMetadata(d)
                    | RegistrationError::InvalidRedirectUri(d),
                ) => {
                    assert!(d.starts_with(field), "{d}")
                }
                other => panic!("{other:?}"),
            }
        }
    }
}
