//! `authledger events` and `history TYPE:ID`: the raw log, with metadata.

use authledger_projections::event_log::{self, StoredEvent};
use authledger_projections::Position;
use chrono::{DateTime, Utc};

use super::output::write_line;
use crate::error::AppError;
use crate::store::Store;

/// `history TYPE:ID`: one aggregate's events with their metadata.
pub(super) async fn history(store: &Store, aggregate: &str, json: bool) -> Result<(), AppError> {
    let (kind, id) = parse_aggregate(aggregate)?;
    let events = store.history(kind, &id).await?;
    if events.is_empty() {
        return Err(AppError::NotFound(format!("no events for {aggregate}")));
    }
    let mut out = std::io::stdout().lock();
    for event in &events {
        let line = match json {
            true => serde_json::to_string(event).map_err(|e| AppError::Internal(e.into()))?,
            false => describe(event),
        };
        if !write_line(&mut out, &line)? {
            break;
        }
    }
    Ok(())
}

pub(super) fn parse_aggregate(raw: &str) -> Result<(&'static str, String), AppError> {
    crate::replay::parse_aggregate(raw)
}

/// How `events` prints.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub(super) enum EventsFormat {
    /// A line for people per event, its payload under it.
    Text,
    /// One JSON object per line.
    Json,
}

pub(super) async fn events(
    store: &Store,
    aggregate: Option<String>,
    since: Option<String>,
    until: Option<String>,
    json: bool,
) -> Result<(), AppError> {
    let time = |flag: &str, raw: Option<String>| -> Result<Option<DateTime<Utc>>, AppError> {
        raw.map(|raw| {
            authledger_domain::instant::parse(&raw, Utc::now())
                .map_err(|e| AppError::invalid(format!("--{flag} {e}")))
        })
        .transpose()
    };
    let since = time("since", since)?;
    let until = time("until", until)?;
    let keep = |event: &StoredEvent| {
        since.is_none_or(|since| event.metadata.at >= since)
            && until.is_none_or(|until| event.metadata.at < until)
    };
    let mut out = std::io::stdout().lock();
    // Returns whether to go on.
    let mut print = |event: &StoredEvent| -> Result<bool, AppError> {
        if !keep(event) {
            return Ok(true);
        }
        let mut event = event.clone();
        crate::replay::hide_password_hashes(&mut event.payload);
        let line = if json {
            serde_json::to_string(&event).map_err(|e| AppError::Internal(e.into()))?
        } else {
            describe(&event)
        };
        write_line(&mut out, &line)
    };
    if let Some(aggregate) = aggregate {
        let (kind, id) = parse_aggregate(&aggregate)?;
        let events = store.history(kind, &id).await?;
        if events.is_empty() {
            return Err(AppError::NotFound(format!("no events for {aggregate}")));
        }
        for event in events {
            if !print(&event)? {
                break;
            }
        }
        return Ok(());
    }
    let mut after = Position::default();
    loop {
        let mut tx = store
            .db
            .begin()
            .await
            .map_err(|e| AppError::Internal(e.into()))?;
        let batch = event_log::read_after(&mut tx, after, 1000).await?;
        drop(tx);
        let Some(last) = batch.last() else {
            return Ok(());
        };
        after = last.position;
        for event in &batch {
            if !print(event)? {
                return Ok(());
            }
        }
    }
}

/// One event as a line for people: position, time, aggregate, type, who and from where, then
/// the payload.
fn describe(event: &StoredEvent) -> String {
    let m = &event.raw_metadata;
    let get = |key: &str| m.get(key).map(String::as_str).unwrap_or("-");
    let mut line = format!(
        "#{:<6} {}  {}:{} v{}  {}  actor={} source={}",
        event.position.global,
        get("time"),
        event.aggregate_type,
        event.aggregate_id,
        event.sequence,
        event.event_type,
        get("actor"),
        get("source"),
    );
    for key in ["ip", "user_agent"] {
        if let Some(value) = m.get(key) {
            line.push_str(&format!(" {key}={value:?}"));
        }
    }
    line.push_str(&format!(
        " request_id={}\n        {}",
        get("request_id"),
        event.payload
    ));
    line
}
