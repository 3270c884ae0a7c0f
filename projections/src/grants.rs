//! `grants`: the grant view, the token index (token hash -> grant, client, user, scopes, times,
//! state) and the hourly usage that events tell (tokens issued, refreshed, revoked).
//!
//! Whether a token may be used is answered by [`TokenRecord::is_active`]: the token and its
//! grant must be live and unexpired, and its client and user enabled, as the views say now. So
//! disabling a client or user makes its tokens inactive at once, even before the cascade has
//! revoked the grants for good.

use async_trait::async_trait;
use authledger_domain::grant::{Exchange, GrantEvent};
use authledger_domain::secret::SecretHash;
use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::FromRow;

use crate::batch::{Value, ViewTx};
use crate::db::Db;
use crate::event_log::StoredEvent;
use crate::filter::Conditions;
use crate::usage::usage_hour;
use crate::{on_db, on_tx, view_time};
use crate::{Projection, ProjectionError};

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
    fn row(&self, at: &str, version: i64) -> Vec<Value> {
        vec![
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
            let row = vec![
                hash.as_hex().into(),
                (*kind).into(),
                self.grant_id.into(),
                self.client_id.into(),
                self.username.into(),
                self.scopes.into(),
                self.issued_at.into(),
                view_time(*expires_at).into(),
                "active".into(),
                audience.into(),
            ];
            tx.insert("token_view", head, "", row).await?;
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
        match event.decode::<GrantEvent>()? {
            GrantEvent::CodeIssued {
                client_id,
                user,
                scopes,
                session,
                ..
            } => {
                tx.remember_grant(grant_id, &client_id, Some(user.as_str()));
                let row = NewGrant {
                    grant_id,
                    grant_type: "authorization_code",
                    client_id: &client_id,
                    username: Some(user.as_str()),
                    scopes: &scopes.to_string(),
                    session: session.as_ref().map(|s| s.as_hex()),
                }
                .row(&at, version);
                tx.insert("grant_view", GRANT_VIEW_INSERT, "", row).await?;
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
                let audience = audience_text(&audience);
                let username = user.as_ref().map(|u| u.as_str());
                let scopes = scopes.to_string();
                tx.remember_grant(grant_id, &client_id, username);
                // A new grant's first event inserts its row (one index descent on Postgres,
                // where an upsert costs two); a code grant's row exists already, and its
                // tokens only move its times.
                let row = NewGrant {
                    grant_id,
                    grant_type: grant_type.as_str(),
                    client_id: &client_id,
                    username,
                    scopes: &scopes,
                    session: None,
                }
                .row(&at, version);
                let tail = if event.sequence == 1 {
                    ""
                } else {
                    "ON CONFLICT (grant_id) DO UPDATE SET updated_at = excluded.updated_at, \
                     version = excluded.version"
                };
                tx.insert("grant_view", GRANT_VIEW_INSERT, tail, row)
                    .await?;
                if let Some(exchange) = &exchange {
                    record_exchange(tx, grant_id, exchange).await?;
                }
                let mut issued = vec![("access", &access_token_hash, access_expires_at)];
                if let (Some(hash), Some(expires_at)) = (&refresh_token_hash, refresh_expires_at) {
                    issued.push(("refresh", hash, expires_at));
                }
                let owner = TokenOwner {
                    grant_id,
                    client_id: &client_id,
                    username,
                    scopes: &scopes,
                    issued_at: &at,
                    audience: audience.as_deref(),
                };
                owner.insert(tx, &issued).await?;
                add_event_usage(tx, when, &client_id, username, "tokens_issued", 1);
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
                let audience = audience_text(&audience);
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
                            ("access", &access_token_hash, access_expires_at),
                            ("refresh", &refresh_token_hash, refresh_expires_at),
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
                tx.remember_grant(grant_id, &client_id, Some(user.as_str()));
                let row = NewGrant {
                    grant_id,
                    grant_type: authledger_domain::oauth::GrantType::DeviceCode.as_str(),
                    client_id: &client_id,
                    username: Some(user.as_str()),
                    scopes: &scopes.to_string(),
                    session: None,
                }
                .row(&at, version);
                tx.insert("grant_view", GRANT_VIEW_INSERT, "", row).await?;
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

/// One token, with the state of everything its use depends on.
#[derive(Debug, Clone, PartialEq, Serialize, FromRow, utoipa::ToSchema)]
pub struct TokenRecord {
    pub token_hash: String,
    pub kind: String,
    pub grant_id: String,
    pub client_id: String,
    pub username: Option<String>,
    pub scopes: String,
    pub issued_at: String,
    pub expires_at: String,
    pub status: String,
    pub ended_at: Option<String>,
    /// The resources an access token is for (RFC 8707), space-separated; `None` when
    /// unrestricted.
    pub audience: Option<String>,
    /// RFC 8693's `act` claim (JSON) of a token got by exchange with an actor.
    pub act: Option<String>,
    pub grant_status: String,
    pub client_status: Option<String>,
    pub user_status: Option<String>,
}

impl TokenRecord {
    /// Live, unexpired, of a live grant, of an enabled client and (if any) an enabled user.
    pub fn is_active(&self, now: DateTime<Utc>) -> bool {
        self.status == "active"
            && self.grant_status == "active"
            && self.client_status.as_deref() == Some("active")
            && (self.username.is_none() || self.user_status.as_deref() == Some("active"))
            && view_time(now) < self.expires_at
    }

    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes.split(' ').any(|s| s == scope)
    }
}

/// A token's grant counts as revoked once the grant it was exchanged from is (the cascade then
/// revokes it for good).
const TOKEN_COLUMNS: &str = "t.token_hash, t.kind, t.grant_id, t.client_id, t.username, t.scopes, \
     t.issued_at, t.expires_at, t.status, t.ended_at, t.audience, g.act, \
     CASE WHEN s.status = 'revoked' THEN 'revoked' ELSE g.status END AS grant_status, \
     c.status AS client_status, u.status AS user_status \
     FROM token_view t JOIN grant_view g ON g.grant_id = t.grant_id \
     LEFT JOIN grant_view s ON s.grant_id = g.source_grant \
     LEFT JOIN client_view c ON c.client_id = t.client_id \
     LEFT JOIN user_view u ON u.username = t.username";

/// Filters for listing grants and tokens.
#[derive(Debug, Default, Clone)]
pub struct Subject {
    pub client_id: Option<String>,
    pub username: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, FromRow, utoipa::ToSchema)]
pub struct GrantRecord {
    pub grant_id: String,
    pub grant_type: String,
    pub client_id: String,
    pub username: Option<String>,
    pub scopes: String,
    pub status: String,
    pub created_at: String,
    pub updated_at: String,
    pub revoked_at: Option<String>,
    pub revoked_reason: Option<String>,
    pub revoked_by: Option<String>,
    pub revoked_ip: Option<String>,
    /// For a grant made by token exchange (RFC 8693): the grant it was exchanged from, and
    /// its tokens' `act` claim (JSON) when someone acts for the subject.
    pub source_grant: Option<String>,
    pub act: Option<String>,
}

impl GrantsView {
    /// The grants still in force that were exchanged from `grant_id` (RFC 8693).
    pub async fn exchanged_from(db: &Db, grant_id: &str) -> Result<Vec<String>, ProjectionError> {
        let sql = "SELECT grant_id FROM grant_view WHERE source_grant = $1 AND status = 'active' \
                   ORDER BY grant_id";
        Ok(on_db!(db, pool => sqlx::query_scalar(sql).bind(grant_id).fetch_all(pool).await)?)
    }

    /// The grants that had ended before `ended_before` (a view time): revoked before it, or
    /// with tokens none of which was still valid at it (expired or revoked), or, with no token (a code never
    /// redeemed), created before `created_before` (which leaves the code its lifetime). What
    /// `ledger archive` may move out of the live log.
    pub async fn ended_before(
        db: &Db,
        ended_before: &str,
        created_before: &str,
    ) -> Result<std::collections::HashSet<String>, ProjectionError> {
        let sql = "SELECT g.grant_id FROM grant_view g \
                   WHERE (g.status = 'revoked' AND g.revoked_at < $1) \
                      OR (g.status <> 'revoked' \
                          AND NOT EXISTS (SELECT 1 FROM token_view t \
                              WHERE t.grant_id = g.grant_id AND t.expires_at >= $1 \
                              AND (t.status = 'active' OR t.ended_at >= $1)) \
                          AND (g.created_at < $2 OR EXISTS (SELECT 1 FROM token_view t \
                              WHERE t.grant_id = g.grant_id)))";
        let ids: Vec<String> = on_db!(db, pool => sqlx::query_scalar(sql)
            .bind(ended_before)
            .bind(created_before)
            .fetch_all(pool)
            .await)?;
        Ok(ids.into_iter().collect())
    }

    /// How many grants are in force.
    pub async fn count_active(db: &Db) -> Result<i64, ProjectionError> {
        let sql = "SELECT COUNT(*) FROM grant_view WHERE status = 'active'";
        Ok(on_db!(db, pool => sqlx::query_scalar(sql).fetch_one(pool).await)?)
    }

    /// The clients that got an ID token (a grant with `openid`) in the sign-in session whose
    /// id hashes to `session_hash`.
    pub async fn clients_of_session(
        db: &Db,
        session_hash: &str,
    ) -> Result<Vec<String>, ProjectionError> {
        let sql = "SELECT DISTINCT client_id FROM grant_view WHERE session_hash = $1 \
                   AND (' ' || scopes || ' ') LIKE '% openid %' ORDER BY client_id";
        Ok(on_db!(db, pool => sqlx::query_scalar(sql).bind(session_hash).fetch_all(pool).await)?)
    }

    /// The token index lookup: the hot path of introspection and userinfo.
    pub async fn token(db: &Db, token_hash: &str) -> Result<Option<TokenRecord>, ProjectionError> {
        let sql = format!("SELECT {TOKEN_COLUMNS} WHERE t.token_hash = $1");
        Ok(on_db!(db, pool => sqlx::query_as(&sql).bind(token_hash).fetch_optional(pool).await)?)
    }

    /// Tokens of a client and/or user, oldest first, keyset-paged by token hash within a time.
    pub async fn tokens(
        db: &Db,
        subject: &Subject,
        after: Option<(&str, &str)>,
        limit: i64,
    ) -> Result<Vec<TokenRecord>, ProjectionError> {
        let sql = format!(
            "SELECT {TOKEN_COLUMNS} WHERE ($1 = '' OR t.client_id = $1) AND ($2 = '' OR t.username = $2) \
             AND (t.issued_at > $3 OR (t.issued_at = $3 AND t.token_hash > $4)) \
             ORDER BY t.issued_at, t.token_hash LIMIT $5"
        );
        let (after_time, after_hash) = after.unwrap_or(("", ""));
        Ok(on_db!(db, pool => sqlx::query_as(&sql)
            .bind(subject.client_id.as_deref().unwrap_or(""))
            .bind(subject.username.as_deref().unwrap_or(""))
            .bind(after_time)
            .bind(after_hash)
            .bind(limit)
            .fetch_all(pool)
            .await)?)
    }

    pub async fn grant(db: &Db, grant_id: &str) -> Result<Option<GrantRecord>, ProjectionError> {
        let sql = format!("SELECT {GRANT_COLUMNS} FROM grant_view WHERE grant_id = $1");
        Ok(on_db!(db, pool => sqlx::query_as(&sql).bind(grant_id).fetch_optional(pool).await)?)
    }

    /// Grants of a client and/or user, oldest first, keyset-paged.
    pub async fn grants(
        db: &Db,
        subject: &Subject,
        only_active: bool,
        after: Option<(&str, &str)>,
        limit: i64,
    ) -> Result<Vec<GrantRecord>, ProjectionError> {
        let filter = Conditions::default()
            .and("client_id", "=", subject.client_id.as_deref())
            .and("username", "=", subject.username.as_deref())
            .and("status", "=", only_active.then_some("active"));
        let sql = format!(
            "SELECT {GRANT_COLUMNS} FROM grant_view WHERE {} (created_at, grant_id) > ({}, {}) \
             ORDER BY created_at, grant_id LIMIT {}",
            filter.sql(),
            filter.param(1),
            filter.param(2),
            filter.param(3)
        );
        let (after_time, after_id) = after.unwrap_or(("", ""));
        Ok(on_db!(db, pool => {
            let mut query = sqlx::query_as(&sql);
            for value in filter.values() {
                query = query.bind(value);
            }
            query.bind(after_time).bind(after_id).bind(limit).fetch_all(pool).await
        })?)
    }
}

const GRANT_COLUMNS: &str =
    "grant_id, grant_type, client_id, username, scopes, status, created_at, \
     updated_at, revoked_at, revoked_reason, revoked_by, revoked_ip, source_grant, act";
