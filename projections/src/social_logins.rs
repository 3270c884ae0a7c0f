//! `social_logins`: the providers people may sign in through, and which identity there is
//! linked to which person here.

use async_trait::async_trait;
use authledger_domain::social_login::{IdentityEvent, SocialLoginEvent};
use serde::Serialize;
use sqlx::FromRow;

use crate::batch::ViewTx;
use crate::db::Db;
use crate::event_log::StoredEvent;
use crate::{on_db, on_tx, view_time};
use crate::{Projection, ProjectionError};

pub struct SocialLoginsView;

#[derive(Debug, Clone, PartialEq, Serialize, FromRow, utoipa::ToSchema)]
pub struct SocialLoginRecord {
    pub provider_id: String,
    pub name: String,
    /// The provider's configuration as JSON (`SocialLoginConfig`).
    pub config: String,
    pub status: String,
    pub created_at: String,
    pub updated_at: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, FromRow, utoipa::ToSchema)]
pub struct IdentityRecord {
    pub provider_id: String,
    pub subject: String,
    pub username: String,
    pub linked_at: String,
}

async fn run(tx: &mut ViewTx, sql: &str, binds: &[&str]) -> Result<(), ProjectionError> {
    on_tx!(tx.db().await?, conn => {
        let mut query = sqlx::query(sql);
        for value in binds {
            query = query.bind(*value);
        }
        query.execute(conn).await.map(drop)
    })?;
    Ok(())
}

#[async_trait]
impl Projection for SocialLoginsView {
    fn name(&self) -> &'static str {
        "social_logins"
    }

    fn tables(&self) -> &'static [&'static str] {
        &["social_login_view", "identity_view"]
    }

    async fn apply(&self, tx: &mut ViewTx, event: &StoredEvent) -> Result<(), ProjectionError> {
        let at = view_time(event.metadata.at);
        let id = event.aggregate_id.as_str();
        let json = |config: &authledger_domain::social_login::SocialLoginConfig| {
            serde_json::to_string(config).map_err(|e| ProjectionError::InvalidRow(e.to_string()))
        };
        match event.aggregate_type.as_str() {
            "SocialLogin" => match event.decode::<SocialLoginEvent>()? {
                SocialLoginEvent::SocialLoginCreated { config, .. } => {
                    let sql = "INSERT INTO social_login_view (provider_id, name, config, status, created_at, updated_at) \
                               VALUES ($1, $2, $3, 'active', $4, $4)";
                    run(tx, sql, &[id, &config.name, &json(&config)?, &at]).await
                }
                SocialLoginEvent::SocialLoginUpdated { config } => {
                    let sql = "UPDATE social_login_view SET name = $1, config = $2, updated_at = $3 WHERE provider_id = $4";
                    run(tx, sql, &[&config.name, &json(&config)?, &at, id]).await
                }
                SocialLoginEvent::SocialLoginDeleted => {
                    let sql = "UPDATE social_login_view SET status = 'deleted', updated_at = $1 WHERE provider_id = $2";
                    run(tx, sql, &[&at, id]).await
                }
            },
            "ExternalIdentity" => match event.decode::<IdentityEvent>()? {
                IdentityEvent::IdentityLinked {
                    provider,
                    subject,
                    user,
                } => {
                    let sql = "INSERT INTO identity_view (provider_id, subject, username, linked_at) VALUES ($1, $2, $3, $4) \
                               ON CONFLICT (provider_id, subject) DO UPDATE SET username = excluded.username, linked_at = excluded.linked_at";
                    run(tx, sql, &[provider.as_str(), &subject, user.as_str(), &at]).await
                }
                IdentityEvent::IdentityUnlinked { .. } => {
                    let (provider, subject) = id.split_once(':').unwrap_or((id, ""));
                    let sql = "DELETE FROM identity_view WHERE provider_id = $1 AND subject = $2";
                    run(tx, sql, &[provider, subject]).await
                }
            },
            _ => Ok(()),
        }
    }
}

impl SocialLoginsView {
    /// Every provider not deleted, by id.
    pub async fn list(db: &Db) -> Result<Vec<SocialLoginRecord>, ProjectionError> {
        let sql = "SELECT provider_id, name, config, status, created_at, updated_at FROM social_login_view \
                   WHERE status <> 'deleted' ORDER BY provider_id";
        Ok(on_db!(db, pool => sqlx::query_as(sql).fetch_all(pool).await)?)
    }

    /// A person's linked identities, by provider.
    pub async fn identities_of(
        db: &Db,
        username: &str,
    ) -> Result<Vec<IdentityRecord>, ProjectionError> {
        let sql = "SELECT provider_id, subject, username, linked_at FROM identity_view WHERE username = $1 \
                   ORDER BY provider_id, subject";
        Ok(on_db!(db, pool => sqlx::query_as(sql).bind(username).fetch_all(pool).await)?)
    }
}
