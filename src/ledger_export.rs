//! `authledger ledger export` and `ledger verify-export`: a stretch of the ledger as JSON lines
//! that anyone can check offline with only the published seal keys.
//!
//! The file, one JSON object per line:
//!
//! ```text
//! {"format":"authledger-ledger-export/1","exported_at":T,"from_link":A,"to_link":B,"previous_digest":HEX}
//! {"type":"event","link":n,"digest":HEX,"event":{...canonical event object...}}     for n = A..=B
//! {"type":"seal","link":n,"position":P,"digest":HEX,"sealed_at":T,"kid":K,"signature":B64URL}   seals in A..=B
//! ```
//!
//! To verify: start from `previous_digest`; for each event line in order, `digest =
//! SHA-256(previous || canonical(event))` must equal the line's `digest` and its `link` must be
//! the next; each seal must be signed (Ed25519) by the published key `kid` over
//! `canonical({digest, kid, link, position, sealed_at})` and name the digest of its link.
//! `canonical` writes JSON with every object's keys sorted, no whitespace (Python:
//! `json.dumps(v, sort_keys=True, separators=(",", ":"), ensure_ascii=False)`).
//! `tools/verify_ledger_export.py` does exactly this.

use std::io::{BufRead, Write};

use authledger_projections::ledger::segments;
use authledger_projections::{event_log, ledger};
use serde_json::{json, Value};

use crate::error::AppError;
use crate::ledger_seal::{self, Seal};
use crate::store::Store;

pub const FORMAT: &str = "authledger-ledger-export/1";
const PAGE: i64 = 2_000;

/// Where an export goes, a page of lines at a time: a file or standard output (the CLI), or
/// a channel feeding a streamed HTTP response (the admin API), so no export is held whole.
#[async_trait::async_trait]
pub trait Sink: Send {
    async fn put(&mut self, lines: Vec<u8>) -> Result<(), AppError>;
}

/// A [`Sink`] over anything written to.
pub struct WriteSink<W>(pub W);

#[async_trait::async_trait]
impl<W: Write + Send> Sink for WriteSink<W> {
    async fn put(&mut self, lines: Vec<u8>) -> Result<(), AppError> {
        self.0
            .write_all(&lines)
            .and_then(|()| self.0.flush())
            .map_err(|e| AppError::Internal(e.into()))
    }
}

#[async_trait::async_trait]
impl Sink for tokio::sync::mpsc::Sender<Vec<u8>> {
    async fn put(&mut self, lines: Vec<u8>) -> Result<(), AppError> {
        self.send(lines)
            .await
            .map_err(|_| AppError::Internal(anyhow::anyhow!("the export's reader went away")))
    }
}

fn push_line(page: &mut Vec<u8>, line: &[u8]) {
    page.extend_from_slice(line);
    page.push(b'\n');
}

/// The links whose events were recorded in `[since, until)` (all when both are `None`): the
/// first such link to the last, every link between included so the chain stays whole.
pub async fn range(
    store: &Store,
    since: Option<chrono::DateTime<chrono::Utc>>,
    until: Option<chrono::DateTime<chrono::Utc>>,
) -> Result<Option<(i64, i64)>, AppError> {
    let (mut first, mut last) = (None, None);
    let mut archived = archived_events(store).await?;
    let mut next = 1;
    loop {
        let links = ledger::links(&store.db, next, PAGE).await?;
        let Some(end) = links.last().map(|l| l.link) else {
            break;
        };
        let positions: Vec<i64> = links.iter().map(|l| l.global_position).collect();
        let events = event_log::read_positions(&store.db, &positions).await?;
        for link in &links {
            // An event archived counts by its own time too; one gone, not at all.
            let at = match events.get(&link.global_position) {
                Some(event) => event.metadata.at,
                None => match archived.event_of(link.link, link.global_position)? {
                    Some(archived) => archived.event.metadata.at,
                    None => continue,
                },
            };
            if since.is_none_or(|s| at >= s) && until.is_none_or(|u| at < u) {
                first.get_or_insert(link.link);
                last = Some(link.link);
            }
        }
        next = end + 1;
    }
    Ok(first.zip(last))
}

