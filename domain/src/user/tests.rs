//! Given/when/then: one test per rule of the `User` aggregate.

use std::collections::BTreeSet;

use cqrs_es::test::TestFramework;

use super::*;
use crate::secret::{CredentialId, Password};
use crate::testing::{fake_credential, fake_hash, services};

type UserTest = TestFramework<User>;

fn alice() -> Username {
    Username::parse("alice").unwrap()
}

fn profile() -> UserProfile {
    UserProfile {
        email: Some(Email::parse("alice@example.com").unwrap()),
        name: Some("Alice Liddell".into()),
        ..UserProfile::default()
    }
}

fn roles(names: &[&str]) -> BTreeSet<Role> {
    names.iter().map(|r| Role::parse(r).unwrap()).collect()
}

fn registered() -> UserEvent {
    UserEvent::UserRegistered {
        username: alice(),
        password: fake_credential("wonderland"),
        profile: profile(),
        roles: roles(&["reader"]),
    }
}

/// The session a sign-in at the fixed clock's time opens.
fn session(n: u8) -> NewSession {
    NewSession {
        id_hash: crate::secret::SecretHash::from_hex(&format!("{n:02x}").repeat(32)).unwrap(),
        expires_at: crate::testing::now() + SESSION_LIFETIME,
    }
}

fn session_started(n: u8) -> UserEvent {
    let session = session(n);
    UserEvent::SessionStarted {
        id_hash: session.id_hash,
        expires_at: session.expires_at,
        started_at: Some(crate::testing::now()),
    }
}

fn session_ended(n: u8, reason: SessionEnd) -> UserEvent {
    UserEvent::SessionEnded {
        id_hash: session(n).id_hash,
        reason,
    }
}

fn register() -> UserCommand {
    UserCommand::Register {
        username: alice(),
        password: Password::parse("wonderland").unwrap(),
        profile: profile(),
        roles: roles(&["reader"]),
    }
}

#[test]
fn registration_records_where_the_hash_is_kept_never_the_password_or_its_hash() {
    UserTest::with(services())
        .given_no_previous_events()
        .when(register())
        .then_expect_events(vec![registered()]);
}

#[test]
fn an_imported_person_keeps_the_hash_they_came_with_and_only_once() {
    let import = UserCommand::Import {
        username: alice(),
        password_hash: fake_hash("wonderland"),
        profile: profile(),
        roles: roles(&["reader"]),
    };
    let UserEvent::UserRegistered {
        username,
        profile,
        roles,
        ..
    } = registered()
    else {
        unreachable!()
    };
    // The hash is kept as it came, outside the log; the event names where.
    let imported = UserEvent::UserRegistered {
        username,
        password: PasswordRecord::Credential(CredentialId::new(format!(
            "imported:{}",
            fake_hash("wonderland").as_str()
        ))),
        profile,
        roles,
    };
    UserTest::with(services())
        .given_no_previous_events()
        .when(import.clone())
        .then_expect_events(vec![imported]);
    UserTest::with(services())
        .given(vec![registered()])
        .when(import)
        .then_expect_error(UserError::UsernameTaken);
}

#[test]
fn a_username_is_registered_only_once() {
    UserTest::with(services())
        .given(vec![registered()])
        .when(register())
        .then_expect_error(UserError::UsernameTaken);
}

#[test]
fn usernames_are_normalised_so_case_variants_are_the_same_user() {
    assert_eq!(Username::parse("  Alice ").unwrap(), alice());
    assert!(Username::parse("al ice").is_err());
    assert!(Username::parse("").is_err());
    assert!(Username::parse("аlice").is_err(), "Cyrillic а is refused");
}

#[test]
fn the_profile_can_be_updated() {
    let new_profile = UserProfile {
        given_name: Some("Alice".into()),
        ..profile()
    };
    UserTest::with(services())
        .given(vec![registered()])
        .when(UserCommand::UpdateProfile {
            profile: new_profile.clone(),
        })
        .then_expect_events(vec![UserEvent::ProfileUpdated {
            profile: new_profile,
        }]);
}

