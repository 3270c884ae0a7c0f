//! Minting high-entropy secrets and hashing them.
//!
//! A minted secret is shown to its owner once and then dropped; only [`hash`] of it is kept.
//! SHA-256 is the right hash for 256-bit random values: there is nothing to brute-force, and a
//! slow hash here would cap the token endpoint.

use std::fmt;

use authledger_domain::secret::SecretHash;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rand::rngs::OsRng;
use rand::RngCore;
use sha2::{Digest, Sha256};

/// Prefix of client secrets: lets secret scanners recognise a leaked one.
pub const CLIENT_SECRET_PREFIX: &str = "alcs_";

/// A raw secret, just minted. `Debug` is redacted; [`MintedSecret::reveal`] is the one way to
/// read it, and it should be called only to show the secret to its owner.
pub struct MintedSecret {
    raw: String,
    hash: SecretHash,
}

impl MintedSecret {
    pub fn reveal(&self) -> &str {
        &self.raw
    }
    pub fn hash(&self) -> &SecretHash {
        &self.hash
    }
    /// A secret made elsewhere (a client's, moved by `import`), with its hash.
    pub fn kept(raw: String) -> MintedSecret {
        let hash = hash(&raw);
        MintedSecret { raw, hash }
    }
}

impl fmt::Debug for MintedSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MintedSecret(..)")
    }
}

/// 256 random bits from the OS, base64url without padding, after `prefix`.
pub fn mint(prefix: &str) -> MintedSecret {
    let mut bytes = [0u8; 32];
    OsRng.fill_bytes(&mut bytes);
    let raw = format!("{prefix}{}", URL_SAFE_NO_PAD.encode(bytes));
    let hash = hash(&raw);
    MintedSecret { raw, hash }
}

/// SHA-256 of the secret as presented (prefix included).
pub fn hash(raw: &str) -> SecretHash {
    let digest = Sha256::digest(raw.as_bytes());
    let hex = hex::encode(digest);
    SecretHash::from_hex(&hex).expect("SHA-256 hex is a valid secret hash")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minted_secrets_are_prefixed_256_bit_values_whose_hash_matches() {
        let secret = mint(CLIENT_SECRET_PREFIX);
        assert!(secret.reveal().starts_with(CLIENT_SECRET_PREFIX));
        assert_eq!(secret.reveal().len(), CLIENT_SECRET_PREFIX.len() + 43);
        assert!(hash(secret.reveal()).matches(secret.hash()));
        assert!(!format!("{secret:?}").contains(secret.reveal()));
        assert_ne!(mint("").reveal(), mint("").reveal());
    }

    #[test]
    fn hash_is_sha256_hex() {
        assert_eq!(
            hash("abc").as_hex(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
