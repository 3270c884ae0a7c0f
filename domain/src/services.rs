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
}

/// What every aggregate's `Services` is.
pub type Services = Arc<dyn DomainServices>;

#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[error("{0}")]
pub struct ServiceError(pub String);
