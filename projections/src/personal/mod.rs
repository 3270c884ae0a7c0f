//! Personal data in events, sealed under a key per person: crypto-shredding.
//!
//! The log is immutable and hash-chained, so a person's data cannot be deleted from it. Instead
//! what identifies a person beyond their username (their profile: email, names, picture; the
//! IP address and user agent of what they did) is written into events encrypted (AES-256-GCM)
//! under a key of their own, kept in `person_keys` outside the log. Erasing the person
//! destroys that key: every event keeps its place and its digest, so the chain and seals
//! still verify, but no one can read that data any more, and readers see what was sealed as
//! absent.
//!
//! The rules for what is personal and whose it is live here, beside the two ends that apply
//! them: [`seal`] as events are written (the store wraps its repositories with it) and
//! [`open`] as they are read (the log reader applies it to every event it returns, except
//! where the ledger needs events exactly as stored).
//!
//! - In a payload: the `profile` of a `User`'s events, the aggregate's own person.
//! - In metadata: `ip` and `user_agent`, the person who acted (`user:NAME`), or else, on a
//!   `User`'s events (a sign-in attempt, say), that user. An operator at the command line,
//!   a client or the system acting are not a person's data and stay as they are.
//!
//! Sealed, a payload field becomes `{"$personal": {"of": NAME, "sealed": B64, "else": V}}`,
//! where `V` is what the field reads as once the key is gone (an empty profile); a metadata
//! value becomes `$personal:NAME:B64`, and is left out once the key is gone. The username is
//! not sealed: it is the aggregate's id and the pseudonym every other record uses.
//!
//! The keys are stored as they are, not sealed under the master key like the vault's secrets:
//! their purpose is erasure, not secrecy from whoever reads the database, who reads the views
//! (which hold the same data opened) anyway; and the log's readers (projections, the CLI) then
//! need no master key. What they keep from a reader of the log alone is an export: it carries
//! the events sealed, and no key.

use std::collections::{BTreeSet, HashMap};

use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::{json, Map, Value};

mod keys;
mod scrub;
mod upgrade;

pub use keys::{destroy_key, key_for_writing, keys_for_reading, keys_for_reading_in};
pub use scrub::{
    scrub_in, scrub_views, SCRUB_AUDIT_LOG, SCRUB_GRANT_VIEW, SCRUB_SESSION_VIEW, SCRUB_USER_VIEW,
};
pub use upgrade::seal_recorded;

/// The key of a payload field that holds sealed personal data.
pub const MARK: &str = "$personal";
/// How a sealed metadata value starts.
const METADATA_MARK: &str = "$personal:";
/// Payload fields that are personal data, of the aggregate's own person, on `User` events.
const PAYLOAD_FIELDS: &[&str] = &["profile"];
/// Metadata entries that are personal data, of whoever acted.
const METADATA_FIELDS: &[&str] = &["ip", "user_agent"];

/// A person's key, as the writer finds it.
#[derive(Clone)]
pub enum PersonKey {
    Live([u8; 32]),
    /// The person was erased: their data is no longer written at all.
    Erased,
}

/// Whose personal data the payload of an event of this aggregate holds.
fn payload_owner<'a>(aggregate_type: &str, aggregate_id: &'a str) -> Option<&'a str> {
    (aggregate_type == "User").then_some(aggregate_id)
}

/// Whose the IP address and user agent in this metadata are.
fn metadata_owner(
    aggregate_type: &str,
    aggregate_id: &str,
    metadata: &Map<String, Value>,
) -> Option<String> {
    match metadata.get("actor").and_then(Value::as_str) {
        Some(actor) if actor.starts_with("user:") => Some(actor["user:".len()..].to_owned()),
        _ => payload_owner(aggregate_type, aggregate_id).map(str::to_owned),
    }
}

/// The people whose keys sealing this event needs.
pub fn owners(aggregate_type: &str, aggregate_id: &str, metadata: &Value) -> BTreeSet<String> {
    let mut owners = BTreeSet::new();
    if let Some(owner) = payload_owner(aggregate_type, aggregate_id) {
        owners.insert(owner.to_owned());
    }
    if let Some(map) = metadata.as_object() {
        if METADATA_FIELDS.iter().any(|f| map.contains_key(*f)) {
            owners.extend(metadata_owner(aggregate_type, aggregate_id, map));
        }
    }
    owners
}

fn aead(key: &[u8; 32]) -> LessSafeKey {
    LessSafeKey::new(UnboundKey::new(&AES_256_GCM, key).expect("a 32-byte AES key"))
}

/// What a value is sealed for: its person, so one person's ciphertext cannot pass as another's.
fn context(owner: &str) -> String {
    format!("personal:{owner}")
}

