//! ID tokens (OIDC Core §2) and the claims a user's profile yields for a set of scopes.

use authledger_domain::client::{IdTokenAlg, RegisteredClient};
use authledger_domain::oauth::Scopes;
use std::collections::BTreeSet;

use authledger_domain::user::{RegisteredUser, Role, UserProfile};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{DateTime, Utc};
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256, Sha512};

use crate::error::AppError;
use crate::master_key::MasterKey;
use crate::signing::KeyRing;
use crate::store::Store;
use crate::vault::Vault;

/// The user's claims that `scopes` release (OIDC Core §5.4): `profile` gives the names and
/// picture, `email` the address, `roles` the roles. With `frappe_claims` every one of them is
/// released under `openid`, as Frappe does.
pub fn user_claims(
    profile: &UserProfile,
    roles: &BTreeSet<Role>,
    scopes: &Scopes,
    frappe_claims: bool,
) -> Map<String, Value> {
    let released = |scope: &str| frappe_claims || scopes.contains(scope);
    let mut claims = Map::new();
    if released("profile") {
        for (name, value) in [
            ("name", &profile.name),
            ("given_name", &profile.given_name),
            ("family_name", &profile.family_name),
        ] {
            if let Some(value) = value {
                claims.insert(name.into(), json!(value));
            }
        }
        if let Some(picture) = &profile.picture {
            claims.insert("picture".into(), json!(picture.as_str()));
        }
    }
    if released("email") {
        if let Some(email) = &profile.email {
            claims.insert("email".into(), json!(email.as_str()));
        }
    }
    if released("roles") {
        let roles: Vec<&str> = roles.iter().map(|r| r.as_str()).collect();
        claims.insert("roles".into(), json!(roles));
    }
    claims
}

/// `at_hash` (OIDC Core §3.1.3.6): the left half of the access token's hash, with the hash of
/// the signature algorithm (SHA-512 for Ed25519).
fn at_hash(alg: IdTokenAlg, access_token: &str) -> String {
    let digest: Vec<u8> = match alg {
        IdTokenAlg::EdDSA => Sha512::digest(access_token.as_bytes()).to_vec(),
        _ => Sha256::digest(access_token.as_bytes()).to_vec(),
    };
    URL_SAFE_NO_PAD.encode(&digest[..digest.len() / 2])
}

/// The authentication context class (`acr`) of a sign-in: `2` with two factors, `1` with a
/// password alone. Discovery lists them (`acr_values_supported`); a client asks for `2` with
/// `acr_values=2`.
pub fn acr(amr: &[String]) -> &'static str {
    if amr.iter().any(|m| m == "otp") {
        ACR_TWO_FACTORS
    } else {
        ACR_PASSWORD
    }
}

pub const ACR_PASSWORD: &str = "1";
pub const ACR_TWO_FACTORS: &str = "2";

pub struct IdTokenInput<'a> {
    pub issuer: &'a str,
    pub client: &'a RegisteredClient,
    pub user: &'a RegisteredUser,
    pub scopes: &'a Scopes,
    pub nonce: Option<&'a str>,
    pub auth_time: Option<DateTime<Utc>>,
    /// The sign-in session (OpenID Connect Back-Channel Logout 1.0 §2.1): the hex SHA-256 of
    /// the session's id, the same handle the log and the account page use.
    pub sid: Option<&'a str>,
    /// How the person signed in (RFC 8176); empty when not known.
    pub amr: &'a [String],
    pub access_token: &'a str,
    pub now: DateTime<Utc>,
    pub lifetime_seconds: i64,
}

/// Builds and signs the ID token for a token response.
pub async fn issue(
    store: &Store,
    keys: &KeyRing,
    master: &MasterKey,
    input: IdTokenInput<'_>,
) -> Result<String, AppError> {
    let alg = input
        .client
        .metadata
        .id_token_signed_response_alg
        .unwrap_or(IdTokenAlg::RS256);
    let mut claims = user_claims(
        &input.user.profile,
        &input.user.roles,
        input.scopes,
        input.client.metadata.frappe_claims,
    );
    let iat = input.now.timestamp();
    for (name, value) in [
        ("iss", json!(input.issuer)),
        ("sub", json!(input.user.username.as_str())),
        ("aud", json!(input.client.client_id)),
        ("azp", json!(input.client.client_id)),
        ("iat", json!(iat)),
        ("exp", json!(iat + input.lifetime_seconds)),
        ("at_hash", json!(at_hash(alg, input.access_token))),
    ] {
        claims.insert(name.into(), value);
    }
    if let Some(auth_time) = input.auth_time {
        claims.insert("auth_time".into(), json!(auth_time.timestamp()));
    }
    if !input.amr.is_empty() {
        claims.insert("amr".into(), json!(input.amr));
        claims.insert("acr".into(), json!(acr(input.amr)));
    }
    if let Some(sid) = input.sid {
        claims.insert("sid".into(), json!(sid));
    }
    if let Some(nonce) = input.nonce {
        claims.insert("nonce".into(), json!(nonce));
    }
    let secret = match alg {
        IdTokenAlg::HS256 => Some(hs256_secret(store, master, input.client).await?),
        _ => None,
    };
    keys.sign(alg, &Value::Object(claims), secret.as_deref())
        .map_err(|e| AppError::Internal(e.into()))
}

