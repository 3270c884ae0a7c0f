//! The sign-in session and CSRF protection, in signed cookies.
//!
//! The session cookie holds the username, the time of sign-in and the session's random id,
//! signed with a key derived from the master key: HttpOnly, SameSite=Lax (it must travel on
//! the top-level redirect from a client to the authorization endpoint), Secure when the issuer
//! is https. A signed cookie is honoured only while its session is open in the log (see
//! `authledger_domain::user::SessionEnd`): signing out, a password change or disabling the
//! account ends it everywhere, so a copied cookie stops working. Forms carry a CSRF token
//! equal to a random value in a second, SameSite=Strict signed cookie.

use authledger_domain::secret::SecretHash;
use authledger_domain::settings::SettingsValues;
use authledger_domain::user::NewSession;
use axum_extra::extract::cookie::{Cookie, SameSite, SignedCookieJar};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{DateTime, Duration, TimeZone, Utc};
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;

use crate::error::AppError;
use crate::store::Store;

pub const SESSION_COOKIE: &str = "authledger_session";
pub const CSRF_COOKIE: &str = "authledger_csrf";
pub use authledger_domain::user::SESSION_LIFETIME;

/// `Debug` shows who and when, never the session id.
#[derive(Clone, Serialize, Deserialize)]
pub struct Session {
    #[serde(rename = "u")]
    pub username: String,
    /// Unix seconds of the sign-in: `auth_time` of ID tokens (OIDC Core §2).
    #[serde(rename = "t")]
    pub auth_time: i64,
    /// The session's id: 256 random bits. The log keeps only its hash.
    #[serde(rename = "s")]
    pub id: String,
    /// How the person signed in (RFC 8176 values: `pwd`, `otp`): ID tokens' `amr`.
    #[serde(rename = "m", default)]
    pub amr: Vec<String>,
    /// Unix seconds when the session runs out, however active (`session_lifetime`).
    #[serde(rename = "x", default)]
    pub expires_at: i64,
    /// Unix seconds of the last page this browser was shown with the session, for
    /// `session_idle_timeout`; the cookie is re-issued as it moves.
    #[serde(rename = "l", default)]
    pub last_seen: i64,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("username", &self.username)
            .field("auth_time", &self.auth_time)
            .finish_non_exhaustive()
    }
}

impl Session {
    /// A new session for `username`, signed in by `amr`, lasting as `settings` say, and what
    /// its sign-in records of it.
    pub fn begin(username: &str, amr: &[&str], settings: &SettingsValues) -> (Session, NewSession) {
        let id = crate::secrets::mint("");
        let now = Utc::now();
        let expires_at = now + Duration::seconds(i64::from(settings.session_lifetime));
        let session = Session {
            username: username.to_owned(),
            auth_time: now.timestamp(),
            id: id.reveal().to_owned(),
            amr: amr.iter().map(|m| m.to_string()).collect(),
            expires_at: expires_at.timestamp(),
            last_seen: now.timestamp(),
        };
        let record = NewSession {
            id_hash: id.hash().clone(),
            expires_at,
        };
        (session, record)
    }

    /// Whether a second factor was part of this sign-in.
    pub fn two_factors(&self) -> bool {
        self.amr.iter().any(|m| m == "otp")
    }

    pub fn id_hash(&self) -> SecretHash {
        crate::secrets::hash(&self.id)
    }

    pub fn auth_time(&self) -> DateTime<Utc> {
        Utc.timestamp_opt(self.auth_time, 0)
            .single()
            .unwrap_or_default()
    }
}

impl Session {
    /// Unix seconds when the session runs out (cookies from before lifetimes were settings
    /// carry none, and lasted [`SESSION_LIFETIME`]).
    fn runs_out_at(&self) -> i64 {
        match self.expires_at {
            0 => self.auth_time + SESSION_LIFETIME.num_seconds(),
            at => at,
        }
    }

    /// Whether the session is over at `now`: run out, or idle longer than `idle_timeout`
    /// seconds (0: no idle limit).
    fn over(&self, now: i64, idle_timeout: u32) -> bool {
        let idle_since = self.last_seen.max(self.auth_time);
        now >= self.runs_out_at()
            || (idle_timeout > 0 && now - idle_since > i64::from(idle_timeout))
    }
}

