//! The `User` aggregate: a person who signs in. Its aggregate id is the normalised username
//! ([`Username`]), so the event store's primary key (type, id, sequence) is what keeps two
//! registrations of one name apart: the second one conflicts in the store itself.

mod command;
mod error;
mod event;
mod profile;
mod session;
#[cfg(test)]
mod tests;
mod two_factor;

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

pub use command::UserCommand;
pub use error::UserError;
pub use event::{LoginFailure, UserEvent};
pub use profile::{Email, ProfileRejected, Role, UserProfile, Username};
pub use session::{NewSession, SessionEnd, SESSION_LIFETIME};
pub use two_factor::{
    SecondFactorFailure, SecondFactorProof, TwoFactor, TwoFactorPolicy, TwoFactorRemoval,
    RECOVERY_CODES, SECOND_FACTOR_WINDOW,
};

use crate::secret::{PasswordRecord, SecretHash};
use crate::services::Services;

#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
pub struct User {
    registered: Option<RegisteredUser>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RegisteredUser {
    pub username: Username,
    pub password: PasswordRecord,
    pub profile: UserProfile,
    pub roles: BTreeSet<Role>,
    pub disabled: bool,
    /// Their data was erased (`UserErased`): disabled for good.
    #[serde(default)]
    pub erased: bool,
    /// Open sign-in sessions: the hash of each one's id, and when it runs out. Sessions
    /// that ran out are dropped as new ones start.
    #[serde(default)]
    pub sessions: BTreeMap<SecretHash, DateTime<Utc>>,
    /// The second factor, once enrolled.
    #[serde(default)]
    pub two_factor: Option<TwoFactor>,
    /// Until when the second factor may follow a verified password.
    #[serde(default)]
    pub awaiting_second_factor_until: Option<DateTime<Utc>>,
    /// How the first factor of that pending sign-in was given when not with the password
    /// (`social:<provider>`): what its `LoginSucceeded` records.
    #[serde(default)]
    pub awaiting_method: Option<String>,
}

impl RegisteredUser {
    /// The events that end every session still open at `now`, for `reason`.
    fn end_sessions(&self, now: DateTime<Utc>, reason: SessionEnd) -> Vec<UserEvent> {
        self.sessions
            .iter()
            .filter(|(_, expires_at)| **expires_at > now)
            .map(|(id_hash, _)| UserEvent::SessionEnded {
                id_hash: id_hash.clone(),
                reason,
            })
            .collect()
    }
}

impl User {
    pub fn registered(&self) -> Option<&RegisteredUser> {
        self.registered.as_ref()
    }

    fn existing(&self) -> Result<&RegisteredUser, UserError> {
        self.registered.as_ref().ok_or(UserError::NotRegistered)
    }

    /// A sign-in to an enabled account: the right password opens `session`, unless a second
    /// factor must follow (the person enrolled one, or `policy` requires one of them, who
    /// must then enrol first).
    async fn verify(
        services: &Services,
        password: &crate::secret::Password,
        user: &RegisteredUser,
        session: NewSession,
        policy: &TwoFactorPolicy,
    ) -> Vec<UserEvent> {
        if !services.verify_password(password, &user.password).await {
            return vec![UserEvent::LoginFailed {
                reason: LoginFailure::WrongPassword,
            }];
        }
        let must_enrol = user.two_factor.is_none() && policy.requires(&user.roles);
        if user.two_factor.is_some() || must_enrol {
            return vec![UserEvent::PasswordVerified {
                second_factor_until: services.now() + SECOND_FACTOR_WINDOW,
                must_enrol,
            }];
        }
        signed_in(session, services.now(), None)
    }

    /// The pending sign-in the second factor completes, if its time has not run out.
    fn awaiting(&self, now: DateTime<Utc>) -> Result<&RegisteredUser, UserError> {
        let user = self.existing()?;
        match user.awaiting_second_factor_until {
            Some(until) if until > now && !user.disabled => Ok(user),
            _ => Err(UserError::NoSignInPending),
        }
    }
}

/// A sign-in completed at `now`: `session` opens. `method` says how, when not with the
/// password here.
fn signed_in(session: NewSession, now: DateTime<Utc>, method: Option<String>) -> Vec<UserEvent> {
    vec![
        UserEvent::LoginSucceeded { method },
        UserEvent::SessionStarted {
            id_hash: session.id_hash,
            expires_at: session.expires_at,
            started_at: Some(now),
        },
    ]
}

impl cqrs_es::Aggregate for User {
    const TYPE: &'static str = "User";
    type Command = UserCommand;
    type Event = UserEvent;
    type Error = UserError;
    type Services = Services;

