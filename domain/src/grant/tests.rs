//! Given/when/then: one test per RFC rule the `Grant` aggregate enforces.

use chrono::{DateTime, Duration, TimeZone, Utc};
use cqrs_es::test::TestFramework;

use super::*;
use crate::pkce::{ChallengeMethod, CodeChallenge, CodeVerifier};
use crate::testing::services;

type GrantTest = TestFramework<Grant>;

/// The fixed clock of `testing::services()`.
fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 1, 12, 0, 0).unwrap()
}

fn hash(c: char) -> SecretHash {
    SecretHash::from_hex(&format!("{:064x}", c as u32)).unwrap()
}

fn alice() -> Username {
    Username::parse("alice").unwrap()
}

fn scopes(raw: &str) -> Scopes {
    Scopes::parse(raw).unwrap()
}

const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

fn code_issued(expires_at: DateTime<Utc>, challenge: bool) -> GrantEvent {
    GrantEvent::CodeIssued {
        client_id: "web".into(),
        user: alice(),
        scopes: scopes("openid profile"),
        redirect_uri: "https://app.example/cb".into(),
        redirect_uri_explicit: true,
        code_challenge: challenge
            .then(|| CodeChallenge::parse(CHALLENGE, ChallengeMethod::S256).unwrap()),
        nonce: Some("n-1".into()),
        auth_time: now() - Duration::minutes(1),
        session: Some(hash('s')),
        amr: vec!["pwd".into()],
        code_hash: hash('c'),
        expires_at,
        resources: vec![],
    }
}

fn fresh_code() -> GrantEvent {
    code_issued(now() + Duration::seconds(60), true)
}

fn tokens(access: char, refresh: Option<char>) -> NewTokens {
    NewTokens {
        access_token_hash: hash(access),
        access_expires_at: now() + Duration::hours(1),
        refresh: refresh.map(|r| NewRefreshToken {
            hash: hash(r),
            expires_at: now() + Duration::days(30),
        }),
        audience: vec![],
    }
}

fn redeem() -> GrantCommand {
    GrantCommand::RedeemCode {
        client_id: "web".into(),
        code_hash: hash('c'),
        redirect_uri: Some("https://app.example/cb".into()),
        code_verifier: Some(CodeVerifier::parse(VERIFIER).unwrap()),
        tokens: tokens('a', Some('r')),
    }
}

fn issued(access: char, refresh: Option<char>) -> GrantEvent {
    tokens(access, refresh).issued(
        GrantType::AuthorizationCode,
        "web".into(),
        Some(alice()),
        scopes("openid profile"),
        Some(now() - Duration::minutes(1)),
    )
}

fn redeemed() -> Vec<GrantEvent> {
    vec![
        fresh_code(),
        GrantEvent::CodeRedeemed {
            code_hash: hash('c'),
        },
        issued('a', Some('r')),
    ]
}

fn refresh(presented: char, scope: Option<&str>) -> GrantCommand {
    GrantCommand::Refresh {
        client_id: "web".into(),
        refresh_token_hash: hash(presented),
        scopes: scope.map(scopes),
        tokens: tokens('b', Some('s')),
    }
}

fn expect_invalid_grant(given: Vec<GrantEvent>, command: GrantCommand, reason: &str) {
    let result = GrantTest::with(services())
        .given(given)
        .when(command)
        .inspect_result();
    match result {
        Err(GrantError::InvalidGrant(message)) => {
            assert!(
                message.contains(reason),
                "{message:?} does not say {reason:?}"
            )
        }
        other => panic!("expected invalid_grant ({reason}), got {other:?}"),
    }
}

#[test]
fn a_code_is_redeemed_once_for_tokens() {
    let mut expected = vec![GrantEvent::CodeRedeemed {
        code_hash: hash('c'),
    }];
    expected.push(issued('a', Some('r')));
    GrantTest::with(services())
        .given(vec![fresh_code()])
        .when(redeem())
        .then_expect_events(expected);
}

#[test]
fn a_second_use_of_a_code_is_recorded_and_revokes_the_family() {
    GrantTest::with(services())
        .given(redeemed())
        .when(redeem())
        .then_expect_events(vec![
            GrantEvent::CodeReplayDetected {
                code_hash: hash('c'),
            },
            GrantEvent::GrantRevoked {
                reason: RevocationReason::CodeReplay,
            },
        ]);
}

