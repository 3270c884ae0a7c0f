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
    /// table for people, json for one JSON object per line.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
    /// At most this many rows (the newest, unless --oldest-first); says when there are more.
    #[arg(long, default_value_t = 100)]
    limit: i64,
    /// From the oldest matching row on, instead of the newest back.
    #[arg(long)]
    oldest_first: bool,
    /// Then keep printing new rows as they are recorded, until interrupted.
    #[arg(long)]
    follow: bool,
}

/// How audit rows are printed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub(super) enum Format {
    /// One JSON object per line.
    Json,
    /// Aligned columns for people.
    Table,
}

fn table() -> comfy_table::Table {
    super::output::table(["POS", "TIME", "EVENT", "ACTOR", "USER", "IP", "SUMMARY"])
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
    /// Only rows about this client (its id).
    #[arg(long, alias = "client-id")]
    client: Option<String>,
    /// Only rows about this person.
    #[arg(long)]
    user: Option<String>,
    /// Only rows about this grant.
    #[arg(long)]
    grant: Option<String>,
    /// Only this event type, e.g. LoginFailed (any case); an unknown one lists the types.
    #[arg(long = "type")]
    event_type: Option<String>,
    /// Only token exchanges in which this client acted for the user (RFC 8693 delegation).
    #[arg(long, value_name = "CLIENT")]
    acting_client: Option<String>,
    /// From this time (inclusive): RFC 3339, a date, or a time ago (24h, 7d).
    #[arg(long, value_name = "TIME")]
    since: Option<String>,
    /// Until this time (exclusive), in the same forms.
    #[arg(long, value_name = "TIME")]
    until: Option<String>,
}

pub(super) async fn audit(store: &Store, args: AuditArgs) -> Result<(), AppError> {
    use authledger_projections::audit::{AuditFilter, AuditLog};
    let export = matches!(args.export, Some(AuditExport::Export { .. }));
    let filter = match args.export {
        Some(AuditExport::Export { filter }) => filter,
        None => args.filter,
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
        client_id: filter.client,
        username: filter.user.map(|u| u.to_ascii_lowercase()),
        grant_id: filter.grant,
        event_type: filter
            .event_type
            .as_deref()
            .map(admin::event_type)
            .transpose()?,
        acting_client_id: filter.acting_client,
        since: time("since", filter.since)?,
        until: time("until", filter.until)?,
        after: None,
    };
    let db = &store.db;
    let mut rows = Rows {
        json: export || args.format == Format::Json,
        out: std::io::stdout().lock(),
        names: Names::default(),
    };
    if export {
        // Every row, oldest first, streamed: an export may be the whole log.
        loop {
            let page = AuditLog::query(db, &query, admin::MAX_PAGE).await?;
            let Some(last) = page.last() else {
                return Ok(());
            };
            query.after = Some(last.global_position);
            if !rows.lines(store, &page).await? {
                return Ok(());
            }
        }
    }
    let limit = args.limit.clamp(1, 100_000);
    // One more than asked, to tell whether there are more.
    let mut page = if args.oldest_first {
        AuditLog::query(db, &query, limit + 1).await?
    } else {
        AuditLog::newest(db, &query, None, limit + 1).await?
    };
    let more = page.len() as i64 > limit;
    page.truncate(limit as usize);
    let newest = page.iter().map(|r| r.global_position).max();
    if !rows.print(store, &page).await? {
        return Ok(());
    }
    if more {
        eprintln!(
            "(showing {limit} rows; more match: raise --limit, or narrow with --since, --until, --type, --user or --client)"
        );
    }
    if !args.follow {
        return Ok(());
    }
    query.after = newest.or(Some(0));
    if newest.is_none() {
        query.after = authledger_projections::event_log::last_position(db)
            .await?
            .map(|p| p.global);
    }
    loop {
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
        let page = AuditLog::query(db, &query, admin::MAX_PAGE).await?;
        if let Some(last) = page.last() {
            query.after = Some(last.global_position);
            if !rows.lines(store, &page).await? {
                return Ok(());
            }
        }
    }
}

/// Client names for the ACTOR column, read once each.
#[derive(Default)]
struct Names(std::collections::HashMap<String, String>);

impl Names {
    /// `client:<id>` as `client:<name>` (the id when the client is unknown); a person's and
    /// the CLI's actors as they are.
    async fn actor(&mut self, store: &Store, actor: &str) -> String {
        let Some(id) = actor.strip_prefix("client:") else {
            return actor.to_owned();
        };
        if !self.0.contains_key(id) {
            let name = authledger_projections::clients::ClientsView::get(&store.db, id)
                .await
                .ok()
                .flatten()
                .map_or_else(|| id.to_owned(), |c| c.name);
            self.0.insert(id.to_owned(), name);
        }
        format!("client:{}", self.0[id])
    }
}

/// Where audit rows go: one JSON object per line, or table rows.
struct Rows<W: std::io::Write> {
    json: bool,
    out: W,
    names: Names,
}

/// A column's text cut to `width` characters, the cut shown.
fn fit(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        return text.to_owned();
    }
    let kept: String = text.chars().take(width.saturating_sub(1)).collect();
    format!("{kept}…")
}

impl<W: std::io::Write> Rows<W> {
    /// Rows as a table whose columns are as wide as their widest cell (or JSON lines).
    async fn print(
        &mut self,
        store: &Store,
        page: &[authledger_projections::audit::AuditRecord],
    ) -> Result<bool, AppError> {
        if self.json {
            return self.lines(store, page).await;
        }
        let mut table = table();
        for row in page {
            let actor = self.names.actor(store, &row.actor).await;
            table.add_row(self.cells(row, actor));
        }
        for line in table.lines() {
            if !write_line(&mut self.out, line.trim_end())? {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Rows one line each as they come (`--follow`, export): fixed widths for a table.
    async fn lines(
        &mut self,
        store: &Store,
        page: &[authledger_projections::audit::AuditRecord],
    ) -> Result<bool, AppError> {
        for row in page {
            let line = if self.json {
                serde_json::to_string(row).map_err(|e| AppError::Internal(e.into()))?
            } else {
                let actor = self.names.actor(store, &row.actor).await;
                let [position, time, event, actor, user, ip, summary] = self.cells(row, actor);
                format!("{position:<8}{time:<29}{event:<24}{actor:<26}{user:<18}{ip:<17}{summary}")
            };
            if !write_line(&mut self.out, &line)? {
                return Ok(false);
            }
        }
        Ok(true)
    }

    fn cells(
        &self,
        row: &authledger_projections::audit::AuditRecord,
        actor: String,
    ) -> [String; 7] {
        [
            row.global_position.to_string(),
            row.occurred_at.clone(),
            row.event_type.clone(),
            fit(&actor, 24),
            row.username.clone().unwrap_or_else(|| "-".into()),
            row.ip.clone().unwrap_or_else(|| "-".into()),
            row.summary.clone(),
        ]
    }
}
