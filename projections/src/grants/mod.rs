//! `grants`: the grant view, the token index (token hash -> grant, client, user, scopes, times,
//! state) and the hourly usage that events tell (tokens issued, refreshed, revoked).
//!
//! Whether a token may be used is answered by [`TokenRecord::is_active`]: the token and its
//! grant must be live and unexpired, and its client and user enabled, as the views say now. So
//! disabling a client or user makes its tokens inactive at once, even before the cascade has
//! revoked the grants for good.

mod read;

use async_trait::async_trait;
use authledger_domain::grant::{Exchange, GrantEvent};
use authledger_domain::secret::SecretHash;
use chrono::{DateTime, Utc};

use crate::batch::{Value, ViewTx};
use crate::event_log::StoredEvent;
use crate::usage::usage_hour;
use crate::{on_tx, view_time};
use crate::{Projection, ProjectionError};
pub use read::{GrantRecord, Subject, TokenRecord};

pub struct GrantsView;

/// Adds to the hourly count of what events tell (tokens issued, refreshed, revoked).
pub(crate) fn add_event_usage(
    tx: &mut ViewTx,
    at: DateTime<Utc>,
    client_id: &str,
    username: Option<&str>,
    metric: &'static str,
    count: i64,
) {
    tx.count(
        "usage_events_hourly",
        usage_hour(at),
        client_id,
        username,
        metric,
        count,
    );
}

const GRANT_VIEW_INSERT: &str = "INSERT INTO grant_view (grant_id, grant_type, client_id, \
     username, scopes, status, created_at, updated_at, version, session_hash)";

/// A new `grant_view` row.
struct NewGrant<'a> {
    grant_id: &'a str,
    grant_type: &'a str,
    client_id: &'a str,
    username: Option<&'a str>,
    scopes: &'a str,
    /// The sign-in session's id hash (hex), for a person's code grant.
    session: Option<&'a str>,
}

impl NewGrant<'_> {
    /// The row in [`GRANT_VIEW_INSERT`]'s column order, created at `at`.
    fn row<'b>(&'b self, at: &'b str, version: i64) -> [Value<'b>; 10] {
        [
            self.grant_id.into(),
            self.grant_type.into(),
            self.client_id.into(),
            self.username.into(),
            self.scopes.into(),
            "active".into(),
            at.into(),
            at.into(),
            version.into(),
            self.session.into(),
        ]
    }
}

/// What every token of one token response shares: its grant, client, user, scopes and time.
struct TokenOwner<'a> {
    grant_id: &'a str,
    client_id: &'a str,
    username: Option<&'a str>,
    scopes: &'a str,
    issued_at: &'a str,
    /// Space-separated resource identifiers, if the access token is restricted.
    audience: Option<&'a str>,
}

impl TokenOwner<'_> {
    /// Indexes the tokens of one response: `(kind, hash, expiry)` each.
    async fn insert(
        &self,
        tx: &mut ViewTx,
        tokens: &[(&str, &SecretHash, DateTime<Utc>)],
    ) -> Result<(), ProjectionError> {
        let head = "INSERT INTO token_view (token_hash, kind, grant_id, client_id, username, \
                    scopes, issued_at, expires_at, status, audience)";
        for (kind, hash, expires_at) in tokens {
            // The audience restricts access tokens; a refresh token is for this server.
            let audience = (*kind == "access").then_some(self.audience).flatten();
            let expires_at = view_time(*expires_at);
            let row = [
                hash.as_hex().into(),
                (*kind).into(),
                self.grant_id.into(),
                self.client_id.into(),
                self.username.into(),
                self.scopes.into(),
                self.issued_at.into(),
                expires_at.as_str().into(),
                "active".into(),
                audience.into(),
            ];
            tx.insert("token_view", head, "", &row).await?;
        }
        Ok(())
    }
}

/// An audience as the view keeps it: space-separated (identifiers hold no spaces), or NULL.
pub fn audience_text(audience: &[authledger_domain::resource::ResourceId]) -> Option<String> {
    (!audience.is_empty()).then(|| {
        audience
            .iter()
            .map(|r| r.as_str())
            .collect::<Vec<_>>()
            .join(" ")
    })
}

