//! Deterministic services for given/when/then tests.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, TimeZone, Utc};

use crate::secret::{CredentialId, Password, PasswordHash, PasswordRecord};
use crate::services::{DomainServices, ServiceError, Services};
use crate::user::Username;

pub struct FixedServices {
    pub now: DateTime<Utc>,
}

/// A stand-in hash that is obviously not argon2, so a test can tell which password was set.
pub fn fake_hash(password: &str) -> PasswordHash {
    PasswordHash::new_unchecked(format!("$fake${password}"))
}

/// The stand-in credential `keep_password` gives for `password`: tests can write it out.
pub fn fake_credential(password: &str) -> PasswordRecord {
    PasswordRecord::Credential(CredentialId::new(format!("fake:{password}")))
}

#[async_trait]
impl DomainServices for FixedServices {
    fn now(&self) -> DateTime<Utc> {
        self.now
    }
    async fn keep_password(
        &self,
        _username: &Username,
        password: &Password,
    ) -> Result<CredentialId, ServiceError> {
        match fake_credential(password.expose()) {
            PasswordRecord::Credential(id) => Ok(id),
            PasswordRecord::PasswordHash(_) => unreachable!("a fake credential is an id"),
        }
    }
    async fn keep_password_hash(
        &self,
        _username: &Username,
        hash: &PasswordHash,
    ) -> Result<CredentialId, ServiceError> {
        Ok(CredentialId::new(format!("imported:{}", hash.as_str())))
    }
    async fn verify_password(&self, password: &Password, recorded: &PasswordRecord) -> bool {
        *recorded == fake_credential(password.expose())
            || *recorded == PasswordRecord::PasswordHash(fake_hash(password.expose()))
    }
}

/// The fixed clock's time.
pub fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 1, 12, 0, 0).unwrap()
}

pub fn services() -> Services {
    Arc::new(FixedServices { now: now() })
}

/// The fixed clock's time plus `seconds`.
pub fn at(seconds: i64) -> DateTime<Utc> {
    now() + chrono::Duration::seconds(seconds)
}

/// Services whose clock reads [`at`]`(seconds)`.
pub fn services_at(seconds: i64) -> Services {
    Arc::new(FixedServices { now: at(seconds) })
}