    async fn handle(
        &mut self,
        command: Self::Command,
        services: &Self::Services,
        sink: &cqrs_es::event_sink::EventSink<Self>,
    ) -> Result<(), Self::Error> {
        let now = services.now();
        // An erased account changes no more. A sign-in attempt is still recorded (and fails:
        // the account is disabled), and the name stays taken.
        let still_answered = matches!(
            command,
            UserCommand::RecordLogin { .. }
                | UserCommand::SignInElsewhere { .. }
                | UserCommand::Register { .. }
                | UserCommand::Import { .. }
        );
        if !still_answered && self.registered.as_ref().is_some_and(|u| u.erased) {
            return Err(UserError::Erased);
        }
        let events = match command {
            UserCommand::Register {
                username,
                password,
                profile,
                roles,
            } => {
                if self.registered.is_some() {
                    return Err(UserError::UsernameTaken);
                }
                vec![UserEvent::UserRegistered {
                    password: PasswordRecord::Credential(
                        services.keep_password(&username, &password).await?,
                    ),
                    username,
                    profile,
                    roles,
                }]
            }
            UserCommand::Import {
                username,
                password_hash,
                profile,
                roles,
            } => {
                if self.registered.is_some() {
                    return Err(UserError::UsernameTaken);
                }
                vec![UserEvent::UserRegistered {
                    password: PasswordRecord::Credential(
                        services
                            .keep_password_hash(&username, &password_hash)
                            .await?,
                    ),
                    username,
                    profile,
                    roles,
                }]
            }
            UserCommand::UpdateProfile { profile } => {
                if self.existing()?.profile == profile {
                    return Ok(());
                }
                vec![UserEvent::ProfileUpdated { profile }]
            }
            UserCommand::ChangePassword { password } => {
                let user = self.existing()?;
                let mut events = vec![UserEvent::PasswordChanged {
                    password: PasswordRecord::Credential(
                        services.keep_password(&user.username, &password).await?,
                    ),
                }];
                // Whoever held a session may have held it with the old password.
                events.extend(user.end_sessions(now, SessionEnd::PasswordChanged));
                events
            }
            UserCommand::SetRoles { roles } => {
                if self.existing()?.roles == roles {
                    return Ok(());
                }
                vec![UserEvent::RolesSet { roles }]
            }
            UserCommand::Disable => {
                let user = self.existing()?;
                if user.disabled {
                    return Err(UserError::AlreadyDisabled);
                }
                let mut events = vec![UserEvent::UserDisabled {}];
                events.extend(user.end_sessions(now, SessionEnd::UserDisabled));
                events
            }
            UserCommand::Erase { reason } => {
                let user = self.existing()?;
                if let Some(reason) = &reason {
                    crate::text::check(reason, crate::text::MAX_LINE_CHARS)
                        .map_err(|why| UserError::InvalidReason(why.to_string()))?;
                }
                let mut events = vec![UserEvent::UserErased { reason }];
                events.extend(user.end_sessions(now, SessionEnd::UserErased));
                events
            }
            UserCommand::Enable => {
                if !self.existing()?.disabled {
                    return Err(UserError::AlreadyEnabled);
                }
                vec![UserEvent::UserEnabled {}]
            }
            UserCommand::RecordLogin {
                password,
                session,
                two_factor_policy,
            } => match self.registered.as_ref() {
                None => {
                    services.spend_a_verification(&password).await;
                    vec![UserEvent::LoginFailed {
                        reason: LoginFailure::UnknownUser,
                    }]
                }
                Some(user) if user.disabled => vec![UserEvent::LoginFailed {
                    reason: LoginFailure::UserDisabled,
                }],
                Some(user) => {
                    Self::verify(services, &password, user, session, &two_factor_policy).await
                }
            },
            UserCommand::SignInElsewhere {
                method,
                session,
                two_factor_policy,
            } => {
                let user = self.existing()?;
                if user.disabled {
                    vec![UserEvent::LoginFailed {
                        reason: LoginFailure::UserDisabled,
                    }]
                } else if user.two_factor.is_some() || two_factor_policy.requires(&user.roles) {
                    vec![UserEvent::VouchedElsewhere {
                        method,
                        second_factor_until: now + SECOND_FACTOR_WINDOW,
                        must_enrol: user.two_factor.is_none(),
                    }]
                } else {
                    signed_in(session, now, Some(method))
                }
            }
            UserCommand::RecordThrottled {
                retry_after_seconds,
            } => {
                self.existing()?;
                vec![UserEvent::LoginThrottled {
                    retry_after_seconds,
                }]
            }
            UserCommand::EndSession { id_hash } => {
                let open = self
                    .existing()?
                    .sessions
                    .get(&id_hash)
                    .is_some_and(|expires_at| *expires_at > now);
                if !open {
                    return Ok(());
                }
                vec![UserEvent::SessionEnded {
                    id_hash,
                    reason: SessionEnd::SignedOut,
                }]
            }
            UserCommand::CompleteSignIn { proof, session } => {
                let user = self.awaiting(now)?;
                let Some(two_factor) = &user.two_factor else {
                    return Err(UserError::NotEnrolled);
                };
                let mut events = match proof {
                    SecondFactorProof::Totp { step } if step <= two_factor.last_step => {
                        vec![UserEvent::SecondFactorFailed {
                            reason: SecondFactorFailure::Replayed,
                        }]
                    }
                    SecondFactorProof::Totp { step } => {
                        vec![UserEvent::SecondFactorPassed { step }]
                    }
                    SecondFactorProof::Other(hash) if two_factor.recovery_codes.contains(&hash) => {
                        vec![UserEvent::RecoveryCodeUsed { code_hash: hash }]
                    }
                    SecondFactorProof::Other(_) => vec![UserEvent::SecondFactorFailed {
                        reason: SecondFactorFailure::WrongCode,
                    }],
                };
                if !matches!(events[0], UserEvent::SecondFactorFailed { .. }) {
                    events.extend(signed_in(session, now, user.awaiting_method.clone()));
                }
                events
            }
            UserCommand::EnrolTwoFactor {
                recovery_codes,
                confirmed_step,
                session,
            } => {
                let user = self.existing()?;
                if user.two_factor.is_some() {
                    return Err(UserError::AlreadyEnrolled);
                }
                // Enrolling to finish a sign-in needs its first factor verified before it.
                let method = match session {
                    Some(_) => self.awaiting(now)?.awaiting_method.clone(),
                    None => None,
                };
                let mut events = vec![UserEvent::TwoFactorEnrolled {
                    recovery_codes,
                    confirmed_step,
                }];
                if let Some(session) = session {
                    events.extend(signed_in(session, now, method));
                }
                events
            }
            UserCommand::RemoveTwoFactor { reason } => {
                if self.existing()?.two_factor.is_none() {
                    return Ok(());
                }
                vec![UserEvent::TwoFactorRemoved { reason }]
            }
            UserCommand::EndOtherSessions { keep } => self
                .existing()?
                .end_sessions(now, SessionEnd::SignedOutElsewhere)
                .into_iter()
                .filter(
                    |e| !matches!(e, UserEvent::SessionEnded { id_hash, .. } if *id_hash == keep),
                )
                .collect(),
        };
        for event in events {
            sink.write(event, self).await;
        }
        Ok(())
    }

