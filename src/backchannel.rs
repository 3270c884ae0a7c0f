//! OpenID Connect Back-Channel Logout 1.0: when a person's session ends (they signed out,
//! signed out elsewhere, changed their password, or were disabled), every client that got an
//! ID token in that session and registered a `backchannel_logout_uri` is sent a logout token
//! (§2.4), so it can end its own session for them.
//!
//! A reactor, like the cascade: it follows the log from its own checkpoint and acts on
//! `SessionEnded` events, whoever wrote them (this server, another instance, the CLI). The
//! clients of a session are found in the grants view (`session_hash`). Each delivery runs in
//! its own task, with a timeout and a few retries (§2.7 leaves them to the OP), so a slow or
//! dead client delays neither the person signing out nor the other clients. Delivery is at
//! most once: a crash between the checkpoint and a delivery loses that notice, which the
//! client's own session lifetime then bounds.

use std::sync::Arc;
use std::time::Duration;

use authledger_domain::client::{IdTokenAlg, RegisteredClient};
use authledger_domain::user::UserEvent;
use authledger_projections::checkpoint;
use authledger_projections::event_log::{self, StoredEvent};
use authledger_projections::grants::GrantsView;
use serde_json::json;
use tokio::sync::Mutex;

use crate::error::AppError;
use crate::oauth::Authority;

const CHECKPOINT: &str = "backchannel_logout";
const BATCH: i64 = 500;
/// How long one delivery may take (§2.8: the OP should not wait long).
const TIMEOUT: Duration = Duration::from_secs(5);
/// When each attempt starts, after the session ended.
const ATTEMPTS: [Duration; 3] = [
    Duration::ZERO,
    Duration::from_secs(2),
    Duration::from_secs(10),
];
/// How long a logout token is good for: it is used at once.
const LOGOUT_TOKEN_SECONDS: i64 = 120;
/// The `events` member that makes a JWT a logout token (§2.4).
const LOGOUT_EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";

/// One run at a time in this process.
static RUNNING: Mutex<()> = Mutex::const_new(());

/// The session an event ends: (username, hex hash of the session's id).
fn ended_session(event: &StoredEvent) -> Option<(String, String)> {
    if event.aggregate_type != "User" {
        return None;
    }
    match event.decode::<UserEvent>().ok()? {
        UserEvent::SessionEnded { id_hash, .. } => {
            Some((event.aggregate_id.clone(), id_hash.as_hex().to_owned()))
        }
        _ => None,
    }
}

/// Sends the logout tokens for every session ended in the log after the reactor's
/// checkpoint. Returns once the deliveries are started, not finished.
pub async fn run(authority: &Arc<Authority>) -> Result<(), AppError> {
    let _guard = RUNNING.lock().await;
    let store = &authority.store;
    let db = &store.db;
    checkpoint::register_at_end(db, CHECKPOINT).await?;
    let mut from = checkpoint::read(db, CHECKPOINT).await?;
    let mut unsaved = None;
    loop {
        let mut tx = db.begin().await.map_err(|e| AppError::Internal(e.into()))?;
        let scanned =
            event_log::read_kinds_after(&mut tx, from, BATCH, &[("User", "SessionEnded")]).await?;
        drop(tx);
        let Some(last) = scanned.last else {
            break;
        };
        from = last;
        // The end of the log as it was: what is committed from now on is the next run's
        // (a reader that chased the end under load took the write lock for every batch).
        let at_end = (scanned.read as i64) < BATCH;
        let ended: Vec<_> = scanned.events.iter().filter_map(ended_session).collect();
        if ended.is_empty() {
            // Moved once, at the end of the run: a crash before it only reads them again.
            unsaved = Some(last);
            if at_end {
                break;
            }
            continue;
        }
        // The session's grants must be in the view (token commands do not wait for it).
        store.runner.wait_for(last).await?;
        for (username, session) in ended {
            for client_id in GrantsView::clients_of_session(db, &session).await? {
                let Some(client) = store.client(&client_id).await? else {
                    continue;
                };
                let Some(uri) = client.metadata.backchannel_logout_uri.clone() else {
                    continue;
                };
                let token = logout_token(authority, &client, &username, &session).await?;
                tokio::spawn(deliver(uri.as_str().to_owned(), token, client_id));
            }
        }
        checkpoint::save_reader(db, CHECKPOINT, last).await?;
        unsaved = None;
        if at_end {
            break;
        }
    }
    if let Some(last) = unsaved {
        checkpoint::save_reader(db, CHECKPOINT, last).await?;
    }
    Ok(())
}

/// The logout token (§2.4): signed as the client's ID tokens are, with `sub`, `sid`, the
/// logout event, and no `nonce`.
async fn logout_token(
    authority: &Authority,
    client: &RegisteredClient,
    username: &str,
    session: &str,
) -> Result<String, AppError> {
    let now = chrono::Utc::now().timestamp();
    let claims = json!({
        "iss": authority.issuer,
        "sub": username,
        "aud": client.client_id,
        "iat": now,
        "exp": now + LOGOUT_TOKEN_SECONDS,
        "jti": uuid::Uuid::new_v4().to_string(),
        "sid": session,
        "events": { LOGOUT_EVENT: {} },
    });
    let alg = client
        .metadata
        .id_token_signed_response_alg
        .unwrap_or(IdTokenAlg::RS256);
    let secret = match alg {
        IdTokenAlg::HS256 => Some(
            crate::oauth::id_token::hs256_secret(&authority.store, &authority.master, client)
                .await?,
        ),
        _ => None,
    };
    authority
        .keys
        .sign_typed(alg, Some("logout+jwt"), &claims, secret.as_deref())
        .map_err(|e| AppError::Internal(e.into()))
}

/// POSTs the token (§2.5), retrying a client that fails or does not answer in time.
async fn deliver(uri: String, token: String, client_id: String) {
    let started = tokio::time::Instant::now();
    let http = match reqwest::Client::builder()
        .timeout(TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .build()
    {
        Ok(http) => http,
        Err(error) => return tracing::error!(%error, "no HTTP client for back-channel logout"),
    };
    for (attempt, at) in ATTEMPTS.iter().enumerate() {
        tokio::time::sleep_until(started + *at).await;
        let outcome = http
            .post(&uri)
            .header("content-type", "application/x-www-form-urlencoded")
            .header("cache-control", "no-cache, no-store")
            .body(format!("logout_token={token}"))
            .send()
            .await;
        match outcome {
            Ok(response) if response.status().is_success() => {
                return tracing::info!(client_id, "back-channel logout delivered");
            }
            // §2.8: 400 means the client refused the token; trying again changes nothing.
            Ok(response) if response.status() == reqwest::StatusCode::BAD_REQUEST => {
                return tracing::warn!(client_id, "back-channel logout refused by the client");
            }
            Ok(response) => tracing::warn!(
                client_id,
                attempt,
                status = %response.status(),
                "back-channel logout failed"
            ),
            Err(error) => tracing::warn!(
                client_id,
                attempt,
                error = %error.without_url(),
                "back-channel logout failed"
            ),
        }
    }
    tracing::warn!(client_id, "back-channel logout given up");
}
