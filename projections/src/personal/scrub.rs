//! What the views hold of a person, cleared when they are erased.

use crate::db::{Db, DbTx};
use crate::on_tx;

/// What each view holds of a person's data, cleared as they are erased (`$1`: the username).
/// Each view's projection runs its own on `UserErased`; erasing runs them all again once the
/// key is destroyed, for what was projected in between.
pub const SCRUB_USER_VIEW: &str =
    "UPDATE user_view SET profile = '{}', email = NULL WHERE username = $1";
pub const SCRUB_SESSION_VIEW: &str =
    "UPDATE session_view SET ip = NULL, user_agent = NULL WHERE username = $1";
pub const SCRUB_AUDIT_LOG: &str = "UPDATE audit_log SET ip = NULL, user_agent = NULL \
     WHERE username = $1 OR actor = 'user:' || $1";
pub const SCRUB_GRANT_VIEW: &str =
    "UPDATE grant_view SET revoked_ip = NULL WHERE revoked_by = 'user:' || $1";

/// Runs one of the statements above inside a projection's transaction.
pub async fn scrub_in(tx: &mut DbTx, sql: &str, username: &str) -> Result<(), sqlx::Error> {
    on_tx!(tx, conn => sqlx::query(sql).bind(username).execute(conn).await.map(|_| ()))
}

/// Runs every statement above, in one write transaction (on SQLite one that waits its turn
/// like every writer, and so never writes into a views file a rebuild has just replaced).
pub async fn scrub_views(db: &Db, username: &str) -> Result<(), sqlx::Error> {
    let mut tx = db.begin_write().await?;
    for sql in [
        SCRUB_USER_VIEW,
        SCRUB_SESSION_VIEW,
        SCRUB_AUDIT_LOG,
        SCRUB_GRANT_VIEW,
    ] {
        scrub_in(&mut tx, sql, username).await?;
    }
    tx.commit().await
}
