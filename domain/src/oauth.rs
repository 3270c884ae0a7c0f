//! Parsed OAuth 2 values. Each `parse` is the one place its rule is checked (parse, don't
//! validate): a `RedirectUri` or `Scopes` value that exists is valid.

use std::collections::BTreeSet;
use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use url::{Host, Url};

/// A registered redirection endpoint (RFC 6749 §3.1.2).
///
/// Kept as the exact string it was registered with: the authorization endpoint compares
/// redirect URIs by exact string match (RFC 9700 §4.1.3), so no normalisation may change it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct RedirectUri(String);

#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum RedirectUriRejected {
    #[error("must be an absolute URI (RFC 6749 §3.1.2)")]
    NotAbsolute,
    #[error("must not contain a fragment (RFC 6749 §3.1.2)")]
    HasFragment,
    #[error("http is only allowed for loopback hosts (RFC 8252 §7.3); use https")]
    PlainHttpToRemoteHost,
    #[error("scheme `{0}` cannot carry an authorization response")]
    ForbiddenScheme(String),
    #[error(
        "a private-use scheme must be a reverse domain name such as com.example.app (RFC 8252 §7.1)"
    )]
    PrivateSchemeNotReverseDomain,
    #[error("must not contain user credentials")]
    HasCredentials,
}

impl RedirectUri {
    pub fn parse(raw: &str) -> Result<Self, RedirectUriRejected> {
        let url = Url::parse(raw).map_err(|_| RedirectUriRejected::NotAbsolute)?;
        if raw.contains('#') {
            return Err(RedirectUriRejected::HasFragment);
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(RedirectUriRejected::HasCredentials);
        }
        match url.scheme() {
            "https" => {}
            "http" if is_loopback(&url) => {}
            "http" => return Err(RedirectUriRejected::PlainHttpToRemoteHost),
            scheme @ ("javascript" | "data" | "file" | "vbscript" | "blob" | "about" | "ftp"
            | "ws" | "wss") => return Err(RedirectUriRejected::ForbiddenScheme(scheme.into())),
            scheme if !scheme.contains('.') => {
                return Err(RedirectUriRejected::PrivateSchemeNotReverseDomain)
            }
            _ => {}
        }
        Ok(RedirectUri(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether this is an `http` URI on a loopback address: a native app's redirect, whose
    /// port may vary at authorization time (RFC 8252 §7.3).
    pub fn is_loopback(&self) -> bool {
        Url::parse(&self.0)
            .map(|url| url.scheme() == "http" && is_loopback(&url))
            .unwrap_or(false)
    }
}

fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(Host::Domain(domain)) => domain.eq_ignore_ascii_case("localhost"),
        Some(Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
        Some(Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
        None => false,
    }
}

impl TryFrom<String> for RedirectUri {
    type Error = RedirectUriRejected;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        RedirectUri::parse(&value)
    }
}

impl From<RedirectUri> for String {
    fn from(value: RedirectUri) -> Self {
        value.0
    }
}

impl fmt::Display for RedirectUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An absolute `http(s)` URL shown to people (client, logo, terms and policy pages).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct WebUrl(String);

#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[error("must be an absolute http or https URL")]
pub struct WebUrlRejected;

impl WebUrl {
    pub fn parse(raw: &str) -> Result<Self, WebUrlRejected> {
        match Url::parse(raw) {
            Ok(url) if matches!(url.scheme(), "http" | "https") => Ok(WebUrl(raw.to_owned())),
            _ => Err(WebUrlRejected),
        }
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for WebUrl {
    type Error = WebUrlRejected;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        WebUrl::parse(&value)
    }
}

impl From<WebUrl> for String {
    fn from(value: WebUrl) -> Self {
        value.0
    }
}

/// A set of scope tokens (RFC 6749 §3.3), written on the wire as one space-separated string.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Scopes(BTreeSet<String>);

#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[error("scope token `{0}` has a character outside RFC 6749 §3.3 (printable ASCII except space, `\"` and `\\`)")]
pub struct ScopeRejected(pub String);

impl Scopes {
    /// Splits on spaces; empty input is the empty set (the caller decides whether that is
    /// allowed).
    pub fn parse(raw: &str) -> Result<Self, ScopeRejected> {
        let mut tokens = BTreeSet::new();
        for token in raw.split(' ').filter(|t| !t.is_empty()) {
            // scope-token = 1*( %x21 / %x23-5B / %x5D-7E )
            if !token
                .bytes()
                .all(|b| b == 0x21 || (0x23..=0x5b).contains(&b) || (0x5d..=0x7e).contains(&b))
            {
                return Err(ScopeRejected(token.to_owned()));
            }
            tokens.insert(token.to_owned());
        }
        Ok(Scopes(tokens))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    pub fn contains(&self, token: &str) -> bool {
        self.0.contains(token)
    }
    pub fn is_subset_of(&self, other: &Scopes) -> bool {
        self.0.is_subset(&other.0)
    }
    pub fn union(&self, other: &Scopes) -> Scopes {
        Scopes(self.0.union(&other.0).cloned().collect())
    }
    pub fn intersection(&self, other: &Scopes) -> Scopes {
        Scopes(self.0.intersection(&other.0).cloned().collect())
    }
    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(String::as_str)
    }
}

impl fmt::Display for Scopes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let joined: Vec<&str> = self.iter().collect();
        f.write_str(&joined.join(" "))
    }
}

impl TryFrom<String> for Scopes {
    type Error = ScopeRejected;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Scopes::parse(&value)
    }
}

