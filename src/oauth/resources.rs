//! Resource indicators (RFC 8707): which registered resources a request names, whether the
//! client may ask for them, and what that makes of the access token (its audience, format
//! and lifetime).

use authledger_domain::client::IdTokenAlg;
use authledger_domain::resource::{RegisteredResource, ResourceId, TokenFormat};

use super::Authority;
use crate::error::AppError;

/// The resources a request is for, each registered and open to its client. Empty when the
/// request named none: the token is then unrestricted, as before resources existed.
#[derive(Debug, Clone, Default)]
pub struct Target {
    resources: Vec<RegisteredResource>,
}

/// Why a `resource` cannot be granted: RFC 8707 §2's `invalid_target`.
#[derive(Debug, thiserror::Error)]
pub enum TargetRefused {
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Failed(#[from] AppError),
}

impl Target {
    /// The resources `raw` names (duplicates once), for `client_id`.
    pub async fn resolve(
        authority: &Authority,
        client_id: &str,
        raw: &[&str],
    ) -> Result<Target, TargetRefused> {
        let mut resources: Vec<RegisteredResource> = vec![];
        for value in raw {
            let id = ResourceId::parse(value)
                .map_err(|e| TargetRefused::Invalid(format!("resource `{value}` {e}")))?;
            if resources.iter().any(|r| r.identifier == id) {
                continue;
            }
            let found = crate::admin::resources::find(&authority.store, id.as_str()).await?;
            let resource = found
                .filter(|r| r.settings.allows(client_id))
                .ok_or_else(|| {
                    TargetRefused::Invalid(format!(
                        "resource `{id}` is unknown or not open to this client"
                    ))
                })?;
            resources.push(resource);
        }
        let target = Target { resources };
        target.format()?;
        target.signing_alg()?;
        Ok(target)
    }

    /// The resources of `ids` (a grant's, named by an earlier request), for `client_id`.
    pub async fn of(
        authority: &Authority,
        client_id: &str,
        ids: &[ResourceId],
    ) -> Result<Target, TargetRefused> {
        let raw: Vec<&str> = ids.iter().map(ResourceId::as_str).collect();
        Target::resolve(authority, client_id, &raw).await
    }

    pub fn is_empty(&self) -> bool {
        self.resources.is_empty()
    }

    /// The token's audience.
    pub fn ids(&self) -> Vec<ResourceId> {
        self.resources
            .iter()
            .map(|r| r.identifier.clone())
            .collect()
    }

    /// The resources, for showing to a person.
    pub fn resources(&self) -> &[RegisteredResource] {
        &self.resources
    }

    /// One token serves every resource it names, so they must agree on its format.
    pub fn format(&self) -> Result<TokenFormat, TargetRefused> {
        let mut formats = self.resources.iter().map(|r| r.settings.token_format);
        let first = formats.next().unwrap_or_default();
        if formats.any(|f| f != first) {
            return Err(TargetRefused::Invalid(
                "these resources take access tokens of different formats; ask for them in separate requests".into(),
            ));
        }
        Ok(first)
    }

    /// How a JWT access token for these resources is signed: they must agree (RS256 unless
    /// a resource says otherwise).
    pub fn signing_alg(&self) -> Result<IdTokenAlg, TargetRefused> {
        let mut algs = self
            .resources
            .iter()
            .map(|r| r.settings.signing_alg.unwrap_or(IdTokenAlg::RS256));
        let first = algs.next().unwrap_or(IdTokenAlg::RS256);
        if algs.any(|a| a != first) {
            return Err(TargetRefused::Invalid(
                "these resources verify access tokens signed with different algorithms; ask for them in separate requests".into(),
            ));
        }
        Ok(first)
    }

    /// The access token's lifetime: the shortest any of its resources allows, else `default`.
    pub fn lifetime(&self, default: u32) -> u32 {
        self.resources
            .iter()
            .filter_map(|r| r.settings.access_token_ttl)
            .min()
            .unwrap_or(default)
    }
}
