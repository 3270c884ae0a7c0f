//! Given/when/then: one test per rule of the `Client` aggregate.

use std::collections::BTreeSet;

use cqrs_es::test::TestFramework;

use super::*;
use crate::oauth::{GrantType, RedirectUri, ResponseType, Scopes, TokenEndpointAuthMethod};
use crate::testing::services;

type ClientTest = TestFramework<Client>;

fn hash(byte: char) -> SecretHash {
    SecretHash::from_hex(&byte.to_string().repeat(64)).unwrap()
}

fn web_app() -> ClientMetadata {
    ClientMetadata {
        name: "Web App".into(),
        redirect_uris: vec![RedirectUri::parse("https://app.example/cb").unwrap()],
        default_redirect_uri: None,
        scopes: Scopes::parse("openid profile").unwrap(),
        grant_types: BTreeSet::from([GrantType::AuthorizationCode, GrantType::RefreshToken]),
        response_types: BTreeSet::from([ResponseType::Code]),
        token_endpoint_auth_method: TokenEndpointAuthMethod::ClientSecretBasic,
        skip_authorization: false,
        require_pkce: false,
        allowed_roles: BTreeSet::new(),
        client_uri: None,
        logo_uri: None,
        tos_uri: None,
        policy_uri: None,
        contacts: vec![],
        software_id: None,
        software_version: None,
        id_token_signed_response_alg: None,
        frappe_claims: false,
        post_logout_redirect_uris: vec![],
        backchannel_logout_uri: None,
        backchannel_logout_session_required: false,
        token_exchange_subject_clients: BTreeSet::new(),
        token_exchange_subject_issuers: BTreeSet::new(),
        token_exchange_actor_clients: BTreeSet::new(),
    }
}

fn public_app() -> ClientMetadata {
    ClientMetadata {
        token_endpoint_auth_method: TokenEndpointAuthMethod::None,
        ..web_app()
    }
}

fn register(metadata: ClientMetadata, secret_hash: Option<SecretHash>) -> ClientCommand {
    ClientCommand::Register {
        client_id: ClientId::parse("c1").unwrap(),
        metadata,
        secret_hash,
        registered_via: RegistrationSource::Admin,
        registration_access_token_hash: None,
    }
}

fn registered() -> ClientEvent {
    ClientEvent::ClientRegistered {
        client_id: "c1".into(),
        metadata: web_app(),
        secret_hash: Some(hash('a')),
        registered_via: RegistrationSource::Admin,
        registration_access_token_hash: None,
    }
}

fn invalid(field: &str) -> impl Fn(ClientError) -> bool + '_ {
    move |error| matches!(error, ClientError::InvalidMetadata { field: f, .. } if f == field)
}

fn expect_refusal(
    given: Vec<ClientEvent>,
    command: ClientCommand,
    check: impl Fn(ClientError) -> bool,
) {
    let result = ClientTest::with(services())
        .given(given)
        .when(command)
        .inspect_result();
    match result {
        Err(error) => assert!(check(error.clone()), "unexpected refusal: {error:?}"),
        Ok(events) => panic!("expected a refusal, got {events:?}"),
    }
}

#[test]
fn a_confidential_client_is_registered_with_its_secret_hash() {
    ClientTest::with(services())
        .given_no_previous_events()
        .when(register(web_app(), Some(hash('a'))))
        .then_expect_events(vec![registered()]);
}

#[test]
fn a_public_client_is_registered_without_a_secret() {
    ClientTest::with(services())
        .given_no_previous_events()
        .when(register(public_app(), None))
        .then_expect_events(vec![ClientEvent::ClientRegistered {
            client_id: "c1".into(),
            metadata: public_app(),
            secret_hash: None,
            registered_via: RegistrationSource::Admin,
            registration_access_token_hash: None,
        }]);
}

#[test]
fn a_public_client_cannot_be_given_a_secret() {
    ClientTest::with(services())
        .given_no_previous_events()
        .when(register(public_app(), Some(hash('a'))))
        .then_expect_error(ClientError::PublicClientHasNoSecret);
}

#[test]
fn a_confidential_client_needs_a_secret() {
    ClientTest::with(services())
        .given_no_previous_events()
        .when(register(web_app(), None))
        .then_expect_error(ClientError::SecretRequired);
}

#[test]
fn a_client_id_is_registered_only_once() {
    ClientTest::with(services())
        .given(vec![registered()])
        .when(register(web_app(), Some(hash('b'))))
        .then_expect_error(ClientError::AlreadyRegistered);
}

#[test]
fn a_deleted_client_id_is_never_reused() {
    ClientTest::with(services())
        .given(vec![registered(), ClientEvent::ClientDeleted {}])
        .when(register(web_app(), Some(hash('b'))))
        .then_expect_error(ClientError::AlreadyRegistered);
}

#[test]
fn the_code_grant_needs_a_redirect_uri() {
    let metadata = ClientMetadata {
        redirect_uris: vec![],
        ..web_app()
    };
    expect_refusal(
        vec![],
        register(metadata, Some(hash('a'))),
        invalid("redirect_uris"),
    );
}

#[test]
fn the_default_redirect_uri_must_be_registered() {
    let metadata = ClientMetadata {
        default_redirect_uri: Some(RedirectUri::parse("https://other.example/cb").unwrap()),
        ..web_app()
    };
    expect_refusal(
        vec![],
        register(metadata, Some(hash('a'))),
        invalid("default_redirect_uri"),
    );
}