#[test]
fn an_unchanged_profile_records_nothing() {
    UserTest::with(services())
        .given(vec![registered()])
        .when(UserCommand::UpdateProfile { profile: profile() })
        .then_expect_events(vec![]);
}

#[test]
fn a_password_change_records_the_new_hash() {
    UserTest::with(services())
        .given(vec![registered()])
        .when(UserCommand::ChangePassword {
            password: Password::parse("looking-glass").unwrap(),
        })
        .then_expect_events(vec![UserEvent::PasswordChanged {
            password: fake_credential("looking-glass"),
        }]);
}

#[test]
fn roles_are_replaced_as_a_set() {
    UserTest::with(services())
        .given(vec![registered()])
        .when(UserCommand::SetRoles {
            roles: roles(&["admin", "reader"]),
        })
        .then_expect_events(vec![UserEvent::RolesSet {
            roles: roles(&["admin", "reader"]),
        }]);
}

#[test]
fn setting_the_same_roles_records_nothing() {
    UserTest::with(services())
        .given(vec![registered()])
        .when(UserCommand::SetRoles {
            roles: roles(&["reader"]),
        })
        .then_expect_events(vec![]);
}

#[test]
fn a_user_can_be_disabled_and_enabled() {
    UserTest::with(services())
        .given(vec![registered()])
        .when(UserCommand::Disable)
        .then_expect_events(vec![UserEvent::UserDisabled {}]);
    UserTest::with(services())
        .given(vec![registered(), UserEvent::UserDisabled {}])
        .when(UserCommand::Enable)
        .then_expect_events(vec![UserEvent::UserEnabled {}]);
}

#[test]
fn a_disabled_user_cannot_be_disabled_again() {
    UserTest::with(services())
        .given(vec![registered(), UserEvent::UserDisabled {}])
        .when(UserCommand::Disable)
        .then_expect_error(UserError::AlreadyDisabled);
}

#[test]
fn an_enabled_user_cannot_be_enabled() {
    UserTest::with(services())
        .given(vec![registered()])
        .when(UserCommand::Enable)
        .then_expect_error(UserError::AlreadyEnabled);
}

#[test]
fn commands_for_an_unknown_user_are_refused() {
    for command in [
        UserCommand::UpdateProfile { profile: profile() },
        UserCommand::ChangePassword {
            password: Password::parse("whatever-1").unwrap(),
        },
        UserCommand::SetRoles { roles: roles(&[]) },
        UserCommand::Disable,
        UserCommand::Enable,
    ] {
        UserTest::with(services())
            .given_no_previous_events()
            .when(command)
            .then_expect_error(UserError::NotRegistered);
    }
}

#[test]
fn profile_text_claims_are_bounded() {
    let long = UserProfile {
        name: Some("x".repeat(201)),
        ..UserProfile::default()
    };
    assert_eq!(long.check(), Err(ProfileRejected::Text("name")));
    assert!(Email::parse("not-an-email").is_err());
    assert!(Email::parse("a@b@c").is_err());
}

#[test]
fn a_sign_in_with_the_right_password_succeeds() {
    UserTest::with(services())
        .given(vec![registered()])
        .when(UserCommand::RecordLogin {
            password: Password::attempt("wonderland").unwrap(),
            session: session(1),
            two_factor_policy: TwoFactorPolicy::Optional,
        })
        .then_expect_events(vec![
            UserEvent::LoginSucceeded { method: None },
            session_started(1),
        ]);
}

#[test]
fn a_wrong_password_is_recorded_as_a_failed_sign_in() {
    UserTest::with(services())
        .given(vec![registered()])
        .when(UserCommand::RecordLogin {
            password: Password::attempt("short").unwrap(),
            session: session(1),
            two_factor_policy: TwoFactorPolicy::Optional,
        })
        .then_expect_events(vec![UserEvent::LoginFailed {
            reason: LoginFailure::WrongPassword,
        }]);
}

