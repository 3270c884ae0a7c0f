//! Seals of the ledger: the chain head signed with a dedicated Ed25519 key.
//!
//! The chain (`authledger_projections::ledger`) shows that events were changed unless whoever
//! changed them also recomputed every digest after them, which anyone with database access
//! can. A seal closes that: it signs `{digest, kid, link, position, sealed_at}` (the same
//! canonical JSON as events: sorted keys, no spaces) with a key whose private half is sealed
//! under the master key and whose public half is published (`/.well-known/ledger-keys`,
//! `authledger ledger keys`). Recomputing the chain then no longer agrees with the seals.
//!
//! The server seals when `ledger_seal_every` events or `ledger_seal_interval` seconds have
//! passed since the last seal, whichever comes first.

use authledger_projections::db::Db;
use authledger_projections::{on_db, view_time};
use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair, UnparsedPublicKey, ED25519};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{json, Value};

use crate::error::AppError;
use crate::master_key::MasterKey;

fn internal(error: impl std::fmt::Display) -> AppError {
    AppError::Internal(anyhow::anyhow!("ledger seal: {error}"))
}

/// One seal as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct Seal {
    pub link: i64,
    pub global_position: i64,
    pub digest: String,
    pub sealed_at: String,
    pub kid: String,
    /// Ed25519 over [`Seal::signed_bytes`], base64url.
    pub signature: String,
}

impl Seal {
    /// What the signature covers.
    pub fn signed_bytes(&self) -> Vec<u8> {
        // serde_json writes these keys in the order given; they are in byte order already.
        serde_json::to_vec(&json!({
            "digest": self.digest,
            "kid": self.kid,
            "link": self.link,
            "position": self.global_position,
            "sealed_at": self.sealed_at,
        }))
        .expect("a seal serialises")
    }
}

/// The key that signs new seals: the newest, made on first use.
async fn signing_key(db: &Db, master: &MasterKey) -> Result<(String, Ed25519KeyPair), AppError> {
    let sql = "SELECT kid, sealed_private FROM ledger_keys ORDER BY created_at DESC, kid LIMIT 1";
    let row: Option<(String, String)> =
        on_db!(db, pool => sqlx::query_as(sql).fetch_optional(pool).await).map_err(internal)?;
    let (kid, sealed) = match row {
        Some(row) => row,
        None => {
            let pkcs8 = Ed25519KeyPair::generate()
                .and_then(|pair| pair.to_pkcs8v1())
                .map_err(internal)?;
            let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).map_err(internal)?;
            let public = URL_SAFE_NO_PAD.encode(pair.public_key().as_ref());
            let kid = format!(
                "ledger-{}",
                &uuid::Uuid::new_v4().simple().to_string()[..12]
            );
            let sealed = master.seal(pkcs8.as_ref(), &context(&kid));
            let insert = "INSERT INTO ledger_keys (kid, public_key, sealed_private, created_at) \
                          VALUES ($1, $2, $3, $4)";
            on_db!(db, pool => sqlx::query(insert)
                .bind(&kid)
                .bind(&public)
                .bind(&sealed)
                .bind(view_time(Utc::now()))
                .execute(pool)
                .await
                .map(drop))
            .map_err(internal)?;
            (kid, sealed)
        }
    };
    let der = master.open(&sealed, &context(&kid)).map_err(internal)?;
    let pair = Ed25519KeyPair::from_pkcs8(&der).map_err(internal)?;
    Ok((kid, pair))
}

fn context(kid: &str) -> String {
    format!("ledger-key:{kid}")
}

/// The last seal, if any.
pub async fn latest(db: &Db) -> Result<Option<Seal>, AppError> {
    let sql = "SELECT link, global_position, digest, sealed_at, kid, signature FROM ledger_seals \
               ORDER BY link DESC LIMIT 1";
    on_db!(db, pool => sqlx::query_as(sql).fetch_optional(pool).await).map_err(internal)
}

/// Every seal, oldest first.
pub async fn all(db: &Db) -> Result<Vec<Seal>, AppError> {
    let sql = "SELECT link, global_position, digest, sealed_at, kid, signature FROM ledger_seals \
               ORDER BY link";
    on_db!(db, pool => sqlx::query_as(sql).fetch_all(pool).await).map_err(internal)
}

/// Seals the chain head when `every` links or `interval` seconds have passed since the last
/// seal (`force`: whenever the head moved). Two instances sealing the same head write one
/// seal.
pub async fn seal_if_due(
    db: &Db,
    master: &MasterKey,
    every: u32,
    interval: u32,
    force: bool,
) -> Result<Option<Seal>, AppError> {
    let sql = "SELECT link, global_position, digest FROM ledger_chain ORDER BY link DESC LIMIT 1";
    let head: Option<(i64, i64, String)> =
        on_db!(db, pool => sqlx::query_as(sql).fetch_optional(pool).await).map_err(internal)?;
    let Some((link, global_position, digest)) = head else {
        return Ok(None);
    };
    let now = Utc::now();
    let last = latest(db).await?;
    let due = match &last {
        None => true,
        Some(last) if last.link >= link => false,
        Some(last) => {
            let sealed_at = DateTime::parse_from_rfc3339(&last.sealed_at)
                .map(|t| t.with_timezone(&Utc))
                .unwrap_or(now);
            force
                || link - last.link >= i64::from(every)
                || (now - sealed_at).num_seconds() >= i64::from(interval)
        }
    };
    if !due {
        return Ok(None);
    }
    let (kid, pair) = signing_key(db, master).await?;
    let mut seal = Seal {
        link,
        global_position,
        digest,
        sealed_at: now.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
        kid,
        signature: String::new(),
    };
    seal.signature = URL_SAFE_NO_PAD.encode(pair.sign(&seal.signed_bytes()).as_ref());
    let insert =
        "INSERT INTO ledger_seals (link, global_position, digest, sealed_at, kid, signature) \
                  VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (link) DO NOTHING";
    on_db!(db, pool => sqlx::query(insert)
        .bind(seal.link)
        .bind(seal.global_position)
        .bind(&seal.digest)
        .bind(&seal.sealed_at)
        .bind(&seal.kid)
        .bind(&seal.signature)
        .execute(pool)
        .await
        .map(drop))
    .map_err(internal)?;
    Ok(Some(seal))
}