#[test]
fn response_types_must_match_grant_types() {
    let metadata = ClientMetadata {
        response_types: BTreeSet::from([ResponseType::Code, ResponseType::Token]),
        ..web_app()
    };
    expect_refusal(
        vec![],
        register(metadata, Some(hash('a'))),
        invalid("response_types"),
    );
}

#[test]
fn a_public_client_cannot_use_client_credentials() {
    let metadata = ClientMetadata {
        grant_types: BTreeSet::from([GrantType::AuthorizationCode, GrantType::ClientCredentials]),
        ..public_app()
    };
    expect_refusal(vec![], register(metadata, None), invalid("grant_types"));
}

#[test]
fn a_client_needs_a_name() {
    let metadata = ClientMetadata {
        name: "  ".into(),
        ..web_app()
    };
    expect_refusal(
        vec![],
        register(metadata, Some(hash('a'))),
        invalid("client_name"),
    );
}

#[test]
fn metadata_can_be_updated() {
    let metadata = ClientMetadata {
        name: "Renamed".into(),
        ..web_app()
    };
    ClientTest::with(services())
        .given(vec![registered()])
        .when(ClientCommand::Update {
            metadata: metadata.clone(),
        })
        .then_expect_events(vec![ClientEvent::ClientUpdated { metadata }]);
}

#[test]
fn an_update_that_changes_nothing_records_nothing() {
    ClientTest::with(services())
        .given(vec![registered()])
        .when(ClientCommand::Update {
            metadata: web_app(),
        })
        .then_expect_events(vec![]);
}

#[test]
fn an_update_cannot_turn_a_confidential_client_public() {
    expect_refusal(
        vec![registered()],
        ClientCommand::Update {
            metadata: public_app(),
        },
        invalid("token_endpoint_auth_method"),
    );
}

#[test]
fn a_deleted_client_cannot_be_updated() {
    ClientTest::with(services())
        .given(vec![registered(), ClientEvent::ClientDeleted {}])
        .when(ClientCommand::Update {
            metadata: web_app(),
        })
        .then_expect_error(ClientError::Deleted);
}

#[test]
fn an_unknown_client_cannot_be_updated() {
    ClientTest::with(services())
        .given_no_previous_events()
        .when(ClientCommand::Update {
            metadata: web_app(),
        })
        .then_expect_error(ClientError::NotRegistered);
}

#[test]
fn rotating_the_secret_records_only_the_new_hash() {
    ClientTest::with(services())
        .given(vec![registered()])
        .when(ClientCommand::RotateSecret {
            secret_hash: hash('b'),
            revoke_tokens: true,
        })
        .then_expect_events(vec![ClientEvent::ClientSecretRotated {
            secret_hash: hash('b'),
            revoke_tokens: true,
        }]);
}

#[test]
fn a_public_client_has_no_secret_to_rotate() {
    ClientTest::with(services())
        .given(vec![ClientEvent::ClientRegistered {
            client_id: "c1".into(),
            metadata: public_app(),
            secret_hash: None,
            registered_via: RegistrationSource::Admin,
            registration_access_token_hash: None,
        }])
        .when(ClientCommand::RotateSecret {
            secret_hash: hash('b'),
            revoke_tokens: false,
        })
        .then_expect_error(ClientError::PublicClientHasNoSecret);
}

#[test]
fn a_client_can_be_disabled_and_enabled_again() {
    ClientTest::with(services())
        .given(vec![registered()])
        .when(ClientCommand::Disable {
            reason: Some("leak".into()),
        })
        .then_expect_events(vec![ClientEvent::ClientDisabled {
            reason: Some("leak".into()),
        }]);
    ClientTest::with(services())
        .given(vec![
            registered(),
            ClientEvent::ClientDisabled { reason: None },
        ])
        .when(ClientCommand::Enable)
        .then_expect_events(vec![ClientEvent::ClientEnabled {}]);
}

#[test]
fn a_disabled_client_cannot_be_disabled_again() {
    ClientTest::with(services())
        .given(vec![
            registered(),
            ClientEvent::ClientDisabled { reason: None },
        ])
        .when(ClientCommand::Disable { reason: None })
        .then_expect_error(ClientError::AlreadyDisabled);
}

#[test]
fn an_active_client_cannot_be_enabled() {
    ClientTest::with(services())
        .given(vec![registered()])
        .when(ClientCommand::Enable)
        .then_expect_error(ClientError::AlreadyEnabled);
}

#[test]
fn a_deleted_client_cannot_be_enabled_or_deleted_again() {
    let deleted = vec![registered(), ClientEvent::ClientDeleted {}];
    ClientTest::with(services())
        .given(deleted.clone())
        .when(ClientCommand::Enable)
        .then_expect_error(ClientError::Deleted);
    ClientTest::with(services())
        .given(deleted)
        .when(ClientCommand::Delete)
        .then_expect_error(ClientError::Deleted);
}

#[test]
fn a_disabled_client_can_be_deleted() {
    ClientTest::with(services())
        .given(vec![
            registered(),
            ClientEvent::ClientDisabled { reason: None },
        ])
        .when(ClientCommand::Delete)
        .then_expect_events(vec![ClientEvent::ClientDeleted {}]);
}

#[test]
fn a_public_client_cannot_use_token_exchange() {
    let mut public = public_app();
    public.grant_types.insert(GrantType::TokenExchange);
    assert!(public.check().is_err());
    let mut confidential = web_app();
    confidential.grant_types.insert(GrantType::TokenExchange);
    confidential
        .token_exchange_actor_clients
        .insert("agent".into());
    assert_eq!(confidential.check(), Ok(()));
}