#[test]
fn tokens_of_a_replayed_code_are_no_longer_active() {
    let mut grant = Grant::default();
    for event in redeemed() {
        cqrs_es::Aggregate::apply(&mut grant, event);
    }
    assert!(grant.access_token_active(&hash('a'), now()));
    cqrs_es::Aggregate::apply(
        &mut grant,
        GrantEvent::GrantRevoked {
            reason: RevocationReason::CodeReplay,
        },
    );
    assert!(!grant.access_token_active(&hash('a'), now()));
}

#[test]
fn a_code_expires_at_exactly_issued_plus_ttl() {
    expect_invalid_grant(vec![code_issued(now(), true)], redeem(), "expired");
    GrantTest::with(services())
        .given(vec![code_issued(now() + Duration::seconds(1), true)])
        .when(redeem())
        .then_expect_events(vec![
            GrantEvent::CodeRedeemed {
                code_hash: hash('c'),
            },
            issued('a', Some('r')),
        ]);
}

#[test]
fn a_code_is_bound_to_its_client() {
    let command = GrantCommand::RedeemCode {
        client_id: "other".into(),
        code_hash: hash('c'),
        redirect_uri: Some("https://app.example/cb".into()),
        code_verifier: Some(CodeVerifier::parse(VERIFIER).unwrap()),
        tokens: tokens('a', None),
    };
    expect_invalid_grant(vec![fresh_code()], command, "another client");
}

#[test]
fn a_wrong_code_is_invalid() {
    let command = GrantCommand::RedeemCode {
        client_id: "web".into(),
        code_hash: hash('d'),
        redirect_uri: Some("https://app.example/cb".into()),
        code_verifier: Some(CodeVerifier::parse(VERIFIER).unwrap()),
        tokens: tokens('a', None),
    };
    expect_invalid_grant(vec![fresh_code()], command, "invalid");
    expect_invalid_grant(vec![], redeem(), "invalid");
}

#[test]
fn the_redirect_uri_must_repeat_the_one_of_the_authorization_request() {
    let mismatch = GrantCommand::RedeemCode {
        client_id: "web".into(),
        code_hash: hash('c'),
        redirect_uri: Some("https://app.example/other".into()),
        code_verifier: Some(CodeVerifier::parse(VERIFIER).unwrap()),
        tokens: tokens('a', None),
    };
    expect_invalid_grant(vec![fresh_code()], mismatch, "differs");
    let missing = GrantCommand::RedeemCode {
        client_id: "web".into(),
        code_hash: hash('c'),
        redirect_uri: None,
        code_verifier: Some(CodeVerifier::parse(VERIFIER).unwrap()),
        tokens: tokens('a', None),
    };
    expect_invalid_grant(vec![fresh_code()], missing, "required");
}

#[test]
fn pkce_needs_a_verifier_that_matches_the_challenge() {
    let missing = GrantCommand::RedeemCode {
        client_id: "web".into(),
        code_hash: hash('c'),
        redirect_uri: Some("https://app.example/cb".into()),
        code_verifier: None,
        tokens: tokens('a', None),
    };
    expect_invalid_grant(vec![fresh_code()], missing, "code_verifier is required");
    let wrong = GrantCommand::RedeemCode {
        client_id: "web".into(),
        code_hash: hash('c'),
        redirect_uri: Some("https://app.example/cb".into()),
        code_verifier: Some(CodeVerifier::parse(&"x".repeat(43)).unwrap()),
        tokens: tokens('a', None),
    };
    expect_invalid_grant(vec![fresh_code()], wrong, "does not match");
}

#[test]
fn a_verifier_without_a_challenge_is_refused_as_a_downgrade() {
    expect_invalid_grant(
        vec![code_issued(now() + Duration::seconds(60), false)],
        redeem(),
        "no code_challenge",
    );
}

#[test]
fn a_code_of_a_revoked_grant_cannot_be_redeemed() {
    let given = vec![
        fresh_code(),
        GrantEvent::GrantRevoked {
            reason: RevocationReason::Admin,
        },
    ];
    expect_invalid_grant(given, redeem(), "revoked");
}

#[test]
fn refreshing_rotates_the_refresh_token() {
    GrantTest::with(services())
        .given(redeemed())
        .when(refresh('r', None))
        .then_expect_events(vec![GrantEvent::TokensRefreshed {
            previous_refresh_token_hash: hash('r'),
            scopes: scopes("openid profile"),
            access_token_hash: hash('b'),
            access_expires_at: now() + Duration::hours(1),
            refresh_token_hash: hash('s'),
            refresh_expires_at: now() + Duration::days(30),
            audience: vec![],
        }]);
}