#[test]
fn a_disabled_user_cannot_sign_in_even_with_the_right_password() {
    UserTest::with(services())
        .given(vec![registered(), UserEvent::UserDisabled {}])
        .when(UserCommand::RecordLogin {
            password: Password::attempt("wonderland").unwrap(),
            session: session(1),
            two_factor_policy: TwoFactorPolicy::Optional,
        })
        .then_expect_events(vec![UserEvent::LoginFailed {
            reason: LoginFailure::UserDisabled,
        }]);
}

/// The attempt is recorded as a wrong password is, so the answer (and its timing) does not
/// tell which names exist, and the audit trail shows it.
#[test]
fn an_unknown_user_cannot_sign_in_and_the_attempt_is_recorded() {
    UserTest::with(services())
        .given_no_previous_events()
        .when(UserCommand::RecordLogin {
            password: Password::attempt("wonderland").unwrap(),
            session: session(1),
            two_factor_policy: TwoFactorPolicy::Optional,
        })
        .then_expect_events(vec![UserEvent::LoginFailed {
            reason: LoginFailure::UnknownUser,
        }]);
}

#[test]
fn throttling_is_recorded_for_an_existing_account_only() {
    UserTest::with(services())
        .given_no_previous_events()
        .when(UserCommand::RecordThrottled {
            retry_after_seconds: 4,
        })
        .then_expect_error(UserError::NotRegistered);
}

#[test]
fn signing_out_ends_that_session_only() {
    UserTest::with(services())
        .given(vec![registered(), session_started(1), session_started(2)])
        .when(UserCommand::EndSession {
            id_hash: session(1).id_hash,
        })
        .then_expect_events(vec![session_ended(1, SessionEnd::SignedOut)]);
}

#[test]
fn signing_out_everywhere_else_keeps_the_session_that_asked() {
    UserTest::with(services())
        .given(vec![
            registered(),
            session_started(1),
            session_started(2),
            session_started(3),
            session_ended(3, SessionEnd::SignedOut),
        ])
        .when(UserCommand::EndOtherSessions {
            keep: session(1).id_hash,
        })
        .then_expect_events(vec![session_ended(2, SessionEnd::SignedOutElsewhere)]);
}

#[test]
fn signing_out_of_a_session_that_is_not_open_records_nothing() {
    UserTest::with(services())
        .given(vec![
            registered(),
            session_started(1),
            session_ended(1, SessionEnd::SignedOut),
        ])
        .when(UserCommand::EndSession {
            id_hash: session(1).id_hash,
        })
        .then_expect_events(vec![]);
}

#[test]
fn a_password_change_ends_every_open_session() {
    UserTest::with(services())
        .given(vec![registered(), session_started(1), session_started(2)])
        .when(UserCommand::ChangePassword {
            password: Password::parse("looking-glass").unwrap(),
        })
        .then_expect_events(vec![
            UserEvent::PasswordChanged {
                password: fake_credential("looking-glass"),
            },
            session_ended(1, SessionEnd::PasswordChanged),
            session_ended(2, SessionEnd::PasswordChanged),
        ]);
}

#[test]
fn disabling_a_user_ends_every_open_session() {
    UserTest::with(services())
        .given(vec![registered(), session_started(1)])
        .when(UserCommand::Disable)
        .then_expect_events(vec![
            UserEvent::UserDisabled {},
            session_ended(1, SessionEnd::UserDisabled),
        ]);
}

// ---- two-factor sign-in --------------------------------------------------------------------

fn code_hash(c: char) -> crate::secret::SecretHash {
    crate::secret::SecretHash::from_hex(&c.to_string().repeat(64)).unwrap()
}

fn enrolled() -> UserEvent {
    UserEvent::TwoFactorEnrolled {
        recovery_codes: [code_hash('a'), code_hash('b')].into(),
        confirmed_step: 100,
    }
}

