//! The scenarios' set-up: the client, user and codes each one needs, a realistic history for
//! `--preload`, and the requests they send.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use authledger::admin::clients::{self, ClientInput, NewClient};
use authledger::admin::users::{self, UserInput};
use authledger::oauth::tokens::{self, GrantId, CODE_PREFIX};
use authledger::oauth::Authority;
use authledger_domain::client::RegistrationSource;
use authledger_domain::grant::{CodeIssue, GrantCommand};
use authledger_domain::oauth::Scopes;
use authledger_domain::pkce::{ChallengeMethod, CodeChallenge};
use authledger_domain::settings::{Setting, SettingsCommand, SETTINGS_ID};
use authledger_domain::user::Username;
use authledger_projections::{on_db, on_tx, Db};
use base64::Engine;
use serde_json::Value;
use sha2::Digest;

use crate::harness::metadata;
use crate::{JWT_RESOURCE, REDIRECT};

/// Writes `count` events of history: client-credentials grants of a year ago, each one
/// `TokensIssued` event with its own grant (their tokens long expired), then moves every
/// checkpoint past them, as if a long-running server had projected them already.
pub(crate) async fn preload(db: &Db, count: u64) {
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
            audience: vec![],
            exchange: None,
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
    // The projections' checkpoints are in the views file on SQLite (`views_file.rs`), the
    // cascade reactor's in the log's.
    let views = match db {
        Db::Sqlite(_) => "views.",
        Db::Postgres(_) => "",
    };
    for (name, table) in [
        ("clients", views),
        ("users", views),
        ("grants", views),
        ("consents", views),
        ("audit", views),
        ("sessions", views),
        ("connected_apps", views),
        ("social_logins", views),
        ("cascade", ""),
    ] {
        let upsert = format!("INSERT INTO {table}projection_checkpoints (projection, transaction_id, global_position) VALUES ($1, $2, $3) \
                  ON CONFLICT (projection) DO UPDATE SET transaction_id = excluded.transaction_id, global_position = excluded.global_position");
        on_db!(db, pool => sqlx::query(&upsert).bind(name).bind(last.transaction).bind(last.global).execute(pool).await.map(drop)).unwrap();
    }
    eprintln!(
        "preloaded {count} events in {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

pub(crate) struct Bench {
    pub(crate) base: String,
    pub(crate) http: reqwest::Client,
    pub(crate) authority: Arc<Authority>,
    pub(crate) client: NewClient,
    pub(crate) basic: String,
}

impl Bench {
    /// The server's settings for the benchmark, and the user, client and JWT resource every
    /// scenario uses.
    pub(crate) async fn set_up(
        base: String,
        authority: Arc<Authority>,
        connections: usize,
    ) -> Arc<Bench> {
        let store = authority.store.clone();
        for setting in [Setting::CodeTtl(600), Setting::DevicePollInterval(1)] {
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
                    "device_code".into(),
                    "token_exchange".into(),
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
        authledger::admin::resources::create(
            &store,
            JWT_RESOURCE,
            authledger::admin::resources::ResourceInput {
                name: Some("bench API".into()),
                token_format: Some("jwt".into()),
                ..Default::default()
            },
            &metadata(),
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
            .pool_max_idle_per_host(connections)
            .build()
            .unwrap();
        Arc::new(Bench {
            base,
            http,
            authority,
            client,
            basic,
        })
    }

    pub(crate) async fn post_form(&self, path: &str, form: &[(&str, &str)]) -> Option<Value> {
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

    /// POSTs a form and returns the status and JSON body whatever the status.
    pub(crate) async fn post_form_status(
        &self,
        path: &str,
        form: &[(&str, &str)],
    ) -> Option<(u16, Value)> {
        let response = self
            .http
            .post(format!("{}{path}", self.base))
            .header("authorization", &self.basic)
            .form(form)
            .send()
            .await
            .ok()?;
        let status = response.status().as_u16();
        Some((status, response.json().await.ok()?))
    }

    /// Codes issued straight through the grant aggregate (the person's sign-in and consent
    /// are not what is measured), each with its PKCE verifier.
    pub(crate) async fn codes(&self, count: usize, parallel: usize) -> Vec<(String, String)> {
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
                            // One session's worth of bytes, as a real sign-in records.
                            session: Some(code.hash().clone()),
                            amr: vec!["pwd".into()],
                            code_hash: code.hash().clone(),
                            expires_at: chrono::Utc::now() + chrono::Duration::seconds(600),
                            resources: vec![],
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

    /// `count` people's access tokens, each from a code exchanged for it.
    pub(crate) async fn access_tokens(&self, count: usize) -> Vec<String> {
        let mut access = Vec::new();
        for (code, verifier) in &self.codes(count, 8).await {
            let tokens = self.exchange(code, verifier).await.expect("exchange");
            access.push(tokens["access_token"].as_str().unwrap().to_owned());
        }
        access
    }

    pub(crate) async fn exchange(&self, code: &str, verifier: &str) -> Option<Value> {
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
