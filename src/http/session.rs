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
    /// A new session for `username`, signed in by `amr`, and what its sign-in records of it.
    pub fn begin(username: &str, amr: &[&str]) -> (Session, NewSession) {
        let id = crate::secrets::mint("");
        let now = Utc::now();
        let session = Session {
            username: username.to_owned(),
            auth_time: now.timestamp(),
            id: id.reveal().to_owned(),
            amr: amr.iter().map(|m| m.to_string()).collect(),
        };
        let record = NewSession {
            id_hash: id.hash().clone(),
            expires_at: now + SESSION_LIFETIME,
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

/// The session the cookie names, if its signature holds and it has not run out; whether it is
/// still open is [`current`]'s question.
fn from_cookie(jar: &SignedCookieJar) -> Option<Session> {
    let session: Session = serde_json::from_str(jar.get(SESSION_COOKIE)?.value()).ok()?;
    (Utc::now() - session.auth_time() < SESSION_LIFETIME).then_some(session)
}

/// The signed-in person: a valid cookie whose session is still open.
pub async fn current(store: &Store, jar: &SignedCookieJar) -> Result<Option<Session>, AppError> {
    let Some(session) = from_cookie(jar) else {
        return Ok(None);
    };
    let open = store
        .session_is_open(&session.id_hash(), &session.username)
        .await?;
    Ok(open.then_some(session))
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
    cookie.set_max_age(time_duration(SESSION_LIFETIME));
    jar.add(cookie)
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
