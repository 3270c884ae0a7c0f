//! Token exchange (RFC 8693) with delegation. A client presents a token this server issued, or
//! a JWT of an issuer trusted for it (the subject token) and, to act for its subject rather
//! than as it, a token of the party that acts (the actor token); it gets a new grant whose
//! access token speaks for the same subject.
//!
//! - Impersonation (no actor) and delegation (an actor, `act` in the token) are two distinct
//!   records; a token that was itself delegated keeps its actors when exchanged again, so no
//!   exchange can launder a delegation away.
//! - The requesting client's registration is the policy: whose tokens it may exchange (its own
//!   always; other clients' and other issuers' when it names them) and which clients' tokens may act in its exchanges (RFC 8693 §4.4's `may_act`, the
//!   client itself always). Scopes only narrow: to the subject token's, and to the client's.
//! - The new grant records the subject's grant and the whole chain of actors, so revoking the
//!   source revokes what was exchanged from it, and the audit answers "everything agent X did
//!   for user Y".

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::oauth::Scopes;
use crate::user::Username;

/// RFC 8693 §3: the token types this server takes as a subject (and issues: access tokens).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum TokenType {
    #[serde(rename = "urn:ietf:params:oauth:token-type:access_token")]
    AccessToken,
    #[serde(rename = "urn:ietf:params:oauth:token-type:id_token")]
    IdToken,
    /// A JWT (RFC 8693 §3): taken from trusted external issuers only.
    #[serde(rename = "urn:ietf:params:oauth:token-type:jwt")]
    Jwt,
}

impl TokenType {
    pub fn as_str(self) -> &'static str {
        match self {
            TokenType::AccessToken => "urn:ietf:params:oauth:token-type:access_token",
            TokenType::IdToken => "urn:ietf:params:oauth:token-type:id_token",
            TokenType::Jwt => "urn:ietf:params:oauth:token-type:jwt",
        }
    }

    pub fn parse(raw: &str) -> Option<TokenType> {
        [TokenType::AccessToken, TokenType::IdToken, TokenType::Jwt]
            .into_iter()
            .find(|t| t.as_str() == raw)
    }
}

/// One party acting for the subject (RFC 8693 §4.1 `act`), as its actor token showed it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    /// The client the actor token was issued to.
    pub client_id: String,
    /// The person, when the actor token is a person's; `None` when a client acts for itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<Username>,
    /// The actor token's grant.
    pub grant_id: String,
}

impl Actor {
    /// Its `sub`, as the tokens of this server name subjects: the person, else the client.
    pub fn subject(&self) -> &str {
        self.user.as_ref().map_or(&self.client_id, |u| u.as_str())
    }
}

/// A person as a trusted external issuer names them: its `iss` and their `sub` there.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExternalSubject {
    pub issuer: String,
    pub subject: String,
}

/// Where a subject token came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// This server issued it to `client_id`; `grant_id` for an access token (an ID token names
    /// no grant).
    Issued {
        client_id: String,
        grant_id: Option<String>,
    },
    /// An issuer trusted for token exchange signed it; the person it names there is linked to
    /// an account here.
    External(ExternalSubject),
}

/// What a token exchange issued its token from: recorded on the new grant's first event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Exchange {
    pub subject_token_type: TokenType,
    /// The subject token's grant: revoking it revokes this one. `None` for an ID token, which
    /// names no grant, and for an external issuer's token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_grant: Option<String>,
    /// The client the subject token was issued to, when this server issued it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_client: Option<String>,
    /// The issuer and subject of an external issuer's token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_subject: Option<ExternalSubject>,
    /// Who acts for the subject: the current actor first, the earliest last (the order in
    /// which `act` nests them). Empty when the client impersonates the subject.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub actors: Vec<Actor>,
}

impl Exchange {
    /// The `act` claim (RFC 8693 §4.1): the current actor, the one before it nested inside,
    /// and so on. `None` under impersonation.
    pub fn act_claim(&self) -> Option<Value> {
        self.actors.iter().rev().fold(None, |inner, actor| {
            let mut claim = json!({ "sub": actor.subject(), "client_id": actor.client_id });
            if let Some(inner) = inner {
                claim["act"] = inner;
            }
            Some(claim)
        })
    }

