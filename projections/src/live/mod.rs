//! `live`: the in-memory read model behind the hot paths of a running server.
//!
//! Introspection, userinfo and client authentication run on every API call a client makes, so
//! they must not cost a database round trip. This index holds what they need (clients, the
//! settings, the live access tokens, which grants are revoked, which users are disabled) and is
//! kept correct by the event stream alone, from two sides:
//!
//! - **this instance's own commands**: the store hands each command's committed events (and the
//!   aggregate they produced) to the index before the command returns, so a token is
//!   introspectable, and a revocation visible, to the very next request on this instance;
//! - **everyone else** (the CLI, other instances): [`LiveIndex::follow`] reads the commit-ordered
//!   log after its own position, like a projection without a checkpoint. The server calls it
//!   every [`FOLLOW_INTERVAL`], so their changes show here within about that long.
//!
//! Both sides deliver the same events, in different orders, and every rule below is written so
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

use std::sync::{Arc, RwLock};
use std::time::Duration;

use authledger_domain::client::{Client, RegisteredClient};
use authledger_domain::grant::{Grant, GrantEvent};
use authledger_domain::secret::SecretHash;
use authledger_domain::settings::{Settings, SettingsValues, SETTINGS_ID};
use authledger_domain::user::UserEvent;
use chrono::{DateTime, Utc};
use tokio::sync::Mutex;

mod load;
mod sessions;
mod state;

use load::load_aggregate;

pub use sessions::OpenSession;

use state::{apply_versioned, token_key, LiveState, Owner, OwnerNeeded, Versioned};

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
        let grant_revoked = state
            .grants
            .get(&token.grant_id)
            .is_some_and(|g| g.revoked_at.is_some());
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
            grant_id: token.grant_id.to_string(),
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
            grant_status: if grant_revoked { "revoked" } else { "active" }.to_owned(),
            client_status,
            user_status,
        }))
    }

    // ---- this instance's commands -------------------------------------------------------

    /// A client command committed: `client` is the aggregate after `sequence`.
    pub fn client_committed(&self, client_id: &str, sequence: i64, client: &Client) {
        let mut state = self.write();
        let current = state.clients.get(client_id).map(|c| c.sequence);
        if current.is_none_or(|current| sequence > current) {
            state.clients.insert(
                client_id.to_owned(),
                Versioned {
                    sequence,
                    value: client.clone(),
                },
            );
        }
    }

    /// A settings command committed.
    pub fn settings_committed(&self, sequence: i64, settings: &Settings) {
        let mut state = self.write();
        if state
            .settings
            .as_ref()
            .is_none_or(|s| sequence > s.sequence)
        {
            state.settings = Some(Versioned {
                sequence,
                value: settings.clone(),
            });
        }
    }

    /// A user command committed `events`: the user's status after `sequence`, and the
    /// sessions they start and end.
    pub fn user_committed<'a>(
        &self,
        username: &str,
        sequence: i64,
        disabled: bool,
        events: impl IntoIterator<Item = (&'a UserEvent, DateTime<Utc>)>,
    ) {
        let mut state = self.write();
        state.set_user(username, sequence, disabled);
        for (event, at) in events {
            state.apply_session(username, event, at);
        }
    }

    /// The open session whose id hashes to `hash`, if it is open now.
    pub fn session(&self, hash: &SecretHash) -> Option<OpenSession> {
        self.read().sessions.get(hash.as_hex(), Utc::now()).cloned()
    }

    /// A grant command committed these events; `client_id` and `username` are the grant's.
    pub fn grant_committed<'a>(
        &self,
        grant_id: &str,
        client_id: &str,
        username: Option<&str>,
        events: impl IntoIterator<Item = (&'a GrantEvent, DateTime<Utc>)>,
    ) {
        let owner = Arc::new(Owner {
            client_id: client_id.to_owned(),
            username: username.map(str::to_owned),
        });
        let mut state = self.write();
        for (event, at) in events {
            // The owner is given, so the event always applies.
            let _ = state.apply_grant(grant_id, event, at, Some(&owner), self.capacity);
        }
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
        match event.aggregate_type.as_str() {
            "Client" => {
                let applied = {
                    let mut state = self.write();
                    apply_versioned(
                        state.clients.get_mut(&event.aggregate_id),
                        event.sequence,
                        || event.decode(),
                    )?
                };
                if !applied {
                    // A gap (or a client this index never saw): load it whole.
                    let loaded = load_aggregate::<Client>(&self.db, &event.aggregate_id).await?;
                    if let Some((sequence, client)) = loaded {
                        self.client_committed(&event.aggregate_id, sequence, &client);
                    }
                }
            }
            "Settings" if event.aggregate_id == SETTINGS_ID => {
                let applied = {
                    let mut state = self.write();
                    apply_versioned(state.settings.as_mut(), event.sequence, || event.decode())?
                };
                if !applied {
                    if let Some((sequence, settings)) =
                        load_aggregate::<Settings>(&self.db, SETTINGS_ID).await?
                    {
                        self.settings_committed(sequence, &settings);
                    }
                }
            }
            "User" => {
                let user_event = event.decode::<UserEvent>()?;
                let mut state = self.write();
                match user_event {
                    UserEvent::UserDisabled {} => {
                        state.set_user(&event.aggregate_id, event.sequence, true)
                    }
                    UserEvent::UserEnabled {} => {
                        state.set_user(&event.aggregate_id, event.sequence, false)
                    }
                    ref other => state.apply_session(&event.aggregate_id, other, event.metadata.at),
                }
            }
            "Grant" => {
                let grant_event: GrantEvent = event.decode()?;
                let at = event.metadata.at;
                let outcome = self.write().apply_grant(
                    &event.aggregate_id,
                    &grant_event,
                    at,
                    None,
                    self.capacity,
                );
                if let Err(OwnerNeeded) = outcome {
                    let loaded = load_aggregate::<Grant>(&self.db, &event.aggregate_id).await?;
                    if let Some(grant) = loaded.as_ref().and_then(|(_, g)| g.state()) {
                        self.grant_committed(
                            &event.aggregate_id,
                            &grant.client_id,
                            grant.user.as_ref().map(|u| u.as_str()),
                            [(&grant_event, at)],
                        );
                    }
                }
            }
            _ => {}
        }
        Ok(())
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
        before - state.access_tokens.len()
    }
}
