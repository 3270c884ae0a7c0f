//! How each aggregate's events reach the index: one function per aggregate, used for the
//! events this instance commits (before the command returns) and for the events the follower
//! reads from the log. The index learns from events alone, never from an aggregate handed
//! over by the command path, so what one instance knows is what the log says.

use async_trait::async_trait;
use authledger_domain::client::Client;
use authledger_domain::consent::Consent;
use authledger_domain::grant::Grant;
use authledger_domain::resource::Resource;
use authledger_domain::settings::{Settings, SETTINGS_ID};
use authledger_domain::signing_keys::SigningKeys;
use authledger_domain::user::{User, UserEvent};
use chrono::{DateTime, Utc};
use cqrs_es::Aggregate;

use super::load::load_aggregate;
use super::state::{apply_versioned, OwnerNeeded, Versioned};
use super::LiveIndex;
use crate::error::ProjectionError;

/// An aggregate whose events the live index folds.
#[async_trait]
pub trait Fed: Aggregate {
    /// Applies `event`, the aggregate's event number `sequence`, committed at `at`. Applying
    /// an event twice, or after a later one, changes nothing. On a gap (an earlier event the
    /// index never saw: another instance's, not yet followed) the aggregate is read whole from
    /// the log, so the index is never behind the event it was just given.
    async fn feed(
        _live: &LiveIndex,
        _aggregate_id: &str,
        _sequence: i64,
        _event: &Self::Event,
        _at: DateTime<Utc>,
    ) -> Result<(), ProjectionError> {
        Ok(())
    }
}

/// Applies the next event of an aggregate the index keeps whole (clients, the settings), or
/// reloads the aggregate on a gap.
async fn feed_whole<A: Aggregate>(
    live: &LiveIndex,
    aggregate_id: &str,
    sequence: i64,
    event: &A::Event,
    entry: impl FnOnce(&mut super::state::LiveState) -> Option<&mut Versioned<A>>,
    store: impl FnOnce(&mut super::state::LiveState, i64, A),
) -> Result<(), ProjectionError> {
    let applied = {
        let mut state = live.write();
        apply_versioned(entry(&mut state), sequence, || Ok(event.clone()))?
    };
    if !applied {
        if let Some((sequence, aggregate)) = load_aggregate::<A>(&live.db, aggregate_id).await? {
            store(&mut live.write(), sequence, aggregate);
        }
    }
    Ok(())
}

#[async_trait]
impl Fed for Client {
    async fn feed(
        live: &LiveIndex,
        id: &str,
        sequence: i64,
        event: &Self::Event,
        _: DateTime<Utc>,
    ) -> Result<(), ProjectionError> {
        feed_whole(
            live,
            id,
            sequence,
            event,
            |state| state.clients.get_mut(id),
            |state, sequence, client| state.set_client(id, sequence, client),
        )
        .await
    }
}

#[async_trait]
impl Fed for Settings {
    async fn feed(
        live: &LiveIndex,
        id: &str,
        sequence: i64,
        event: &Self::Event,
        _: DateTime<Utc>,
    ) -> Result<(), ProjectionError> {
        if id != SETTINGS_ID {
            return Ok(());
        }
        feed_whole(
            live,
            id,
            sequence,
            event,
            |state| state.settings.as_mut(),
            |state, sequence, settings| state.set_settings(sequence, settings),
        )
        .await
    }
}

#[async_trait]
impl Fed for User {
    async fn feed(
        live: &LiveIndex,
        username: &str,
        sequence: i64,
        event: &UserEvent,
        at: DateTime<Utc>,
    ) -> Result<(), ProjectionError> {
        let mut state = live.write();
        match event {
            UserEvent::UserDisabled {} | UserEvent::UserErased { .. } => {
                state.set_user(username, sequence, true)
            }
            UserEvent::UserEnabled {} => state.set_user(username, sequence, false),
            other => state.apply_session(username, other, at),
        }
        Ok(())
    }
}

#[async_trait]
impl Fed for Grant {
    async fn feed(
        live: &LiveIndex,
        grant_id: &str,
        _: i64,
        event: &Self::Event,
        at: DateTime<Utc>,
    ) -> Result<(), ProjectionError> {
        let outcome = live
            .write()
            .apply_grant(grant_id, event, at, None, live.capacity);
        if let Err(OwnerNeeded) = outcome {
            // A refresh of a grant whose tokens the index no longer holds: its owner is in
            // the grant's first events.
            let loaded = load_aggregate::<Grant>(&live.db, grant_id).await?;
            if let Some(grant) = loaded.as_ref().and_then(|(_, g)| g.state()) {
                let owner = live.write().shared.owner(
                    grant.client_id.as_str(),
                    grant.user.as_ref().map(|u| u.as_str()),
                );
                // The owner is given, so the event applies.
                let _ = live
                    .write()
                    .apply_grant(grant_id, event, at, Some(&owner), live.capacity);
            }
        }
        Ok(())
    }
}

impl Fed for Consent {}
impl Fed for authledger_domain::connected_app::ConnectedApp {}
impl Fed for authledger_domain::connected_app::connection::AppConnection {}
impl Fed for authledger_domain::social_login::SocialLogin {}
impl Fed for authledger_domain::social_login::ExternalIdentity {}
impl Fed for SigningKeys {}
impl Fed for authledger_domain::device::UserCodeAssignment {}
#[async_trait]
impl Fed for Resource {
    async fn feed(
        live: &LiveIndex,
        id: &str,
        sequence: i64,
        event: &Self::Event,
        _: DateTime<Utc>,
    ) -> Result<(), ProjectionError> {
        feed_whole(
            live,
            id,
            sequence,
            event,
            |state| state.resources.get_mut(id),
            |state, sequence, resource| state.set_resource(id, sequence, resource),
        )
        .await
    }
}
