//! `authledger ledger verify|keys|seal`: recomputes the hash chain over the event log and
//! checks the seals over it (see `authledger_projections::ledger` and `crate::ledger_seal`).

use authledger_projections::ledger::{self, Verified};
use clap::Subcommand;

use super::events::EventsFormat;
use crate::error::AppError;
use crate::store::Store;

#[derive(Subcommand)]
pub(super) enum LedgerCommand {
    /// Recompute the chain from the events and check it link by link; exits 7 at the first
    /// break (altered, missing, inserted or reordered event, or a gap in the chain) and says
    /// where it is.
    Verify {
        /// Start at the first link at or after this global position (trusting the digest
        /// recorded before it); from the beginning when omitted.
        #[arg(long, value_name = "POS")]
        from: Option<i64>,
        /// Stop at the last link at or before this global position.
        #[arg(long, value_name = "POS")]
        to: Option<i64>,
        /// Check the seals with these public keys (a JWKS saved from
        /// /.well-known/ledger-keys) instead of the ones the store holds: whoever can edit the
        /// database can replace those too.
        #[arg(long, value_name = "FILE")]
        keys: Option<std::path::PathBuf>,
        /// text for people (the default), or json.
        #[arg(long, value_enum, default_value_t = EventsFormat::Text)]
        format: EventsFormat,
    },
    /// Print the public keys that sign the seals (JWKS), as /.well-known/ledger-keys serves
    /// them: keep a copy where the database's administrators cannot change it.
    Keys,
    /// Seal the chain head now (the server seals by itself, see the ledger_seal_* settings).
    Seal,
    /// Write the events recorded in a time range, with their digests and the seals over them,
    /// as JSON lines that `verify-export` (or tools/verify_ledger_export.py) checks offline.
    Export {
        /// From this time: RFC 3339, a date, or a time ago (24h, 7d); the beginning if omitted.
        #[arg(long, value_name = "TIME")]
        since: Option<String>,
        /// Before this time, in the same forms; up to now if omitted.
        #[arg(long, value_name = "TIME")]
        until: Option<String>,
        /// Write here instead of standard output.
        #[arg(long, short, value_name = "FILE")]
        output: Option<std::path::PathBuf>,
    },
    /// Move the events of grants that ended longer ago than the retention_days setting (or
    /// before --ended-before) out of the live log into a segment file in the archive
    /// directory (--archive-dir / archive_dir). Their links and seals stay: verify, export and
    /// a projections rebuild read them from the segment.
    Archive {
        /// Archive the grants ended before this time instead: RFC 3339, a date, or a time ago
        /// (90d); at most now.
        #[arg(long, value_name = "TIME")]
        ended_before: Option<String>,
        /// Count what would be archived; write and delete nothing.
        #[arg(long)]
        dry_run: bool,
        /// text for people (the default), or json.
        #[arg(long, value_enum, default_value_t = EventsFormat::Text)]
        format: EventsFormat,
    },
    /// Check an export offline with the published seal keys only; exits 7 at the first break.
    VerifyExport {
        /// The file `ledger export` wrote.
        #[arg(value_name = "FILE")]
        file: std::path::PathBuf,
        /// The public keys (a JWKS saved from /.well-known/ledger-keys or `ledger keys`).
        #[arg(long, value_name = "FILE")]
        keys: std::path::PathBuf,
    },
}

/// What `verify` found, chain and seals.
#[derive(serde::Serialize)]
struct Report {
    #[serde(flatten)]
    chain: Verified,
    seals_checked: usize,
    /// The chain's first break, or else the seals'.
    #[serde(rename = "first_break")]
    found: Option<serde_json::Value>,
}

/// The link of the first event at or after `position` (`first`), or of the last at or before.
async fn link_at(store: &Store, position: i64, first: bool) -> Result<Option<i64>, AppError> {
    let sql = match first {
        true => "SELECT min(link) FROM ledger_chain WHERE global_position >= $1",
        false => "SELECT max(link) FROM ledger_chain WHERE global_position <= $1",
    };
    authledger_projections::on_db!(&store.db, pool => sqlx::query_scalar(sql).bind(position).fetch_one(pool).await)
        .map_err(|e| AppError::Internal(e.into()))
}

