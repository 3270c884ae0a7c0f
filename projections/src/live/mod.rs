//! `live`: the in-memory read model behind the hot paths of a running server.
//!
//! Introspection, userinfo and client authentication run on every API call a client makes, so
//! they must not cost a database round trip. This index holds what they need (clients, the
//! settings, the live access tokens, which grants are revoked, which users are disabled) and is
//! kept correct by the event stream alone, from two sides:
//!
//! - **this instance's own commands**: the store hands each command's committed events to the
//!   index ([`Fed::feed`]) before the command returns, so a token is introspectable, and a
//!   revocation visible, to the very next request on this instance;
//! - **everyone else** (the CLI, other instances): [`LiveIndex::follow`] reads the commit-ordered
//!   log after its own position, like a projection without a checkpoint. The server calls it
//!   every [`FOLLOW_INTERVAL`], so their changes show here within about that long.
//!
//! Both sides deliver the same events, through the same [`Fed`] functions, in different orders, and every rule below is written so
//! that order and repetition do not matter:
//! - clients, settings and user status carry their aggregate's sequence, and only a higher
//!   sequence replaces them (a stale re-delivery is ignored);
//! - token facts only ever move one way: issued, then ended. An ending that arrives before the
//!   issuance it ends (another instance issued, this one revoked) is remembered and applied when
//!   the issuance arrives; a revoked grant stays revoked.
//!
//! Only access tokens are held: refresh tokens are used at the token endpoint, whose decisions
//! come from the Grant aggregate, and are introspected rarely, from the `grants` view. The
//! number of access tokens held is capped ([`LiveIndex::load`]); past the cap the index says
//! "not held" and callers fall back to the view.

use std::sync::RwLock;
use std::time::Duration;

use authledger_domain::client::{Client, RegisteredClient};
use authledger_domain::grant::Grant;
use authledger_domain::resource::{RegisteredResource, Resource};
use authledger_domain::secret::SecretHash;
use authledger_domain::settings::{Settings, SettingsValues};
use authledger_domain::user::User;
use chrono::{DateTime, Utc};
use cqrs_es::Aggregate;
use tokio::sync::Mutex;

mod feed;
mod load;
mod sessions;
mod shards;
mod shared;
mod state;

pub use feed::Fed;
pub use sessions::OpenSession;

use state::{token_key, LiveState};

use crate::db::Db;
use crate::error::ProjectionError;
use crate::event_log::{self, Position, StoredEvent};
use crate::grants::TokenRecord;
use crate::view_time;

/// How often a server follows the log for changes made elsewhere: the bound on how stale this
/// index can be about another process's events (plus, on Postgres, the time the oldest open
/// transaction takes to end).
pub const FOLLOW_INTERVAL: Duration = Duration::from_millis(100);

/// How long an ending (revoked grant or token) is remembered after its tokens are gone, so a
/// late re-delivery of an older issuance cannot bring them back. Far longer than the log can
/// lag behind a command on this instance.
pub(super) const TOMBSTONE_LIFETIME: chrono::Duration = chrono::Duration::minutes(10);

const FOLLOW_BATCH: i64 = 1000;
const FOLLOW_TO_END_TIMEOUT: Duration = Duration::from_secs(5);

/// What the index knows of a presented token.
#[derive(Debug, PartialEq)]
pub enum TokenLookup {
    /// Held: its record, with the current state of its grant, client and user.
    Held(Box<TokenRecord>),
    /// Not held, and the index holds every access token: the token is not an active access
    /// token this instance knows of.
    Unknown,
    /// Not held, and the index had to leave tokens out: ask the view.
    NotHeld,
}

pub struct LiveIndex {
    db: Db,
    state: RwLock<LiveState>,
    capacity: usize,
    /// The follower's position; one follow at a time.
    followed: Mutex<Position>,
    /// When each open session was last used on this instance (by its hash): what the
    /// account page shows as "last active". Kept apart from the state, whose lock the hot
    /// paths share, and lost on restart.
    last_seen: std::sync::Mutex<std::collections::HashMap<String, DateTime<Utc>>>,
}

impl LiveIndex {
    fn read(&self) -> std::sync::RwLockReadGuard<'_, LiveState> {
        // A panic while holding the lock cannot leave a half-applied event behind (every
        // update is a handful of map operations), so a poisoned lock is still usable.
        self.state.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, LiveState> {
        self.state.write().unwrap_or_else(|e| e.into_inner())
    }

    /// The client as its events make it, if registered.
    pub fn client(&self, client_id: &str) -> Option<RegisteredClient> {
        self.read()
            .clients
            .get(client_id)
            .and_then(|c| c.value.registered().cloned())
    }

    /// The protected resource with this identifier, if registered.
    pub fn resource(&self, identifier: &str) -> Option<RegisteredResource> {
        self.read()
            .resources
            .get(identifier)
            .and_then(|r| r.value.registered().cloned())
    }

    /// The settings in force.
    pub fn settings(&self) -> SettingsValues {
        self.read()
            .settings
            .as_ref()
            .map(|s| s.value.values().clone())
            .unwrap_or_else(|| Settings::default().values().clone())
    }

