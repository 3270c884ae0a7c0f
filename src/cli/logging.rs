//! Where the CLI's and the server's log lines go, how much of them, and in which format:
//! text for people (the default), or one JSON object per line for a log pipeline
//! (`AUTHLEDGER_LOG_FORMAT=json`). The filter is `AUTHLEDGER_LOG`, else `RUST_LOG`, in
//! `tracing`'s syntax (e.g. `info,sqlx=warn`).

use clap::ValueEnum;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

pub(super) fn init(serving: bool, format: LogFormat) {
    // The server logs requests at info; one-shot commands stay quiet unless asked (a
    // rebuild's index builds are slow statements by design: sqlx would warn about each).
    let default = if serving {
        "info,sqlx=warn"
    } else {
        "warn,sqlx::query=error"
    };
    let filter = std::env::var("AUTHLEDGER_LOG")
        .ok()
        .and_then(|f| tracing_subscriber::EnvFilter::try_new(f).ok())
        .or_else(|| tracing_subscriber::EnvFilter::try_from_default_env().ok())
        .unwrap_or_else(|| tracing_subscriber::EnvFilter::new(default));
    let lines = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        // The request's span (its id, route, client and OAuth error) flattened into the
        // line, with the time in RFC 3339: what log pipelines index.
        LogFormat::Json => lines
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .init(),
        LogFormat::Text => lines
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .init(),
    }
}