    /// The client acting now, if anyone acts.
    pub fn acting_client(&self) -> Option<&str> {
        self.actors.first().map(|a| a.client_id.as_str())
    }
}

/// The subject token, as the server found it: active and issued here, or verified against a
/// trusted issuer's keys.
#[derive(Debug, Clone, PartialEq)]
pub struct SubjectToken {
    pub token_type: TokenType,
    pub source: Source,
    /// The person it speaks for; `None` for a client's own (client credentials) token.
    pub user: Option<Username>,
    /// What it allows: an access token's scopes; for an ID token, what the person has
    /// consented to its client; for an external token, what the person has consented to the
    /// requesting client (another issuer's scopes mean nothing here).
    pub scopes: Scopes,
    /// The actors already acting in it (a token that was itself exchanged).
    pub actors: Vec<Actor>,
}

/// The requesting client's registration, as far as token exchange goes.
#[derive(Debug, Clone, Copy)]
pub struct ExchangePolicy<'a> {
    pub client_id: &'a str,
    pub registered_scopes: &'a Scopes,
    /// Clients whose tokens it may present as the subject (its own always).
    pub subject_clients: &'a BTreeSet<String>,
    /// External issuers whose tokens it may present as the subject.
    pub subject_issuers: &'a BTreeSet<String>,
    /// Clients whose tokens may act in its exchanges (itself always).
    pub actor_clients: &'a BTreeSet<String>,
}

/// Longer delegation chains are refused: each hop is recorded and nested in every token.
pub const MAX_ACTORS: usize = 5;

/// Why an exchange was refused, with the RFC's error code for each kind.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExchangeRefused {
    /// RFC 8693 §2.2.2: a subject or actor token unacceptable by policy is `invalid_request`.
    #[error("{0}")]
    Token(String),
    /// RFC 6749 §5.2 `invalid_scope`.
    #[error("{0}")]
    Scope(String),
}