    fn apply(&mut self, event: Self::Event) {
        if let UserEvent::UserRegistered {
            username,
            password,
            profile,
            roles,
        } = event
        {
            self.registered = Some(RegisteredUser {
                username,
                password,
                profile,
                roles,
                disabled: false,
                erased: false,
                sessions: BTreeMap::new(),
                two_factor: None,
                awaiting_second_factor_until: None,
                awaiting_method: None,
            });
            return;
        }
        let Some(user) = self.registered.as_mut() else {
            return;
        };
        match event {
            UserEvent::UserRegistered { .. } => {}
            UserEvent::ProfileUpdated { profile } => user.profile = profile,
            UserEvent::PasswordChanged { password } => user.password = password,
            UserEvent::RolesSet { roles } => user.roles = roles,
            UserEvent::UserDisabled {} => user.disabled = true,
            UserEvent::UserErased { .. } => {
                user.erased = true;
                user.disabled = true;
                user.profile = UserProfile::default();
                user.two_factor = None;
                user.awaiting_second_factor_until = None;
                user.awaiting_method = None;
            }
            UserEvent::UserEnabled {} => user.disabled = false,
            UserEvent::SessionStarted {
                id_hash,
                expires_at,
                started_at,
            } => {
                // Those that ran out before this one started are of no more use.
                let started = started_at.unwrap_or(expires_at - SESSION_LIFETIME);
                user.sessions.retain(|_, until| *until > started);
                user.sessions.insert(id_hash, expires_at);
            }
            UserEvent::SessionEnded { id_hash, .. } => {
                user.sessions.remove(&id_hash);
            }
            UserEvent::PasswordVerified {
                second_factor_until,
                ..
            } => {
                user.awaiting_second_factor_until = Some(second_factor_until);
                user.awaiting_method = None;
            }
            UserEvent::VouchedElsewhere {
                method,
                second_factor_until,
                ..
            } => {
                user.awaiting_second_factor_until = Some(second_factor_until);
                user.awaiting_method = Some(method);
            }
            UserEvent::LoginSucceeded { .. } => {
                user.awaiting_second_factor_until = None;
                user.awaiting_method = None;
            }
            UserEvent::SecondFactorPassed { step } => {
                if let Some(two_factor) = user.two_factor.as_mut() {
                    two_factor.last_step = step;
                }
            }
            UserEvent::RecoveryCodeUsed { code_hash } => {
                if let Some(two_factor) = user.two_factor.as_mut() {
                    two_factor.recovery_codes.remove(&code_hash);
                }
            }
            UserEvent::TwoFactorEnrolled {
                recovery_codes,
                confirmed_step,
            } => {
                user.two_factor = Some(TwoFactor {
                    recovery_codes,
                    last_step: confirmed_step,
                })
            }
            UserEvent::TwoFactorRemoved { .. } => user.two_factor = None,
            UserEvent::LoginFailed { .. }
            | UserEvent::LoginThrottled { .. }
            | UserEvent::SecondFactorFailed { .. } => {}
        }
    }
}