#[test]
fn reuse_of_a_rotated_refresh_token_revokes_the_family() {
    let mut given = redeemed();
    given.push(GrantEvent::TokensRefreshed {
        previous_refresh_token_hash: hash('r'),
        scopes: scopes("openid profile"),
        access_token_hash: hash('b'),
        access_expires_at: now() + Duration::hours(1),
        refresh_token_hash: hash('s'),
        refresh_expires_at: now() + Duration::days(30),
        audience: vec![],
    });
    GrantTest::with(services())
        .given(given)
        .when(refresh('r', None))
        .then_expect_events(vec![
            GrantEvent::RefreshReplayDetected {
                refresh_token_hash: hash('r'),
            },
            GrantEvent::GrantRevoked {
                reason: RevocationReason::RefreshReplay,
            },
        ]);
}

#[test]
fn a_refresh_may_narrow_the_scope_but_not_widen_it() {
    let result = GrantTest::with(services())
        .given(redeemed())
        .when(refresh('r', Some("openid")))
        .inspect_result()
        .unwrap();
    assert!(
        matches!(&result[0], GrantEvent::TokensRefreshed { scopes: s, .. } if s.to_string() == "openid")
    );
    GrantTest::with(services())
        .given(redeemed())
        .when(refresh('r', Some("openid profile email")))
        .then_expect_error(GrantError::InvalidScope);
}

#[test]
fn a_refresh_token_is_bound_to_its_client() {
    let command = GrantCommand::Refresh {
        client_id: "other".into(),
        refresh_token_hash: hash('r'),
        scopes: None,
        tokens: tokens('b', Some('s')),
    };
    expect_invalid_grant(redeemed(), command, "another client");
}

#[test]
fn an_expired_refresh_token_is_refused() {
    let mut given = vec![
        fresh_code(),
        GrantEvent::CodeRedeemed {
            code_hash: hash('c'),
        },
    ];
    let mut expired = tokens('a', Some('r'));
    expired.refresh.as_mut().unwrap().expires_at = now();
    given.push(expired.issued(
        GrantType::AuthorizationCode,
        "web".into(),
        Some(alice()),
        scopes("openid profile"),
        None,
    ));
    expect_invalid_grant(given, refresh('r', None), "expired");
}

#[test]
fn a_revoked_grant_cannot_be_refreshed() {
    let mut given = redeemed();
    given.push(GrantEvent::GrantRevoked {
        reason: RevocationReason::ClientRequest,
    });
    expect_invalid_grant(given, refresh('r', None), "revoked");
}

#[test]
fn an_unknown_refresh_token_is_invalid() {
    expect_invalid_grant(redeemed(), refresh('z', None), "invalid");
}

#[test]
fn client_credentials_issue_an_access_token_only() {
    GrantTest::with(services())
        .given_no_previous_events()
        .when(GrantCommand::IssueTokens {
            grant_type: GrantType::ClientCredentials,
            client_id: "m2m".into(),
            user: None,
            scopes: scopes("api"),
            auth_time: None,
            tokens: tokens('a', None),
        })
        .then_expect_events(vec![tokens('a', None).issued(
            GrantType::ClientCredentials,
            "m2m".into(),
            None,
            scopes("api"),
            None,
        )]);
}

#[test]
fn revoking_twice_records_once() {
    let mut given = redeemed();
    given.push(GrantEvent::GrantRevoked {
        reason: RevocationReason::Admin,
    });
    GrantTest::with(services())
        .given(given)
        .when(GrantCommand::RevokeGrant {
            reason: RevocationReason::Admin,
        })
        .then_expect_events(vec![]);
}

fn revoke(client: &str, token: char) -> GrantCommand {
    GrantCommand::RevokeToken {
        client_id: client.into(),
        token_hash: hash(token),
    }
}

#[test]
fn revoking_an_access_token_revokes_that_token_only() {
    GrantTest::with(services())
        .given(redeemed())
        .when(revoke("web", 'a'))
        .then_expect_events(vec![GrantEvent::TokenRevoked {
            token_hash: hash('a'),
        }]);
}

#[test]
fn revoking_a_refresh_token_revokes_the_family() {
    GrantTest::with(services())
        .given(redeemed())
        .when(revoke("web", 'r'))
        .then_expect_events(vec![GrantEvent::GrantRevoked {
            reason: RevocationReason::ClientRequest,
        }]);
}

#[test]
fn another_clients_or_an_unknown_token_changes_nothing() {
    GrantTest::with(services())
        .given(redeemed())
        .when(revoke("other", 'a'))
        .then_expect_events(vec![]);
    GrantTest::with(services())
        .given(redeemed())
        .when(revoke("web", 'z'))
        .then_expect_events(vec![]);
    GrantTest::with(services())
        .given_no_previous_events()
        .when(revoke("web", 'a'))
        .then_expect_events(vec![]);
}