impl ExchangePolicy<'_> {
    /// Decides an exchange: the scopes the new token gets and what the grant records.
    pub fn decide(
        &self,
        subject: SubjectToken,
        actor: Option<Actor>,
        requested: Option<&Scopes>,
    ) -> Result<(Scopes, Exchange), ExchangeRefused> {
        match &subject.source {
            Source::Issued { client_id, .. } => {
                let own = client_id == self.client_id;
                if !own && !self.subject_clients.contains(client_id) {
                    return Err(ExchangeRefused::Token(format!(
                        "this client may not exchange tokens issued to client `{client_id}`"
                    )));
                }
                if subject.user.is_none() && !own {
                    return Err(ExchangeRefused::Token(
                        "a client's own token (client credentials) can be exchanged only by that client"
                            .into(),
                    ));
                }
            }
            Source::External(external) => {
                if !self.subject_issuers.contains(&external.issuer) {
                    return Err(ExchangeRefused::Token(format!(
                        "this client may not exchange tokens issued by `{}`",
                        external.issuer
                    )));
                }
                if subject.user.is_none() {
                    return Err(ExchangeRefused::Token(
                        "an external issuer's token must name a person with an account here".into(),
                    ));
                }
            }
        }
        if let Some(actor) = &actor {
            if actor.client_id != self.client_id && !self.actor_clients.contains(&actor.client_id) {
                return Err(ExchangeRefused::Token(format!(
                    "client `{}` may not act in this client's exchanges (may_act)",
                    actor.client_id
                )));
            }
        }
        let actors: Vec<Actor> = actor.into_iter().chain(subject.actors).collect();
        if actors.len() > MAX_ACTORS {
            return Err(ExchangeRefused::Token(format!(
                "the delegation chain would have more than {MAX_ACTORS} actors"
            )));
        }
        let scopes = match requested.filter(|s| !s.is_empty()) {
            Some(asked) if !asked.is_subset_of(&subject.scopes) => {
                return Err(ExchangeRefused::Scope(
                    "the requested scope exceeds the subject token's scope".into(),
                ))
            }
            Some(asked) if !asked.is_subset_of(self.registered_scopes) => {
                return Err(ExchangeRefused::Scope(
                    "the requested scope exceeds the scope registered for the client".into(),
                ))
            }
            Some(asked) => asked.clone(),
            None => subject.scopes.intersection(self.registered_scopes),
        };
        if scopes.is_empty() {
            return Err(ExchangeRefused::Scope(
                "the subject token's scope and the client's registered scope have nothing in common"
                    .into(),
            ));
        }
        let (source_grant, source_client, external_subject) = match subject.source {
            Source::Issued {
                client_id,
                grant_id,
            } => (grant_id, Some(client_id), None),
            Source::External(external) => (None, None, Some(external)),
        };
        let exchange = Exchange {
            subject_token_type: subject.token_type,
            source_grant,
            source_client,
            external_subject,
            actors,
        };
        Ok((scopes, exchange))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scopes(raw: &str) -> Scopes {
        Scopes::parse(raw).unwrap()
    }

    fn alice_token(client: &str, scope: &str) -> SubjectToken {
        SubjectToken {
            token_type: TokenType::AccessToken,
            source: Source::Issued {
                client_id: client.into(),
                grant_id: Some("g-alice".into()),
            },
            user: Some(Username::parse("alice").unwrap()),
            scopes: scopes(scope),
            actors: vec![],
        }
    }

    fn agent(client: &str, grant: &str) -> Actor {
        Actor {
            client_id: client.into(),
            user: None,
            grant_id: grant.into(),
        }
    }

    struct Registration {
        scopes: Scopes,
        subjects: BTreeSet<String>,
        issuers: BTreeSet<String>,
        actors: BTreeSet<String>,
    }

    impl Registration {
        fn new(scope: &str, subjects: &[&str], actors: &[&str]) -> Registration {
            let set = |items: &[&str]| items.iter().map(|s| s.to_string()).collect();
            Registration {
                scopes: scopes(scope),
                subjects: set(subjects),
                issuers: set(&["https://idp.example"]),
                actors: set(actors),
            }
        }
        fn policy(&self) -> ExchangePolicy<'_> {
            ExchangePolicy {
                client_id: "gateway",
                registered_scopes: &self.scopes,
                subject_clients: &self.subjects,
                subject_issuers: &self.issuers,
                actor_clients: &self.actors,
            }
        }
    }

    #[test]
    fn a_client_exchanges_its_own_token_narrowing_the_scope() {
        let reg = Registration::new("read write", &[], &[]);
        let (granted, exchange) = reg
            .policy()
            .decide(
                alice_token("gateway", "read write"),
                None,
                Some(&scopes("read")),
            )
            .unwrap();
        assert_eq!(granted, scopes("read"));
        assert_eq!(exchange.source_grant.as_deref(), Some("g-alice"));
        assert!(exchange.actors.is_empty(), "impersonation: no actor");
        assert_eq!(exchange.act_claim(), None);
    }

    #[test]
    fn scopes_only_narrow() {
        let reg = Registration::new("read write admin", &[], &[]);
        let wider = reg.policy().decide(
            alice_token("gateway", "read"),
            None,
            Some(&scopes("read write")),
        );
        assert!(matches!(wider, Err(ExchangeRefused::Scope(_))));
        let narrow_reg = Registration::new("read", &[], &[]);
        let beyond_registration = narrow_reg.policy().decide(
            alice_token("gateway", "read write"),
            None,
            Some(&scopes("write")),
        );
        assert!(matches!(
            beyond_registration,
            Err(ExchangeRefused::Scope(_))
        ));
        let (default, _) = narrow_reg
            .policy()
            .decide(alice_token("gateway", "read write"), None, None)
            .unwrap();
        assert_eq!(default, scopes("read"), "the intersection by default");
    }

    #[test]
    fn other_clients_tokens_need_the_registration() {
        let closed = Registration::new("read", &[], &[]);
        assert!(matches!(
            closed
                .policy()
                .decide(alice_token("chat", "read"), None, None),
            Err(ExchangeRefused::Token(_))
        ));
        let open = Registration::new("read", &["chat"], &[]);
        assert!(open
            .policy()
            .decide(alice_token("chat", "read"), None, None)
            .is_ok());
    }

    #[test]
    fn only_the_client_may_exchange_its_own_client_credentials_token() {
        let reg = Registration::new("read", &["batch"], &[]);
        let batch_token = SubjectToken {
            user: None,
            ..alice_token("batch", "read")
        };
        assert!(matches!(
            reg.policy().decide(batch_token, None, None),
            Err(ExchangeRefused::Token(_))
        ));
    }

    #[test]
    fn actors_need_may_act_and_nest_most_recent_first() {
        let reg = Registration::new("read", &["chat"], &["agent-x"]);
        let refused = reg.policy().decide(
            alice_token("chat", "read"),
            Some(agent("stranger", "g-s")),
            None,
        );
        assert!(matches!(refused, Err(ExchangeRefused::Token(_))));

        let delegated = SubjectToken {
            actors: vec![agent("agent-w", "g-w")],
            ..alice_token("chat", "read")
        };
        let (_, exchange) = reg
            .policy()
            .decide(delegated, Some(agent("agent-x", "g-x")), None)
            .unwrap();
        assert_eq!(exchange.acting_client(), Some("agent-x"));
        assert_eq!(
            exchange.act_claim().unwrap(),
            json!({"sub": "agent-x", "client_id": "agent-x",
                   "act": {"sub": "agent-w", "client_id": "agent-w"}})
        );
    }

    #[test]
    fn the_client_itself_may_always_act_and_chains_are_bounded() {
        let reg = Registration::new("read", &["chat"], &[]);
        let (_, exchange) = reg
            .policy()
            .decide(
                alice_token("chat", "read"),
                Some(agent("gateway", "g-own")),
                None,
            )
            .unwrap();
        assert_eq!(exchange.actors.len(), 1);
        let long = SubjectToken {
            actors: (0..MAX_ACTORS)
                .map(|i| agent("gateway", &format!("g{i}")))
                .collect(),
            ..alice_token("chat", "read")
        };
        assert!(matches!(
            reg.policy()
                .decide(long, Some(agent("gateway", "g-last")), None),
            Err(ExchangeRefused::Token(_))
        ));
    }

    #[test]
    fn an_impersonating_exchange_keeps_the_actors_already_there() {
        let reg = Registration::new("read", &["chat"], &[]);
        let delegated = SubjectToken {
            actors: vec![agent("agent-w", "g-w")],
            ..alice_token("chat", "read")
        };
        let (_, exchange) = reg.policy().decide(delegated, None, None).unwrap();
        assert_eq!(exchange.acting_client(), Some("agent-w"));
    }

    fn external(issuer: &str) -> SubjectToken {
        SubjectToken {
            token_type: TokenType::Jwt,
            source: Source::External(ExternalSubject {
                issuer: issuer.into(),
                subject: "a-123".into(),
            }),
            ..alice_token("unused", "read")
        }
    }

    #[test]
    fn an_external_issuers_token_needs_the_issuer_named_and_records_it() {
        let reg = Registration::new("read", &[], &[]);
        assert!(matches!(
            reg.policy()
                .decide(external("https://other.example"), None, None),
            Err(ExchangeRefused::Token(_))
        ));
        let nobody = SubjectToken {
            user: None,
            ..external("https://idp.example")
        };
        assert!(matches!(
            reg.policy().decide(nobody, None, None),
            Err(ExchangeRefused::Token(_))
        ));
        let (scopes, exchange) = reg
            .policy()
            .decide(
                external("https://idp.example"),
                Some(agent("gateway", "g")),
                None,
            )
            .unwrap();
        assert_eq!(scopes.to_string(), "read");
        assert_eq!(exchange.source_grant, None);
        assert_eq!(exchange.source_client, None);
        assert_eq!(
            exchange.external_subject,
            Some(ExternalSubject {
                issuer: "https://idp.example".into(),
                subject: "a-123".into()
            })
        );
    }

    #[test]
    fn exchanges_recorded_before_external_issuers_still_read() {
        let old = json!({
            "subject_token_type": "urn:ietf:params:oauth:token-type:access_token",
            "source_grant": "g1",
            "source_client": "chat",
        });
        let exchange: Exchange = serde_json::from_value(old).unwrap();
        assert_eq!(exchange.source_client.as_deref(), Some("chat"));
        assert_eq!(exchange.external_subject, None);
    }

    #[test]
    fn token_types_read_their_urns() {
        for t in [TokenType::AccessToken, TokenType::IdToken, TokenType::Jwt] {
            assert_eq!(TokenType::parse(t.as_str()), Some(t));
        }
        assert_eq!(
            TokenType::parse("urn:ietf:params:oauth:token-type:saml2"),
            None
        );
    }
}
