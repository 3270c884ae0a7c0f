//! `client_view`: one row per client, for `client list|show` and the admin API. It holds no
//! secret hash: authenticating a client is a decision, made from the aggregate's events.

use async_trait::async_trait;
use authledger_domain::client::{ClientEvent, ClientMetadata, ClientStatus, RegistrationSource};
use serde::Serialize;
use sqlx::FromRow;

use crate::batch::ViewTx;
use crate::db::Db;
use crate::event_log::StoredEvent;
use crate::{on_db, on_tx, view_time};
use crate::{Projection, ProjectionError};

pub struct ClientsView;

#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct ClientSummary {
    pub client_id: String,
    pub name: String,
    pub status: String,
    /// `true` for public clients (`token_endpoint_auth_method` = `none`).
    pub public: bool,
    /// The client's metadata as RFC 7591 names it.
    #[schema(value_type = Object)]
    pub metadata: ClientMetadata,
    #[schema(value_type = String)]
    pub registered_via: RegistrationSource,
    pub registered_at: String,
    pub registered_by: String,
    pub updated_at: String,
    pub secret_rotated_at: Option<String>,
    /// The aggregate sequence this row reflects.
    pub version: i64,
}

#[derive(FromRow)]
struct ClientRow {
    client_id: String,
    name: String,
    status: String,
    metadata: String,
    registered_via: String,
    registered_at: String,
    registered_by: String,
    updated_at: String,
    secret_rotated_at: Option<String>,
    version: i64,
}

impl TryFrom<ClientRow> for ClientSummary {
    type Error = ProjectionError;
    fn try_from(row: ClientRow) -> Result<Self, Self::Error> {
        let metadata: ClientMetadata = serde_json::from_str(&row.metadata)
            .map_err(|e| ProjectionError::Decode(format!("client_view {}: {e}", row.client_id)))?;
        let registered_via = serde_json::from_value(serde_json::Value::String(
            row.registered_via.clone(),
        ))
        .map_err(|e| ProjectionError::Decode(format!("client_view {}: {e}", row.client_id)))?;
        Ok(ClientSummary {
            public: metadata.token_endpoint_auth_method.is_public(),
            client_id: row.client_id,
            name: row.name,
            status: row.status,
            metadata,
            registered_via,
            registered_at: row.registered_at,
            registered_by: row.registered_by,
            updated_at: row.updated_at,
            secret_rotated_at: row.secret_rotated_at,
            version: row.version,
        })
    }
}

const COLUMNS: &str = "client_id, name, status, metadata, registered_via, registered_at, \
                       registered_by, updated_at, secret_rotated_at, version";

impl ClientsView {
    pub async fn get(db: &Db, client_id: &str) -> Result<Option<ClientSummary>, ProjectionError> {
        let sql = format!("SELECT {COLUMNS} FROM client_view WHERE client_id = $1");
        let row: Option<ClientRow> =
            on_db!(db, pool => sqlx::query_as(&sql).bind(client_id).fetch_optional(pool).await)?;
        row.map(ClientSummary::try_from).transpose()
    }

    /// Keyset page of clients ordered by `client_id`, starting after `after`.
    /// Clients by name (then id), those whose name contains `search` (any case), after the
    /// keyset `(name, client_id)`: the console's list, indexed by `client_view_by_name`.
    pub async fn by_name(
        db: &Db,
        search: &str,
        after: Option<(&str, &str)>,
        limit: i64,
    ) -> Result<Vec<ClientSummary>, ProjectionError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM client_view WHERE lower(name) LIKE $1 \
             AND (name > $2 OR (name = $2 AND client_id > $3)) \
             ORDER BY name, client_id LIMIT $4"
        );
        let pattern = format!("%{}%", search.to_lowercase().replace(['\\', '%', '_'], ""));
        let (after_name, after_id) = after.unwrap_or(("", ""));
        let rows: Vec<ClientRow> = on_db!(db, pool => sqlx::query_as(&sql)
            .bind(&pattern)
            .bind(after_name)
            .bind(after_id)
            .bind(limit)
            .fetch_all(pool)
            .await)?;
        rows.into_iter().map(ClientSummary::try_from).collect()
    }

    pub async fn list(
        db: &Db,
        after: Option<&str>,
        limit: i64,
    ) -> Result<Vec<ClientSummary>, ProjectionError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM client_view WHERE client_id > $1 ORDER BY client_id LIMIT $2"
        );
        let rows: Vec<ClientRow> = on_db!(db, pool => sqlx::query_as(&sql)
            .bind(after.unwrap_or(""))
            .bind(limit)
            .fetch_all(pool)
            .await)?;
        rows.into_iter().map(ClientSummary::try_from).collect()
    }
}

