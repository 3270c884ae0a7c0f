//! The server's log as an operator's pipeline reads it (`AUTHLEDGER_LOG_FORMAT=json`): one
//! JSON object per line; a start-up line with the version, the store kind, the issuer, the
//! address and the schema version (never the database URL); one line per request with its
//! id, route, status and latency, and the client and OAuth error when there are; no secret.

use std::io::BufRead;
use std::process::{Command, Stdio};

use serde_json::Value;

/// The binary in `dir`, with only what the test gives it.
pub(crate) fn authledger(dir: &std::path::Path, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_authledger"));
    command
        .args(args)
        .current_dir(dir)
        .env_remove("AUTHLEDGER_MASTER_KEY")
        .env_remove("AUTHLEDGER_MASTER_KEY_FILE")
        .env_remove("AUTHLEDGER_DATABASE_URL")
        .env_remove("RUST_LOG")
        .env("AUTHLEDGER_LISTEN", "127.0.0.1:0")
        .env("AUTHLEDGER_LOG_FORMAT", "json");
    command
}

/// Starts `serve`: the process, its log lines as they come, those read up to the start-up
/// line, and that line.
pub(crate) fn serve(
    mut command: Command,
) -> (
    std::process::Child,
    std::sync::mpsc::Receiver<String>,
    Vec<String>,
    Value,
) {
    let mut server = command
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (lines_tx, lines) = std::sync::mpsc::channel::<String>();
    let stderr = server.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            if lines_tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut seen = vec![];
    let started = loop {
        let line = lines
            .recv_timeout(std::time::Duration::from_secs(30))
            .unwrap_or_else(|_| panic!("no start-up line: {seen:?}"));
        let parsed: Value = serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("not one JSON object per line ({e}): {line}"));
        seen.push(line);
        if parsed["message"] == "serving" {
            break parsed;
        }
    };
    (server, lines, seen, started)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_logs_say_what_runs_and_what_each_request_was_without_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let created = authledger(
        dir.path(),
        &[
            "client",
            "create",
            "--name",
            "Service",
            "--grant-type",
            "client_credentials",
            "--scope",
            "read",
        ],
    )
    .output()
    .unwrap();
    assert!(
        created.status.success(),
        "{}",
        String::from_utf8_lossy(&created.stderr)
    );
    let client: Value = serde_json::from_slice(&created.stdout).unwrap();
    let (client_id, secret) = (
        client["client_id"].as_str().unwrap().to_owned(),
        client["client_secret"].as_str().unwrap().to_owned(),
    );

    let (mut server, lines, mut seen, started) = serve(authledger(dir.path(), &["serve"]));
    assert_eq!(started["store"], "sqlite", "{started}");
    assert_eq!(started["version"], env!("CARGO_PKG_VERSION"));
    assert!(
        started["schema_version"].as_i64().unwrap() >= 20261127000014,
        "{started}"
    );
    let address = started["listen"].as_str().unwrap().to_owned();
    assert_eq!(started["issuer"], format!("http://{address}"));

    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let token = format!("http://{address}/oauth/token");
    let issued = http
        .post(&token)
        .basic_auth(&client_id, Some(&secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(issued.status(), 200);
    let access_token = issued.json::<Value>().await.unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let refused = http
        .post(&token)
        .basic_auth(&client_id, Some(&secret))
        .form(&[
            ("grant_type", "password"),
            ("username", "u"),
            ("password", "p"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 400);
    let unknown = http
        .post(&token)
        .basic_auth("made-up-client", Some("guess"))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 401);
    let page = http
        .get(format!("http://{address}/admin/history/Client/{client_id}"))
        .send()
        .await
        .unwrap();
    assert!(page.status().is_redirection());

    server.kill().unwrap();
    server.wait().unwrap();
    seen.extend(lines.iter());
    let requests: Vec<Value> = seen
        .iter()
        .map(|line| serde_json::from_str::<Value>(line).unwrap_or_else(|e| panic!("{e}: {line}")))
        .filter(|line| line["message"] == "request finished")
        .collect();
    assert_eq!(requests.len(), 4, "{seen:#?}");
    for line in &requests {
        assert!(
            line["span"]["request_id"]
                .as_str()
                .is_some_and(|id| id.len() == 36),
            "{line}"
        );
        assert!(
            line["latency_ms"].as_f64().is_some() && line["timestamp"].is_string(),
            "{line}"
        );
    }
    let span = |n: usize| &requests[n]["span"];
    assert_eq!(
        (
            span(0)["route"].as_str(),
            span(0)["client_id"].as_str(),
            requests[0]["status"].as_u64()
        ),
        (Some("/oauth/token"), Some(client_id.as_str()), Some(200))
    );
    assert!(span(0).get("error").is_none(), "{}", requests[0]);
    assert_eq!(
        (span(1)["client_id"].as_str(), span(1)["error"].as_str()),
        (Some(client_id.as_str()), Some("unsupported_grant_type"))
    );
    assert_eq!(
        (span(2)["error"].as_str(), requests[2]["status"].as_u64()),
        (Some("invalid_client"), Some(401))
    );
    assert!(
        span(2).get("client_id").is_none(),
        "a made-up client id is not logged: {}",
        requests[2]
    );
    assert_eq!(
        span(3)["route"],
        "/admin/history/{kind}/{id}",
        "the pattern, not the path"
    );

    let all = seen.join("\n");
    for secret in [secret.as_str(), access_token.as_str(), "guess"] {
        assert!(!all.contains(secret), "a secret in the log: {all}");
    }
}

/// A person signs in (once wrongly) from their own address and browser, at debug level, and
/// is then erased: the log never held their email, name, address or user agent, so there is
/// nothing of them left in it either.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_log_holds_no_personal_data() {
    let (email, name, address, agent) = (
        "marguerite.oysterby@example.org",
        "Marguerite Oysterby",
        "198.51.100.77",
        "OysterBrowser/7.7",
    );
    let dir = tempfile::tempdir().unwrap();
    let created = authledger(
        dir.path(),
        &[
            "user",
            "create",
            "--username",
            "u7",
            "--password",
            "long enough pass",
            "--email",
            email,
            "--name",
            name,
        ],
    )
    .output()
    .unwrap();
    assert!(
        created.status.success(),
        "{}",
        String::from_utf8_lossy(&created.stderr)
    );
    let mut command = authledger(dir.path(), &["serve"]);
    command
        .env("AUTHLEDGER_LOG", "debug")
        .env("AUTHLEDGER_TRUSTED_PROXIES", "127.0.0.1");
    let (mut server, lines, mut seen, started) = serve(command);
    let base = format!("http://{}", started["listen"].as_str().unwrap());
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert("x-forwarded-for", address.parse().unwrap());
    let browser = reqwest::Client::builder()
        .cookie_store(true)
        .user_agent(agent)
        .default_headers(headers)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    for (password, expected) in [("not it", 401), ("long enough pass", 303)] {
        let page = browser.get(format!("{base}/login")).send().await.unwrap();
        let mut form = crate::oauth::flow::hidden_fields(&page.text().await.unwrap());
        form.push(("username".into(), "u7".into()));
        form.push(("password".into(), password.into()));
        let answer = browser
            .post(format!("{base}/login"))
            .form(&form)
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status().as_u16(), expected);
    }
    let account = browser.get(format!("{base}/account")).send().await.unwrap();
    assert!(
        account.text().await.unwrap().contains(address),
        "the data was there to log"
    );
    let erased = authledger(dir.path(), &["user", "erase", "u7"])
        .output()
        .unwrap();
    assert!(
        erased.status.success(),
        "{}",
        String::from_utf8_lossy(&erased.stderr)
    );

    server.kill().unwrap();
    server.wait().unwrap();
    seen.extend(lines.iter());
    let all = seen.join("\n");
    assert!(all.contains("/login"), "the requests were logged: {all}");
    for personal in [email, name, address, agent] {
        assert!(
            !all.contains(personal),
            "{personal} is in the server log: {all}"
        );
    }
}
