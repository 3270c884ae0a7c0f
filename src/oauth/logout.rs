//! OpenID Connect RP-Initiated Logout 1.0: what a sign-out request asks for, and whether it
//! may be honoured. The HTTP layer (`http::logout`) decides whether to ask the person first
//! and renders the outcome.
//!
//! The rules (§2, §3.1): `post_logout_redirect_uri` is followed only when it is one of the
//! client's registered `post_logout_redirect_uris`, compared exactly, and the client is known
//! from `client_id` or from the `id_token_hint`'s audience; the hint must be an ID token this
//! server signed (its expiry does not matter); a `client_id` beside a hint must be among the
//! hint's audience. Anything else is refused on a page and never redirected: a sign-out
//! endpoint that redirects anywhere would be an open redirector.

use authledger_domain::client::{ClientStatus, RegisteredClient};

use super::params::Params;
use super::Authority;
use crate::error::AppError;

/// A validated sign-out request.
#[derive(Debug, Default)]
pub struct LogoutRequest {
    /// The client asking, from `client_id` or the hint's audience.
    pub client: Option<RegisteredClient>,
    /// Who and which session the hint's ID token was issued for.
    pub hint: Option<IdTokenHint>,
    /// Where to send the person afterwards, with `state`: checked against the client.
    pub then: Option<PostLogoutRedirect>,
}

#[derive(Debug, PartialEq, Eq)]
pub struct IdTokenHint {
    pub subject: String,
    /// The ID token's `sid`: the sign-in session it was issued in.
    pub session: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostLogoutRedirect {
    pub uri: String,
    pub state: Option<String>,
}

impl PostLogoutRedirect {
    /// The URI to send the person to, with `state` added to its query (§3).
    pub fn location(&self) -> String {
        let Ok(mut url) = url::Url::parse(&self.uri) else {
            return self.uri.clone();
        };
        if let Some(state) = &self.state {
            url.query_pairs_mut().append_pair("state", state);
        }
        url.to_string()
    }
}

/// Why a sign-out request cannot be honoured as asked.
#[derive(Debug)]
pub enum LogoutError {
    /// The request is wrong; the person is told and nothing is redirected.
    Refused(String),
    /// Our own failure.
    Failure(AppError),
}

impl From<AppError> for LogoutError {
    fn from(error: AppError) -> Self {
        LogoutError::Failure(error)
    }
}

fn refused(why: impl Into<String>) -> LogoutError {
    LogoutError::Refused(why.into())
}

/// Validates the parameters of a sign-out request (§2).
pub async fn validate(
    authority: &Authority,
    params: &Params,
) -> Result<LogoutRequest, LogoutError> {
    let hinted = match params.get("id_token_hint") {
        Some(token) => Some(read_hint(authority, token).await?),
        None => None,
    };
    let client_id = match (params.get("client_id"), &hinted) {
        (Some(asked), Some((_, audience))) if !audience.iter().any(|a| a == asked) => {
            return Err(refused(
                "The client_id does not match the ID token the request carries.",
            ))
        }
        (Some(asked), _) => Some(asked.to_owned()),
        (None, Some((_, audience))) => audience.first().cloned(),
        (None, None) => None,
    };
    let client = match &client_id {
        Some(id) => match authority.store.client(id).await? {
            Some(client) if client.status == ClientStatus::Active => Some(client),
            _ => {
                return Err(refused(
                    "The request names a client that is not registered.",
                ))
            }
        },
        None => None,
    };
    let then = match params.get("post_logout_redirect_uri") {
        None => None,
        Some(uri) => {
            let Some(client) = &client else {
                return Err(refused(
                    "The request asks to be sent back without naming its client \
                     (client_id or id_token_hint).",
                ));
            };
            let registered = client
                .metadata
                .post_logout_redirect_uris
                .iter()
                .any(|r| r.as_str() == uri);
            if !registered {
                return Err(refused(
                    "The address to return to after signing out is not registered for this client.",
                ));
            }
            Some(PostLogoutRedirect {
                uri: uri.to_owned(),
                state: params.get("state").map(str::to_owned),
            })
        }
    };
    Ok(LogoutRequest {
        client,
        hint: hinted.map(|(hint, _)| hint),
        then,
    })
}

/// The hint's subject and session, and its audience, once its signature holds.
async fn read_hint(
    authority: &Authority,
    token: &str,
) -> Result<(IdTokenHint, Vec<String>), LogoutError> {
    let not_ours = || refused("The request carries an ID token this server did not issue.");
    let claims = super::id_token::verify_ours(authority, token)
        .await?
        .ok_or_else(not_ours)?;
    let subject = claims["sub"].as_str().ok_or_else(not_ours)?.to_owned();
    let hint = IdTokenHint {
        subject,
        session: claims["sid"].as_str().map(str::to_owned),
    };
    Ok((hint, super::id_token::audience(&claims)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oauth::id_token::audience;

    #[test]
    fn state_is_added_to_the_post_logout_redirect_uri() {
        let then = PostLogoutRedirect {
            uri: "https://app.example/bye?lang=en".into(),
            state: Some("a b".into()),
        };
        assert_eq!(then.location(), "https://app.example/bye?lang=en&state=a+b");
        let plain = PostLogoutRedirect {
            uri: "https://app.example/bye".into(),
            state: None,
        };
        assert_eq!(plain.location(), "https://app.example/bye");
    }

    #[test]
    fn an_audience_is_a_string_or_a_list() {
        assert_eq!(audience(&serde_json::json!({"aud": "a"})), vec!["a"]);
        assert_eq!(
            audience(&serde_json::json!({"aud": ["a", "b"]})),
            vec!["a", "b"]
        );
        assert!(audience(&serde_json::json!({})).is_empty());
    }
}
