//! ID token signing keys: one active key per asymmetric algorithm (RS256, ES256, EdDSA). The
//! lifecycle (published, active, retired, removed) is the `SigningKeys` aggregate, whose events
//! carry public JWKs only; the private parts live in the `signing_keys` table, sealed under
//! the master key. Private key material never enters an event or a log.
//!
//! Keys are parsed once and kept as aws-lc-rs key pairs: jsonwebtoken's `encode` parses the
//! private key's DER again on every call, which for RSA costs as much as the signature
//! itself (measured: 592 against 1,215 signatures/s on one core; README, *Performance*).

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use authledger_domain::client::IdTokenAlg;
use authledger_domain::metadata::{Actor, EventMetadata, Source};
use authledger_domain::signing_keys::{KeyState, SigningKeys, SigningKeysCommand, SIGNING_KEYS_ID};
use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{
    EcdsaKeyPair, Ed25519KeyPair, RsaKeyPair, ECDSA_P256_SHA256_FIXED_SIGNING, RSA_PKCS1_SHA256,
};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{DateTime, Duration, Utc};
use jsonwebtoken::jwk::{Jwk, JwkSet, PublicKeyUse, ThumbprintHash};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::Serialize;

use crate::master_key::MasterKey;
use crate::store::Store;
use crate::vault::{NewSigningKey, Vault};

struct ActiveKey {
    kid: String,
    private: PrivateKey,
}

/// An active private key, parsed once. jsonwebtoken's `encode` parses the key's DER on every
/// signature, which for RSA costs as much as the signature itself (measured: 592 against
/// 1,215 RS256 signatures/s on one core), so the server signs with aws-lc-rs directly.
enum PrivateKey {
    Rsa(RsaKeyPair),
    Ecdsa(EcdsaKeyPair),
    Ed25519(Ed25519KeyPair),
}

impl PrivateKey {
    /// Parses the DER that [`generate`] produced for `alg`.
    fn parse(alg: IdTokenAlg, der: &[u8]) -> Option<PrivateKey> {
        match alg {
            IdTokenAlg::RS256 => RsaKeyPair::from_der(der).ok().map(PrivateKey::Rsa),
            IdTokenAlg::ES256 => EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, der)
                .ok()
                .map(PrivateKey::Ecdsa),
            IdTokenAlg::EdDSA => Ed25519KeyPair::from_pkcs8(der)
                .ok()
                .map(PrivateKey::Ed25519),
            IdTokenAlg::HS256 => None,
        }
    }

    /// The JWS signature of `signing_input` (RFC 7515 §5.1): RSASSA-PKCS1-v1_5 with SHA-256,
    /// ECDSA P-256 with SHA-256 as R || S (RFC 7518 §3.4), or Ed25519 (RFC 8037).
    fn sign(&self, signing_input: &[u8]) -> Option<Vec<u8>> {
        match self {
            PrivateKey::Rsa(pair) => {
                let mut signature = vec![0; pair.public_modulus_len()];
                pair.sign(
                    &RSA_PKCS1_SHA256,
                    &SystemRandom::new(),
                    signing_input,
                    &mut signature,
                )
                .ok()?;
                Some(signature)
            }
            PrivateKey::Ecdsa(pair) => pair
                .sign(&SystemRandom::new(), signing_input)
                .ok()
                .map(|s| s.as_ref().to_vec()),
            PrivateKey::Ed25519(pair) => Some(pair.sign(signing_input).as_ref().to_vec()),
        }
    }
}

/// A JWS in compact serialization (RFC 7515 §7.1): the base64url of the header and of the
/// claims, joined by a dot, then the base64url of `sign` over those two.
fn compact_jws(
    header: &Header,
    claims: &impl Serialize,
    sign: impl FnOnce(&[u8]) -> Option<Vec<u8>>,
) -> Result<String, SigningError> {
    let part = |value: Result<Vec<u8>, serde_json::Error>| {
        value
            .map(|json| URL_SAFE_NO_PAD.encode(json))
            .map_err(|_| SigningError::Claims)
    };
    let mut jws = part(serde_json::to_vec(header))?;
    jws.push('.');
    jws.push_str(&part(serde_json::to_vec(claims))?);
    let signature = sign(jws.as_bytes()).ok_or(SigningError::Signature)?;
    jws.push('.');
    jws.push_str(&URL_SAFE_NO_PAD.encode(signature));
    Ok(jws)
}

