//! `connected_apps`: the providers authledger is a client of, and each person's connection
//! to them (status, scopes, expiry; never a token).

use async_trait::async_trait;
use authledger_domain::connected_app::connection::ConnectionEvent;
use authledger_domain::connected_app::ConnectedAppEvent;
use serde::Serialize;
use sqlx::FromRow;

use crate::batch::ViewTx;
use crate::db::Db;
use crate::event_log::StoredEvent;
use crate::{on_db, on_tx, view_time};
use crate::{Projection, ProjectionError};

pub struct ConnectedAppsView;

#[derive(Debug, Clone, PartialEq, Serialize, FromRow, utoipa::ToSchema)]
pub struct ConnectedAppRecord {
    pub app_id: String,
    pub name: String,
    pub client_id: String,
    /// The app's configuration as JSON (`ConnectedAppConfig`).
    pub config: String,
    pub status: String,
    pub created_at: String,
    pub updated_at: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, FromRow)]
pub struct ConnectionRecord {
    pub app_id: String,
    /// Empty for the app's own (client-credentials) connection.
    pub username: String,
    /// `connected`, `lost` (connect again) or `disconnected`.
    pub status: String,
    pub scopes: String,
    pub access_expires_at: Option<String>,
    pub subject: Option<String>,
    pub connected_at: String,
    pub updated_at: String,
}

async fn run(tx: &mut ViewTx, sql: &str, binds: &[Option<&str>]) -> Result<(), ProjectionError> {
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
impl Projection for ConnectedAppsView {
    fn name(&self) -> &'static str {
        "connected_apps"
    }

    fn tables(&self) -> &'static [&'static str] {
        &["connected_app_view", "app_connection_view"]
    }

    async fn apply(&self, tx: &mut ViewTx, event: &StoredEvent) -> Result<(), ProjectionError> {
        let at = view_time(event.metadata.at);
        let id = event.aggregate_id.as_str();
        match event.aggregate_type.as_str() {
            "ConnectedApp" => match event.decode::<ConnectedAppEvent>()? {
                ConnectedAppEvent::ConnectedAppCreated { config, .. } => {
                    let json = serde_json::to_string(&config)
                        .map_err(|e| ProjectionError::InvalidRow(e.to_string()))?;
                    let sql = "INSERT INTO connected_app_view (app_id, name, client_id, config, status, created_at, updated_at) \
                               VALUES ($1, $2, $3, $4, 'active', $5, $5)";
                    run(
                        tx,
                        sql,
                        &[
                            Some(id),
                            Some(&config.name),
                            Some(&config.client_id),
                            Some(&json),
                            Some(&at),
                        ],
                    )
                    .await
                }
                ConnectedAppEvent::ConnectedAppUpdated { config } => {
                    let json = serde_json::to_string(&config)
                        .map_err(|e| ProjectionError::InvalidRow(e.to_string()))?;
                    let sql = "UPDATE connected_app_view SET name = $1, client_id = $2, config = $3, updated_at = $4 WHERE app_id = $5";
                    run(
                        tx,
                        sql,
                        &[
                            Some(&config.name),
                            Some(&config.client_id),
                            Some(&json),
                            Some(&at),
                            Some(id),
                        ],
                    )
                    .await
                }
                ConnectedAppEvent::ConnectedAppSecretChanged { .. } => {
                    let sql = "UPDATE connected_app_view SET updated_at = $1 WHERE app_id = $2";
                    run(tx, sql, &[Some(&at), Some(id)]).await
                }
                ConnectedAppEvent::ConnectedAppDeleted => {
                    let sql = "UPDATE connected_app_view SET status = 'deleted', updated_at = $1 WHERE app_id = $2";
                    run(tx, sql, &[Some(&at), Some(id)]).await
                }
            },
            "AppConnection" => {
                let (app, user) = id.split_once(':').unwrap_or((id, ""));
                match event.decode::<ConnectionEvent>()? {
                    ConnectionEvent::TokensObtained {
                        tokens, subject, ..
                    } => {
                        let sql = "INSERT INTO app_connection_view (app_id, username, status, scopes, access_expires_at, subject, connected_at, updated_at) \
                                   VALUES ($1, $2, 'connected', $3, $4, $5, $6, $6) ON CONFLICT (app_id, username) DO UPDATE \
                                   SET status = 'connected', scopes = excluded.scopes, access_expires_at = excluded.access_expires_at, \
                                   subject = excluded.subject, connected_at = excluded.connected_at, updated_at = excluded.updated_at";
                        let expires = tokens.access_expires_at.map(view_time);
                        run(
                            tx,
                            sql,
                            &[
                                Some(app),
                                Some(user),
                                Some(&tokens.scopes.to_string()),
                                expires.as_deref(),
                                subject.as_deref(),
                                Some(&at),
                            ],
                        )
                        .await
                    }
                    ConnectionEvent::TokensRefreshed { tokens } => {
                        let sql = "UPDATE app_connection_view SET scopes = $1, access_expires_at = $2, updated_at = $3 \
                                   WHERE app_id = $4 AND username = $5";
                        let expires = tokens.access_expires_at.map(view_time);
                        run(
                            tx,
                            sql,
                            &[
                                Some(&tokens.scopes.to_string()),
                                expires.as_deref(),
                                Some(&at),
                                Some(app),
                                Some(user),
                            ],
                        )
                        .await
                    }
                    ConnectionEvent::ConnectionLost { .. } => {
                        let sql = "UPDATE app_connection_view SET status = 'lost', updated_at = $1 WHERE app_id = $2 AND username = $3";
                        run(tx, sql, &[Some(&at), Some(app), Some(user)]).await
                    }
                    ConnectionEvent::Disconnected { .. } => {
                        let sql = "UPDATE app_connection_view SET status = 'disconnected', updated_at = $1 WHERE app_id = $2 AND username = $3";
                        run(tx, sql, &[Some(&at), Some(app), Some(user)]).await
                    }
                }
            }
            _ => Ok(()),
        }
    }
}