fn password_verified(must_enrol: bool) -> UserEvent {
    UserEvent::PasswordVerified {
        second_factor_until: crate::testing::now() + SECOND_FACTOR_WINDOW,
        must_enrol,
    }
}

fn sign_in(policy: TwoFactorPolicy) -> UserCommand {
    UserCommand::RecordLogin {
        password: Password::attempt("wonderland").unwrap(),
        session: session(1),
        two_factor_policy: policy,
    }
}

fn complete(proof: SecondFactorProof) -> UserCommand {
    UserCommand::CompleteSignIn {
        proof,
        session: session(1),
    }
}

#[test]
fn with_a_second_factor_the_password_opens_no_session() {
    UserTest::with(services())
        .given(vec![registered(), enrolled()])
        .when(sign_in(TwoFactorPolicy::Optional))
        .then_expect_events(vec![password_verified(false)]);
}

#[test]
fn a_policy_that_requires_two_factors_makes_an_unenrolled_person_enrol() {
    let admins = TwoFactorPolicy::Roles(["admin".to_owned()].into());
    UserTest::with(services())
        .given(vec![registered()])
        .when(sign_in(admins))
        .then_expect_events(vec![
            UserEvent::LoginSucceeded { method: None },
            session_started(1),
        ]);
    let readers = TwoFactorPolicy::Roles(["reader".to_owned()].into());
    UserTest::with(services())
        .given(vec![registered()])
        .when(sign_in(readers))
        .then_expect_events(vec![password_verified(true)]);
    UserTest::with(services())
        .given(vec![registered()])
        .when(sign_in(TwoFactorPolicy::Everyone))
        .then_expect_events(vec![password_verified(true)]);
}

#[test]
fn a_current_code_completes_the_sign_in() {
    UserTest::with(services())
        .given(vec![registered(), enrolled(), password_verified(false)])
        .when(complete(SecondFactorProof::Totp { step: 101 }))
        .then_expect_events(vec![
            UserEvent::SecondFactorPassed { step: 101 },
            UserEvent::LoginSucceeded { method: None },
            session_started(1),
        ]);
}

/// RFC 6238 §5.2: a code is accepted once.
#[test]
fn a_code_for_a_step_already_used_is_refused() {
    for step in [100, 99] {
        UserTest::with(services())
            .given(vec![registered(), enrolled(), password_verified(false)])
            .when(complete(SecondFactorProof::Totp { step }))
            .then_expect_events(vec![UserEvent::SecondFactorFailed {
                reason: SecondFactorFailure::Replayed,
            }]);
    }
}

#[test]
fn a_recovery_code_works_once() {
    UserTest::with(services())
        .given(vec![registered(), enrolled(), password_verified(false)])
        .when(complete(SecondFactorProof::Other(code_hash('a'))))
        .then_expect_events(vec![
            UserEvent::RecoveryCodeUsed {
                code_hash: code_hash('a'),
            },
            UserEvent::LoginSucceeded { method: None },
            session_started(1),
        ]);
    UserTest::with(services())
        .given(vec![
            registered(),
            enrolled(),
            UserEvent::RecoveryCodeUsed {
                code_hash: code_hash('a'),
            },
            password_verified(false),
        ])
        .when(complete(SecondFactorProof::Other(code_hash('a'))))
        .then_expect_events(vec![UserEvent::SecondFactorFailed {
            reason: SecondFactorFailure::WrongCode,
        }]);
}

