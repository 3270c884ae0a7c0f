//! The load benchmark: `cargo bench --bench load -- [--store sqlite|postgres] [--connections 32]
//! [--duration 10] [--warmup 2] [--scenarios client_credentials,introspect,refresh,authcode,userinfo]
//! [--preload N] [--json FILE]`.
//!
//! Starts the real server in-process on port 0 against a fresh store, measures two yardsticks
//! in the same run (the store's raw one-row INSERT+COMMIT rate on the server's own pool at the
//! same concurrency, and the raw RS256 signing rate on every core), then drives each scenario
//! over loopback HTTP for a bounded time. Prints a table and, with `--json`, the same as JSON.
//! It asserts nothing: the machine is shared and noisy; the README compares the figures with
//! the targets.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use authledger::admin::clients::{self, ClientInput, NewClient};
use authledger::admin::users::{self, UserInput};
use authledger::config::Config;
use authledger::http::Application;
use authledger::master_key::MasterKey;
use authledger::oauth::tokens::{self, GrantId, CODE_PREFIX};
use authledger::oauth::Authority;
use authledger::scratch_db::ScratchPostgres;
use authledger_domain::client::{IdTokenAlg, RegistrationSource};
use authledger_domain::grant::{CodeIssue, GrantCommand};
use authledger_domain::metadata::{Actor, EventMetadata, Source};
use authledger_domain::oauth::Scopes;
use authledger_domain::pkce::{ChallengeMethod, CodeChallenge};
use authledger_domain::settings::{Setting, SettingsCommand, SETTINGS_ID};
use authledger_domain::user::Username;
use authledger_projections::{on_db, on_tx, Db};
use base64::Engine;
use clap::Parser;
use serde_json::{json, Value};
use sha2::Digest;

const SCENARIOS: [&str; 5] = [
    "client_credentials",
    "introspect",
    "refresh",
    "authcode",
    "userinfo",
];
const REDIRECT: &str = "https://bench.example/callback";

#[derive(Parser, Debug)]
#[command(about = "authledger load benchmark")]
struct Args {
    /// sqlite or postgres (Postgres at AUTHLEDGER_TEST_POSTGRES_URL, as the tests).
    #[arg(long, default_value = "sqlite")]
    store: String,
    #[arg(long, default_value_t = 32)]
    connections: usize,
    /// Seconds per scenario.
    #[arg(long, default_value_t = 10)]
    duration: u64,
    /// Seconds of warm-up before each scenario.
    #[arg(long, default_value_t = 2)]
    warmup: u64,
    /// Comma-separated subset of the scenarios.
    #[arg(long, value_delimiter = ',')]
    scenarios: Vec<String>,
    /// Events of history to write before measuring.
    #[arg(long, default_value_t = 0)]
    preload: u64,
    /// Also write the results as JSON to this file.
    #[arg(long)]
    json: Option<std::path::PathBuf>,
    /// Passed by `cargo bench`.
    #[arg(long, hide = true)]
    bench: bool,
}

/// The server binary's allocator, so the figures are the server's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let args = Args::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(run(args));
}

/// A fresh database, dropped at the end for Postgres.
struct Database {
    url: String,
    _dir: Option<tempfile::TempDir>,
    postgres: Option<ScratchPostgres>,
}

impl Database {
    async fn create(store: &str) -> Database {
        match store {
            "sqlite" => {
                let dir = tempfile::tempdir().expect("temp dir");
                let url = format!("sqlite://{}", dir.path().join("bench.db").display());
                Database {
                    url,
                    _dir: Some(dir),
                    postgres: None,
                }
            }
            "postgres" => {
                let scratch = ScratchPostgres::create("authledger_bench").await;
                Database {
                    url: scratch.url.clone(),
                    _dir: None,
                    postgres: Some(scratch),
                }
            }
            other => panic!("--store must be sqlite or postgres, not {other}"),
        }
    }

    async fn drop_database(&mut self) {
        if let Some(scratch) = self.postgres.take() {
            scratch.drop_now().await;
        }
    }
}

fn metadata() -> EventMetadata {
    EventMetadata {
        actor: Actor::Cli("bench".into()),
        request_id: uuid::Uuid::new_v4().to_string(),
        source: Source::Cli,
        at: chrono::Utc::now(),
    }
}

