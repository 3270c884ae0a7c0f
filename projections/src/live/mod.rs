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

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use authledger_domain::client::{Client, RegisteredClient};
use authledger_domain::grant::{Grant, GrantEvent};
use authledger_domain::secret::SecretHash;
use authledger_domain::settings::{Settings, SettingsValues, SETTINGS_ID};
use authledger_domain::user::UserEvent;
use chrono::{DateTime, Utc};
use cqrs_es::Aggregate;
use tokio::sync::Mutex;

mod sessions;

pub use sessions::OpenSession;

use crate::db::Db;
use crate::error::ProjectionError;
use crate::event_log::{self, Position, StoredEvent};
use crate::grants::TokenRecord;
use crate::{on_tx, view_time};

/// How often a server follows the log for changes made elsewhere: the bound on how stale this
/// index can be about another process's events (plus, on Postgres, the time the oldest open
/// transaction takes to end).
pub const FOLLOW_INTERVAL: Duration = Duration::from_millis(100);

/// How long an ending (revoked grant or token) is remembered after its tokens are gone, so a
/// late re-delivery of an older issuance cannot bring them back. Far longer than the log can
/// lag behind a command on this instance.
const TOMBSTONE_LIFETIME: chrono::Duration = chrono::Duration::minutes(10);

const FOLLOW_BATCH: i64 = 1000;
const FOLLOW_TO_END_TIMEOUT: Duration = Duration::from_secs(5);

/// A SHA-256 token hash as raw bytes: half the memory of its hex form, for the largest map.
type TokenKey = [u8; 32];

