//! ID token signing keys: one active key per asymmetric algorithm (RS256, ES256, EdDSA),
//! generated on first start and kept in the `signing_keys` table with the private part sealed
//! under the master key. Private key material never enters an event or a log.
//!
//! Keys are parsed once at start-up and kept; jsonwebtoken would otherwise rebuild a signer
//! from the raw key on every token (STACK.md).

use std::collections::HashMap;

use authledger_domain::client::IdTokenAlg;
use authledger_projections::{on_db, Db};
use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{EcdsaKeyPair, Ed25519KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
use jsonwebtoken::jwk::{Jwk, JwkSet, PublicKeyUse, ThumbprintHash};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::Serialize;

use crate::master_key::MasterKey;

struct SigningKey {
    kid: String,
    encoding: EncodingKey,
}

/// The asymmetric signing keys in use, and the public keys to publish.
pub struct KeyRing {
    active: HashMap<IdTokenAlg, SigningKey>,
    published: JwkSet,
}

#[derive(Debug, thiserror::Error)]
pub enum SigningError {
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    #[error(transparent)]
    MasterKey(#[from] crate::master_key::MasterKeyError),
    #[error("key generation failed for {0}")]
    Generation(&'static str),
    #[error("signing failed: {0}")]
    Sign(#[from] jsonwebtoken::errors::Error),
    #[error("stored key {0} is unusable")]
    Corrupt(String),
}

const ASYMMETRIC: [IdTokenAlg; 3] = [IdTokenAlg::RS256, IdTokenAlg::ES256, IdTokenAlg::EdDSA];

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

/// The RSAPrivateKey (PKCS#1) inside a PKCS#8 PrivateKeyInfo:
/// `SEQUENCE { INTEGER version, SEQUENCE algorithm, OCTET STRING privateKey }`.
fn pkcs1_from_pkcs8(der: &[u8]) -> Option<&[u8]> {
    fn element(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
        let (&tag, rest) = input.split_first()?;
        let (&first, rest) = rest.split_first()?;
        let (len, rest) = if first < 0x80 {
            (first as usize, rest)
        } else {
            let n = (first & 0x7f) as usize;
            if n == 0 || n > 4 || rest.len() < n {
                return None;
            }
            let len = rest[..n]
                .iter()
                .fold(0usize, |acc, b| (acc << 8) | *b as usize);
            (len, &rest[n..])
        };
        (rest.len() >= len).then(|| (tag, &rest[..len], &rest[len..]))
    }
    let (0x30, info, _) = element(der)? else {
        return None;
    };
    let (0x02, _version, rest) = element(info)? else {
        return None;
    };
    let (0x30, _algorithm, rest) = element(rest)? else {
        return None;
    };
    let (0x04, private_key, _) = element(rest)? else {
        return None;
    };
    Some(private_key)
}

#[derive(sqlx::FromRow)]
struct KeyRow {
    kid: String,
    alg: String,
    sealed_private_key: String,
}

impl KeyRing {
    /// Loads the active keys, generating any algorithm's key that does not exist yet.
    pub async fn load_or_generate(db: &Db, master: &MasterKey) -> Result<KeyRing, SigningError> {
        let mut ring = KeyRing::load(db, master).await?;
        for alg in ASYMMETRIC {
            if ring.active.contains_key(&alg) {
                continue;
            }
            let der = tokio::task::spawn_blocking(move || generate(alg))
                .await
                .map_err(|_| SigningError::Generation(alg.as_str()))??;
            let key = encoding_key(alg, &der);
            let mut jwk = Jwk::from_encoding_key(&key, jwt_algorithm(alg))?;
            let kid = jwk.thumbprint(ThumbprintHash::SHA256)?;
            jwk.common.key_id = Some(kid.clone());
            jwk.common.public_key_use = Some(PublicKeyUse::Signature);
            let sql = "INSERT INTO signing_keys (kid, alg, sealed_private_key, public_jwk, \
                       created_at, state) VALUES ($1, $2, $3, $4, $5, 'active')";
            let sealed = master.seal(&der, &format!("signing-key:{kid}"));
            let public = serde_json::to_string(&jwk).expect("a JWK serialises");
            let now = authledger_projections::view_time(chrono::Utc::now());
            on_db!(db, pool => sqlx::query(sql)
                .bind(&kid)
                .bind(alg.as_str())
                .bind(&sealed)
                .bind(&public)
                .bind(&now)
                .execute(pool)
                .await
                .map(drop))?;
            tracing::info!(kid, alg = alg.as_str(), "generated a signing key");
            ring.published.keys.push(jwk);
            ring.active.insert(alg, SigningKey { kid, encoding: key });
        }
        Ok(ring)
    }

    async fn load(db: &Db, master: &MasterKey) -> Result<KeyRing, SigningError> {
        let rows: Vec<KeyRow> = on_db!(db, pool => sqlx::query_as(
            "SELECT kid, alg, sealed_private_key FROM signing_keys WHERE state = 'active' \
             ORDER BY created_at"
        )
        .fetch_all(pool)
        .await)?;
        let jwks: Vec<String> = on_db!(db, pool => sqlx::query_scalar(
            "SELECT public_jwk FROM signing_keys WHERE state IN ('active', 'published', 'retired') \
             ORDER BY created_at"
        )
        .fetch_all(pool)
        .await)?;
        let mut active = HashMap::new();
        for row in rows {
            let alg = IdTokenAlg::parse(&row.alg)
                .ok_or_else(|| SigningError::Corrupt(row.kid.clone()))?;
            let der = master.open(&row.sealed_private_key, &format!("signing-key:{}", row.kid))?;
            active.insert(
                alg,
                SigningKey {
                    kid: row.kid,
                    encoding: encoding_key(alg, &der),
                },
            );
        }
        let keys = jwks
            .iter()
            .map(|j| serde_json::from_str(j).map_err(|_| SigningError::Corrupt("jwk".into())))
            .collect::<Result<_, _>>()?;
        Ok(KeyRing {
            active,
            published: JwkSet { keys },
        })
    }

    /// Signs `claims` as a JWT with this server's key for `alg`; `hs256_secret` is the client
    /// secret for HS256 (Frappe compatibility).
    pub fn sign(
        &self,
        alg: IdTokenAlg,
        claims: &impl Serialize,
        hs256_secret: Option<&[u8]>,
    ) -> Result<String, SigningError> {
        let (header, key) = match (alg, hs256_secret) {
            (IdTokenAlg::HS256, Some(secret)) => (
                Header::new(Algorithm::HS256),
                EncodingKey::from_secret(secret),
            ),
            (IdTokenAlg::HS256, None) => return Err(SigningError::Corrupt("HS256 secret".into())),
            (alg, _) => {
                let key = self
                    .active
                    .get(&alg)
                    .ok_or(SigningError::Generation(alg.as_str()))?;
                let mut header = Header::new(jwt_algorithm(alg));
                header.kid = Some(key.kid.clone());
                (header, key.encoding.clone())
            }
        };
        Ok(jsonwebtoken::encode(&header, claims, &key)?)
    }

    /// The JWK Set published at the JWKS endpoint.
    pub fn jwks(&self) -> &JwkSet {
        &self.published
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_sign_tokens_that_verify_with_their_published_jwk() {
        for alg in ASYMMETRIC {
            let der = generate(alg).unwrap();
            let key = encoding_key(alg, &der);
            let jwk = Jwk::from_encoding_key(&key, jwt_algorithm(alg)).unwrap();
            let token = jsonwebtoken::encode(
                &Header::new(jwt_algorithm(alg)),
                &serde_json::json!({"sub": "x", "exp": 4_000_000_000u64}),
                &key,
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
