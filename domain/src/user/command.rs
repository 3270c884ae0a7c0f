use std::collections::BTreeSet;

use super::profile::{Role, UserProfile, Username};
use super::session::NewSession;
use super::two_factor::{SecondFactorProof, TwoFactorPolicy, TwoFactorRemoval};
use crate::secret::{Password, PasswordHash, SecretHash};

#[derive(Debug, Clone, PartialEq)]
pub enum UserCommand {
    /// The raw password comes in so the aggregate can hash it through its services; only the
    /// hash goes into the event. `Password`'s `Debug` is redacted.
    Register {
        username: Username,
        password: Password,
        profile: UserProfile,
        roles: BTreeSet<Role>,
    },
    /// A person moved from another store (`authledger import`): the password hash travels as
    /// it was (the password is known to no one here), recorded as any registration.
    Import {
        username: Username,
        password_hash: PasswordHash,
        profile: UserProfile,
        roles: BTreeSet<Role>,
    },
    UpdateProfile {
        profile: UserProfile,
    },
    ChangePassword {
        password: Password,
    },
    SetRoles {
        roles: BTreeSet<Role>,
    },
    Disable,
    Enable,
    /// Erasure of the person's data (GDPR art. 17): recorded here, then their key is
    /// destroyed outside the log. `reason` is the operator's, kept in the clear: it says why,
    /// and must not name the person.
    Erase {
        reason: Option<String>,
    },
    /// A sign-in through another provider (social login) that vouched for this person:
    /// `session` opens unless the account is disabled. A person who signs in with a second
    /// factor here (or must) still has to give it (`VouchedElsewhere`, then
    /// `CompleteSignIn` or `EnrolTwoFactor`): the other provider stands in for the password
    /// only.
    SignInElsewhere {
        /// `social:<provider>`, what the sign-in event records.
        method: String,
        session: NewSession,
        two_factor_policy: TwoFactorPolicy,
    },
    /// A sign-in attempt. Both outcomes are recorded (the audit trail answers "every failed
    /// login for user U"); the caller reads the outcome from the committed event.
    RecordLogin {
        password: Password,
        /// The session a success opens (its id minted outside, only its hash here).
        session: NewSession,
        /// Who must use a second factor (the setting `require_two_factor`).
        two_factor_policy: TwoFactorPolicy,
    },
    /// The second factor of a sign-in whose password was verified: `session` opens if it
    /// holds.
    CompleteSignIn {
        proof: SecondFactorProof,
        session: NewSession,
    },
    /// Enrols an authenticator app, whose secret the caller sealed and checked a first code
    /// against (`confirmed_step`). With `session`, this completes a sign-in that required
    /// enrolment.
    EnrolTwoFactor {
        recovery_codes: BTreeSet<SecretHash>,
        confirmed_step: u64,
        session: Option<NewSession>,
    },
    RemoveTwoFactor {
        reason: TwoFactorRemoval,
    },
    /// Failed sign-ins made the account wait this long (see `LoginThrottled`).
    RecordThrottled {
        retry_after_seconds: u64,
    },
    /// The person signed out of this session.
    EndSession {
        id_hash: SecretHash,
    },
    /// The person, signed in through `keep`, signed out of every other session ("sign out
    /// everywhere else").
    EndOtherSessions {
        keep: SecretHash,
    },
}
