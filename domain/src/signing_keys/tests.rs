use chrono::{Duration, TimeZone};
use cqrs_es::test::TestFramework;
use serde_json::json;

use super::*;
use crate::testing::services;

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 1, 12, 0, 0).unwrap()
}

fn generated(kid: &str, activate_after: DateTime<Utc>) -> SigningKeysEvent {
    SigningKeysEvent::KeyGenerated {
        kid: kid.into(),
        alg: IdTokenAlg::RS256,
        public_jwk: json!({ "kty": "RSA", "kid": kid, "n": "xyz", "e": "AQAB" }),
        activate_after,
    }
}

fn maintain() -> SigningKeysCommand {
    SigningKeysCommand::Maintain {
        retire_for: Duration::hours(1),
    }
}

#[test]
fn a_new_key_is_published_before_it_signs() {
    TestFramework::<SigningKeys>::with(services())
        .given_no_previous_events()
        .when(SigningKeysCommand::Publish {
            kid: "k1".into(),
            alg: IdTokenAlg::RS256,
            public_jwk: json!({ "kty": "RSA", "kid": "k1", "n": "xyz", "e": "AQAB" }),
            activate_after: now(),
        })
        .then_expect_events(vec![generated("k1", now())]);
}

#[test]
fn private_key_material_never_enters_an_event() {
    TestFramework::<SigningKeys>::with(services())
        .given_no_previous_events()
        .when(SigningKeysCommand::Publish {
            kid: "k1".into(),
            alg: IdTokenAlg::ES256,
            public_jwk: json!({ "kty": "EC", "x": "a", "y": "b", "d": "secret" }),
            activate_after: now(),
        })
        .then_expect_error(SigningKeysError::PrivateMaterial);
}

#[test]
fn a_due_key_becomes_active_and_retires_the_one_it_replaces() {
    TestFramework::<SigningKeys>::with(services())
        .given(vec![
            generated("old", now() - Duration::days(30)),
            SigningKeysEvent::KeyActivated { kid: "old".into() },
            generated("new", now()),
        ])
        .when(maintain())
        .then_expect_events(vec![
            SigningKeysEvent::KeyRetired {
                kid: "old".into(),
                remove_after: now() + Duration::hours(1),
            },
            SigningKeysEvent::KeyActivated { kid: "new".into() },
        ]);
}

#[test]
fn a_key_not_yet_due_stays_published() {
    TestFramework::<SigningKeys>::with(services())
        .given(vec![
            generated("old", now() - Duration::days(30)),
            SigningKeysEvent::KeyActivated { kid: "old".into() },
            generated("new", now() + Duration::seconds(1)),
        ])
        .when(maintain())
        .then_expect_events(vec![]);
}

#[test]
fn a_retired_key_is_removed_once_its_tokens_have_expired() {
    let given = vec![
        generated("old", now() - Duration::days(30)),
        SigningKeysEvent::KeyActivated { kid: "old".into() },
        generated("new", now() - Duration::hours(2)),
        SigningKeysEvent::KeyRetired {
            kid: "old".into(),
            remove_after: now(),
        },
        SigningKeysEvent::KeyActivated { kid: "new".into() },
    ];
    TestFramework::<SigningKeys>::with(services())
        .given(given)
        .when(maintain())
        .then_expect_events(vec![SigningKeysEvent::KeyRemoved { kid: "old".into() }]);
}

#[test]
fn key_ids_are_unique() {
    TestFramework::<SigningKeys>::with(services())
        .given(vec![generated("k1", now())])
        .when(SigningKeysCommand::Publish {
            kid: "k1".into(),
            alg: IdTokenAlg::RS256,
            public_jwk: json!({}),
            activate_after: now(),
        })
        .then_expect_error(SigningKeysError::DuplicateKid("k1".into()));
}