/// The session the cookie names, if its signature holds and it is not over; whether it is
/// still open in the log is [`current`]'s question.
fn from_cookie(jar: &SignedCookieJar, idle_timeout: u32) -> Option<Session> {
    let session: Session = serde_json::from_str(jar.get(SESSION_COOKIE)?.value()).ok()?;
    (!session.over(Utc::now().timestamp(), idle_timeout)).then_some(session)
}

/// The signed-in person: a valid cookie whose session is still open.
pub async fn current(store: &Store, jar: &SignedCookieJar) -> Result<Option<Session>, AppError> {
    let settings = store.settings_values().await?;
    let Some(session) = from_cookie(jar, settings.session_idle_timeout) else {
        return Ok(None);
    };
    let open = store
        .session_is_open(&session.id_hash(), &session.username)
        .await?;
    Ok(open.then_some(session))
}

/// The signed-in person and their session, if they are signed in and their account is
/// enabled.
pub async fn signed_in_user(
    store: &Store,
    jar: &SignedCookieJar,
) -> Result<Option<(authledger_domain::user::RegisteredUser, Session)>, AppError> {
    let Some(current) = current(store, jar).await? else {
        return Ok(None);
    };
    let Ok(username) = authledger_domain::user::Username::parse(&current.username) else {
        return Ok(None);
    };
    let user = store
        .users
        .load(username.as_str())
        .await
        .map_err(|e| crate::error::user_error(username.as_str(), e))?;
    Ok(user
        .registered()
        .filter(|u| !u.disabled)
        .map(|u| (u.clone(), current)))
}

fn cookie(name: &'static str, value: String, same_site: SameSite, secure: bool) -> Cookie<'static> {
    Cookie::build((name, value))
        .http_only(true)
        .secure(secure)
        .same_site(same_site)
        .path("/")
        .build()
}

pub fn start(jar: SignedCookieJar, session: &Session, secure: bool) -> SignedCookieJar {
    let value = serde_json::to_string(session).expect("a session serialises");
    let mut cookie = cookie(SESSION_COOKIE, value, SameSite::Lax, secure);
    // From the session's own clock (its last page view, which is its start when it is new),
    // so a new session's cookie lives exactly `session_lifetime`.
    let left = session.runs_out_at() - session.last_seen.max(session.auth_time);
    cookie.set_max_age(cookie::time::Duration::seconds(left.max(0)));
    jar.add(cookie)
}

/// How stale `last_seen` may get before the cookie is re-issued: often enough for the idle
/// limit, rarely enough that most responses set no cookie.
fn refresh_after(idle_timeout: u32) -> i64 {
    (i64::from(idle_timeout) / 10).clamp(5, 60)
}

/// Middleware: with an idle limit, a person's page views keep their session alive by moving
/// `last_seen` in the cookie (the cookie is signed, so only the server can).
pub async fn keep_alive(
    axum::extract::State(app): axum::extract::State<super::AppState>,
    jar: SignedCookieJar,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let response = next.run(request).await;
    let store = &app.authority.store;
    let Ok(settings) = store.settings_values().await else {
        return response;
    };
    let idle_timeout = settings.session_idle_timeout;
    // A response that signs in or out sets the cookie itself.
    let sets_session = response
        .headers()
        .get_all(axum::http::header::SET_COOKIE)
        .iter()
        .any(|c| c.as_bytes().starts_with(SESSION_COOKIE.as_bytes()));
    if idle_timeout == 0 || sets_session {
        return response;
    }
    let Ok(Some(mut session)) = current(store, &jar).await else {
        return response;
    };
    let now = Utc::now().timestamp();
    if now - session.last_seen < refresh_after(idle_timeout) {
        return response;
    }
    session.last_seen = now;
    (start(jar, &session, app.secure_cookies), response).into_response()
}

pub fn end(jar: SignedCookieJar) -> SignedCookieJar {
    jar.remove(Cookie::build(SESSION_COOKIE).path("/").build())
}

fn time_duration(duration: Duration) -> cookie::time::Duration {
    cookie::time::Duration::seconds(duration.num_seconds())
}

pub const PENDING_COOKIE: &str = "authledger_pending";

/// A sign-in whose password was verified, waiting for its second factor (or, when the
/// settings require one the person has not set up, for its enrolment). The `User` aggregate
/// holds the same deadline; the cookie says whose sign-in this browser is finishing.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PendingSignIn {
    #[serde(rename = "u")]
    pub username: String,
    /// Where to go once signed in (a local path).
    #[serde(rename = "r")]
    pub return_to: String,
    /// Unix seconds until which the second factor may follow.
    #[serde(rename = "e")]
    pub until: i64,
    /// The first factor came from another provider (social login), not the password.
    #[serde(rename = "f", default)]
    pub vouched_elsewhere: bool,
}

