//! The outside world, as the aggregates see it.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::secret::{Password, PasswordHash};

/// Everything an aggregate needs that is not in its events: the clock and password hashing.
/// Production uses the system clock and argon2id; tests use a fixed clock and a fake hash so
/// expected events can be written out exactly.
#[async_trait]
pub trait DomainServices: Send + Sync {
    fn now(&self) -> DateTime<Utc>;
    async fn hash_password(&self, password: &Password) -> Result<PasswordHash, ServiceError>;
    async fn verify_password(&self, password: &Password, hash: &PasswordHash) -> bool;
    /// Spends what one verification costs, against no real hash: a sign-in to an unknown
    /// account then takes as long as one with a wrong password.
    async fn spend_a_verification(&self, _password: &Password) {}
}

/// What every aggregate's `Services` is.
pub type Services = Arc<dyn DomainServices>;

#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[error("{0}")]
pub struct ServiceError(pub String);
