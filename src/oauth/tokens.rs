//! Codes and tokens. Each is `PREFIX GRANT_ID "." RANDOM`: 256 random bits, plus the id of the
//! grant it belongs to, so the token endpoint loads that grant directly instead of looking the
//! token up. The grant id is not a secret; the random part is, and only its SHA-256 (of the
//! whole string) is ever stored.

use crate::secrets::{self, MintedSecret};

/// Access tokens: recognisable by secret scanners.
pub const ACCESS_TOKEN_PREFIX: &str = "alat_";
/// Refresh tokens.
pub const REFRESH_TOKEN_PREFIX: &str = "alrt_";
/// Authorization codes are short-lived and travel in a redirect; a short prefix still helps
/// a reader tell them apart.
pub const CODE_PREFIX: &str = "alac_";

/// A grant's id: 32 lowercase hex digits (a UUID without dashes).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct GrantId(String);

impl GrantId {
    /// A time-ordered id (UUIDv7): a new grant's entries go to the end of the B-trees keyed by
    /// grant id (the log's primary key, the grant and audit views) rather than to a random
    /// page of them, so issuing costs the same however many grants are stored. The time it
    /// carries is the grant's issuance, which introspection of its tokens reports anyway; the
    /// tokens' secret part is separate and random.
    pub fn new() -> GrantId {
        GrantId(uuid::Uuid::now_v7().simple().to_string())
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Default for GrantId {
    fn default() -> Self {
        GrantId::new()
    }
}

impl std::fmt::Display for GrantId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

pub fn mint(prefix: &str, grant: &GrantId) -> MintedSecret {
    secrets::mint(&format!("{prefix}{grant}."))
}

/// The grant a presented code or token belongs to, if it has the right shape.
pub fn grant_of(presented: &str, prefix: &str) -> Option<GrantId> {
    let rest = presented.strip_prefix(prefix)?;
    let (grant, random) = rest.split_once('.')?;
    if random.len() != 43 {
        return None;
    }
    grant_id(grant)
}

/// A grant id, if `raw` is one: 32 lowercase hex digits.
pub fn grant_id(raw: &str) -> Option<GrantId> {
    let well_formed = raw.len() == 32
        && raw
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    well_formed.then(|| GrantId(raw.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_minted_token_names_its_grant() {
        let grant = GrantId::new();
        let token = mint(REFRESH_TOKEN_PREFIX, &grant);
        assert_eq!(grant_of(token.reveal(), REFRESH_TOKEN_PREFIX), Some(grant));
        assert_eq!(grant_of(token.reveal(), ACCESS_TOKEN_PREFIX), None);
        assert_eq!(grant_of("alrt_nonsense", REFRESH_TOKEN_PREFIX), None);
    }
}
