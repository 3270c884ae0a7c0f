//! The load benchmark: `cargo bench --bench load -- [--store sqlite|postgres] [--connections 32]
//! [--duration 10] [--warmup 2] [--scenarios client_credentials,introspect,refresh,authcode,userinfo]
//! [--preload N] [--ledger on|off] [--peer node|URL [--peer-client ID:SECRET]] [--json FILE]`.
//!
//! Starts the real server in-process on port 0 against a fresh store, measures two yardsticks
//! in the same run (the store's raw one-row INSERT+COMMIT rate on the server's own pool at the
//! same concurrency, and the raw RS256 signing rate on every core), then drives each scenario
//! over loopback HTTP for a bounded time. Before the scenarios it times the console's audit
//! page (first page and filtered ones) on the store as preloaded. Prints a table and, with `--json`, the same as JSON.
//! It asserts nothing: the machine is shared and noisy; the README compares the figures with
//! the targets.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use authledger::config::Config;
use authledger::http::Application;
use authledger::master_key::MasterKey;
use clap::Parser;
use serde_json::{json, Value};

mod console;
mod harness;
mod peer;
mod probe;
mod report;
mod scenarios;

use harness::{
    cpu_times, drive, percentile, rs256_rate, rss_now_mib, rss_peak_mib, sqlite_mib, steal_since,
    yardstick, Database, Outcome,
};
use scenarios::{preload, Bench};

const SCENARIOS: [&str; 8] = [
    "client_credentials",
    "introspect",
    "refresh",
    "authcode",
    "userinfo",
    "client_credentials_jwt",
    "device_poll",
    "token_exchange",
];
/// The resource `client_credentials_jwt` asks for: its tokens are RFC 9068 JWTs.
const JWT_RESOURCE: &str = "https://bench.example/api";
/// Device codes `device_poll` cycles through.
const DEVICE_CODES: usize = 2000;
pub(crate) const REDIRECT: &str = "https://bench.example/callback";

#[derive(Parser, Debug)]
#[command(about = "authledger load benchmark")]
pub(crate) struct Args {
    /// sqlite or postgres (Postgres at AUTHLEDGER_TEST_POSTGRES_URL, as the tests).
    #[arg(long, default_value = "sqlite")]
    store: String,
    #[arg(long, default_value_t = 32)]
    connections: usize,
    /// on: the server links every event into the ledger's hash chain and seals it, as in
    /// production; off: it does not, to measure what the chain costs.
    #[arg(long, default_value = "on", value_parser = ["on", "off"])]
    ledger: String,
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
    /// Measure a peer side by side in the same run: `node` starts node-oidc-provider from
    /// benches/peer (skipped when Node.js is absent), or the URL of any RFC 6749 server
    /// publishing its metadata (with --peer-client).
    #[arg(long, value_name = "node|URL")]
    peer: Option<String>,
    /// The peer's confidential client, ID:SECRET (not needed for `--peer node`).
    #[arg(long, value_name = "ID:SECRET")]
    peer_client: Option<String>,
    /// Also write the results as JSON to this file.
    #[arg(long)]
    json: Option<std::path::PathBuf>,
    /// Passed by `cargo bench`.
    #[arg(long, hide = true)]
    bench: bool,
}

