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
    /// Also write the secrets (client secret hashes and HS256 client secrets, password
    /// hashes, connected apps' and providers' client secrets), the whole file then sealed
    /// under a passphrase (AES-256-GCM, key from argon2id).
    #[arg(long)]
    with_secrets: bool,
    #[command(flatten)]
    passphrase: Passphrase,
}

/// Where the passphrase of a sealed export comes from.
#[derive(clap::Args)]
pub(super) struct Passphrase {
    /// A file holding the passphrase (its first line), at least 12 characters; without it,
    /// AUTHLEDGER_EXPORT_PASSPHRASE.
    #[arg(long, value_name = "FILE")]
    passphrase_file: Option<PathBuf>,
}

impl Passphrase {
    fn read(&self) -> Result<String, AppError> {
        let passphrase = match &self.passphrase_file {
            Some(file) => std::fs::read_to_string(file)
                .map_err(|e| {
                    AppError::invalid_field("passphrase", format!("{}: {e}", file.display()))
                })?
                .lines()
                .next()
                .unwrap_or_default()
                .to_owned(),
            None => std::env::var("AUTHLEDGER_EXPORT_PASSPHRASE").map_err(|_| {
                AppError::invalid_field(
                    "passphrase",
                    "a sealed export needs a passphrase: --passphrase-file FILE or \
                     AUTHLEDGER_EXPORT_PASSPHRASE",
                )
            })?,
        };
        transfer::seal::check_passphrase(&passphrase)?;
        Ok(passphrase)
    }
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
    /// For a sealed export (`export --with-secrets`).
    #[command(flatten)]
    passphrase: Passphrase,
}

fn is_stdio(file: &Path) -> bool {
    file.as_os_str() == "-"
}

pub(super) async fn export(
    store: &Store,
    args: ExportArgs,
    master: &MasterKeySource,
) -> Result<(), AppError> {
    // The passphrase is checked before anything is read.
    let passphrase = args
        .with_secrets
        .then(|| args.passphrase.read())
        .transpose()?;
    let master = match args.with_secrets {
        true => Some(master.load(store).await?),
        false => None,
    };
    let document = transfer::export(store, master.as_ref()).await?;
    let plain = serde_json::to_string_pretty(&document)
        .map_err(|e| AppError::Internal(anyhow::Error::new(e)))?;
    let mut text = match &passphrase {
        Some(passphrase) => transfer::seal::seal(plain.as_bytes(), passphrase)?,
        None => plain,
    };
    text.push('\n');
    if is_stdio(&args.file) {
        return super::output::write_line(&mut std::io::stdout().lock(), text.trim_end()).map(drop);
    }
    write_owner_only(&args.file, text.as_bytes())
        .map_err(|e| AppError::invalid_field("file", format!("{}: {e}", args.file.display())))?;
    eprintln!(
        "exported {} setting(s), {} client(s), {} user(s), {} signing key(s), {} connected \
         app(s), {} social login provider(s) to {} ({})",
        document.settings.len(),
        document.clients.len(),
        document.users.len(),
        document.signing_keys.len(),
        document.connected_apps.len(),
        document.social_logins.len(),
        args.file.display(),
        match args.with_secrets {
            true => "with secrets, sealed under the passphrase",
            false => "no secrets",
        }
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

fn read(file: &Path, passphrase: &Passphrase) -> Result<Document, AppError> {
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
    if transfer::seal::is_sealed(&text) {
        let opened = transfer::seal::open(&text, &passphrase.read()?)?;
        text = String::from_utf8(opened).map_err(|e| AppError::Internal(e.into()))?;
    }
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
    let document = read(&args.file, &args.passphrase)?;
    // Only secrets to seal (an HS256 client's, a provider's) need the master key; loading it
    // otherwise could make a key file nobody asked for.
    let needs_master = document.secrets.is_some()
        || document
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
