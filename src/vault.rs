//! The vault: secrets the server must be able to read again (private signing keys, the
//! secrets of clients whose ID tokens are HS256-signed with them), sealed under the master key
//! (AES-256-GCM, `crate::master_key`) in side tables outside the event log, which must never
//! hold a secret. Each value is sealed with its purpose and owner as associated data, so one
//! cannot be passed off as another.

use authledger_projections::{on_db, Db};

use crate::master_key::{MasterKey, MasterKeyError};

#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    #[error("vault: {0}")]
    Db(#[from] sqlx::Error),
    #[error(transparent)]
    Sealed(#[from] MasterKeyError),
}

pub struct Vault<'a> {
    db: &'a Db,
    master: &'a MasterKey,
}

/// What a signing key is sealed for: its key id.
fn signing_key_context(kid: &str) -> String {
    format!("signing-key:{kid}")
}

/// What a client secret is sealed for: its client.
fn client_secret_context(client_id: &str) -> String {
    format!("client-secret:{client_id}")
}

/// What a TOTP secret is sealed for: its person.
fn totp_secret_context(username: &str) -> String {
    format!("totp-secret:{username}")
}

/// A new signing key: its id, algorithm, private key (DER) and public JWK.
pub struct NewSigningKey<'a> {
    pub kid: &'a str,
    pub alg: &'a str,
    pub private_der: &'a [u8],
    pub public_jwk: &'a serde_json::Value,
}

impl<'a> Vault<'a> {
    pub fn new(db: &'a Db, master: &'a MasterKey) -> Self {
        Vault { db, master }
    }

    pub async fn put_signing_key(&self, key: NewSigningKey<'_>) -> Result<(), VaultError> {
        let sealed = self
            .master
            .seal(key.private_der, &signing_key_context(key.kid));
        let sql = "INSERT INTO signing_keys (kid, alg, sealed_private_key, public_jwk, created_at, state) \
                   VALUES ($1, $2, $3, $4, $5, 'sealed')";
        on_db!(self.db, pool => sqlx::query(sql)
            .bind(key.kid)
            .bind(key.alg)
            .bind(&sealed)
            .bind(key.public_jwk.to_string())
            .bind(authledger_projections::view_time(chrono::Utc::now()))
            .execute(pool)
            .await
            .map(drop))?;
        Ok(())
    }

    /// The private key (DER) of `kid`, if the vault holds it.
    pub async fn signing_key(&self, kid: &str) -> Result<Option<Vec<u8>>, VaultError> {
        let sql = "SELECT sealed_private_key FROM signing_keys WHERE kid = $1";
        let sealed: Option<String> = on_db!(self.db, pool => sqlx::query_scalar(sql)
            .bind(kid)
            .fetch_optional(pool)
            .await)?;
        Ok(sealed
            .map(|s| self.master.open(&s, &signing_key_context(kid)))
            .transpose()?)
    }

    /// Keeps a client's secret; `secret_hash` (hex) is what its events know it by, so a
    /// rotation simply adds the new one.
    pub async fn put_client_secret(
        &self,
        client_id: &str,
        secret_hash: &str,
        secret: &[u8],
    ) -> Result<(), VaultError> {
        let sealed = self.master.seal(secret, &client_secret_context(client_id));
        let sql = "INSERT INTO client_secret_keys (client_id, secret_hash, sealed_secret) \
                   VALUES ($1, $2, $3)";
        on_db!(self.db, pool => sqlx::query(sql)
            .bind(client_id)
            .bind(secret_hash)
            .bind(&sealed)
            .execute(pool)
            .await
            .map(drop))?;
        Ok(())
    }

    /// The secret of `client_id` whose hash is `secret_hash`, if the vault holds it.
    pub async fn client_secret(
        &self,
        client_id: &str,
        secret_hash: &str,
    ) -> Result<Option<Vec<u8>>, VaultError> {
        let sql = "SELECT sealed_secret FROM client_secret_keys \
                   WHERE client_id = $1 AND secret_hash = $2";
        let sealed: Option<String> = on_db!(self.db, pool => sqlx::query_scalar(sql)
            .bind(client_id)
            .bind(secret_hash)
            .fetch_optional(pool)
            .await)?;
        Ok(sealed
            .map(|s| self.master.open(&s, &client_secret_context(client_id)))
            .transpose()?)
    }
}

impl Vault<'_> {
    /// Keeps a person's TOTP secret, replacing one not yet confirmed (a set-up started
    /// again). Whether it is in use is the log's to say (`TwoFactorEnrolled`).
    pub async fn put_totp_secret(&self, username: &str, secret: &[u8]) -> Result<(), VaultError> {
        let sealed = self.master.seal(secret, &totp_secret_context(username));
        let sql =
            "INSERT INTO totp_secrets (username, sealed_secret, created_at) VALUES ($1, $2, $3) \
                   ON CONFLICT (username) DO UPDATE SET sealed_secret = excluded.sealed_secret, \
                   created_at = excluded.created_at";
        on_db!(self.db, pool => sqlx::query(sql)
            .bind(username)
            .bind(&sealed)
            .bind(authledger_projections::view_time(chrono::Utc::now()))
            .execute(pool)
            .await
            .map(drop))?;
        Ok(())
    }

    /// A person's TOTP secret, if the vault holds one.
    pub async fn totp_secret(&self, username: &str) -> Result<Option<Vec<u8>>, VaultError> {
        let sql = "SELECT sealed_secret FROM totp_secrets WHERE username = $1";
        let sealed: Option<String> = on_db!(self.db, pool => sqlx::query_scalar(sql)
            .bind(username)
            .fetch_optional(pool)
            .await)?;
        Ok(sealed
            .map(|s| self.master.open(&s, &totp_secret_context(username)))
            .transpose()?)
    }
}

/// Forgets a person's TOTP secret (two-factor removed or reset). Needs no master key: a CLI
/// reset works without it.
pub async fn forget_totp_secret(db: &Db, username: &str) -> Result<(), VaultError> {
    let sql = "DELETE FROM totp_secrets WHERE username = $1";
    on_db!(db, pool => sqlx::query(sql).bind(username).execute(pool).await.map(drop))?;
    Ok(())
}

/// Whether anything is sealed in the store: then a missing master key file means the wrong
/// directory, not a first start (it needs no key to answer).
pub async fn holds_anything(db: &Db) -> Result<bool, sqlx::Error> {
    let sql =
        "SELECT EXISTS (SELECT 1 FROM signing_keys) OR EXISTS (SELECT 1 FROM client_secret_keys) \
         OR EXISTS (SELECT 1 FROM totp_secrets) OR EXISTS (SELECT 1 FROM connected_app_secrets) \
         OR EXISTS (SELECT 1 FROM social_login_secrets)";
    on_db!(db, pool => sqlx::query_scalar(sql).fetch_one(pool).await)
}
