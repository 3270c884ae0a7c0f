//! `user_view`: one row per user, for `user list|show` and the admin API. No password hash.

use std::collections::BTreeSet;

use async_trait::async_trait;
use authledger_domain::user::{Role, UserEvent, UserProfile};
use serde::Serialize;
use sqlx::FromRow;

use crate::batch::ViewTx;
use crate::db::Db;
use crate::event_log::StoredEvent;
use crate::{on_db, on_tx, view_time};
use crate::{Projection, ProjectionError};

pub struct UsersView;

#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct UserSummary {
    pub username: String,
    pub status: String,
    /// `email`, `name`, `given_name`, `family_name`, `picture`, each when set.
    #[schema(value_type = Object)]
    pub profile: UserProfile,
    #[schema(value_type = Vec<String>)]
    pub roles: BTreeSet<Role>,
    pub registered_at: String,
    pub registered_by: String,
    pub updated_at: String,
    pub password_changed_at: Option<String>,
    pub last_login_at: Option<String>,
    pub last_failed_login_at: Option<String>,
    /// Whether the person signs in with a second factor.
    pub two_factor: bool,
    /// When the person's data was erased (their profile is then empty for good).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub erased_at: Option<String>,
    pub version: i64,
}

#[derive(FromRow)]
struct UserRow {
    username: String,
    status: String,
    profile: String,
    roles: String,
    registered_at: String,
    registered_by: String,
    updated_at: String,
    password_changed_at: Option<String>,
    last_login_at: Option<String>,
    last_failed_login_at: Option<String>,
    two_factor: bool,
    erased_at: Option<String>,
    version: i64,
}

impl TryFrom<UserRow> for UserSummary {
    type Error = ProjectionError;
    fn try_from(row: UserRow) -> Result<Self, Self::Error> {
        let corrupt = |e: serde_json::Error| {
            ProjectionError::Decode(format!("user_view {}: {e}", row.username))
        };
        Ok(UserSummary {
            profile: serde_json::from_str(&row.profile).map_err(corrupt)?,
            roles: serde_json::from_str(&row.roles).map_err(corrupt)?,
            username: row.username,
            status: row.status,
            registered_at: row.registered_at,
            registered_by: row.registered_by,
            updated_at: row.updated_at,
            password_changed_at: row.password_changed_at,
            last_login_at: row.last_login_at,
            last_failed_login_at: row.last_failed_login_at,
            two_factor: row.two_factor,
            erased_at: row.erased_at,
            version: row.version,
        })
    }
}

const COLUMNS: &str = "username, status, profile, roles, registered_at, registered_by, \
                       updated_at, password_changed_at, last_login_at, \
                       last_failed_login_at, two_factor, erased_at, version";

impl UsersView {
    /// The people whose profile gives `email` (compared without case).
    pub async fn by_email(db: &Db, email: &str) -> Result<Vec<String>, ProjectionError> {
        let sql = "SELECT username FROM user_view WHERE email = $1 ORDER BY username LIMIT 2";
        Ok(
            on_db!(db, pool => sqlx::query_scalar(sql).bind(email.to_lowercase()).fetch_all(pool).await)?,
        )
    }

    pub async fn get(db: &Db, username: &str) -> Result<Option<UserSummary>, ProjectionError> {
        let sql = format!("SELECT {COLUMNS} FROM user_view WHERE username = $1");
        let row: Option<UserRow> =
            on_db!(db, pool => sqlx::query_as(&sql).bind(username).fetch_optional(pool).await)?;
        row.map(UserSummary::try_from).transpose()
    }

    /// Keyset page of users ordered by username, starting after `after`.
    pub async fn list(
        db: &Db,
        after: Option<&str>,
        limit: i64,
    ) -> Result<Vec<UserSummary>, ProjectionError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM user_view WHERE username > $1 ORDER BY username LIMIT $2"
        );
        let rows: Vec<UserRow> = on_db!(db, pool => sqlx::query_as(&sql)
            .bind(after.unwrap_or(""))
            .bind(limit)
            .fetch_all(pool)
            .await)?;
        rows.into_iter().map(UserSummary::try_from).collect()
    }
}

fn json<T: Serialize>(value: &T) -> String {
    serde_json::to_string(value).expect("view fields serialise")
}

