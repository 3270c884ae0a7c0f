//! `authledger projections status|rebuild`: how far each read model has read the log, and
//! replaying it into fresh views.

use clap::Subcommand;
use serde::Serialize;

use super::audit::Format;
use super::output::{print_json, write_line};
use crate::error::AppError;
use crate::store::Store;
use authledger_projections::{checkpoint, event_log};

#[derive(Subcommand)]
pub(super) enum ProjectionsCommand {
    /// Each projection's checkpoint (the last global position it applied) and how far it is
    /// behind the log, in events and seconds.
    Status {
        /// table for people, json for programs.
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
    },
    /// Replay the whole log into fresh views (all, or the one named) and swap them in.
    Rebuild {
        /// A projection's name (see `projections status`); every one when absent.
        name: Option<String>,
    },
}

#[derive(Serialize)]
struct Status {
    projection: String,
    checkpoint: i64,
    head: i64,
    lag_events: i64,
    lag_seconds: f64,
}

pub(super) async fn projections(
    store: &Store,
    command: ProjectionsCommand,
) -> Result<(), AppError> {
    match command {
        ProjectionsCommand::Status { format } => status(store, format).await,
        ProjectionsCommand::Rebuild { name } => {
            let started = std::time::Instant::now();
            let replayed = store.runner.rebuild(name.as_deref()).await?;
            let seconds = started.elapsed().as_secs_f64();
            eprintln!(
                "rebuilt {} from {replayed} events in {seconds:.2} s ({:.0} events/s)",
                name.as_deref().unwrap_or("every projection"),
                replayed as f64 / seconds.max(1e-9)
            );
            Ok(())
        }
    }
}

async fn status(store: &Store, format: Format) -> Result<(), AppError> {
    let db = &store.db;
    let head = event_log::last_position(db).await?.map_or(0, |p| p.global);
    let mut rows = vec![];
    for (projection, at) in checkpoint::all(db).await? {
        let lag_events = (head - at).max(0);
        let lag_seconds = match lag_events {
            0 => 0.0,
            _ => event_log::recorded_after(db, at)
                .await?
                .map_or(0.0, |first| {
                    (chrono::Utc::now() - first).num_milliseconds().max(0) as f64 / 1000.0
                }),
        };
        rows.push(Status {
            projection,
            checkpoint: at,
            head,
            lag_events,
            lag_seconds,
        });
    }
    if format == Format::Json {
        return print_json(&rows);
    }
    let mut table = super::output::table(["PROJECTION", "CHECKPOINT", "HEAD", "BEHIND", "SECONDS"]);
    for row in &rows {
        table.add_row([
            row.projection.clone(),
            row.checkpoint.to_string(),
            row.head.to_string(),
            row.lag_events.to_string(),
            format!("{:.1}", row.lag_seconds),
        ]);
    }
    let mut out = std::io::stdout().lock();
    for line in table.lines() {
        if !write_line(&mut out, line.trim_end())? {
            break;
        }
    }
    Ok(())
}
