//! Configuring authledger from a file (`--config FILE` or `AUTHLEDGER_CONFIG`) as an
//! operator would: `config check` shows the effective values and where they came from, with
//! secrets masked, and refuses what is wrong; `serve` and the CLI read the same file, the
//! environment overriding it; `master-key generate` makes a key.

use std::process::{Command, Output, Stdio};

use serde_json::Value;

/// The binary in `dir` with a clean environment plus `env`.
fn authledger(dir: &std::path::Path, args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_authledger"));
    command.args(args).current_dir(dir).stdin(Stdio::null());
    for (name, _) in std::env::vars() {
        if name.starts_with("AUTHLEDGER_") || name == "RUST_LOG" {
            command.env_remove(name);
        }
    }
    command.envs(env.iter().copied());
    command
}

fn run(dir: &std::path::Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    authledger(dir, args, env).output().unwrap()
}

fn said(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn config_check_shows_each_value_and_its_source_with_secrets_masked() {
    let dir = tempfile::tempdir().unwrap();
    let key = String::from_utf8(run(dir.path(), &["master-key", "generate"], &[]).stdout).unwrap();
    let key = key.trim();
    assert_eq!(key.len(), 43, "32 bytes, base64url: {key}");
    std::fs::write(
        dir.path().join("authledger.toml"),
        format!(
            "database_url = \"postgres://app:hunter2@db.internal:5432/auth\"\n\
             listen = \"0.0.0.0:9090\"\nissuer = \"https://auth.example\"\n\
             master_key = \"{key}\"\ntoken_cache = 1000\nlog_format = \"json\"\n"
        ),
    )
    .unwrap();
    let output = run(
        dir.path(),
        &["config", "check", "--format", "json"],
        &[
            ("AUTHLEDGER_CONFIG", "authledger.toml"),
            ("AUTHLEDGER_LISTEN", "127.0.0.1:7000"),
        ],
    );
    assert!(output.status.success(), "{}", said(&output));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        !stdout.contains("hunter2") && !stdout.contains(key),
        "{stdout}"
    );
    let report: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(report["ok"], true);
    let value = |name: &str| {
        report["values"]
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["key"] == name)
            .unwrap()
            .clone()
    };
    assert_eq!(
        value("database_url")["value"],
        "postgres://app:***@db.internal:5432/auth"
    );
    assert_eq!(value("database_url")["from"], "file");
    assert_eq!(value("listen")["value"], "127.0.0.1:7000");
    assert_eq!(
        value("listen")["from"],
        "environment",
        "the environment overrides the file"
    );
    assert_eq!(value("master_key")["value"], "(set, hidden)");
    assert_eq!(value("token_cache")["value"], "1000");
    assert_eq!(value("max_connections")["from"], "default");

    // What is wrong is named, with exit code 5; the table says it too.
    let output = run(
        dir.path(),
        &["--config", "authledger.toml", "config", "check"],
        &[
            ("AUTHLEDGER_HEADER_READ_TIMEOUT", "0"),
            ("AUTHLEDGER_ISSUER", "auth.example"),
        ],
    );
    assert_eq!(output.status.code(), Some(5));
    let table = String::from_utf8_lossy(&output.stdout);
    assert!(
        table.contains("ERROR: expected a whole number from 1 to 3600"),
        "{table}"
    );
    assert!(
        table.contains("ERROR: AUTHLEDGER_ISSUER `auth.example`"),
        "{table}"
    );
    assert!(said(&output).contains("2 problem(s)"), "{}", said(&output));
}

#[test]
fn a_file_that_does_not_parse_or_names_an_unknown_key_is_refused_with_where() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (
            "lisen = \"0.0.0.0:8080\"\n",
            "unknown key `lisen`; the keys are database_url, listen",
        ),
        (
            "listen = [8080]\n",
            "`listen` must be a string or a whole number",
        ),
        ("log_format = \"json\"\nlisten = \"x\n", "line 2, column"),
    ];
    for (text, expected) in cases {
        std::fs::write(dir.path().join("bad.toml"), text).unwrap();
        let output = run(dir.path(), &["--config", "bad.toml", "migrate"], &[]);
        assert_eq!(output.status.code(), Some(5), "{text}: {}", said(&output));
        assert!(
            said(&output).contains("config file bad.toml: ") && said(&output).contains(expected),
            "{text}: {}",
            said(&output)
        );
        assert!(!dir.path().join("authledger.db").exists(), "nothing opened");
    }
    let output = run(dir.path(), &["--config=missing.toml", "migrate"], &[]);
    assert_eq!(output.status.code(), Some(5));
    assert!(said(&output).contains("missing.toml"));
}

#[test]
fn serve_and_the_cli_read_the_same_file() {
    let dir = tempfile::tempdir().unwrap();
    let database = dir.path().join("data").join("auth.db");
    std::fs::create_dir(dir.path().join("data")).unwrap();
    std::fs::write(
        dir.path().join("authledger.toml"),
        format!(
            "database_url = \"sqlite://{}\"\nlisten = \"127.0.0.1:0\"\n\
             issuer = \"https://auth.example\"\nlog_format = \"json\"\n\
             master_key_file = \"data/authledger.key\"\n",
            database.display()
        ),
    )
    .unwrap();
    let config = [("AUTHLEDGER_CONFIG", "authledger.toml")];
    let created = run(
        dir.path(),
        &[
            "client",
            "create",
            "--name",
            "From the file",
            "--grant-type",
            "client_credentials",
        ],
        &config,
    );
    assert!(created.status.success(), "{}", said(&created));
    assert!(database.exists(), "the file's store");

    let mut server = authledger(dir.path(), &["serve"], &config)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = server.stderr.take().unwrap();
    let started = std::io::BufRead::lines(std::io::BufReader::new(stderr))
        .map_while(Result::ok)
        .find_map(|line| {
            let line: Value = serde_json::from_str(&line).ok()?;
            (line["message"] == "serving").then_some(line)
        });
    server.kill().unwrap();
    server.wait().unwrap();
    let started = started.expect("a JSON start-up line");
    assert_eq!(started["issuer"], "https://auth.example", "{started}");
    assert!(
        dir.path().join("data/authledger.key").exists(),
        "the file's key file"
    );
    let listed: Value =
        serde_json::from_slice(&run(dir.path(), &["client", "list"], &config).stdout).unwrap();
    assert!(listed.to_string().contains("From the file"), "{listed}");
}

#[test]
fn master_key_generate_writes_a_private_file_and_never_overwrites_one() {
    let dir = tempfile::tempdir().unwrap();
    let written = run(
        dir.path(),
        &["master-key", "generate", "--file", "new.key"],
        &[],
    );
    assert!(written.status.success(), "{}", said(&written));
    let path = dir.path().join("new.key");
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&path).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o600);
    let first = std::fs::read_to_string(&path).unwrap();
    let again = run(
        dir.path(),
        &["master-key", "generate", "--file", "new.key"],
        &[],
    );
    assert_eq!(again.status.code(), Some(5));
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        first,
        "not overwritten"
    );
    // The key works: a store sealed with it opens with it.
    let key = first.trim().to_owned();
    let env = [("AUTHLEDGER_MASTER_KEY", key.as_str())];
    assert!(run(dir.path(), &["keys", "rotate", "--now"], &env)
        .status
        .success());
    assert!(run(dir.path(), &["keys", "list"], &env).status.success());
}
