//! The `authledger` binary, black box: what an operator types and sees.

use crate::helpers::*;

fn stderr(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

on_both_stores! {
    async fn an_operator_creates_lists_disables_and_rotates_through_the_cli(kind: Kind) {
        let db = TestDb::new(kind).await;

        let user = cli_json(&db, &[
            "user", "create", "--username", "Alice", "--password", "wonderland-1865",
            "--email", "alice@example.com", "--name", "Alice Liddell", "--role", "admin",
        ]);
        assert_eq!(user["username"], "alice");
        assert_eq!(user["roles"], serde_json::json!(["admin"]));
        assert!(user.get("password_hash").is_none());

        let client = cli_json(&db, &[
            "client", "create", "--name", "Web App",
            "--redirect-uri", "https://app.example/cb", "--redirect-uri", "http://127.0.0.1:7000/cb",
            "--scope", "openid profile email",
        ]);
        let client_id = client["client_id"].as_str().unwrap().to_owned();
        let first_secret = client["client_secret"].as_str().unwrap().to_owned();
        assert!(first_secret.starts_with("alcs_"));
        assert_eq!(client["redirect_uris"].as_array().unwrap().len(), 2);
        assert_eq!(client["token_endpoint_auth_method"], "client_secret_basic");

        let public = cli_json(&db, &[
            "client", "create", "--name", "SPA", "--public", "--redirect-uri", "https://spa.example/cb",
        ]);
        assert_eq!(public["client_secret"], serde_json::Value::Null);
        assert_eq!(public["token_endpoint_auth_method"], "none");

        let listed = cli_json(&db, &["client", "list"]);
        let ids: Vec<&str> = listed.as_array().unwrap().iter().map(|c| c["client_id"].as_str().unwrap()).collect();
        assert_eq!(ids.len(), 2);
        assert!(ids.contains(&client_id.as_str()));

        let disabled = cli(&db, &["client", "disable", &client_id, "--reason", "suspected leak"]);
        assert!(disabled.status.success(), "{}", stderr(&disabled));
        assert_eq!(cli_json(&db, &["client", "show", &client_id])["status"], "disabled");

        let again = cli(&db, &["client", "disable", &client_id]);
        assert!(!again.status.success());
        assert!(stderr(&again).contains("already disabled"), "{}", stderr(&again));

        let rotated = cli_json(&db, &["client", "rotate-secret", &client_id, "--revoke-tokens"]);
        let second_secret = rotated["client_secret"].as_str().unwrap().to_owned();
        assert_ne!(second_secret, first_secret);
        assert_eq!(rotated["tokens_revoked"], true);

        let enabled = cli(&db, &["client", "enable", &client_id]);
        assert!(enabled.status.success(), "{}", stderr(&enabled));

        // The history, as JSON lines, with metadata.
        let events = cli(&db, &["events", "--json"]);
        assert!(events.status.success(), "{}", stderr(&events));
        let lines: Vec<serde_json::Value> = String::from_utf8(events.stdout).unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let types: Vec<&str> = lines.iter().map(|e| e["event_type"].as_str().unwrap()).collect();
        // The same with the names every command uses, and a window.
        let windowed = cli(&db, &["events", "--format", "json", "--since", "1h", "--until", "now"]);
        assert_eq!(String::from_utf8(windowed.stdout).unwrap().lines().count(), lines.len());
        let before = cli(&db, &["events", "--until", "2000-01-01"]);
        assert!(before.status.success() && before.stdout.is_empty());
        let alice = cli(&db, &["history", "user:alice", "--format", "json"]);
        let first: serde_json::Value = serde_json::from_str(String::from_utf8(alice.stdout).unwrap().lines().next().unwrap()).unwrap();
        assert_eq!(first["event_type"], "UserRegistered");
        assert_eq!(types, [
            "UserRegistered", "ClientRegistered", "ClientRegistered",
            "ClientDisabled", "ClientSecretRotated", "ClientEnabled",
        ]);
        let positions: Vec<i64> = lines.iter().map(|e| e["position"]["global"].as_i64().unwrap()).collect();
        assert!(positions.windows(2).all(|w| w[0] < w[1]));
        for event in &lines {
            assert!(event["metadata"]["actor"].as_str().unwrap().starts_with("cli:"));
            assert_eq!(event["metadata"]["source"], "cli");
            assert!(event["metadata"]["request_id"].as_str().is_some());
            assert!(event["metadata"]["time"].as_str().is_some());
        }

        // One aggregate's history, in people's format.
        let history = cli(&db, &["events", "--aggregate", &format!("client:{client_id}")]);
        let text = String::from_utf8(history.stdout).unwrap();
        assert!(text.contains("ClientDisabled") && text.contains("suspected leak"));
        assert!(!text.contains("UserRegistered"));
        let user_history = cli(&db, &["events", "--aggregate", "User:ALICE", "--json"]);
        assert_eq!(String::from_utf8(user_history.stdout).unwrap().lines().count(), 1);

        // Nothing raw was stored: no secret, no password, anywhere. Their hashes are there.
        let stored = everything_stored(&db).await;
        assert!(stored.contains(authledger::secrets::hash(&second_secret).as_hex()));
        for raw in [first_secret.as_str(), second_secret.as_str(), "wonderland-1865"] {
            assert!(!stored.contains(raw), "a raw secret reached the store");
        }
    }
}

on_both_stores! {
    async fn a_password_can_come_from_stdin(kind: Kind) {
        let db = TestDb::new(kind).await;
        let output = cli_with_stdin(
            &db,
            &["user", "create", "--username", "bob", "--password-stdin"],
            "builder-of-things\n",
        );
        assert!(output.status.success(), "{}", stderr(&output));
        let changed = cli_with_stdin(&db, &["user", "set-password", "bob", "--password-stdin"], "another-secret-1\n");
        assert!(changed.status.success(), "{}", stderr(&changed));
        let stored = everything_stored(&db).await;
        assert!(!stored.contains("builder-of-things") && !stored.contains("another-secret-1"));
    }
}

on_both_stores! {
    async fn bad_input_gets_a_clear_message_and_a_failing_exit_code(kind: Kind) {
        let db = TestDb::new(kind).await;

        // With the exit code a script can tell them apart by (README, *Command line*): 2 a
        // command line that does not parse, 3 not found, 5 a value refused.
        let cases: &[(&[&str], &str, i32)] = &[
            (&["client", "create", "--redirect-uri", "https://a.example/cb"], "--name", 2),
            (&["client", "create", "--name", "x", "--redirect-uri", "/relative"], "redirect_uri `/relative`: must be an absolute URI", 5),
            (&["client", "create", "--name", "x", "--redirect-uri", "https://a.example/cb#f"], "fragment", 5),
            (&["client", "create", "--name", "x", "--redirect-uri", "http://remote.example/cb"], "loopback", 5),
            (&["client", "create", "--name", "x", "--grant-type", "password", "--redirect-uri", "https://a.example/cb"], "unknown grant type `password`", 5),
            (&["client", "create", "--name", "x", "--public", "--grant-type", "client_credentials"], "public client cannot use `client_credentials`", 5),
            (&["client", "show", "no-such-client"], "no client has that id or name", 3),
            (&["client", "rotate-secret", "no-such-client"], "not registered", 3),
            (&["user", "create", "--username", "x y", "--password", "long enough"], "username", 5),
            (&["user", "create", "--username", "frank", "--password", "short"], "at least 8", 5),
            (&["user", "create", "--username", "frank"], "--password", 2),
            (&["user", "disable", "nobody"], "does not exist", 3),
            (&["events", "--aggregate", "token:abc"], "unknown type `token`", 5),
            (&["events", "--since", "yesterday"], "--since `yesterday`", 5),
            (&["events", "--aggregate", "client:nope"], "no events for client:nope", 3),
            (&["projections", "rebuild", "nosuch"], "the projections are", 5),
            (&["audit", "--type", "nosuch"], "the types are", 5),
            (&["audit", "--since", "last week"], "a time ago", 5),
            (&["no-such-command"], "unrecognized subcommand", 2),
        ];
        for (args, expected, code) in cases {
            let output = cli(&db, args);
            let message = stderr(&output);
            assert_eq!(output.status.code(), Some(*code), "{args:?}: {message}");
            assert!(message.contains(expected), "{args:?}: expected {expected:?} in {message:?}");
            assert!(!message.contains("panicked"), "{args:?} panicked: {message}");
        }

        let duplicate = ["user", "create", "--username", "grace", "--password", "long enough pw"];
        assert!(cli(&db, &duplicate).status.success());
        let again = cli(&db, &duplicate);
        assert_eq!(again.status.code(), Some(4), "a conflict");
        assert!(stderr(&again).contains("already taken"));
    }
}

#[test]
fn an_unusable_database_url_is_reported_without_a_panic() {
    for url in [
        "mysql://nope",
        "sqlite://",
        "postgres://nobody@127.0.0.1:1/none",
    ] {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_authledger"))
            .args(["client", "list"])
            .env("AUTHLEDGER_DATABASE_URL", url)
            .output()
            .unwrap();
        assert!(!output.status.success(), "{url}");
        let message = String::from_utf8_lossy(&output.stderr);
        assert!(message.starts_with("error: "), "{url}: {message}");
        assert!(!message.contains("panicked"), "{url}: {message}");
    }
}

/// `audit --follow` prints rows as they are recorded; `projections status` says how far each
/// read model has read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_follows_new_rows_and_projections_report_their_lag() {
    use std::io::BufRead;
    let db = TestDb::new(Kind::Sqlite).await;
    let mut follower = std::process::Command::new(env!("CARGO_BIN_EXE_authledger"))
        .args([
            "audit",
            "--follow",
            "--format",
            "json",
            "--type",
            "UserRegistered",
        ])
        .env("AUTHLEDGER_DATABASE_URL", &db.url)
        .env("AUTHLEDGER_MASTER_KEY", &db.master_key)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let stdout = follower.stdout.take().unwrap();
    let (lines_tx, lines) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            let _ = lines_tx.send(line);
        }
    });
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    let created = cli(
        &db,
        &[
            "user",
            "create",
            "--username",
            "frank",
            "--password",
            "long enough pw",
        ],
    );
    assert!(created.status.success(), "{}", stderr(&created));
    let line = lines
        .recv_timeout(std::time::Duration::from_secs(15))
        .expect("the new row, followed");
    follower.kill().unwrap();
    let _ = follower.wait();
    let row: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(
        (row["event_type"].as_str(), row["username"].as_str()),
        (Some("UserRegistered"), Some("frank"))
    );

    let status = cli_json(&db, &["projections", "status", "--format", "json"]);
    let rows = status.as_array().unwrap();
    assert!(rows.iter().any(|r| r["projection"] == "users"), "{status}");
    assert!(
        rows.iter()
            .all(|r| r["lag_events"] == 0 && r["head"].as_i64() > Some(0)),
        "caught up: {status}"
    );
    let table = String::from_utf8(cli(&db, &["projections", "status"]).stdout).unwrap();
    assert!(
        table.starts_with("PROJECTION") && table.contains("audit"),
        "{table}"
    );
}