/// The secret of an HS256 client, for its current secret hash, from the vault.
pub(crate) async fn hs256_secret(
    store: &Store,
    master: &MasterKey,
    client: &RegisteredClient,
) -> Result<Vec<u8>, AppError> {
    let hash = client
        .secret_hash
        .as_ref()
        .ok_or_else(|| AppError::Internal(anyhow::anyhow!("HS256 client without a secret")))?;
    Vault::new(&store.db, master)
        .client_secret(&client.client_id, hash.as_hex())
        .await
        .map_err(|e| AppError::from(anyhow::Error::new(e)))?
        .ok_or_else(|| {
            AppError::Internal(anyhow::anyhow!(
                "client {} signs ID tokens with HS256 but its secret is not in the vault",
                client.client_id
            ))
        })
}

/// Keeps an HS256 client's secret in the vault, so ID tokens can be signed with it.
pub async fn store_hs256_secret(
    store: &Store,
    master: &MasterKey,
    client_id: &str,
    secret: &crate::secrets::MintedSecret,
) -> Result<(), AppError> {
    Vault::new(&store.db, master)
        .put_client_secret(
            client_id,
            secret.hash().as_hex(),
            secret.reveal().as_bytes(),
        )
        .await
        .map_err(|e| AppError::from(anyhow::Error::new(e)))
}

/// `aud`: one string or an array of them (RFC 7519 §4.1.3).
pub fn audience(claims: &Value) -> Vec<String> {
    match &claims["aud"] {
        Value::String(one) => vec![one.clone()],
        Value::Array(many) => many
            .iter()
            .filter_map(|a| a.as_str().map(str::to_owned))
            .collect(),
        _ => vec![],
    }
}

/// The claims of an ID token this server signed, its signature and issuer checked (its expiry
/// is the caller's to judge), or `None` for anything else, a JWT access token included.
pub async fn verify_ours(
    authority: &super::Authority,
    token: &str,
) -> Result<Option<Value>, AppError> {
    let Ok(header) = jsonwebtoken::decode_header(token) else {
        return Ok(None);
    };
    if header.typ.as_deref() == Some(super::access_token::ACCESS_TOKEN_TYP) {
        return Ok(None);
    }
    // HS256 ID tokens are signed with their client's secret: which client is read from the
    // unverified claims, then the signature decides.
    let secret = match header.alg {
        jsonwebtoken::Algorithm::HS256 => {
            let unverified = token
                .split('.')
                .nth(1)
                .and_then(|part| URL_SAFE_NO_PAD.decode(part).ok())
                .and_then(|json| serde_json::from_slice::<Value>(&json).ok());
            let Some(unverified) = unverified else {
                return Ok(None);
            };
            let client = match audience(&unverified).first() {
                Some(id) => authority.store.client(id).await?,
                None => None,
            };
            match client {
                Some(client)
                    if client.metadata.id_token_signed_response_alg == Some(IdTokenAlg::HS256) =>
                {
                    Some(hs256_secret(&authority.store, &authority.master, &client).await?)
                }
                _ => return Ok(None),
            }
        }
        _ => None,
    };
    let Ok(claims) = authority.keys.verify(token, secret.as_deref()) else {
        return Ok(None);
    };
    Ok((claims["iss"] == authority.issuer.as_str()).then_some(claims))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_hash_matches_the_oidc_example() {
        // OIDC Core A.3: access token "jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y" -> at_hash
        // "77QmUPtjPfzWtF2AnpK9RQ".
        assert_eq!(
            at_hash(
                IdTokenAlg::RS256,
                "jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y"
            ),
            "77QmUPtjPfzWtF2AnpK9RQ"
        );
    }
}
