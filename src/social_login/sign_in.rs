//! Turning what a provider said about a person into a local account: the linked one, one
//! found by a verified email, or a new one (see the module documentation in `mod.rs`).

use authledger_domain::connected_app::AppId;
use authledger_domain::metadata::EventMetadata;
use authledger_domain::social_login::{
    identity_id, ExternalIdentity, Identification, IdentityCommand, IdentityError,
    RegisteredProvider, SignUps,
};
use authledger_domain::user::Username;
use cqrs_es::AggregateError;
use serde_json::Value;

use crate::admin::users::UserInput;
use crate::connected_apps::provider::ProviderClient;
use crate::error::AppError;
use crate::master_key::MasterKey;
use crate::store::Store;

use super::secret;

/// Who the provider says signed in.
struct Vouched {
    subject: String,
    email: Option<String>,
    email_verified: bool,
    name: Option<String>,
    given_name: Option<String>,
    family_name: Option<String>,
    preferred_username: Option<String>,
}

/// The outcome of a provider's answer.
pub enum Outcome {
    /// This local person signed in.
    Person(Username),
    /// Nobody here, and sign-ups are denied.
    NoAccount,
}

/// What a callback needs from the request that began the sign-in.
pub struct Answer<'a> {
    pub code: &'a str,
    pub verifier: &'a str,
    pub nonce: &'a str,
    pub redirect_uri: &'a str,
}

fn string_at(value: &Value, key: &str) -> Option<String> {
    match value.get(key)? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Exchanges the code, finds out who signed in, and finds, links or creates their account.
pub async fn complete(
    store: &Store,
    master: &MasterKey,
    client: &ProviderClient,
    provider: &RegisteredProvider,
    answer: Answer<'_>,
    metadata: &EventMetadata,
) -> Result<Outcome, AppError> {
    let config = &provider.config;
    let secret = secret(store, master, &provider.id).await?;
    let tokens = client
        .token(
            &config.endpoints.token,
            &config.client_id,
            &secret,
            &[
                ("grant_type", "authorization_code"),
                ("code", answer.code),
                ("redirect_uri", answer.redirect_uri),
                ("code_verifier", answer.verifier),
            ],
        )
        .await?;
    let vouched = match &config.identification {
        Identification::OpenId => {
            let id_token = tokens.id_token.as_deref().ok_or_else(|| {
                AppError::Upstream("the provider answered without an ID token".into())
            })?;
            let claims = client
                .verify_id_token(&config.endpoints, &config.client_id, id_token, answer.nonce)
                .await?;
            Vouched {
                subject: claims.sub,
                email: claims.email,
                email_verified: claims.email_verified == Some(true),
                name: claims.name,
                given_name: claims.given_name,
                family_name: claims.family_name,
                preferred_username: claims.preferred_username,
            }
        }
        Identification::UserInfo { property } => {
            let endpoint = config.endpoints.userinfo.as_ref().ok_or_else(|| {
                AppError::Conflict("the provider has no user-info endpoint configured".into())
            })?;
            let info = client.user_info(endpoint, &tokens.access_token).await?;
            let subject = string_at(&info, property).ok_or_else(|| {
                AppError::Upstream(format!("the user-info answer has no `{property}`"))
            })?;
            Vouched {
                subject,
                email: string_at(&info, "email"),
                email_verified: info.get("email_verified") == Some(&Value::Bool(true)),
                name: string_at(&info, "name"),
                given_name: string_at(&info, "given_name"),
                family_name: string_at(&info, "family_name"),
                preferred_username: string_at(&info, "preferred_username")
                    .or_else(|| string_at(&info, "login")),
            }
        }
    };
    let key = identity_id(&provider.id, &vouched.subject);
    let identity: ExternalIdentity = store.identities.load(&key).await.map_err(AppError::store)?;
    if let Some(user) = identity.user() {
        return Ok(Outcome::Person(user.clone()));
    }
    let verified = vouched.email_verified || config.trusted_emails;
    let email = vouched.email.clone().filter(|_| verified);
    let existing = match &email {
        Some(email) => {
            authledger_projections::users::UsersView::by_email(store.current_views().await?, email)
                .await?
        }
        None => vec![],
    };
    let user = match existing.as_slice() {
        // Exactly one person has that verified address: it is theirs.
        [one] => crate::admin::users::parse_username(one)?,
        _ if config.sign_ups == SignUps::Deny => return Ok(Outcome::NoAccount),
        _ => sign_up(store, &provider.id, &vouched, email, metadata).await?,
    };
    let command = IdentityCommand::Link {
        provider: provider.id.clone(),
        subject: vouched.subject.clone(),
        user: user.clone(),
    };
    match store.identities.execute(&key, command, metadata).await {
        Ok(_) => Ok(Outcome::Person(user)),
        Err(AggregateError::UserError(IdentityError::BadSubject)) => Err(AppError::Upstream(
            "the provider's subject for this person is empty, too long or not printable".into(),
        )),
        // Linked a moment ago by a sign-in racing this one: whoever won is who this is.
        Err(AggregateError::UserError(IdentityError::LinkedElsewhere)) => {
            let identity: ExternalIdentity =
                store.identities.load(&key).await.map_err(AppError::store)?;
            identity
                .user()
                .cloned()
                .map(Outcome::Person)
                .ok_or_else(|| AppError::Conflict("the identity's link changed; try again".into()))
        }
        Err(other) => Err(AppError::store(other)),
    }
}

/// A new account from the provider's claims: its username from the person's preferred name
/// or email (a number appended when taken), a password nobody knows (an administrator can
/// set one), and the email only when verified.
async fn sign_up(
    store: &Store,
    provider: &AppId,
    vouched: &Vouched,
    email: Option<String>,
    metadata: &EventMetadata,
) -> Result<Username, AppError> {
    let cleaned = |raw: &str| -> String {
        raw.to_ascii_lowercase()
            .chars()
            .filter(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-@+".contains(*c))
            .take(48)
            .collect()
    };
    let base = vouched
        .preferred_username
        .as_deref()
        .map(cleaned)
        .or_else(|| {
            email
                .as_deref()
                .and_then(|e| e.split('@').next())
                .map(cleaned)
        })
        .filter(|b| !b.is_empty())
        .unwrap_or_else(|| format!("{provider}-{}", cleaned(&vouched.subject)));
    let password = crate::secrets::mint("").reveal().to_owned();
    for attempt in 0..20 {
        let candidate = if attempt == 0 {
            base.clone()
        } else {
            format!("{base}-{}", attempt + 1)
        };
        let input = UserInput {
            username: candidate,
            password: password.clone(),
            email: email.clone(),
            name: vouched.name.clone(),
            given_name: vouched.given_name.clone(),
            family_name: vouched.family_name.clone(),
            picture: None,
            roles: vec![],
        };
        match crate::admin::users::create(store, input, metadata).await {
            Ok(user) => return crate::admin::users::parse_username(&user.username),
            Err(AppError::Conflict(_)) => continue,
            Err(AppError::Invalid { .. }) => {
                // A claim the profile refuses (an unparsable email, a name with a line
                // break): the account is made without the claims.
                let input = UserInput {
                    username: format!("{provider}-{}", uuid::Uuid::new_v4().simple()),
                    password: password.clone(),
                    ..UserInput::default()
                };
                let user = crate::admin::users::create(store, input, metadata).await?;
                return crate::admin::users::parse_username(&user.username);
            }
            Err(other) => return Err(other),
        }
    }
    Err(AppError::Conflict(
        "no free username could be made from the provider's claims".into(),
    ))
}