#[test]
fn a_second_factor_without_a_verified_password_is_refused() {
    UserTest::with(services())
        .given(vec![registered(), enrolled()])
        .when(complete(SecondFactorProof::Totp { step: 101 }))
        .then_expect_error(UserError::NoSignInPending);
    // The password was verified, and the sign-in completed: the code cannot be sent again.
    UserTest::with(services())
        .given(vec![
            registered(),
            enrolled(),
            password_verified(false),
            UserEvent::LoginSucceeded { method: None },
        ])
        .when(complete(SecondFactorProof::Totp { step: 102 }))
        .then_expect_error(UserError::NoSignInPending);
    // Too late.
    UserTest::with(services())
        .given(vec![
            registered(),
            enrolled(),
            UserEvent::PasswordVerified {
                second_factor_until: crate::testing::now(),
                must_enrol: false,
            },
        ])
        .when(complete(SecondFactorProof::Totp { step: 101 }))
        .then_expect_error(UserError::NoSignInPending);
}

#[test]
fn enrolling_during_a_required_sign_in_completes_it() {
    UserTest::with(services())
        .given(vec![registered(), password_verified(true)])
        .when(UserCommand::EnrolTwoFactor {
            recovery_codes: [code_hash('a')].into(),
            confirmed_step: 7,
            session: Some(session(1)),
        })
        .then_expect_events(vec![
            UserEvent::TwoFactorEnrolled {
                recovery_codes: [code_hash('a')].into(),
                confirmed_step: 7,
            },
            UserEvent::LoginSucceeded { method: None },
            session_started(1),
        ]);
    UserTest::with(services())
        .given(vec![registered()])
        .when(UserCommand::EnrolTwoFactor {
            recovery_codes: [code_hash('a')].into(),
            confirmed_step: 7,
            session: Some(session(1)),
        })
        .then_expect_error(UserError::NoSignInPending);
    UserTest::with(services())
        .given(vec![registered(), enrolled()])
        .when(UserCommand::EnrolTwoFactor {
            recovery_codes: [code_hash('a')].into(),
            confirmed_step: 7,
            session: None,
        })
        .then_expect_error(UserError::AlreadyEnrolled);
}

#[test]
fn removing_the_second_factor_lets_the_password_alone_sign_in_again() {
    UserTest::with(services())
        .given(vec![registered(), enrolled()])
        .when(UserCommand::RemoveTwoFactor {
            reason: TwoFactorRemoval::Reset,
        })
        .then_expect_events(vec![UserEvent::TwoFactorRemoved {
            reason: TwoFactorRemoval::Reset,
        }]);
    UserTest::with(services())
        .given(vec![
            registered(),
            enrolled(),
            UserEvent::TwoFactorRemoved {
                reason: TwoFactorRemoval::ByUser,
            },
        ])
        .when(sign_in(TwoFactorPolicy::Optional))
        .then_expect_events(vec![
            UserEvent::LoginSucceeded { method: None },
            session_started(1),
        ]);
}

// ---- signing in through another provider -------------------------------------------------

fn elsewhere(policy: TwoFactorPolicy) -> UserCommand {
    UserCommand::SignInElsewhere {
        method: "social:primary".into(),
        session: session(1),
        two_factor_policy: policy,
    }
}

fn vouched(must_enrol: bool) -> UserEvent {
    UserEvent::VouchedElsewhere {
        method: "social:primary".into(),
        second_factor_until: crate::testing::now() + SECOND_FACTOR_WINDOW,
        must_enrol,
    }
}

#[test]
fn another_provider_signs_in_a_person_without_a_second_factor() {
    UserTest::with(services())
        .given(vec![registered()])
        .when(elsewhere(TwoFactorPolicy::Optional))
        .then_expect_events(vec![
            UserEvent::LoginSucceeded {
                method: Some("social:primary".into()),
            },
            session_started(1),
        ]);
}

/// The other provider stands in for the password, never for the second factor: the code
/// completes the sign-in, which still says how it began.
#[test]
fn another_provider_leaves_the_second_factor_to_follow() {
    UserTest::with(services())
        .given(vec![registered(), enrolled()])
        .when(elsewhere(TwoFactorPolicy::Optional))
        .then_expect_events(vec![vouched(false)]);
    UserTest::with(services())
        .given(vec![registered(), enrolled(), vouched(false)])
        .when(complete(SecondFactorProof::Totp { step: 101 }))
        .then_expect_events(vec![
            UserEvent::SecondFactorPassed { step: 101 },
            UserEvent::LoginSucceeded {
                method: Some("social:primary".into()),
            },
            session_started(1),
        ]);
    UserTest::with(services())
        .given(vec![registered()])
        .when(elsewhere(TwoFactorPolicy::Everyone))
        .then_expect_events(vec![vouched(true)]);
}

