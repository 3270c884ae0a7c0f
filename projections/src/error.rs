//! The read side's one error type.

use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum ProjectionError {
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    /// A statement run on SQLite's own handle (`sqlite_rows.rs`) failed.
    #[error("database: {0}")]
    Rows(String),
    #[error("undecodable event: {0}")]
    Decode(String),
    #[error("a view row does not fit its table: {0}")]
    InvalidRow(String),
    #[error("no projection is named `{name}`; the projections are {}", known.join(", "))]
    UnknownProjection {
        name: String,
        known: Vec<&'static str>,
    },
    #[error("projections did not reach position {0} within {1:?}")]
    Lagging(i64, Duration),
    /// The archive directory is needed and not configured, or a segment cannot be read.
    #[error("{0}")]
    Archive(String),
    #[error("the rebuild stopped: its log reader or another projection's replay failed")]
    RebuildStopped,
}

impl ProjectionError {
    /// Whether the database could not be reached (see [`crate::db::is_unreachable`]).
    pub fn is_unreachable(&self) -> bool {
        matches!(self, ProjectionError::Db(e) if crate::db::is_unreachable(e))
    }
}