/// Writes `count` events of history: client-credentials grants of a year ago, each one
/// `TokensIssued` event with its own grant (their tokens long expired), then moves every
/// checkpoint past them, as if a long-running server had projected them already.
async fn preload(db: &Db, count: u64) {
    if count == 0 {
        return;
    }
    let started = Instant::now();
    let meta = serde_json::to_string(&metadata().to_map()).unwrap();
    let cast = if matches!(db, Db::Postgres(_)) {
        "::json"
    } else {
        ""
    };
    let sql = format!(
        "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata) \
         VALUES ('Grant', $1, 1, 'TokensIssued', '1', $2{cast}, $3{cast})"
    );
    let a_year_ago = chrono::Utc::now() - chrono::Duration::days(365);
    let payload = |n: u64| {
        let hash = authledger_domain::secret::SecretHash::from_hex(&format!("{n:064x}")).unwrap();
        let event = authledger_domain::grant::GrantEvent::TokensIssued {
            grant_type: authledger_domain::oauth::GrantType::ClientCredentials,
            client_id: "history".into(),
            user: None,
            scopes: Scopes::parse("api").unwrap(),
            auth_time: None,
            access_token_hash: hash,
            access_expires_at: a_year_ago,
            refresh_token_hash: None,
            refresh_expires_at: None,
        };
        // Stored as cqrs-es stores it: externally tagged.
        serde_json::to_string(&event).unwrap()
    };
    let mut written = 0;
    while written < count {
        let mut tx = db.begin().await.unwrap();
        for _ in 0..5000.min(count - written) {
            on_tx!(&mut tx, conn => sqlx::query(&sql).bind(uuid::Uuid::new_v4().to_string()).bind(payload(written)).bind(&meta).execute(conn).await.map(drop)).unwrap();
            written += 1;
        }
        tx.commit().await.unwrap();
    }
    let last = authledger_projections::event_log::last_position(db)
        .await
        .unwrap()
        .unwrap();
    let upsert = "INSERT INTO projection_checkpoints (projection, transaction_id, global_position) VALUES ($1, $2, $3) \
                  ON CONFLICT (projection) DO UPDATE SET transaction_id = excluded.transaction_id, global_position = excluded.global_position";
    for name in ["clients", "users", "grants", "consents", "audit", "cascade"] {
        on_db!(db, pool => sqlx::query(upsert).bind(name).bind(last.transaction).bind(last.global).execute(pool).await.map(drop)).unwrap();
    }
    eprintln!(
        "preloaded {count} events in {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

/// The store's raw one-row INSERT+COMMIT rate on `db`'s pool with `connections` concurrent
/// writers: the cost of one durable commit, the floor under every issuance.
async fn yardstick(db: &Db, connections: usize, duration: Duration) -> f64 {
    let ddl = match db {
        Db::Sqlite(_) => "CREATE TABLE IF NOT EXISTS bench_yardstick (id INTEGER PRIMARY KEY, payload TEXT NOT NULL)",
        Db::Postgres(_) => "CREATE TABLE IF NOT EXISTS bench_yardstick (id bigserial PRIMARY KEY, payload text NOT NULL)",
    };
    on_db!(db, pool => sqlx::query(ddl).execute(pool).await.map(drop)).unwrap();
    let done = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + duration;
    let tasks: Vec<_> = (0..connections)
        .map(|_| {
            let db = db.clone();
            let done = done.clone();
            tokio::spawn(async move {
                while Instant::now() < deadline {
                    let mut tx = db.begin().await.unwrap();
                    on_tx!(&mut tx, conn => sqlx::query("INSERT INTO bench_yardstick (payload) VALUES ($1)").bind("x").execute(conn).await.map(drop)).unwrap();
                    tx.commit().await.unwrap();
                    done.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    let started = Instant::now();
    futures::future::join_all(tasks).await;
    done.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64()
}

/// Raw RS256 signing of an ID-token-sized claim set, on every core.
async fn rs256_rate(authority: &Arc<Authority>, duration: Duration) -> f64 {
    let claims = json!({"iss": "http://127.0.0.1", "sub": "bench", "aud": "client", "azp": "client",
        "iat": 1_800_000_000u64, "exp": 1_800_003_600u64, "nonce": "n", "at_hash": "abcdefghijklmnopqrstuv", "email": "bench@example.com"});
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2);
    let done = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + duration;
    let started = Instant::now();
    let tasks: Vec<_> = (0..threads)
        .map(|_| {
            let authority = authority.clone();
            let claims = claims.clone();
            let done = done.clone();
            tokio::task::spawn_blocking(move || {
                while Instant::now() < deadline {
                    authority
                        .keys
                        .sign(IdTokenAlg::RS256, &claims, None)
                        .unwrap();
                    done.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    futures::future::join_all(tasks).await;
    done.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64()
}

/// Cumulative CPU time of the whole machine, from the first line of `/proc/stat`.
#[derive(Clone, Copy)]
struct CpuTimes {
    steal: u64,
    total: u64,
}

fn cpu_times() -> Option<CpuTimes> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let fields: Vec<u64> = stat
        .lines()
        .next()?
        .split_whitespace()
        .skip(1)
        .take(8)
        .map(|f| f.parse().ok())
        .collect::<Option<_>>()?;
    // user nice system idle iowait irq softirq steal
    Some(CpuTimes {
        steal: *fields.get(7)?,
        total: fields.iter().sum(),
    })
}

/// The share of CPU time the hypervisor gave to other guests ("steal") since `from`: on a
/// shared virtual machine every figure moves with it, so each one is printed with its own.
fn steal_since(from: Option<CpuTimes>) -> Option<f64> {
    let (from, to) = (from?, cpu_times()?);
    let total = to.total.checked_sub(from.total)?;
    (total > 0).then(|| to.steal.saturating_sub(from.steal) as f64 / total as f64)
}

/// The peak resident set of this process (server and load generator share it), in MiB.
fn rss_peak_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .map(str::to_owned)
        })
        .and_then(|l| {
            l.split_whitespace()
                .nth(1)
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map(|kb| kb / 1024.0)
        .unwrap_or(f64::NAN)
}

enum Outcome {
    Ok,
    Error,
    Exhausted,
}

struct Measured {
    latencies_us: Vec<u32>,
    errors: u64,
    elapsed: Duration,
}

/// Runs `request(connection)` from `connections` tasks until `duration` has passed.
async fn drive<F, Fut>(connections: usize, duration: Duration, request: Arc<F>) -> Measured
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = Outcome> + Send,
{
    let deadline = Instant::now() + duration;
    let started = Instant::now();
    let tasks: Vec<_> = (0..connections)
        .map(|connection| {
            let request = request.clone();
            tokio::spawn(async move {
                let (mut latencies, mut errors) = (Vec::with_capacity(100_000), 0u64);
                while Instant::now() < deadline {
                    let sent = Instant::now();
                    match request(connection).await {
                        Outcome::Ok => {}
                        Outcome::Error => errors += 1,
                        Outcome::Exhausted => break,
                    }
                    latencies.push(sent.elapsed().as_micros().min(u32::MAX as u128) as u32);
                }
                (latencies, errors)
            })
        })
        .collect();
    let mut measured = Measured {
        latencies_us: Vec::new(),
        errors: 0,
        elapsed: Duration::ZERO,
    };
    for task in futures::future::join_all(tasks).await {
        let (latencies, errors) = task.unwrap();
        measured.latencies_us.extend(latencies);
        measured.errors += errors;
    }
    measured.elapsed = started.elapsed();
    measured.latencies_us.sort_unstable();
    measured
}

fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index] as f64 / 1000.0
}

struct Bench {
    base: String,
    http: reqwest::Client,
    authority: Arc<Authority>,
    client: NewClient,
    basic: String,
}

impl Bench {
    async fn post_form(&self, path: &str, form: &[(&str, &str)]) -> Option<Value> {
        let response = self
            .http
            .post(format!("{}{path}", self.base))
            .header("authorization", &self.basic)
            .form(form)
            .send()
            .await
            .ok()?;
        if !response.status().is_success() {
            return None;
        }
        response.json().await.ok()
    }

    /// Codes issued straight through the grant aggregate (the person's sign-in and consent
    /// are not what is measured), each with its PKCE verifier.
    async fn codes(&self, count: usize, parallel: usize) -> Vec<(String, String)> {
        let out = Arc::new(Mutex::new(Vec::with_capacity(count)));
        let next = Arc::new(AtomicU64::new(0));
        let tasks: Vec<_> = (0..parallel)
            .map(|_| {
                let authority = self.authority.clone();
                let client_id = self.client.client_id.to_string();
                let out = out.clone();
                let next = next.clone();
                tokio::spawn(async move {
                    while next.fetch_add(1, Ordering::Relaxed) < count as u64 {
                        let verifier = format!(
                            "{}{}",
                            uuid::Uuid::new_v4().simple(),
                            uuid::Uuid::new_v4().simple()
                        );
                        let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD
                            .encode(sha2::Sha256::digest(verifier.as_bytes()));
                        let grant = GrantId::new();
                        let code = tokens::mint(CODE_PREFIX, &grant);
                        let issue = CodeIssue {
                            client_id: client_id.clone(),
                            user: Username::parse("bench").unwrap(),
                            scopes: Scopes::parse("openid email").unwrap(),
                            redirect_uri: REDIRECT.into(),
                            redirect_uri_explicit: true,
                            challenge: Some(
                                CodeChallenge::parse(&challenge, ChallengeMethod::S256).unwrap(),
                            ),
                            nonce: Some("bench".into()),
                            auth_time: chrono::Utc::now(),
                            code_hash: code.hash().clone(),
                            expires_at: chrono::Utc::now() + chrono::Duration::seconds(600),
                        };
                        authority
                            .store
                            .grants
                            .execute(grant.as_str(), GrantCommand::IssueCode(issue), &metadata())
                            .await
                            .unwrap();
                        out.lock()
                            .unwrap()
                            .push((code.reveal().to_owned(), verifier));
                    }
                })
            })
            .collect();
        futures::future::join_all(tasks).await;
        Arc::try_unwrap(out).unwrap().into_inner().unwrap()
    }

    async fn exchange(&self, code: &str, verifier: &str) -> Option<Value> {
        self.post_form(
            "/oauth/token",
            &[
                ("grant_type", "authorization_code"),
                ("code", code),
                ("redirect_uri", REDIRECT),
                ("code_verifier", verifier),
            ],
        )
        .await
    }
}

async fn run(args: Args) {
    let scenarios: Vec<String> = if args.scenarios.is_empty() {
        SCENARIOS.iter().map(|s| s.to_string()).collect()
    } else {
        args.scenarios.clone()
    };
    if let Some(bad) = scenarios.iter().find(|s| !SCENARIOS.contains(&s.as_str())) {
        panic!("unknown scenario {bad}; known: {}", SCENARIOS.join(", "));
    }
    let mut database = Database::create(&args.store).await;
    let mut rebuild_rate = None;
    {
        let store = authledger::store::Store::open(
            &database.url,
            Arc::new(authledger::services::SystemServices),
        )
        .await
        .expect("store");
        preload(&store.db, args.preload).await;
        if args.preload > 0 {
            let started = Instant::now();
            let replayed = store.runner.rebuild(None).await.expect("rebuild");
            let seconds = started.elapsed().as_secs_f64();
            rebuild_rate = Some(replayed as f64 / seconds);
            eprintln!(
                "projections rebuild: {replayed} events in {seconds:.1} s = {:.0} events/s",
                replayed as f64 / seconds
            );
        }
        store.db.close().await;
    }
    let app = Application::build(Config {
        database_url: database.url.clone(),
        listen: "127.0.0.1:0".into(),
        issuer: None,
        master_key: Some(MasterKey::generate().to_base64()),
        master_key_file: "unused".into(),
        token_cache_capacity: authledger::config::DEFAULT_TOKEN_CACHE,
        limits: Default::default(),
    })
    .await
    .expect("server starts");
    let base = format!("http://{}", app.local_addr());
    let authority = app.state().authority.clone();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until(async {
        let _ = stopped.await;
    }));

    let store = authority.store.clone();
    for setting in [Setting::CodeTtl(600)] {
        store
            .settings
            .execute(SETTINGS_ID, SettingsCommand::Change(setting), &metadata())
            .await
            .unwrap();
    }
    users::create(
        &store,
        UserInput {
            username: "bench".into(),
            password: "bench password".into(),
            email: Some("bench@example.com".into()),
            ..UserInput::default()
        },
        &metadata(),
    )
    .await
    .unwrap();
    let client = clients::register(
        &store,
        ClientInput {
            name: "bench".into(),
            redirect_uris: vec![REDIRECT.into()],
            grant_types: vec![
                "authorization_code".into(),
                "refresh_token".into(),
                "client_credentials".into(),
            ],
            scope: Some("openid email".into()),
            skip_authorization: true,
            ..ClientInput::default()
        },
        RegistrationSource::Admin,
        &metadata(),
        None,
    )
    .await
    .unwrap();
    let basic = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!(
            "{}:{}",
            client.client_id,
            client.client_secret.as_ref().unwrap().reveal()
        ))
    );
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(args.connections)
        .build()
        .unwrap();
    let bench = Arc::new(Bench {
        base,
        http,
        authority: authority.clone(),
        client,
        basic,
    });

    let duration = Duration::from_secs(args.duration);
    let warmup = Duration::from_secs(args.warmup);
    eprintln!("measuring the yardsticks ({} s each) ...", args.duration);
    let yardsticks_started = cpu_times();
    let commits = yardstick(&store.db, args.connections, duration).await;
    let signs = rs256_rate(&authority, duration).await;
    let yardsticks_steal = steal_since(yardsticks_started);
    eprintln!("  store INSERT+COMMIT: {commits:.0}/s; RS256 signing: {signs:.0}/s");

    let mut rows: Vec<Value> = Vec::new();
    for scenario in &scenarios {
        eprintln!("{scenario}: preparing ...");
        let scenario_started = cpu_times();
        let measured = match scenario.as_str() {
            "client_credentials" => {
                let b = bench.clone();
                let request = Arc::new(move |_| {
                    let b = b.clone();
                    async move {
                        match b
                            .post_form("/oauth/token", &[("grant_type", "client_credentials")])
                            .await
                        {
                            Some(_) => Outcome::Ok,
                            None => Outcome::Error,
                        }
                    }
                });
                drive(args.connections, warmup, request.clone()).await;
                drive(args.connections, duration, request).await
            }
            "introspect" | "userinfo" => {
                let codes = bench.codes(64, 8).await;
                let mut access = Vec::new();
                for (code, verifier) in &codes {
                    access.push(
                        bench.exchange(code, verifier).await.expect("exchange")["access_token"]
                            .as_str()
                            .unwrap()
                            .to_owned(),
                    );
                }
                let access = Arc::new(access);
                let b = bench.clone();
                let introspect = scenario == "introspect";
                let counter = Arc::new(AtomicU64::new(0));
                let request = Arc::new(move |_| {
                    let b = b.clone();
                    let access = access.clone();
                    let n = counter.fetch_add(1, Ordering::Relaxed) as usize;
                    async move {
                        let token = &access[n % access.len()];
                        let ok = if introspect {
                            b.post_form("/oauth/introspect", &[("token", token)])
                                .await
                                .is_some_and(|v| v["active"] == true)
                        } else {
                            b.http
                                .get(format!("{}/oauth/userinfo", b.base))
                                .bearer_auth(token)
                                .send()
                                .await
                                .is_ok_and(|r| r.status().is_success())
                        };
                        if ok {
                            Outcome::Ok
                        } else {
                            Outcome::Error
                        }
                    }
                });
                drive(args.connections, warmup, request.clone()).await;
                drive(args.connections, duration, request).await
            }
            "refresh" => {
                let codes = bench.codes(args.connections, 8).await;
                let mut chains = Vec::new();
                for (code, verifier) in &codes {
                    chains.push(Mutex::new(
                        bench.exchange(code, verifier).await.expect("exchange")["refresh_token"]
                            .as_str()
                            .unwrap()
                            .to_owned(),
                    ));
                }
                let chains = Arc::new(chains);
                let b = bench.clone();
                let request = Arc::new(move |connection: usize| {
                    let b = b.clone();
                    let chains = chains.clone();
                    async move {
                        let current = chains[connection].lock().unwrap().clone();
                        match b
                            .post_form(
                                "/oauth/token",
                                &[("grant_type", "refresh_token"), ("refresh_token", &current)],
                            )
                            .await
                        {
                            Some(tokens) => {
                                *chains[connection].lock().unwrap() =
                                    tokens["refresh_token"].as_str().unwrap().to_owned();
                                Outcome::Ok
                            }
                            None => Outcome::Error,
                        }
                    }
                });
                drive(args.connections, warmup, request.clone()).await;
                drive(args.connections, duration, request).await
            }
            "authcode" => {
                let needed = ((signs * 1.2) * (args.duration + args.warmup) as f64)
                    .clamp(1000.0, 40_000.0) as usize;
                eprintln!("  pre-issuing {needed} codes ...");
                let codes = Arc::new(Mutex::new(bench.codes(needed, args.connections).await));
                let b = bench.clone();
                let request = Arc::new(move |_| {
                    let b = b.clone();
                    let next = codes.lock().unwrap().pop();
                    async move {
                        let Some((code, verifier)) = next else {
                            return Outcome::Exhausted;
                        };
                        match b.exchange(&code, &verifier).await {
                            Some(tokens) if tokens["id_token"].is_string() => Outcome::Ok,
                            _ => Outcome::Error,
                        }
                    }
                });
                drive(args.connections, warmup, request.clone()).await;
                drive(args.connections, duration, request).await
            }
            _ => unreachable!(),
        };
        let count = measured.latencies_us.len();
        let rps = count as f64 / measured.elapsed.as_secs_f64();
        let issuance = matches!(
            scenario.as_str(),
            "client_credentials" | "refresh" | "authcode"
        );
        let row = json!({
            "scenario": scenario,
            "requests": count,
            "rps": rps,
            "p50_ms": percentile(&measured.latencies_us, 0.50),
            "p99_ms": percentile(&measured.latencies_us, 0.99),
            "max_ms": percentile(&measured.latencies_us, 1.0),
            "errors": measured.errors,
            "ratio_to_commit_yardstick": if issuance { json!(rps / commits) } else { Value::Null },
            "ratio_to_rs256": if scenario == "authcode" { json!(rps / signs) } else { Value::Null },
            "cpu_steal": steal_since(scenario_started),
        });
        if measured.errors > 0 {
            eprintln!("  !!! {scenario}: {} ERRORS", measured.errors);
        }
        rows.push(row);
    }

    // Read-your-writes: a token is introspectable as active right after its response.
    let mut not_visible = 0;
    for _ in 0..50 {
        let issued = bench
            .post_form("/oauth/token", &[("grant_type", "client_credentials")])
            .await
            .expect("token");
        let answer = bench
            .post_form(
                "/oauth/introspect",
                &[("token", issued["access_token"].as_str().unwrap())],
            )
            .await;
        if !answer.is_some_and(|a| a["active"] == true) {
            not_visible += 1;
        }
    }
    let rss = rss_peak_mib();

    println!();
    println!("authledger load benchmark: store={}, connections={}, {} s per scenario (+{} s warm-up), preload={} events",
        args.store, args.connections, args.duration, args.warmup, args.preload);
    let percent = |v: &Value| {
        v.as_f64()
            .map(|r| format!("{:.0}%", r * 100.0))
            .unwrap_or_else(|| "-".into())
    };
    println!(
        "yardsticks: store INSERT+COMMIT {commits:.0}/s, RS256 signing {signs:.0}/s (all cores; CPU steal {})",
        percent(&json!(yardsticks_steal))
    );
    println!(
        "{:<20} {:>10} {:>9} {:>9} {:>9} {:>8} {:>12} {:>9} {:>7}",
        "scenario", "req/s", "p50 ms", "p99 ms", "max ms", "errors", "x commit", "x RS256", "steal"
    );
    for row in &rows {
        println!(
            "{:<20} {:>10.0} {:>9.2} {:>9.2} {:>9.2} {:>8} {:>12} {:>9} {:>7}",
            row["scenario"].as_str().unwrap(),
            row["rps"].as_f64().unwrap(),
            row["p50_ms"].as_f64().unwrap(),
            row["p99_ms"].as_f64().unwrap(),
            row["max_ms"].as_f64().unwrap(),
            row["errors"],
            percent(&row["ratio_to_commit_yardstick"]),
            percent(&row["ratio_to_rs256"]),
            percent(&row["cpu_steal"])
        );
    }
    println!("steal: CPU time the hypervisor gave to other guests during that measurement; figures taken under different steal do not compare");
    println!("process RSS peak (server and load generator share the process): {rss:.0} MiB");
    println!("read-your-writes: {not_visible} of 50 fresh tokens not yet introspectable as active");

    if let Some(path) = &args.json {
        let report = json!({
            "store": args.store, "connections": args.connections, "duration_s": args.duration, "warmup_s": args.warmup,
            "preload_events": args.preload, "rebuild_events_per_s": rebuild_rate, "yardstick_commits_per_s": commits, "rs256_signs_per_s": signs, "yardsticks_cpu_steal": yardsticks_steal,
            "rss_peak_mib": rss, "read_your_writes_misses": not_visible, "scenarios": rows,
        });
        std::fs::write(path, serde_json::to_string_pretty(&report).unwrap())
            .expect("write --json file");
    }
    let _ = stop.send(());
    let _ = server.await;
    database.drop_database().await;
}
