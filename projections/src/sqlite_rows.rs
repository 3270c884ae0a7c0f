//! A batch's deferred rows written on SQLite ([`crate::batch::ViewTx`]): one prepared
//! single-row `INSERT` per table and batch, stepped once per row on the connection's own
//! handle ([`on_handle`], which reading the log uses too).
//!
//! It replaces a multi-row `INSERT ... VALUES (?, ?), (?, ?) ...` sent through sqlx, which a
//! profile of a rebuild (300,000 events) found costly for no work of its own: SQLite parsed
//! every statement of up to 30,000 parameters anew (8.5% of the CPU), and every value was
//! boxed into sqlx's arguments, sent to the connection's thread and copied there again on
//! binding (14%). A prepared row statement is parsed once a batch, and each value is bound
//! straight from the row.
//!
//! The handle is sqlx's connection's, locked for the while ([`SqliteConnection::lock_handle`]):
//! the statements run inside the transaction the batch began, and sqlx's own thread for the
//! connection waits meanwhile. They run on the calling thread, so on a multi-threaded runtime
//! it is first handed over as a blocking thread (a batch of a thousand rows takes a few
//! milliseconds the other tasks should not wait for).

use rusqlite::types::{ToSqlOutput, ValueRef};
use sqlx::SqliteConnection;

use crate::batch::{RowValues, Value};
use crate::error::ProjectionError;

/// Inserts `rows` (values, `width` to a row, in order) with `head VALUES (?, ...) tail`.
pub(crate) async fn insert(
    conn: &mut SqliteConnection,
    head: &str,
    tail: &str,
    width: usize,
    rows: &RowValues,
) -> Result<(), ProjectionError> {
    let sql = row_statement(head, width, tail);
    on_handle(conn, |db| {
        let mut statement = db.prepare(&sql)?;
        let mut values = rows.iter();
        for _ in 0..rows.len() / width {
            statement.execute(rusqlite::params_from_iter(values.by_ref().take(width)))?;
        }
        Ok(())
    })
    .await
}

/// Runs `work` on the connection's own handle, locked for the while, inside whatever
/// transaction the connection has open, as a blocking section (see the module
/// documentation). Reading the log goes this way too (`event_log`), and the group committer's
/// writes (`db::write_log_on_handle`).
pub(crate) async fn on_handle<T, E>(
    conn: &mut SqliteConnection,
    work: impl FnOnce(&rusqlite::Connection) -> Result<T, E>,
) -> Result<T, E>
where
    E: From<sqlx::Error> + From<rusqlite::Error>,
{
    let mut handle = conn.lock_handle().await?;
    let raw = handle.as_raw_handle().as_ptr();
    off_the_runtime(|| {
        // SAFETY: `raw` is the open connection sqlx holds, locked for this thread until
        // `handle` is dropped, after this closure; `from_handle` does not close it, and
        // `work`'s statements are finalized (dropped) before `db`.
        let db = unsafe { rusqlite::Connection::from_handle(raw) }?;
        work(&db)
    })
}

impl From<rusqlite::Error> for ProjectionError {
    /// SQLite's message names tables, columns and constraints, never bound values.
    fn from(error: rusqlite::Error) -> Self {
        ProjectionError::Rows(error.to_string())
    }
}

/// `head VALUES (?, ?, ...) tail`: one row's statement. Anonymous parameters, bound by
/// position.
fn row_statement(head: &str, width: usize, tail: &str) -> String {
    let mut sql = String::with_capacity(head.len() + tail.len() + 10 + 3 * width);
    sql.push_str(head);
    sql.push_str(" VALUES (");
    for column in 0..width {
        sql.push_str(if column == 0 { "?" } else { ", ?" });
    }
    sql.push_str(") ");
    sql.push_str(tail);
    sql
}