fn token_key(hex: &str) -> Option<TokenKey> {
    if hex.len() != 64 {
        return None;
    }
    let mut key = [0u8; 32];
    for (i, byte) in key.iter_mut().enumerate() {
        *byte = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(key)
}

/// A value and the sequence of the last event of its aggregate it reflects.
struct Versioned<T> {
    sequence: i64,
    value: T,
}

/// Whose a grant (and so each of its tokens) is.
#[derive(Debug, PartialEq)]
struct Owner {
    client_id: String,
    username: Option<String>,
}

struct LiveToken {
    grant_id: Arc<str>,
    owner: Arc<Owner>,
    scopes: Arc<str>,
    issued_at: DateTime<Utc>,
    expires_at: DateTime<Utc>,
    /// Set once, never cleared.
    revoked_at: Option<DateTime<Utc>>,
}

#[derive(Default)]
struct LiveGrant {
    owner: Option<Arc<Owner>>,
    revoked_at: Option<DateTime<Utc>>,
    /// The latest expiry of any token this index holds for the grant: after it, and after the
    /// tombstone lifetime if revoked, the entry can go.
    expires_at: Option<DateTime<Utc>>,
}

#[derive(Default)]
struct LiveState {
    clients: HashMap<String, Versioned<Client>>,
    settings: Option<Versioned<Settings>>,
    /// Users whose status changed after registration: `true` if disabled. Users never
    /// disabled are absent (enabled), so this stays small however many users there are.
    user_disabled: HashMap<String, Versioned<bool>>,
    access_tokens: HashMap<TokenKey, LiveToken>,
    grants: HashMap<Arc<str>, LiveGrant>,
    /// Token endings seen before the token's issuance (or for tokens this index does not hold).
    early_revocations: HashMap<TokenKey, DateTime<Utc>>,
    /// False once a token was left out for want of room: "not held" then means "ask the view".
    complete: bool,
    /// Open sign-in sessions, by the hash of their id.
    sessions: sessions::Sessions,
}

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

/// A grant event whose grant's owner the index does not know (a refresh of a grant whose
/// tokens it no longer holds); the follower loads it from the log.
struct OwnerNeeded;

pub struct LiveIndex {
    db: Db,
    state: RwLock<LiveState>,
    capacity: usize,
    /// The follower's position; one follow at a time.
    followed: Mutex<Position>,
}

impl LiveIndex {
    /// Fills the index from the views and the client and settings aggregates, and starts
    /// following the log at the views' checkpoint. `capacity` caps the access tokens held.
    pub async fn load(db: &Db, capacity: usize) -> Result<LiveIndex, ProjectionError> {
        let mut state = LiveState {
            complete: true,
            ..Default::default()
        };
        // One snapshot for the rows and the checkpoints that say what they include.
        let mut tx = db.begin().await?;
        if let crate::db::DbTx::Postgres(tx) = &mut tx {
            sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
                .execute(&mut **tx)
                .await?;
        }
        let checkpoints = "SELECT transaction_id, global_position FROM projection_checkpoints \
                           WHERE projection IN ('grants', 'users', 'sessions') \
                           ORDER BY transaction_id, global_position LIMIT 1";
        let start: Option<(i64, i64)> =
            on_tx!(&mut tx, conn => sqlx::query_as(checkpoints).fetch_optional(conn).await)?;
        let now = view_time(Utc::now());
        let tokens = "SELECT token_hash, grant_id, client_id, username, scopes, issued_at, expires_at \
                      FROM token_view WHERE kind = 'access' AND status = 'active' AND expires_at > $1";
        type TokenRow = (
            String,
            String,
            String,
            Option<String>,
            String,
            String,
            String,
        );
        let rows: Vec<TokenRow> =
            on_tx!(&mut tx, conn => sqlx::query_as(tokens).bind(&now).fetch_all(conn).await)?;
        let disabled = "SELECT username, version FROM user_view WHERE status = 'disabled'";
        let users: Vec<(String, i64)> =
            on_tx!(&mut tx, conn => sqlx::query_as(disabled).fetch_all(conn).await)?;
        let open = "SELECT session_hash, username, expires_at FROM session_view \
                    WHERE ended_at IS NULL AND expires_at > $1";
        let open: Vec<(String, String, String)> =
            on_tx!(&mut tx, conn => sqlx::query_as(open).bind(&now).fetch_all(conn).await)?;
        drop(tx);

        let time = |s: &str| {
            DateTime::parse_from_rfc3339(s)
                .map(|t| t.with_timezone(&Utc))
                .map_err(|e| ProjectionError::Decode(format!("token_view time {s}: {e}")))
        };
        let mut owners: HashMap<(String, Option<String>), Arc<Owner>> = HashMap::new();
        for (hash, grant_id, client_id, username, scopes, issued_at, expires_at) in rows {
            let Some(key) = token_key(&hash) else {
                continue;
            };
            let owner = owners
                .entry((client_id.clone(), username.clone()))
                .or_insert_with(|| {
                    Arc::new(Owner {
                        client_id,
                        username,
                    })
                })
                .clone();
            let expires_at = time(&expires_at)?;
            let grant_id = state.grant_entry(&grant_id, Some(&owner), expires_at);
            if !state.has_room(capacity) {
                continue;
            }
            state.access_tokens.insert(
                key,
                LiveToken {
                    grant_id,
                    owner,
                    scopes: Arc::from(scopes),
                    issued_at: time(&issued_at)?,
                    expires_at,
                    revoked_at: None,
                },
            );
        }
        for (hash, username, expires_at) in open {
            state.sessions.started(&hash, &username, time(&expires_at)?);
        }
        for (username, version) in users {
            state.user_disabled.insert(
                username,
                Versioned {
                    sequence: version,
                    value: true,
                },
            );
        }
        for (id, sequence, client) in load_aggregates::<Client>(db).await? {
            state.clients.insert(
                id,
                Versioned {
                    sequence,
                    value: client,
                },
            );
        }
        if let Some((_, sequence, settings)) = load_aggregates::<Settings>(db)
            .await?
            .into_iter()
            .find(|(id, _, _)| id == SETTINGS_ID)
        {
            state.settings = Some(Versioned {
                sequence,
                value: settings,
            });
        }
        let start = start
            .map(|(transaction, global)| Position {
                transaction,
                global,
            })
            .unwrap_or_default();
        Ok(LiveIndex {
            db: db.clone(),
            state: RwLock::new(state),
            capacity,
            followed: Mutex::new(start),
        })
    }

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

/// Applies the next event of a versioned aggregate if it is the next one; skips one already
/// applied. Returns false on a gap (or an aggregate not held), which the caller repairs by
/// loading the aggregate whole.
fn apply_versioned<A: Aggregate>(
    entry: Option<&mut Versioned<A>>,
    sequence: i64,
    decode: impl FnOnce() -> Result<A::Event, ProjectionError>,
) -> Result<bool, ProjectionError> {
    match entry {
        Some(entry) if sequence <= entry.sequence => Ok(true),
        Some(entry) if sequence == entry.sequence + 1 => {
            entry.value.apply(decode()?);
            entry.sequence = sequence;
            Ok(true)
        }
        _ => Ok(false),
    }
}

/// An access token as an event issues it.
struct IssuedAccessToken<'a> {
    owner: Arc<Owner>,
    scopes: &'a str,
    hash: &'a SecretHash,
    issued_at: DateTime<Utc>,
    expires_at: DateTime<Utc>,
}

impl LiveState {
    fn has_room(&mut self, capacity: usize) -> bool {
        if self.access_tokens.len() < capacity {
            return true;
        }
        if self.complete {
            tracing::warn!(
                capacity,
                "live token index is full: introspection of tokens left out reads the view"
            );
        }
        self.complete = false;
        false
    }

    fn apply_session(&mut self, username: &str, event: &UserEvent, at: DateTime<Utc>) {
        match event {
            UserEvent::SessionStarted {
                id_hash,
                expires_at,
            } => self
                .sessions
                .started(id_hash.as_hex(), username, *expires_at),
            UserEvent::SessionEnded { id_hash, .. } => self.sessions.ended(id_hash.as_hex(), at),
            _ => {}
        }
    }

    fn set_user(&mut self, username: &str, sequence: i64, disabled: bool) {
        let current = self.user_disabled.get(username).map(|u| u.sequence);
        if current.is_none_or(|current| sequence > current) {
            self.user_disabled.insert(
                username.to_owned(),
                Versioned {
                    sequence,
                    value: disabled,
                },
            );
        }
    }

    /// The grant's entry (created if new), its owner filled in if known; returns its shared id.
    fn grant_entry(
        &mut self,
        grant_id: &str,
        owner: Option<&Arc<Owner>>,
        token_expiry: DateTime<Utc>,
    ) -> Arc<str> {
        let id = match self.grants.get_key_value(grant_id) {
            Some((id, _)) => id.clone(),
            None => {
                let id: Arc<str> = Arc::from(grant_id);
                self.grants.insert(id.clone(), LiveGrant::default());
                id
            }
        };
        if let Some(grant) = self.grants.get_mut(grant_id) {
            if grant.owner.is_none() {
                grant.owner = owner.cloned();
            }
            grant.expires_at = Some(
                grant
                    .expires_at
                    .map_or(token_expiry, |e| e.max(token_expiry)),
            );
        }
        id
    }

    fn issue(&mut self, grant_id: &str, token: IssuedAccessToken<'_>, capacity: usize) {
        let IssuedAccessToken {
            owner,
            scopes,
            hash,
            issued_at,
            expires_at,
        } = token;
        let Some(key) = token_key(hash.as_hex()) else {
            return;
        };
        if expires_at <= Utc::now() || self.access_tokens.contains_key(&key) {
            return;
        }
        let grant_id = self.grant_entry(grant_id, Some(&owner), expires_at);
        if !self.has_room(capacity) {
            return;
        }
        let revoked_at = self.early_revocations.remove(&key);
        self.access_tokens.insert(
            key,
            LiveToken {
                grant_id,
                owner,
                scopes: Arc::from(scopes),
                issued_at,
                expires_at,
                revoked_at,
            },
        );
    }

    fn apply_grant(
        &mut self,
        grant_id: &str,
        event: &GrantEvent,
        at: DateTime<Utc>,
        owner: Option<&Arc<Owner>>,
        capacity: usize,
    ) -> Result<(), OwnerNeeded> {
        match event {
            GrantEvent::TokensIssued {
                client_id,
                user,
                scopes,
                access_token_hash,
                access_expires_at,
                ..
            } => {
                let owner = Arc::new(Owner {
                    client_id: client_id.clone(),
                    username: user.as_ref().map(|u| u.as_str().to_owned()),
                });
                let token = IssuedAccessToken {
                    owner,
                    scopes: &scopes.to_string(),
                    hash: access_token_hash,
                    issued_at: at,
                    expires_at: *access_expires_at,
                };
                self.issue(grant_id, token, capacity);
            }
            GrantEvent::TokensRefreshed {
                scopes,
                access_token_hash,
                access_expires_at,
                ..
            } => {
                let known = self.grants.get(grant_id).and_then(|g| g.owner.clone());
                let owner = known.or_else(|| owner.cloned()).ok_or(OwnerNeeded)?;
                let token = IssuedAccessToken {
                    owner,
                    scopes: &scopes.to_string(),
                    hash: access_token_hash,
                    issued_at: at,
                    expires_at: *access_expires_at,
                };
                self.issue(grant_id, token, capacity);
            }
            GrantEvent::TokenRevoked { token_hash } => {
                let Some(key) = token_key(token_hash.as_hex()) else {
                    return Ok(());
                };
                match self.access_tokens.get_mut(&key) {
                    Some(token) => {
                        token.revoked_at.get_or_insert(at);
                    }
                    None => {
                        self.early_revocations.insert(key, at);
                    }
                }
            }
            GrantEvent::GrantRevoked { .. } => {
                let grant = match self.grants.get_mut(grant_id) {
                    Some(grant) => grant,
                    None => self.grants.entry(Arc::from(grant_id)).or_default(),
                };
                grant.revoked_at.get_or_insert(at);
            }
            GrantEvent::CodeIssued { .. }
            | GrantEvent::CodeRedeemed { .. }
            | GrantEvent::CodeReplayDetected { .. }
            | GrantEvent::RefreshReplayDetected { .. } => {}
        }
        Ok(())
    }
}

/// Every aggregate of type `A`, folded from its events: `(id, last sequence, aggregate)`.
async fn load_aggregates<A: Aggregate>(db: &Db) -> Result<Vec<(String, i64, A)>, ProjectionError> {
    let events = event_log::read_type(db, A::TYPE).await?;
    let mut aggregates: Vec<(String, i64, A)> = Vec::new();
    for event in events {
        let payload: A::Event = event.decode()?;
        match aggregates.last_mut() {
            Some((id, sequence, aggregate)) if *id == event.aggregate_id => {
                aggregate.apply(payload);
                *sequence = event.sequence;
            }
            _ => {
                let mut aggregate = A::default();
                aggregate.apply(payload);
                aggregates.push((event.aggregate_id.clone(), event.sequence, aggregate));
            }
        }
    }
    Ok(aggregates)
}

/// One aggregate folded from its events, if it has any.
async fn load_aggregate<A: Aggregate>(
    db: &Db,
    aggregate_id: &str,
) -> Result<Option<(i64, A)>, ProjectionError> {
    let events = event_log::read_aggregate(db, A::TYPE, aggregate_id).await?;
    let Some(last) = events.last().map(|e| e.sequence) else {
        return Ok(None);
    };
    Ok(Some((last, event_log::fold(&events)?)))
}

#[cfg(test)]
mod tests {
    //! The ordering rules: the same events, delivered by a command and again by the follower
    //! in another order, leave the same state.
    use super::*;
    use authledger_domain::grant::RevocationReason;
    use authledger_domain::oauth::{GrantType, Scopes};
    use authledger_domain::user::Username;

    fn hex(key: &TokenKey) -> String {
        key.iter().map(|b| format!("{b:02x}")).collect()
    }

    fn hash(n: u8) -> SecretHash {
        SecretHash::from_hex(&format!("{n:02x}").repeat(32)).unwrap()
    }

    fn issued(access: u8) -> GrantEvent {
        GrantEvent::TokensIssued {
            grant_type: GrantType::AuthorizationCode,
            client_id: "app".into(),
            user: Some(Username::parse("alice").unwrap()),
            scopes: Scopes::parse("openid").unwrap(),
            auth_time: None,
            access_token_hash: hash(access),
            access_expires_at: Utc::now() + chrono::Duration::hours(1),
            refresh_token_hash: None,
            refresh_expires_at: None,
        }
    }

    fn state_after(events: &[GrantEvent]) -> LiveState {
        let mut state = LiveState {
            complete: true,
            ..Default::default()
        };
        for event in events {
            state
                .apply_grant("g1", event, Utc::now(), None, 10)
                .unwrap_or_else(|_| panic!("owner needed for {event:?}"));
        }
        state
    }

    fn token_revoked(state: &LiveState, n: u8) -> bool {
        let token = &state.access_tokens[&token_key(hash(n).as_hex()).unwrap()];
        token.revoked_at.is_some()
    }

    #[test]
    fn token_keys_round_trip_hex() {
        let hex_hash = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
        let key = token_key(hex_hash).unwrap();
        assert_eq!(hex(&key), hex_hash);
        assert_eq!(token_key("zz"), None);
        assert_eq!(token_key(&"g".repeat(64)), None);
    }

    #[test]
    fn a_revocation_seen_before_its_issuance_still_ends_the_token() {
        let revoked = GrantEvent::TokenRevoked {
            token_hash: hash(1),
        };
        let in_order = state_after(&[issued(1), revoked.clone()]);
        let reversed = state_after(&[revoked, issued(1)]);
        assert!(token_revoked(&in_order, 1));
        assert!(token_revoked(&reversed, 1));
    }

    #[test]
    fn a_revoked_grant_stays_revoked_whatever_arrives_after() {
        let revoked = GrantEvent::GrantRevoked {
            reason: RevocationReason::Admin,
        };
        let state = state_after(&[revoked.clone(), issued(1), issued(1), revoked]);
        assert!(state.grants["g1"].revoked_at.is_some());
        assert!(
            !token_revoked(&state, 1),
            "the token itself was not, its grant was"
        );
    }

    #[test]
    fn a_repeated_issuance_changes_nothing() {
        let state = state_after(&[
            issued(1),
            GrantEvent::TokenRevoked {
                token_hash: hash(1),
            },
            issued(1),
        ]);
        assert!(
            token_revoked(&state, 1),
            "a re-delivered issuance does not resurrect"
        );
        assert_eq!(state.access_tokens.len(), 1);
    }

    #[test]
    fn a_refresh_of_a_grant_not_held_asks_for_its_owner() {
        let refreshed = GrantEvent::TokensRefreshed {
            previous_refresh_token_hash: hash(9),
            scopes: Scopes::parse("openid").unwrap(),
            access_token_hash: hash(2),
            access_expires_at: Utc::now() + chrono::Duration::hours(1),
            refresh_token_hash: hash(3),
            refresh_expires_at: Utc::now() + chrono::Duration::days(1),
        };
        let mut state = LiveState::default();
        assert!(state
            .apply_grant("g1", &refreshed, Utc::now(), None, 10)
            .is_err());
        let held = state_after(&[issued(1), refreshed]);
        assert_eq!(
            held.access_tokens.len(),
            2,
            "the grant's owner came with its issuance"
        );
    }

    #[test]
    fn past_capacity_tokens_are_left_out_and_the_index_says_so() {
        let mut state = LiveState {
            complete: true,
            ..Default::default()
        };
        for n in 1..=3 {
            let _ = state.apply_grant("g1", &issued(n), Utc::now(), None, 2);
        }
        assert_eq!(state.access_tokens.len(), 2);
        assert!(!state.complete);
    }

    #[test]
    fn versioned_aggregates_take_only_the_next_event() {
        use authledger_domain::settings::{Setting, SettingsEvent};
        let mut settings = Versioned {
            sequence: 2,
            value: Settings::default(),
        };
        let change = || {
            Ok(SettingsEvent::SettingsChanged {
                setting: Setting::AccessTokenTtl(60),
            })
        };
        assert!(
            apply_versioned(Some(&mut settings), 2, change).unwrap(),
            "seen: skipped"
        );
        assert_eq!(settings.value.values().access_token_ttl, 3600);
        assert!(
            !apply_versioned(Some(&mut settings), 4, change).unwrap(),
            "a gap"
        );
        assert!(apply_versioned(Some(&mut settings), 3, change).unwrap());
        assert_eq!(
            (settings.sequence, settings.value.values().access_token_ttl),
            (3, 60)
        );
    }
}
