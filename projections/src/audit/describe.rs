//! What each event says to an auditor: the client, user and grant it concerns, and a
//! one-line summary, worked out from its payload (and, for a grant's later events, from the
//! grant's first event, remembered in `audit_grant_subjects`).

use authledger_domain::client::ClientEvent;
use authledger_domain::consent::ConsentEvent;
use authledger_domain::grant::GrantEvent;
use authledger_domain::settings::SettingsEvent;
use authledger_domain::user::UserEvent;
use serde::Serialize;

use crate::batch::ViewTx;
use crate::event_log::StoredEvent;
use crate::ProjectionError;
use crate::{on_tx, view_time};

pub(super) struct Subjects {
    pub(super) client_id: Option<String>,
    pub(super) username: Option<String>,
    pub(super) grant_id: Option<String>,
    pub(super) summary: String,
    /// The client acting for the user in a token exchange (RFC 8693).
    pub(super) acting_client_id: Option<String>,
}

fn quoted(scopes: impl std::fmt::Display) -> String {
    format!("\"{scopes}\"")
}

/// How a token exchange's issuance reads: where from, and who acts (RFC 8693).
fn exchanged(exchange: &authledger_domain::grant::Exchange) -> String {
    let client = exchange.source_client.as_deref().unwrap_or("-");
    let source = match (&exchange.source_grant, &exchange.external_subject) {
        (Some(grant), _) => format!("grant {grant} of client {client}"),
        (None, Some(external)) => format!(
            "a token of {} for its subject {}",
            external.issuer, external.subject
        ),
        (None, None) => format!("an ID token of client {client}"),
    };
    let actors: Vec<String> = exchange
        .actors
        .iter()
        .map(|a| match &a.user {
            Some(user) => format!("{user} (client {})", a.client_id),
            None => format!("client {}", a.client_id),
        })
        .collect();
    match actors.split_first() {
        None => format!(", exchanged from {source}, no actor (impersonation)"),
        Some((now, [])) => format!(", exchanged from {source}, {now} acting"),
        Some((now, before)) => format!(
            ", exchanged from {source}, {now} acting for {}",
            before.join(" for ")
        ),
    }
}

