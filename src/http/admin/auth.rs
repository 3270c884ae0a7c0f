//! Who may call the admin API: a bearer token with scope `admin`, of a person holding the
//! role `admin` or of a client registered for that scope.

use authledger_domain::metadata::{Actor, EventMetadata};
use authledger_projections::users::UsersView;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;

use super::error::ApiError;
use crate::http::bearer::{self};
use crate::http::context::RequestContext;
use crate::http::AppState;
use crate::oauth::introspect::active_token;

/// An authenticated administrator, and where the request came from.
pub struct Admin {
    pub(super) metadata: EventMetadata,
}

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let Ok(context) = RequestContext::from_request_parts(parts, state).await;
        let presented = bearer::from_header(&parts.headers).ok_or(ApiError::Unauthorized)?;
        let authority = &state.authority;
        let token = active_token(authority, presented.trim())
            .await
            .map_err(ApiError::from)?
            .filter(|t| t.kind == "access")
            .ok_or(ApiError::Unauthorized)?;
        if !token.has_scope("admin") {
            return Err(ApiError::Forbidden("the token lacks scope admin"));
        }
        let actor = match &token.username {
            None => Actor::Client(token.client_id.clone()),
            Some(username) => {
                let user = UsersView::get(&authority.store.db, username).await?;
                if !user.is_some_and(|u| u.roles.iter().any(|r| r.as_str() == "admin")) {
                    return Err(ApiError::Forbidden("the user does not hold the role admin"));
                }
                Actor::User(username.clone())
            }
        };
        Ok(Admin {
            metadata: context.metadata(actor),
        })
    }
}
