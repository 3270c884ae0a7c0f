//! The live index's state, with no I/O: what it holds and the rules by which events change
//! it. The same events may arrive twice and in another order (once from the command that
//! committed them, again from the follower), and must leave the same state; the tests below
//! pin those rules.

use std::collections::HashMap;
use std::sync::Arc;

use authledger_domain::client::Client;
use authledger_domain::grant::GrantEvent;
use authledger_domain::resource::Resource;
use authledger_domain::secret::SecretHash;
use authledger_domain::settings::Settings;
use authledger_domain::user::UserEvent;
use chrono::{DateTime, Utc};
use cqrs_es::Aggregate;

use super::sessions;
use super::shards::Sharded;
use super::shared::Shared;
use crate::error::ProjectionError;

/// A SHA-256 token hash as raw bytes: half the memory of its hex form, for the largest map.
pub(super) type TokenKey = [u8; 32];

pub(super) fn token_key(hex: &str) -> Option<TokenKey> {
    let mut key = [0u8; 32];
    hex::decode_to_slice(hex, &mut key).ok()?;
    Some(key)
}

/// A value and the sequence of the last event of its aggregate it reflects.
pub(super) struct Versioned<T> {
    pub(super) sequence: i64,
    pub(super) value: T,
}

/// Keeps `value` under `key` as of `sequence`, unless a later one is held.
fn keep_later<T>(map: &mut HashMap<String, Versioned<T>>, key: &str, sequence: i64, value: T) {
    let current = map.get(key).map(|held| held.sequence);
    if current.is_none_or(|current| sequence > current) {
        map.insert(key.to_owned(), Versioned { sequence, value });
    }
}

/// Whose a grant (and so each of its tokens) is.
#[derive(Debug, PartialEq)]
pub(super) struct Owner {
    pub(super) client_id: String,
    pub(super) username: Option<String>,
}

/// A token's grant id: shared with the grant's entry when the grant has one, else, for an
/// id in the form this server makes them (a UUID as 32 lowercase hex digits), its 16 bytes
/// held in the token itself. Most tokens are client credentials, whose grants have no entry
/// (see `IssuedAccessToken::grant_entry_needed`): each paid for its id in a heap allocation
/// of its own (48 bytes with its counts), a fifth of what the token cost.
pub(super) enum TokenGrant {
    Shared(Arc<str>),
    Uuid([u8; 16]),
}

impl TokenGrant {
    /// `id` inline when it is 32 lowercase hex digits (so that it reads back the same),
    /// else in an allocation of its own.
    fn of(id: &str) -> TokenGrant {
        let lower_hex = |b: u8| b.is_ascii_digit() || (b'a'..=b'f').contains(&b);
        let mut bytes = [0u8; 16];
        match id.len() == 32 && id.bytes().all(lower_hex) {
            true if hex::decode_to_slice(id, &mut bytes).is_ok() => TokenGrant::Uuid(bytes),
            _ => TokenGrant::Shared(Arc::from(id)),
        }
    }

    /// The id as text, written into `digits` when held inline.
    pub(super) fn as_str<'a>(&'a self, digits: &'a mut [u8; 32]) -> &'a str {
        match self {
            TokenGrant::Shared(id) => id,
            TokenGrant::Uuid(bytes) => match hex::encode_to_slice(bytes, digits) {
                Ok(()) => std::str::from_utf8(digits).unwrap_or_default(),
                Err(_) => "",
            },
        }
    }
}

pub(super) struct LiveToken {
    pub(super) grant_id: TokenGrant,
    pub(super) owner: Arc<Owner>,
    pub(super) scopes: Arc<str>,
    pub(super) issued_at: DateTime<Utc>,
    pub(super) expires_at: DateTime<Utc>,
    /// Set once, never cleared.
    pub(super) revoked_at: Option<DateTime<Utc>>,
    /// What only some tokens carry, out of line: most tokens have neither, and every byte
    /// here is paid for each token held (24 of its 112 bytes before).
    pub(super) limits: Option<Box<Limits>>,
}

/// An access token's audience and `act` claim, when it has either.
pub(super) struct Limits {
    /// The resources it is for (RFC 8707), space-separated.
    pub(super) audience: Option<Arc<str>>,
    /// RFC 8693's `act` claim (JSON) when someone acts for the subject.
    pub(super) act: Option<Arc<str>>,
}

impl Limits {
    /// `None` (nothing allocated) for a token with neither.
    pub(super) fn of(audience: Option<Arc<str>>, act: Option<Arc<str>>) -> Option<Box<Limits>> {
        (audience.is_some() || act.is_some()).then(|| Box::new(Limits { audience, act }))
    }
}

impl LiveToken {
    pub(super) fn audience(&self) -> Option<&str> {
        self.limits.as_ref().and_then(|l| l.audience.as_deref())
    }

