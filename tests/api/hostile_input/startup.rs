//! Misconfiguration is refused at start with a message that says what is expected, and what
//! the server writes to disk is private to its owner.

use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Output, Stdio};

use reqwest::StatusCode;

use crate::oauth::flow::*;

/// The binary with only the environment given (no master key from the test store).
fn binary(dir: &std::path::Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_authledger"));
    command
        .args(args)
        .current_dir(dir)
        .env_remove("AUTHLEDGER_MASTER_KEY")
        .env_remove("AUTHLEDGER_MASTER_KEY_FILE")
        .env_remove("AUTHLEDGER_DATABASE_URL")
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (name, value) in env {
        command.env(name, value);
    }
    command.output().unwrap()
}

#[test]
fn a_listen_address_without_a_port_or_a_bad_issuer_is_refused_with_what_is_expected() {
    let dir = tempfile::tempdir().unwrap();
    let output = binary(
        dir.path(),
        &["serve"],
        &[("AUTHLEDGER_LISTEN", "localhost")],
    );
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("HOST:PORT") && stderr.contains("127.0.0.1:8080"),
        "{stderr}"
    );

    let output = binary(
        dir.path(),
        &["serve"],
        &[
            ("AUTHLEDGER_LISTEN", "127.0.0.1:0"),
            ("AUTHLEDGER_ISSUER", "auth.example"),
        ],
    );
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("AUTHLEDGER_ISSUER") && stderr.contains("https://"),
        "{stderr}"
    );
}

#[test]
fn the_sqlite_database_and_the_key_file_are_readable_by_their_owner_only() {
    let dir = tempfile::tempdir().unwrap();
    let output = binary(dir.path(), &["keys", "rotate", "--now"], &[]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    for file in ["authledger.db", "authledger.key"] {
        let mode = std::fs::metadata(dir.path().join(file))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{file}: {mode:o}");
    }
}

on_both_stores! {
    async fn a_missing_key_file_is_not_replaced_when_the_store_holds_sealed_values(kind: Kind) {
        let db = crate::helpers::TestDb::new(kind).await;
        let first = tempfile::tempdir().unwrap();
        let store = [("AUTHLEDGER_DATABASE_URL", db.url.as_str())];
        let output = binary(first.path(), &["keys", "rotate", "--now"], &store);
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        // The same store from another directory: the key file is not there, and a new key
        // would not open the sealed signing keys, so none is made.
        let elsewhere = tempfile::tempdir().unwrap();
        let output = binary(elsewhere.path(), &["keys", "rotate", "--now"], &store);
        assert!(!output.status.success());
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains("authledger.key") && stderr.contains("AUTHLEDGER_MASTER_KEY_FILE"), "{stderr}");
        assert!(!elsewhere.path().join("authledger.key").exists());
        let output = binary(elsewhere.path(), &["serve"], &[store[0], ("AUTHLEDGER_LISTEN", "127.0.0.1:0")]);
        assert!(!output.status.success());
        assert!(String::from_utf8_lossy(&output.stderr).contains("AUTHLEDGER_MASTER_KEY_FILE"));
    }
}

on_both_stores! {
    async fn revoking_another_clients_token_is_answered_200_and_records_nothing(kind: Kind) {
        let flow = Flow::new(kind).await;
        let service = |name: &str| authledger::admin::clients::ClientInput {
            name: name.into(),
            grant_types: vec!["client_credentials".into()],
            redirect_uris: vec![],
            scope: Some("read".into()),
            ..Default::default()
        };
        let owner = flow.client(service("Owner")).await;
        let other = flow.client(service("Other")).await;
        let (_, _, tokens) = flow.token(Auth::Basic(&owner), &[("grant_type", "client_credentials")]).await;
        let token = tokens["access_token"].as_str().unwrap();
        let (status, _, body) = flow
            .token_at("/oauth/revoke", Auth::Basic(&other), &[("token", token)])
            .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body, serde_json::json!({}));
        let grant = authledger::oauth::tokens::grant_of(token, "alat_").unwrap().as_str().to_owned();
        let history = flow.history("Grant", &grant).await;
        assert!(!history.iter().any(|e| e.contains("Revoked")), "{history:?}");
        let (_, _, introspection) = flow
            .token_at("/oauth/introspect", Auth::Basic(&owner), &[("token", token)])
            .await;
        assert_eq!(introspection["active"], true);
    }
}

/// A store that cannot be opened is named (never with its password) with the cause, and the
/// exit code tells a script whether waiting may help (6) or the configuration is wrong (5).
#[test]
fn a_store_that_cannot_be_opened_is_named_with_the_cause_and_its_exit_code() {
    let dir = tempfile::tempdir().unwrap();
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let cases = [
        (
            format!("postgres://app:hunter2@127.0.0.1:{closed}/auth"),
            6,
            vec![
                format!("at 127.0.0.1:{closed}"),
                "(as app)".into(),
                "refused".into(),
            ],
        ),
        (
            "postgres://nosuchrole:hunter2@127.0.0.1:5432/auth".to_owned(),
            5,
            vec!["nosuchrole".into(), "does not exist".into()],
        ),
        (
            "sqlite:///no/such/directory/auth.db".to_owned(),
            5,
            vec!["/no/such/directory/auth.db".into()],
        ),
        (
            "mysql://somewhere/auth".to_owned(),
            5,
            vec!["sqlite://PATH or postgres://".into()],
        ),
    ];
    for (url, code, said) in cases {
        for command in [&["migrate"][..], &["serve"][..]] {
            let output = binary(
                dir.path(),
                command,
                &[
                    ("AUTHLEDGER_DATABASE_URL", &url),
                    ("AUTHLEDGER_LISTEN", "127.0.0.1:0"),
                ],
            );
            let stderr = String::from_utf8_lossy(&output.stderr);
            assert_eq!(
                output.status.code(),
                Some(code),
                "{url} {command:?}: {stderr}"
            );
            for words in &said {
                assert!(
                    stderr.contains(words.as_str()),
                    "{url}: `{words}` in {stderr}"
                );
            }
            assert!(
                !stderr.contains("hunter2") && !stderr.contains("internal error"),
                "{stderr}"
            );
        }
    }
}