/// Ends the live tokens matching `condition` (`$3` is its argument); returns how many.
async fn end_tokens(
    tx: &mut ViewTx,
    status: &str,
    at: &str,
    condition: &str,
    argument: &str,
) -> Result<i64, ProjectionError> {
    let sql = format!(
        "UPDATE token_view SET status = $1, ended_at = $2 WHERE {condition} = $3 AND status = 'active'"
    );
    let ended = on_tx!(tx.db().await?, conn => sqlx::query(&sql)
        .bind(status)
        .bind(at)
        .bind(argument)
        .execute(conn)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(ended as i64)
}

/// What a token exchange's grant adds to its row: its source, `act` and the client acting.
async fn record_exchange(
    tx: &mut ViewTx,
    grant_id: &str,
    exchange: &Exchange,
) -> Result<(), ProjectionError> {
    let act = exchange.act_claim().map(|act| act.to_string());
    let sql = "UPDATE grant_view SET source_grant = $1, act = $2, acting_client_id = $3 \
               WHERE grant_id = $4";
    on_tx!(tx.db().await?, conn => sqlx::query(sql)
        .bind(exchange.source_grant.as_deref())
        .bind(act)
        .bind(exchange.acting_client())
        .bind(grant_id)
        .execute(conn)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(())
}

async fn grant_subject(
    tx: &mut ViewTx,
    grant_id: &str,
) -> Result<(String, Option<String>), ProjectionError> {
    grant_subject_if_any(tx, grant_id)
        .await?
        .ok_or_else(|| ProjectionError::Decode(format!("grant {grant_id} has no first event")))
}

/// The grant's client and user, if it has a row: every grant does once it has a user or
/// tokens; a device grant nobody approved has none.
async fn grant_subject_if_any(
    tx: &mut ViewTx,
    grant_id: &str,
) -> Result<Option<(String, Option<String>)>, ProjectionError> {
    if let Some(known) = tx.remembered_grant(grant_id) {
        return Ok(Some(known));
    }
    let sql = "SELECT client_id, username FROM grant_view WHERE grant_id = $1";
    let row: Option<(String, Option<String>)> = on_tx!(tx.db().await?, conn => sqlx::query_as(sql).bind(grant_id).fetch_optional(conn).await)?;
    Ok(row)
}

#[async_trait]
impl Projection for GrantsView {
    fn name(&self) -> &'static str {
        "grants"
    }

    fn tables(&self) -> &'static [&'static str] {
        &["grant_view", "token_view", "usage_events_hourly"]
    }

    async fn apply(&self, tx: &mut ViewTx, event: &StoredEvent) -> Result<(), ProjectionError> {
        if event.aggregate_type == "User" && event.event_type == "UserErased" {
            let id = event.aggregate_id.as_str();
            crate::personal::scrub_in(tx.db().await?, crate::personal::SCRUB_GRANT_VIEW, id)
                .await?;
            return Ok(());
        }
        if event.aggregate_type != "Grant" {
            return Ok(());
        }
        let grant_id = event.aggregate_id.as_str();
        let when = event.metadata.at;
        let at = view_time(when);
        let version = event.sequence;
        let touch = "UPDATE grant_view SET updated_at = $1, version = $2 WHERE grant_id = $3";
        let payload = event.decoded::<GrantEvent>()?;
        match &*payload {
            GrantEvent::CodeIssued {
                client_id,
                user,
                scopes,
                session,
                ..
            } => {
                tx.remember_grant(grant_id, client_id, Some(user.as_str()));
                let grant = NewGrant {
                    grant_id,
                    grant_type: "authorization_code",
                    client_id,
                    username: Some(user.as_str()),
                    scopes: &scopes.to_string(),
                    session: session.as_ref().map(|s| s.as_hex()),
                };
                let row = grant.row(&at, version);
                tx.insert("grant_view", GRANT_VIEW_INSERT, "", &row).await?;
            }
            GrantEvent::TokensIssued {
                grant_type,
                client_id,
                user,
                scopes,
                access_token_hash,
                access_expires_at,
                refresh_token_hash,
                refresh_expires_at,
                audience,
                exchange,
                ..
            } => {
                let audience = audience_text(audience);
                let username = user.as_ref().map(|u| u.as_str());
                let scopes = scopes.to_string();
                tx.remember_grant(grant_id, client_id, username);
                // A new grant's first event inserts its row (one index descent on Postgres,
                // where an upsert costs two); a code grant's row exists already, and its
                // tokens only move its times.
                let grant = NewGrant {
                    grant_id,
                    grant_type: grant_type.as_str(),
                    client_id,
                    username,
                    scopes: &scopes,
                    session: None,
                };
                let row = grant.row(&at, version);
                let tail = if event.sequence == 1 {
                    ""
                } else {
                    "ON CONFLICT (grant_id) DO UPDATE SET updated_at = excluded.updated_at, \
                     version = excluded.version"
                };
                tx.insert("grant_view", GRANT_VIEW_INSERT, tail, &row)
                    .await?;
                if let Some(exchange) = &exchange {
                    record_exchange(tx, grant_id, exchange).await?;
                }
                let mut issued = vec![("access", access_token_hash, *access_expires_at)];
                if let (Some(hash), Some(expires_at)) = (refresh_token_hash, refresh_expires_at) {
                    issued.push(("refresh", hash, *expires_at));
                }
                let owner = TokenOwner {
                    grant_id,
                    client_id,
                    username,
                    scopes: &scopes,
                    issued_at: &at,
                    audience: audience.as_deref(),
                };
                owner.insert(tx, &issued).await?;
                add_event_usage(tx, when, client_id, username, "tokens_issued", 1);
            }
            GrantEvent::TokensRefreshed {
                previous_refresh_token_hash,
                scopes,
                access_token_hash,
                access_expires_at,
                refresh_token_hash,
                refresh_expires_at,
                audience,
            } => {
                let audience = audience_text(audience);
                let (client_id, username) = grant_subject(tx, grant_id).await?;
                let username = username.as_deref();
                let scopes = scopes.to_string();
                end_tokens(
                    tx,
                    "rotated",
                    &at,
                    "token_hash",
                    previous_refresh_token_hash.as_hex(),
                )
                .await?;
                let owner = TokenOwner {
                    grant_id,
                    client_id: &client_id,
                    username,
                    scopes: &scopes,
                    issued_at: &at,
                    audience: audience.as_deref(),
                };
                owner
                    .insert(
                        tx,
                        &[
                            ("access", access_token_hash, *access_expires_at),
                            ("refresh", refresh_token_hash, *refresh_expires_at),
                        ],
                    )
                    .await?;
                on_tx!(tx.db().await?, conn => sqlx::query(touch).bind(&at).bind(version).bind(grant_id).execute(conn).await.map(|r| r.rows_affected()))?;
                add_event_usage(tx, when, &client_id, username, "tokens_refreshed", 1);
            }
            GrantEvent::TokenRevoked { token_hash } => {
                let (client_id, username) = grant_subject(tx, grant_id).await?;
                let ended =
                    end_tokens(tx, "revoked", &at, "token_hash", token_hash.as_hex()).await?;
                on_tx!(tx.db().await?, conn => sqlx::query(touch).bind(&at).bind(version).bind(grant_id).execute(conn).await.map(|r| r.rows_affected()))?;
                add_event_usage(
                    tx,
                    when,
                    &client_id,
                    username.as_deref(),
                    "tokens_revoked",
                    ended,
                );
            }
            GrantEvent::GrantRevoked { reason } => {
                // A device grant revoked before anyone approved it has no row.
                let Some((client_id, username)) = grant_subject_if_any(tx, grant_id).await? else {
                    return Ok(());
                };
                let ended = end_tokens(tx, "revoked", &at, "grant_id", grant_id).await?;
                let reason = serde_json::to_value(reason)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_default();
                let ip = match &event.metadata.source {
                    authledger_domain::metadata::Source::Http { ip, .. } => ip.clone(),
                    _ => None,
                };
                let sql = "UPDATE grant_view SET status = 'revoked', revoked_at = $1, revoked_reason = $2, \
                           revoked_by = $3, revoked_ip = $4, updated_at = $1, version = $5 WHERE grant_id = $6";
                on_tx!(tx.db().await?, conn => sqlx::query(sql)
                    .bind(&at)
                    .bind(&reason)
                    .bind(event.metadata.actor.to_string())
                    .bind(ip)
                    .bind(version)
                    .bind(grant_id)
                    .execute(conn)
                    .await
                    .map(|r| r.rows_affected()))?;
                add_event_usage(
                    tx,
                    when,
                    &client_id,
                    username.as_deref(),
                    "tokens_revoked",
                    ended,
                );
            }
            GrantEvent::DeviceAuthorizationApproved {
                client_id,
                scopes,
                user,
                ..
            } => {
                // The person who approved it makes the device grant theirs: it is listed
                // among their applications from now on.
                tx.remember_grant(grant_id, client_id, Some(user.as_str()));
                let grant = NewGrant {
                    grant_id,
                    grant_type: authledger_domain::oauth::GrantType::DeviceCode.as_str(),
                    client_id,
                    username: Some(user.as_str()),
                    scopes: &scopes.to_string(),
                    session: None,
                };
                let row = grant.row(&at, version);
                tx.insert("grant_view", GRANT_VIEW_INSERT, "", &row).await?;
            }
            // Until a person approves, a device grant is nobody's: the audit shows its steps.
            GrantEvent::DeviceAuthorizationStarted { .. }
            | GrantEvent::DeviceAuthorizationDenied { .. } => {}
            GrantEvent::DeviceCodeRedeemed { .. }
            | GrantEvent::CodeRedeemed { .. }
            | GrantEvent::CodeReplayDetected { .. }
            | GrantEvent::RefreshReplayDetected { .. } => {
                on_tx!(tx.db().await?, conn => sqlx::query(touch).bind(&at).bind(version).bind(grant_id).execute(conn).await.map(|r| r.rows_affected()))?;
            }
        }
        Ok(())
    }
}
