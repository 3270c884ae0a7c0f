//! The sign-in session and CSRF protection, in signed cookies.
//!
//! The session cookie holds the username and the time of sign-in, signed with a key derived
//! from the master key: HttpOnly, SameSite=Lax (it must travel on the top-level redirect from
//! a client to the authorization endpoint), Secure when the issuer is https. Forms carry a
//! CSRF token equal to a random value in a second, SameSite=Strict signed cookie.

use axum_extra::extract::cookie::{Cookie, SameSite, SignedCookieJar};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{DateTime, Duration, TimeZone, Utc};
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;

pub const SESSION_COOKIE: &str = "authledger_session";
pub const CSRF_COOKIE: &str = "authledger_csrf";
/// After this long a person signs in again, whatever the cookie says.
pub const SESSION_LIFETIME: Duration = Duration::hours(12);

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Session {
    #[serde(rename = "u")]
    pub username: String,
    /// Unix seconds of the sign-in: `auth_time` of ID tokens (OIDC Core §2).
    #[serde(rename = "t")]
    pub auth_time: i64,
}

impl Session {
    pub fn auth_time(&self) -> DateTime<Utc> {
        Utc.timestamp_opt(self.auth_time, 0)
            .single()
            .unwrap_or_default()
    }
}

/// The signed-in person, if the session is valid and not too old.
pub fn current(jar: &SignedCookieJar) -> Option<Session> {
    let session: Session = serde_json::from_str(jar.get(SESSION_COOKIE)?.value()).ok()?;
    (Utc::now() - session.auth_time() < SESSION_LIFETIME).then_some(session)
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
