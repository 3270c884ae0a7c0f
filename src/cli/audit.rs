//! `authledger audit [filters]` and `audit export`.

use chrono::Utc;
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

/// Aligned columns without borders, so that `grep` and `cut` still work on them.
fn table() -> comfy_table::Table {
    let mut table = comfy_table::Table::new();
    table
        .load_preset(comfy_table::presets::NOTHING)
        .set_header(["POS", "TIME", "EVENT", "ACTOR", "IP", "SUMMARY"]);
    for column in table.column_iter_mut() {
        column.set_padding((0, 2));
    }
    table
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
                authledger_domain::instant::parse(&raw, Utc::now())
                    .map(authledger_projections::view_time)
                    .map_err(|e| AppError::invalid(format!("--{flag} {e}")))
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
    let mut table = (!json).then(table);
    let mut printed = 0i64;
    while printed < limit {
        let page =
            AuditLog::query(&store.db, &query, (limit - printed).min(admin::MAX_PAGE)).await?;
        let Some(last) = page.last() else { break };
        query.after = Some(last.global_position);
        for row in &page {
            printed += 1;
            if let Some(table) = table.as_mut() {
                table.add_row([
                    row.global_position.to_string().as_str(),
                    &row.occurred_at,
                    &row.event_type,
                    &row.actor,
                    row.ip.as_deref().unwrap_or("-"),
                    &row.summary,
                ]);
                continue;
            }
            // JSON lines stream: an export may be the whole log.
            let line = serde_json::to_string(row).map_err(|e| AppError::Internal(e.into()))?;
            if !write_line(&mut out, &line)? {
                return Ok(());
            }
        }
    }
    if let Some(table) = table {
        // Columns are as wide as their widest cell, so a table waits for its last row; it
        // holds at most `--limit` rows (100 unless asked).
        for line in table.lines() {
            if !write_line(&mut out, line.trim_end())? {
                break;
            }
        }
    }
    Ok(())
}
