//! The peer, side by side: the same `client_credentials` and `introspect` loads against
//! another RFC 6749 server in the same run, so the README's comparison can be reproduced.
//!
//! `--peer node` starts node-oidc-provider (OpenID-certified; in-memory storage, nothing
//! durable) from `benches/peer/` with one confidential client, installing it with npm the
//! first time; without Node.js the peer is skipped with a line saying so. `--peer URL` with
//! `--peer-client ID:SECRET` measures any server that publishes its endpoints at
//! `/.well-known/openid-configuration` (or `/.well-known/oauth-authorization-server`).

use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use serde_json::Value;

use crate::harness::{drive, Measured, Outcome};

/// The bundled peer's client (benches/peer/peer.mjs).
const NODE_CLIENT: &str = "bench:bench-secret-bench-secret-bench-secret";
const NODE_PORT: u16 = 3999;

/// A peer to measure, and the process behind it when this run started one.
pub(crate) struct Peer {
    token_endpoint: String,
    introspection_endpoint: Option<String>,
    basic: String,
    http: reqwest::Client,
    process: Option<Child>,
}

impl Drop for Peer {
    fn drop(&mut self) {
        if let Some(process) = &mut self.process {
            let _ = process.kill();
            let _ = process.wait();
        }
    }
}

/// The peer `--peer` names, or why there is none (printed, the run goes on).
pub(crate) async fn connect(peer: &str, client: Option<&str>) -> Result<Peer, String> {
    let (base, client, process) = match peer {
        "node" => {
            let process = start_node()?;
            (
                format!("http://127.0.0.1:{NODE_PORT}"),
                NODE_CLIENT.to_owned(),
                Some(process),
            )
        }
        url => {
            let client = client.ok_or("--peer URL needs --peer-client ID:SECRET")?;
            (
                url.trim_end_matches('/').to_owned(),
                client.to_owned(),
                None,
            )
        }
    };
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(256)
        .build()
        .map_err(|e| e.to_string())?;
    let mut metadata = None;
    for _ in 0..50 {
        for path in [
            "/.well-known/openid-configuration",
            "/.well-known/oauth-authorization-server",
        ] {
            if let Ok(response) = http.get(format!("{base}{path}")).send().await {
                if let Ok(document) = response.json::<Value>().await {
                    metadata = Some(document);
                    break;
                }
            }
        }
        if metadata.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let mut peer = Peer {
        token_endpoint: String::new(),
        introspection_endpoint: None,
        basic: format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(&client)
        ),
        http,
        process,
    };
    let metadata =
        metadata.ok_or_else(|| format!("{base} publishes no authorization server metadata"))?;
    peer.token_endpoint = metadata["token_endpoint"]
        .as_str()
        .ok_or("the peer's metadata has no token_endpoint")?
        .to_owned();
    peer.introspection_endpoint = metadata["introspection_endpoint"]
        .as_str()
        .map(str::to_owned);
    Ok(peer)
}

/// Starts benches/peer/peer.mjs, installing its one dependency first if needed.
fn start_node() -> Result<Child, String> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/peer");
    if Command::new("node").arg("--version").output().is_err() {
        return Err("Node.js is not installed".into());
    }
    if !std::path::Path::new(dir)
        .join("node_modules/oidc-provider")
        .exists()
    {
        let installed = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund", "--silent"])
            .current_dir(dir)
            .status()
            .map_err(|e| format!("npm: {e}"))?;
        if !installed.success() {
            return Err("npm ci failed in benches/peer".into());
        }
    }
    Command::new("node")
        .args(["peer.mjs", &NODE_PORT.to_string()])
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("node: {e}"))
}

impl Peer {
    async fn post(&self, url: &str, form: &[(&str, &str)]) -> Option<Value> {
        let response = self
            .http
            .post(url)
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

    async fn token(&self) -> Option<Value> {
        self.post(
            &self.token_endpoint,
            &[("grant_type", "client_credentials")],
        )
        .await
    }

    /// Measures `scenario` (`client_credentials` or `introspect`) against the peer, with the
    /// run's connections, warm-up and duration. None for a scenario the peer cannot do.
    pub(crate) async fn measure(
        self: &Arc<Self>,
        scenario: &str,
        connections: usize,
        warmup: Duration,
        duration: Duration,
    ) -> Option<Measured> {
        match scenario {
            "client_credentials" => {
                let peer = self.clone();
                let request = Arc::new(move |_| {
                    let peer = peer.clone();
                    async move {
                        match peer.token().await {
                            Some(_) => Outcome::Ok,
                            None => Outcome::Error,
                        }
                    }
                });
                drive(connections, warmup, request.clone()).await;
                Some(drive(connections, duration, request).await)
            }
            "introspect" => {
                let endpoint = self.introspection_endpoint.clone()?;
                let mut tokens = Vec::new();
                for _ in 0..64 {
                    tokens.push(self.token().await?["access_token"].as_str()?.to_owned());
                }
                let tokens = Arc::new(tokens);
                let counter = Arc::new(AtomicU64::new(0));
                let peer = self.clone();
                let request = Arc::new(move |_| {
                    let (peer, tokens, endpoint) = (peer.clone(), tokens.clone(), endpoint.clone());
                    let n = counter.fetch_add(1, Ordering::Relaxed) as usize;
                    async move {
                        let token = &tokens[n % tokens.len()];
                        match peer.post(&endpoint, &[("token", token)]).await {
                            Some(answer) if answer["active"] == true => Outcome::Ok,
                            _ => Outcome::Error,
                        }
                    }
                });
                drive(connections, warmup, request.clone()).await;
                Some(drive(connections, duration, request).await)
            }
            _ => None,
        }
    }
}
