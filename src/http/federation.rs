//! What the two flows in which authledger is the client of another provider share
//! (connecting an account, `connected_apps.rs`; signing in, `social_login.rs`): the
//! authorization request with PKCE S256, `state` and `nonce`, and the encrypted cookie that
//! carries what the callback must check.
//!
//! The cookie (ten minutes, on its flow's path only, `SameSite=Lax` since the callback is a
//! top-level GET from the provider's site) is the binding to this browser: a callback whose
//! `state` differs from the cookie's (someone else's answer delivered here: login CSRF)
//! gets nothing, and the cookie goes with the first callback, so a replay finds none.

use authledger_domain::oauth::{Scopes, WebUrl};
use axum_extra::extract::cookie::{Cookie, PrivateCookieJar, SameSite};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::Utc;
use serde::{Deserialize, Serialize};
use sha2::Digest;

use crate::error::AppError;

/// How long a person has at the provider before the attempt lapses.
const ATTEMPT_SECONDS: i64 = 600;

/// One flow's cookie: its name and path.
pub struct Flow {
    pub cookie: &'static str,
    pub path: &'static str,
}

/// An authorization request under way, as the callback checks it.
#[derive(Serialize, Deserialize)]
pub struct Attempt {
    /// The connected app or social login provider it is for.
    #[serde(rename = "a")]
    pub target: String,
    #[serde(rename = "s")]
    state: String,
    #[serde(rename = "v")]
    pub verifier: String,
    #[serde(rename = "n")]
    pub nonce: String,
    /// Hex SHA-256 of the session that began it, when one had to.
    #[serde(rename = "h", default)]
    pub session: Option<String>,
    #[serde(rename = "r")]
    pub return_to: Option<String>,
    /// Unix seconds.
    #[serde(rename = "e")]
    until: i64,
}

/// The authorization request's own parameters.
pub struct Request<'a> {
    pub endpoint: &'a WebUrl,
    pub client_id: &'a str,
    pub redirect_uri: &'a str,
    pub scopes: &'a Scopes,
    /// Parameters an administrator added (never one of the above: the domain refuses those).
    pub extra: Vec<(&'a str, &'a str)>,
}

/// What the provider's answer carries (RFC 6749 §4.1.2, §4.1.2.1).
#[derive(Deserialize)]
pub struct Callback {
    pub code: Option<String>,
    pub state: Option<String>,
    pub error: Option<String>,
    pub error_description: Option<String>,
}

fn random() -> String {
    crate::secrets::mint("").reveal().to_owned()
}

impl Flow {
    /// Starts an attempt: the URL to send the browser to, and the jar with its cookie.
    pub fn begin(
        &self,
        jar: PrivateCookieJar,
        secure: bool,
        request: Request<'_>,
        target: &str,
        session: Option<String>,
        return_to: Option<String>,
    ) -> Result<(PrivateCookieJar, String), AppError> {
        let attempt = Attempt {
            target: target.to_owned(),
            state: random(),
            verifier: random(),
            nonce: random(),
            session,
            return_to,
            until: Utc::now().timestamp() + ATTEMPT_SECONDS,
        };
        let challenge = URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(attempt.verifier.as_bytes()));
        let mut url =
            url::Url::parse(request.endpoint.as_str()).map_err(|e| AppError::Internal(e.into()))?;
        {
            let mut pairs = url.query_pairs_mut();
            for (name, value) in &request.extra {
                pairs.append_pair(name, value);
            }
            pairs
                .append_pair("response_type", "code")
                .append_pair("client_id", request.client_id)
                .append_pair("redirect_uri", request.redirect_uri)
                .append_pair("state", &attempt.state)
                .append_pair("code_challenge", &challenge)
                .append_pair("code_challenge_method", "S256");
            if !request.scopes.is_empty() {
                pairs.append_pair("scope", &request.scopes.to_string());
            }
            if request.scopes.contains("openid") {
                pairs.append_pair("nonce", &attempt.nonce);
            }
        }
        let value = serde_json::to_string(&attempt).map_err(|e| AppError::Internal(e.into()))?;
        let cookie = Cookie::build((self.cookie, value))
            .http_only(true)
            .secure(secure)
            .same_site(SameSite::Lax)
            .path(self.path)
            .max_age(cookie::time::Duration::seconds(ATTEMPT_SECONDS))
            .build();
        Ok((jar.add(cookie), url.to_string()))
    }

    /// The attempt this browser began for `target`, if `answer` belongs to it, and the jar
    /// without it (whatever the answer). `nothing_done` ends each refusal ("Nothing was
    /// connected.").
    pub fn take(
        &self,
        jar: PrivateCookieJar,
        target: &str,
        answer: &Callback,
        nothing_done: &str,
    ) -> (PrivateCookieJar, Result<Attempt, AppError>) {
        let attempt: Option<Attempt> = jar
            .get(self.cookie)
            .and_then(|c| serde_json::from_str(c.value()).ok());
        let jar = jar.remove(Cookie::build(self.cookie).path(self.path).build());
        let Some(attempt) = attempt.filter(|a| a.until > Utc::now().timestamp()) else {
            return (
                jar,
                Err(AppError::invalid(format!(
                    "Nothing was under way in this browser (or it took longer than ten minutes, \
                     or this answer was used already). {nothing_done} Start again."
                ))),
            );
        };
        let same_state = answer.state.as_deref().is_some_and(|s| {
            s.len() == attempt.state.len()
                && aws_lc_rs::constant_time::verify_slices_are_equal(
                    s.as_bytes(),
                    attempt.state.as_bytes(),
                )
                .is_ok()
        });
        if attempt.target != target || !same_state {
            return (
                jar,
                Err(AppError::invalid(format!(
                    "This answer does not belong to what this browser began (its state \
                     differs). {nothing_done}"
                ))),
            );
        }
        (jar, Ok(attempt))
    }
}

impl Callback {
    /// The code, or what the provider said instead.
    pub fn code(&self) -> Result<&str, AppError> {
        if let Some(error) = &self.error {
            let said = self
                .error_description
                .as_deref()
                .map(|d| format!(": {}", d.chars().take(200).collect::<String>()))
                .unwrap_or_default();
            return Err(AppError::Upstream(format!(
                "The other server said no ({}{said}).",
                error.chars().take(60).collect::<String>()
            )));
        }
        self.code
            .as_deref()
            .filter(|c| !c.is_empty())
            .ok_or_else(|| AppError::invalid("The other server's answer carries no code."))
    }
}
