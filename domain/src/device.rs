//! The user code of the device authorization grant (RFC 8628 §3.2, §6.1), and the
//! `UserCode` aggregate that points one code at one pending grant.
//!
//! A person types the user code on another device, so it is short and made of characters
//! nobody confuses: eight of twenty consonants (no vowels, so no words), shown as
//! `BCDF-GHJK` and read back whatever the case, dashes or spaces. That is about 34.6 bits:
//! enough only because a code lives minutes and guessing is throttled (RFC 8628 §5.1).
//!
//! The aggregate's id is the SHA-256 of the code (hashed by the server, as every secret is),
//! so the event store's primary key keeps two pending grants from sharing a code, and the
//! `/device` page finds the grant by loading one aggregate. A code may be given out again
//! once the grant it named has expired.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::services::Services;

/// RFC 8628 §6.1's example alphabet: the consonants, less `Y` (sometimes a vowel).
pub const USER_CODE_ALPHABET: &[u8; 20] = b"BCDFGHJKLMNPQRSTVWXZ";
/// Characters in a user code (without the dash shown in the middle).
pub const USER_CODE_LENGTH: usize = 8;

/// A user code in its one canonical form: eight characters of [`USER_CODE_ALPHABET`].
#[derive(Clone, PartialEq, Eq)]
pub struct UserCode(String);

#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[error("a code is {USER_CODE_LENGTH} letters, such as BCDF-GHJK")]
pub struct UserCodeRejected;

impl UserCode {
    /// What a person typed: any case, with dashes and spaces anywhere.
    pub fn parse(typed: &str) -> Result<UserCode, UserCodeRejected> {
        if typed.len() > 64 {
            return Err(UserCodeRejected);
        }
        let canonical: String = typed
            .chars()
            .filter(|c| *c != '-' && !c.is_whitespace())
            .map(|c| c.to_ascii_uppercase())
            .collect();
        let valid = canonical.len() == USER_CODE_LENGTH
            && canonical.bytes().all(|b| USER_CODE_ALPHABET.contains(&b));
        valid.then_some(UserCode(canonical)).ok_or(UserCodeRejected)
    }

    /// A code from `USER_CODE_LENGTH` indices into the alphabet (the caller draws them at
    /// random; each is taken modulo 20).
    pub fn from_indices(indices: [u8; USER_CODE_LENGTH]) -> UserCode {
        let alphabet = USER_CODE_ALPHABET;
        UserCode(
            indices
                .iter()
                .map(|i| alphabet[usize::from(*i) % alphabet.len()] as char)
                .collect(),
        )
    }

    /// The form that is hashed: no dash, upper case.
    pub fn canonical(&self) -> &str {
        &self.0
    }

    /// The form shown to people: `BCDF-GHJK`.
    pub fn display(&self) -> String {
        format!("{}-{}", &self.0[..4], &self.0[4..])
    }
}

/// The code is a (short-lived) secret: `Debug` does not show it.
impl std::fmt::Debug for UserCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("UserCode(…)")
    }
}

/// Which grant a user code names, and until when.
#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
pub struct UserCodeAssignment {
    assigned: Option<Assignment>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Assignment {
    grant_id: String,
    expires_at: DateTime<Utc>,
}

impl UserCodeAssignment {
    /// The grant the code names at `now`, if any.
    pub fn grant_at(&self, now: DateTime<Utc>) -> Option<&str> {
        self.assigned
            .as_ref()
            .filter(|a| now < a.expires_at)
            .map(|a| a.grant_id.as_str())
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum UserCodeCommand {
    /// Point the code at a new device grant until it expires.
    Assign {
        grant_id: String,
        expires_at: DateTime<Utc>,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, strum::VariantNames)]
pub enum UserCodeEvent {
    UserCodeAssigned {
        grant_id: String,
        expires_at: DateTime<Utc>,
    },
}

#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum UserCodeError {
    /// Another pending grant holds the code: the caller draws another.
    #[error("the user code is in use")]
    InUse,
}

impl cqrs_es::DomainEvent for UserCodeEvent {
    fn event_type(&self) -> String {
        match self {
            UserCodeEvent::UserCodeAssigned { .. } => "UserCodeAssigned",
        }
        .to_owned()
    }
    fn event_version(&self) -> String {
        "1".to_owned()
    }
}

impl cqrs_es::Aggregate for UserCodeAssignment {
    const TYPE: &'static str = "UserCode";
    type Command = UserCodeCommand;
    type Event = UserCodeEvent;
    type Error = UserCodeError;
    type Services = Services;

    async fn handle(
        &mut self,
        command: Self::Command,
        services: &Self::Services,
        sink: &cqrs_es::event_sink::EventSink<Self>,
    ) -> Result<(), Self::Error> {
        let UserCodeCommand::Assign {
            grant_id,
            expires_at,
        } = command;
        if self.grant_at(services.now()).is_some() {
            return Err(UserCodeError::InUse);
        }
        let event = UserCodeEvent::UserCodeAssigned {
            grant_id,
            expires_at,
        };
        sink.write(event, self).await;
        Ok(())
    }

    fn apply(&mut self, event: Self::Event) {
        let UserCodeEvent::UserCodeAssigned {
            grant_id,
            expires_at,
        } = event;
        self.assigned = Some(Assignment {
            grant_id,
            expires_at,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{at, services_at};
    use cqrs_es::test::TestFramework;

    #[test]
    fn a_person_may_type_the_code_any_way_they_read_it() {
        let code = UserCode::parse("bcdf-ghjk").unwrap();
        assert_eq!(code.canonical(), "BCDFGHJK");
        assert_eq!(code.display(), "BCDF-GHJK");
        assert_eq!(UserCode::parse(" BCDF GHJK ").unwrap(), code);
        for wrong in [
            "BCDF-GHJ",
            "BCDF-GHJKL",
            "ABCD-EFGH",
            "BCDF-GHJ1",
            "",
            "ВCDF-GHJK",
        ] {
            assert_eq!(UserCode::parse(wrong), Err(UserCodeRejected), "{wrong}");
        }
        assert_eq!(format!("{code:?}"), "UserCode(…)");
    }

    #[test]
    fn drawn_codes_use_only_the_alphabet() {
        let code = UserCode::from_indices([0, 19, 20, 39, 255, 7, 8, 9]);
        assert_eq!(code.canonical(), "BZBZTKLM");
        assert!(UserCode::parse(code.canonical()).is_ok());
    }

    #[test]
    fn a_code_names_one_pending_grant_at_a_time() {
        let assign = |grant: &str, minutes: i64| UserCodeCommand::Assign {
            grant_id: grant.into(),
            expires_at: at(minutes * 60),
        };
        let assigned = |grant: &str, minutes: i64| UserCodeEvent::UserCodeAssigned {
            grant_id: grant.into(),
            expires_at: at(minutes * 60),
        };
        TestFramework::<UserCodeAssignment>::with(services_at(0))
            .given(vec![assigned("g1", 10)])
            .when(assign("g2", 20))
            .then_expect_error(UserCodeError::InUse);
        // Once the first grant's code has expired, the code may name another.
        TestFramework::<UserCodeAssignment>::with(services_at(11 * 60))
            .given(vec![assigned("g1", 10)])
            .when(assign("g2", 21))
            .then_expect_events(vec![assigned("g2", 21)]);
    }
}