pub(super) async fn ledger(
    store: &Store,
    command: LedgerCommand,
    master: &super::MasterKeySource,
) -> Result<(), AppError> {
    let (from, to, keys, format) = match command {
        LedgerCommand::Export {
            since,
            until,
            output,
        } => return export(store, since, until, output).await,
        LedgerCommand::VerifyExport { .. } => unreachable!("runs without a store"),
        LedgerCommand::Archive {
            ended_before,
            dry_run,
            format,
        } => return archive(store, ended_before, dry_run, format).await,
        LedgerCommand::Keys => {
            return super::output::print_json(&crate::ledger_seal::published(&store.db).await?)
        }
        LedgerCommand::Seal => {
            ledger::link_all(&store.db).await?;
            let master = master.load(store).await?;
            match crate::ledger_seal::seal_if_due(&store.db, &master, 1, 0, true).await? {
                Some(seal) => eprintln!(
                    "sealed link {} (position {}) with key {}",
                    seal.link, seal.global_position, seal.kid
                ),
                None => eprintln!("nothing new to seal"),
            }
            return Ok(());
        }
        LedgerCommand::Verify {
            from,
            to,
            keys,
            format,
        } => (from, to, keys, format),
    };
    let keys = keys.map(|file| read_keys(&file)).transpose()?;
    let from_link = match from {
        Some(position) => Some(link_at(store, position, true).await?.unwrap_or(i64::MAX)),
        None => None,
    };
    let to_link = match to {
        Some(position) => Some(link_at(store, position, false).await?.unwrap_or(0)),
        None => None,
    };
    let verified = ledger::verify(
        &store.db,
        from_link,
        to_link,
        store.runner.archive().as_ref(),
    )
    .await?;
    let (seals_checked, found) = match &verified.first_break {
        Some(chain) => (0, Some((to_json(chain), chain.to_string()))),
        None => {
            let head = verified.head.as_ref().map_or(0, |h| h.link);
            let (checked, seal) = crate::ledger_seal::check(&store.db, keys.as_ref(), head).await?;
            (checked, seal.map(|s| (to_json(&s), s.to_string())))
        }
    };
    let (found_json, message) = match found {
        Some((value, message)) => (Some(value), Some(message)),
        None => (None, None),
    };
    let report = Report {
        chain: verified,
        seals_checked,
        found: found_json,
    };
    match format {
        EventsFormat::Json => super::output::print_json(&report)?,
        EventsFormat::Text => say(&report),
    }
    match message {
        Some(message) => Err(AppError::Tampered(message)),
        None => Ok(()),
    }
}

fn to_json(found: &impl serde::Serialize) -> serde_json::Value {
    serde_json::to_value(found).unwrap_or_default()
}

fn say(report: &Report) {
    let verified = &report.chain;
    match &verified.head {
        Some(head) => eprintln!(
            "{} link(s) verified, up to position {} (link {}, digest {})",
            verified.links, head.global_position, head.link, head.digest
        ),
        None => eprintln!("{} link(s) verified", verified.links),
    }
    if verified.archived > 0 {
        eprintln!("{} of them from archive segments", verified.archived);
    }
    eprintln!("{} seal(s) checked", report.seals_checked);
    if verified.unlinked > 0 {
        eprintln!(
            "{} event(s) committed since are not linked yet (the server links them within a second)",
            verified.unlinked
        );
    }
}

fn read_keys(file: &std::path::Path) -> Result<serde_json::Value, AppError> {
    let text = std::fs::read_to_string(file)
        .map_err(|e| AppError::invalid_field("keys", format!("{}: {e}", file.display())))?;
    serde_json::from_str(&text).map_err(|e| {
        AppError::invalid_field("keys", format!("{}: not a JWKS: {e}", file.display()))
    })
}

