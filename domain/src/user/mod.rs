//! The `User` aggregate: a person who signs in. Its aggregate id is the normalised username
//! ([`Username`]), so the event store's primary key (type, id, sequence) is what keeps two
//! registrations of one name apart: the second one conflicts in the store itself.

mod command;
mod error;
mod event;
mod profile;
#[cfg(test)]
mod tests;

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

pub use command::UserCommand;
pub use error::UserError;
pub use event::{LoginFailure, UserEvent};
pub use profile::{Email, ProfileRejected, Role, UserProfile, Username};

use crate::secret::PasswordHash;
use crate::services::Services;

#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
pub struct User {
    registered: Option<RegisteredUser>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RegisteredUser {
    pub username: Username,
    pub password_hash: PasswordHash,
    pub profile: UserProfile,
    pub roles: BTreeSet<Role>,
    pub disabled: bool,
}

impl User {
    pub fn registered(&self) -> Option<&RegisteredUser> {
        self.registered.as_ref()
    }

    fn existing(&self) -> Result<&RegisteredUser, UserError> {
        self.registered.as_ref().ok_or(UserError::NotRegistered)
    }
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
        let event = match command {
            UserCommand::Register {
                username,
                password,
                profile,
                roles,
            } => {
                if self.registered.is_some() {
                    return Err(UserError::UsernameTaken);
                }
                UserEvent::UserRegistered {
                    username,
                    password_hash: services.hash_password(&password).await?,
                    profile,
                    roles,
                }
            }
            UserCommand::UpdateProfile { profile } => {
                if self.existing()?.profile == profile {
                    return Ok(());
                }
                UserEvent::ProfileUpdated { profile }
            }
            UserCommand::ChangePassword { password } => {
                self.existing()?;
                UserEvent::PasswordChanged {
                    password_hash: services.hash_password(&password).await?,
                }
            }
            UserCommand::SetRoles { roles } => {
                if self.existing()?.roles == roles {
                    return Ok(());
                }
                UserEvent::RolesSet { roles }
            }
            UserCommand::Disable => {
                if self.existing()?.disabled {
                    return Err(UserError::AlreadyDisabled);
                }
                UserEvent::UserDisabled {}
            }
            UserCommand::RecordThrottled {
                retry_after_seconds,
            } => {
                self.existing()?;
                UserEvent::LoginThrottled {
                    retry_after_seconds,
                }
            }
            UserCommand::Enable => {
                if !self.existing()?.disabled {
                    return Err(UserError::AlreadyEnabled);
                }
                UserEvent::UserEnabled {}
            }
            UserCommand::RecordLogin { password } => {
                let Some(user) = self.registered.as_ref() else {
                    services.spend_a_verification(&password).await;
                    sink.write(
                        UserEvent::LoginFailed {
                            reason: LoginFailure::UnknownUser,
                        },
                        self,
                    )
                    .await;
                    return Ok(());
                };
                if user.disabled {
                    UserEvent::LoginFailed {
                        reason: LoginFailure::UserDisabled,
                    }
                } else if services
                    .verify_password(&password, &user.password_hash)
                    .await
                {
                    UserEvent::LoginSucceeded {}
                } else {
                    UserEvent::LoginFailed {
                        reason: LoginFailure::WrongPassword,
                    }
                }
            }
        };
        sink.write(event, self).await;
        Ok(())
    }

    fn apply(&mut self, event: Self::Event) {
        if let UserEvent::UserRegistered {
            username,
            password_hash,
            profile,
            roles,
        } = event
        {
            self.registered = Some(RegisteredUser {
                username,
                password_hash,
                profile,
                roles,
                disabled: false,
            });
            return;
        }
        let Some(user) = self.registered.as_mut() else {
            return;
        };
        match event {
            UserEvent::UserRegistered { .. } => {}
            UserEvent::ProfileUpdated { profile } => user.profile = profile,
            UserEvent::PasswordChanged { password_hash } => user.password_hash = password_hash,
            UserEvent::RolesSet { roles } => user.roles = roles,
            UserEvent::UserDisabled {} => user.disabled = true,
            UserEvent::UserEnabled {} => user.disabled = false,
            UserEvent::LoginSucceeded {}
            | UserEvent::LoginFailed { .. }
            | UserEvent::LoginThrottled { .. } => {}
        }
    }
}