fn encrypt(key: &[u8; 32], owner: &str, plaintext: &[u8]) -> String {
    let mut nonce = [0u8; NONCE_LEN];
    aws_lc_rs::rand::fill(&mut nonce).expect("the OS random source works");
    let mut sealed = plaintext.to_vec();
    aead(key)
        .seal_in_place_append_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(context(owner).as_bytes()),
            &mut sealed,
        )
        .expect("AES-GCM sealing does not fail for in-memory buffers");
    let mut out = nonce.to_vec();
    out.extend(sealed);
    URL_SAFE_NO_PAD.encode(out)
}

fn decrypt(key: &[u8; 32], owner: &str, sealed: &str) -> Option<Vec<u8>> {
    let bytes = URL_SAFE_NO_PAD.decode(sealed).ok()?;
    if bytes.len() < NONCE_LEN {
        return None;
    }
    let (nonce, ciphertext) = bytes.split_at(NONCE_LEN);
    let nonce = Nonce::try_assume_unique_for_key(nonce).ok()?;
    let mut in_out = ciphertext.to_vec();
    aead(key)
        .open_in_place(nonce, Aad::from(context(owner).as_bytes()), &mut in_out)
        .ok()
        .map(|plaintext| plaintext.to_vec())
}

/// What a sealed payload field reads as without its key.
fn absent(field: &Value) -> Value {
    match field {
        Value::Object(_) => json!({}),
        Value::Array(_) => json!([]),
        _ => Value::Null,
    }
}

/// Seals the personal data of one event as it is written; `key` gives each person's key
/// (every one [`owners`] named). A person who was erased has their data left out instead.
pub fn seal(
    aggregate_type: &str,
    aggregate_id: &str,
    payload: &mut Value,
    metadata: &mut Value,
    key: impl Fn(&str) -> Option<PersonKey>,
) {
    if let Some(owner) = payload_owner(aggregate_type, aggregate_id) {
        let body = payload
            .as_object_mut()
            .and_then(|map| map.values_mut().next())
            .and_then(Value::as_object_mut);
        if let (Some(body), Some(person)) = (body, key(owner)) {
            for field in PAYLOAD_FIELDS {
                let Some(value) = body.get_mut(*field) else {
                    continue;
                };
                if value.get(MARK).is_some() {
                    continue;
                }
                *value = match &person {
                    PersonKey::Live(k) => {
                        let plaintext = serde_json::to_vec(value).expect("JSON serialises");
                        json!({MARK: {
                            "of": owner,
                            "sealed": encrypt(k, owner, &plaintext),
                            "else": absent(value),
                        }})
                    }
                    PersonKey::Erased => absent(value),
                };
            }
        }
    }
    let Some(map) = metadata.as_object_mut() else {
        return;
    };
    let Some(owner) = metadata_owner(aggregate_type, aggregate_id, map) else {
        return;
    };
    let Some(person) = key(&owner) else { return };
    for field in METADATA_FIELDS {
        let Some(Value::String(value)) = map.get(*field).cloned() else {
            continue;
        };
        if value.starts_with(METADATA_MARK) {
            continue;
        }
        match &person {
            PersonKey::Live(k) => {
                let sealed = format!(
                    "{METADATA_MARK}{owner}:{}",
                    encrypt(k, &owner, value.as_bytes())
                );
                map.insert((*field).to_owned(), Value::String(sealed));
            }
            PersonKey::Erased => {
                map.remove(*field);
            }
        }
    }
}

/// The people whose keys opening this event's sealed data needs.
pub fn sealed_owners(
    payload: &Value,
    metadata: &HashMap<String, String>,
    into: &mut BTreeSet<String>,
) {
    fn walk(value: &Value, into: &mut BTreeSet<String>) {
        match value {
            Value::Object(map) => {
                if let Some(of) = map
                    .get(MARK)
                    .and_then(|m| m.get("of"))
                    .and_then(Value::as_str)
                {
                    into.insert(of.to_owned());
                    return;
                }
                map.values().for_each(|v| walk(v, into));
            }
            Value::Array(items) => items.iter().for_each(|v| walk(v, into)),
            _ => {}
        }
    }
    walk(payload, into);
    for value in metadata.values() {
        if let Some((owner, _)) = split_metadata(value) {
            into.insert(owner.to_owned());
        }
    }
}

fn split_metadata(value: &str) -> Option<(&str, &str)> {
    value.strip_prefix(METADATA_MARK)?.rsplit_once(':')
}