impl From<Scopes> for String {
    fn from(value: Scopes) -> Self {
        value.to_string()
    }
}

/// Declares a closed set of protocol keywords with their wire spelling.
macro_rules! wire_enum {
    ($(#[$meta:meta])* $name:ident, $what:literal { $($variant:ident = $wire:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        pub enum $name {
            $(#[serde(rename = $wire)] $variant),+
        }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $wire),+ }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = UnknownKeyword;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($wire => Ok($name::$variant),)+
                    _ => Err(UnknownKeyword { what: $what, value: s.to_owned() }),
                }
            }
        }
    };
}

#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[error("unknown {what} `{value}`")]
pub struct UnknownKeyword {
    pub what: &'static str,
    pub value: String,
}

wire_enum!(
    /// RFC 6749 grant types (and `implicit`, RFC 6749 §4.2, for Frappe parity), RFC 8628's
    /// device grant (a device without a browser, approved by a person elsewhere) and RFC 8693's
    /// token exchange (a token for another, on the subject's behalf).
    GrantType, "grant type" {
        AuthorizationCode = "authorization_code",
        RefreshToken = "refresh_token",
        ClientCredentials = "client_credentials",
        Implicit = "implicit",
        DeviceCode = "urn:ietf:params:oauth:grant-type:device_code",
        TokenExchange = "urn:ietf:params:oauth:grant-type:token-exchange",
    }
);

wire_enum!(
    /// RFC 6749 §3.1.1 response types.
    ResponseType, "response type" {
        Code = "code",
        Token = "token",
    }
);

wire_enum!(
    /// RFC 7591 §2 `token_endpoint_auth_method`.
    TokenEndpointAuthMethod, "token endpoint auth method" {
        ClientSecretBasic = "client_secret_basic",
        ClientSecretPost = "client_secret_post",
        None = "none",
    }
);

impl TokenEndpointAuthMethod {
    /// A public client (RFC 6749 §2.1) cannot keep a secret, so it is registered without one.
    pub fn is_public(self) -> bool {
        self == TokenEndpointAuthMethod::None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirect_uris_must_be_absolute_without_fragment() {
        assert_eq!(
            RedirectUri::parse("/callback"),
            Err(RedirectUriRejected::NotAbsolute)
        );
        assert_eq!(
            RedirectUri::parse("https://app.example/cb#frag"),
            Err(RedirectUriRejected::HasFragment)
        );
        assert_eq!(
            RedirectUri::parse("https://app.example/cb#"),
            Err(RedirectUriRejected::HasFragment)
        );
    }

    #[test]
    fn plain_http_is_only_for_loopback_redirects() {
        assert!(RedirectUri::parse("http://127.0.0.1:8000/cb").is_ok());
        assert!(RedirectUri::parse("http://[::1]/cb").is_ok());
        assert!(RedirectUri::parse("http://localhost:3000/cb").is_ok());
        assert_eq!(
            RedirectUri::parse("http://app.example/cb"),
            Err(RedirectUriRejected::PlainHttpToRemoteHost)
        );
    }

    #[test]
    fn native_apps_may_use_reverse_domain_schemes_but_not_script_schemes() {
        assert!(RedirectUri::parse("com.example.app:/oauth2redirect").is_ok());
        assert_eq!(
            RedirectUri::parse("myapp:/cb"),
            Err(RedirectUriRejected::PrivateSchemeNotReverseDomain)
        );
        assert!(matches!(
            RedirectUri::parse("javascript:alert(1)"),
            Err(RedirectUriRejected::ForbiddenScheme(_))
        ));
    }

    #[test]
    fn a_redirect_uri_is_kept_byte_for_byte() {
        let raw = "https://App.Example:443/cb?x=1";
        assert_eq!(RedirectUri::parse(raw).unwrap().as_str(), raw);
    }

    #[test]
    fn scopes_are_space_separated_rfc6749_tokens() {
        let scopes = Scopes::parse("openid  profile email").unwrap();
        assert_eq!(scopes.to_string(), "email openid profile");
        assert!(Scopes::parse("openid \"quoted\"").is_err());
        assert!(Scopes::parse("").unwrap().is_empty());
    }

    #[test]
    fn keywords_round_trip_through_their_wire_spelling() {
        for grant in GrantType::ALL {
            assert_eq!(grant.as_str().parse::<GrantType>(), Ok(*grant));
        }
        assert!("password".parse::<GrantType>().is_err());
    }
}
