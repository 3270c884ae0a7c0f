//! The outside world, as the aggregates see it.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::secret::{CredentialId, Password, PasswordHash, PasswordRecord};
use crate::user::Username;

/// Everything an aggregate needs that is not in its events: the clock, and passwords, whose
/// hashes are kept outside the log. Production uses the system clock, argon2id and the
/// credentials table; tests use a fixed clock and fake credentials so expected events can be
/// written out exactly.
#[async_trait]
pub trait DomainServices: Send + Sync {
    fn now(&self) -> DateTime<Utc>;
    /// Hashes `password` and keeps the hash for `username`; the event names it by the id.
    async fn keep_password(
        &self,
        username: &Username,
        password: &Password,
    ) -> Result<CredentialId, ServiceError>;
    /// Keeps a hash made elsewhere (`authledger import`), as `keep_password` does.
    async fn keep_password_hash(
        &self,
        username: &Username,
        hash: &PasswordHash,
    ) -> Result<CredentialId, ServiceError>;
    /// Whether `password` is the one recorded; false too when the hash cannot be found.
    async fn verify_password(&self, password: &Password, recorded: &PasswordRecord) -> bool;
    /// Spends what one verification costs, against no real hash: a sign-in to an unknown
    /// account then takes as long as one with a wrong password.
    async fn spend_a_verification(&self, _password: &Password) {}
}

/// What every aggregate's `Services` is.
pub type Services = Arc<dyn DomainServices>;

#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[error("{0}")]
pub struct ServiceError(pub String);