    pub(super) fn act(&self) -> Option<&str> {
        self.limits.as_ref().and_then(|l| l.act.as_deref())
    }
}

#[derive(Default)]
pub(super) struct LiveGrant {
    pub(super) owner: Option<Arc<Owner>>,
    pub(super) revoked_at: Option<DateTime<Utc>>,
    /// The grant this one was exchanged from (RFC 8693): its revocation ends this one's
    /// tokens at once, before the cascade revokes this grant for good.
    pub(super) source: Option<Arc<str>>,
    /// The latest expiry of any token this index holds for the grant: after it, and after the
    /// tombstone lifetime if revoked, the entry can go.
    pub(super) expires_at: Option<DateTime<Utc>>,
}

#[derive(Default)]
pub(super) struct LiveState {
    pub(super) clients: HashMap<String, Versioned<Client>>,
    /// Every protected resource (RFC 8707): an operator's short list of APIs, read on each
    /// token request that names one.
    pub(super) resources: HashMap<String, Versioned<Resource>>,
    pub(super) settings: Option<Versioned<Settings>>,
    /// Users whose status changed after registration: `true` if disabled. Users never
    /// disabled are absent (enabled), so this stays small however many users there are.
    pub(super) user_disabled: HashMap<String, Versioned<bool>>,
    /// Values boxed: a map's buckets are between seven sixteenths and seven eighths full, so a token
    /// held inline paid for its empty buckets at its full size (121 bytes each, a whole map's
    /// worth at each doubling); boxed, an empty bucket costs a key and a pointer.
    pub(super) access_tokens: Sharded<TokenKey, Box<LiveToken>>,
    pub(super) grants: Sharded<Arc<str>, Box<LiveGrant>>,
    /// Token endings seen before the token's issuance (or for tokens this index does not hold).
    pub(super) early_revocations: HashMap<TokenKey, DateTime<Utc>>,
    /// False once a token was left out for want of room: "not held" then means "ask the view".
    pub(super) complete: bool,
    /// Open sign-in sessions, by the hash of their id.
    pub(super) sessions: sessions::Sessions,
    pub(super) shared: Shared,
}

/// A grant event whose grant's owner the index does not know (a refresh of a grant whose
/// tokens it no longer holds); the follower loads it from the log.
pub(super) struct OwnerNeeded;

/// Applies the next event of a versioned aggregate if it is the next one; skips one already
/// applied. Returns false on a gap (or an aggregate not held), which the caller repairs by
/// loading the aggregate whole.
pub(super) fn apply_versioned<A: Aggregate>(
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
pub(super) struct IssuedAccessToken<'a> {
    pub(super) owner: Arc<Owner>,
    pub(super) scopes: &'a str,
    pub(super) hash: &'a SecretHash,
    pub(super) issued_at: DateTime<Utc>,
    pub(super) expires_at: DateTime<Utc>,
    pub(super) audience: Option<String>,
    pub(super) act: Option<String>,
    /// Whether its grant needs an entry of its own: it may issue more tokens (a refresh token
    /// came with this one, whose refreshes need the owner) or was exchanged from another
    /// (whose revocation ends it). A grant of one token and nothing more (client
    /// credentials, most of them) is found through its token, and gets an entry only if it
    /// is revoked: half of what such a token cost in memory.
    pub(super) grant_entry_needed: bool,
}

/// How far up a chain of exchanges a revocation is looked for (the cascade covers the rest).
const SOURCE_HOPS: usize = 8;

impl LiveState {
    /// Whether the grant, or one it was exchanged from, is revoked.
    pub(super) fn grant_revoked(&self, grant_id: &str) -> bool {
        let mut next = Some(grant_id);
        for _ in 0..SOURCE_HOPS {
            let Some(grant) = next.and_then(|id| self.grants.get(id)) else {
                return false;
            };
            if grant.revoked_at.is_some() {
                return true;
            }
            next = grant.source.as_deref();
        }
        false
    }

    /// Notes the grant a grant was exchanged from.
    pub(super) fn set_source(&mut self, grant_id: &str, source: &str) {
        // The source grant's own id when it is held (it usually is: its token was just
        // presented), rather than another copy of it for each grant exchanged from it.
        let source = match self.grants.get_key_value(source) {
            Some((held, _)) => held.clone(),
            None => Arc::from(source),
        };
        if let Some(grant) = self.grants.get_mut(grant_id) {
            grant.source.get_or_insert(source);
        }
    }