mod device_grant {
    //! RFC 8628: the device starts, a person decides, the device's polls are answered.

    use super::*;

    fn started(expires_in_seconds: i64) -> GrantEvent {
        GrantEvent::DeviceAuthorizationStarted {
            client_id: "tv".into(),
            scopes: scopes("openid profile"),
            device_code_hash: hash('d'),
            user_code_hash: hash('u'),
            expires_at: now() + Duration::seconds(expires_in_seconds),
            interval: 5,
            resources: vec![],
        }
    }

    fn approved() -> GrantEvent {
        GrantEvent::DeviceAuthorizationApproved {
            client_id: "tv".into(),
            scopes: scopes("openid profile"),
            user: alice(),
            auth_time: now() - Duration::minutes(1),
            amr: vec!["pwd".into()],
        }
    }

    fn poll(client: &str) -> GrantCommand {
        GrantCommand::RedeemDeviceCode {
            client_id: client.into(),
            device_code_hash: hash('d'),
            tokens: tokens('a', Some('r')),
        }
    }

    fn decide(user_code: char, decision: DeviceDecision) -> GrantCommand {
        GrantCommand::DecideDevice {
            user_code_hash: hash(user_code),
            decision,
        }
    }

    fn approve() -> DeviceDecision {
        DeviceDecision::Approve {
            user: alice(),
            auth_time: now() - Duration::minutes(1),
            amr: vec!["pwd".into()],
        }
    }

    fn refused(given: Vec<GrantEvent>, command: GrantCommand) -> GrantError {
        GrantTest::with(services())
            .given(given)
            .when(command)
            .inspect_result()
            .expect_err("the command is refused")
    }

    #[test]
    fn a_person_approves_with_the_user_code_and_becomes_the_grants_user() {
        GrantTest::with(services())
            .given(vec![started(600)])
            .when(decide('u', approve()))
            .then_expect_events(vec![approved()]);
        let mut grant = Grant::default();
        cqrs_es::Aggregate::apply(&mut grant, started(600));
        cqrs_es::Aggregate::apply(&mut grant, approved());
        let state = grant.state().unwrap();
        assert_eq!(state.user, Some(alice()));
        assert_eq!(state.grant_type, GrantType::DeviceCode);
        assert_eq!(
            state.device.as_ref().unwrap().status,
            DeviceStatus::Approved
        );
    }

    #[test]
    fn a_wrong_used_or_expired_user_code_decides_nothing() {
        let invalid = |given, command, reason: &str| match refused(given, command) {
            GrantError::InvalidGrant(message) => assert!(message.contains(reason), "{message}"),
            other => panic!("{other:?}"),
        };
        invalid(vec![started(600)], decide('x', approve()), "not valid");
        invalid(
            vec![started(600), approved()],
            decide('u', approve()),
            "already used",
        );
        invalid(vec![started(-1)], decide('u', approve()), "expired");
        let deny = DeviceDecision::Deny { user: alice() };
        GrantTest::with(services())
            .given(vec![started(600)])
            .when(decide('u', deny))
            .then_expect_events(vec![GrantEvent::DeviceAuthorizationDenied {
                user: alice(),
            }]);
    }

    #[test]
    fn polls_are_answered_from_the_state_and_record_nothing_until_approval() {
        assert_eq!(
            refused(vec![started(600)], poll("tv")),
            GrantError::AuthorizationPending
        );
        assert_eq!(
            refused(
                vec![
                    started(600),
                    GrantEvent::DeviceAuthorizationDenied { user: alice() }
                ],
                poll("tv")
            ),
            GrantError::AccessDenied
        );
        assert_eq!(
            refused(vec![started(-1)], poll("tv")),
            GrantError::ExpiredToken
        );
        assert_eq!(
            GrantError::AuthorizationPending.code(),
            "authorization_pending"
        );
        assert_eq!(GrantError::ExpiredToken.code(), "expired_token");
        assert_eq!(GrantError::AccessDenied.code(), "access_denied");
    }