/// A password sign-in after an unfinished one elsewhere is a password sign-in.
#[test]
fn a_later_password_replaces_the_unfinished_sign_in_elsewhere() {
    UserTest::with(services())
        .given(vec![
            registered(),
            enrolled(),
            vouched(false),
            password_verified(false),
        ])
        .when(complete(SecondFactorProof::Totp { step: 101 }))
        .then_expect_events(vec![
            UserEvent::SecondFactorPassed { step: 101 },
            UserEvent::LoginSucceeded { method: None },
            session_started(1),
        ]);
}

#[test]
fn a_disabled_account_is_not_signed_in_elsewhere() {
    UserTest::with(services())
        .given(vec![registered(), UserEvent::UserDisabled {}])
        .when(elsewhere(TwoFactorPolicy::Optional))
        .then_expect_events(vec![UserEvent::LoginFailed {
            reason: LoginFailure::UserDisabled,
        }]);
}

#[test]
fn events_recorded_with_the_hash_itself_are_still_read() {
    // Stores whose ledger was chained before hashes moved out of the log keep such events.
    let legacy: UserEvent = serde_json::from_value(serde_json::json!({
        "PasswordChanged": {"password_hash": "$fake$looking-glass"}
    }))
    .unwrap();
    assert_eq!(
        legacy,
        UserEvent::PasswordChanged {
            password: PasswordRecord::PasswordHash(fake_hash("looking-glass"))
        }
    );
    let now: serde_json::Value = serde_json::to_value(UserEvent::PasswordChanged {
        password: fake_credential("looking-glass"),
    })
    .unwrap();
    assert_eq!(
        now,
        serde_json::json!({"PasswordChanged": {"credential": "fake:looking-glass"}})
    );
    // A state built from such an event takes a new password as any other.
    UserTest::with(services())
        .given(vec![registered(), legacy])
        .when(UserCommand::ChangePassword {
            password: Password::parse("looking-glass").unwrap(),
        })
        .then_expect_events(vec![UserEvent::PasswordChanged {
            password: fake_credential("looking-glass"),
        }]);
}

fn erased() -> UserEvent {
    UserEvent::UserErased {
        reason: Some("request 2026-114".into()),
    }
}

#[test]
fn erasing_a_person_is_recorded_with_its_reason_and_ends_their_sessions() {
    UserTest::with(services())
        .given(vec![registered(), session_started(1)])
        .when(UserCommand::Erase {
            reason: Some("request 2026-114".into()),
        })
        .then_expect_events(vec![erased(), session_ended(1, SessionEnd::UserErased)]);
}

#[test]
fn an_erased_account_changes_no_more_cannot_sign_in_and_keeps_its_name() {
    for command in [
        UserCommand::Enable,
        UserCommand::Erase { reason: None },
        UserCommand::UpdateProfile { profile: profile() },
        UserCommand::ChangePassword {
            password: Password::parse("looking-glass").unwrap(),
        },
    ] {
        UserTest::with(services())
            .given(vec![registered(), erased()])
            .when(command)
            .then_expect_error(UserError::Erased);
    }
    UserTest::with(services())
        .given(vec![registered(), erased()])
        .when(sign_in(TwoFactorPolicy::Optional))
        .then_expect_events(vec![UserEvent::LoginFailed {
            reason: LoginFailure::UserDisabled,
        }]);
    UserTest::with(services())
        .given(vec![registered(), erased()])
        .when(register())
        .then_expect_error(UserError::UsernameTaken);
}
