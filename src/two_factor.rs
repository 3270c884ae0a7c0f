//! Authenticator-app codes (TOTP, RFC 6238: HMAC-SHA1, 6 digits, 30-second steps, the
//! parameters every authenticator app assumes) and recovery codes: minting them, showing the
//! enrolment QR code, and checking a presented code. The rules about codes (one use each,
//! the sign-in they complete) are the `User` aggregate's; this module holds what needs the
//! secret, which never enters the log (it is sealed in the vault, `crate::vault`).

use std::collections::BTreeSet;

use authledger_domain::secret::SecretHash;
use authledger_domain::user::{SecondFactorProof, RECOVERY_CODES};
use secrecy::{ExposeSecret, SecretSlice};
use subtle::ConstantTimeEq;
use totp_rs::{Algorithm, TOTP};

const DIGITS: usize = 6;
const STEP_SECONDS: u64 = 30;
/// Codes of the step before and after the current one are accepted too: phone clocks drift
/// and people type slowly (RFC 6238 §5.2 recommends one step each way at most).
const STEPS_OF_DRIFT: u64 = 1;

/// A TOTP secret: 160 random bits (RFC 4226 §4 recommends at least that).
pub struct TotpSecret(SecretSlice<u8>);

impl TotpSecret {
    pub fn generate() -> TotpSecret {
        let mut bytes = vec![0u8; 20];
        aws_lc_rs::rand::fill(&mut bytes).expect("the OS random source works");
        TotpSecret(bytes.into())
    }

    pub fn from_bytes(bytes: Vec<u8>) -> TotpSecret {
        TotpSecret(bytes.into())
    }

    pub fn bytes(&self) -> &[u8] {
        self.0.expose_secret()
    }

    /// `issuer` is the site's name and `account` the username, as the app will list them.
    fn totp(&self, issuer: &str, account: &str) -> TOTP {
        // The otpauth URI separates issuer and account with `:`, so neither may hold one.
        let clean = |s: &str| s.replace(':', " ");
        TOTP::new_unchecked(
            Algorithm::SHA1,
            DIGITS,
            0,
            STEP_SECONDS,
            self.bytes().to_vec(),
            Some(clean(issuer)),
            clean(account),
        )
    }

    /// The secret in base32, for people who type it into their app.
    pub fn base32(&self) -> String {
        self.totp("", "").get_secret_base32()
    }

    /// The `otpauth://` URI an authenticator app reads from the QR code.
    pub fn uri(&self, issuer: &str, account: &str) -> String {
        self.totp(issuer, account).get_url()
    }

    /// The time step `code` is valid for at `unix_seconds`, if any (within the drift).
    pub fn step_of(&self, code: &str, unix_seconds: u64) -> Option<u64> {
        let code = code.trim();
        if code.len() != DIGITS || !code.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let totp = self.totp("", "");
        let now = unix_seconds / STEP_SECONDS;
        (now.saturating_sub(STEPS_OF_DRIFT)..=now + STEPS_OF_DRIFT).find(|step| {
            let expected = totp.generate(step * STEP_SECONDS);
            bool::from(expected.as_bytes().ct_eq(code.as_bytes()))
        })
    }
}

/// What a presented code proves, for the aggregate to judge: a TOTP code valid now, or else
/// whatever it is as a recovery code.
pub fn proof(secret: &TotpSecret, code: &str, unix_seconds: u64) -> SecondFactorProof {
    match secret.step_of(code, unix_seconds) {
        Some(step) => SecondFactorProof::Totp { step },
        None => SecondFactorProof::Other(recovery_code_hash(code)),
    }
}

/// The QR code of `uri`, as an SVG element to put in a page (no script, no image request).
pub fn qr_svg(uri: &str) -> String {
    match qrcode::QrCode::new(uri.as_bytes()) {
        Ok(code) => code
            .render::<qrcode::render::svg::Color>()
            .min_dimensions(200, 200)
            .dark_color(qrcode::render::svg::Color("#000000"))
            .light_color(qrcode::render::svg::Color("#ffffff"))
            .build()
            // Drop the XML declaration: the SVG goes inside HTML.
            .split_once("?>")
            .map(|(_, svg)| svg.trim().to_owned())
            .unwrap_or_default(),
        Err(_) => String::new(),
    }
}

/// A recovery code as people type it: lower-case, without spaces or dashes.
fn normalised(code: &str) -> String {
    code.chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .flat_map(char::to_lowercase)
        .collect()
}

/// What the log keeps of a recovery code.
pub fn recovery_code_hash(code: &str) -> SecretHash {
    crate::secrets::hash(&normalised(code))
}

/// Fresh recovery codes, to show once, and their hashes, to keep. Each is 10 characters of
/// an alphabet without look-alikes (50 bits), written `xxxxx-xxxxx`.
pub fn recovery_codes() -> (Vec<String>, BTreeSet<SecretHash>) {
    const ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyz23456789";
    let codes: Vec<String> = (0..RECOVERY_CODES)
        .map(|_| {
            let mut bytes = [0u8; 10];
            aws_lc_rs::rand::fill(&mut bytes).expect("the OS random source works");
            let chars: String = bytes
                .iter()
                .map(|b| ALPHABET[*b as usize % ALPHABET.len()] as char)
                .collect();
            format!("{}-{}", &chars[..5], &chars[5..])
        })
        .collect();
    let hashes = codes.iter().map(|c| recovery_code_hash(c)).collect();
    (codes, hashes)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 Appendix B, SHA-1: secret "12345678901234567890", T = 59 s gives 94287082
    /// (8 digits); its last 6 digits are the 6-digit code.
    #[test]
    fn codes_match_the_rfc_6238_test_vector() {
        let secret = TotpSecret::from_bytes(b"12345678901234567890".to_vec());
        assert_eq!(secret.step_of("287082", 59), Some(1));
        assert_eq!(
            secret.step_of("287082", 59 + 30),
            Some(1),
            "one step of drift"
        );
        assert_eq!(secret.step_of("287082", 59 + 90), None, "too old");
        assert_eq!(secret.step_of("287083", 59), None);
        assert_eq!(secret.step_of("28708", 59), None);
    }

    #[test]
    fn recovery_codes_are_distinct_and_typed_loosely() {
        let (codes, hashes) = recovery_codes();
        assert_eq!(hashes.len(), RECOVERY_CODES);
        let typed = codes[0].to_uppercase().replace('-', " ");
        assert!(hashes.contains(&recovery_code_hash(&typed)));
    }

    #[test]
    fn the_enrolment_uri_names_the_site_and_the_person() {
        let secret = TotpSecret::generate();
        let uri = secret.uri("Example: Corp", "alice");
        assert!(uri.starts_with("otpauth://totp/"), "{uri}");
        assert!(
            uri.contains("issuer=Example%20%20Corp") || uri.contains("issuer=Example"),
            "{uri}"
        );
        assert!(qr_svg(&uri).starts_with("<svg"));
    }
}