    pub(super) fn has_room(&mut self, capacity: usize) -> bool {
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

    pub(super) fn apply_session(&mut self, username: &str, event: &UserEvent, at: DateTime<Utc>) {
        match event {
            UserEvent::SessionStarted {
                id_hash,
                expires_at,
                ..
            } => self
                .sessions
                .started(id_hash.as_hex(), username, *expires_at),
            UserEvent::SessionEnded { id_hash, .. } => self.sessions.ended(id_hash.as_hex(), at),
            _ => {}
        }
    }

    /// Keeps `client` as of `sequence`, unless a later one is held.
    pub(super) fn set_client(&mut self, client_id: &str, sequence: i64, client: Client) {
        keep_later(&mut self.clients, client_id, sequence, client);
    }

    /// Keeps `resource` as of `sequence`, unless a later one is held.
    pub(super) fn set_resource(&mut self, identifier: &str, sequence: i64, resource: Resource) {
        keep_later(&mut self.resources, identifier, sequence, resource);
    }

    /// Keeps `settings` as of `sequence`, unless a later one is held.
    pub(super) fn set_settings(&mut self, sequence: i64, settings: Settings) {
        if self.settings.as_ref().is_none_or(|s| sequence > s.sequence) {
            self.settings = Some(Versioned {
                sequence,
                value: settings,
            });
        }
    }

    pub(super) fn set_user(&mut self, username: &str, sequence: i64, disabled: bool) {
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
    pub(super) fn grant_entry(
        &mut self,
        grant_id: &str,
        owner: Option<&Arc<Owner>>,
        token_expiry: DateTime<Utc>,
    ) -> Arc<str> {
        let id = match self.grants.get_key_value(grant_id) {
            Some((id, _)) => id.clone(),
            None => {
                let id: Arc<str> = Arc::from(grant_id);
                self.grants.insert(id.clone(), Box::default());
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

    /// How a new token holds its grant's id: shared with the grant's entry when the grant
    /// needs one (see `IssuedAccessToken::grant_entry_needed`) or already has one, else
    /// inline where it can be.
    pub(super) fn token_grant(
        &mut self,
        grant_id: &str,
        entry_needed: bool,
        owner: &Arc<Owner>,
        expires_at: DateTime<Utc>,
    ) -> TokenGrant {
        match entry_needed || self.grants.contains_key(grant_id) {
            true => TokenGrant::Shared(self.grant_entry(grant_id, Some(owner), expires_at)),
            false => TokenGrant::of(grant_id),
        }
    }

    pub(super) fn issue(&mut self, grant_id: &str, token: IssuedAccessToken<'_>, capacity: usize) {
        let IssuedAccessToken {
            owner,
            scopes,
            hash,
            issued_at,
            expires_at,
            audience,
            act,
            grant_entry_needed,
        } = token;
        let Some(key) = token_key(hash.as_hex()) else {
            return;
        };
        if expires_at <= Utc::now() || self.access_tokens.contains_key(&key) {
            return;
        }
        let grant_id = self.token_grant(grant_id, grant_entry_needed, &owner, expires_at);
        if !self.has_room(capacity) {
            return;
        }
        let revoked_at = self.early_revocations.remove(&key);
        self.access_tokens.insert(
            key,
            Box::new(LiveToken {
                grant_id,
                owner,
                scopes: self.shared.text(scopes),
                issued_at,
                expires_at,
                revoked_at,
                limits: Limits::of(
                    audience.map(|a| self.shared.text(&a)),
                    act.map(|a| self.shared.text(&a)),
                ),
            }),
        );
    }

    pub(super) fn apply_grant(
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
                refresh_token_hash,
                audience,
                exchange,
                ..
            } => {
                let source = exchange.as_ref().and_then(|e| e.source_grant.as_deref());
                let owner = self
                    .shared
                    .owner(client_id.as_str(), user.as_ref().map(|u| u.as_str()));
                let token = IssuedAccessToken {
                    owner,
                    scopes: &scopes.to_string(),
                    hash: access_token_hash,
                    issued_at: at,
                    expires_at: *access_expires_at,
                    audience: crate::grants::audience_text(audience),
                    act: exchange
                        .as_ref()
                        .and_then(|e| e.act_claim())
                        .map(|act| act.to_string()),
                    grant_entry_needed: refresh_token_hash.is_some() || source.is_some(),
                };
                self.issue(grant_id, token, capacity);
                if let Some(source) = source {
                    self.set_source(grant_id, source);
                }
            }
            GrantEvent::TokensRefreshed {
                scopes,
                access_token_hash,
                access_expires_at,
                audience,
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
                    audience: crate::grants::audience_text(audience),
                    act: None,
                    grant_entry_needed: true,
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
            | GrantEvent::DeviceAuthorizationStarted { .. }
            | GrantEvent::DeviceAuthorizationApproved { .. }
            | GrantEvent::DeviceAuthorizationDenied { .. }
            | GrantEvent::DeviceCodeRedeemed { .. }
            | GrantEvent::CodeRedeemed { .. }
            | GrantEvent::CodeReplayDetected { .. }
            | GrantEvent::RefreshReplayDetected { .. } => {}
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
