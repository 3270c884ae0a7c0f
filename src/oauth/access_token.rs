//! JWT access tokens (RFC 9068), for resources registered with the `jwt` format: a resource
//! server verifies them with the JWKS alone. They are indexed like every token (by the
//! SHA-256 of the whole string), so introspection, revocation and the cascades work on them
//! too; a resource server that only verifies the signature cannot see a revocation before the
//! token expires, which is why their lifetime can be set per resource.
//!
//! The `jti` is the grant id, a dot and 256 random bits: revocation finds the grant from it,
//! as it does from an opaque token's prefix.

use authledger_domain::client::IdTokenAlg;
use authledger_domain::oauth::Scopes;
use authledger_domain::resource::ResourceId;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{DateTime, Utc};
use rand::RngCore;
use serde_json::{json, Map, Value};

use super::id_token::acr;
use super::tokens::GrantId;
use super::Authority;
use crate::error::AppError;

/// RFC 9068 §2.1: the `typ` that keeps an access token from passing for an ID token.
pub const ACCESS_TOKEN_TYP: &str = "at+jwt";

/// Who and what a JWT access token speaks of.
pub struct Claims<'a> {
    pub client_id: &'a str,
    /// The person, or `None` when the client acts for itself (`sub` is then the client).
    pub user: Option<&'a str>,
    pub scopes: &'a Scopes,
    pub audience: &'a [ResourceId],
    pub auth_time: Option<DateTime<Utc>>,
    pub amr: &'a [String],
    /// RFC 8693 §4.1: who acts for the subject, the current actor outermost.
    pub act: Option<&'a Value>,
    pub issued_at: DateTime<Utc>,
    pub lifetime_seconds: i64,
    /// RS256, ES256 or EdDSA, as the resource says.
    pub alg: IdTokenAlg,
}

/// Signs an RFC 9068 access token for `grant` with the active key of the resource's algorithm.
pub fn sign(
    authority: &Authority,
    grant: &GrantId,
    claims: Claims<'_>,
) -> Result<String, AppError> {
    let mut random = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut random);
    let iat = claims.issued_at.timestamp();
    let audience: Vec<&str> = claims.audience.iter().map(ResourceId::as_str).collect();
    let mut body = Map::new();
    for (name, value) in [
        ("iss", json!(authority.issuer)),
        ("exp", json!(iat + claims.lifetime_seconds)),
        (
            "aud",
            if audience.len() == 1 {
                json!(audience[0])
            } else {
                json!(audience)
            },
        ),
        ("sub", json!(claims.user.unwrap_or(claims.client_id))),
        ("client_id", json!(claims.client_id)),
        ("iat", json!(iat)),
        (
            "jti",
            json!(format!("{grant}.{}", URL_SAFE_NO_PAD.encode(random))),
        ),
        ("scope", json!(claims.scopes.to_string())),
    ] {
        body.insert(name.into(), value);
    }
    if let Some(auth_time) = claims.auth_time {
        body.insert("auth_time".into(), json!(auth_time.timestamp()));
    }
    if let Some(act) = claims.act {
        body.insert("act".into(), act.clone());
    }
    if !claims.amr.is_empty() {
        body.insert("amr".into(), json!(claims.amr));
        body.insert("acr".into(), json!(acr(claims.amr)));
    }
    authority
        .keys
        .sign_typed(
            claims.alg,
            Some(ACCESS_TOKEN_TYP),
            &Value::Object(body),
            None,
        )
        .map_err(|e| AppError::Internal(e.into()))
}

/// The grant of a JWT access token this server signed, from its `jti`.
pub fn grant_of(authority: &Authority, token: &str) -> Option<GrantId> {
    if token.split('.').count() != 3 {
        return None;
    }
    let claims = authority.keys.verify(token, None).ok()?;
    let jti = claims.get("jti")?.as_str()?;
    let (grant, _) = jti.split_once('.')?;
    super::tokens::grant_id(grant)
}