/// Opens the sealed data of one event with the keys there are; data whose key is gone (the
/// person was erased) reads as absent.
pub fn open(
    payload: &mut Value,
    metadata: &mut HashMap<String, String>,
    keys: &HashMap<String, [u8; 32]>,
) {
    fn walk(value: &mut Value, keys: &HashMap<String, [u8; 32]>) {
        match value {
            Value::Object(map) => {
                if let Some(sealed) = map.get(MARK) {
                    let of = sealed.get("of").and_then(Value::as_str).unwrap_or_default();
                    let opened = keys.get(of).and_then(|k| {
                        let text = sealed.get("sealed").and_then(Value::as_str)?;
                        serde_json::from_slice(&decrypt(k, of, text)?).ok()
                    });
                    *value = opened
                        .unwrap_or_else(|| sealed.get("else").cloned().unwrap_or(Value::Null));
                    return;
                }
                map.values_mut().for_each(|v| walk(v, keys));
            }
            Value::Array(items) => items.iter_mut().for_each(|v| walk(v, keys)),
            _ => {}
        }
    }
    walk(payload, keys);
    metadata.retain(|_, value| {
        let Some((owner, sealed)) = split_metadata(value) else {
            return true;
        };
        match keys.get(owner).and_then(|k| decrypt(k, owner, sealed)) {
            Some(plain) => {
                *value = String::from_utf8_lossy(&plain).into_owned();
                true
            }
            None => false,
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event() -> (Value, Value) {
        (
            json!({"UserRegistered": {"username": "alice", "credential": "pw-1",
                "profile": {"email": "alice@example.com", "name": "Alice Liddell"}, "roles": []}}),
            json!({"actor": "cli:root", "source": "http", "ip": "203.0.113.9", "user_agent": "Firefox"}),
        )
    }

    fn opened(
        payload: &Value,
        metadata: &Value,
        keys: &HashMap<String, [u8; 32]>,
    ) -> (Value, HashMap<String, String>) {
        let mut payload = payload.clone();
        let mut metadata: HashMap<String, String> =
            serde_json::from_value(metadata.clone()).unwrap();
        open(&mut payload, &mut metadata, keys);
        (payload, metadata)
    }

    #[test]
    fn sealed_data_opens_with_its_key_and_reads_as_absent_without() {
        let (mut payload, mut metadata) = event();
        let (plain_payload, plain_metadata) = event();
        let key = [7u8; 32];
        assert_eq!(
            owners("User", "alice", &metadata),
            BTreeSet::from(["alice".to_owned()])
        );
        seal("User", "alice", &mut payload, &mut metadata, |_| {
            Some(PersonKey::Live(key))
        });
        let stored = format!("{payload}{metadata}");
        for personal in [
            "alice@example.com",
            "Alice Liddell",
            "203.0.113.9",
            "Firefox",
        ] {
            assert!(!stored.contains(personal), "{personal} is sealed");
        }
        assert!(
            stored.contains("cli:root") && stored.contains("pw-1"),
            "the rest is not"
        );

        let mut needed = BTreeSet::new();
        sealed_owners(
            &payload,
            &serde_json::from_value(metadata.clone()).unwrap(),
            &mut needed,
        );
        assert_eq!(needed, BTreeSet::from(["alice".to_owned()]));
        let keys = HashMap::from([("alice".to_owned(), key)]);
        let (payload_now, metadata_now) = opened(&payload, &metadata, &keys);
        assert_eq!(payload_now, plain_payload);
        assert_eq!(
            metadata_now,
            serde_json::from_value::<HashMap<String, String>>(plain_metadata).unwrap()
        );

        let (payload_then, metadata_then) = opened(&payload, &metadata, &HashMap::new());
        assert_eq!(payload_then["UserRegistered"]["profile"], json!({}));
        assert_eq!(payload_then["UserRegistered"]["username"], "alice");
        assert!(!metadata_then.contains_key("ip") && !metadata_then.contains_key("user_agent"));
        assert_eq!(metadata_then["actor"], "cli:root");

        // Another person's key does not open it.
        let (payload_other, _) = opened(
            &payload,
            &metadata,
            &HashMap::from([("alice".to_owned(), [8u8; 32])]),
        );
        assert_eq!(payload_other["UserRegistered"]["profile"], json!({}));
    }

    #[test]
    fn what_a_person_does_elsewhere_is_theirs_and_an_erased_person_is_left_out() {
        let mut payload = json!({"TokensIssued": {"client_id": "c"}});
        let mut metadata = json!({"actor": "user:bob", "ip": "198.51.100.7"});
        assert_eq!(
            owners("Grant", "g1", &metadata),
            BTreeSet::from(["bob".to_owned()])
        );
        seal("Grant", "g1", &mut payload, &mut metadata, |_| {
            Some(PersonKey::Erased)
        });
        assert_eq!(metadata, json!({"actor": "user:bob"}));
        assert_eq!(payload, json!({"TokensIssued": {"client_id": "c"}}));

        // A client acting is no person's data.
        let mut metadata = json!({"actor": "client:c", "ip": "198.51.100.7"});
        assert!(owners("Grant", "g1", &metadata).is_empty());
        seal("Grant", "g1", &mut payload, &mut metadata, |_| None);
        assert_eq!(metadata["ip"], "198.51.100.7");
    }
}
