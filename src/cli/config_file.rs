//! The configuration file and `authledger config check`.
//!
//! The file (`--config FILE`, or `AUTHLEDGER_CONFIG`) is TOML whose keys are the
//! environment variables' names without `AUTHLEDGER_`, in lowercase:
//!
//! ```toml
//! database_url = "postgres://authledger@db.internal/authledger"
//! listen = "0.0.0.0:8080"
//! issuer = "https://auth.example.com"
//! log_format = "json"
//! ```
//!
//! An environment variable overrides the file's key, and a command-line flag both. The file is
//! read before the command line is parsed, and each key the environment does not set becomes
//! that variable: every command then reads one source, the way it always has, and the file
//! cannot mean one thing to `serve` and another to the CLI. [`KEYS`] is the one list of what
//! can be configured: the file accepts only these, `config check` prints them, and the README's
//! table is tested against it.

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::path::PathBuf;

use serde::Serialize;

use crate::config::{DEFAULT_DATABASE_URL, DEFAULT_LISTEN, DEFAULT_MASTER_KEY_FILE};
use crate::error::AppError;

/// How a value is shown by `config check`.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Shown {
    /// As it is.
    Plain,
    /// A URL whose password is masked.
    Url,
    /// Only whether it is set.
    Hidden,
}

/// One thing that can be configured.
pub struct Key {
    /// Its name in the file.
    pub name: &'static str,
    /// The environment variable (and the flag `--` + the name with dashes).
    pub env: &'static str,
    /// What applies when nothing sets it, in words.
    pub default: &'static str,
    pub meaning: &'static str,
    pub shown: Shown,
}

pub const KEYS: &[Key] = &[
    Key {
        name: "database_url",
        env: "AUTHLEDGER_DATABASE_URL",
        default: DEFAULT_DATABASE_URL,
        meaning: "the store: sqlite://PATH or postgres://USER@HOST:PORT/DB",
        shown: Shown::Url,
    },
    Key {
        name: "listen",
        env: "AUTHLEDGER_LISTEN",
        default: DEFAULT_LISTEN,
        meaning: "the address serve binds, HOST:PORT",
        shown: Shown::Plain,
    },
    Key {
        name: "issuer",
        env: "AUTHLEDGER_ISSUER",
        default: "http:// + the listen address",
        meaning: "the issuer identifier: the public https URL clients reach",
        shown: Shown::Plain,
    },
    Key {
        name: "master_key",
        env: "AUTHLEDGER_MASTER_KEY",
        default: "(unset: the key file is used)",
        meaning: "32 bytes, base64url: seals signing keys and secrets kept outside the log",
        shown: Shown::Hidden,
    },
    Key {
        name: "master_key_file",
        env: "AUTHLEDGER_MASTER_KEY_FILE",
        default: DEFAULT_MASTER_KEY_FILE,
        meaning: "where the master key is kept when master_key is unset (created if missing)",
        shown: Shown::Plain,
    },
    Key {
        name: "token_cache",
        env: "AUTHLEDGER_TOKEN_CACHE",
        default: "500000",
        meaning: "how many live access tokens serve holds in memory",
        shown: Shown::Plain,
    },
    Key {
        name: "max_connections",
        env: "AUTHLEDGER_MAX_CONNECTIONS",
        default: "1024",
        meaning: "connections open at once; past it a new one is answered 503",
        shown: Shown::Plain,
    },
    Key {
        name: "header_read_timeout",
        env: "AUTHLEDGER_HEADER_READ_TIMEOUT",
        default: "10",
        meaning: "seconds a client may take to send a request's headers",
        shown: Shown::Plain,
    },
    Key {
        name: "trusted_proxies",
        env: "AUTHLEDGER_TRUSTED_PROXIES",
        default: "(none: X-Forwarded-For is ignored)",
        meaning: "reverse proxies whose X-Forwarded-For names the client: IPs or CIDR networks",
        shown: Shown::Plain,
    },
    Key {
        name: "log_format",
        env: "AUTHLEDGER_LOG_FORMAT",
        default: "text",
        meaning: "text, or json (one JSON object per line)",
        shown: Shown::Plain,
    },
    Key {
        name: "archive_dir",
        env: "AUTHLEDGER_ARCHIVE_DIR",
        default: "(none: ledger archive is refused)",
        meaning: "where ledger archive writes segments, and verify and rebuild read them",
        shown: Shown::Plain,
    },
    Key {
        name: "log",
        env: "AUTHLEDGER_LOG",
        default: "info,sqlx=warn for serve, warn otherwise",
        meaning: "the log filter, in tracing's syntax",
        shown: Shown::Plain,
    },
];

/// Where each configured value came from, for `config check`.
#[derive(Debug, Default, Clone)]
pub struct Sources {
    /// The file read, if any.
    pub file: Option<PathBuf>,
    /// The keys the file set (the environment did not).
    pub from_file: BTreeSet<&'static str>,
}

