use cqrs_es::test::TestFramework;

use super::*;
use crate::testing::services;

fn alice() -> Username {
    Username::parse("alice").unwrap()
}

fn scopes(raw: &str) -> Scopes {
    Scopes::parse(raw).unwrap()
}

fn granted(raw: &str) -> ConsentEvent {
    ConsentEvent::ConsentGranted {
        user: alice(),
        client_id: "web".into(),
        scopes: scopes(raw),
    }
}

fn grant(raw: &str) -> ConsentCommand {
    ConsentCommand::Grant {
        user: alice(),
        client_id: "web".into(),
        scopes: scopes(raw),
    }
}

#[test]
fn allowing_records_the_granted_scopes() {
    TestFramework::<Consent>::with(services())
        .given_no_previous_events()
        .when(grant("openid profile"))
        .then_expect_events(vec![granted("openid profile")]);
}

#[test]
fn a_consent_that_already_covers_the_scopes_records_nothing() {
    TestFramework::<Consent>::with(services())
        .given(vec![granted("openid profile email")])
        .when(grant("openid email"))
        .then_expect_events(vec![]);
}

#[test]
fn more_scopes_extend_the_consent() {
    TestFramework::<Consent>::with(services())
        .given(vec![granted("openid")])
        .when(grant("email"))
        .then_expect_events(vec![granted("email openid")]);
}

#[test]
fn a_revoked_consent_covers_nothing_and_is_granted_anew() {
    let mut consent = Consent::default();
    cqrs_es::Aggregate::apply(&mut consent, granted("openid"));
    assert!(consent.covers(&scopes("openid")));
    cqrs_es::Aggregate::apply(
        &mut consent,
        ConsentEvent::ConsentRevoked {
            user: alice(),
            client_id: "web".into(),
        },
    );
    assert!(!consent.covers(&scopes("openid")));
    TestFramework::<Consent>::with(services())
        .given(vec![
            granted("openid profile"),
            ConsentEvent::ConsentRevoked {
                user: alice(),
                client_id: "web".into(),
            },
        ])
        .when(grant("openid"))
        .then_expect_events(vec![granted("openid")]);
}

#[test]
fn revoking_needs_a_consent_in_force() {
    TestFramework::<Consent>::with(services())
        .given_no_previous_events()
        .when(ConsentCommand::Revoke {
            user: alice(),
            client_id: "web".into(),
        })
        .then_expect_error(ConsentError::NotGranted);
}
