//! Production implementations of the domain's services.

use argon2::password_hash::{rand_core::OsRng, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use async_trait::async_trait;
use authledger_domain::secret::{Password, PasswordHash};
use authledger_domain::services::{DomainServices, ServiceError};
use chrono::{DateTime, Utc};

/// The system clock, and argon2id with the crate's defaults (m=19 MiB, t=2, p=1: OWASP's
/// recommended minimum). Hashing runs on the blocking pool: it takes tens of milliseconds
/// and would otherwise stall every request sharing the runtime thread.
pub struct SystemServices;

#[async_trait]
impl DomainServices for SystemServices {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }

    async fn hash_password(&self, password: &Password) -> Result<PasswordHash, ServiceError> {
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

    async fn spend_a_verification(&self, _password: &Password) {
        spend_a_password_verification().await
    }

    async fn verify_password(&self, password: &Password, hash: &PasswordHash) -> bool {
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
}

/// Runs one argon2id verification against a throw-away hash: a sign-in with an unknown
/// username costs the same time as one with a wrong password.
pub async fn spend_a_password_verification() {
    static DUMMY: tokio::sync::OnceCell<Option<PasswordHash>> = tokio::sync::OnceCell::const_new();
    let attempt = Password::attempt("not the password").expect("short enough");
    let dummy = DUMMY
        .get_or_init(|| async { SystemServices.hash_password(&attempt).await.ok() })
        .await;
    if let Some(hash) = dummy {
        SystemServices.verify_password(&attempt, hash).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn argon2id_hashes_verify_and_do_not_contain_the_password() {
        let password = Password::parse("correct horse battery").unwrap();
        let hash = SystemServices.hash_password(&password).await.unwrap();
        assert!(hash.as_str().starts_with("$argon2id$"));
        assert!(!hash.as_str().contains("horse"));
        assert!(SystemServices.verify_password(&password, &hash).await);
        let wrong = Password::parse("incorrect horse").unwrap();
        assert!(!SystemServices.verify_password(&wrong, &hash).await);
    }
}
