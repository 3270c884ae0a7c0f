//! `/admin/history/{type}/{id}`: an aggregate's timeline, and its state as of any event or
//! instant, rebuilt from the log (`crate::replay`), with what that event changed. What no
//! peer can show: not the state now, but the state then, and why.

use askama::Template;
use authledger_projections::event_log::StoredEvent;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum_extra::extract::cookie::SignedCookieJar;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::Value;

use super::{operator, Operator, Refusal};
use crate::error::AppError;
use crate::http::pages::{render, Chrome};
use crate::http::AppState;

#[derive(Deserialize, Default)]
pub struct HistoryQuery {
    /// The global position of the event to show the state after.
    at: Option<i64>,
    /// Or an instant (RFC 3339): the state as it was then.
    as_of: Option<String>,
}

struct Step {
    position: i64,
    time: String,
    event_type: String,
    actor: String,
    ip: String,
    selected: bool,
}

#[derive(Template)]
#[template(path = "console/history.html")]
struct HistoryPage<'a> {
    chrome: &'a Chrome,
    operator: &'a Operator,
    kind: &'a str,
    id: &'a str,
    steps: Vec<Step>,
    /// What the selected event changed: (field, before, after).
    changes: Vec<(String, String, String)>,
    state: String,
    /// The selected point, when it is not the latest: a past view.
    past: Option<String>,
    as_of: String,
    error: Option<String>,
}

fn shown(value: &Value) -> String {
    match value {
        Value::Null => "—".into(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The fields that differ between two states, one level into objects (`state.status`).
fn changes(before: &Value, after: &Value) -> Vec<(String, String, String)> {
    let mut out = vec![];
    fn walk(
        path: &str,
        before: &Value,
        after: &Value,
        depth: u8,
        out: &mut Vec<(String, String, String)>,
    ) {
        let empty = Value::Object(Default::default());
        // Something that came into being changed from nothing: compare its fields with none.
        let (before, after) = match (before, after) {
            (Value::Null, Value::Object(_)) => (&empty, after),
            (Value::Object(_), Value::Null) => (before, &empty),
            _ => (before, after),
        };
        match (before, after) {
            (Value::Object(b), Value::Object(a)) if depth < 3 => {
                let keys: std::collections::BTreeSet<&String> = b.keys().chain(a.keys()).collect();
                for key in keys {
                    let (bv, av) = (
                        b.get(key).unwrap_or(&Value::Null),
                        a.get(key).unwrap_or(&Value::Null),
                    );
                    if bv != av {
                        let path = if path.is_empty() {
                            key.clone()
                        } else {
                            format!("{path}.{key}")
                        };
                        walk(&path, bv, av, depth + 1, out);
                    }
                }
            }
            _ if before != after => out.push((path.to_owned(), shown(before), shown(after))),
            _ => {}
        }
    }
    walk("", before, after, 0, &mut out);
    out
}

pub async fn history(
    State(app): State<AppState>,
    jar: SignedCookieJar,
    axum::extract::OriginalUri(uri): axum::extract::OriginalUri,
    Path((kind, id)): Path<(String, String)>,
    Query(query): Query<HistoryQuery>,
) -> Response {
    let page = async {
        let (jar, operator) = operator(&app, jar, &uri).await?;
        let (kind, id) = crate::replay::parse_aggregate(&format!("{kind}:{id}"))?;
        let events = app.authority.store.history(kind, &id).await?;
        if events.is_empty() {
            return Err(AppError::NotFound(format!("no events for {kind}:{id}")).into());
        }
        let mut error = None;
        let as_of = match query.as_of.as_deref().filter(|s| !s.trim().is_empty()) {
            Some(raw) => match DateTime::parse_from_rfc3339(raw.trim()) {
                Ok(at) => Some(at.with_timezone(&Utc)),
                Err(e) => {
                    error = Some(format!("as of `{raw}`: {e} (e.g. 2026-11-27T09:00:00Z)"));
                    None
                }
            },
            None => None,
        };
        // The selected event: by position, by instant, or the latest.
        let selected = match (query.at, as_of) {
            (Some(at), _) => events.iter().rposition(|e| e.position.global <= at),
            (None, Some(at)) => events.iter().rposition(|e| e.metadata.at <= at),
            (None, None) => Some(events.len() - 1),
        };
        let upto: Vec<&StoredEvent> = match selected {
            Some(i) => events[..=i].iter().collect(),
            None => vec![],
        };
        let state = crate::replay::state_after(kind, &upto)?;
        let previous = crate::replay::state_after(kind, &upto[..upto.len().saturating_sub(1)])?;
        let latest = selected == Some(events.len() - 1);
        let past = match (selected, as_of) {
            (_, Some(at)) if !latest || events.last().is_some_and(|e| e.metadata.at > at) => Some(
                format!("as it was at {}", at.format("%Y-%m-%d %H:%M:%S UTC")),
            ),
            (Some(i), _) if !latest => Some(format!(
                "as it was after event #{} ({})",
                events[i].position.global,
                events[i].metadata.at.format("%Y-%m-%d %H:%M:%S UTC")
            )),
            (None, _) => Some("before it existed".into()),
            _ => None,
        };
        let steps = events
            .iter()
            .enumerate()
            .map(|(i, e)| Step {
                position: e.position.global,
                time: e.metadata.at.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
                event_type: e.event_type.clone(),
                actor: e.metadata.actor.to_string(),
                ip: e.raw_metadata.get("ip").cloned().unwrap_or_default(),
                selected: Some(i) == selected,
            })
            .collect();
        let page = HistoryPage {
            chrome: &operator.chrome,
            operator: &operator,
            kind,
            id: &id,
            steps,
            changes: changes(&previous, &state),
            state: serde_json::to_string_pretty(&state).unwrap_or_default(),
            past,
            as_of: query.as_of.clone().unwrap_or_default(),
            error,
        };
        Ok::<_, Refusal>((jar, render(StatusCode::OK, &page)).into_response())
    };
    page.await.unwrap_or_else(IntoResponse::into_response)
}