/// Commands that take something away want it said: `set-roles` with no role is refused
/// unless `--none`; naming an algorithm twice publishes one key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dangerous_commands_need_intent() {
    let db = TestDb::new(Kind::Sqlite).await;
    assert!(cli(
        &db,
        &[
            "user",
            "create",
            "--username",
            "ada",
            "--password",
            "long enough pw",
            "--role",
            "admin"
        ]
    )
    .status
    .success());
    let forgot = cli(&db, &["user", "set-roles", "ada"]);
    assert_eq!(forgot.status.code(), Some(2), "{}", stderr(&forgot));
    assert!(
        stderr(&forgot).contains("--role") && stderr(&forgot).contains("--none"),
        "{}",
        stderr(&forgot)
    );
    assert_eq!(
        cli_json(&db, &["user", "show", "ada"])["roles"],
        serde_json::json!(["admin"]),
        "unchanged"
    );
    let table = String::from_utf8(cli(&db, &["user", "list", "--format", "table"]).stdout).unwrap();
    assert!(
        table.starts_with("USERNAME") && table.lines().nth(1).unwrap().contains("admin"),
        "{table}"
    );
    let none = cli_json(&db, &["user", "set-roles", "ada", "--none"]);
    assert_eq!(none["roles"], serde_json::json!([]), "{none}");

    assert!(cli(&db, &["keys", "rotate", "--now"]).status.success());
    let before = cli_json(&db, &["keys", "list"]).as_array().unwrap().len();
    let rotated = cli(&db, &["keys", "rotate", "--alg", "ES256", "--alg", "ES256"]);
    assert!(rotated.status.success(), "{}", stderr(&rotated));
    assert!(
        stderr(&rotated).contains("published 1 new key"),
        "{}",
        stderr(&rotated)
    );
    let after = cli_json(&db, &["keys", "list"]).as_array().unwrap().len();
    assert_eq!(after, before + 1);
    let keys = String::from_utf8(cli(&db, &["keys", "list", "--format", "table"]).stdout).unwrap();
    assert!(keys.starts_with("KID") && keys.contains("ES256"), "{keys}");
    let clients =
        String::from_utf8(cli(&db, &["client", "list", "--format", "table"]).stdout).unwrap();
    assert!(clients.starts_with("CLIENT_ID"), "{clients}");
}

/// `client show` takes a name as well as an id; a name two clients share names neither.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_is_shown_by_its_unique_name() {
    let db = TestDb::new(Kind::Sqlite).await;
    let create = |name: &str| {
        cli_json(
            &db,
            &[
                "client",
                "create",
                "--name",
                name,
                "--grant-type",
                "client_credentials",
            ],
        )
    };
    let billing = create("Billing");
    let shown = cli_json(&db, &["client", "show", "billing"]);
    assert_eq!(shown["client_id"], billing["client_id"], "{shown}");
    create("Reports");
    create("Reports");
    let shared = cli(&db, &["client", "show", "Reports"]);
    assert_eq!(shared.status.code(), Some(4));
    assert!(
        stderr(&shared).contains("2 clients are named `Reports`"),
        "{}",
        stderr(&shared)
    );
    assert_eq!(
        cli(&db, &["client", "show", "Nobody"]).status.code(),
        Some(3)
    );
}