const APP_COLUMNS: &str = "app_id, name, client_id, config, status, created_at, updated_at";
const CONNECTION_COLUMNS: &str =
    "app_id, username, status, scopes, access_expires_at, subject, connected_at, updated_at";

impl ConnectedAppsView {
    /// Every app not deleted, by id.
    pub async fn list(db: &Db) -> Result<Vec<ConnectedAppRecord>, ProjectionError> {
        let sql = format!(
            "SELECT {APP_COLUMNS} FROM connected_app_view WHERE status <> 'deleted' ORDER BY app_id"
        );
        Ok(on_db!(db, pool => sqlx::query_as(&sql).fetch_all(pool).await)?)
    }

    pub async fn app(db: &Db, app_id: &str) -> Result<Option<ConnectedAppRecord>, ProjectionError> {
        let sql = format!("SELECT {APP_COLUMNS} FROM connected_app_view WHERE app_id = $1");
        Ok(on_db!(db, pool => sqlx::query_as(&sql).bind(app_id).fetch_optional(pool).await)?)
    }

    /// The connections to an app, by person.
    pub async fn connections(
        db: &Db,
        app_id: &str,
    ) -> Result<Vec<ConnectionRecord>, ProjectionError> {
        let sql = format!(
            "SELECT {CONNECTION_COLUMNS} FROM app_connection_view WHERE app_id = $1 ORDER BY username LIMIT 1000"
        );
        Ok(on_db!(db, pool => sqlx::query_as(&sql).bind(app_id).fetch_all(pool).await)?)
    }

    /// A person's connections, by app.
    pub async fn connections_of(
        db: &Db,
        username: &str,
    ) -> Result<Vec<ConnectionRecord>, ProjectionError> {
        let sql = format!(
            "SELECT {CONNECTION_COLUMNS} FROM app_connection_view WHERE username = $1 ORDER BY app_id"
        );
        Ok(on_db!(db, pool => sqlx::query_as(&sql).bind(username).fetch_all(pool).await)?)
    }
}
