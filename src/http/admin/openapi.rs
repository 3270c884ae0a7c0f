//! The OpenAPI 3.1 document of the admin API and the registration endpoints, served at
//! `/admin/api/openapi.json`.
//!
//! It is generated from the code: each handler's `#[utoipa::path]` and the types it reads and
//! answers (`ToSchema`), collected by the router that mounts them (`utoipa_axum::routes!`
//! cannot mount an undocumented handler). The refusals every admin call can meet (bad input,
//! no or a weak token, the store away, our own failure) are added here once rather than
//! repeated on forty operations; those particular to one operation are on its handler.

use std::sync::OnceLock;

use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::openapi::path::Operation;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, OpenApi as Document, Ref, ResponseBuilder};
use utoipa::{Modify, OpenApi, ToSchema};

use crate::http::paths;

/// Where the admin API is mounted; the document's paths are absolute.
pub(super) const MOUNT: &str = paths::ADMIN_API;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "authledger admin API",
        description = "Clients, users, grants, the audit log, usage, connected apps, social \
            login providers and settings of an authledger server, and its RFC 7591/7592 \
            dynamic client registration. Every change is recorded as an event whose actor is \
            the caller. Admin calls need a bearer token with scope `admin`, issued by this \
            server to a person holding the role `admin` or to a client (client credentials).",
        license(name = "Apache-2.0", identifier = "Apache-2.0"),
    ),
    paths(
        crate::http::register::register,
        crate::http::register::read_registration,
        crate::http::register::replace_registration,
        crate::http::register::delete_registration,
    ),
    components(schemas(ApiErrorBody, OAuthErrorBody)),
    tags(
        (name = "clients", description = "OAuth clients registered by an operator"),
        (name = "users", description = "People who sign in here"),
        (name = "grants", description = "Consents, grants and the tokens issued under them"),
        (name = "audit", description = "The audit log and usage counts"),
        (name = "connected-apps", description = "Providers authledger is a client of"),
        (name = "social-logins", description = "Providers people sign in through"),
        (name = "resources", description = "Protected resources tokens can be restricted to (RFC 8707)"),
        (name = "settings", description = "Server-wide settings"),
        (name = "registration", description = "RFC 7591 and RFC 7592 dynamic client registration"),
        (name = "meta", description = "This document"),
    ),
)]
struct ApiDoc;

/// An admin API refusal (`src/http/admin/error.rs`).
#[derive(Serialize, ToSchema)]
pub(super) struct ApiErrorBody {
    /// `invalid_request`, `invalid_token`, `insufficient_scope`, `not_found`, `conflict`,
    /// `upstream_error`, `temporarily_unavailable` or `server_error`.
    error: String,
    error_description: String,
    /// The request field at fault, when one is.
    field: Option<String>,
}

/// An RFC 7591 §3.2.2 / RFC 6750 §3 refusal of the registration endpoints.
#[derive(Serialize, ToSchema)]
pub(crate) struct OAuthErrorBody {
    /// `invalid_client_metadata`, `invalid_redirect_uri`, `invalid_request`, `invalid_token`,
    /// `not_found`, `too_many_requests`, `temporarily_unavailable` or `server_error`.
    error: String,
    error_description: Option<String>,
}

/// One page of a keyset-paginated list: pass `next_cursor` back as `cursor` for the next.
#[derive(Serialize, ToSchema)]
pub(super) struct Paged<T> {
    pub(super) items: Vec<T>,
    /// Absent (null) on the last page.
    pub(super) next_cursor: Option<String>,
}

/// A whole list, small enough never to be paged.
#[derive(Serialize, ToSchema)]
pub(super) struct Items<T> {
    pub(super) items: Vec<T>,
}

/// Adds the bearer scheme and the refusals every operation shares.
struct Refusals;

impl Modify for Refusals {
    fn modify(&self, document: &mut Document) {
        let components = document.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "admin_token",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "An access token of this server with scope `admin` (RFC 6750).",
                    ))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "registration_token",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "The registration access token of RFC 7592 (management), or the \
                         initial access token when the settings require one (registration).",
                    ))
                    .build(),
            ),
        );
        for (path, item) in document.paths.paths.iter_mut() {
            let admin = path.starts_with(MOUNT) && !path.ends_with("/openapi.json");
            let has_path_parameter = path.contains('{');
            for (changes, operation) in operations(item) {
                let has_body = operation.request_body.is_some();
                if admin {
                    add_refusals(operation, has_path_parameter, has_body, changes);
                }
            }
        }
    }
}

/// The operations of a path, each with whether it changes anything (not a GET).
fn operations(
    item: &mut utoipa::openapi::PathItem,
) -> impl Iterator<Item = (bool, &mut Operation)> {
    [
        (false, item.get.as_mut()),
        (true, item.put.as_mut()),
        (true, item.post.as_mut()),
        (true, item.delete.as_mut()),
        (true, item.patch.as_mut()),
    ]
    .into_iter()
    .filter_map(|(changes, operation)| operation.map(|o| (changes, o)))
}

fn add_refusals(
    operation: &mut Operation,
    has_path_parameter: bool,
    has_body: bool,
    changes: bool,
) {
    let mut refusals = vec![
        (
            "400",
            "Bad input; `field` names the parameter or body field at fault.",
        ),
        (
            "401",
            "No bearer token, or not an active access token of this server.",
        ),
        (
            "403",
            "The token lacks scope `admin`, or its person lacks the role `admin`.",
        ),
        (
            "500",
            "An internal error; logged with the request id, never described.",
        ),
        (
            "503",
            "The store is unreachable; retry after the `Retry-After` seconds.",
        ),
    ];
    if has_path_parameter {
        refusals.push(("404", "Nothing by that id or name."));
    }
    if changes {
        // The domain refuses a change the current state does not allow ("already disabled").
        refusals.push(("409", "The change does not apply to the current state."));
    }
    if has_body {
        refusals.push(("408", "The request body did not arrive in time."));
        refusals.push(("413", "The request body is larger than 256 KiB."));
    }
    for (status, description) in refusals {
        let responses = &mut operation.responses.responses;
        if responses.contains_key(status) {
            continue;
        }
        responses.insert(status.to_owned(), error_response(description).into());
    }
    operation.security = Some(vec![utoipa::openapi::security::SecurityRequirement::new(
        "admin_token",
        Vec::<String>::new(),
    )]);
}

fn error_response(description: &str) -> utoipa::openapi::Response {
    ResponseBuilder::new()
        .description(description)
        .content(
            "application/json",
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("ApiErrorBody")))
                .build(),
        )
        .build()
}

/// The document: the admin router's operations with the shared parts above.
pub fn document() -> &'static Document {
    static DOCUMENT: OnceLock<Document> = OnceLock::new();
    DOCUMENT.get_or_init(|| {
        let (_, operations) = super::build();
        let mut document = ApiDoc::openapi().merge_from(operations);
        Refusals.modify(&mut document);
        document
    })
}

/// `GET /admin/api/openapi.json`. Public: it describes the API, and holds nothing of this
/// server's data.
#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "meta",
    responses((status = 200, description = "This OpenAPI 3.1 document", content_type = "application/json")),
)]
pub(super) async fn openapi_json() -> Response {
    axum::Json(document()).into_response()
}
