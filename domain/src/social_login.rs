//! Signing in through another provider (Frappe's Social Login Keys).
//!
//! - [`SocialLogin`]: a provider people may sign in through: an OpenID provider (its ID
//!   tokens verified against its keys), another authledger or Frappe server (the same, found
//!   from its base URL), or a plain OAuth 2 provider whose user-info endpoint names the
//!   person in one JSON property (as GitHub's does). Its id is the slug of its name; its
//!   client secret is sealed outside the log, its events carry a SHA-256 of it.
//! - [`ExternalIdentity`]: one person at one provider (`{provider}:{subject}`) linked to a
//!   local user. Being an aggregate of its own, one identity can be linked to one user only,
//!   whatever signs in at the same moment: the event store's key decides.

use serde::{Deserialize, Serialize};

use crate::connected_app::{AppId, ConfigRejected, ProviderEndpoints};
use crate::oauth::Scopes;
use crate::secret::SecretHash;
use crate::services::Services;
use crate::text::{self, MAX_LINE_CHARS};
use crate::user::Username;

/// How the provider says who signed in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Identification {
    /// The ID token's `sub`, verified against the provider's keys (`iss`, `aud`, `exp`,
    /// `nonce`).
    OpenId,
    /// A property of the user-info endpoint's JSON answer (Frappe's `user_id_property`).
    UserInfo { property: String },
}

/// Whether a first sign-in by someone with no account here creates one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SignUps {
    Allow,
    Deny,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SocialLoginConfig {
    pub name: String,
    pub endpoints: ProviderEndpoints,
    pub identification: Identification,
    pub client_id: String,
    pub scopes: Scopes,
    pub sign_ups: SignUps,
    /// Whether an email this provider gives is taken as verified even without
    /// `email_verified` (an organisation's own identity provider).
    pub trusted_emails: bool,
    pub enabled: bool,
    /// An https image shown on its "Sign in with" button.
    #[serde(default)]
    pub icon: Option<crate::oauth::WebUrl>,
    /// Whether its issuer is listed among the protected resource's `authorization_servers`
    /// (RFC 9728) when the setting `show_social_login_key_as_authorization_server` is on
    /// (Frappe's `show_in_resource_metadata`). Providers registered before it existed are.
    #[serde(default = "listed")]
    pub show_in_resource_metadata: bool,
    /// Whether its signed JWTs (ID tokens or JWT access tokens, issued to this server) may be
    /// presented as the subject of a token exchange (RFC 8693) by the clients that name its
    /// issuer. The person they name must be linked to an account here.
    #[serde(default)]
    pub token_exchange: bool,
}

fn listed() -> bool {
    true
}

impl SocialLoginConfig {
    pub fn check(&self) -> Result<(), ConfigRejected> {
        text::check(&self.name, MAX_LINE_CHARS).map_err(ConfigRejected::Name)?;
        if self.client_id.trim().is_empty() {
            return Err(ConfigRejected::NoClientId);
        }
        text::check(&self.client_id, MAX_LINE_CHARS).map_err(ConfigRejected::ClientId)?;
        if let Some(issuer) = &self.endpoints.issuer {
            text::check(issuer, text::MAX_URI_CHARS).map_err(ConfigRejected::Issuer)?;
        }
        if let Identification::UserInfo { property } = &self.identification {
            text::check(property, 100).map_err(|e| ConfigRejected::Param(property.clone(), e))?;
        }
        let verifiable = self.identification == Identification::OpenId
            && self.endpoints.issuer.is_some()
            && self.endpoints.jwks.is_some();
        if self.token_exchange && !verifiable {
            return Err(ConfigRejected::ExchangeNeedsKeys);
        }
        Ok(())
    }
}

