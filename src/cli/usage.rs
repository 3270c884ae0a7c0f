//! `authledger usage`: totals per metric and an hourly table, for a client, a person or all.

use std::collections::BTreeMap;

use clap::Args;

use super::audit::Format;
use super::output::{print_json, write_line};
use crate::admin::usage::{report, UsageQuery};
use crate::error::AppError;
use crate::store::Store;

#[derive(Args)]
pub(super) struct UsageArgs {
    /// From when (inclusive, rounded down to the hour): RFC 3339, a date, or a time ago.
    #[arg(long, default_value = "24h", value_name = "TIME")]
    since: String,
    /// Until when (exclusive); default now.
    #[arg(long, value_name = "TIME")]
    until: Option<String>,
    /// Only this client's usage (its id).
    #[arg(long)]
    client: Option<String>,
    /// Only this person's usage.
    #[arg(long)]
    user: Option<String>,
    /// table for people; json prints the report (totals and rows) as one object.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
}

pub(super) async fn usage(store: &Store, args: UsageArgs) -> Result<(), AppError> {
    let report = report(
        store,
        UsageQuery {
            client: args.client,
            user: args.user,
            since: Some(args.since),
            until: args.until,
        },
    )
    .await?;
    if args.format == Format::Json {
        return print_json(&report);
    }
    let mut out = std::io::stdout().lock();
    let span = format!(
        "usage since {}{}",
        report.since.as_deref().unwrap_or("the start"),
        report
            .until
            .as_deref()
            .map(|u| format!(" until {u}"))
            .unwrap_or_default()
    );
    write_line(&mut out, &span)?;
    if report.items.is_empty() {
        write_line(&mut out, "nothing counted")?;
        return Ok(());
    }
    for (metric, total) in &report.totals {
        write_line(&mut out, &format!("  {metric:<24}{total:>10}"))?;
    }
    // One row per hour, one column per metric.
    let metrics: Vec<&String> = report.totals.keys().collect();
    let mut hours: BTreeMap<&str, BTreeMap<&str, i64>> = BTreeMap::new();
    for row in &report.items {
        *hours
            .entry(&row.hour)
            .or_default()
            .entry(&row.metric)
            .or_default() += row.count;
    }
    let mut table = super::output::table(
        std::iter::once("HOUR".to_owned()).chain(metrics.iter().map(|m| m.to_uppercase())),
    );
    for (hour, counts) in &hours {
        table.add_row(
            std::iter::once(hour.to_string()).chain(
                metrics
                    .iter()
                    .map(|m| counts.get(m.as_str()).copied().unwrap_or(0).to_string()),
            ),
        );
    }
    write_line(&mut out, "")?;
    for line in table.lines() {
        if !write_line(&mut out, line.trim_end())? {
            break;
        }
    }
    Ok(())
}
