//! Two-factor sign-in: an authenticator app (TOTP, RFC 6238) and one-time recovery codes.
//!
//! The TOTP secret never enters the log: it is sealed under the master key outside it, like
//! the signing keys, and only the caller can check a code against it. What the log keeps is
//! what the rules need: that the person enrolled, the hashes of their unused recovery codes,
//! and the last time step a code was accepted for, so that a code (or an earlier one) cannot
//! be used twice (RFC 6238 §5.2).
//!
//! A sign-in with two factors is two commands: the password (`RecordLogin`, which then
//! records `PasswordVerified` and opens no session) and, within
//! [`SECOND_FACTOR_WINDOW`], the code (`CompleteSignIn`).

use std::collections::BTreeSet;

use chrono::Duration;
use serde::{Deserialize, Serialize};

use super::profile::Role;
use crate::secret::SecretHash;

/// How long after the password the second factor may follow.
pub const SECOND_FACTOR_WINDOW: Duration = Duration::minutes(5);

/// How many recovery codes an enrolment hands out.
pub const RECOVERY_CODES: usize = 10;

/// A person's enrolled second factor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TwoFactor {
    /// Hashes of the recovery codes not used yet.
    pub recovery_codes: BTreeSet<SecretHash>,
    /// The last TOTP time step a code was accepted for.
    pub last_step: u64,
}

/// What the caller found the presented code to be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecondFactorProof {
    /// A TOTP code valid for this time step.
    Totp { step: u64 },
    /// A code that is no TOTP code now: perhaps a recovery code, by its hash.
    Other(SecretHash),
}

/// Who must sign in with two factors (the setting `require_two_factor`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TwoFactorPolicy {
    /// Whoever enrolled.
    #[default]
    Optional,
    /// Everyone: who has not enrolled must at their next sign-in.
    Everyone,
    /// People with one of these roles.
    Roles(BTreeSet<String>),
}

impl TwoFactorPolicy {
    pub fn requires(&self, roles: &BTreeSet<Role>) -> bool {
        match self {
            TwoFactorPolicy::Optional => false,
            TwoFactorPolicy::Everyone => true,
            TwoFactorPolicy::Roles(required) => roles.iter().any(|r| required.contains(r.as_str())),
        }
    }
}

/// Why a second factor was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SecondFactorFailure {
    /// Neither a current TOTP code nor an unused recovery code.
    WrongCode,
    /// A TOTP code for a time step already used.
    Replayed,
}

/// Why a second factor was removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TwoFactorRemoval {
    /// By the person, from their account page.
    ByUser,
    /// Reset by an administrator (a lost phone); the actor says who.
    Reset,
}
