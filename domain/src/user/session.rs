//! Sign-in sessions: started by a successful sign-in, ended by signing out, by a password
//! change or by disabling the account, and over by themselves after [`SESSION_LIFETIME`].
//!
//! The session's id travels only in the person's signed cookie; the log keeps its SHA-256,
//! like every other secret. A cookie is honoured only while its session is open, so a copied
//! cookie stops working when its owner signs out or changes their password.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use crate::secret::SecretHash;

/// After this long a person signs in again, whatever happened meanwhile.
pub const SESSION_LIFETIME: Duration = Duration::hours(12);

/// A session a successful sign-in opens.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewSession {
    pub id_hash: SecretHash,
    pub expires_at: DateTime<Utc>,
}

/// Why a session ended before its time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SessionEnd {
    SignedOut,
    /// Ended from another of the person's sessions ("sign out everywhere else").
    SignedOutElsewhere,
    PasswordChanged,
    UserDisabled,
    UserErased,
}

impl SessionEnd {
    pub fn as_str(self) -> &'static str {
        match self {
            SessionEnd::SignedOut => "signed_out",
            SessionEnd::SignedOutElsewhere => "signed_out_elsewhere",
            SessionEnd::PasswordChanged => "password_changed",
            SessionEnd::UserDisabled => "user_disabled",
            SessionEnd::UserErased => "user_erased",
        }
    }
}
