//! Stores upgrading from a release that wrote personal data in the clear: sealed in place,
//! once, before the ledger's first link.

use std::collections::HashMap;

use serde_json::Value;

use super::{keys::key_for_writing_in, owners, seal};
use crate::db::{Db, DbTx};
use crate::on_tx;

/// Seals the personal data of events recorded before it was sealed as written (a store
/// upgrading from a release without crypto-shredding), so that erasing those people works on
/// their whole history. Done in one transaction, and only while the ledger holds no
/// link yet: the hash chain then covers the sealed form, and the ledger's linker (which takes
/// the same checkpoint lock first) cannot link an event while it is being rewritten. A store
/// whose ledger was already chained keeps such events as they are, since rewriting them would
/// break its chain and seals (the README says what that means for erasure). Returns how many
/// events were sealed.
pub async fn seal_recorded(db: &Db) -> Result<usize, crate::ProjectionError> {
    let mut tx = db.begin_write().await?;
    crate::checkpoint::lock(&mut tx, crate::ledger::READER).await?;
    let chained = "SELECT COUNT(*) FROM (SELECT 1 FROM ledger_chain LIMIT 1) AS any_link";
    let links: i64 = on_tx!(&mut tx, conn => sqlx::query_scalar(chained).fetch_one(conn).await)?;
    if links > 0 {
        return Ok(0);
    }
    // Until the linker's first link, each start looks again; what is sealed stays as it is.
    let mut after = 0;
    let postgres = matches!(tx, DbTx::Postgres(_));
    let (read, update) = if postgres {
        (
            "SELECT global_position, aggregate_type, aggregate_id, payload::text, metadata::text \
             FROM events WHERE global_position > $1 ORDER BY global_position LIMIT 1000",
            "UPDATE events SET payload = $1::json, metadata = $2::json WHERE global_position = $3",
        )
    } else {
        (
            "SELECT global_position, aggregate_type, aggregate_id, payload, metadata \
             FROM events WHERE global_position > $1 ORDER BY global_position LIMIT 1000",
            "UPDATE events SET payload = $1, metadata = $2 WHERE global_position = $3",
        )
    };
    let mut sealed = 0;
    let mut immutable = true;
    loop {
        let rows: Vec<(i64, String, String, String, String)> =
            on_tx!(&mut tx, conn => sqlx::query_as(read).bind(after).fetch_all(conn).await)?;
        let Some(last) = rows.last().map(|r| r.0) else {
            break;
        };
        for (position, aggregate_type, aggregate_id, payload_text, metadata_text) in rows {
            let (Ok(mut payload), Ok(mut metadata)) = (
                serde_json::from_str::<Value>(&payload_text),
                serde_json::from_str::<Value>(&metadata_text),
            ) else {
                continue;
            };
            let owners = owners(&aggregate_type, &aggregate_id, &metadata);
            if owners.is_empty() {
                continue;
            }
            let mut keys = HashMap::new();
            for owner in owners {
                let key = key_for_writing_in(&mut tx, &owner).await?;
                keys.insert(owner, key);
            }
            let before = (payload.clone(), metadata.clone());
            seal(
                &aggregate_type,
                &aggregate_id,
                &mut payload,
                &mut metadata,
                |o| keys.get(o).cloned(),
            );
            if (&payload, &metadata) == (&before.0, &before.1) {
                continue;
            }
            if immutable {
                // The one change ever made to recorded events, made before any digest covers
                // them; the guard is back before this transaction commits.
                let off = if postgres {
                    "ALTER TABLE events DISABLE TRIGGER events_are_immutable"
                } else {
                    "DROP TRIGGER events_are_immutable"
                };
                on_tx!(&mut tx, conn => sqlx::query(off).execute(conn).await.map(|_| ()))?;
                immutable = false;
            }
            let (payload, metadata) = (payload.to_string(), metadata.to_string());
            on_tx!(&mut tx, conn => sqlx::query(update)
                .bind(&payload)
                .bind(&metadata)
                .bind(position)
                .execute(conn)
                .await
                .map(|_| ()))?;
            sealed += 1;
        }
        after = last;
    }
    if !immutable {
        let on = if postgres {
            "ALTER TABLE events ENABLE TRIGGER events_are_immutable"
        } else {
            // As the first migration created it.
            "CREATE TRIGGER events_are_immutable BEFORE UPDATE ON events FOR EACH ROW \
             WHEN OLD.global_position IS NOT NULL \
             BEGIN SELECT RAISE(ABORT, 'events are immutable'); END"
        };
        on_tx!(&mut tx, conn => sqlx::query(on).execute(conn).await.map(|_| ()))?;
    }
    tx.commit().await?;
    Ok(sealed)
}
