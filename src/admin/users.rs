use std::collections::BTreeSet;

use authledger_domain::metadata::EventMetadata;
use authledger_domain::oauth::WebUrl;
use authledger_domain::secret::Password;
use authledger_domain::user::{Email, Role, UserCommand, UserError, UserProfile, Username};
use authledger_projections::users::{UserSummary, UsersView};

use crate::error::{user_error, AppError};
use crate::store::Store;

/// A new user as an operator writes it.
#[derive(Default)]
pub struct UserInput {
    pub username: String,
    pub password: String,
    pub email: Option<String>,
    pub name: Option<String>,
    pub given_name: Option<String>,
    pub family_name: Option<String>,
    pub picture: Option<String>,
    pub roles: Vec<String>,
}

impl std::fmt::Debug for UserInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserInput")
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

pub fn parse_username(raw: &str) -> Result<Username, AppError> {
    Username::parse(raw).map_err(AppError::from)
}

pub fn parse_roles(raw: &[String]) -> Result<BTreeSet<Role>, AppError> {
    raw.iter()
        .map(|r| Role::parse(r).map_err(AppError::from))
        .collect()
}

fn parse_password(raw: &str) -> Result<Password, AppError> {
    Password::parse(raw).map_err(|e| AppError::invalid_field("password", e))
}

pub async fn create(
    store: &Store,
    input: UserInput,
    metadata: &EventMetadata,
) -> Result<UserSummary, AppError> {
    let username = parse_username(&input.username)?;
    let profile = parse_profile(input.profile())?;
    let command = UserCommand::Register {
        username: username.clone(),
        password: parse_password(&input.password)?,
        profile,
        roles: parse_roles(&input.roles)?,
    };
    execute(store, &username, command, metadata).await?;
    show(store, username.as_str()).await
}

/// Registers a person moved from another store with the password hash they had there
/// (`import --with-secrets`). The hash must be an argon2 PHC string, as this server makes.
pub async fn import(
    store: &Store,
    input: UserInput,
    password_hash: &str,
    metadata: &EventMetadata,
) -> Result<UserSummary, AppError> {
    let username = parse_username(&input.username)?;
    let parsed = argon2::PasswordHash::new(password_hash).ok();
    if !parsed.is_some_and(|h| h.algorithm.as_str().starts_with("argon2")) {
        return Err(AppError::invalid_field(
            "password_hash",
            format!("user {username}: password_hash: not an argon2 PHC string"),
        ));
    }
    let profile = parse_profile(input.profile())?;
    let command = UserCommand::Import {
        username: username.clone(),
        password_hash: authledger_domain::secret::PasswordHash::new_unchecked(
            password_hash.to_owned(),
        ),
        profile,
        roles: parse_roles(&input.roles)?,
    };
    execute(store, &username, command, metadata).await?;
    show(store, username.as_str()).await
}

impl UserInput {
    fn profile(&self) -> ProfileInput {
        ProfileInput {
            email: self.email.clone(),
            name: self.name.clone(),
            given_name: self.given_name.clone(),
            family_name: self.family_name.clone(),
            picture: self.picture.clone(),
        }
    }
}

/// A person's profile claims as typed; an empty value clears the claim.
#[derive(Debug, Default, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProfileInput {
    pub email: Option<String>,
    pub name: Option<String>,
    pub given_name: Option<String>,
    pub family_name: Option<String>,
    pub picture: Option<String>,
}

pub fn parse_profile(input: ProfileInput) -> Result<UserProfile, AppError> {
    let text = |v: Option<String>| v.map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
    let profile = UserProfile {
        email: text(input.email).as_deref().map(Email::parse).transpose()?,
        name: text(input.name),
        given_name: text(input.given_name),
        family_name: text(input.family_name),
        picture: text(input.picture)
            .as_deref()
            .map(|raw| {
                WebUrl::parse(raw)
                    .map_err(|e| AppError::invalid_field("picture", format!("picture: {e}")))
            })
            .transpose()?,
    };
    profile.check()?;
    Ok(profile)
}

/// Replaces a person's profile claims (what ID tokens and userinfo say of them).
pub async fn update_profile(
    store: &Store,
    username: &str,
    input: ProfileInput,
    metadata: &EventMetadata,
) -> Result<UserSummary, AppError> {
    let username = parse_username(username)?;
    let command = UserCommand::UpdateProfile {
        profile: parse_profile(input)?,
    };
    execute(store, &username, command, metadata).await?;
    show(store, username.as_str()).await
}

pub async fn set_roles(
    store: &Store,
    username: &str,
    roles: &[String],
    metadata: &EventMetadata,
) -> Result<UserSummary, AppError> {
    let username = parse_username(username)?;
    let command = UserCommand::SetRoles {
        roles: parse_roles(roles)?,
    };
    execute(store, &username, command, metadata).await?;
    show(store, username.as_str()).await
}