    /// The access token with this hash, as of now.
    pub fn access_token(&self, token_hash: &SecretHash) -> TokenLookup {
        let state = self.read();
        let found = token_key(token_hash.as_hex()).and_then(|k| state.access_tokens.get(&k));
        let Some(token) = found else {
            return if state.complete {
                TokenLookup::Unknown
            } else {
                TokenLookup::NotHeld
            };
        };
        let mut digits = [0u8; 32];
        let grant_id = token.grant_id.as_str(&mut digits);
        let grant_revoked = state.grant_revoked(grant_id);
        let client_status = state
            .clients
            .get(&token.owner.client_id)
            .and_then(|c| c.value.registered())
            .map(|c| c.status.as_str().to_owned());
        let user_status = token.owner.username.as_ref().map(|username| {
            let disabled = state.user_disabled.get(username).is_some_and(|u| u.value);
            if disabled { "disabled" } else { "active" }.to_owned()
        });
        TokenLookup::Held(Box::new(TokenRecord {
            token_hash: token_hash.as_hex().to_owned(),
            kind: "access".to_owned(),
            grant_id: grant_id.to_owned(),
            client_id: token.owner.client_id.clone(),
            username: token.owner.username.clone(),
            scopes: token.scopes.to_string(),
            issued_at: view_time(token.issued_at),
            expires_at: view_time(token.expires_at),
            status: if token.revoked_at.is_some() {
                "revoked"
            } else {
                "active"
            }
            .to_owned(),
            ended_at: token.revoked_at.map(view_time),
            audience: token.audience().map(str::to_owned),
            act: token.act().map(str::to_owned),
            grant_status: if grant_revoked { "revoked" } else { "active" }.to_owned(),
            client_status,
            user_status,
        }))
    }

    /// The open session whose id hashes to `hash`, if it is open now.
    pub fn session(&self, hash: &SecretHash) -> Option<OpenSession> {
        self.read().sessions.get(hash.as_hex(), Utc::now()).cloned()
    }

    /// Notes that the session was used now.
    pub fn saw_session(&self, hash: &SecretHash) {
        let mut seen = self.last_seen.lock().expect("last-seen lock");
        seen.insert(hash.as_hex().to_owned(), Utc::now());
    }

    /// When the session was last used on this instance, if it was since the start.
    pub fn session_last_seen(&self, hash_hex: &str) -> Option<DateTime<Utc>> {
        self.last_seen
            .lock()
            .expect("last-seen lock")
            .get(hash_hex)
            .copied()
    }

    // ---- everyone else's ----------------------------------------------------------------

    /// Applies the events committed since the last call, in commit order; returns how many
    /// were read.
    pub async fn follow(&self) -> Result<usize, ProjectionError> {
        let mut position = self.followed.lock().await;
        let mut read = 0;
        loop {
            let mut tx = self.db.begin().await?;
            let events = event_log::read_after(&mut tx, *position, FOLLOW_BATCH).await?;
            drop(tx);
            let Some(last) = events.last().map(|e| e.position) else {
                return Ok(read);
            };
            for event in &events {
                self.apply_stored(event).await?;
            }
            read += events.len();
            *position = last;
            if events.len() < FOLLOW_BATCH as usize {
                return Ok(read);
            }
        }
    }

    /// Follows the log up to the last event committed when this is called, waiting
    /// (boundedly) for older transactions to end on Postgres. For whoever must see another
    /// process's change now rather than within [`FOLLOW_INTERVAL`] (tests, mostly).
    pub async fn follow_to_end(&self) -> Result<(), ProjectionError> {
        let Some(last) = event_log::last_position(&self.db).await? else {
            return Ok(());
        };
        let deadline = tokio::time::Instant::now() + FOLLOW_TO_END_TIMEOUT;
        loop {
            self.follow().await?;
            if *self.followed.lock().await >= last {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(ProjectionError::Lagging(last.global, FOLLOW_TO_END_TIMEOUT));
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }

    async fn apply_stored(&self, event: &StoredEvent) -> Result<(), ProjectionError> {
        async fn feed<A: Fed>(
            live: &LiveIndex,
            event: &StoredEvent,
        ) -> Result<(), ProjectionError> {
            let payload: A::Event = event.decode()?;
            A::feed(
                live,
                &event.aggregate_id,
                event.sequence,
                &payload,
                event.metadata.at,
            )
            .await
        }
        match event.aggregate_type.as_str() {
            Client::TYPE => feed::<Client>(self, event).await,
            Settings::TYPE => feed::<Settings>(self, event).await,
            User::TYPE => feed::<User>(self, event).await,
            Grant::TYPE => feed::<Grant>(self, event).await,
            Resource::TYPE => feed::<Resource>(self, event).await,
            _ => Ok(()),
        }
    }

    /// Drops what can no longer matter: expired tokens, and grants and endings past their
    /// tombstone lifetime. Returns how many tokens went.
    pub fn prune(&self, now: DateTime<Utc>) -> usize {
        let mut state = self.write();
        let before = state.access_tokens.len();
        state.access_tokens.retain(|_, t| t.expires_at > now);
        let horizon = now - TOMBSTONE_LIFETIME;
        state.grants.retain(|_, g| {
            g.expires_at.is_some_and(|e| e > now) || g.revoked_at.is_some_and(|r| r > horizon)
        });
        state.early_revocations.retain(|_, at| *at > horizon);
        state.sessions.prune(now);
        state.shared.prune();
        self.last_seen
            .lock()
            .expect("last-seen lock")
            .retain(|hash, _| state.sessions.get(hash, now).is_some());
        before - state.access_tokens.len()
    }
}
