//! Production implementations of the domain's services.

use argon2::password_hash::{rand_core::OsRng, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use async_trait::async_trait;
use authledger_domain::secret::{CredentialId, Password, PasswordHash, PasswordRecord};
use authledger_domain::services::{DomainServices, ServiceError};
use authledger_domain::user::Username;
use authledger_projections::Db;
use chrono::{DateTime, Utc};

use crate::credentials;

/// The system clock; argon2id with the crate's defaults (m=19 MiB, t=2, p=1: OWASP's
/// recommended minimum); password hashes kept in the store's credentials table.
pub struct SystemServices {
    db: Db,
}

impl SystemServices {
    pub fn new(db: Db) -> Self {
        SystemServices { db }
    }
}

#[async_trait]
impl DomainServices for SystemServices {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }

    async fn keep_password(
        &self,
        username: &Username,
        password: &Password,
    ) -> Result<CredentialId, ServiceError> {
        let hash = hash_password(password).await?;
        self.keep_password_hash(username, &hash).await
    }

    async fn keep_password_hash(
        &self,
        username: &Username,
        hash: &PasswordHash,
    ) -> Result<CredentialId, ServiceError> {
        credentials::keep(&self.db, username, hash)
            .await
            .map_err(|e| ServiceError(format!("cannot keep the password hash: {e}")))
    }

    async fn spend_a_verification(&self, _password: &Password) {
        spend_a_password_verification().await
    }

    async fn verify_password(&self, password: &Password, recorded: &PasswordRecord) -> bool {
        match credentials::hash_of(&self.db, recorded).await {
            Ok(Some(hash)) => verify_password(password, &hash).await,
            // A missing row or an unreachable store: the password is not shown to be right,
            // and the attempt still costs what a verification costs.
            Ok(None) | Err(_) => {
                spend_a_password_verification().await;
                false
            }
        }
    }
}

/// argon2id on the blocking pool: it takes tens of milliseconds and would otherwise stall
/// every request sharing the runtime thread.
pub async fn hash_password(password: &Password) -> Result<PasswordHash, ServiceError> {
    let password = password.clone();
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::generate(&mut OsRng);
        Argon2::default()
            .hash_password(password.expose().as_bytes(), &salt)
            .map(|hash| PasswordHash::new_unchecked(hash.to_string()))
            .map_err(|e| ServiceError(e.to_string()))
    })
    .await
    .map_err(|e| ServiceError(e.to_string()))?
}

/// Whether `password` hashes to `hash` (any argon2 variant its PHC string names).
pub async fn verify_password(password: &Password, hash: &PasswordHash) -> bool {
    let password = password.clone();
    let hash = hash.clone();
    tokio::task::spawn_blocking(move || {
        argon2::PasswordHash::new(hash.as_str())
            .map(|parsed| {
                Argon2::default()
                    .verify_password(password.expose().as_bytes(), &parsed)
                    .is_ok()
            })
            .unwrap_or(false)
    })
    .await
    .unwrap_or(false)
}

/// Runs one argon2id verification against a throw-away hash: a sign-in with an unknown
/// username costs the same time as one with a wrong password.
pub async fn spend_a_password_verification() {
    static DUMMY: tokio::sync::OnceCell<Option<PasswordHash>> = tokio::sync::OnceCell::const_new();
    let attempt = Password::attempt("not the password").expect("short enough");
    let dummy = DUMMY
        .get_or_init(|| async { hash_password(&attempt).await.ok() })
        .await;
    if let Some(hash) = dummy {
        verify_password(&attempt, hash).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn argon2id_hashes_verify_and_do_not_contain_the_password() {
        let password = Password::parse("correct horse battery").unwrap();
        let hash = hash_password(&password).await.unwrap();
        assert!(hash.as_str().starts_with("$argon2id$"));
        assert!(!hash.as_str().contains("horse"));
        assert!(verify_password(&password, &hash).await);
        let wrong = Password::parse("incorrect horse").unwrap();
        assert!(!verify_password(&wrong, &hash).await);
    }
}
