//! Operations an operator performs on clients, users, consents, grants and resources. The CLI and the
//! admin API call the same functions: input arrives as plain strings, is parsed here (errors
//! name the field), and becomes one command whose events carry the caller's metadata.

pub mod clients;
pub mod grants;
pub mod resources;
pub mod settings;
pub mod transfer;
pub mod usage;
pub mod users;

/// The event type `raw` names, whatever its case (`loginfailed` is `LoginFailed`); a name
/// no event has is refused with the list, rather than matching nothing.
pub fn event_type(raw: &str) -> Result<String, crate::error::AppError> {
    let all = authledger_domain::event_types();
    all.iter()
        .find(|t| t.eq_ignore_ascii_case(raw.trim()))
        .map(|t| t.to_string())
        .ok_or_else(|| {
            crate::error::AppError::invalid_field(
                "type",
                format!(
                    "no event type is named `{raw}`; the types are {}",
                    all.join(", ")
                ),
            )
        })
}

/// Largest page a list operation returns.
pub const MAX_PAGE: i64 = 500;
