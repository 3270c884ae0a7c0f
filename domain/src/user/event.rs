use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use chrono::{DateTime, Utc};

use super::profile::{Role, UserProfile, Username};
use super::session::SessionEnd;
use super::two_factor::{SecondFactorFailure, TwoFactorRemoval};
use crate::secret::{PasswordRecord, SecretHash};

/// What happened to a user. A password appears only as the id of its hash, which is kept
/// outside the log ([`PasswordRecord`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, strum::VariantNames)]
pub enum UserEvent {
    UserRegistered {
        username: Username,
        #[serde(flatten)]
        password: PasswordRecord,
        profile: UserProfile,
        roles: BTreeSet<Role>,
    },
    ProfileUpdated {
        profile: UserProfile,
    },
    PasswordChanged {
        #[serde(flatten)]
        password: PasswordRecord,
    },
    RolesSet {
        roles: BTreeSet<Role>,
    },
    UserDisabled {},
    UserEnabled {},
    /// The person's data was erased: their key is destroyed, so what was sealed under it
    /// (profile, IP addresses, user agents) opens for no one. The account stays, disabled,
    /// under its username, so that no one else can take the name and inherit its history.
    UserErased {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    LoginSucceeded {
        /// How, when not with the password (and second factor) here: `social:<provider>`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        method: Option<String>,
    },
    LoginFailed {
        reason: LoginFailure,
    },
    /// Failed sign-ins made the account wait: recorded once per throttling window, not per
    /// refused attempt, so that guessing cannot grow the log.
    LoginThrottled {
        retry_after_seconds: u64,
    },
    /// The password was right and a second factor must follow before `second_factor_until`
    /// (or, with `must_enrol`, an enrolment, which the settings require of this person).
    PasswordVerified {
        second_factor_until: DateTime<Utc>,
        must_enrol: bool,
    },
    /// Another provider vouched for the person (`method`, `social:<provider>`), and a second
    /// factor here must follow before `second_factor_until` (or, with `must_enrol`, an
    /// enrolment): the other provider stands in for the password, never for the second
    /// factor.
    VouchedElsewhere {
        method: String,
        second_factor_until: DateTime<Utc>,
        must_enrol: bool,
    },
    /// A TOTP code for this time step completed a sign-in; no code for it or an earlier
    /// step is accepted again.
    SecondFactorPassed {
        step: u64,
    },
    /// A recovery code completed a sign-in; it is spent.
    RecoveryCodeUsed {
        code_hash: SecretHash,
    },
    SecondFactorFailed {
        reason: SecondFactorFailure,
    },
    /// An authenticator app was enrolled (its secret is sealed outside the log), confirmed
    /// by a code for `confirmed_step`; the recovery codes are kept as hashes.
    TwoFactorEnrolled {
        recovery_codes: BTreeSet<SecretHash>,
        confirmed_step: u64,
    },
    TwoFactorRemoved {
        reason: TwoFactorRemoval,
    },
    /// A sign-in opened a session; its id is in the person's cookie, its hash here.
    SessionStarted {
        id_hash: SecretHash,
        expires_at: DateTime<Utc>,
        /// When it started (absent in events from before lifetimes were a setting, which
        /// lasted [`super::SESSION_LIFETIME`]).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        started_at: Option<DateTime<Utc>>,
    },
    /// A session ended before its time: its cookie is refused from now on.
    SessionEnded {
        id_hash: SecretHash,
        reason: SessionEnd,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LoginFailure {
    WrongPassword,
    UserDisabled,
    /// No account has this name. Recorded on the name's own stream (the account does not
    /// exist, and may never), through the same path and in the same time as a wrong
    /// password, so the answer does not tell which names exist.
    UnknownUser,
}

impl cqrs_es::DomainEvent for UserEvent {
    fn event_type(&self) -> String {
        match self {
            UserEvent::UserRegistered { .. } => "UserRegistered",
            UserEvent::ProfileUpdated { .. } => "ProfileUpdated",
            UserEvent::PasswordChanged { .. } => "PasswordChanged",
            UserEvent::RolesSet { .. } => "RolesSet",
            UserEvent::UserDisabled {} => "UserDisabled",
            UserEvent::UserErased { .. } => "UserErased",
            UserEvent::UserEnabled {} => "UserEnabled",
            UserEvent::LoginSucceeded { .. } => "LoginSucceeded",
            UserEvent::LoginFailed { .. } => "LoginFailed",
            UserEvent::LoginThrottled { .. } => "LoginThrottled",
            UserEvent::SessionStarted { .. } => "SessionStarted",
            UserEvent::SessionEnded { .. } => "SessionEnded",
            UserEvent::PasswordVerified { .. } => "PasswordVerified",
            UserEvent::VouchedElsewhere { .. } => "VouchedElsewhere",
            UserEvent::SecondFactorPassed { .. } => "SecondFactorPassed",
            UserEvent::RecoveryCodeUsed { .. } => "RecoveryCodeUsed",
            UserEvent::SecondFactorFailed { .. } => "SecondFactorFailed",
            UserEvent::TwoFactorEnrolled { .. } => "TwoFactorEnrolled",
            UserEvent::TwoFactorRemoved { .. } => "TwoFactorRemoved",
        }
        .to_owned()
    }

    fn event_version(&self) -> String {
        "1".to_owned()
    }
}