async fn export(
    store: &Store,
    since: Option<String>,
    until: Option<String>,
    output: Option<std::path::PathBuf>,
) -> Result<(), AppError> {
    let now = chrono::Utc::now();
    let time = |field: &str, raw: Option<String>| {
        raw.map(|raw| {
            authledger_domain::instant::parse(&raw, now)
                .map_err(|why| AppError::invalid_field(field, format!("--{field}: {why}")))
        })
        .transpose()
    };
    let (since, until) = (time("since", since)?, time("until", until)?);
    let (events, seals) = match &output {
        Some(file) => {
            let created = std::fs::File::create(file).map_err(|e| {
                AppError::invalid_field("output", format!("{}: {e}", file.display()))
            })?;
            let mut out = crate::ledger_export::WriteSink(std::io::BufWriter::new(created));
            crate::ledger_export::export(store, since, until, &mut out).await?
        }
        None => {
            let mut out = crate::ledger_export::WriteSink(std::io::stdout());
            crate::ledger_export::export(store, since, until, &mut out).await?
        }
    };
    eprintln!("exported {events} event(s) and {seals} seal(s)");
    Ok(())
}

async fn archive(
    store: &Store,
    ended_before: Option<String>,
    dry_run: bool,
    format: EventsFormat,
) -> Result<(), AppError> {
    let now = chrono::Utc::now();
    let ended_before = match ended_before {
        Some(raw) => {
            let at = authledger_domain::instant::parse(&raw, now).map_err(|why| {
                AppError::invalid_field("ended-before", format!("--ended-before: {why}"))
            })?;
            if at > now {
                return Err(AppError::invalid_field(
                    "ended-before",
                    "--ended-before: a grant cannot have ended in the future",
                ));
            }
            at
        }
        None => match store.settings_values().await?.retention_days {
            0 => {
                return Err(AppError::invalid_field(
                    "retention_days",
                    "retention_days is 0, which keeps all history in the live log: set it \
                     (authledger settings set retention_days 365) or pass --ended-before",
                ))
            }
            days => now - chrono::Duration::days(i64::from(days)),
        },
    };
    let archive = match (store.runner.archive(), dry_run) {
        (Some(archive), _) => archive,
        // A dry run writes nothing, so needs no directory.
        (None, true) => authledger_projections::ledger::segments::Archive::new("."),
        (None, false) => {
            return Err(AppError::invalid_field(
                "archive_dir",
                "no archive directory: set archive_dir in the configuration \
                 (AUTHLEDGER_ARCHIVE_DIR) or pass --archive-dir DIR",
            ))
        }
    };
    let actor = super::cli_metadata().actor.to_string();
    let done =
        crate::ledger_archive::archive(store, &archive, ended_before, &actor, dry_run).await?;
    if format == EventsFormat::Json {
        return super::output::print_json(&done);
    }
    match (&done.segment, done.dry_run) {
        (_, true) => eprintln!(
            "dry run: {} event(s) of {} grant(s) ended before {} would be archived",
            done.events, done.grants, done.ended_before
        ),
        (Some(segment), false) => eprintln!(
            "archived {} event(s) of {} grant(s) ended before {} into {} (sha256 {})",
            segment.events,
            segment.grants,
            done.ended_before,
            archive.path_of(&segment.name).display(),
            segment.sha256
        ),
        (None, false) => eprintln!(
            "nothing to archive: no grant's events ended before {} are in the live log",
            done.ended_before
        ),
    }
    Ok(())
}

/// `ledger verify-export FILE --keys JWKS`: needs no store.
pub(super) fn verify_export(
    file: &std::path::Path,
    keys: &std::path::Path,
) -> Result<(), AppError> {
    let keys = read_keys(keys)?;
    let opened = std::fs::File::open(file)
        .map_err(|e| AppError::invalid_field("file", format!("{}: {e}", file.display())))?;
    let verified = crate::ledger_export::verify(std::io::BufReader::new(opened), &keys)?;
    eprintln!(
        "{} event(s) and {} seal(s) verified; {} event(s) after the last seal are checked by the chain alone",
        verified.events, verified.seals, verified.unsealed_events
    );
    Ok(())
}
