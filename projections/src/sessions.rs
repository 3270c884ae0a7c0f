//! `sessions`: every sign-in session, open or ended, and from where it was opened. The live
//! index loads the open ones at start; a person's account page and the console list them.

use async_trait::async_trait;
use authledger_domain::metadata::Source;
use authledger_domain::user::UserEvent;
use serde::Serialize;
use sqlx::FromRow;

use crate::batch::ViewTx;
use crate::db::Db;
use crate::event_log::StoredEvent;
use crate::{on_db, on_tx, view_time};
use crate::{Projection, ProjectionError};

pub struct SessionsView;

#[derive(Debug, Clone, PartialEq, Serialize, FromRow)]
pub struct SessionRecord {
    pub session_hash: String,
    pub username: String,
    pub started_at: String,
    pub expires_at: String,
    pub ended_at: Option<String>,
    pub end_reason: Option<String>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

#[async_trait]
impl Projection for SessionsView {
    fn name(&self) -> &'static str {
        "sessions"
    }

    fn tables(&self) -> &'static [&'static str] {
        &["session_view"]
    }

    async fn apply(&self, tx: &mut ViewTx, event: &StoredEvent) -> Result<(), ProjectionError> {
        if event.aggregate_type != "User"
            || !matches!(
                event.event_type.as_str(),
                "SessionStarted" | "SessionEnded" | "UserErased"
            )
        {
            return Ok(());
        }
        let at = view_time(event.metadata.at);
        match event.decode::<UserEvent>()? {
            UserEvent::SessionStarted {
                id_hash,
                expires_at,
                ..
            } => {
                let (ip, user_agent) = match &event.metadata.source {
                    Source::Http { ip, user_agent } => (ip.clone(), user_agent.clone()),
                    Source::Cli | Source::System => (None, None),
                };
                let expires_at = view_time(expires_at);
                tx.insert(
                    "session_view",
                    "INSERT INTO session_view (session_hash, username, started_at, expires_at, \
                     ip, user_agent)",
                    "",
                    &[
                        id_hash.as_hex().into(),
                        event.aggregate_id.as_str().into(),
                        at.as_str().into(),
                        expires_at.as_str().into(),
                        (&ip).into(),
                        (&user_agent).into(),
                    ],
                )
                .await?;
            }
            UserEvent::SessionEnded { id_hash, reason } => {
                let sql = "UPDATE session_view SET ended_at = $1, end_reason = $2 \
                           WHERE session_hash = $3";
                on_tx!(tx.db().await?, conn => sqlx::query(sql)
                    .bind(&at)
                    .bind(reason.as_str())
                    .bind(id_hash.as_hex())
                    .execute(conn)
                    .await
                    .map(|r| r.rows_affected()))?;
            }
            UserEvent::UserErased { .. } => {
                let id = event.aggregate_id.as_str();
                crate::personal::scrub_in(tx.db().await?, crate::personal::SCRUB_SESSION_VIEW, id)
                    .await?;
            }
            _ => {}
        }
        Ok(())
    }
}

impl SessionsView {
    /// Sessions that have neither ended nor run out at `now` (a view time).
    pub async fn open(db: &Db, now: &str) -> Result<Vec<SessionRecord>, ProjectionError> {
        let sql = "SELECT session_hash, username, started_at, expires_at, ended_at, end_reason, \
                   ip, user_agent FROM session_view WHERE ended_at IS NULL AND expires_at > $1";
        Ok(on_db!(db, pool => sqlx::query_as(sql).bind(now).fetch_all(pool).await)?)
    }

    /// A person's sessions, newest first.
    pub async fn of_user(
        db: &Db,
        username: &str,
        limit: i64,
    ) -> Result<Vec<SessionRecord>, ProjectionError> {
        let sql = "SELECT session_hash, username, started_at, expires_at, ended_at, end_reason, \
                   ip, user_agent FROM session_view WHERE username = $1 \
                   ORDER BY started_at DESC LIMIT $2";
        Ok(
            on_db!(db, pool => sqlx::query_as(sql).bind(username).bind(limit).fetch_all(pool).await)?,
        )
    }
}
