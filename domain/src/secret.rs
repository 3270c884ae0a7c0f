//! Secrets and their hashes.
//!
//! Events, views and logs only ever see hashes. Raw secrets live in [`Password`] (or in the
//! server's minting code) whose `Debug` prints nothing, so a stray `{:?}` cannot leak one.

use std::fmt;

use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;

/// SHA-256 of a high-entropy secret (client secret, token, code), as 64 lowercase hex digits.
///
/// A fast hash is safe here because the secrets are 256-bit random values: there is nothing to
/// brute-force. The hashing itself happens at the edge (see the server's `secrets` module).
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct SecretHash(String);

impl SecretHash {
    pub fn from_hex(hex: &str) -> Result<Self, InvalidSecretHash> {
        if hex.len() == 64
            && hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            Ok(SecretHash(hex.to_owned()))
        } else {
            Err(InvalidSecretHash)
        }
    }

    pub fn as_hex(&self) -> &str {
        &self.0
    }

    /// Compares in constant time, so response timing does not reveal how much of a guessed
    /// secret's hash matched.
    pub fn matches(&self, other: &SecretHash) -> bool {
        self.0.as_bytes().ct_eq(other.0.as_bytes()).into()
    }
}

impl fmt::Debug for SecretHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // A prefix is enough to tell hashes apart in test failures.
        write!(f, "SecretHash({}…)", &self.0[..8])
    }
}

impl TryFrom<String> for SecretHash {
    type Error = InvalidSecretHash;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        SecretHash::from_hex(&value)
    }
}

impl From<SecretHash> for String {
    fn from(value: SecretHash) -> Self {
        value.0
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("a secret hash is 64 lowercase hex digits")]
pub struct InvalidSecretHash;

/// A password hash in PHC string format (argon2id in production).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct PasswordHash(String);

impl PasswordHash {
    pub fn new_unchecked(phc: String) -> Self {
        PasswordHash(phc)
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for PasswordHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PasswordHash(..)")
    }
}

/// Where a password's hash is kept: a row of the credentials table, outside the event log.
/// Events name the hash by this id and never hold it: an argon2 hash is a secret an auditor
/// does not need, and anyone who can read the log could attack it offline.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct CredentialId(String);

impl CredentialId {
    pub fn new(id: String) -> Self {
        CredentialId(id)
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// How an event records a password that was set. Flattened into the event, so the payload
/// holds either `"credential": "<id>"` or, in events recorded before hashes moved out of the
/// log (only in stores whose ledger was already chained then, see migration 0016),
/// `"password_hash": "<PHC string>"`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PasswordRecord {
    Credential(CredentialId),
    PasswordHash(PasswordHash),
}

/// A raw password, as typed by a person. Never serialised, never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Password(String);

/// NIST SP 800-63B §5.1.1.2: at least 8 characters; long passphrases must be accepted.
pub const PASSWORD_MIN_CHARS: usize = 8;
/// Bounds the work argon2 does for one attempt.
pub const PASSWORD_MAX_CHARS: usize = 1024;

impl Password {
    pub fn parse(raw: &str) -> Result<Self, PasswordRejected> {
        let chars = raw.chars().count();
        if chars < PASSWORD_MIN_CHARS {
            Err(PasswordRejected::TooShort)
        } else if chars > PASSWORD_MAX_CHARS {
            Err(PasswordRejected::TooLong)
        } else {
            Ok(Password(raw.to_owned()))
        }
    }

    /// A password typed at sign-in: only the upper bound applies (a too-short attempt is simply
    /// wrong, and saying so would reveal the policy to a guesser for nothing).
    pub fn attempt(raw: &str) -> Result<Self, PasswordRejected> {
        if raw.chars().count() > PASSWORD_MAX_CHARS {
            Err(PasswordRejected::TooLong)
        } else {
            Ok(Password(raw.to_owned()))
        }
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(..)")
    }
}

#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum PasswordRejected {
    #[error("password: must be at least {PASSWORD_MIN_CHARS} characters")]
    TooShort,
    #[error("password: must be at most {PASSWORD_MAX_CHARS} characters")]
    TooLong,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_never_shows_a_password() {
        let password = Password::parse("correct horse battery").unwrap();
        assert!(!format!("{password:?}").contains("horse"));
    }

    #[test]
    fn a_secret_hash_must_be_lowercase_hex_sha256() {
        assert!(SecretHash::from_hex(&"a".repeat(64)).is_ok());
        assert!(SecretHash::from_hex(&"A".repeat(64)).is_err());
        assert!(SecretHash::from_hex("abc").is_err());
    }

    #[test]
    fn passwords_shorter_than_eight_characters_are_refused() {
        assert_eq!(Password::parse("1234567"), Err(PasswordRejected::TooShort));
        assert!(Password::parse("12345678").is_ok());
    }
}
