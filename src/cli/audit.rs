//! `authledger audit [filters]` and `audit export`.

use chrono::{DateTime, Utc};
use clap::{Args, Subcommand};

use super::output::write_line;
use crate::admin;
use crate::error::AppError;
use crate::store::Store;

#[derive(Args)]
#[command(args_conflicts_with_subcommands = true)]
pub(super) struct AuditArgs {
    #[command(subcommand)]
    export: Option<AuditExport>,
    #[command(flatten)]
    filter: AuditFilterArgs,
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
    /// At most this many rows.
    #[arg(long, default_value_t = 100)]
    limit: i64,
}

/// How audit rows are printed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub(super) enum Format {
    /// One JSON object per line.
    Json,
    /// Aligned columns for people.
    Table,
}

#[derive(Subcommand)]
pub(super) enum AuditExport {
    /// Every matching row as JSON lines, e.g. `audit export --since T > audit.jsonl`.
    Export {
        #[command(flatten)]
        filter: AuditFilterArgs,
    },
}

#[derive(Args, Clone, Default)]
pub(super) struct AuditFilterArgs {
    #[arg(long)]
    client_id: Option<String>,
    #[arg(long)]
    user: Option<String>,
    #[arg(long)]
    grant: Option<String>,
    /// An event type, e.g. LoginFailed.
    #[arg(long = "type")]
    event_type: Option<String>,
    #[arg(long, value_name = "RFC3339")]
    since: Option<String>,
    #[arg(long, value_name = "RFC3339")]
    until: Option<String>,
}

pub(super) async fn audit(store: &Store, args: AuditArgs) -> Result<(), AppError> {
    use authledger_projections::audit::{AuditFilter, AuditLog};
    let (filter, json, limit) = match args.export {
        Some(AuditExport::Export { filter }) => (filter, true, i64::MAX),
        None => (args.filter, args.format == Format::Json, args.limit),
    };
    let time = |flag: &str, value: Option<String>| -> Result<Option<String>, AppError> {
        value
            .map(|raw| {
                DateTime::parse_from_rfc3339(&raw)
                    .map(|t| authledger_projections::view_time(t.with_timezone(&Utc)))
                    .map_err(|e| AppError::invalid(format!("--{flag} `{raw}`: {e}")))
            })
            .transpose()
    };
    let mut query = AuditFilter {
        client_id: filter.client_id,
        username: filter.user.map(|u| u.to_ascii_lowercase()),
        grant_id: filter.grant,
        event_type: filter.event_type,
        since: time("since", filter.since)?,
        until: time("until", filter.until)?,
        after: None,
    };
    let mut out = std::io::stdout().lock();
    let columns = |pos: &str, time: &str, event: &str, actor: &str, ip: &str, summary: &str| {
        format!("{pos:<7} {time:<28} {event:<22} {actor:<24} {ip:<15} {summary}")
    };
    if !json {
        write_line(
            &mut out,
            &columns("POS", "TIME", "EVENT", "ACTOR", "IP", "SUMMARY"),
        )?;
    }
    let mut printed = 0i64;
    while printed < limit {
        let page =
            AuditLog::query(&store.db, &query, (limit - printed).min(admin::MAX_PAGE)).await?;
        let Some(last) = page.last() else { break };
        query.after = Some(last.global_position);
        for row in &page {
            let line = if json {
                serde_json::to_string(row).map_err(|e| AppError::Internal(e.into()))?
            } else {
                columns(
                    &row.global_position.to_string(),
                    &row.occurred_at,
                    &row.event_type,
                    &row.actor,
                    row.ip.as_deref().unwrap_or("-"),
                    &row.summary,
                )
            };
            if !write_line(&mut out, &line)? {
                return Ok(());
            }
            printed += 1;
        }
    }
    Ok(())
}
