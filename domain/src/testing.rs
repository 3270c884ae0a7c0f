//! Deterministic services for given/when/then tests.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, TimeZone, Utc};

use crate::secret::{Password, PasswordHash};
use crate::services::{DomainServices, ServiceError, Services};

pub struct FixedServices {
    pub now: DateTime<Utc>,
}

/// A stand-in hash that is obviously not argon2, so a test can tell which password was set.
pub fn fake_hash(password: &str) -> PasswordHash {
    PasswordHash::new_unchecked(format!("$fake${password}"))
}

#[async_trait]
impl DomainServices for FixedServices {
    fn now(&self) -> DateTime<Utc> {
        self.now
    }
    async fn hash_password(&self, password: &Password) -> Result<PasswordHash, ServiceError> {
        Ok(fake_hash(password.expose()))
    }
    async fn verify_password(&self, password: &Password, hash: &PasswordHash) -> bool {
        fake_hash(password.expose()) == *hash
    }
}

/// The fixed clock's time.
pub fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 1, 12, 0, 0).unwrap()
}

pub fn services() -> Services {
    Arc::new(FixedServices { now: now() })
}
