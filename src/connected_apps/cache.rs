//! The vault's part of Connected Apps: each app's client secret and the token cache, sealed
//! under the master key (AES-256-GCM) outside the event log, each value with its app, person
//! and kind as associated data so that one cannot be passed off as another.

use authledger_projections::{on_db, view_time, Db};
use chrono::{DateTime, Utc};

use crate::error::AppError;
use crate::master_key::MasterKey;

/// Tokens of one connection, as the provider issued them.
#[derive(Clone)]
pub struct CachedTokens {
    pub access_token: String,
    pub refresh_token: Option<String>,
    pub access_expires_at: Option<DateTime<Utc>>,
}

impl std::fmt::Debug for CachedTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CachedTokens")
            .field("access_expires_at", &self.access_expires_at)
            .finish_non_exhaustive()
    }
}

pub struct Sealed<'a> {
    pub db: &'a Db,
    pub master: &'a MasterKey,
}

fn failed(error: impl Into<anyhow::Error>) -> AppError {
    AppError::Internal(error.into())
}

impl Sealed<'_> {
    pub async fn put_secret(&self, app: &str, secret: &str) -> Result<(), AppError> {
        let sealed = self
            .master
            .seal(secret.as_bytes(), &format!("connected-app-secret:{app}"));
        let sql = "INSERT INTO connected_app_secrets (app_id, sealed_secret, updated_at) VALUES ($1, $2, $3) \
                   ON CONFLICT (app_id) DO UPDATE SET sealed_secret = excluded.sealed_secret, updated_at = excluded.updated_at";
        on_db!(self.db, pool => sqlx::query(sql)
            .bind(app)
            .bind(&sealed)
            .bind(view_time(Utc::now()))
            .execute(pool)
            .await
            .map(drop))
        .map_err(failed)
    }

    pub async fn secret(&self, app: &str) -> Result<String, AppError> {
        let sql = "SELECT sealed_secret FROM connected_app_secrets WHERE app_id = $1";
        let sealed: Option<String> =
            on_db!(self.db, pool => sqlx::query_scalar(sql).bind(app).fetch_optional(pool).await)
                .map_err(failed)?;
        let sealed = sealed.ok_or_else(|| {
            AppError::Conflict(format!("the vault holds no client secret for {app}"))
        })?;
        let raw = self
            .master
            .open(&sealed, &format!("connected-app-secret:{app}"))
            .map_err(failed)?;
        String::from_utf8(raw).map_err(failed)
    }

    /// Forgets the app's secret and every token cached for it.
    pub async fn forget_app(&self, app: &str) -> Result<(), AppError> {
        for sql in [
            "DELETE FROM connected_app_secrets WHERE app_id = $1",
            "DELETE FROM provider_token_cache WHERE app_id = $1",
            "DELETE FROM provider_refresh_leases WHERE app_id = $1",
        ] {
            on_db!(self.db, pool => sqlx::query(sql).bind(app).execute(pool).await.map(drop))
                .map_err(failed)?;
        }
        Ok(())
    }

    fn context(app: &str, user: &str, kind: &str) -> String {
        format!("provider-{kind}-token:{app}:{user}")
    }

    pub async fn put_tokens(
        &self,
        app: &str,
        user: &str,
        tokens: &CachedTokens,
    ) -> Result<(), AppError> {
        let access = self.master.seal(
            tokens.access_token.as_bytes(),
            &Self::context(app, user, "access"),
        );
        let refresh = tokens.refresh_token.as_ref().map(|r| {
            self.master
                .seal(r.as_bytes(), &Self::context(app, user, "refresh"))
        });
        let sql = "INSERT INTO provider_token_cache (app_id, username, sealed_access_token, sealed_refresh_token, access_expires_at, updated_at) \
                   VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (app_id, username) DO UPDATE SET \
                   sealed_access_token = excluded.sealed_access_token, sealed_refresh_token = excluded.sealed_refresh_token, \
                   access_expires_at = excluded.access_expires_at, updated_at = excluded.updated_at";
        on_db!(self.db, pool => sqlx::query(sql)
            .bind(app)
            .bind(user)
            .bind(&access)
            .bind(&refresh)
            .bind(tokens.access_expires_at.map(view_time))
            .bind(view_time(Utc::now()))
            .execute(pool)
            .await
            .map(drop))
        .map_err(failed)
    }

    pub async fn tokens(&self, app: &str, user: &str) -> Result<Option<CachedTokens>, AppError> {
        let sql = "SELECT sealed_access_token, sealed_refresh_token, access_expires_at FROM provider_token_cache \
                   WHERE app_id = $1 AND username = $2";
        let row: Option<(String, Option<String>, Option<String>)> =
            on_db!(self.db, pool => sqlx::query_as(sql)
            .bind(app)
            .bind(user)
            .fetch_optional(pool)
            .await)
            .map_err(failed)?;
        let Some((access, refresh, expires)) = row else {
            return Ok(None);
        };
        let open = |sealed: &str, kind: &str| -> Result<String, AppError> {
            let raw = self
                .master
                .open(sealed, &Self::context(app, user, kind))
                .map_err(failed)?;
            String::from_utf8(raw).map_err(failed)
        };
        Ok(Some(CachedTokens {
            access_token: open(&access, "access")?,
            refresh_token: refresh.as_deref().map(|r| open(r, "refresh")).transpose()?,
            access_expires_at: expires
                .as_deref()
                .and_then(|e| DateTime::parse_from_rfc3339(e).ok())
                .map(|e| e.with_timezone(&Utc)),
        }))
    }

    /// Claims the refresh of a connection's tokens for `holder` until `until`, unless another
    /// holder's claim has not run out yet (`provider_refresh_leases`). Whether it was claimed.
    pub async fn claim_refresh(
        &self,
        app: &str,
        user: &str,
        holder: &str,
        until: DateTime<Utc>,
    ) -> Result<bool, AppError> {
        let sql = "INSERT INTO provider_refresh_leases (app_id, username, holder, held_until) VALUES ($1, $2, $3, $4) \
                   ON CONFLICT (app_id, username) DO UPDATE SET holder = excluded.holder, held_until = excluded.held_until \
                   WHERE provider_refresh_leases.held_until < $5";
        let claimed = on_db!(self.db, pool => sqlx::query(sql)
            .bind(app)
            .bind(user)
            .bind(holder)
            .bind(view_time(until))
            .bind(view_time(Utc::now()))
            .execute(pool)
            .await
            .map(|done| done.rows_affected() == 1))
        .map_err(failed)?;
        Ok(claimed)
    }

    /// Gives up `holder`'s claim (a claim taken over after it ran out is not touched).
    pub async fn release_refresh(
        &self,
        app: &str,
        user: &str,
        holder: &str,
    ) -> Result<(), AppError> {
        let sql = "DELETE FROM provider_refresh_leases WHERE app_id = $1 AND username = $2 AND holder = $3";
        on_db!(self.db, pool => sqlx::query(sql).bind(app).bind(user).bind(holder).execute(pool).await.map(drop))
            .map_err(failed)
    }

    pub async fn forget_tokens(&self, app: &str, user: &str) -> Result<(), AppError> {
        let sql = "DELETE FROM provider_token_cache WHERE app_id = $1 AND username = $2";
        on_db!(self.db, pool => sqlx::query(sql).bind(app).bind(user).execute(pool).await.map(drop))
            .map_err(failed)
    }
}
