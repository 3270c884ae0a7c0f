//! The embedded store: sqlite-es over one SQLite file (WAL, `synchronous=FULL`).

use sqlite_es::SqliteEventRepository;
use sqlx::SqlitePool;

pub(super) async fn migrate(pool: &SqlitePool) -> Result<(), sqlx::migrate::MigrateError> {
    sqlx::migrate!("./migrations/sqlite").run(pool).await
}

pub(super) fn repository(pool: &SqlitePool) -> SqliteEventRepository {
    SqliteEventRepository::new(pool.clone())
}