/// Writes the export of the events recorded in `[since, until)` to `out`; returns how many
/// events and seals it holds.
pub async fn export(
    store: &Store,
    since: Option<chrono::DateTime<chrono::Utc>>,
    until: Option<chrono::DateTime<chrono::Utc>>,
    out: &mut impl Sink,
) -> Result<(usize, usize), AppError> {
    let (from_link, to_link) = range(store, since, until)
        .await?
        .ok_or_else(|| AppError::NotFound("no linked event was recorded in that time".into()))?;
    write_links(store, from_link, to_link, out).await
}

/// Writes the export of the links `from_link..=to_link` (see [`range`]).
pub async fn write_links(
    store: &Store,
    from_link: i64,
    to_link: i64,
    out: &mut impl Sink,
) -> Result<(usize, usize), AppError> {
    let previous = ledger::digest_at(&store.db, from_link - 1)
        .await?
        .ok_or_else(|| AppError::Tampered(format!("link {} is missing", from_link - 1)))?;
    let header = json!({
        "format": FORMAT,
        "exported_at": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "from_link": from_link,
        "to_link": to_link,
        "previous_digest": previous,
    });
    let mut page = Vec::new();
    push_line(&mut page, &ledger::canonical_json(&header));
    out.put(page).await?;
    let mut archived = archived_events(store).await?;
    let mut events = 0;
    let mut next = from_link;
    while next <= to_link {
        let links = ledger::links(&store.db, next, PAGE.min(to_link - next + 1)).await?;
        let Some(end) = links.last().map(|l| l.link) else {
            break;
        };
        let positions: Vec<i64> = links.iter().map(|l| l.global_position).collect();
        let stored = event_log::read_positions(&store.db, &positions).await?;
        let mut page = Vec::with_capacity(links.len() * 512);
        for link in &links {
            // Not in the live log: archived, or gone.
            let from_archive = match stored.contains_key(&link.global_position) {
                true => None,
                false => archived.event_of(link.link, link.global_position)?,
            };
            let event = match (stored.get(&link.global_position), &from_archive) {
                (Some(event), _) => event,
                (None, Some(archived)) => &archived.event,
                (None, None) => {
                    return Err(AppError::Tampered(format!(
                        "the event at position {} (link {}) is gone from the log",
                        link.global_position, link.link
                    )))
                }
            };
            let canonical = ledger::canonical(event);
            let line = format!(
                "{{\"digest\":\"{}\",\"event\":{},\"link\":{},\"type\":\"event\"}}",
                link.digest,
                String::from_utf8_lossy(&canonical),
                link.link
            );
            push_line(&mut page, line.as_bytes());
            events += 1;
        }
        out.put(page).await?;
        next = end + 1;
    }
    let seals: Vec<Seal> = ledger_seal::all(&store.db)
        .await?
        .into_iter()
        .filter(|s| (from_link..=to_link).contains(&s.link))
        .collect();
    let mut page = Vec::new();
    for seal in &seals {
        let line = json!({
            "type": "seal", "link": seal.link, "position": seal.global_position,
            "digest": seal.digest, "sealed_at": seal.sealed_at, "kid": seal.kid,
            "signature": seal.signature,
        });
        push_line(&mut page, &ledger::canonical_json(&line));
    }
    out.put(page).await?;
    Ok((events, seals.len()))
}

/// The archive's events, for the links whose events left the live log (`ledger archive`).
async fn archived_events(store: &Store) -> Result<segments::Reader, AppError> {
    let archive = store.runner.archive();
    Ok(segments::open_recorded(&store.db, archive.as_ref(), None, "an export").await?)
}

/// What a file check found.
#[derive(Debug, serde::Serialize)]
pub struct FileVerified {
    pub events: usize,
    pub seals: usize,
    /// Events after the last seal: checked by the chain alone.
    pub unsealed_events: usize,
}