#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
pub struct SocialLogin {
    provider: Option<RegisteredProvider>,
    deleted: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RegisteredProvider {
    pub id: AppId,
    pub config: SocialLoginConfig,
    pub client_secret: SecretHash,
}

impl SocialLogin {
    pub fn registered(&self) -> Option<&RegisteredProvider> {
        self.provider.as_ref().filter(|_| !self.deleted)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum SocialLoginCommand {
    Create {
        id: AppId,
        config: SocialLoginConfig,
        client_secret: SecretHash,
    },
    Update {
        config: SocialLoginConfig,
    },
    Delete,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, strum::VariantNames)]
pub enum SocialLoginEvent {
    SocialLoginCreated {
        id: AppId,
        config: SocialLoginConfig,
        client_secret: SecretHash,
    },
    SocialLoginUpdated {
        config: SocialLoginConfig,
    },
    SocialLoginDeleted,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SocialLoginError {
    #[error("a social login provider with this id exists (or existed: ids are not reused)")]
    Exists,
    #[error("no such social login provider")]
    NotFound,
    #[error(transparent)]
    Config(#[from] ConfigRejected),
}

impl cqrs_es::DomainEvent for SocialLoginEvent {
    fn event_type(&self) -> String {
        match self {
            SocialLoginEvent::SocialLoginCreated { .. } => "SocialLoginCreated",
            SocialLoginEvent::SocialLoginUpdated { .. } => "SocialLoginUpdated",
            SocialLoginEvent::SocialLoginDeleted => "SocialLoginDeleted",
        }
        .to_owned()
    }
    fn event_version(&self) -> String {
        "1".to_owned()
    }
}

impl cqrs_es::Aggregate for SocialLogin {
    const TYPE: &'static str = "SocialLogin";
    type Command = SocialLoginCommand;
    type Event = SocialLoginEvent;
    type Error = SocialLoginError;
    type Services = Services;

    async fn handle(
        &mut self,
        command: Self::Command,
        _services: &Self::Services,
        sink: &cqrs_es::event_sink::EventSink<Self>,
    ) -> Result<(), Self::Error> {
        let existing = || self.registered().ok_or(SocialLoginError::NotFound);
        let event = match command {
            SocialLoginCommand::Create {
                id,
                config,
                client_secret,
            } => {
                if self.provider.is_some() {
                    return Err(SocialLoginError::Exists);
                }
                config.check()?;
                SocialLoginEvent::SocialLoginCreated {
                    id,
                    config,
                    client_secret,
                }
            }
            SocialLoginCommand::Update { config } => {
                if existing()?.config == config {
                    return Ok(());
                }
                config.check()?;
                SocialLoginEvent::SocialLoginUpdated { config }
            }
            SocialLoginCommand::Delete => {
                existing()?;
                SocialLoginEvent::SocialLoginDeleted
            }
        };
        sink.write(event, self).await;
        Ok(())
    }

    fn apply(&mut self, event: Self::Event) {
        match event {
            SocialLoginEvent::SocialLoginCreated {
                id,
                config,
                client_secret,
            } => {
                self.provider = Some(RegisteredProvider {
                    id,
                    config,
                    client_secret,
                })
            }
            SocialLoginEvent::SocialLoginUpdated { config } => {
                if let Some(provider) = &mut self.provider {
                    provider.config = config;
                }
            }
            SocialLoginEvent::SocialLoginDeleted => self.deleted = true,
        }
    }
}

/// `{provider}:{subject}`; provider ids contain no `:`.
pub fn identity_id(provider: &AppId, subject: &str) -> String {
    format!("{provider}:{subject}")
}

/// The longest subject kept (OIDC Core §2: at most 255 ASCII characters).
pub const MAX_SUBJECT_CHARS: usize = 255;

#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExternalIdentity {
    linked_to: Option<Username>,
}

impl ExternalIdentity {
    pub fn user(&self) -> Option<&Username> {
        self.linked_to.as_ref()
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum IdentityCommand {
    Link {
        provider: AppId,
        subject: String,
        user: Username,
    },
    Unlink,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, strum::VariantNames)]
pub enum IdentityEvent {
    IdentityLinked {
        provider: AppId,
        subject: String,
        user: Username,
    },
    IdentityUnlinked {
        user: Username,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdentityError {
    #[error("this identity is linked to another account")]
    LinkedElsewhere,
    #[error("this identity is not linked")]
    NotLinked,
    #[error("the provider's subject is empty, too long or not printable")]
    BadSubject,
}

impl cqrs_es::DomainEvent for IdentityEvent {
    fn event_type(&self) -> String {
        match self {
            IdentityEvent::IdentityLinked { .. } => "IdentityLinked",
            IdentityEvent::IdentityUnlinked { .. } => "IdentityUnlinked",
        }
        .to_owned()
    }
    fn event_version(&self) -> String {
        "1".to_owned()
    }
}

impl cqrs_es::Aggregate for ExternalIdentity {
    const TYPE: &'static str = "ExternalIdentity";
    type Command = IdentityCommand;
    type Event = IdentityEvent;
    type Error = IdentityError;
    type Services = Services;

    async fn handle(
        &mut self,
        command: Self::Command,
        _services: &Self::Services,
        sink: &cqrs_es::event_sink::EventSink<Self>,
    ) -> Result<(), Self::Error> {
        let event = match command {
            IdentityCommand::Link {
                provider,
                subject,
                user,
            } => {
                match &self.linked_to {
                    Some(linked) if *linked == user => return Ok(()),
                    Some(_) => return Err(IdentityError::LinkedElsewhere),
                    None => {}
                }
                if subject.is_empty() || text::check(&subject, MAX_SUBJECT_CHARS).is_err() {
                    return Err(IdentityError::BadSubject);
                }
                IdentityEvent::IdentityLinked {
                    provider,
                    subject,
                    user,
                }
            }
            IdentityCommand::Unlink => match &self.linked_to {
                Some(user) => IdentityEvent::IdentityUnlinked { user: user.clone() },
                None => return Err(IdentityError::NotLinked),
            },
        };
        sink.write(event, self).await;
        Ok(())
    }

    fn apply(&mut self, event: Self::Event) {
        self.linked_to = match event {
            IdentityEvent::IdentityLinked { user, .. } => Some(user),
            IdentityEvent::IdentityUnlinked { .. } => None,
        };
    }
}

#[cfg(test)]
mod tests {
    use cqrs_es::test::TestFramework;

    use super::*;
    use crate::testing::services;

    fn linked(user: &str) -> IdentityEvent {
        IdentityEvent::IdentityLinked {
            provider: AppId::slug("Primary").unwrap(),
            subject: "42".into(),
            user: Username::parse(user).unwrap(),
        }
    }

    fn link(user: &str) -> IdentityCommand {
        IdentityCommand::Link {
            provider: AppId::slug("Primary").unwrap(),
            subject: "42".into(),
            user: Username::parse(user).unwrap(),
        }
    }

    #[test]
    fn an_identity_is_linked_to_one_account_only() {
        TestFramework::<ExternalIdentity>::with(services())
            .given(vec![linked("alice")])
            .when(link("mallory"))
            .then_expect_error(IdentityError::LinkedElsewhere);
        TestFramework::<ExternalIdentity>::with(services())
            .given(vec![linked("alice")])
            .when(link("alice"))
            .then_expect_events(vec![]);
        TestFramework::<ExternalIdentity>::with(services())
            .given(vec![
                linked("alice"),
                IdentityEvent::IdentityUnlinked {
                    user: Username::parse("alice").unwrap(),
                },
            ])
            .when(link("bob"))
            .then_expect_events(vec![linked("bob")]);
    }

    #[test]
    fn a_subject_with_a_line_break_is_refused() {
        TestFramework::<ExternalIdentity>::with(services())
            .given_no_previous_events()
            .when(IdentityCommand::Link {
                provider: AppId::slug("Primary").unwrap(),
                subject: "42\nforged".into(),
                user: Username::parse("alice").unwrap(),
            })
            .then_expect_error(IdentityError::BadSubject);
    }
}
