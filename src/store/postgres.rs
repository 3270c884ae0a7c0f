//! The production store: postgres-es over PostgreSQL.

use postgres_es::PostgresEventRepository;
use sqlx::PgPool;

pub(super) async fn migrate(pool: &PgPool) -> Result<(), sqlx::migrate::MigrateError> {
    sqlx::migrate!("./migrations/postgres").run(pool).await
}

pub(super) fn repository(pool: &PgPool) -> PostgresEventRepository {
    PostgresEventRepository::new(pool.clone())
}
