//! The log read on SQLite through the connection's own handle (`crate::sqlite_rows`).
//!
//! Read through sqlx, each row of a page was copied value by value into a row object on the
//! connection's thread (one allocation a column), sent across a channel (a wake-up a row),
//! then copied again into owned strings before its JSON was parsed: a rebuild's profile put
//! that at about a quarter of all CPU, more than parsing the JSON itself. Here each row's
//! columns are read where SQLite keeps them, and the JSON parsed straight from there.

use sqlx::SqliteConnection;

use super::{sqlite_read_after, Parts, Position, StoredEvent, SQLITE_COLUMNS};
use crate::error::ProjectionError;

/// Up to `limit` events after the global position `after`, in order, as stored.
pub(super) async fn after(
    conn: &mut SqliteConnection,
    after: i64,
    limit: i64,
) -> Result<Vec<StoredEvent>, ProjectionError> {
    let sql = sqlite_read_after(SQLITE_COLUMNS);
    crate::sqlite_rows::on_handle(conn, |db| {
        let mut statement = db.prepare(&sql)?;
        let mut rows = statement.query((after, limit))?;
        // Not sized to `limit`: the projector asks for pages far larger than it usually finds.
        let mut events = Vec::new();
        while let Some(row) = rows.next()? {
            events.push(event(row)?);
        }
        Ok(events)
    })
    .await
}

/// One row of [`SQLITE_COLUMNS`] as an event.
fn event(row: &rusqlite::Row<'_>) -> Result<StoredEvent, ProjectionError> {
    let global: i64 = row.get(1)?;
    let text = |column: usize| -> Result<&str, ProjectionError> {
        row.get_ref(column)?
            .as_str()
            .map_err(|e| ProjectionError::Decode(format!("event {global}: column {column}: {e}")))
    };
    StoredEvent::from_text(
        Position {
            transaction: row.get(0)?,
            global,
        },
        Parts {
            aggregate_type: text(2)?.to_owned(),
            aggregate_id: text(3)?.to_owned(),
            sequence: row.get(4)?,
            event_type: text(5)?.to_owned(),
            event_version: text(6)?.to_owned(),
        },
        text(7)?,
        text(8)?,
    )
}
