use std::fmt;

use serde::{Deserialize, Serialize};

use crate::oauth::WebUrl;

/// A normalised username: trimmed, ASCII-lowercased, 1 to 64 of `a-z 0-9 . _ - @ +`.
///
/// ASCII only on purpose: Unicode look-alikes (Cyrillic `а` for Latin `a`) would let two
/// people hold names that read the same, in a system whose audit answers "who did this".
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Username(String);

#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum ProfileRejected {
    #[error("username: must be 1 to 64 characters of a-z 0-9 . _ - @ +")]
    Username,
    #[error("email: `{0}` is not an email address")]
    Email(String),
    #[error("role: `{0}` must be 1 to 64 printable characters")]
    Role(String),
    #[error("{0}: must be at most 200 characters without control characters")]
    Text(&'static str),
    #[error("picture: must be an absolute http or https URL")]
    Picture,
}

impl ProfileRejected {
    /// The field at fault.
    pub fn field(&self) -> &'static str {
        match self {
            ProfileRejected::Username => "username",
            ProfileRejected::Email(_) => "email",
            ProfileRejected::Role(_) => "roles",
            ProfileRejected::Text(field) => field,
            ProfileRejected::Picture => "picture",
        }
    }
}

impl Username {
    pub fn parse(raw: &str) -> Result<Self, ProfileRejected> {
        let normalised = raw.trim().to_ascii_lowercase();
        let ok = (1..=64).contains(&normalised.len())
            && normalised
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-@+".contains(&b));
        if ok {
            Ok(Username(normalised))
        } else {
            Err(ProfileRejected::Username)
        }
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Username {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for Username {
    type Error = ProfileRejected;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Username::parse(&value)
    }
}

impl From<Username> for String {
    fn from(value: Username) -> Self {
        value.0
    }
}

/// An email address, checked only for shape (one `@`, both sides present, no spaces):
/// deliverability is for the mail system to judge.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Email(String);

impl Email {
    pub fn parse(raw: &str) -> Result<Self, ProfileRejected> {
        let trimmed = raw.trim();
        let shaped = match trimmed.split_once('@') {
            Some((local, domain)) => {
                !local.is_empty()
                    && !domain.is_empty()
                    && !domain.contains('@')
                    && trimmed.len() <= 254
                    && !trimmed.chars().any(|c| c.is_whitespace() || c.is_control())
            }
            None => false,
        };
        if shaped {
            Ok(Email(trimmed.to_owned()))
        } else {
            Err(ProfileRejected::Email(raw.to_owned()))
        }
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Email {
    type Error = ProfileRejected;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Email::parse(&value)
    }
}

impl From<Email> for String {
    fn from(value: Email) -> Self {
        value.0
    }
}

/// A role name, as in Frappe ("System Manager"); `admin` grants the admin API.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Role(String);

impl Role {
    pub fn parse(raw: &str) -> Result<Self, ProfileRejected> {
        let trimmed = raw.trim();
        if (1..=64).contains(&trimmed.chars().count()) && !trimmed.chars().any(char::is_control) {
            Ok(Role(trimmed.to_owned()))
        } else {
            Err(ProfileRejected::Role(raw.to_owned()))
        }
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Role {
    type Error = ProfileRejected;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Role::parse(&value)
    }
}

impl From<Role> for String {
    fn from(value: Role) -> Self {
        value.0
    }
}

/// The OpenID Connect standard claims we hold for a person (OIDC Core §5.1).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserProfile {
    #[serde(default)]
    pub email: Option<Email>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub given_name: Option<String>,
    #[serde(default)]
    pub family_name: Option<String>,
    #[serde(default)]
    pub picture: Option<WebUrl>,
}

impl UserProfile {
    /// Checks the free-text claims; typed ones were checked when parsed.
    pub fn check(&self) -> Result<(), ProfileRejected> {
        for (field, value) in [
            ("name", &self.name),
            ("given_name", &self.given_name),
            ("family_name", &self.family_name),
        ] {
            if let Some(value) = value {
                if value.chars().count() > 200 || value.chars().any(char::is_control) {
                    return Err(ProfileRejected::Text(field));
                }
            }
        }
        Ok(())
    }
}
