//! How each aggregate's committed events reach the live index, before the command that
//! committed them returns (so the next request on this instance sees them), and whether its
//! views follow later. The follower brings the same events to other instances.

use authledger_domain::client::Client;
use authledger_domain::consent::Consent;
use authledger_domain::grant::Grant;
use authledger_domain::metadata::EventMetadata;
use authledger_domain::settings::Settings;
use authledger_domain::signing_keys::SigningKeys;
use authledger_domain::user::User;
use authledger_projections::live::LiveIndex;
use cqrs_es::{Aggregate, EventEnvelope};

/// How an aggregate's committed events reach the live index.
pub trait Live: Aggregate {
    /// True if, with a live index, commands return without waiting for the views: the
    /// index alone serves what must see them at once, and the projector updates the views in
    /// batches. Readers of these views call [`super::Store::current_views`].
    const VIEWS_FOLLOW_LATER: bool = false;

    /// How many of these aggregates stay in memory between commands (see
    /// `aggregate_cache.rs`); 0 reads every command's aggregate from the store.
    const KEPT_IN_MEMORY: usize = 0;

    /// Whether this aggregate will see another command, so that keeping it is worth its memory.
    fn expects_more_commands(&self) -> bool {
        false
    }

    /// Hands the index `after` (the aggregate after `events`) or the events themselves.
    fn committed(
        _live: &LiveIndex,
        _aggregate_id: &str,
        _after: &Self,
        _events: &[EventEnvelope<Self>],
        _metadata: &EventMetadata,
    ) {
    }
}

fn last_sequence<A: Aggregate>(events: &[EventEnvelope<A>]) -> i64 {
    events.last().map_or(0, |e| e.sequence as i64)
}

impl Live for Client {
    fn committed(
        live: &LiveIndex,
        id: &str,
        after: &Self,
        events: &[EventEnvelope<Self>],
        _: &EventMetadata,
    ) {
        live.client_committed(id, last_sequence(events), after);
    }
}

impl Live for Settings {
    fn committed(
        live: &LiveIndex,
        _: &str,
        after: &Self,
        events: &[EventEnvelope<Self>],
        _: &EventMetadata,
    ) {
        live.settings_committed(last_sequence(events), after);
    }
}

impl Live for User {
    fn committed(
        live: &LiveIndex,
        id: &str,
        after: &Self,
        events: &[EventEnvelope<Self>],
        metadata: &EventMetadata,
    ) {
        let disabled = after.registered().is_some_and(|u| u.disabled);
        live.user_committed(
            id,
            last_sequence(events),
            disabled,
            events.iter().map(|e| (&e.payload, metadata.at)),
        );
    }
}

impl Live for Grant {
    const VIEWS_FOLLOW_LATER: bool = true;
    /// Grants with a pending code or a refresh token. About 1.5 KiB each (measured: 29,000
    /// kept grants added 43 MiB to the benchmark's RSS), so at most about 15 MiB. A code is
    /// exchanged seconds after it is issued, so this covers 10,000 sign-ins in flight; a grant
    /// that fell out is read from the store on its next command, as without the cache.
    const KEPT_IN_MEMORY: usize = 10_000;

    fn expects_more_commands(&self) -> bool {
        self.state().is_some_and(|s| {
            s.revoked.is_none()
                && (s.refresh_token.is_some() || s.code.as_ref().is_some_and(|c| !c.redeemed))
        })
    }

    fn committed(
        live: &LiveIndex,
        id: &str,
        after: &Self,
        events: &[EventEnvelope<Self>],
        metadata: &EventMetadata,
    ) {
        if let Some(state) = after.state() {
            live.grant_committed(
                id,
                &state.client_id,
                state.user.as_ref().map(|u| u.as_str()),
                events.iter().map(|e| (&e.payload, metadata.at)),
            );
        }
    }
}

impl Live for Consent {}
impl Live for SigningKeys {}