fn snake(value: impl Serialize) -> String {
    serde_json::to_value(value)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

/// Records which client and user a grant belongs to, for the audit rows of its later events.
/// Its first event inserts the row (each event is projected once, so nothing can be there
/// yet, and a plain insert costs Postgres one index descent where an upsert costs two); a
/// later one (a code grant's tokens) finds it there.
async fn remember_grant(
    tx: &mut ViewTx,
    event: &StoredEvent,
    client_id: &str,
    username: Option<&str>,
) -> Result<(), ProjectionError> {
    let grant_id = event.aggregate_id.as_str();
    tx.remember_grant(grant_id, client_id, username);
    let head = "INSERT INTO audit_grant_subjects (grant_id, client_id, username)";
    let tail = if event.sequence == 1 {
        ""
    } else {
        "ON CONFLICT (grant_id) DO NOTHING"
    };
    let row = [grant_id.into(), client_id.into(), username.into()];
    tx.insert("audit_grant_subjects", head, tail, &row).await
}

/// A device grant gets its user when a person approves it: later events of the grant are
/// that person's.
async fn name_grant_user(
    tx: &mut ViewTx,
    event: &StoredEvent,
    client_id: &str,
    username: &str,
) -> Result<(), ProjectionError> {
    let grant_id = event.aggregate_id.as_str();
    tx.remember_grant(grant_id, client_id, Some(username));
    let head = "INSERT INTO audit_grant_subjects (grant_id, client_id, username)";
    let tail = "ON CONFLICT (grant_id) DO UPDATE SET username = excluded.username";
    let row = [grant_id.into(), client_id.into(), username.into()];
    tx.insert("audit_grant_subjects", head, tail, &row).await
}

async fn grant_subjects(
    tx: &mut ViewTx,
    grant_id: &str,
) -> Result<(Option<String>, Option<String>), ProjectionError> {
    if let Some((client_id, username)) = tx.remembered_grant(grant_id) {
        return Ok((Some(client_id), username));
    }
    let sql = "SELECT client_id, username FROM audit_grant_subjects WHERE grant_id = $1";
    let row: Option<(String, Option<String>)> = on_tx!(tx.db().await?, conn => sqlx::query_as(sql).bind(grant_id).fetch_optional(conn).await)?;
    Ok(row.map(|(c, u)| (Some(c), u)).unwrap_or((None, None)))
}

pub(super) async fn describe(
    tx: &mut ViewTx,
    event: &StoredEvent,
) -> Result<Subjects, ProjectionError> {
    let id = event.aggregate_id.clone();
    let subjects =
        |client_id: Option<String>, username: Option<String>, summary: String| Subjects {
            client_id,
            username,
            grant_id: None,
            summary,
            acting_client_id: None,
        };
    Ok(match event.aggregate_type.as_str() {
        "Client" => {
            let summary = match event.decode::<ClientEvent>()? {
                ClientEvent::ClientRegistered {
                    metadata,
                    registered_via,
                    ..
                } => format!(
                    "client \"{}\" registered ({}), grant types {}",
                    metadata.name,
                    snake(registered_via),
                    metadata
                        .grant_types
                        .iter()
                        .map(|g| g.as_str())
                        .collect::<Vec<_>>()
                        .join(" ")
                ),
                ClientEvent::ClientUpdated { metadata } => {
                    format!("client \"{}\" updated", metadata.name)
                }
                ClientEvent::ClientSecretRotated {
                    revoke_tokens: true,
                    ..
                } => "client secret rotated; every token of the client revoked".into(),
                ClientEvent::ClientSecretRotated { .. } => "client secret rotated".into(),
                ClientEvent::ClientDisabled {
                    reason: Some(reason),
                } => format!("client disabled: {reason}"),
                ClientEvent::ClientDisabled { reason: None } => "client disabled".into(),
                ClientEvent::ClientEnabled {} => "client enabled".into(),
                ClientEvent::ClientDeleted {} => "client deleted".into(),
            };
            subjects(Some(id), None, summary)
        }
        "User" => {
            let summary = match event.decode::<UserEvent>()? {
                UserEvent::UserRegistered {
                    username, roles, ..
                } => format!(
                    "user {username} registered, roles [{}]",
                    roles
                        .iter()
                        .map(|r| r.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                UserEvent::ProfileUpdated { .. } => "profile updated".into(),
                UserEvent::PasswordChanged { .. } => "password changed".into(),
                UserEvent::RolesSet { roles } => format!(
                    "roles set to [{}]",
                    roles
                        .iter()
                        .map(|r| r.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                UserEvent::UserDisabled {} => "user disabled".into(),
                UserEvent::UserErased { reason } => {
                    crate::personal::scrub_in(
                        tx.db().await?,
                        crate::personal::SCRUB_AUDIT_LOG,
                        &id,
                    )
                    .await?;
                    match reason {
                        Some(reason) => format!("personal data erased: {reason}"),
                        None => "personal data erased".into(),
                    }
                }
                UserEvent::UserEnabled {} => "user enabled".into(),
                UserEvent::LoginSucceeded { method } => match method {
                    Some(method) => format!("sign-in succeeded ({method})"),
                    None => "sign-in succeeded".into(),
                },
                UserEvent::LoginFailed { reason } => {
                    format!("sign-in failed: {}", snake(reason).replace('_', " "))
                }
                UserEvent::LoginThrottled {
                    retry_after_seconds,
                } => format!("sign-in throttled for {retry_after_seconds} s after failures"),
                UserEvent::SessionStarted { expires_at, .. } => {
                    format!("session started, until {}", crate::view_time(expires_at))
                }
                UserEvent::SessionEnded { reason, .. } => {
                    format!("session ended: {}", reason.as_str().replace('_', " "))
                }
                UserEvent::PasswordVerified { must_enrol, .. } => if must_enrol {
                    "password verified; two-factor set-up required"
                } else {
                    "password verified; second factor required"
                }
                .into(),
                UserEvent::VouchedElsewhere {
                    method, must_enrol, ..
                } => {
                    if must_enrol {
                        format!("vouched for ({method}); two-factor set-up required")
                    } else {
                        format!("vouched for ({method}); second factor required")
                    }
                }
                UserEvent::SecondFactorPassed { .. } => {
                    "second factor passed: authenticator code".into()
                }
                UserEvent::RecoveryCodeUsed { .. } => {
                    "second factor passed: recovery code (now spent)".into()
                }
                UserEvent::SecondFactorFailed { reason } => {
                    format!("second factor failed: {}", snake(reason).replace('_', " "))
                }
                UserEvent::TwoFactorEnrolled { recovery_codes, .. } => format!(
                    "two-factor sign-in set up, {} recovery codes",
                    recovery_codes.len()
                ),
                UserEvent::TwoFactorRemoved { reason } => {
                    format!(
                        "two-factor sign-in removed: {}",
                        snake(reason).replace('_', " ")
                    )
                }
            };
            subjects(None, Some(id), summary)
        }
        "Consent" => {
            let (summary, user, client) = match event.decode::<ConsentEvent>()? {
                ConsentEvent::ConsentGranted {
                    user,
                    client_id,
                    scopes,
                } => (
                    format!(
                        "{user} consented to client {client_id}: {}",
                        quoted(&scopes)
                    ),
                    user,
                    client_id,
                ),
                ConsentEvent::ConsentRevoked { user, client_id } => (
                    format!("consent of {user} for client {client_id} revoked"),
                    user,
                    client_id,
                ),
            };
            subjects(Some(client), Some(user.to_string()), summary)
        }
        "ConnectedApp" => {
            use authledger_domain::connected_app::ConnectedAppEvent;
            let id = &event.aggregate_id;
            let summary = match event.decode::<ConnectedAppEvent>()? {
                ConnectedAppEvent::ConnectedAppCreated { config, .. } => format!(
                    "connected app {id} created: client {} at {}",
                    config.client_id,
                    config.endpoints.token.as_str()
                ),
                ConnectedAppEvent::ConnectedAppUpdated { .. } => {
                    format!("connected app {id} changed")
                }
                ConnectedAppEvent::ConnectedAppSecretChanged { .. } => {
                    format!("connected app {id}: client secret changed")
                }
                ConnectedAppEvent::ConnectedAppDeleted => format!("connected app {id} deleted"),
            };
            subjects(None, None, summary)
        }
        "AppConnection" => {
            use authledger_domain::connected_app::connection::ConnectionEvent;
            let (app, user) = event
                .aggregate_id
                .split_once(':')
                .unwrap_or((&event.aggregate_id, ""));
            let whose = if user.is_empty() {
                format!("the app's own connection to {app}")
            } else {
                format!("{user}'s connection to {app}")
            };
            let summary = match event.decode::<ConnectionEvent>()? {
                ConnectionEvent::TokensObtained { tokens, .. } => {
                    format!("{whose}: tokens obtained, scope {}", quoted(&tokens.scopes))
                }
                ConnectionEvent::TokensRefreshed { tokens } => {
                    format!(
                        "{whose}: tokens refreshed, scope {}",
                        quoted(&tokens.scopes)
                    )
                }
                ConnectionEvent::ConnectionLost { reason } => {
                    format!("{whose} lost ({reason}): connect again")
                }
                ConnectionEvent::Disconnected {
                    revoked_at_provider,
                } => format!(
                    "{whose} given up{}",
                    if revoked_at_provider {
                        ", tokens revoked at the provider"
                    } else {
                        ""
                    }
                ),
            };
            subjects(
                None,
                Some(user.to_owned()).filter(|u| !u.is_empty()),
                summary,
            )
        }
        "Grant" => {
            let payload = event.decoded::<GrantEvent>()?;
            let acting_client_id = match &*payload {
                GrantEvent::TokensIssued {
                    exchange: Some(exchange),
                    ..
                } => exchange.acting_client().map(str::to_owned),
                _ => None,
            };
            // The first events of a grant name its client and user; later ones are looked up.
            let (client_id, username) = match &*payload {
                GrantEvent::CodeIssued {
                    client_id, user, ..
                } => {
                    remember_grant(tx, event, client_id, Some(user.as_str())).await?;
                    (Some(client_id.clone()), Some(user.to_string()))
                }
                GrantEvent::TokensIssued {
                    client_id, user, ..
                } => {
                    remember_grant(tx, event, client_id, user.as_ref().map(|u| u.as_str())).await?;
                    (
                        Some(client_id.clone()),
                        user.as_ref().map(|u| u.to_string()),
                    )
                }
                GrantEvent::DeviceAuthorizationStarted { client_id, .. } => {
                    remember_grant(tx, event, client_id, None).await?;
                    (Some(client_id.clone()), None)
                }
                GrantEvent::DeviceAuthorizationApproved {
                    client_id, user, ..
                } => {
                    name_grant_user(tx, event, client_id, user.as_str()).await?;
                    (Some(client_id.clone()), Some(user.to_string()))
                }
                GrantEvent::DeviceAuthorizationDenied { user } => {
                    let (client_id, _) = grant_subjects(tx, &id).await?;
                    (client_id, Some(user.to_string()))
                }
                _ => grant_subjects(tx, &id).await?,
            };
            let summary = match &*payload {
                GrantEvent::CodeIssued { scopes, .. } => {
                    format!("authorization code issued, scope {}", quoted(scopes))
                }
                GrantEvent::CodeRedeemed { .. } => "authorization code redeemed".into(),
                GrantEvent::TokensIssued {
                    grant_type,
                    scopes,
                    refresh_token_hash,
                    exchange,
                    ..
                } => format!(
                    "{} tokens issued{}, scope {}{}",
                    grant_type,
                    if refresh_token_hash.is_some() {
                        " with a refresh token"
                    } else {
                        ""
                    },
                    quoted(scopes),
                    exchange.as_ref().map(exchanged).unwrap_or_default()
                ),
                GrantEvent::TokensRefreshed { scopes, .. } => {
                    format!("tokens refreshed, scope {}", quoted(scopes))
                }
                GrantEvent::CodeReplayDetected { .. } => {
                    "authorization code presented a second time (replay)".into()
                }
                GrantEvent::RefreshReplayDetected { .. } => {
                    "rotated refresh token presented again (replay)".into()
                }
                GrantEvent::TokenRevoked { .. } => "access token revoked".into(),
                GrantEvent::GrantRevoked { reason } => {
                    format!("grant revoked ({})", snake(reason).replace('_', " "))
                }
                GrantEvent::DeviceAuthorizationStarted {
                    scopes, expires_at, ..
                } => format!(
                    "device authorization started, scope {}, code valid until {}",
                    quoted(scopes),
                    view_time(*expires_at)
                ),
                GrantEvent::DeviceAuthorizationApproved { scopes, .. } => {
                    format!("device approved by the person, scope {}", quoted(scopes))
                }
                GrantEvent::DeviceAuthorizationDenied { .. } => {
                    "device denied by the person".into()
                }
                GrantEvent::DeviceCodeRedeemed { .. } => "device code redeemed".into(),
            };
            Subjects {
                client_id,
                username,
                grant_id: Some(id),
                summary,
                acting_client_id,
            }
        }
        "Settings" => {
            let SettingsEvent::SettingsChanged { setting } = event.decode::<SettingsEvent>()?;
            subjects(None, None, format!("setting changed: {setting}"))
        }
        "SigningKeys" => {
            use authledger_domain::signing_keys::SigningKeysEvent;
            let summary = match event.decode::<SigningKeysEvent>()? {
                SigningKeysEvent::KeyGenerated {
                    kid,
                    alg,
                    activate_after,
                    ..
                } => format!(
                    "signing key {kid} ({}) published, signing from {}",
                    alg.as_str(),
                    view_time(activate_after)
                ),
                SigningKeysEvent::KeyActivated { kid } => format!("signing key {kid} activated"),
                SigningKeysEvent::KeyRetired { kid, remove_after } => format!(
                    "signing key {kid} retired, published until {}",
                    view_time(remove_after)
                ),
                SigningKeysEvent::KeyRemoved { kid } => format!("signing key {kid} removed"),
            };
            subjects(None, None, summary)
        }
        "Resource" => {
            use authledger_domain::resource::ResourceEvent;
            let summary = match event.decode::<ResourceEvent>()? {
                ResourceEvent::ResourceRegistered { settings, .. } => format!(
                    "resource \"{}\" registered, {} access tokens, scope {}",
                    settings.name,
                    settings.token_format.as_str(),
                    quoted(&settings.scopes)
                ),
                ResourceEvent::ResourceUpdated { settings } => format!(
                    "resource \"{}\" changed: {} access tokens, scope {}",
                    settings.name,
                    settings.token_format.as_str(),
                    quoted(&settings.scopes)
                ),
                ResourceEvent::ResourceDeleted {} => "resource deleted".into(),
            };
            subjects(None, None, summary)
        }
        // The user code's hash says nothing to a reader; its grant's events tell the story.
        "UserCode" => subjects(None, None, "device user code given out".into()),
        other => subjects(None, None, format!("{other} event")),
    })
}