#[async_trait]
impl Projection for UsersView {
    fn name(&self) -> &'static str {
        "users"
    }

    fn tables(&self) -> &'static [&'static str] {
        &["user_view"]
    }

    async fn apply(&self, tx: &mut ViewTx, event: &StoredEvent) -> Result<(), ProjectionError> {
        if event.aggregate_type != "User" {
            return Ok(());
        }
        let at = view_time(event.metadata.at);
        let id = event.aggregate_id.as_str();
        let version = event.sequence;
        // Each arm is one statement; `$1` is always the time, `$2` the version, `$3` the id.
        let (sql, value): (&str, Option<String>) = match event.decode::<UserEvent>()? {
            UserEvent::UserRegistered { profile, roles, .. } => {
                let sql = "INSERT INTO user_view (username, status, profile, roles, \
                           registered_at, registered_by, updated_at, version, email) \
                           VALUES ($3, 'active', $4, $5, $1, $6, $1, $2, $7)";
                on_tx!(tx.db().await?, conn => sqlx::query(sql)
                    .bind(&at)
                    .bind(version)
                    .bind(id)
                    .bind(json(&profile))
                    .bind(json(&roles))
                    .bind(event.metadata.actor.to_string())
                    .bind(profile.email.as_ref().map(|e| e.as_str().to_lowercase()))
                    .execute(conn)
                    .await.map(|r| r.rows_affected()))?;
                return Ok(());
            }
            UserEvent::ProfileUpdated { profile } => {
                let sql = "UPDATE user_view SET profile = $4, email = $5, updated_at = $1, version = $2 \
                           WHERE username = $3";
                on_tx!(tx.db().await?, conn => sqlx::query(sql)
                    .bind(&at)
                    .bind(version)
                    .bind(id)
                    .bind(json(&profile))
                    .bind(profile.email.as_ref().map(|e| e.as_str().to_lowercase()))
                    .execute(conn)
                    .await.map(|r| r.rows_affected()))?;
                return Ok(());
            }
            UserEvent::PasswordChanged { .. } => (
                "UPDATE user_view SET password_changed_at = $1, updated_at = $1, version = $2 \
                 WHERE username = $3",
                None,
            ),
            UserEvent::RolesSet { roles } => (
                "UPDATE user_view SET roles = $4, updated_at = $1, version = $2 WHERE username = $3",
                Some(json(&roles)),
            ),
            UserEvent::UserErased { .. } => {
                crate::personal::scrub_in(tx.db().await?, crate::personal::SCRUB_USER_VIEW, id)
                    .await?;
                (
                    "UPDATE user_view SET status = 'disabled', erased_at = $1, updated_at = $1, \
                     version = $2 WHERE username = $3",
                    None,
                )
            }
            UserEvent::UserDisabled {} => (
                "UPDATE user_view SET status = 'disabled', updated_at = $1, version = $2 \
                 WHERE username = $3",
                None,
            ),
            UserEvent::UserEnabled {} => (
                "UPDATE user_view SET status = 'active', updated_at = $1, version = $2 \
                 WHERE username = $3",
                None,
            ),
            UserEvent::LoginSucceeded { .. } => (
                "UPDATE user_view SET last_login_at = $1, version = $2 WHERE username = $3",
                None,
            ),
            UserEvent::TwoFactorEnrolled { .. } => (
                "UPDATE user_view SET two_factor = TRUE, updated_at = $1, version = $2 \
                 WHERE username = $3",
                None,
            ),
            UserEvent::TwoFactorRemoved { .. } => (
                "UPDATE user_view SET two_factor = FALSE, updated_at = $1, version = $2 \
                 WHERE username = $3",
                None,
            ),
            // The sessions projection and the audit log keep those.
            UserEvent::SessionStarted { .. }
            | UserEvent::SessionEnded { .. }
            | UserEvent::PasswordVerified { .. }
            | UserEvent::VouchedElsewhere { .. }
            | UserEvent::SecondFactorPassed { .. }
            | UserEvent::RecoveryCodeUsed { .. } => return Ok(()),
            UserEvent::LoginFailed { .. }
            | UserEvent::LoginThrottled { .. }
            | UserEvent::SecondFactorFailed { .. } => (
                "UPDATE user_view SET last_failed_login_at = $1, version = $2 WHERE username = $3",
                None,
            ),
        };
        on_tx!(tx.db().await?, conn => {
            let mut query = sqlx::query(sql).bind(&at).bind(version).bind(id);
            if let Some(value) = &value {
                query = query.bind(value);
            }
            query.execute(conn).await.map(|r| r.rows_affected())
        })?;
        Ok(())
    }
}