/// The file named by `--config FILE` (or `--config=FILE`) among `args`, else by
/// `AUTHLEDGER_CONFIG`.
fn named_file(args: &[OsString]) -> Option<PathBuf> {
    let mut args = args.iter().skip(1).map(|a| a.to_string_lossy());
    while let Some(arg) = args.next() {
        if arg == "--" {
            break;
        }
        if arg == "--config" {
            return args.next().map(|path| PathBuf::from(path.as_ref()));
        }
        if let Some(path) = arg.strip_prefix("--config=") {
            return Some(PathBuf::from(path));
        }
    }
    std::env::var_os("AUTHLEDGER_CONFIG")
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
}

/// Reads the configuration file, if one is named, and sets each of its keys that the
/// environment does not as that key's environment variable. Runs first thing in `main`,
/// before any thread exists, since it changes the process's environment.
pub fn apply(args: &[OsString]) -> Result<Sources, AppError> {
    let Some(path) = named_file(args) else {
        return Ok(Sources::default());
    };
    let refused = |why: String| AppError::invalid(format!("config file {}: {why}", path.display()));
    let text = std::fs::read_to_string(&path).map_err(|e| refused(e.to_string()))?;
    let table: toml::Table = text.parse().map_err(|e: toml::de::Error| {
        let at = e.span().map(|span| {
            let before = &text[..span.start.min(text.len())];
            let line = before.matches('\n').count() + 1;
            let column = before.len() - before.rfind('\n').map_or(0, |n| n + 1) + 1;
            format!("line {line}, column {column}: ")
        });
        refused(format!("{}{}", at.unwrap_or_default(), e.message()))
    })?;
    let mut from_file = BTreeSet::new();
    for (name, value) in &table {
        let Some(key) = KEYS.iter().find(|k| k.name == name) else {
            let known: Vec<&str> = KEYS.iter().map(|k| k.name).collect();
            return Err(refused(format!(
                "unknown key `{name}`; the keys are {}",
                known.join(", ")
            )));
        };
        let value = match value {
            toml::Value::String(s) => s.clone(),
            toml::Value::Integer(n) => n.to_string(),
            _ => {
                return Err(refused(format!(
                    "`{name}` must be a string or a whole number"
                )))
            }
        };
        if value.chars().any(char::is_control) {
            return Err(refused(format!("`{name}` contains a control character")));
        }
        if std::env::var_os(key.env).is_none() {
            // Single-threaded still (see above): nothing else reads the environment yet.
            std::env::set_var(key.env, value);
            from_file.insert(key.name);
        }
    }
    Ok(Sources {
        file: Some(std::path::absolute(&path).unwrap_or(path)),
        from_file,
    })
}

/// One line of `config check`.
#[derive(Serialize)]
struct Effective {
    key: &'static str,
    env: &'static str,
    meaning: &'static str,
    default: &'static str,
    /// Masked where it is secret; `None` when unset and the default applies.
    value: Option<String>,
    /// `file`, `environment` or `default`.
    from: &'static str,
    /// What is wrong with it, if anything.
    problem: Option<String>,
    /// What an operator should know though it is not wrong.
    note: Option<String>,
}

#[derive(Serialize)]
struct Report {
    file: Option<String>,
    ok: bool,
    values: Vec<Effective>,
}

fn shown(key: &Key, value: &str) -> String {
    match key.shown {
        Shown::Plain => value.to_owned(),
        Shown::Hidden => "(set, hidden)".to_owned(),
        Shown::Url => match url::Url::parse(value) {
            Ok(mut url) if url.password().is_some() => {
                let _ = url.set_password(Some("***"));
                url.to_string()
            }
            _ => value.to_owned(),
        },
    }
}

