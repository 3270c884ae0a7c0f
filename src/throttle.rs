//! Throttling of failed attempts at everything that checks a password or a client secret.
//!
//! Each key (an account, a client address, a client at an address) may fail
//! `login_max_failures` times; each further failure makes it wait 1, 2, 4, ... seconds, at most
//! `login_lockout_seconds` (the temporary lock). While it waits, attempts are refused without
//! checking the password, so a right password reveals nothing and costs no hashing. A success
//! forgets the account's failures; a key forgets its own after it has not failed for
//! [`FORGET_AFTER`].
//!
//! The counts are kept in memory, per instance: the same as Keycloak's brute-force detector
//! without a shared cache. With N instances an attacker gets at most N times the attempts.
//! What the audit trail needs is recorded as events by the caller: each failure until the
//! key is throttled, then one event when throttling starts ([`Verdict::Throttled::first`]),
//! so failed attempts cannot grow the log without bound.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a key that stopped failing is remembered.
pub const FORGET_AFTER: Duration = Duration::from_secs(15 * 60);
/// An address may fail this many times more than an account before it waits: one address
/// may be a whole office behind NAT.
const ADDRESS_ALLOWANCE: u32 = 4;
/// Past this many keys, forgotten ones are dropped before a new one is added.
const PRUNE_ABOVE: usize = 10_000;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Key {
    /// Sign-ins to one account (normalised username), from anywhere.
    Account(String),
    /// Sign-ins from one address, to any account.
    Address(IpAddr),
    /// Client authentications of one client from one address: a client secret is a 256-bit
    /// random value, so this only has to stop hammering, and keying on the address too keeps
    /// an attacker from locking a real client out.
    Client(String, IpAddr),
    /// Device user codes typed from one address (RFC 8628 §5.1): a code is short, so
    /// wrong ones are counted like wrong passwords.
    UserCode(IpAddr),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    pub max_failures: u32,
    pub lockout: Duration,
}

impl Policy {
    pub fn from_settings(settings: &authledger_domain::settings::SettingsValues) -> Policy {
        Policy {
            max_failures: settings.login_max_failures,
            lockout: Duration::from_secs(u64::from(settings.login_lockout_seconds)),
        }
    }

    fn for_key(self, key: &Key) -> Policy {
        match key {
            Key::Address(_) => Policy {
                max_failures: self.max_failures.saturating_mul(ADDRESS_ALLOWANCE),
                ..self
            },
            Key::Account(_) | Key::Client(..) | Key::UserCode(_) => self,
        }
    }

    /// The wait after the `failures`-th failure.
    fn wait_after(self, failures: u32) -> Option<Duration> {
        let over = failures.checked_sub(self.max_failures)?.checked_sub(1)?;
        let wait = Duration::from_secs(1u64.checked_shl(over.min(32)).unwrap_or(u64::MAX));
        Some(wait.min(self.lockout))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Go ahead and check the password or secret.
    Allowed,
    /// Refuse without checking; try again after `retry_after`. `first` is true once per
    /// throttling window, for the one event that records it.
    Throttled { retry_after: Duration, first: bool },
}

#[derive(Debug)]
struct Entry {
    failures: u32,
    last_failure: Instant,
    blocked_until: Option<Instant>,
    /// Whether this window's throttling was already reported.
    reported: bool,
}

#[derive(Debug, Default)]
pub struct Throttle {
    entries: Mutex<HashMap<Key, Entry>>,
}

impl Throttle {
    /// Whether an attempt under each of `keys` may be checked now.
    pub fn check(&self, keys: &[Key], now: Instant) -> Verdict {
        let mut entries = self.entries.lock().expect("throttle lock");
        let mut verdict = Verdict::Allowed;
        for key in keys {
            let Some(entry) = entries.get_mut(key) else {
                continue;
            };
            let Some(until) = entry.blocked_until.filter(|until| *until > now) else {
                continue;
            };
            let first = !entry.reported;
            entry.reported = true;
            let retry_after = until - now;
            verdict = match verdict {
                Verdict::Throttled {
                    retry_after: longer,
                    first: earlier,
                } => Verdict::Throttled {
                    retry_after: retry_after.max(longer),
                    first: first || earlier,
                },
                Verdict::Allowed => Verdict::Throttled { retry_after, first },
            };
        }
        verdict
    }

    /// Counts a failed attempt under each of `keys`.
    pub fn failed(&self, keys: &[Key], policy: Policy, now: Instant) {
        let mut entries = self.entries.lock().expect("throttle lock");
        if entries.len() > PRUNE_ABOVE {
            entries.retain(|_, e| now.duration_since(e.last_failure) < FORGET_AFTER);
        }
        for key in keys {
            let entry = entries.entry(key.clone()).or_insert(Entry {
                failures: 0,
                last_failure: now,
                blocked_until: None,
                reported: false,
            });
            if now.duration_since(entry.last_failure) >= FORGET_AFTER {
                entry.failures = 0;
            }
            entry.failures = entry.failures.saturating_add(1);
            entry.last_failure = now;
            if let Some(wait) = policy.for_key(key).wait_after(entry.failures) {
                if entry.blocked_until.is_none_or(|until| until <= now) {
                    entry.reported = false;
                }
                entry.blocked_until = Some(now + wait);
            }
        }
    }

    /// Forgets the failures under `key` (a successful sign-in to the account).
    pub fn succeeded(&self, key: &Key) {
        self.entries.lock().expect("throttle lock").remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: Policy = Policy {
        max_failures: 3,
        lockout: Duration::from_secs(60),
    };

    #[test]
    fn failures_past_the_allowance_wait_twice_as_long_each_time_up_to_the_lockout() {
        assert_eq!(POLICY.wait_after(3), None);
        assert_eq!(POLICY.wait_after(4), Some(Duration::from_secs(1)));
        assert_eq!(POLICY.wait_after(5), Some(Duration::from_secs(2)));
        assert_eq!(POLICY.wait_after(9), Some(Duration::from_secs(32)));
        assert_eq!(POLICY.wait_after(10), Some(Duration::from_secs(60)));
        assert_eq!(POLICY.wait_after(500), Some(Duration::from_secs(60)));
    }

    #[test]
    fn a_throttled_key_is_reported_once_per_window_and_a_success_forgets_it() {
        let throttle = Throttle::default();
        let key = Key::Account("alice".into());
        let keys = std::slice::from_ref(&key);
        let now = Instant::now();
        for _ in 0..4 {
            assert_eq!(throttle.check(keys, now), Verdict::Allowed);
            throttle.failed(keys, POLICY, now);
        }
        let first = throttle.check(keys, now);
        assert!(
            matches!(first, Verdict::Throttled { first: true, .. }),
            "{first:?}"
        );
        let again = throttle.check(keys, now);
        assert!(
            matches!(again, Verdict::Throttled { first: false, .. }),
            "{again:?}"
        );
        let later = now + Duration::from_secs(2);
        assert_eq!(throttle.check(keys, later), Verdict::Allowed);
        throttle.succeeded(&key);
        throttle.failed(keys, POLICY, later);
        assert_eq!(throttle.check(keys, later), Verdict::Allowed);
    }
}
