//! `authledger export` and `import`: a configuration moves between the two stores intact,
//! an import is idempotent, a dry run writes nothing, and a bad document changes nothing.

use serde_json::Value;

use crate::helpers::*;

fn ok(db: &TestDb, args: &[&str]) -> String {
    let output = cli(db, args);
    assert!(
        output.status.success(),
        "authledger {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// A store with something of everything `export` writes.
fn configure(db: &TestDb) {
    ok(db, &["settings", "set", "access_token_ttl", "900"]);
    ok(db, &["settings", "set", "site_name", "Example Corp"]);
    ok(
        db,
        &[
            "settings",
            "set",
            "allowed_public_client_origins",
            "https://spa.example",
        ],
    );
    #[rustfmt::skip]
    let web = cli_json(db, &[
        "client", "create", "--name", "Web App", "--redirect-uri", "https://app.example/cb",
        "--scope", "openid profile email roles", "--allowed-role", "staff",
        "--client-uri", "https://app.example", "--contact", "ops@app.example",
        "--post-logout-redirect-uri", "https://app.example/bye", "--frappe-claims",
    ]);
    #[rustfmt::skip]
    cli_json(db, &[
        "client", "create", "--name", "SPA", "--public", "--redirect-uri", "https://spa.example/cb",
    ]);
    #[rustfmt::skip]
    cli_json(db, &[
        "client", "create", "--name", "Frappe site", "--redirect-uri", "https://erp.example/cb",
        "--id-token-signed-response-alg", "HS256", "--skip-authorization",
    ]);
    #[rustfmt::skip]
    cli_json(db, &[
        "client", "create", "--name", "Batch", "--grant-type", "client_credentials",
        "--scope", "admin",
    ]);
    let web_id = web["client_id"].as_str().unwrap();
    ok(db, &["client", "disable", web_id, "--reason", "paused"]);
    #[rustfmt::skip]
    ok(db, &[
        "user", "create", "--username", "alice", "--password", "wonderland-1865",
        "--email", "alice@example.com", "--name", "Alice Liddell", "--role", "admin",
    ]);
    ok(
        db,
        &[
            "user",
            "create",
            "--username",
            "bob",
            "--password",
            "builder-of-things",
        ],
    );
    ok(db, &["user", "disable", "bob"]);
}

fn export(db: &TestDb, dir: &std::path::Path, name: &str) -> Value {
    let file = dir.join(name);
    let file = file.to_str().unwrap();
    ok(db, &["export", file]);
    serde_json::from_str(&std::fs::read_to_string(file).unwrap()).unwrap()
}

/// The parts that belong to one deployment and are not imported: when, and its own keys.
fn portable(mut document: Value) -> Value {
    let object = document.as_object_mut().unwrap();
    object.remove("exported_at");
    object.remove("signing_keys");
    document
}

fn event_count(db: &TestDb) -> usize {
    ok(db, &["events", "--format", "json"]).lines().count()
}

async fn round_trip(from: Kind, to: Kind) {
    let source = TestDb::new(from).await;
    let target = TestDb::new(to).await;
    let dir = tempfile::tempdir().unwrap();
    configure(&source);
    let first = export(&source, dir.path(), "first.json");
    assert_eq!(first["format"], "authledger-export/1");
    assert_eq!(first["clients"].as_array().unwrap().len(), 4);
    assert!(
        !first.to_string().contains("alcs_"),
        "a client secret was exported"
    );
    assert!(
        !first.to_string().contains("argon2"),
        "a password hash was exported"
    );

    // A dry run says what it would do and writes nothing.
    ok(&target, &["migrate"]);
    let before = event_count(&target);
    let file = dir.path().join("first.json");
    let file = file.to_str().unwrap();
    let dry = cli(&target, &["import", file, "--dry-run"]);
    assert!(
        dry.status.success(),
        "{}",
        String::from_utf8_lossy(&dry.stderr)
    );
    let said = String::from_utf8_lossy(&dry.stdout);
    assert_eq!(
        said.lines().filter(|l| l.starts_with("created")).count(),
        6,
        "{said}"
    );
    assert!(String::from_utf8_lossy(&dry.stderr).contains("dry run, nothing written"));
    assert_eq!(event_count(&target), before);

    let applied = ok(&target, &["import", file]);
    // Each confidential client gets a new secret, shown once.
    assert_eq!(
        applied.matches("client secret (shown once): alcs_").count(),
        3,
        "{applied}"
    );
    let second = export(&target, dir.path(), "second.json");
    assert_eq!(portable(first.clone()), portable(second));

    // Again: nothing to do.
    let again = cli(&target, &["import", file]);
    assert!(again.status.success());
    assert_eq!(String::from_utf8_lossy(&again.stdout), "");
    assert!(String::from_utf8_lossy(&again.stderr).contains("0 created, 0 changed"));

    // The ids are the source's, and the imported people cannot sign in until given a password.
    let web = first["clients"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["metadata"]["client_name"] == "Web App")
        .unwrap();
    let shown = cli_json(
        &target,
        &["client", "show", web["client_id"].as_str().unwrap()],
    );
    assert_eq!(shown["status"], "disabled");
    let events = ok(&target, &["events", "--format", "json"]);
    assert!(events.contains("\"actor\""), "{events}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_export_imported_into_postgres_exports_the_same_document() {
    round_trip(Kind::Sqlite, Kind::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_export_imported_into_sqlite_exports_the_same_document() {
    round_trip(Kind::Postgres, Kind::Sqlite).await;
}

on_both_stores! {
    async fn a_document_with_one_bad_value_changes_nothing(kind: Kind) {
        let db = TestDb::new(kind).await;
        ok(&db, &["migrate"]);
        let dir = tempfile::tempdir().unwrap();
        let document = serde_json::json!({
            "format": "authledger-export/1",
            "exported_at": "2026-11-27T00:00:00Z",
            "settings": { "site_name": "Changed" },
            "clients": [{
                "client_id": "8d0c8b8e-0000-4000-8000-000000000001",
                "status": "active",
                "metadata": { "client_name": "Bad", "redirect_uris": ["ftp://nope"] }
            }],
            "users": []
        });
        let file = dir.path().join("bad.json");
        std::fs::write(&file, document.to_string()).unwrap();
        let before = event_count(&db);
        let output = cli(&db, &["import", file.to_str().unwrap()]);
        assert_eq!(output.status.code(), Some(5));
        let said = String::from_utf8_lossy(&output.stderr);
        assert!(said.contains("client 8d0c8b8e-0000-4000-8000-000000000001"), "{said}");
        assert!(said.contains("redirect_uri"), "{said}");
        assert_eq!(event_count(&db), before, "a refused document wrote events");

        // Not a document at all, or another format: refused the same way, naming the file.
        std::fs::write(&file, "{\"format\": \"other/9\"}").unwrap();
        let output = cli(&db, &["import", file.to_str().unwrap()]);
        assert_eq!(output.status.code(), Some(5));
        assert!(String::from_utf8_lossy(&output.stderr).contains("bad.json"));
        let output = cli(&db, &["import", "/nonexistent/export.json"]);
        assert_eq!(output.status.code(), Some(5));
        assert!(String::from_utf8_lossy(&output.stderr).contains("/nonexistent/export.json"));
    }
}

const PASSPHRASE: &str = "a passphrase for the test";

fn with_passphrase(db: &TestDb, args: &[&str], stdin: &str) -> std::process::Output {
    cli_with_env(
        db,
        args,
        stdin,
        &[("AUTHLEDGER_EXPORT_PASSPHRASE", PASSPHRASE)],
    )
}

/// The document inside a sealed export, opened as `import` opens it.
fn open_sealed(file: &std::path::Path) -> Value {
    let text = std::fs::read_to_string(file).unwrap();
    let plain = authledger::admin::transfer::seal::open(&text, PASSPHRASE).unwrap();
    serde_json::from_slice(&plain).unwrap()
}

async fn sealed_round_trip(from: Kind, to: Kind) {
    let source = TestDb::new(from).await;
    let target = TestDb::new(to).await;
    let dir = tempfile::tempdir().unwrap();
    configure(&source);
    #[rustfmt::skip]
    let app = cli_with_stdin(&source, &[
        "connected-app", "create", "--name", "Files", "--client-id", "files-client",
        "--authorization-uri", "https://files.example/oauth/authorize",
        "--token-uri", "https://files.example/oauth/token", "--client-secret-stdin",
    ], "files-secret-at-the-provider\n");
    assert!(
        app.status.success(),
        "{}",
        String::from_utf8_lossy(&app.stderr)
    );
    #[rustfmt::skip]
    let provider = cli_with_stdin(&source, &[
        "social-login", "create", "--name", "Corp SSO", "--client-id", "corp-client",
        "--authorize-url", "https://sso.example/authorize", "--token-url", "https://sso.example/token",
        "--api-endpoint", "https://sso.example/me", "--user-id-property", "sub",
        "--client-secret-stdin",
    ], "corp-secret-at-the-provider\n");
    assert!(
        provider.status.success(),
        "{}",
        String::from_utf8_lossy(&provider.stderr)
    );

    let sealed = dir.path().join("sealed.json");
    let sealed = sealed.to_str().unwrap();
    // No passphrase, no sealed export.
    let refused = cli(&source, &["export", sealed, "--with-secrets"]);
    assert_eq!(refused.status.code(), Some(5));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("passphrase"));
    let output = with_passphrase(&source, &["export", sealed, "--with-secrets"], "");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let text = std::fs::read_to_string(sealed).unwrap();
    for secret in [
        "$argon2id$",
        "files-secret",
        "corp-secret",
        "alice@example.com",
    ] {
        assert!(
            !text.contains(secret),
            "{secret} readable in the sealed file"
        );
    }
    let first = open_sealed(std::path::Path::new(sealed));
    assert_eq!(first["secrets"]["users"].as_object().unwrap().len(), 2);
    assert_eq!(
        first["secrets"]["connected_apps"]["files"],
        "files-secret-at-the-provider"
    );

    // A wrong passphrase opens nothing.
    let wrong = cli_with_env(
        &target,
        &["import", sealed],
        "",
        &[("AUTHLEDGER_EXPORT_PASSPHRASE", "not the passphrase")],
    );
    assert_eq!(wrong.status.code(), Some(5));
    assert!(String::from_utf8_lossy(&wrong.stderr).contains("does not open"));

    let output = with_passphrase(&target, &["import", sealed], "");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let said = String::from_utf8_lossy(&output.stdout);
    assert!(
        !said.contains("client secret (shown once)"),
        "secrets kept, none new: {said}"
    );
    assert!(
        said.contains("connected_app") && said.contains("social_login"),
        "{said}"
    );
    assert!(!said.contains("skipped   connected_app"), "{said}");

    let again = dir.path().join("again.json");
    let output = with_passphrase(
        &target,
        &["export", again.to_str().unwrap(), "--with-secrets"],
        "",
    );
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    // Everything, secrets included (the HS256 client's secret re-sealed under the target's
    // master key), is as it was.
    assert_eq!(portable(first), portable(open_sealed(&again)));

    // alice signs in on the new store with the password she had; bob is still disabled.
    let flow = crate::oauth::flow::Flow::with_app(TestApp::spawn_on(target).await).await;
    let signed_in = flow
        .sign_in_with("alice", "wonderland-1865", "/account")
        .await;
    assert_eq!(signed_in.status(), reqwest::StatusCode::SEE_OTHER);
    let refused = flow
        .sign_in_with("bob", "builder-of-things", "/account")
        .await;
    assert_ne!(refused.status(), reqwest::StatusCode::SEE_OTHER);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sealed_export_with_secrets_moves_everything_to_postgres() {
    sealed_round_trip(Kind::Sqlite, Kind::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sealed_export_with_secrets_moves_everything_to_sqlite() {
    sealed_round_trip(Kind::Postgres, Kind::Sqlite).await;
}

/// `--format json` is for programs: a confidential client's new secret is in its line, or the
/// client could not be used without rotating it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_json_import_report_carries_each_new_client_secret() {
    let (source, target) = (
        TestDb::new(Kind::Sqlite).await,
        TestDb::new(Kind::Sqlite).await,
    );
    configure(&source);
    let dir = tempfile::tempdir().unwrap();
    export(&source, dir.path(), "doc.json");
    let file = dir.path().join("doc.json");
    let report = ok(
        &target,
        &["import", file.to_str().unwrap(), "--format", "json"],
    );
    let secrets: Vec<serde_json::Value> = report
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|l| l["kind"] == "client" && l["outcome"] == "created")
        .map(|l| l["client_secret"].clone())
        .collect();
    assert_eq!(secrets.len(), 4, "{report}");
    let minted = secrets
        .iter()
        .filter(|s| s.as_str().is_some_and(|s| s.starts_with("alcs_")));
    assert_eq!(minted.count(), 3, "the public client has none: {report}");
}