/// What is wrong with `value` for `key`, and what is worth knowing.
fn check(key: &Key, value: Option<&str>) -> (Option<String>, Option<String>) {
    let number = |raw: &str, low: u64, high: u64| match raw.parse::<u64>() {
        Ok(n) if (low..=high).contains(&n) => None,
        _ => Some(format!("expected a whole number from {low} to {high}")),
    };
    let problem = match (key.name, value) {
        ("database_url", Some(url)) => {
            let sqlite = url
                .strip_prefix("sqlite://")
                .or(url.strip_prefix("sqlite:"));
            match sqlite {
                Some("") => Some("sqlite:// needs a file path".into()),
                Some(_) => None,
                None if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
                    url::Url::parse(url)
                        .err()
                        .map(|e| format!("not a URL: {e}"))
                }
                None => Some("expected sqlite://PATH or postgres://...".into()),
            }
        }
        ("listen" | "issuer", _) => {
            let config = crate::config::Config {
                database_url: String::new().into(),
                listen: std::env::var("AUTHLEDGER_LISTEN").unwrap_or(DEFAULT_LISTEN.into()),
                issuer: std::env::var("AUTHLEDGER_ISSUER").ok(),
                master_key: None,
                master_key_file: DEFAULT_MASTER_KEY_FILE.into(),
                token_cache_capacity: crate::config::DEFAULT_TOKEN_CACHE,
                limits: Default::default(),
                link_ledger: true,
                archive_dir: None,
            };
            config
                .check()
                .err()
                .map(|e| e.to_string())
                .filter(|e| e.contains(key.env))
        }
        ("master_key", Some(raw)) => crate::master_key::MasterKey::from_base64(raw)
            .err()
            .map(|e| e.to_string()),
        ("token_cache", Some(raw)) => number(raw, 1, u32::MAX as u64),
        ("max_connections", Some(raw)) => number(raw, 1, u32::MAX as u64),
        ("header_read_timeout", Some(raw)) => number(raw, 1, 3600),
        ("trusted_proxies", Some(raw)) => crate::config::TrustedProxies::parse(raw).err(),
        ("log_format", Some(raw)) => {
            (!matches!(raw, "text" | "json")).then(|| format!("`{raw}`: expected text or json"))
        }
        ("log", Some(raw)) => tracing_subscriber::EnvFilter::try_new(raw)
            .err()
            .map(|e| e.to_string()),
        _ => None,
    };
    let note = match key.name {
        "master_key_file" if std::env::var_os("AUTHLEDGER_MASTER_KEY").is_none() => {
            let file = PathBuf::from(value.unwrap_or(DEFAULT_MASTER_KEY_FILE));
            match std::fs::read_to_string(&file) {
                Ok(text) => {
                    return (
                        crate::master_key::MasterKey::from_base64(&text)
                            .err()
                            .map(|e| format!("{}: {e}", file.display())),
                        None,
                    )
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Some(format!(
                    "{} does not exist: a new key is made there at first start; back it up \
                     with the database",
                    file.display()
                )),
                Err(e) => return (Some(format!("{}: {e}", file.display())), None),
            }
        }
        "issuer" if value.is_some_and(|i| i.starts_with("http://")) => {
            Some("not https: browsers send the session cookie in the clear".into())
        }
        _ => None,
    };
    (problem, note)
}

/// `authledger config check`: the effective configuration, where each value came from, and
/// what is wrong with it. Refused (exit 5) when anything is.
pub fn check_command(sources: &Sources, json: bool) -> Result<(), AppError> {
    let values: Vec<Effective> = KEYS
        .iter()
        .map(|key| {
            let value = std::env::var(key.env).ok();
            let (problem, note) = check(key, value.as_deref());
            Effective {
                key: key.name,
                env: key.env,
                meaning: key.meaning,
                default: key.default,
                from: match &value {
                    _ if sources.from_file.contains(key.name) => "file",
                    Some(_) => "environment",
                    None => "default",
                },
                value: value.as_deref().map(|v| shown(key, v)),
                problem,
                note,
            }
        })
        .collect();
    let problems = values.iter().filter(|v| v.problem.is_some()).count();
    let report = Report {
        file: sources.file.as_ref().map(|f| f.display().to_string()),
        ok: problems == 0,
        values,
    };
    if json {
        super::output::print_json(&report)?;
    } else {
        print_table(&report);
    }
    match problems {
        0 => Ok(()),
        n => Err(AppError::invalid(format!(
            "the configuration does not check: {n} problem(s), shown above"
        ))),
    }
}

fn print_table(report: &Report) {
    let mut table = super::output::table(["KEY", "VALUE", "FROM", "CHECK"]);
    for row in &report.values {
        let check = match (&row.problem, &row.note) {
            (Some(problem), _) => format!("ERROR: {problem}"),
            (None, Some(note)) => format!("note: {note}"),
            (None, None) => "ok".to_owned(),
        };
        table.add_row([
            row.key.to_owned(),
            row.value.clone().unwrap_or_else(|| row.default.to_owned()),
            row.from.to_owned(),
            check,
        ]);
    }
    match &report.file {
        Some(file) => println!("configuration file: {file}"),
        None => println!("configuration file: none (--config FILE or AUTHLEDGER_CONFIG)"),
    }
    for line in table.lines() {
        println!("{}", line.trim_end());
    }
}

#[cfg(test)]
mod tests {
    use super::KEYS;

    /// The README's configuration table is the operator's reference: it names every key.
    #[test]
    fn the_readme_documents_every_key() {
        let readme = include_str!("../../README.md");
        for key in KEYS {
            assert!(
                readme.contains(&format!("| `{}`", key.env)),
                "README's configuration table lacks {}",
                key.env
            );
            assert!(
                readme.contains(&format!("`{}`", key.name)),
                "README lacks the file key {}",
                key.name
            );
        }
    }
}
