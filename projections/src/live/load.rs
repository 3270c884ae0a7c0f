//! Starting the live index: filled from the views and the client and settings aggregates, in
//! one snapshot with the checkpoints that say what those views include, so following the log
//! from there misses nothing.

use std::sync::RwLock;

use authledger_domain::client::Client;
use authledger_domain::oauth::GrantType;
use authledger_domain::resource::Resource;
use authledger_domain::settings::{Settings, SETTINGS_ID};
use chrono::{DateTime, Utc};
use cqrs_es::Aggregate;
use tokio::sync::Mutex;

use super::state::{Limits, LiveState, LiveToken, Versioned};
use super::{token_key, LiveIndex};
use crate::db::Db;
use crate::error::ProjectionError;
use crate::event_log::{self, Position};
use crate::{on_tx, view_time};

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
        let checkpoints = format!(
            "SELECT transaction_id, global_position FROM {} \
             WHERE projection IN ('grants', 'users', 'sessions') \
             ORDER BY transaction_id, global_position LIMIT 1",
            crate::checkpoint::of_views(db.kind())
        );
        let start: Option<(i64, i64)> =
            on_tx!(&mut tx, conn => sqlx::query_as(&checkpoints).fetch_optional(conn).await)?;
        let now = view_time(Utc::now());
        let tokens = "SELECT t.token_hash, t.grant_id, t.client_id, t.username, t.scopes, \
                      t.issued_at, t.expires_at, t.audience, g.act, g.source_grant, g.grant_type \
                      FROM token_view t JOIN grant_view g ON g.grant_id = t.grant_id \
                      WHERE t.kind = 'access' AND t.status = 'active' AND t.expires_at > $1";
        type TokenRow = (
            String,
            String,
            String,
            Option<String>,
            String,
            String,
            String,
            Option<String>,
            Option<String>,
            Option<String>,
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
        for row in rows {
            let (hash, grant_id, client_id, username, scopes, issued_at, expires_at, audience) =
                (row.0, row.1, row.2, row.3, row.4, row.5, row.6, row.7);
            let (act, source, grant_type) = (row.8, row.9, row.10);
            let Some(key) = token_key(&hash) else {
                continue;
            };
            let owner = state.shared.owner(&client_id, username.as_deref());
            let expires_at = time(&expires_at)?;
            // As at issuance (`IssuedAccessToken::grant_entry_needed`): a client-credentials
            // grant issues its one token and nothing more, and is found through that token.
            // Any other grant gets an entry: whether it holds a refresh token is not in
            // these rows.
            let entry_needed =
                grant_type != GrantType::ClientCredentials.as_str() || source.is_some();
            let token_grant = state.token_grant(&grant_id, entry_needed, &owner, expires_at);
            if let Some(source) = &source {
                state.set_source(&grant_id, source);
            }
            if !state.has_room(capacity) {
                continue;
            }
            state.access_tokens.insert(
                key,
                Box::new(LiveToken {
                    grant_id: token_grant,
                    owner,
                    scopes: state.shared.text(&scopes),
                    issued_at: time(&issued_at)?,
                    expires_at,
                    revoked_at: None,
                    limits: Limits::of(
                        audience.map(|a| state.shared.text(&a)),
                        act.map(|a| state.shared.text(&a)),
                    ),
                }),
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
        for (id, sequence, resource) in load_aggregates::<Resource>(db).await? {
            state.set_resource(&id, sequence, resource);
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
            last_seen: Default::default(),
        })
    }
}

pub(super) async fn load_aggregates<A: Aggregate>(
    db: &Db,
) -> Result<Vec<(String, i64, A)>, ProjectionError> {
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
pub(super) async fn load_aggregate<A: Aggregate>(
    db: &Db,
    aggregate_id: &str,
) -> Result<Option<(i64, A)>, ProjectionError> {
    let events = event_log::read_aggregate(db, A::TYPE, aggregate_id).await?;
    let Some(last) = events.last().map(|e| e.sequence) else {
        return Ok(None);
    };
    Ok(Some((last, event_log::fold(&events)?)))
}
