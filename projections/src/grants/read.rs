//! Reading the grant and token views: one token with everything its use depends on, and the
//! pages of grants and tokens the admin API, the console and the audit list.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::FromRow;

use super::GrantsView;
use crate::db::Db;
use crate::filter::Conditions;
use crate::ProjectionError;
use crate::{on_db, view_time};

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
