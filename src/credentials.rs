//! Password hashes, kept in `password_credentials` outside the event log: events name a hash
//! by its row's id (`PasswordRecord::Credential`) and never hold it, so reading the log (or
//! an export of it) gives no one a hash to attack offline. Erasing a person removes their
//! rows.

use authledger_domain::secret::{CredentialId, PasswordHash, PasswordRecord};
use authledger_domain::user::Username;
use authledger_projections::{on_db, view_time, Db};

/// Keeps `hash` for `username` under a new id, before the event that names it is written.
pub async fn keep(
    db: &Db,
    username: &Username,
    hash: &PasswordHash,
) -> Result<CredentialId, sqlx::Error> {
    let id = format!("pw-{}", uuid::Uuid::new_v4().simple());
    let sql = "INSERT INTO password_credentials (id, username, hash, created_at) \
               VALUES ($1, $2, $3, $4)";
    on_db!(db, pool => sqlx::query(sql)
        .bind(&id)
        .bind(username.as_str())
        .bind(hash.as_str())
        .bind(view_time(chrono::Utc::now()))
        .execute(pool)
        .await
        .map(|_| ()))?;
    Ok(CredentialId::new(id))
}

/// Removes every hash kept for `username` (erasure): their events then name rows that are gone.
pub async fn forget(db: &Db, username: &Username) -> Result<(), sqlx::Error> {
    let sql = "DELETE FROM password_credentials WHERE username = $1";
    on_db!(db, pool => sqlx::query(sql).bind(username.as_str()).execute(pool).await.map(|_| ()))
}

/// The hash an event's record stands for: looked up when kept outside, or the hash itself
/// in an event recorded before hashes moved out of the log. None when its row is gone.
pub async fn hash_of(
    db: &Db,
    record: &PasswordRecord,
) -> Result<Option<PasswordHash>, sqlx::Error> {
    let id = match record {
        PasswordRecord::PasswordHash(hash) => return Ok(Some(hash.clone())),
        PasswordRecord::Credential(id) => id,
    };
    let sql = "SELECT hash FROM password_credentials WHERE id = $1";
    let hash: Option<String> = on_db!(db, pool => sqlx::query_scalar(sql)
        .bind(id.as_str())
        .fetch_optional(pool)
        .await)?;
    Ok(hash.map(PasswordHash::new_unchecked))
}