impl PendingSignIn {
    /// The methods (RFC 8176) the sign-in will have used once the second factor is given.
    pub fn amr(&self) -> [&'static str; 2] {
        if self.vouched_elsewhere {
            ["fed", "otp"]
        } else {
            ["pwd", "otp"]
        }
    }
}

pub fn pend(jar: SignedCookieJar, pending: &PendingSignIn, secure: bool) -> SignedCookieJar {
    let value = serde_json::to_string(pending).expect("a pending sign-in serialises");
    let mut cookie = cookie(PENDING_COOKIE, value, SameSite::Strict, secure);
    cookie.set_max_age(time_duration(authledger_domain::user::SECOND_FACTOR_WINDOW));
    jar.add(cookie)
}

/// The sign-in this browser is finishing, if its time has not run out.
pub fn pending(jar: &SignedCookieJar) -> Option<PendingSignIn> {
    let pending: PendingSignIn = serde_json::from_str(jar.get(PENDING_COOKIE)?.value()).ok()?;
    (pending.until > Utc::now().timestamp()).then_some(pending)
}

pub fn end_pending(jar: SignedCookieJar) -> SignedCookieJar {
    jar.remove(Cookie::build(PENDING_COOKIE).path("/").build())
}

/// The CSRF token for forms on this browser, creating the cookie if needed.
pub fn csrf_token(jar: SignedCookieJar, secure: bool) -> (SignedCookieJar, String) {
    if let Some(existing) = jar.get(CSRF_COOKIE) {
        let token = existing.value().to_owned();
        return (jar, token);
    }
    let mut bytes = [0u8; 32];
    aws_lc_rs::rand::fill(&mut bytes).expect("the OS random source works");
    let token = URL_SAFE_NO_PAD.encode(bytes);
    let jar = jar.add(cookie(CSRF_COOKIE, token.clone(), SameSite::Strict, secure));
    (jar, token)
}

/// Whether a submitted form's CSRF token matches this browser's cookie.
pub fn csrf_valid(jar: &SignedCookieJar, submitted: Option<&str>) -> bool {
    match (jar.get(CSRF_COOKIE), submitted) {
        (Some(cookie), Some(submitted)) => {
            cookie.value().as_bytes().ct_eq(submitted.as_bytes()).into()
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signed_in_at(auth_time: i64, expires_at: i64, last_seen: i64) -> Session {
        Session {
            username: "alice".into(),
            auth_time,
            id: "x".into(),
            amr: vec!["pwd".into()],
            expires_at,
            last_seen,
        }
    }

    #[test]
    fn a_session_is_over_when_it_runs_out_however_active() {
        let session = signed_in_at(1_000, 1_600, 1_590);
        assert!(!session.over(1_599, 0));
        assert!(session.over(1_600, 0));
        assert!(
            session.over(1_600, 3_600),
            "activity does not extend the lifetime"
        );
    }

    #[test]
    fn a_session_is_over_after_the_idle_timeout_without_a_page_view() {
        let session = signed_in_at(1_000, 100_000, 1_200);
        assert!(!session.over(1_200 + 300, 300));
        assert!(session.over(1_200 + 301, 300));
        assert!(!session.over(50_000, 0), "no idle limit");
    }

    #[test]
    fn cookies_from_before_lifetimes_were_settings_last_twelve_hours() {
        let session = signed_in_at(1_000, 0, 0);
        let twelve_hours = SESSION_LIFETIME.num_seconds();
        assert!(!session.over(1_000 + twelve_hours - 1, 0));
        assert!(session.over(1_000 + twelve_hours, 0));
    }
}