/// The public keys, as a JWKS (RFC 8037 OKP keys): what an auditor checks seals with.
pub async fn published(db: &Db) -> Result<Value, AppError> {
    let sql = "SELECT kid, public_key, created_at FROM ledger_keys ORDER BY created_at, kid";
    let rows: Vec<(String, String, String)> =
        on_db!(db, pool => sqlx::query_as(sql).fetch_all(pool).await).map_err(internal)?;
    let keys: Vec<Value> = rows
        .into_iter()
        .map(|(kid, x, created_at)| {
            json!({
                "kty": "OKP", "crv": "Ed25519", "alg": "EdDSA", "use": "sig",
                "kid": kid, "x": x, "created_at": created_at,
            })
        })
        .collect();
    Ok(json!({ "keys": keys }))
}

/// Whether `seal` is signed by the key `kid` names among `keys` (a [`published`] JWKS).
pub fn signature_holds(seal: &Seal, keys: &Value) -> bool {
    let public = keys["keys"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|k| k["kid"] == seal.kid.as_str())
        .and_then(|k| k["x"].as_str())
        .and_then(|x| URL_SAFE_NO_PAD.decode(x).ok());
    let signature = URL_SAFE_NO_PAD.decode(&seal.signature).ok();
    match (public, signature) {
        (Some(public), Some(signature)) => UnparsedPublicKey::new(&ED25519, public)
            .verify(&seal.signed_bytes(), &signature)
            .is_ok(),
        _ => false,
    }
}

/// What a check of the seals found wrong first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum SealBreak {
    /// The seal's signature does not verify with its published key (or the key is unknown).
    BadSeal { link: i64, global_position: i64 },
    /// The chain as recomputed differs from what the seal signed: an event at or before this
    /// position was changed and the chain recomputed after it.
    Resealed { link: i64, global_position: i64 },
}

impl std::fmt::Display for SealBreak {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SealBreak::BadSeal { link, global_position } => write!(
                f,
                "bad seal: the seal of link {link} (position {global_position}) is not signed by its published key"
            ),
            SealBreak::Resealed { link, global_position } => write!(
                f,
                "altered: the chain up to position {global_position} (link {link}) is not what was sealed; an event at or before it was changed and the chain recomputed"
            ),
        }
    }
}

/// Checks every seal up to `verified_link` (the part of the chain whose recorded digests
/// `ledger::verify` recomputed from the events) against `keys`, or, when none are given,
/// against the keys published by this store.
pub async fn check(
    db: &Db,
    keys: Option<&Value>,
    verified_link: i64,
) -> Result<(usize, Option<SealBreak>), AppError> {
    let seals = all(db).await?;
    // The published keys are read after the seals: a running server may make its first key
    // and seal with it at any moment, and a key is never removed, so keys read afterwards
    // cover every seal read before.
    let published;
    let keys = match keys {
        Some(keys) => keys,
        None => {
            published = self::published(db).await?;
            &published
        }
    };
    let mut checked = 0;
    for seal in seals.iter().filter(|s| s.link <= verified_link) {
        let at = |link| (link, seal.global_position);
        if !signature_holds(seal, keys) {
            let (link, global_position) = at(seal.link);
            return Ok((
                checked,
                Some(SealBreak::BadSeal {
                    link,
                    global_position,
                }),
            ));
        }
        let sql = "SELECT digest FROM ledger_chain WHERE link = $1";
        let recorded: Option<String> =
            on_db!(db, pool => sqlx::query_scalar(sql).bind(seal.link).fetch_optional(pool).await)
                .map_err(internal)?;
        if recorded.as_deref() != Some(seal.digest.as_str()) {
            let (link, global_position) = at(seal.link);
            return Ok((
                checked,
                Some(SealBreak::Resealed {
                    link,
                    global_position,
                }),
            ));
        }
        checked += 1;
    }
    Ok((checked, None))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signed_bytes_are_canonical() {
        let seal = Seal {
            link: 7,
            global_position: 9,
            digest: "ab".into(),
            sealed_at: "2026-11-27T00:00:00.000000Z".into(),
            kid: "ledger-x".into(),
            signature: String::new(),
        };
        assert_eq!(
            String::from_utf8(seal.signed_bytes()).unwrap(),
            r#"{"digest":"ab","kid":"ledger-x","link":7,"position":9,"sealed_at":"2026-11-27T00:00:00.000000Z"}"#
        );
    }
}
