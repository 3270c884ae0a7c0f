//! An export that holds secrets, sealed under a passphrase: argon2id turns the passphrase
//! into an AES-256-GCM key. The envelope says how, so that a later version can still open
//! it; the document inside is the ordinary one with its `secrets` section.

use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde::{Deserialize, Serialize};

use crate::error::AppError;

pub const SEALED_FORMAT: &str = "authledger-export-sealed/1";
/// The shortest passphrase accepted: the file holds password hashes and client secrets.
pub const MIN_PASSPHRASE_CHARS: usize = 12;
/// argon2id, 64 MiB, 3 passes: seconds of work per guess for whoever steals the file.
const MEMORY_KIB: u32 = 64 * 1024;
const PASSES: u32 = 3;

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Envelope {
    format: String,
    kdf: String,
    memory_kib: u32,
    passes: u32,
    salt: String,
    cipher: String,
    /// The nonce, then the ciphertext with its tag; base64.
    sealed: String,
}

fn key(
    passphrase: &str,
    salt: &[u8],
    memory_kib: u32,
    passes: u32,
) -> Result<LessSafeKey, AppError> {
    let params = argon2::Params::new(memory_kib, passes, 1, Some(32))
        .map_err(|e| AppError::invalid_field("file", format!("the file's key parameters: {e}")))?;
    let argon = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
    let mut bytes = [0u8; 32];
    argon
        .hash_password_into(passphrase.as_bytes(), salt, &mut bytes)
        .map_err(|e| AppError::Internal(anyhow::anyhow!("argon2: {e}")))?;
    Ok(LessSafeKey::new(
        UnboundKey::new(&AES_256_GCM, &bytes).expect("a 32-byte AES key"),
    ))
}

pub fn check_passphrase(passphrase: &str) -> Result<(), AppError> {
    if passphrase.chars().count() < MIN_PASSPHRASE_CHARS {
        return Err(AppError::invalid_field(
            "passphrase",
            format!("the passphrase must have at least {MIN_PASSPHRASE_CHARS} characters"),
        ));
    }
    Ok(())
}

/// `plaintext` sealed under `passphrase`, as the JSON text of the file.
pub fn seal(plaintext: &[u8], passphrase: &str) -> Result<String, AppError> {
    check_passphrase(passphrase)?;
    let mut salt = [0u8; 16];
    let mut nonce = [0u8; NONCE_LEN];
    aws_lc_rs::rand::fill(&mut salt).expect("the OS random source works");
    aws_lc_rs::rand::fill(&mut nonce).expect("the OS random source works");
    let mut sealed = plaintext.to_vec();
    key(passphrase, &salt, MEMORY_KIB, PASSES)?
        .seal_in_place_append_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(SEALED_FORMAT.as_bytes()),
            &mut sealed,
        )
        .expect("AES-GCM sealing does not fail for in-memory buffers");
    let mut out = nonce.to_vec();
    out.extend(sealed);
    let envelope = Envelope {
        format: SEALED_FORMAT.into(),
        kdf: "argon2id".into(),
        memory_kib: MEMORY_KIB,
        passes: PASSES,
        salt: STANDARD.encode(salt),
        cipher: "A256GCM".into(),
        sealed: STANDARD.encode(out),
    };
    serde_json::to_string_pretty(&envelope).map_err(|e| AppError::Internal(e.into()))
}

/// Whether `text` is a sealed export (rather than a plain document).
pub fn is_sealed(text: &str) -> bool {
    serde_json::from_str::<serde_json::Value>(text)
        .ok()
        .is_some_and(|v| v["format"] == SEALED_FORMAT)
}

/// The document inside; a wrong passphrase and a damaged file are one refusal.
pub fn open(text: &str, passphrase: &str) -> Result<Vec<u8>, AppError> {
    let refused = || {
        AppError::invalid_field(
            "passphrase",
            "the passphrase does not open this file (or the file was altered)",
        )
    };
    let envelope: Envelope = serde_json::from_str(text)
        .map_err(|e| AppError::invalid_field("file", format!("not a sealed export: {e}")))?;
    if envelope.kdf != "argon2id" || envelope.cipher != "A256GCM" {
        return Err(AppError::invalid_field(
            "file",
            format!(
                "sealed with {} and {}, which this version does not open",
                envelope.kdf, envelope.cipher
            ),
        ));
    }
    // Bounded so that a crafted file cannot ask for gigabytes or hours.
    if envelope.memory_kib > 1024 * 1024 || envelope.passes > 16 {
        return Err(AppError::invalid_field(
            "file",
            "the file's key parameters are out of range",
        ));
    }
    let salt = STANDARD.decode(&envelope.salt).map_err(|_| refused())?;
    let bytes = STANDARD.decode(&envelope.sealed).map_err(|_| refused())?;
    if bytes.len() < NONCE_LEN {
        return Err(refused());
    }
    let (nonce, ciphertext) = bytes.split_at(NONCE_LEN);
    let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| refused())?;
    let mut in_out = ciphertext.to_vec();
    let plaintext = key(passphrase, &salt, envelope.memory_kib, envelope.passes)?
        .open_in_place(nonce, Aad::from(SEALED_FORMAT.as_bytes()), &mut in_out)
        .map_err(|_| refused())?;
    Ok(plaintext.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_export_opens_with_its_passphrase_only() {
        let sealed = seal(b"{\"format\":\"x\"}", "correct horse battery").unwrap();
        assert!(is_sealed(&sealed));
        assert!(!sealed.contains("format\\\":\\\"x"));
        assert_eq!(
            open(&sealed, "correct horse battery").unwrap(),
            b"{\"format\":\"x\"}"
        );
        assert!(open(&sealed, "wrong horse battery").is_err());
        let mut altered: serde_json::Value = serde_json::from_str(&sealed).unwrap();
        altered["salt"] = "AAAAAAAAAAAAAAAAAAAAAA==".into();
        assert!(open(&altered.to_string(), "correct horse battery").is_err());
        assert!(seal(b"x", "short").is_err());
    }
}
