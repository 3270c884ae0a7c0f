//! Protected resources (RFC 8707): register, change, list, delete. The CLI calls these; input
//! arrives as strings and is parsed here, errors naming the field.

use authledger_domain::client::IdTokenAlg;
use authledger_domain::metadata::EventMetadata;
use authledger_domain::oauth::Scopes;
use authledger_domain::resource::{
    RegisteredResource, Resource, ResourceCommand, ResourceError, ResourceId, ResourceSettings,
    TokenFormat,
};
use cqrs_es::AggregateError;
use std::collections::BTreeMap;

use crate::error::{from_aggregate_error, AppError};
use crate::store::Store;

/// A resource as an operator describes it; what is absent keeps its value on update.
#[derive(Debug, Default, Clone, clap::Args)]
pub struct ResourceInput {
    /// Its name, shown to people and in its metadata.
    #[arg(long)]
    pub name: Option<String>,
    /// The scopes it defines: space-separated, and repeatable.
    #[arg(long)]
    pub scope: Vec<String>,
    /// opaque (checked by introspection) or jwt (RFC 9068, verified with the JWKS).
    #[arg(long, value_name = "opaque|jwt")]
    pub token_format: Option<String>,
    /// Seconds its access tokens live [default: the access_token_ttl setting].
    #[arg(long, value_name = "SECONDS")]
    pub access_token_ttl: Option<u32>,
    /// A client that may ask for it (repeatable); every client when none is named.
    #[arg(long = "client", value_name = "CLIENT_ID")]
    pub allowed_clients: Vec<String>,
    /// A client the resource server authenticates as to introspect tokens issued to other
    /// clients for it (repeatable).
    #[arg(long = "introspecting-client", value_name = "CLIENT_ID")]
    pub introspecting_clients: Vec<String>,
    /// How its JWT access tokens are signed: RS256 (default), ES256 or EdDSA.
    #[arg(long, value_name = "ALG")]
    pub signing_alg: Option<String>,
}

fn resource_error(identifier: &str, error: AggregateError<ResourceError>) -> AppError {
    let subject = format!("resource {identifier}");
    from_aggregate_error(error, &subject, |e| match e {
        ResourceError::NotFound => AppError::NotFound(format!("{subject}: {e}")),
        ResourceError::AlreadyExists => AppError::Conflict(format!("{subject}: {e}")),
        ResourceError::Invalid { field, .. } => AppError::invalid_field(field, &e),
    })
}

fn parse_identifier(raw: &str) -> Result<ResourceId, AppError> {
    ResourceId::parse(raw)
        .map_err(|e| AppError::invalid_field("identifier", format!("identifier: {e}")))
}

/// `input` over `base`: each field given replaces its value.
fn settings_from(
    input: ResourceInput,
    base: Option<ResourceSettings>,
) -> Result<ResourceSettings, AppError> {
    let base = base.unwrap_or(ResourceSettings {
        name: String::new(),
        scopes: Scopes::default(),
        token_format: TokenFormat::Opaque,
        access_token_ttl: None,
        allowed_clients: vec![],
        introspecting_clients: vec![],
        signing_alg: None,
    });
    let scope = (!input.scope.is_empty()).then(|| input.scope.join(" "));
    let scopes = match scope {
        Some(raw) => Scopes::parse(&raw)
            .map_err(|e| AppError::invalid_field("scope", format!("scope: {e}")))?,
        None => base.scopes,
    };
    let token_format = match input.token_format {
        Some(raw) => raw.parse().map_err(|e: String| {
            AppError::invalid_field("token_format", format!("token_format: {e}"))
        })?,
        None => base.token_format,
    };
    let signing_alg = match input.signing_alg.as_deref() {
        Some(raw) => Some(IdTokenAlg::parse(raw).ok_or_else(|| {
            AppError::invalid_field(
                "signing_alg",
                format!("signing_alg: `{raw}` is not one of RS256, ES256, EdDSA"),
            )
        })?),
        None => base.signing_alg,
    };
    Ok(ResourceSettings {
        signing_alg,
        name: input.name.unwrap_or(base.name),
        scopes,
        token_format,
        access_token_ttl: input.access_token_ttl.or(base.access_token_ttl),
        allowed_clients: if input.allowed_clients.is_empty() {
            base.allowed_clients
        } else {
            input.allowed_clients
        },
        introspecting_clients: if input.introspecting_clients.is_empty() {
            base.introspecting_clients
        } else {
            input.introspecting_clients
        },
    })
}

pub async fn create(
    store: &Store,
    identifier: &str,
    input: ResourceInput,
    metadata: &EventMetadata,
) -> Result<RegisteredResource, AppError> {
    let identifier = parse_identifier(identifier)?;
    if input.name.is_none() {
        return Err(AppError::invalid_field(
            "name",
            "name: a resource needs one",
        ));
    }
    let settings = settings_from(input, None)?;
    let command = ResourceCommand::Register {
        identifier: identifier.clone(),
        settings,
    };
    store
        .resources
        .execute(identifier.as_str(), command, metadata)
        .await
        .map_err(|e| resource_error(identifier.as_str(), e))?;
    show(store, identifier.as_str()).await
}

pub async fn update(
    store: &Store,
    identifier: &str,
    input: ResourceInput,
    metadata: &EventMetadata,
) -> Result<RegisteredResource, AppError> {
    let current = show(store, identifier).await?;
    let settings = settings_from(input, Some(current.settings))?;
    store
        .resources
        .execute(identifier, ResourceCommand::Update(settings), metadata)
        .await
        .map_err(|e| resource_error(identifier, e))?;
    show(store, identifier).await
}

pub async fn delete(
    store: &Store,
    identifier: &str,
    metadata: &EventMetadata,
) -> Result<(), AppError> {
    store
        .resources
        .execute(identifier, ResourceCommand::Delete, metadata)
        .await
        .map_err(|e| resource_error(identifier, e))?;
    Ok(())
}

/// The resource registered under `identifier`, if any.
/// The resource, from the live index in a server (token requests name resources often), else
/// folded from its events.
pub async fn find(store: &Store, identifier: &str) -> Result<Option<RegisteredResource>, AppError> {
    if let Some(live) = store.live() {
        return Ok(live.resource(identifier));
    }
    let resource: Resource = store
        .resources
        .load(identifier)
        .await
        .map_err(|e| resource_error(identifier, e))?;
    Ok(resource.registered().cloned())
}

pub async fn show(store: &Store, identifier: &str) -> Result<RegisteredResource, AppError> {
    find(store, identifier)
        .await?
        .ok_or_else(|| AppError::NotFound(format!("resource {identifier}: no such resource")))
}

/// Every registered resource, by identifier. Folded from the log: resources are few (an
/// operator's list of APIs), so they need no view of their own.
pub async fn list(store: &Store) -> Result<Vec<RegisteredResource>, AppError> {
    let events = authledger_projections::event_log::read_type(&store.db, "Resource")
        .await
        .map_err(|e| AppError::Internal(e.into()))?;
    let mut by_id: BTreeMap<&str, Vec<_>> = BTreeMap::new();
    for event in &events {
        by_id.entry(&event.aggregate_id).or_default().push(event);
    }
    let mut resources = vec![];
    for events in by_id.into_values() {
        let resource: Resource = authledger_projections::event_log::fold(events)
            .map_err(|e| AppError::Internal(e.into()))?;
        resources.extend(resource.registered().cloned());
    }
    Ok(resources)
}
