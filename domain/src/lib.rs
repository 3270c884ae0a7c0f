//! # authledger-domain
//!
//! The decisions of the authorization server, with no I/O: every rule here is a pure function
//! of an aggregate's past events and a command. Time, password hashing and anything else that
//! touches the outside world come in through [`services::DomainServices`], so the rules are
//! tested with cqrs-es' given/when/then `TestFramework` and a fixed clock.
//!
//! # Layout
//! - [`client`]: the `Client` aggregate (RFC 6749 §2 client registration, RFC 7591 metadata).
//! - [`user`]: the `User` aggregate; its id is the normalised username, so the event store's
//!   primary key is what keeps usernames unique. It also holds sign-in sessions.
//! - [`grant`]: the `Grant` aggregate, one authorization = one token family: codes, tokens,
//!   refresh rotation, replay detection, revocation (RFC 6749 §4, §6, §10; RFC 9700).
//! - [`consent`]: the `Consent` aggregate, a person's consent for one client.
//! - [`device`]: the device grant's user codes (RFC 8628 §6.1) and the `UserCode` aggregate
//!   that points one code at one pending grant.
//! - [`connected_app`]: authledger as a client of another provider: the `ConnectedApp`
//!   aggregate (its endpoints and registration there) and `AppConnection` (a person's tokens
//!   from it, by hash).
//! - [`settings`]: the `Settings` aggregate (a singleton): the OAuth settings in force.
//! - [`signing_keys`]: the `SigningKeys` aggregate: the lifecycle of the ID token signing
//!   keys (public halves only).
//! - [`social_login`]: signing in through another provider: the `SocialLogin` aggregate
//!   (the provider) and `ExternalIdentity` (one person there, linked to one user here).
//! - [`resource`]: the `Resource` aggregate: a protected API tokens are restricted to
//!   (RFC 8707), and the format of its access tokens (opaque or RFC 9068 JWT).
//! - [`pkce`]: code challenges and verifiers (RFC 7636).
//! - [`oauth`]: parsed protocol values (redirect URIs, scopes, grant and response types):
//!   once parsed, nothing re-checks them.
//! - [`secret`]: hashes of secrets (what events carry) and redacted raw secrets (what they never
//!   carry).
//! - [`metadata`]: who did what, from where and when; attached to every event.
//! - [`services`]: the trait through which the outside world is injected.
//! - [`text`]: the rule for free text that enters an event (printable, bounded).

pub mod client;
pub mod connected_app;
pub mod consent;
pub mod device;
pub mod grant;
pub mod instant;
pub mod metadata;
pub mod oauth;
pub mod pkce;
pub mod resource;
pub mod secret;
pub mod services;
pub mod settings;
pub mod signing_keys;
pub mod social_login;
pub mod text;
pub mod user;

#[cfg(test)]
pub(crate) mod testing;

/// Every event type the log can hold (what `DomainEvent::event_type` answers), for checking
/// a type someone typed (`audit --type`).
pub fn event_types() -> Vec<&'static str> {
    use strum::VariantNames;
    let mut all: Vec<&'static str> = [
        client::ClientEvent::VARIANTS,
        user::UserEvent::VARIANTS,
        grant::GrantEvent::VARIANTS,
        consent::ConsentEvent::VARIANTS,
        settings::SettingsEvent::VARIANTS,
        signing_keys::SigningKeysEvent::VARIANTS,
        connected_app::ConnectedAppEvent::VARIANTS,
        connected_app::connection::ConnectionEvent::VARIANTS,
        social_login::SocialLoginEvent::VARIANTS,
        social_login::IdentityEvent::VARIANTS,
        device::UserCodeEvent::VARIANTS,
        resource::ResourceEvent::VARIANTS,
    ]
    .concat();
    all.sort_unstable();
    all.dedup();
    all
}

#[cfg(test)]
mod event_type_names {
    use cqrs_es::DomainEvent;

    /// The names listed are the names events are stored under, renamed ones included.
    #[test]
    fn the_list_holds_what_events_are_stored_as() {
        let all = super::event_types();
        let stored = [
            crate::user::UserEvent::UserEnabled {}.event_type(),
            crate::user::UserEvent::LoginFailed {
                reason: crate::user::LoginFailure::WrongPassword,
            }
            .event_type(),
            crate::grant::GrantEvent::GrantRevoked {
                reason: crate::grant::RevocationReason::Admin,
            }
            .event_type(),
            "ProviderTokensRefreshed".to_owned(),
        ];
        for name in stored {
            assert!(all.contains(&name.as_str()), "{name} in {all:?}");
        }
        assert!(all.len() > 40, "{all:?}");
    }
}
