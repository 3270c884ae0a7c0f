//! What the command path knows of each aggregate: whether its views follow later, how
//! many stay in memory, and what its events count for in the metrics. How its events reach the live index is the index's own business
//! ([`authledger_projections::live::Fed`]); the store only hands it the committed events.

use authledger_domain::client::Client;
use authledger_domain::connected_app::connection::AppConnection;
use authledger_domain::connected_app::ConnectedApp;
use authledger_domain::consent::Consent;
use authledger_domain::grant::Grant;
use authledger_domain::settings::Settings;
use authledger_domain::signing_keys::SigningKeys;
use authledger_domain::user::User;
use authledger_projections::live::Fed;

use crate::metrics::Metrics;

/// What the command path knows of an aggregate beyond cqrs-es.
pub trait Live: Fed {
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

    /// Counts a committed event in the metrics (`crate::metrics`); `after` is the aggregate
    /// after the command's events.
    fn observe(_metrics: &Metrics, _after: &Self, _event: &Self::Event) {}
}

impl Live for Client {}

impl Live for Settings {}

impl Live for User {
    fn observe(metrics: &Metrics, _after: &Self, event: &Self::Event) {
        metrics.user_event(event);
    }
}

impl Live for Grant {
    const VIEWS_FOLLOW_LATER: bool = true;
    /// Grants with a pending code or a refresh token. About 900 bytes each (measured: 10,000
    /// kept grants held 9 MB at the benchmark's memory peak), so at most about 4 MB. A code
    /// is exchanged seconds after it is issued, so this covers 4,096 sign-ins in flight, and
    /// the grants whose refresh tokens are rotated most often; a grant that fell out is read
    /// from the store on its next command, as without the cache.
    const KEPT_IN_MEMORY: usize = 4_096;

    fn observe(metrics: &Metrics, after: &Self, event: &Self::Event) {
        metrics.grant_event(after, event);
    }

    fn expects_more_commands(&self) -> bool {
        self.state().is_some_and(|s| {
            s.revoked.is_none()
                && (s.refresh_token.is_some()
                    || s.code.as_ref().is_some_and(|c| !c.redeemed)
                    || s.device.as_ref().is_some_and(|d| {
                        use authledger_domain::grant::DeviceStatus;
                        matches!(d.status, DeviceStatus::Pending | DeviceStatus::Approved)
                    }))
        })
    }
}

impl Live for Consent {}
impl Live for ConnectedApp {}
impl Live for AppConnection {}
impl Live for authledger_domain::social_login::SocialLogin {}
impl Live for authledger_domain::social_login::ExternalIdentity {}
impl Live for SigningKeys {}
impl Live for authledger_domain::device::UserCodeAssignment {}
impl Live for authledger_domain::resource::Resource {}