/// Runs `work`, which blocks, without holding up the runtime's other tasks: on a
/// multi-threaded runtime this worker's tasks move to another thread for the while; a
/// single-threaded runtime (a test's) has nowhere to move them.
fn off_the_runtime<T, E>(work: impl FnOnce() -> Result<T, E>) -> Result<T, E> {
    let flavor = tokio::runtime::Handle::try_current().map(|handle| handle.runtime_flavor());
    match flavor {
        Ok(tokio::runtime::RuntimeFlavor::MultiThread) => tokio::task::block_in_place(work),
        _ => work(),
    }
}

impl rusqlite::ToSql for Value<'_> {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::Borrowed(match *self {
            Value::Text(s) => ValueRef::Text(s.as_bytes()),
            Value::Null => ValueRef::Null,
            Value::Int(n) => ValueRef::Integer(n),
        }))
    }
}

#[cfg(test)]
mod tests {
    use sqlx::{Connection, SqliteConnection};

    use super::{insert, row_statement};
    use crate::batch::{RowValues, Value};
    use crate::error::ProjectionError;

    async fn table() -> SqliteConnection {
        let mut conn = SqliteConnection::connect("sqlite::memory:").await.unwrap();
        sqlx::query("CREATE TABLE t (k TEXT PRIMARY KEY, n INTEGER NOT NULL, note TEXT) STRICT")
            .execute(&mut conn)
            .await
            .unwrap();
        conn
    }

    fn rows(rows: &[(&str, i64, Option<&str>)]) -> RowValues {
        let mut values = RowValues::default();
        for &(k, n, note) in rows {
            for value in [Value::from(k), n.into(), note.into()] {
                values.push(value);
            }
        }
        values
    }

    const HEAD: &str = "INSERT INTO t (k, n, note)";

    /// On a multi-threaded runtime, as the server and the CLI run it (the statements run as a
    /// blocking section there).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn rows_are_inserted_in_order_with_their_tail() {
        let mut conn = table().await;
        let rows = rows(&[
            ("a", 1, Some("first")),
            ("b", 2, None),
            ("a", 5, Some("again")),
        ]);
        let tail = "ON CONFLICT (k) DO UPDATE SET n = t.n + excluded.n";
        insert(&mut conn, HEAD, tail, 3, &rows).await.unwrap();
        let stored: Vec<(String, i64, Option<String>)> =
            sqlx::query_as("SELECT k, n, note FROM t ORDER BY k")
                .fetch_all(&mut conn)
                .await
                .unwrap();
        assert_eq!(
            stored,
            vec![("a".into(), 6, Some("first".into())), ("b".into(), 2, None)]
        );
    }

    /// A refused row is an error that names the constraint, not the values, and the
    /// connection stays usable by sqlx.
    #[tokio::test]
    async fn a_refused_row_is_an_error_without_its_values() {
        let mut conn = table().await;
        let rows = rows(&[("secret-value", 1, None), ("secret-value", 2, None)]);
        let error = insert(&mut conn, HEAD, "", 3, &rows).await.unwrap_err();
        let ProjectionError::Rows(message) = &error else {
            panic!("{error:?}");
        };
        assert!(
            message.contains("UNIQUE constraint failed: t.k"),
            "{message}"
        );
        assert!(!message.contains("secret-value"), "{message}");
        let count: i64 = sqlx::query_scalar("SELECT count(*) FROM t")
            .fetch_one(&mut conn)
            .await
            .unwrap();
        assert_eq!(
            count, 1,
            "the row before the refused one, outside a transaction"
        );
    }

    #[test]
    fn a_row_statement_has_one_parameter_a_column() {
        assert_eq!(
            row_statement("INSERT INTO t (a, b)", 2, "ON CONFLICT (a) DO NOTHING"),
            "INSERT INTO t (a, b) VALUES (?, ?) ON CONFLICT (a) DO NOTHING"
        );
        assert_eq!(
            row_statement("INSERT INTO t (a)", 1, ""),
            "INSERT INTO t (a) VALUES (?) "
        );
    }
}
