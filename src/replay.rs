//! Looking back: an aggregate's state as it was at an instant, rebuilt by replaying only the
//! events recorded before it. "Was this grant's token active at 14:03 yesterday, and which
//! event changed that?"

use authledger_domain::client::Client;
use authledger_domain::consent::Consent;
use authledger_domain::grant::Grant;
use authledger_domain::settings::Settings;
use authledger_domain::user::{User, Username};
use authledger_projections::event_log::{self, StoredEvent};
use chrono::{DateTime, Utc};
use cqrs_es::Aggregate;
use serde_json::{json, Value};

use crate::error::AppError;
use crate::store::Store;

/// `TYPE:ID` as typed by a person: the type is case-insensitive; user ids are normalised as
/// usernames are.
pub fn parse_aggregate(raw: &str) -> Result<(&'static str, String), AppError> {
    let (kind, id) = raw.split_once(':').ok_or_else(|| {
        AppError::invalid(
            "expected TYPE:ID, e.g. client:ID, user:NAME, grant:ID, consent:USER:CLIENT",
        )
    })?;
    match kind.to_ascii_lowercase().as_str() {
        "client" => Ok(("Client", id.to_owned())),
        "user" => Ok((
            "User",
            Username::parse(id).map_err(AppError::invalid)?.to_string(),
        )),
        "grant" => Ok(("Grant", id.to_owned())),
        "consent" => Ok(("Consent", id.to_owned())),
        "connectedapp" | "connected-app" => Ok(("ConnectedApp", id.to_owned())),
        "connection" | "appconnection" => Ok(("AppConnection", id.to_owned())),
        "social-login" | "sociallogin" => Ok(("SocialLogin", id.to_owned())),
        "identity" | "externalidentity" => Ok(("ExternalIdentity", id.to_owned())),
        "settings" => Ok(("Settings", "settings".to_owned())),
        "resource" => Ok(("Resource", id.to_owned())),
        "keys" | "signingkeys" => Ok((
            "SigningKeys",
            authledger_domain::signing_keys::SIGNING_KEYS_ID.to_owned(),
        )),
        other => Err(AppError::invalid(format!(
            "unknown type `{other}` (known: client, user, grant, consent, settings, keys, connected-app, connection, social-login, identity, resource)"
        ))),
    }
}

fn replay<A: Aggregate>(events: &[&StoredEvent]) -> Result<Value, AppError> {
    let aggregate: A = event_log::fold(events.iter().copied())?;
    let mut state = serde_json::to_value(&aggregate).map_err(|e| AppError::Internal(e.into()))?;
    hide_password_hashes(&mut state);
    Ok(state)
}

/// What a password hash is shown as.
pub const HIDDEN: &str = "(hidden)";

/// Hides every `password_hash` in `value`. Hashes are kept outside the log, but events
/// recorded before they were (kept as they are in stores whose ledger was already chained
/// then) hold them, and states rebuilt from those events too: no one who reads history is
/// shown one.
pub fn hide_password_hashes(value: &mut Value) {
    match value {
        Value::Object(map) => {
            for (key, inner) in map.iter_mut() {
                if key == "password_hash" {
                    *inner = Value::String(HIDDEN.into());
                } else {
                    hide_password_hashes(inner);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(hide_password_hashes),
        _ => {}
    }
}

/// The state of an aggregate of type `kind` after `events` (its first ones, in order), as JSON.
pub fn state_after(kind: &str, events: &[&StoredEvent]) -> Result<Value, AppError> {
    match kind {
        "Client" => replay::<Client>(events),
        "User" => replay::<User>(events),
        "Grant" => replay::<Grant>(events),
        "Consent" => replay::<Consent>(events),
        "ConnectedApp" => replay::<authledger_domain::connected_app::ConnectedApp>(events),
        "SocialLogin" => replay::<authledger_domain::social_login::SocialLogin>(events),
        "ExternalIdentity" => replay::<authledger_domain::social_login::ExternalIdentity>(events),
        "AppConnection" => {
            replay::<authledger_domain::connected_app::connection::AppConnection>(events)
        }
        "SigningKeys" => replay::<authledger_domain::signing_keys::SigningKeys>(events),
        "UserCode" => replay::<authledger_domain::device::UserCodeAssignment>(events),
        "Resource" => replay::<authledger_domain::resource::Resource>(events),
        _ => replay::<Settings>(events),
    }
}

pub fn summary(event: &StoredEvent) -> Value {
    json!({
        "position": event.position.global,
        "sequence": event.sequence,
        "event_type": event.event_type,
        "time": event.raw_metadata.get("time"),
        "actor": event.raw_metadata.get("actor"),
        "ip": event.raw_metadata.get("ip"),
        "request_id": event.raw_metadata.get("request_id"),
    })
}

/// The state of `TYPE:ID` at `as_of`, with the last event that shaped it and the next one that
/// changed it afterwards.
pub async fn state_as_of(store: &Store, aggregate: &str, as_of: &str) -> Result<Value, AppError> {
    let (kind, id) = parse_aggregate(aggregate)?;
    let instant: DateTime<Utc> = authledger_domain::instant::parse(as_of, Utc::now())
        .map_err(|e| AppError::invalid(format!("--as-of {e}")))?;
    let events = store.history(kind, &id).await?;
    if events.is_empty() {
        return Err(AppError::NotFound(format!("no events for {aggregate}")));
    }
    let (before, after): (Vec<&StoredEvent>, Vec<&StoredEvent>) =
        events.iter().partition(|e| e.metadata.at <= instant);
    let state = state_after(kind, &before)?;
    let mut answer = json!({
        "aggregate": format!("{kind}:{id}"),
        "as_of": instant.to_rfc3339(),
        "existed": !before.is_empty(),
        "events_applied": before.len(),
        "state": state,
        "last_event": before.last().map(|e| summary(e)),
        "next_event": after.first().map(|e| summary(e)),
    });
    if kind == "Grant" {
        // Which access tokens could be used at that instant (the grant's own view of it; a
        // disabled client or user also ends them).
        let grant: Grant = serde_json::from_value(answer["state"].clone())
            .map_err(|e| AppError::Internal(e.into()))?;
        let active: Vec<&str> = grant
            .state()
            .map(|s| {
                s.access_tokens
                    .iter()
                    .filter(|t| grant.access_token_active(&t.hash, instant))
                    .map(|t| t.hash.as_hex())
                    .collect()
            })
            .unwrap_or_default();
        answer["active_access_token_hashes"] = json!(active);
    }
    Ok(answer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hash_an_older_event_holds_is_hidden_wherever_it_is() {
        let mut payload = json!({"PasswordChanged": {"password_hash": "$argon2id$v=19$..."}});
        hide_password_hashes(&mut payload);
        assert_eq!(
            payload,
            json!({"PasswordChanged": {"password_hash": HIDDEN}})
        );
        let mut state = json!({"registered": {"password": {"password_hash": "$argon2id$"}, "roles": [{"password_hash": "x"}]}});
        hide_password_hashes(&mut state);
        assert!(!state.to_string().contains("argon2"));
        assert_eq!(state["registered"]["roles"][0]["password_hash"], HIDDEN);
    }
}