/// The server binary's allocator, so the figures are the server's.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// Links the preloaded history into the chain, then verifies it as `authledger ledger verify`
/// does: the rates of both, in events per second.
async fn link_and_verify(db: &authledger_projections::Db) -> (f64, f64) {
    use authledger_projections::ledger;
    let started = Instant::now();
    let linked = ledger::link_all(db).await.expect("link");
    let link_rate = linked as f64 / started.elapsed().as_secs_f64();
    eprintln!(
        "ledger link: {linked} events in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let started = Instant::now();
    let verified = ledger::verify(db, None, None, None).await.expect("verify");
    let seconds = started.elapsed().as_secs_f64();
    assert!(verified.first_break.is_none(), "{:?}", verified.first_break);
    eprintln!(
        "ledger verify: {} events in {seconds:.1} s = {:.0} events/s",
        verified.links,
        verified.links as f64 / seconds
    );
    (link_rate, verified.links as f64 / seconds)
}

fn main() {
    authledger::allocator::configure();
    let args = Args::parse();
    // BENCH_LOG=authledger_projections=info shows, among others, how long a rebuild's swap
    // held the store's write lock.
    if let Ok(filter) = tracing_subscriber::EnvFilter::try_from_env("BENCH_LOG") {
        tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .init();
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(run(args));
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
    let mut ledger_rates = None;
    {
        let store = authledger::store::Store::open(&database.url)
            .await
            .expect("store");
        preload(&store.db, args.preload).await;
        if args.preload > 0 {
            let probe = probe::WriterProbe::start(&store.db).await;
            let started = Instant::now();
            let replayed = store.runner.rebuild(None).await.expect("rebuild");
            let seconds = started.elapsed().as_secs_f64();
            let (writes, failed, longest) = probe.stop().await;
            rebuild_rate = Some(replayed as f64 / seconds);
            eprintln!(
                "projections rebuild: {replayed} events in {seconds:.1} s = {:.0} events/s; \
                 a writer beside it committed {writes} times ({failed} timed out), waiting at most {:.0} ms",
                replayed as f64 / seconds,
                longest.as_secs_f64() * 1000.0
            );
            ledger_rates = Some(link_and_verify(&store.db).await);
        }
        store.db.close().await;
    }
    let app = Application::build(Config {
        database_url: database.url.clone().into(),
        listen: "127.0.0.1:0".into(),
        issuer: None,
        master_key: Some(MasterKey::generate().to_base64().into()),
        master_key_file: "unused".into(),
        token_cache_capacity: authledger::config::DEFAULT_TOKEN_CACHE,
        limits: Default::default(),
        link_ledger: args.ledger == "on",
        archive_dir: None,
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
    let bench = Bench::set_up(base, authority.clone(), args.connections).await;

    eprintln!("console: timing the audit pages ...");
    let audit_pages =
        console::audit_pages(&bench.base, &store, bench.client.client_id.as_str()).await;

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
                let access = Arc::new(bench.access_tokens(64).await);
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
            "client_credentials_jwt" => {
                let b = bench.clone();
                let request = Arc::new(move |_| {
                    let b = b.clone();
                    async move {
                        let form = [
                            ("grant_type", "client_credentials"),
                            ("resource", JWT_RESOURCE),
                        ];
                        match b.post_form("/oauth/token", &form).await {
                            Some(tokens)
                                if tokens["access_token"]
                                    .as_str()
                                    .is_some_and(|t| t.starts_with("ey")) =>
                            {
                                Outcome::Ok
                            }
                            _ => Outcome::Error,
                        }
                    }
                });
                drive(args.connections, warmup, request.clone()).await;
                drive(args.connections, duration, request).await
            }
            "device_poll" => {
                eprintln!("  starting {DEVICE_CODES} device authorizations ...");
                let mut codes = Vec::with_capacity(DEVICE_CODES);
                for _ in 0..DEVICE_CODES {
                    let started = bench
                        .post_form("/oauth/device_authorization", &[("scope", "openid")])
                        .await
                        .expect("device authorization");
                    codes.push(started["device_code"].as_str().unwrap().to_owned());
                }
                let codes = Arc::new(codes);
                let counter = Arc::new(AtomicU64::new(0));
                let b = bench.clone();
                let request = Arc::new(move |_| {
                    let b = b.clone();
                    let codes = codes.clone();
                    let n = counter.fetch_add(1, Ordering::Relaxed) as usize;
                    async move {
                        let form = [
                            ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
                            ("device_code", codes[n % codes.len()].as_str()),
                        ];
                        // Nobody approves: every poll is answered authorization_pending, or
                        // slow_down when the cycle comes round sooner than the interval.
                        match b.post_form_status("/oauth/token", &form).await {
                            Some((400, answer))
                                if answer["error"] == "authorization_pending"
                                    || answer["error"] == "slow_down" =>
                            {
                                Outcome::Ok
                            }
                            _ => Outcome::Error,
                        }
                    }
                });
                drive(args.connections, warmup, request.clone()).await;
                drive(args.connections, duration, request).await
            }
            "token_exchange" => {
                // A person's access tokens, each exchanged with the client's own token as the
                // actor: delegation, a new grant with `act` per request.
                let subjects = bench.access_tokens(64).await;
                let actor = bench
                    .post_form("/oauth/token", &[("grant_type", "client_credentials")])
                    .await
                    .expect("the actor's token")["access_token"]
                    .as_str()
                    .unwrap()
                    .to_owned();
                let subjects = Arc::new(subjects);
                let counter = Arc::new(AtomicU64::new(0));
                let b = bench.clone();
                let request = Arc::new(move |_| {
                    let b = b.clone();
                    let subjects = subjects.clone();
                    let actor = actor.clone();
                    let n = counter.fetch_add(1, Ordering::Relaxed) as usize;
                    async move {
                        const ACCESS: &str = "urn:ietf:params:oauth:token-type:access_token";
                        let form = [
                            (
                                "grant_type",
                                "urn:ietf:params:oauth:grant-type:token-exchange",
                            ),
                            ("subject_token", subjects[n % subjects.len()].as_str()),
                            ("subject_token_type", ACCESS),
                            ("actor_token", actor.as_str()),
                            ("actor_token_type", ACCESS),
                        ];
                        match b.post_form("/oauth/token", &form).await {
                            Some(tokens) if tokens["issued_token_type"] == ACCESS => Outcome::Ok,
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
            "client_credentials"
                | "refresh"
                | "authcode"
                | "client_credentials_jwt"
                | "token_exchange"
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
            // Which scenario the run's peak comes from: the peak so far, and what is resident
            // at its end (the live index keeps every unexpired token issued before).
            "rss_peak_so_far_mib": rss_peak_mib(),
            "rss_end_mib": rss_now_mib(),
            "sqlite_mib": sqlite_mib(),
        });
        if measured.errors > 0 {
            eprintln!("  !!! {scenario}: {} ERRORS", measured.errors);
        }
        rows.push(row);
    }

    // The peer, measured the same way right after, on the same machine.
    let mut peer_rows: Vec<Value> = Vec::new();
    if let Some(name) = &args.peer {
        match peer::connect(name, args.peer_client.as_deref()).await {
            Err(why) => eprintln!("peer skipped: {why}"),
            Ok(connected) => {
                let connected = Arc::new(connected);
                for scenario in scenarios
                    .iter()
                    .filter(|s| *s == "client_credentials" || *s == "introspect")
                {
                    eprintln!("peer {scenario}: measuring ...");
                    let Some(measured) = connected
                        .measure(scenario, args.connections, warmup, duration)
                        .await
                    else {
                        eprintln!("peer {scenario}: the peer does not offer it");
                        continue;
                    };
                    let rps = measured.latencies_us.len() as f64 / measured.elapsed.as_secs_f64();
                    let ours = rows
                        .iter()
                        .find(|r| r["scenario"] == scenario.as_str())
                        .and_then(|r| r["rps"].as_f64());
                    peer_rows.push(json!({
                        "scenario": scenario,
                        "rps": rps,
                        "p50_ms": percentile(&measured.latencies_us, 0.50),
                        "p99_ms": percentile(&measured.latencies_us, 0.99),
                        "errors": measured.errors,
                        "authledger_to_peer": ours.map(|o| o / rps),
                    }));
                }
            }
        }
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

    report::print(
        &args,
        report::Results {
            commits,
            signs,
            yardsticks_steal,
            rows,
            peer_rows,
            rss,
            not_visible,
            ledger_rates,
            rebuild_rate,
            audit_pages,
        },
    );
    let _ = stop.send(());
    let _ = server.await;
    database.drop_database().await;
}
