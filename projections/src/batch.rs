//! [`ViewTx`]: the transaction the runner hands projections, which batches their writes.
//!
//! Most events become a few row inserts (a token, an audit row) and a counter increment. Sent
//! one statement each, a batch of 500 events costs thousands of round trips; the projector and
//! `projections rebuild` would spend their time waiting on them. So:
//! - rows given to [`ViewTx::insert`] wait, one list per table, and are written together
//!   when anything else needs the database ([`ViewTx::db`] flushes first), so every
//!   statement still sees every row inserted before it, in event order: on Postgres as one
//!   `INSERT ... SELECT * FROM UNNEST(...)`, on SQLite by one prepared row statement
//!   stepped for each (`sqlite_rows.rs`);
//! - counters given to [`ViewTx::count`] are summed in memory and upserted once per key at
//!   commit (addition does not care about order);
//! - the client and user of each grant seen in the batch are remembered, so later events of
//!   the same grant need no lookup.

use std::collections::HashMap;

use crate::db::DbTx;
use crate::error::ProjectionError;

/// One value of a deferred row, borrowed from what the projection is applying: the batch
/// copies it into one buffer for all of a table's rows ([`RowValues`]). (Owned values cost
/// an allocation and a free each: a million events' rebuild replayed in 16 s with them,
/// 12.4 s without.)
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Value<'a> {
    Text(&'a str),
    Null,
    Int(i64),
}

impl<'a> From<&'a str> for Value<'a> {
    fn from(s: &'a str) -> Self {
        Value::Text(s)
    }
}
impl<'a> From<&'a String> for Value<'a> {
    fn from(s: &'a String) -> Self {
        Value::Text(s)
    }
}
impl<'a> From<Option<&'a str>> for Value<'a> {
    fn from(s: Option<&'a str>) -> Self {
        s.map_or(Value::Null, Value::Text)
    }
}
impl<'a> From<&'a Option<String>> for Value<'a> {
    fn from(s: &'a Option<String>) -> Self {
        s.as_deref().into()
    }
}
impl From<i64> for Value<'_> {
    fn from(n: i64) -> Self {
        Value::Int(n)
    }
}

/// A stored value of [`RowValues`]: text is a range of its buffer.
#[derive(Debug, Clone, Copy)]
enum Cell {
    Text { start: usize, end: usize },
    Null,
    Int(i64),
}

/// The values of a table's deferred rows, in order, their text in one buffer.
#[derive(Debug, Default)]
pub(crate) struct RowValues {
    cells: Vec<Cell>,
    text: String,
}

impl RowValues {
    pub(crate) fn push(&mut self, value: Value<'_>) {
        let cell = match value {
            Value::Text(s) => {
                let start = self.text.len();
                self.text.push_str(s);
                Cell::Text {
                    start,
                    end: self.text.len(),
                }
            }
            Value::Null => Cell::Null,
            Value::Int(n) => Cell::Int(n),
        };
        self.cells.push(cell);
    }

    pub(crate) fn len(&self) -> usize {
        self.cells.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.cells.is_empty()
    }

    /// The values in order, borrowed back.
    pub(crate) fn iter(&self) -> impl Iterator<Item = Value<'_>> + '_ {
        self.cells.iter().map(|cell| match *cell {
            Cell::Text { start, end } => Value::Text(&self.text[start..end]),
            Cell::Null => Value::Null,
            Cell::Int(n) => Value::Int(n),
        })
    }
}

/// The most values a table's waiting rows hold before they are written: a bound on a batch's
/// memory (Postgres binds them as one array per column, SQLite row by row).
const MAX_BINDS: usize = 30_000;

/// Rows waiting for one table: `INSERT INTO table (columns)`, the rows, then `tail` (an
/// `ON CONFLICT` clause or nothing).
struct PendingRows {
    table: &'static str,
    head: &'static str,
    tail: &'static str,
    width: usize,
    values: RowValues,
}

/// A counter increment's key: table, then hour, client, user and metric.
type CounterKey = (&'static str, String, String, String, &'static str);

