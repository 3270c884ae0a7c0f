//! The keys personal data is sealed under: one per person, in `person_keys`, outside the log.
//! Made on a person's first sealed write, read to open, destroyed to erase.

use std::collections::{BTreeSet, HashMap};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

use super::PersonKey;
use crate::db::{Db, DbTx};
use crate::{on_db, on_tx};

/// The key to seal `username`'s data with: made on first use; [`PersonKey::Erased`] once
/// they were erased.
pub async fn key_for_writing(db: &Db, username: &str) -> Result<PersonKey, sqlx::Error> {
    // Statements on their own, not one transaction: on SQLite a transaction that reads and
    // then writes fails at once (SQLITE_BUSY_SNAPSHOT) when another writer committed in
    // between, where a lone insert waits its turn. Read first: an insert, even one that
    // changes nothing, takes SQLite's one write lock.
    let found: Option<Option<String>> = on_db!(db, pool => sqlx::query_scalar(SELECT_KEY).bind(username).fetch_optional(pool).await)?;
    if let Some(key) = found {
        return Ok(person_key(key));
    }
    let (fresh, now) = fresh_key();
    on_db!(db, pool => sqlx::query(INSERT_KEY)
        .bind(username)
        .bind(&fresh)
        .bind(&now)
        .execute(pool)
        .await
        .map(|_| ()))?;
    let key: Option<Option<String>> = on_db!(db, pool => sqlx::query_scalar(SELECT_KEY).bind(username).fetch_optional(pool).await)?;
    Ok(person_key(key.flatten()))
}

/// A person's key row, read.
const SELECT_KEY: &str = "SELECT person_key FROM person_keys WHERE username = $1";
/// A first key for a person (`$1`), unless another writer made one first: then both read back
/// the one that won.
const INSERT_KEY: &str = "INSERT INTO person_keys (username, person_key, created_at) \
     VALUES ($1, $2, $3) ON CONFLICT (username) DO NOTHING";

/// A new random key, encoded, and the time it is made.
fn fresh_key() -> (String, String) {
    let mut fresh = [0u8; 32];
    aws_lc_rs::rand::fill(&mut fresh).expect("the OS random source works");
    (
        URL_SAFE_NO_PAD.encode(fresh),
        crate::view_time(chrono::Utc::now()),
    )
}

fn person_key(stored: Option<String>) -> PersonKey {
    match stored.as_deref().and_then(decode_key) {
        Some(key) => PersonKey::Live(key),
        None => PersonKey::Erased,
    }
}

fn decode_key(text: &str) -> Option<[u8; 32]> {
    URL_SAFE_NO_PAD.decode(text).ok()?.try_into().ok()
}

const KEYS_SQL: &str =
    "SELECT username, person_key FROM person_keys WHERE person_key IS NOT NULL AND username IN ";

fn keys_query(count: usize) -> String {
    let params: Vec<String> = (1..=count).map(|i| format!("${i}")).collect();
    format!("{KEYS_SQL}({})", params.join(", "))
}

fn decode_keys(rows: Vec<(String, String)>) -> HashMap<String, [u8; 32]> {
    rows.into_iter()
        .filter_map(|(username, key)| decode_key(&key).map(|k| (username, k)))
        .collect()
}

/// The live keys of these people (an erased one has none).
pub async fn keys_for_reading(
    db: &Db,
    owners: &BTreeSet<String>,
) -> Result<HashMap<String, [u8; 32]>, sqlx::Error> {
    if owners.is_empty() {
        return Ok(HashMap::new());
    }
    let sql = keys_query(owners.len());
    let rows: Vec<(String, String)> = on_db!(db, pool => {
        let mut query = sqlx::query_as(&sql);
        for owner in owners {
            query = query.bind(owner);
        }
        query.fetch_all(pool).await
    })?;
    Ok(decode_keys(rows))
}

/// [`keys_for_reading`] inside a transaction.
pub async fn keys_for_reading_in(
    tx: &mut DbTx,
    owners: &BTreeSet<String>,
) -> Result<HashMap<String, [u8; 32]>, sqlx::Error> {
    if owners.is_empty() {
        return Ok(HashMap::new());
    }
    let sql = keys_query(owners.len());
    let rows: Vec<(String, String)> = on_tx!(tx, conn => {
        let mut query = sqlx::query_as(&sql);
        for owner in owners {
            query = query.bind(owner);
        }
        query.fetch_all(conn).await
    })?;
    Ok(decode_keys(rows))
}

/// Destroys `username`'s key: from now on their sealed data opens for no one, and what is
/// written about them leaves it out. Kept as a row without a key, so that no new key is made.
pub async fn destroy_key(db: &Db, username: &str) -> Result<(), sqlx::Error> {
    let now = crate::view_time(chrono::Utc::now());
    let sql = "INSERT INTO person_keys (username, person_key, created_at, erased_at) VALUES ($1, NULL, $2, $2) \
               ON CONFLICT (username) DO UPDATE SET person_key = NULL, erased_at = excluded.erased_at";
    on_db!(db, pool => sqlx::query(sql).bind(username).bind(&now).execute(pool).await.map(|_| ()))
}

/// [`key_for_writing`] inside the upgrade's transaction, which holds SQLite's one write lock
/// already. Two writers may make a first key for the same person at once: one insert wins,
/// and both read back the winner.
pub(super) async fn key_for_writing_in(
    tx: &mut DbTx,
    username: &str,
) -> Result<PersonKey, sqlx::Error> {
    let (fresh, now) = fresh_key();
    on_tx!(tx, conn => sqlx::query(INSERT_KEY)
        .bind(username)
        .bind(&fresh)
        .bind(&now)
        .execute(conn)
        .await
        .map(|_| ()))?;
    let key: Option<Option<String>> = on_tx!(tx, conn => sqlx::query_scalar(SELECT_KEY).bind(username).fetch_optional(conn).await)?;
    Ok(person_key(key.flatten()))
}