fn metadata_json(metadata: &ClientMetadata) -> String {
    serde_json::to_string(metadata).expect("client metadata serialises")
}

#[async_trait]
impl Projection for ClientsView {
    fn name(&self) -> &'static str {
        "clients"
    }

    fn tables(&self) -> &'static [&'static str] {
        &["client_view"]
    }

    async fn apply(&self, tx: &mut ViewTx, event: &StoredEvent) -> Result<(), ProjectionError> {
        if event.aggregate_type != "Client" {
            return Ok(());
        }
        let at = view_time(event.metadata.at);
        let id = event.aggregate_id.as_str();
        let version = event.sequence;
        match event.decode::<ClientEvent>()? {
            ClientEvent::ClientRegistered {
                metadata,
                registered_via,
                ..
            } => {
                let via = match registered_via {
                    RegistrationSource::Admin => "admin",
                    RegistrationSource::Dynamic => "dynamic",
                };
                let sql = "INSERT INTO client_view (client_id, name, status, metadata, \
                           registered_via, registered_at, registered_by, updated_at, version) \
                           VALUES ($1, $2, $3, $4, $5, $6, $7, $6, $8)";
                on_tx!(tx.db().await?, conn => sqlx::query(sql)
                    .bind(id)
                    .bind(&metadata.name)
                    .bind(ClientStatus::Active.as_str())
                    .bind(metadata_json(&metadata))
                    .bind(via)
                    .bind(&at)
                    .bind(event.metadata.actor.to_string())
                    .bind(version)
                    .execute(conn)
                    .await.map(|r| r.rows_affected()))?;
            }
            ClientEvent::ClientUpdated { metadata } => {
                let sql = "UPDATE client_view SET name = $1, metadata = $2, updated_at = $3, \
                           version = $4 WHERE client_id = $5";
                on_tx!(tx.db().await?, conn => sqlx::query(sql)
                    .bind(&metadata.name)
                    .bind(metadata_json(&metadata))
                    .bind(&at)
                    .bind(version)
                    .bind(id)
                    .execute(conn)
                    .await.map(|r| r.rows_affected()))?;
            }
            ClientEvent::ClientSecretRotated { .. } => {
                let sql = "UPDATE client_view SET secret_rotated_at = $1, updated_at = $1, \
                           version = $2 WHERE client_id = $3";
                on_tx!(tx.db().await?, conn => sqlx::query(sql)
                    .bind(&at)
                    .bind(version)
                    .bind(id)
                    .execute(conn)
                    .await.map(|r| r.rows_affected()))?;
            }
            ClientEvent::ClientDisabled { .. } => {
                set_status(tx, id, ClientStatus::Disabled, &at, version).await?
            }
            ClientEvent::ClientEnabled {} => {
                set_status(tx, id, ClientStatus::Active, &at, version).await?
            }
            ClientEvent::ClientDeleted {} => {
                set_status(tx, id, ClientStatus::Deleted, &at, version).await?
            }
        }
        Ok(())
    }
}

async fn set_status(
    tx: &mut ViewTx,
    client_id: &str,
    status: ClientStatus,
    at: &str,
    version: i64,
) -> Result<(), ProjectionError> {
    let sql =
        "UPDATE client_view SET status = $1, updated_at = $2, version = $3 WHERE client_id = $4";
    on_tx!(tx.db().await?, conn => sqlx::query(sql)
        .bind(status.as_str())
        .bind(at)
        .bind(version)
        .bind(client_id)
        .execute(conn)
        .await.map(|r| r.rows_affected()))?;
    Ok(())
}
