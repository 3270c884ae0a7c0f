//! Postgres going away: quick 503s with `Retry-After`, introspection still served from memory,
//! `/readyz` failing while it lasts, and recovery without a restart.
//!
//! The shared Postgres cannot be stopped under the other tests, so this server reaches it
//! through a TCP relay of the test's own, which the test cuts and restores.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use tokio::net::{TcpListener, TcpStream};

use crate::helpers::*;
use crate::oauth::flow::*;

/// Relays connections to Postgres while `up`; when cut, drops the relayed connections and
/// refuses new ones, as a stopped database would.
struct Relay {
    port: u16,
    up: Arc<AtomicBool>,
    generation: Arc<tokio::sync::watch::Sender<u64>>,
}

impl Relay {
    async fn start(target: String) -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let up = Arc::new(AtomicBool::new(true));
        let (generation, _) = tokio::sync::watch::channel(0u64);
        let generation = Arc::new(generation);
        let (up_in, generation_in) = (up.clone(), generation.clone());
        tokio::spawn(async move {
            loop {
                let Ok((mut client, _)) = listener.accept().await else {
                    continue;
                };
                if !up_in.load(Ordering::SeqCst) {
                    drop(client);
                    continue;
                }
                let mut cut = generation_in.subscribe();
                let target = target.clone();
                tokio::spawn(async move {
                    let Ok(mut server) = TcpStream::connect(&target).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                        _ = cut.changed() => {}
                    }
                });
            }
        });
        Relay {
            port,
            up,
            generation,
        }
    }

    fn cut(&self) {
        self.up.store(false, Ordering::SeqCst);
        self.generation.send_modify(|g| *g += 1);
    }

    fn restore(&self) {
        self.up.store(true, Ordering::SeqCst);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_postgres_down_token_requests_get_a_quick_503_and_service_resumes_by_itself() {
    let mut db = TestDb::new(Kind::Postgres).await;
    let mut url = url::Url::parse(&db.url).unwrap();
    let target = format!("{}:{}", url.host_str().unwrap(), url.port().unwrap_or(5432));
    let relay = Relay::start(target).await;
    url.set_port(Some(relay.port)).unwrap();
    db.url = url.to_string();
    let flow = Flow::with_app(TestApp::spawn_on(db).await).await;
    let ops = flow
        .client(authledger::admin::clients::ClientInput {
            name: "Service".into(),
            grant_types: vec!["client_credentials".into()],
            redirect_uris: vec![],
            scope: Some("read".into()),
            ..Default::default()
        })
        .await;
    let grant = [("grant_type", "client_credentials")];
    let (status, _, before) = flow.token(Auth::Basic(&ops), &grant).await;
    assert_eq!(status, 200, "{before}");
    let ready = flow.get("/readyz").await;
    assert_eq!(ready.status(), StatusCode::OK);

    relay.cut();
    let started = Instant::now();
    let (status, headers, body) = flow.token(Auth::Basic(&ops), &grant).await;
    let took = started.elapsed();
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(took < Duration::from_secs(3), "answered after {took:?}");
    assert_eq!(headers["retry-after"], "1");
    assert_eq!(body["error"], "temporarily_unavailable", "{body}");

    // Tokens already issued are still introspected, from memory.
    let token = before["access_token"].as_str().unwrap();
    let (_, _, introspection) = flow
        .token_at("/oauth/introspect", Auth::Basic(&ops), &[("token", token)])
        .await;
    assert_eq!(introspection["active"], true);
    let healthz = flow.get("/healthz").await;
    assert_eq!(
        healthz.status(),
        StatusCode::OK,
        "liveness is not readiness"
    );
    let not_ready = flow.get("/readyz").await;
    assert_eq!(not_ready.status(), StatusCode::SERVICE_UNAVAILABLE);

    relay.restore();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (status, _, _) = flow.token(Auth::Basic(&ops), &grant).await;
        if status == 200 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no recovery within 10 s ({status})"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    while flow.get("/readyz").await.status() != StatusCode::OK {
        assert!(
            Instant::now() < deadline,
            "/readyz still failing after recovery"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