pub async fn set_password(
    store: &Store,
    username: &str,
    password: &str,
    metadata: &EventMetadata,
) -> Result<(), AppError> {
    let username = parse_username(username)?;
    let command = UserCommand::ChangePassword {
        password: parse_password(password)?,
    };
    execute(store, &username, command, metadata).await
}

pub async fn disable(
    store: &Store,
    username: &str,
    metadata: &EventMetadata,
) -> Result<UserSummary, AppError> {
    let username = parse_username(username)?;
    execute(store, &username, UserCommand::Disable, metadata).await?;
    crate::cascade::run(store).await?;
    show(store, username.as_str()).await
}

/// Turns a person's two-factor sign-in off (a lost phone and no recovery code): their
/// password alone signs them in until they set it up again.
pub async fn reset_two_factor(
    store: &Store,
    username: &str,
    metadata: &EventMetadata,
) -> Result<UserSummary, AppError> {
    let username = parse_username(username)?;
    let command = UserCommand::RemoveTwoFactor {
        reason: authledger_domain::user::TwoFactorRemoval::Reset,
    };
    execute(store, &username, command, metadata).await?;
    crate::vault::forget_totp_secret(&store.db, username.as_str())
        .await
        .map_err(|e| AppError::Internal(anyhow::Error::new(e)))?;
    show(store, username.as_str()).await
}

/// What erasing a person did.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct Erased {
    pub username: String,
    /// False when an earlier erasure was recorded and this one only finished its work.
    pub recorded: bool,
    pub erased_at: Option<String>,
}

/// Erases a person's data (GDPR art. 17) by crypto-shredding: records `UserErased` (actor,
/// reason), then destroys their key, so the profile, IP addresses and user agents sealed in
/// their events open for no one while every event keeps its place and digest; removes their
/// password hashes and TOTP secret; clears what the views held of them. The account stays,
/// disabled, under its username. Running it again finishes an erasure that was interrupted.
pub async fn erase(
    store: &Store,
    username: &str,
    reason: Option<String>,
    metadata: &EventMetadata,
) -> Result<Erased, AppError> {
    let username = parse_username(username)?;
    let erase = UserCommand::Erase { reason };
    let recorded = match store
        .users
        .execute(username.as_str(), erase, metadata)
        .await
    {
        Ok(_) => true,
        // Recorded before; the rest below is what may not have happened.
        Err(cqrs_es::AggregateError::UserError(UserError::Erased)) => false,
        Err(other) => return Err(user_error(username.as_str(), other)),
    };
    // Identities at other providers stop signing anyone in as this account.
    for identity in crate::social_login::identities(store, username.as_str()).await? {
        let unlinked = crate::social_login::unlink(
            store,
            &identity.provider_id,
            username.as_str(),
            Some(&identity.subject),
            metadata,
        )
        .await;
        match unlinked {
            Ok(_) | Err(AppError::NotFound(_)) => {}
            Err(other) => return Err(other),
        }
    }
    let internal = |e: sqlx::Error| AppError::Internal(e.into());
    store
        .destroy_person_key(username.as_str())
        .await
        .map_err(internal)?;
    crate::credentials::forget(&store.db, &username)
        .await
        .map_err(internal)?;
    crate::vault::forget_totp_secret(&store.db, username.as_str())
        .await
        .map_err(|e| AppError::Internal(anyhow::Error::new(e)))?;
    // Events projected between the erasure and the key's end may have put some back.
    authledger_projections::personal::scrub_views(&store.db, username.as_str())
        .await
        .map_err(internal)?;
    crate::cascade::run(store).await?;
    authledger_projections::db::purge_freed_pages(&store.db)
        .await
        .map_err(internal)?;
    let erased_at = show(store, username.as_str()).await?.erased_at;
    Ok(Erased {
        username: username.to_string(),
        recorded,
        erased_at,
    })
}

pub async fn enable(
    store: &Store,
    username: &str,
    metadata: &EventMetadata,
) -> Result<UserSummary, AppError> {
    let username = parse_username(username)?;
    execute(store, &username, UserCommand::Enable, metadata).await?;
    show(store, username.as_str()).await
}

pub async fn show(store: &Store, username: &str) -> Result<UserSummary, AppError> {
    let username = parse_username(username)?;
    UsersView::get(&store.db, username.as_str())
        .await?
        .ok_or_else(|| AppError::NotFound(format!("user {username}: user does not exist")))
}

pub async fn list(
    store: &Store,
    after: Option<&str>,
    limit: i64,
) -> Result<Vec<UserSummary>, AppError> {
    Ok(UsersView::list(&store.db, after, limit.clamp(1, super::MAX_PAGE)).await?)
}

async fn execute(
    store: &Store,
    username: &Username,
    command: UserCommand,
    metadata: &EventMetadata,
) -> Result<(), AppError> {
    store
        .users
        .execute(username.as_str(), command, metadata)
        .await
        .map(drop)
        .map_err(|e| user_error(username.as_str(), e))
}