/// Checks an export read from `input` with the public keys `keys` (a JWKS).
pub fn verify(input: impl BufRead, keys: &Value) -> Result<FileVerified, AppError> {
    let broken = |line: usize, why: String| AppError::Tampered(format!("line {line}: {why}"));
    let mut lines = input.lines().enumerate();
    let header: Value = match lines.next() {
        Some((_, Ok(text))) => serde_json::from_str(&text)
            .map_err(|e| AppError::invalid_field("file", format!("line 1: {e}")))?,
        _ => return Err(AppError::invalid_field("file", "the file is empty")),
    };
    if header["format"] != FORMAT {
        return Err(AppError::invalid_field(
            "file",
            format!("line 1: not a ledger export ({FORMAT})"),
        ));
    }
    let hex32 = |v: &Value| -> Option<[u8; 32]> { hex::decode(v.as_str()?).ok()?.try_into().ok() };
    let mut previous = hex32(&header["previous_digest"])
        .ok_or_else(|| broken(1, "previous_digest is not a SHA-256 in hex".into()))?;
    let mut next_link = header["from_link"]
        .as_i64()
        .ok_or_else(|| broken(1, "from_link is missing".into()))?;
    let to_link = header["to_link"].as_i64().unwrap_or(i64::MAX);
    let mut digests = std::collections::HashMap::new();
    let (mut events, mut seals, mut last_sealed) = (0, 0, None);
    for (index, text) in lines {
        let number = index + 1;
        let text =
            text.map_err(|e| AppError::invalid_field("file", format!("line {number}: {e}")))?;
        let line: Value =
            serde_json::from_str(&text).map_err(|e| broken(number, format!("not JSON: {e}")))?;
        match line["type"].as_str() {
            Some("event") => {
                if line["link"].as_i64() != Some(next_link) {
                    return Err(broken(number, format!("expected link {next_link}")));
                }
                let computed = ledger::digest(&previous, &ledger::canonical_json(&line["event"]));
                if Some(computed) != hex32(&line["digest"]) {
                    return Err(broken(
                        number,
                        format!(
                            "altered: the event at link {next_link} (position {}) does not hash to its digest",
                            line["event"]["position"]
                        ),
                    ));
                }
                digests.insert(next_link, hex::encode(computed));
                previous = computed;
                next_link += 1;
                events += 1;
            }
            Some("seal") => {
                let seal: Seal = Seal {
                    link: line["link"].as_i64().unwrap_or_default(),
                    global_position: line["position"].as_i64().unwrap_or_default(),
                    digest: line["digest"].as_str().unwrap_or_default().to_owned(),
                    sealed_at: line["sealed_at"].as_str().unwrap_or_default().to_owned(),
                    kid: line["kid"].as_str().unwrap_or_default().to_owned(),
                    signature: line["signature"].as_str().unwrap_or_default().to_owned(),
                };
                if !ledger_seal::signature_holds(&seal, keys) {
                    return Err(broken(
                        number,
                        format!(
                            "bad seal: the seal of link {} is not signed by key {}",
                            seal.link, seal.kid
                        ),
                    ));
                }
                if digests.get(&seal.link) != Some(&seal.digest) {
                    return Err(broken(
                        number,
                        format!(
                            "the seal of link {} does not name that link's digest",
                            seal.link
                        ),
                    ));
                }
                seals += 1;
                last_sealed = Some(last_sealed.unwrap_or(0).max(seal.link));
            }
            _ => return Err(broken(number, "neither an event nor a seal".into())),
        }
    }
    if next_link <= to_link {
        return Err(AppError::Tampered(format!(
            "missing: the file ends at link {}, before link {to_link} that its first line announces",
            next_link - 1
        )));
    }
    let unsealed_events = match last_sealed {
        Some(sealed) => (to_link - sealed).max(0) as usize,
        None => events,
    };
    Ok(FileVerified {
        events,
        seals,
        unsealed_events,
    })
}
