//! The open sign-in sessions a running server honours: which session ids (by hash) are open,
//! whose they are, and until when.
//!
//! A session's events reach the index twice on the instance that committed them (once at
//! commit, once when the follower reads the log), and the follower may replay a start after
//! the end was applied. So an ended session leaves a tombstone until it would have run out,
//! and a start is ignored where there is one.

use std::collections::HashMap;

use authledger_domain::user::SESSION_LIFETIME;
use chrono::{DateTime, Utc};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenSession {
    pub username: String,
    pub expires_at: DateTime<Utc>,
}

#[derive(Debug, Default)]
pub struct Sessions {
    open: HashMap<String, OpenSession>,
    /// Ended sessions, until they would have run out.
    ended: HashMap<String, DateTime<Utc>>,
}

impl Sessions {
    pub fn started(&mut self, hash: &str, username: &str, expires_at: DateTime<Utc>) {
        if self.ended.contains_key(hash) {
            return;
        }
        self.open.insert(
            hash.to_owned(),
            OpenSession {
                username: username.to_owned(),
                expires_at,
            },
        );
    }

    /// `at` is when it ended: a session not held is remembered as ended for a lifetime from
    /// then, which covers any start of it that may still be replayed.
    pub fn ended(&mut self, hash: &str, at: DateTime<Utc>) {
        let until = self
            .open
            .remove(hash)
            .map_or(at + SESSION_LIFETIME, |s| s.expires_at);
        self.ended.insert(hash.to_owned(), until);
    }

    /// The session, if open at `now`.
    pub fn get(&self, hash: &str, now: DateTime<Utc>) -> Option<&OpenSession> {
        self.open.get(hash).filter(|s| s.expires_at > now)
    }

    pub fn prune(&mut self, now: DateTime<Utc>) {
        self.open.retain(|_, s| s.expires_at > now);
        self.ended.retain(|_, until| *until > now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_start_replayed_after_its_end_does_not_reopen_the_session() {
        let now = Utc::now();
        let mut sessions = Sessions::default();
        sessions.started("h", "alice", now + SESSION_LIFETIME);
        assert!(sessions.get("h", now).is_some());
        sessions.ended("h", now);
        sessions.started("h", "alice", now + SESSION_LIFETIME);
        assert_eq!(sessions.get("h", now), None);
    }

    #[test]
    fn a_session_is_over_when_it_runs_out() {
        let now = Utc::now();
        let mut sessions = Sessions::default();
        sessions.started("h", "alice", now + chrono::Duration::seconds(1));
        assert!(sessions
            .get("h", now + chrono::Duration::seconds(2))
            .is_none());
        sessions.prune(now + chrono::Duration::seconds(2));
        assert!(sessions.open.is_empty());
    }
}
