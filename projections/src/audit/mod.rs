//! `audit`: one row per event, for people and auditors: when, what, which aggregate, who,
//! which client, user and grant, from which request, IP and user agent, and a one-line
//! summary. Built only from events (their payloads hold hashes, never secrets), so it can be
//! rebuilt at any time and says nothing the log does not.

mod describe;

use async_trait::async_trait;
use authledger_domain::metadata::Source;
use serde::Serialize;
use sqlx::FromRow;

use crate::batch::ViewTx;
use crate::db::Db;
use crate::event_log::StoredEvent;
use crate::filter::Conditions;
use crate::{on_db, view_time};
use crate::{Projection, ProjectionError};
use describe::describe;

pub struct AuditLog;

#[derive(Debug, Clone, PartialEq, Serialize, FromRow, utoipa::ToSchema)]
pub struct AuditRecord {
    pub global_position: i64,
    pub occurred_at: String,
    pub event_type: String,
    pub aggregate_type: String,
    pub aggregate_id: String,
    pub actor: String,
    pub client_id: Option<String>,
    pub username: Option<String>,
    pub grant_id: Option<String>,
    pub request_id: String,
    pub source: String,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub summary: String,
    /// The client that acted for the user, on a token exchange's issuance (RFC 8693).
    pub acting_client_id: Option<String>,
}

/// Which rows an audit query returns; every field narrows.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub client_id: Option<String>,
    pub username: Option<String>,
    pub grant_id: Option<String>,
    pub event_type: Option<String>,
    /// Token exchanges in which this client acted for the user (RFC 8693).
    pub acting_client_id: Option<String>,
    /// RFC 3339, inclusive.
    pub since: Option<String>,
    /// RFC 3339, exclusive.
    pub until: Option<String>,
    /// The last `global_position` already seen.
    pub after: Option<i64>,
}

/// The columns of an [`AuditRecord`], in its order.
const COLUMNS: &str = "global_position, occurred_at, event_type, aggregate_type, aggregate_id, \
                       actor, client_id, username, grant_id, request_id, source, ip, user_agent, summary, \
                       acting_client_id";

impl AuditFilter {
    fn conditions(&self) -> Conditions {
        Conditions::default()
            .and("client_id", "=", self.client_id.as_deref())
            .and("username", "=", self.username.as_deref())
            .and("grant_id", "=", self.grant_id.as_deref())
            .and("event_type", "=", self.event_type.as_deref())
            .and("acting_client_id", "=", self.acting_client_id.as_deref())
            .and("occurred_at", ">=", self.since.as_deref())
            .and("occurred_at", "<", self.until.as_deref())
    }
}
#[async_trait]
impl Projection for AuditLog {
    fn name(&self) -> &'static str {
        "audit"
    }

    fn tables(&self) -> &'static [&'static str] {
        &["audit_log", "audit_grant_subjects"]
    }

    async fn apply(&self, tx: &mut ViewTx, event: &StoredEvent) -> Result<(), ProjectionError> {
        let subjects = describe(tx, event).await?;
        let meta = &event.metadata;
        let (source, ip, user_agent) = match &meta.source {
            Source::Cli => ("cli", None, None),
            Source::System => ("system", None, None),
            Source::Http { ip, user_agent } => ("http", ip.as_deref(), user_agent.as_deref()),
        };
        let head =
            "INSERT INTO audit_log (global_position, occurred_at, event_type, aggregate_type, \
                    aggregate_id, actor, client_id, username, grant_id, request_id, source, ip, \
                    user_agent, summary, acting_client_id)";
        let occurred_at = view_time(meta.at);
        let actor = meta.actor.to_string();
        let row = [
            event.position.global.into(),
            occurred_at.as_str().into(),
            event.event_type.as_str().into(),
            event.aggregate_type.as_str().into(),
            event.aggregate_id.as_str().into(),
            actor.as_str().into(),
            (&subjects.client_id).into(),
            (&subjects.username).into(),
            (&subjects.grant_id).into(),
            meta.request_id.as_str().into(),
            source.into(),
            ip.into(),
            user_agent.into(),
            subjects.summary.as_str().into(),
            (&subjects.acting_client_id).into(),
        ];
        tx.insert("audit_log", head, "", &row).await
    }
}

impl AuditLog {
    /// How many events of `event_type` happened in each hour since `since` (a view time), by
    /// hour (`YYYY-MM-DDTHH`); hours without one are absent.
    pub async fn hourly(
        db: &Db,
        event_type: &str,
        since: &str,
    ) -> Result<Vec<(String, i64)>, ProjectionError> {
        let sql = "SELECT substr(occurred_at, 1, 13) AS hour, COUNT(*) AS n FROM audit_log \
                   WHERE event_type = $1 AND occurred_at >= $2 GROUP BY substr(occurred_at, 1, 13) \
                   ORDER BY hour";
        Ok(
            on_db!(db, pool => sqlx::query_as(sql).bind(event_type).bind(since).fetch_all(pool).await)?,
        )
    }

    /// Audit rows matching `filter`, newest first, before the position `before` (keyset
    /// paging back through any size of log: each page is one index range).
    pub async fn newest(
        db: &Db,
        filter: &AuditFilter,
        before: Option<i64>,
        limit: i64,
    ) -> Result<Vec<AuditRecord>, ProjectionError> {
        let filter = filter.conditions();
        let sql = format!(
            "SELECT {COLUMNS} FROM audit_log WHERE {} global_position < {} \
             ORDER BY global_position DESC LIMIT {}",
            filter.sql(),
            filter.param(1),
            filter.param(2)
        );
        let before = before.unwrap_or(i64::MAX);
        Ok(on_db!(db, pool => {
            let mut query = sqlx::query_as(&sql);
            for value in filter.values() {
                query = query.bind(value);
            }
            query.bind(before).bind(limit).fetch_all(pool).await
        })?)
    }

    /// A person's latest sign-in attempts (succeeded, failed, throttled), newest first: what
    /// their account page shows.
    pub async fn sign_ins(
        db: &Db,
        username: &str,
        limit: i64,
    ) -> Result<Vec<AuditRecord>, ProjectionError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM audit_log WHERE username = $1 AND aggregate_type = 'User' \
             AND event_type IN ('LoginSucceeded', 'LoginFailed', 'LoginThrottled') \
             ORDER BY global_position DESC LIMIT $2"
        );
        Ok(
            on_db!(db, pool => sqlx::query_as(&sql).bind(username).bind(limit).fetch_all(pool).await)?,
        )
    }

    /// Audit rows matching `filter`, in log order, at most `limit`.
    pub async fn query(
        db: &Db,
        filter: &AuditFilter,
        limit: i64,
    ) -> Result<Vec<AuditRecord>, ProjectionError> {
        let after = filter.after.unwrap_or(0);
        let filter = filter.conditions();
        let sql = format!(
            "SELECT {COLUMNS} FROM audit_log WHERE {} global_position > {} \
             ORDER BY global_position LIMIT {}",
            filter.sql(),
            filter.param(1),
            filter.param(2)
        );
        Ok(on_db!(db, pool => {
            let mut query = sqlx::query_as(&sql);
            for value in filter.values() {
                query = query.bind(value);
            }
            query.bind(after).bind(limit).fetch_all(pool).await
        })?)
    }
}
