//! `consents`: who allowed which client what, and who withdrew it.

use async_trait::async_trait;
use authledger_domain::consent::ConsentEvent;
use serde::Serialize;
use sqlx::FromRow;

use crate::batch::ViewTx;
use crate::db::Db;
use crate::event_log::StoredEvent;
use crate::filter::Conditions;
use crate::{on_db, on_tx, view_time};
use crate::{Projection, ProjectionError};

pub struct ConsentsView;

#[derive(Debug, Clone, PartialEq, Serialize, FromRow, utoipa::ToSchema)]
pub struct ConsentRecord {
    pub username: String,
    pub client_id: String,
    pub scopes: String,
    pub status: String,
    pub granted_at: String,
    pub revoked_at: Option<String>,
    pub revoked_by: Option<String>,
}

#[async_trait]
impl Projection for ConsentsView {
    fn name(&self) -> &'static str {
        "consents"
    }

    fn tables(&self) -> &'static [&'static str] {
        &["consent_view"]
    }

    async fn apply(&self, tx: &mut ViewTx, event: &StoredEvent) -> Result<(), ProjectionError> {
        if event.aggregate_type != "Consent" {
            return Ok(());
        }
        let at = view_time(event.metadata.at);
        match event.decode::<ConsentEvent>()? {
            ConsentEvent::ConsentGranted {
                user,
                client_id,
                scopes,
            } => {
                let sql = "INSERT INTO consent_view (username, client_id, scopes, status, granted_at) \
                           VALUES ($1, $2, $3, 'active', $4) ON CONFLICT (username, client_id) DO UPDATE \
                           SET scopes = excluded.scopes, status = 'active', granted_at = excluded.granted_at, \
                           revoked_at = NULL, revoked_by = NULL";
                on_tx!(tx.db().await?, conn => sqlx::query(sql)
                    .bind(user.as_str())
                    .bind(&client_id)
                    .bind(scopes.to_string())
                    .bind(&at)
                    .execute(conn)
                    .await
                    .map(|r| r.rows_affected()))?;
            }
            ConsentEvent::ConsentRevoked { user, client_id } => {
                let sql =
                    "UPDATE consent_view SET status = 'revoked', revoked_at = $1, revoked_by = $2 \
                           WHERE username = $3 AND client_id = $4";
                on_tx!(tx.db().await?, conn => sqlx::query(sql)
                    .bind(&at)
                    .bind(event.metadata.actor.to_string())
                    .bind(user.as_str())
                    .bind(&client_id)
                    .execute(conn)
                    .await
                    .map(|r| r.rows_affected()))?;
            }
        }
        Ok(())
    }
}

impl ConsentsView {
    /// Consents of a user and/or a client, keyset-paged by (username, client_id).
    pub async fn list(
        db: &Db,
        username: Option<&str>,
        client_id: Option<&str>,
        after: Option<(&str, &str)>,
        limit: i64,
    ) -> Result<Vec<ConsentRecord>, ProjectionError> {
        let filter =
            Conditions::default()
                .and("username", "=", username)
                .and("client_id", "=", client_id);
        let sql = format!(
            "SELECT username, client_id, scopes, status, granted_at, revoked_at, revoked_by \
             FROM consent_view WHERE {} (username, client_id) > ({}, {}) \
             ORDER BY username, client_id LIMIT {}",
            filter.sql(),
            filter.param(1),
            filter.param(2),
            filter.param(3)
        );
        let (after_user, after_client) = after.unwrap_or(("", ""));
        Ok(on_db!(db, pool => {
            let mut query = sqlx::query_as(&sql);
            for value in filter.values() {
                query = query.bind(value);
            }
            query.bind(after_user).bind(after_client).bind(limit).fetch_all(pool).await
        })?)
    }
}
