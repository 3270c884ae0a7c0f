//! Subject tokens from trusted external issuers (RFC 8693 §1: a token "issued by another
//! party"): a JWT signed by an OpenID provider registered for social login with
//! `token_exchange` on, meant for this server, naming a person who has signed in here through
//! that provider (so their identity there is linked to an account here).
//!
//! Trust is two-sided: the provider is trusted for exchange at all (an administrator's
//! choice, recorded on the provider), and each client names the issuers whose tokens it may
//! exchange (`token_exchange_subject_issuers`, decided by the domain's policy). What the new
//! token allows is what the person consents to the requesting client: another issuer's
//! scopes mean nothing here.

use authledger_domain::client::RegisteredClient;
use authledger_domain::grant::{ExternalSubject, Source, SubjectToken, TokenType};
use authledger_domain::social_login::{identity_id, ExternalIdentity, SocialLoginConfig};
use base64::Engine;
use chrono::{DateTime, Utc};
use serde_json::Value;

use super::{consented_scopes, unacceptable, Subject};
use crate::connected_apps::provider::Verification;
use crate::error::AppError;
use crate::oauth::error::TokenError;
use crate::oauth::minting::active_user;
use crate::oauth::Authority;

/// The issuer a JWT names, unverified, when it is not this server: whether the token is to be
/// checked against a trusted issuer's keys rather than looked up here. `None` for opaque
/// tokens and this server's own JWTs.
pub(super) fn foreign_issuer(token: &str, ours: &str) -> Option<String> {
    let mut parts = token.split('.');
    let (Some(_), Some(payload), Some(_), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return None;
    };
    let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    let claims: Value = serde_json::from_slice(&payload).ok()?;
    let issuer = claims.get("iss")?.as_str()?;
    (issuer.trim_end_matches('/') != ours.trim_end_matches('/')).then(|| issuer.to_owned())
}

/// The enabled provider trusted for token exchange whose issuer is `issuer`, as its
/// aggregate says now (the list comes from the views, the decision from the log).
async fn trusted_provider(
    authority: &Authority,
    issuer: &str,
) -> Result<Option<authledger_domain::social_login::RegisteredProvider>, TokenError> {
    let store = &authority.store;
    let rows = authledger_projections::social_logins::SocialLoginsView::list(&store.db)
        .await
        .map_err(AppError::from)?;
    let trusted = |config: &SocialLoginConfig| {
        config.enabled
            && config.token_exchange
            && config.endpoints.issuer.as_deref() == Some(issuer)
    };
    for row in rows {
        let listed = serde_json::from_str::<SocialLoginConfig>(&row.config)
            .ok()
            .filter(|c| trusted(c));
        if listed.is_none() {
            continue;
        }
        let Ok(id) = crate::social_login::parse_id(&row.provider_id) else {
            continue;
        };
        match crate::social_login::load(store, &id).await {
            Ok(provider) if trusted(&provider.config) => return Ok(Some(provider)),
            Ok(_) | Err(AppError::NotFound(_)) => continue,
            Err(other) => return Err(other.into()),
        }
    }
    Ok(None)
}

/// A JWT of a trusted external issuer, as the subject of `client`'s exchange.
pub(super) async fn subject(
    authority: &Authority,
    client: &RegisteredClient,
    token_type: TokenType,
    token: &str,
    issuer: &str,
) -> Result<Subject, TokenError> {
    let provider = trusted_provider(authority, issuer)
        .await?
        .ok_or_else(|| unacceptable("subject_token's issuer is not trusted for token exchange"))?;
    // Meant for this server: issued to it as a client of the provider (an ID token from a
    // sign-in through it), or to it as the audience (RFC 8693 §2.1, RFC 7523 §3).
    let token_endpoint = format!("{}/oauth/token", authority.issuer);
    let audiences = [
        provider.config.client_id.as_str(),
        authority.issuer.as_str(),
        token_endpoint.as_str(),
    ];
    let claims = authority
        .upstream
        .verify_signed(&provider.config.endpoints, &audiences, token)
        .await
        .map_err(|e| match e {
            Verification::Refused(why) => unacceptable(format!("subject_token was refused: {why}")),
            Verification::Failed(error) => {
                tracing::warn!(provider = %provider.id, "a trusted issuer's keys could not be read: {error}");
                unacceptable(format!(
                    "subject_token could not be checked against its issuer's keys: {error}"
                ))
            }
        })?;
    let subject = claims["sub"]
        .as_str()
        .filter(|s| !s.is_empty())
        .ok_or_else(|| unacceptable("subject_token names no subject"))?;
    let expires_at = claims["exp"]
        .as_i64()
        .and_then(|exp| DateTime::from_timestamp(exp, 0))
        .ok_or_else(|| unacceptable("subject_token has no valid exp"))?;
    let identity: ExternalIdentity = authority
        .store
        .identities
        .load(&identity_id(&provider.id, subject))
        .await
        .map_err(AppError::store)?;
    let user = identity.user().cloned().ok_or_else(|| {
        unacceptable(format!(
            "the person subject_token names has no account linked here: they sign in here through {} once",
            provider.config.name
        ))
    })?;
    active_user(authority, &user).await?;
    let scopes = consented_scopes(authority, &client.client_id, &client.metadata, &user)
        .await?
        .ok_or_else(|| unacceptable("the person has not consented to this client"))?;
    let auth_time = claims["auth_time"]
        .as_i64()
        .and_then(|t| DateTime::from_timestamp(t, 0))
        .filter(|t| *t <= Utc::now());
    Ok(Subject {
        token: SubjectToken {
            token_type,
            source: Source::External(ExternalSubject {
                issuer: issuer.to_owned(),
                subject: subject.to_owned(),
            }),
            user: Some(user),
            scopes,
            actors: vec![],
        },
        auth_time,
        amr: vec![],
        expires_at,
    })
}

#[cfg(test)]
mod tests {
    use super::foreign_issuer;

    fn jwt(payload: &str) -> String {
        use base64::Engine;
        let b64 = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
        format!("{}.{}.sig", b64(r#"{"alg":"RS256"}"#), b64(payload))
    }

    #[test]
    fn only_jwts_of_another_issuer_are_foreign() {
        let ours = "https://auth.example";
        assert_eq!(
            foreign_issuer(&jwt(r#"{"iss":"https://idp.example"}"#), ours).as_deref(),
            Some("https://idp.example")
        );
        assert_eq!(
            foreign_issuer(&jwt(r#"{"iss":"https://auth.example/"}"#), ours),
            None
        );
        assert_eq!(foreign_issuer(&jwt(r#"{"sub":"x"}"#), ours), None);
        assert_eq!(foreign_issuer("opaque-token", ours), None);
        assert_eq!(foreign_issuer("a.b.c.d", ours), None);
        assert_eq!(foreign_issuer("a.!!!.c", ours), None);
    }
}