/// The keys in force: the active key per algorithm (parsed once), and the public keys to
/// publish. Swapped whole when the lifecycle moves.
#[derive(Default)]
struct Keys {
    active: HashMap<IdTokenAlg, ActiveKey>,
    published: JwkSet,
    /// The lifecycle these keys were loaded from: a reload that finds it unchanged parses
    /// nothing again.
    source: SigningKeys,
}

/// The signing keys, following the `SigningKeys` aggregate.
pub struct KeyRing {
    current: RwLock<Arc<Keys>>,
    /// How many times private keys were read and parsed (a reload that found a change).
    loads: std::sync::atomic::AtomicUsize,
}

#[derive(Debug, thiserror::Error)]
pub enum SigningError {
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    #[error(transparent)]
    MasterKey(#[from] crate::master_key::MasterKeyError),
    #[error(transparent)]
    Vault(#[from] crate::vault::VaultError),
    #[error("key generation failed for {0}")]
    Generation(&'static str),
    #[error("signing failed: {0}")]
    Sign(#[from] jsonwebtoken::errors::Error),
    #[error("the claims do not serialize as JSON")]
    Claims,
    #[error("the signature could not be computed")]
    Signature,
    #[error("not a token this server signed: {0}")]
    NotOurs(String),
    #[error("stored key {0} is unusable")]
    Corrupt(String),
    #[error("no private key is stored for active key {0} (the signing_keys table lacks its row)")]
    Missing(String),
    #[error("signing key lifecycle: {0}")]
    Lifecycle(String),
}

pub const ASYMMETRIC: [IdTokenAlg; 3] = [IdTokenAlg::RS256, IdTokenAlg::ES256, IdTokenAlg::EdDSA];

fn jwt_algorithm(alg: IdTokenAlg) -> Algorithm {
    match alg {
        IdTokenAlg::RS256 => Algorithm::RS256,
        IdTokenAlg::ES256 => Algorithm::ES256,
        IdTokenAlg::EdDSA => Algorithm::EdDSA,
        IdTokenAlg::HS256 => Algorithm::HS256,
    }
}

fn encoding_key(alg: IdTokenAlg, der: &[u8]) -> EncodingKey {
    match alg {
        IdTokenAlg::RS256 => EncodingKey::from_rsa_der(der),
        IdTokenAlg::ES256 => EncodingKey::from_ec_der(der),
        IdTokenAlg::EdDSA => EncodingKey::from_ed_der(der),
        IdTokenAlg::HS256 => EncodingKey::from_secret(der),
    }
}

/// A new private key in the DER form jsonwebtoken's aws-lc backend reads: PKCS#1 for RSA,
/// PKCS#8 v1 for EC and Ed25519.
fn generate(alg: IdTokenAlg) -> Result<Vec<u8>, SigningError> {
    match alg {
        IdTokenAlg::RS256 => {
            let pair = aws_lc_rs::rsa::KeyPair::generate(KeySize::Rsa2048)
                .map_err(|_| SigningError::Generation("RS256"))?;
            let pkcs8 = pair
                .as_der()
                .map_err(|_| SigningError::Generation("RS256"))?;
            pkcs1_from_pkcs8(pkcs8.as_ref())
                .map(<[u8]>::to_vec)
                .ok_or(SigningError::Generation("RS256"))
        }
        IdTokenAlg::ES256 => EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING)
            .and_then(|pair| pair.to_pkcs8v1())
            .map(|doc| doc.as_ref().to_vec())
            .map_err(|_| SigningError::Generation("ES256")),
        IdTokenAlg::EdDSA => Ed25519KeyPair::generate()
            .and_then(|pair| pair.to_pkcs8v1())
            .map(|doc| doc.as_ref().to_vec())
            .map_err(|_| SigningError::Generation("EdDSA")),
        IdTokenAlg::HS256 => Err(SigningError::Generation("HS256 keys are client secrets")),
    }
}

/// The RSAPrivateKey (PKCS#1) inside a PKCS#8 PrivateKeyInfo (RFC 5208 §5).
fn pkcs1_from_pkcs8(der: &[u8]) -> Option<&[u8]> {
    pkcs8::PrivateKeyInfo::try_from(der)
        .ok()
        .map(|info| info.private_key)
}

/// Generates a key for `alg`, seals its private part in `signing_keys`, and publishes it
/// (`SigningKeys` event with the public JWK) to start signing at `activate_after`.
async fn generate_and_publish(
    store: &Store,
    master: &MasterKey,
    alg: IdTokenAlg,
    activate_after: DateTime<Utc>,
    metadata: &EventMetadata,
) -> Result<String, SigningError> {
    let der = tokio::task::spawn_blocking(move || generate(alg))
        .await
        .map_err(|_| SigningError::Generation(alg.as_str()))??;
    let key = encoding_key(alg, &der);
    let mut jwk = Jwk::from_encoding_key(&key, jwt_algorithm(alg))?;
    let kid = jwk.thumbprint(ThumbprintHash::SHA256)?;
    jwk.common.key_id = Some(kid.clone());
    jwk.common.public_key_use = Some(PublicKeyUse::Signature);
    let public = serde_json::to_value(&jwk).expect("a JWK serialises");
    Vault::new(&store.db, master)
        .put_signing_key(NewSigningKey {
            kid: &kid,
            alg: alg.as_str(),
            private_der: &der,
            public_jwk: &public,
        })
        .await?;
    store
        .signing_keys
        .execute(
            SIGNING_KEYS_ID,
            SigningKeysCommand::Publish {
                kid: kid.clone(),
                alg,
                public_jwk: public,
                activate_after,
            },
            metadata,
        )
        .await
        .map_err(|e| SigningError::Lifecycle(e.to_string()))?;
    tracing::info!(kid, alg = alg.as_str(), %activate_after, "published a new signing key");
    Ok(kid)
}

fn system() -> EventMetadata {
    EventMetadata {
        actor: Actor::System,
        request_id: uuid::Uuid::new_v4().to_string(),
        source: Source::System,
        at: Utc::now(),
    }
}

async fn lifecycle(store: &Store) -> Result<SigningKeys, SigningError> {
    store
        .signing_keys
        .load(SIGNING_KEYS_ID)
        .await
        .map_err(|e| SigningError::Lifecycle(e.to_string()))
}

/// Rotates the keys of `algs`: each gets a new key, published now and signing once the
/// configured activation delay has passed (or at once with `immediately`).
pub async fn rotate(
    store: &Store,
    master: &MasterKey,
    algs: &[IdTokenAlg],
    immediately: bool,
    metadata: &EventMetadata,
) -> Result<Vec<String>, SigningError> {
    let settings = store
        .settings_values()
        .await
        .map_err(|e| SigningError::Lifecycle(e.to_string()))?;
    let activate_after = match immediately {
        true => Utc::now(),
        false => Utc::now() + Duration::seconds(i64::from(settings.key_activation_delay)),
    };
    // One key per algorithm asked for, however many times it was named.
    let mut kids = Vec::new();
    let mut done: Vec<IdTokenAlg> = Vec::new();
    for alg in algs {
        if done.contains(alg) {
            continue;
        }
        done.push(*alg);
        kids.push(generate_and_publish(store, master, *alg, activate_after, metadata).await?);
    }
    maintain(store, master).await?;
    Ok(kids)
}

/// Moves the lifecycle along: keys for algorithms that have none (first start), automatic
/// rotation when due, activation of due keys, removal of expired ones.
pub async fn maintain(store: &Store, master: &MasterKey) -> Result<(), SigningError> {
    let settings = store
        .settings_values()
        .await
        .map_err(|e| SigningError::Lifecycle(e.to_string()))?;
    let keys = lifecycle(store).await?;
    let now = Utc::now();
    for alg in ASYMMETRIC {
        let pending = keys
            .keys()
            .iter()
            .any(|k| k.alg == alg && k.state == KeyState::Published);
        match keys.active(alg) {
            // First start: the first key signs at once, as no relying party has cached anything.
            None if !pending => {
                generate_and_publish(store, master, alg, now, &system()).await?;
            }
            Some(active)
                if !pending
                    && settings.key_rotation_period > 0
                    && now - active.activate_after
                        >= Duration::seconds(i64::from(settings.key_rotation_period)) =>
            {
                let activate_after =
                    now + Duration::seconds(i64::from(settings.key_activation_delay));
                generate_and_publish(store, master, alg, activate_after, &system()).await?;
            }
            _ => {}
        }
    }
    // A retired key stays published as long as a token it signed can live.
    let retire_for = Duration::seconds(i64::from(settings.access_token_ttl));
    store
        .signing_keys
        .execute(
            SIGNING_KEYS_ID,
            SigningKeysCommand::Maintain { retire_for },
            &system(),
        )
        .await
        .map_err(|e| SigningError::Lifecycle(e.to_string()))?;
    Ok(())
}

impl KeyRing {
    /// Brings the lifecycle up to date and loads the keys it names.
    pub async fn open(store: &Store, master: &MasterKey) -> Result<KeyRing, SigningError> {
        maintain(store, master).await?;
        let ring = KeyRing {
            current: RwLock::new(Arc::new(Keys::default())),
            loads: Default::default(),
        };
        ring.reload(store, master).await?;
        Ok(ring)
    }

    /// Reads the lifecycle again, and the sealed keys when it changed (after a rotation here
    /// or elsewhere).
    pub async fn reload(&self, store: &Store, master: &MasterKey) -> Result<(), SigningError> {
        let keys = lifecycle(store).await?;
        if self.current.read().expect("key ring lock").source == keys {
            return Ok(());
        }
        let mut active = HashMap::new();
        for alg in ASYMMETRIC {
            let Some(key) = keys.active(alg) else {
                continue;
            };
            let der = Vault::new(&store.db, master)
                .signing_key(&key.kid)
                .await?
                .ok_or_else(|| SigningError::Missing(key.kid.clone()))?;
            let private = PrivateKey::parse(alg, &der)
                .ok_or_else(|| SigningError::Corrupt(key.kid.clone()))?;
            active.insert(
                alg,
                ActiveKey {
                    kid: key.kid.clone(),
                    private,
                },
            );
        }
        let published = keys
            .published()
            .map(|k| {
                serde_json::from_value(k.public_jwk.clone())
                    .map_err(|_| SigningError::Corrupt(k.kid.clone()))
            })
            .collect::<Result<Vec<Jwk>, _>>()?;
        *self.current.write().expect("key ring lock") = Arc::new(Keys {
            active,
            published: JwkSet { keys: published },
            source: keys,
        });
        self.loads
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Ok(())
    }

    /// How many times the private keys were read and parsed.
    pub fn loads(&self) -> usize {
        self.loads.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Signs `claims` as a JWT with this server's key for `alg`; `hs256_secret` is the client
    /// secret for HS256 (Frappe compatibility).
    pub fn sign(
        &self,
        alg: IdTokenAlg,
        claims: &impl Serialize,
        hs256_secret: Option<&[u8]>,
    ) -> Result<String, SigningError> {
        self.sign_typed(alg, None, claims, hs256_secret)
    }

    /// [`KeyRing::sign`] with a `typ` header, e.g. `logout+jwt` (Back-Channel Logout 1.0 §2.4),
    /// so that one kind of token cannot be passed off as another.
    pub fn sign_typed(
        &self,
        alg: IdTokenAlg,
        typ: Option<&str>,
        claims: &impl Serialize,
        hs256_secret: Option<&[u8]>,
    ) -> Result<String, SigningError> {
        match (alg, hs256_secret) {
            (IdTokenAlg::HS256, Some(secret)) => {
                let mut header = Header::new(Algorithm::HS256);
                header.typ = typ.map(str::to_owned);
                Ok(jsonwebtoken::encode(
                    &header,
                    claims,
                    &EncodingKey::from_secret(secret),
                )?)
            }
            (IdTokenAlg::HS256, None) => Err(SigningError::Corrupt("HS256 secret".into())),
            (alg, _) => {
                let current = self.current.read().expect("key ring lock").clone();
                let key = current
                    .active
                    .get(&alg)
                    .ok_or(SigningError::Generation(alg.as_str()))?;
                let mut header = Header::new(jwt_algorithm(alg));
                header.kid = Some(key.kid.clone());
                if let Some(typ) = typ {
                    header.typ = Some(typ.to_owned());
                }
                compact_jws(&header, claims, |input| key.private.sign(input))
            }
        }
    }

    /// The claims of a JWT signed by one of the published keys (or, for HS256, with
    /// `hs256_secret`), whatever its expiry and audience: an `id_token_hint` may have expired
    /// long ago (RP-Initiated Logout 1.0 §2), and who it was for is the caller's question.
    pub fn verify(
        &self,
        token: &str,
        hs256_secret: Option<&[u8]>,
    ) -> Result<serde_json::Value, SigningError> {
        let not_ours = |why: &dyn std::fmt::Display| SigningError::NotOurs(why.to_string());
        let header = jsonwebtoken::decode_header(token).map_err(|e| not_ours(&e))?;
        let key = match (header.alg, hs256_secret) {
            (Algorithm::HS256, Some(secret)) => jsonwebtoken::DecodingKey::from_secret(secret),
            (Algorithm::HS256, None) => return Err(not_ours(&"HS256 without a client secret")),
            (_, _) => {
                let kid = header.kid.as_deref().ok_or_else(|| not_ours(&"no `kid`"))?;
                let published = self.jwks();
                let jwk = published
                    .find(kid)
                    .ok_or_else(|| not_ours(&format!("no published key `{kid}`")))?;
                jsonwebtoken::DecodingKey::from_jwk(jwk).map_err(|e| not_ours(&e))?
            }
        };
        let mut validation = jsonwebtoken::Validation::new(header.alg);
        validation.validate_exp = false;
        validation.validate_aud = false;
        validation.required_spec_claims.clear();
        jsonwebtoken::decode::<serde_json::Value>(token, &key, &validation)
            .map(|data| data.claims)
            .map_err(|e| not_ours(&e))
    }

    /// The JWK Set published at the JWKS endpoint.
    pub fn jwks(&self) -> JwkSet {
        self.current
            .read()
            .expect("key ring lock")
            .published
            .clone()
    }
}

/// A key as `keys list` and `export` show it: never its private half.
pub fn summary(key: &authledger_domain::signing_keys::SigningKey) -> serde_json::Value {
    serde_json::json!({
        "kid": key.kid, "alg": key.alg.as_str(), "state": key.state,
        "activate_after": key.activate_after, "remove_after": key.remove_after,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_signed_with_a_parsed_key_verify_with_the_published_jwk() {
        for alg in ASYMMETRIC {
            let der = generate(alg).unwrap();
            let key = encoding_key(alg, &der);
            let jwk = Jwk::from_encoding_key(&key, jwt_algorithm(alg)).unwrap();
            let private = PrivateKey::parse(alg, &der).unwrap();
            let token = compact_jws(
                &Header::new(jwt_algorithm(alg)),
                &serde_json::json!({"sub": "x", "exp": 4_000_000_000u64}),
                |input| private.sign(input),
            )
            .unwrap();
            let decoding = jsonwebtoken::DecodingKey::from_jwk(&jwk).unwrap();
            let mut validation = jsonwebtoken::Validation::new(jwt_algorithm(alg));
            validation.validate_aud = false;
            let data =
                jsonwebtoken::decode::<serde_json::Value>(&token, &decoding, &validation).unwrap();
            assert_eq!(data.claims["sub"], "x", "{alg:?}");
        }
    }
}
