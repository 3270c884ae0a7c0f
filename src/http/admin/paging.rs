//! Keyset pages: `limit` and an opaque `cursor` in, `items` and `next_cursor` out.

use authledger_projections::grants::Subject;
use axum::Json;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::{Deserialize, Serialize};
use utoipa::IntoParams;

use super::error::ApiError;
use super::openapi::Paged;
use crate::admin as ops;

/// `cursor` and `limit`, on every list.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct Page {
    /// The `next_cursor` of the page before; absent for the first page.
    pub(super) cursor: Option<String>,
    /// Rows per page, 1 to 500 (default 50); other values are brought into that range.
    pub(super) limit: Option<i64>,
}

/// Whose rows: a client, a person, or both.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct SubjectQuery {
    /// Only this client's rows.
    pub(super) client_id: Option<String>,
    /// Only this person's rows (username).
    pub(super) user: Option<String>,
}

impl SubjectQuery {
    pub(super) fn subject(&self) -> Subject {
        Subject {
            client_id: self.client_id.clone(),
            username: self.user.clone(),
        }
    }
}

pub(super) const DEFAULT_PAGE: i64 = 50;

impl Page {
    pub(super) fn limit(&self) -> i64 {
        self.limit.unwrap_or(DEFAULT_PAGE).clamp(1, ops::MAX_PAGE)
    }
    /// A cursor holding two keys (time and id), opaque to callers.
    pub(super) fn pair(&self) -> Result<Option<(String, String)>, ApiError> {
        let Some(cursor) = &self.cursor else {
            return Ok(None);
        };
        let decoded = URL_SAFE_NO_PAD
            .decode(cursor)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .and_then(|s| {
                s.split_once('\n')
                    .map(|(a, b)| (a.to_owned(), b.to_owned()))
            });
        decoded.map(Some).ok_or_else(|| ApiError::Invalid {
            field: Some("cursor".into()),
            message: "cursor: not a cursor this API issued".into(),
        })
    }
}

pub(super) fn pair_cursor(a: &str, b: &str) -> String {
    URL_SAFE_NO_PAD.encode(format!("{a}\n{b}"))
}

/// `{"items": [...], "next_cursor": ...}`; a cursor only when the page was full.
pub(super) fn page<T: Serialize>(
    items: Vec<T>,
    limit: i64,
    cursor: impl Fn(&T) -> String,
) -> Json<Paged<T>> {
    let next_cursor = (items.len() as i64 == limit)
        .then(|| items.last().map(&cursor))
        .flatten();
    Json(Paged { items, next_cursor })
}
