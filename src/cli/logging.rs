//! Where the CLI's and the server's log lines go, and how much of them.

pub(super) fn init(serving: bool) {
    // The server logs requests at info; one-shot commands stay quiet unless asked (a
    // rebuild's index builds are slow statements by design: sqlx would warn about each).
    let default = if serving {
        "info,sqlx=warn"
    } else {
        "warn,sqlx::query=error"
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .init();
}