pub struct ViewTx {
    tx: DbTx,
    pending: Vec<PendingRows>,
    counters: HashMap<CounterKey, i64>,
    grant_subjects: HashMap<String, (String, Option<String>)>,
}

impl ViewTx {
    pub fn new(tx: DbTx) -> ViewTx {
        ViewTx {
            tx,
            pending: Vec::new(),
            counters: HashMap::new(),
            grant_subjects: HashMap::new(),
        }
    }

    /// The transaction itself, for a statement that is not a deferred insert; every deferred
    /// row is written first.
    pub async fn db(&mut self) -> Result<&mut DbTx, ProjectionError> {
        self.flush_rows().await?;
        Ok(&mut self.tx)
    }

    /// Defers one row of `INSERT INTO table (columns) VALUES (...) tail`. `head` is the
    /// `INSERT INTO table (columns)` part; rows with the same head and tail go in one
    /// statement. A different statement for a table that has rows waiting writes them first,
    /// so one table's rows keep their order.
    pub async fn insert(
        &mut self,
        table: &'static str,
        head: &'static str,
        tail: &'static str,
        row: &[Value<'_>],
    ) -> Result<(), ProjectionError> {
        let index = match self.pending.iter().position(|p| p.table == table) {
            Some(i) if self.pending[i].head == head && self.pending[i].tail == tail => i,
            Some(_) => {
                self.flush_rows().await?;
                self.pending.len()
            }
            None => self.pending.len(),
        };
        if index == self.pending.len() {
            self.pending.push(PendingRows {
                table,
                head,
                tail,
                width: row.len(),
                values: RowValues::default(),
            });
        }
        let pending = &mut self.pending[index];
        debug_assert_eq!(pending.width, row.len(), "{head}: rows of one width");
        for value in row {
            pending.values.push(*value);
        }
        if pending.values.len() + pending.width > MAX_BINDS {
            self.flush_rows().await?;
        }
        Ok(())
    }

    /// Adds `count` to an hourly counter (`table` has columns hour, client_id, username,
    /// metric, count); written once per key at commit.
    pub fn count(
        &mut self,
        table: &'static str,
        hour: String,
        client_id: &str,
        username: Option<&str>,
        metric: &'static str,
        count: i64,
    ) {
        if count == 0 {
            return;
        }
        let key = (
            table,
            hour,
            client_id.to_owned(),
            username.unwrap_or("").to_owned(),
            metric,
        );
        *self.counters.entry(key).or_default() += count;
    }

    /// Remembers a grant's client and user for the rest of the batch.
    pub fn remember_grant(&mut self, grant_id: &str, client_id: &str, username: Option<&str>) {
        self.grant_subjects.insert(
            grant_id.to_owned(),
            (client_id.to_owned(), username.map(str::to_owned)),
        );
    }

    /// Forgets the remembered grants: a rebuild, one transaction over the whole log, calls
    /// this after each page so the memo stays a page's size. Later events find the grant's
    /// row in the views instead.
    pub fn forget_grants(&mut self) {
        self.grant_subjects.clear();
    }

    /// A grant's client and user, if an earlier event of this batch named them.
    pub fn remembered_grant(&self, grant_id: &str) -> Option<(String, Option<String>)> {
        self.grant_subjects.get(grant_id).cloned()
    }

    /// Writes everything deferred, counters included.
    pub async fn flush(&mut self) -> Result<(), ProjectionError> {
        self.flush_rows().await?;
        self.flush_counters().await?;
        self.flush_rows().await
    }

    /// Writes everything deferred and commits.
    pub async fn commit(mut self) -> Result<(), ProjectionError> {
        self.flush().await?;
        self.tx.commit().await?;
        Ok(())
    }

    async fn flush_counters(&mut self) -> Result<(), ProjectionError> {
        let mut counters: Vec<_> = std::mem::take(&mut self.counters).into_iter().collect();
        // One order for every writer, so two batches never wait on each other's rows in turn.
        counters.sort();
        for ((table, hour, client_id, username, metric), count) in counters {
            let (head, tail) = match table {
                "usage_events_hourly" => (
                    "INSERT INTO usage_events_hourly (hour, client_id, username, metric, count)",
                    "ON CONFLICT (hour, client_id, username, metric) \
                     DO UPDATE SET count = usage_events_hourly.count + excluded.count",
                ),
                other => {
                    return Err(ProjectionError::Decode(format!(
                        "no counter table named {other}"
                    )))
                }
            };
            let row = [
                hour.as_str().into(),
                client_id.as_str().into(),
                username.as_str().into(),
                metric.into(),
                count.into(),
            ];
            self.insert(table, head, tail, &row).await?;
        }
        Ok(())
    }

    async fn flush_rows(&mut self) -> Result<(), ProjectionError> {
        for pending in std::mem::take(&mut self.pending) {
            if pending.values.is_empty() {
                continue;
            }
            match &mut self.tx {
                DbTx::Sqlite(tx, _) => {
                    let rows = &pending.values;
                    crate::sqlite_rows::insert(tx, pending.head, pending.tail, pending.width, rows)
                        .await?;
                }
                DbTx::Postgres(tx) => {
                    let (sql, columns) = unnest_statement(pending)?;
                    let mut query = sqlx::query(&sql);
                    for column in columns {
                        query = match column {
                            Column::Text(values) => query.bind(values),
                            Column::Int(values) => query.bind(values),
                        };
                    }
                    query.execute(&mut **tx).await?;
                }
            }
        }
        Ok(())
    }
}

/// One column of a Postgres batch, bound as one array.
enum Column {
    Text(Vec<Option<String>>),
    Int(Vec<i64>),
}

/// `head SELECT * FROM UNNEST($1::text[], $2::int8[]) tail`: Postgres gets one parameter per
/// column whatever the number of rows, so the statement text is the same for every batch
/// (prepared once) and planning does not grow with the rows, as it does for a VALUES list.
fn unnest_statement(pending: PendingRows) -> Result<(String, Vec<Column>), ProjectionError> {
    let rows = pending.values.len() / pending.width;
    let mut columns: Vec<Column> = pending
        .values
        .iter()
        .take(pending.width)
        .map(|first| match first {
            Value::Int(_) => Column::Int(Vec::with_capacity(rows)),
            _ => Column::Text(Vec::with_capacity(rows)),
        })
        .collect();
    for (i, value) in pending.values.iter().enumerate() {
        match (&mut columns[i % pending.width], value) {
            (Column::Int(column), Value::Int(n)) => column.push(n),
            (Column::Text(column), Value::Text(s)) => column.push(Some(s.to_owned())),
            (Column::Text(column), Value::Null) => column.push(None),
            // One column holds one kind of value in every row (the projections build rows
            // with one function per table); a mix is a bug, caught by the tests.
            (_, value) => {
                return Err(ProjectionError::InvalidRow(format!(
                    "{}: column {} mixes kinds ({value:?})",
                    pending.head,
                    i % pending.width
                )))
            }
        }
    }
    let mut sql = String::with_capacity(pending.head.len() + pending.tail.len() + 40);
    sql.push_str(pending.head);
    sql.push_str(" SELECT * FROM UNNEST(");
    for (n, column) in columns.iter().enumerate() {
        if n > 0 {
            sql.push_str(", ");
        }
        let kind = match column {
            Column::Int(_) => "int8",
            Column::Text(_) => "text",
        };
        sql.push_str(&format!("${}::{kind}[]", n + 1));
    }
    sql.push_str(") ");
    sql.push_str(pending.tail);
    Ok((sql, columns))
}

#[cfg(test)]
mod tests {
    use super::{RowValues, Value};

    #[test]
    fn row_values_come_back_as_they_went_in() {
        let owned = String::from("second");
        let values = [
            Value::from("first"),
            Value::Null,
            Value::Int(-7),
            (&owned).into(),
            Value::from(""),
            Value::from(Some("é\0")),
        ];
        let mut rows = RowValues::default();
        for value in values {
            rows.push(value);
        }
        assert_eq!(rows.len(), values.len());
        assert_eq!(rows.iter().collect::<Vec<_>>(), values);
    }
}
