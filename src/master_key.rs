//! The master key: seals what must be recoverable but never stored in the clear (private
//! signing keys, the secrets of HS256 clients) and derives the cookie-signing key.
//!
//! It comes from `AUTHLEDGER_MASTER_KEY` (32 bytes, base64url) or from a key file
//! (`AUTHLEDGER_MASTER_KEY_FILE`, default `authledger.key`), created with mode 0600 on first
//! start. Every instance sharing a database needs the same key.

use std::fmt;
use std::path::Path;

use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use aws_lc_rs::hmac;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

pub struct MasterKey([u8; 32]);

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MasterKey(..)")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum MasterKeyError {
    #[error("AUTHLEDGER_MASTER_KEY must be 32 bytes, base64url-encoded (43 characters)")]
    Malformed,
    #[error("master key file {path}: {source}")]
    File {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("a sealed value could not be opened: wrong master key, or the data was altered")]
    CannotOpen,
    #[error(
        "the store holds values sealed under a master key, but the key file {path} does not \
         exist; run from the directory that holds it, or set AUTHLEDGER_MASTER_KEY_FILE or \
         AUTHLEDGER_MASTER_KEY (a new key would not open them)"
    )]
    Missing { path: String },
}

impl MasterKey {
    pub fn from_base64(encoded: &str) -> Result<Self, MasterKeyError> {
        let bytes = URL_SAFE_NO_PAD
            .decode(encoded.trim().trim_end_matches('='))
            .map_err(|_| MasterKeyError::Malformed)?;
        Ok(MasterKey(
            bytes.try_into().map_err(|_| MasterKeyError::Malformed)?,
        ))
    }

    pub fn generate() -> Self {
        let mut bytes = [0u8; 32];
        aws_lc_rs::rand::fill(&mut bytes).expect("the OS random source works");
        MasterKey(bytes)
    }

    pub fn to_base64(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.0)
    }

    /// The configured key, or the key file's, creating the file if there is none and
    /// `may_generate` (false when the store already holds values sealed under some key: a new
    /// key could not open them, and the right one is probably beside another working
    /// directory).
    pub fn load(
        configured: Option<&str>,
        file: &Path,
        may_generate: bool,
    ) -> Result<Self, MasterKeyError> {
        if let Some(encoded) = configured {
            return MasterKey::from_base64(encoded);
        }
        let file_error = |source| MasterKeyError::File {
            path: file.display().to_string(),
            source,
        };
        match std::fs::read_to_string(file) {
            Ok(encoded) => MasterKey::from_base64(&encoded),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !may_generate => {
                let path = std::path::absolute(file).unwrap_or_else(|_| file.to_owned());
                Err(MasterKeyError::Missing {
                    path: path.display().to_string(),
                })
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let key = MasterKey::generate();
                write_private(file, &key.to_base64()).map_err(file_error)?;
                tracing::warn!(
                    path = %file.display(),
                    "generated a new master key; keep it with the database (without it, signing \
                     keys and HS256 client secrets cannot be read)"
                );
                Ok(key)
            }
            Err(e) => Err(file_error(e)),
        }
    }

    /// AES-256-GCM with a random nonce; `context` is bound as associated data, so a value
    /// sealed for one purpose (one key id, one client) cannot be passed off as another.
    pub fn seal(&self, plaintext: &[u8], context: &str) -> String {
        let mut nonce = [0u8; NONCE_LEN];
        aws_lc_rs::rand::fill(&mut nonce).expect("the OS random source works");
        let mut sealed = plaintext.to_vec();
        self.aead()
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(context.as_bytes()),
                &mut sealed,
            )
            .expect("AES-GCM sealing does not fail for in-memory buffers");
        let mut out = nonce.to_vec();
        out.extend(sealed);
        URL_SAFE_NO_PAD.encode(out)
    }

    pub fn open(&self, sealed: &str, context: &str) -> Result<Vec<u8>, MasterKeyError> {
        let bytes = URL_SAFE_NO_PAD
            .decode(sealed)
            .map_err(|_| MasterKeyError::CannotOpen)?;
        if bytes.len() < NONCE_LEN {
            return Err(MasterKeyError::CannotOpen);
        }
        let (nonce, ciphertext) = bytes.split_at(NONCE_LEN);
        let nonce =
            Nonce::try_assume_unique_for_key(nonce).map_err(|_| MasterKeyError::CannotOpen)?;
        let mut in_out = ciphertext.to_vec();
        let plaintext = self
            .aead()
            .open_in_place(nonce, Aad::from(context.as_bytes()), &mut in_out)
            .map_err(|_| MasterKeyError::CannotOpen)?;
        Ok(plaintext.to_vec())
    }

    /// A 64-byte key for `purpose`, independent of every other purpose's.
    pub fn derive(&self, purpose: &str) -> [u8; 64] {
        let key = hmac::Key::new(hmac::HMAC_SHA512, &self.0);
        let tag = hmac::sign(&key, purpose.as_bytes());
        tag.as_ref().try_into().expect("HMAC-SHA512 is 64 bytes")
    }

    fn aead(&self) -> LessSafeKey {
        LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &self.0).expect("a 32-byte AES key"))
    }
}

/// Writes `contents` to a new file readable by its owner only; an existing file is left alone
/// (and the answer is an error), so that no key is ever overwritten.
pub fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    file.write_all(contents.as_bytes())?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_values_open_only_with_the_same_key_and_context() {
        let key = MasterKey::generate();
        let sealed = key.seal(b"private", "signing-key:k1");
        assert_eq!(key.open(&sealed, "signing-key:k1").unwrap(), b"private");
        assert!(key.open(&sealed, "signing-key:k2").is_err());
        assert!(MasterKey::generate()
            .open(&sealed, "signing-key:k1")
            .is_err());
        assert!(!sealed.contains("private"));
    }

    #[test]
    fn a_key_file_is_created_once_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("authledger.key");
        let first = MasterKey::load(None, &path, true).unwrap();
        let again = MasterKey::load(None, &path, true).unwrap();
        assert_eq!(first.to_base64(), again.to_base64());
        assert!(MasterKey::load(Some("too-short"), &path, true).is_err());
    }

    #[test]
    fn derived_keys_differ_by_purpose() {
        let key = MasterKey::generate();
        assert_ne!(key.derive("cookies").to_vec(), key.derive("other").to_vec());
    }
}