    #[test]
    fn an_approved_device_code_is_redeemed_once_by_its_own_client() {
        let issued = tokens('a', Some('r')).issued(
            GrantType::DeviceCode,
            "tv".into(),
            Some(alice()),
            scopes("openid profile"),
            Some(now() - Duration::minutes(1)),
        );
        GrantTest::with(services())
            .given(vec![started(600), approved()])
            .when(poll("tv"))
            .then_expect_events(vec![
                GrantEvent::DeviceCodeRedeemed {
                    device_code_hash: hash('d'),
                },
                issued.clone(),
            ]);
        assert!(matches!(
            refused(vec![started(600), approved()], poll("other")),
            GrantError::InvalidGrant(m) if m.contains("another client")
        ));
        let redeemed = vec![
            started(600),
            approved(),
            GrantEvent::DeviceCodeRedeemed {
                device_code_hash: hash('d'),
            },
            issued,
        ];
        assert!(matches!(
            refused(redeemed, poll("tv")),
            GrantError::InvalidGrant(m) if m.contains("already used")
        ));
        let revoked = vec![
            started(600),
            approved(),
            GrantEvent::GrantRevoked {
                reason: RevocationReason::Admin,
            },
        ];
        assert!(matches!(
            refused(revoked, poll("tv")),
            GrantError::InvalidGrant(m) if m.contains("revoked")
        ));
    }
}

mod resource_indicators {
    //! RFC 8707 §2.2: a token request may narrow the resources authorized, never add to them.

    use super::*;
    use crate::resource::ResourceId;

    fn api(path: &str) -> ResourceId {
        ResourceId::parse(&format!("https://api.example/{path}")).unwrap()
    }

    fn code_for(resources: Vec<ResourceId>) -> GrantEvent {
        let GrantEvent::CodeIssued {
            client_id,
            user,
            scopes,
            redirect_uri,
            redirect_uri_explicit,
            code_challenge,
            nonce,
            auth_time,
            session,
            amr,
            code_hash,
            expires_at,
            ..
        } = fresh_code()
        else {
            unreachable!()
        };
        GrantEvent::CodeIssued {
            client_id,
            user,
            scopes,
            redirect_uri,
            redirect_uri_explicit,
            code_challenge,
            nonce,
            auth_time,
            session,
            amr,
            code_hash,
            expires_at,
            resources,
        }
    }

    fn redeem_for(audience: Vec<ResourceId>) -> GrantCommand {
        let GrantCommand::RedeemCode {
            client_id,
            code_hash,
            redirect_uri,
            code_verifier,
            tokens,
        } = redeem()
        else {
            unreachable!()
        };
        GrantCommand::RedeemCode {
            client_id,
            code_hash,
            redirect_uri,
            code_verifier,
            tokens: NewTokens { audience, ..tokens },
        }
    }

    #[test]
    fn a_code_redeems_for_some_of_its_resources_but_no_other() {
        let given = vec![code_for(vec![api("a"), api("b")])];
        let result = GrantTest::with(services())
            .given(given.clone())
            .when(redeem_for(vec![api("b")]))
            .inspect_result()
            .unwrap();
        assert!(result.iter().any(|e| matches!(e,
            GrantEvent::TokensIssued { audience, .. } if *audience == vec![api("b")])));
        let refused = GrantTest::with(services())
            .given(given)
            .when(redeem_for(vec![api("c")]))
            .inspect_result();
        assert_eq!(refused, Err(GrantError::InvalidTarget));
        // A grant that named no resource cannot gain one at the token endpoint.
        let refused = GrantTest::with(services())
            .given(vec![fresh_code()])
            .when(redeem_for(vec![api("a")]))
            .inspect_result();
        assert_eq!(refused, Err(GrantError::InvalidTarget));
    }
}

fn exchanged_from_alice() -> Exchange {
    Exchange {
        subject_token_type: TokenType::AccessToken,
        source_grant: Some("g-source".into()),
        source_client: Some("chat".into()),
        external_subject: None,
        actors: vec![Actor {
            client_id: "agent".into(),
            user: None,
            grant_id: "g-agent".into(),
        }],
    }
}

#[test]
fn a_token_exchange_records_its_source_and_actors_and_issues_no_refresh_token() {
    let command = |refresh| GrantCommand::Exchange {
        client_id: "gateway".into(),
        user: Some(alice()),
        scopes: scopes("read"),
        auth_time: None,
        exchange: exchanged_from_alice(),
        tokens: tokens('a', refresh),
    };
    let events = Grant::default().decide(command(None), now()).unwrap();
    assert!(matches!(&events[..], [GrantEvent::TokensIssued {
        grant_type: GrantType::TokenExchange,
        exchange: Some(exchange),
        refresh_token_hash: None,
        ..
    }] if *exchange == exchanged_from_alice()));
    let mut grant = Grant::default();
    for event in events {
        cqrs_es::Aggregate::apply(&mut grant, event);
    }
    assert_eq!(
        grant.state().unwrap().exchange,
        Some(exchanged_from_alice())
    );
    assert!(Grant::default().decide(command(Some('r')), now()).is_err());
}
