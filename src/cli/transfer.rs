//! `authledger export FILE` and `authledger import FILE [--dry-run]` (see `admin::transfer`).

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use super::audit::Format;
use super::{cli_metadata, MasterKeySource};
use crate::admin::transfer::{self, Document, Outcome};
use crate::error::AppError;
use crate::store::Store;

#[derive(clap::Args)]
pub(super) struct ExportArgs {
    /// Where to write the document, `-` for standard output. An existing file is replaced;
    /// a new one is readable by its owner only (it names people and their email addresses).
    #[arg(value_name = "FILE")]
    file: PathBuf,
}

#[derive(clap::Args)]
pub(super) struct ImportArgs {
    /// A document `authledger export` wrote, `-` for standard input.
    #[arg(value_name = "FILE")]
    file: PathBuf,
    /// Say what would be created and changed, and change nothing.
    #[arg(long)]
    dry_run: bool,
    /// table for people, json for programs (one object per entry).
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
}

fn is_stdio(file: &Path) -> bool {
    file.as_os_str() == "-"
}

pub(super) async fn export(store: &Store, args: ExportArgs) -> Result<(), AppError> {
    let document = transfer::export(store).await?;
    let mut text = serde_json::to_string_pretty(&document)
        .map_err(|e| AppError::Internal(anyhow::Error::new(e)))?;
    text.push('\n');
    if is_stdio(&args.file) {
        return super::output::write_line(&mut std::io::stdout().lock(), text.trim_end()).map(drop);
    }
    write_owner_only(&args.file, text.as_bytes())
        .map_err(|e| AppError::invalid_field("file", format!("{}: {e}", args.file.display())))?;
    eprintln!(
        "exported {} setting(s), {} client(s), {} user(s), {} signing key(s), {} connected \
         app(s), {} social login provider(s) to {} (no secrets)",
        document.settings.len(),
        document.clients.len(),
        document.users.len(),
        document.signing_keys.len(),
        document.connected_apps.len(),
        document.social_logins.len(),
        args.file.display()
    );
    Ok(())
}

fn write_owner_only(file: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(file)?.write_all(bytes)
}

fn read(file: &Path) -> Result<Document, AppError> {
    let mut text = String::new();
    let read = if is_stdio(file) {
        std::io::stdin().read_to_string(&mut text).map(drop)
    } else {
        std::fs::File::open(file).and_then(|mut f| f.read_to_string(&mut text).map(drop))
    };
    let name = if is_stdio(file) {
        "standard input".to_owned()
    } else {
        file.display().to_string()
    };
    read.map_err(|e| AppError::invalid_field("file", format!("{name}: {e}")))?;
    serde_json::from_str(&text).map_err(|e| {
        AppError::invalid_field(
            "file",
            format!("{name}: not an authledger export document: {e}"),
        )
    })
}

pub(super) async fn import(
    store: &Store,
    args: ImportArgs,
    master: &MasterKeySource,
) -> Result<(), AppError> {
    let document = read(&args.file)?;
    // Only a client signing ID tokens with its secret (HS256) needs the master key; loading it
    // for others could make a key file nobody asked for.
    let needs_master = document
        .clients
        .iter()
        .any(|c| c.metadata.id_token_signed_response_alg.as_deref() == Some("HS256"));
    let master = match needs_master && !args.dry_run {
        true => Some(master.load(store).await?),
        false => None,
    };
    let report = transfer::import(
        store,
        master.as_ref(),
        &document,
        args.dry_run,
        &cli_metadata(),
    )
    .await?;
    let mut out = std::io::stdout().lock();
    if args.format == Format::Json {
        for line in &report {
            let json = serde_json::to_string(line)
                .map_err(|e| AppError::Internal(anyhow::Error::new(e)))?;
            super::output::write_line(&mut out, &json)?;
        }
    } else {
        for line in report.iter().filter(|l| l.outcome != Outcome::Unchanged) {
            let outcome = match line.outcome {
                Outcome::Created => "created",
                Outcome::Changed => "changed",
                Outcome::Skipped => "skipped",
                Outcome::Unchanged => "unchanged",
            };
            let text = format!(
                "{outcome:<9} {:<14} {:<38} {}",
                line.kind, line.id, line.detail
            );
            super::output::write_line(&mut out, text.trim_end())?;
            if let Some(secret) = &line.client_secret {
                let text = format!("{:<24} client secret (shown once): {secret}", "");
                super::output::write_line(&mut out, &text)?;
            }
        }
    }
    let count = |o: Outcome| report.iter().filter(|l| l.outcome == o).count();
    eprintln!(
        "{}{} created, {} changed, {} unchanged, {} skipped",
        if args.dry_run {
            "dry run, nothing written: "
        } else {
            ""
        },
        count(Outcome::Created),
        count(Outcome::Changed),
        count(Outcome::Unchanged),
        count(Outcome::Skipped),
    );
    Ok(())
}
