//! The console's audit page on the store as it stands (with `--preload N`, N events of
//! history): a signed-in administrator's GETs of the first page and of filtered pages, and
//! of the overview, one request at a time, as a person reads them.

use std::time::Instant;

use authledger::admin::users::{self, UserInput};
use authledger::store::Store;
use serde_json::{json, Value};

use crate::harness::{latency_histogram, metadata, percentile};

/// Requests per page after the warm-up ones.
const SAMPLES: usize = 40;
const WARMUP: usize = 5;

/// Signs an administrator in through the login page and times each audit page; returns one
/// JSON row per page (`page`, `path`, `rows`, `p50_ms`, `p99_ms`, `max_ms`).
pub(crate) async fn audit_pages(base: &str, store: &Store, quiet_client: &str) -> Vec<Value> {
    users::create(
        store,
        UserInput {
            username: "bench-admin".into(),
            password: "bench admin password".into(),
            roles: vec!["admin".into()],
            ..UserInput::default()
        },
        &metadata(),
    )
    .await
    .expect("console user");
    let http = reqwest::Client::builder()
        .cookie_store(true)
        .build()
        .unwrap();
    let login = http
        .get(format!("{base}/login"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let csrf = hidden_value(&login, "csrf_token").expect("the login form's CSRF token");
    let signed_in = http
        .post(format!("{base}/login"))
        .form(&[
            ("csrf_token", csrf.as_str()),
            ("return_to", "/admin"),
            ("username", "bench-admin"),
            ("password", "bench admin password"),
        ])
        .send()
        .await
        .unwrap();
    assert!(
        signed_in.url().path().starts_with("/admin"),
        "the bench administrator could not sign in: ended at {}",
        signed_in.url()
    );
    // A page deep in the log: rows before the middle position.
    let middle = authledger_projections::event_log::last_position(&store.db)
        .await
        .unwrap()
        .map_or(1, |p| (p.global / 2).max(1));
    let pages = [
        ("first page", "/admin/audit".to_owned()),
        (
            "page from the middle",
            format!("/admin/audit?before={middle}"),
        ),
        (
            "client with history",
            "/admin/audit?client=history".to_owned(),
        ),
        (
            "client with few events",
            format!("/admin/audit?client={quiet_client}"),
        ),
        ("person", "/admin/audit?user=bench-admin".to_owned()),
        (
            "type, last 24 hours",
            "/admin/audit?type=TokensIssued&range=24h".to_owned(),
        ),
        ("overview", "/admin".to_owned()),
    ];
    let mut rows = Vec::new();
    for (page, path) in pages {
        let url = format!("{base}{path}");
        let mut latencies_us = latency_histogram();
        let mut shown = 0;
        for n in 0..WARMUP + SAMPLES {
            let started = Instant::now();
            let response = http.get(&url).send().await.unwrap();
            let status = response.status();
            let body = response.text().await.unwrap();
            let elapsed = started.elapsed();
            assert!(status.is_success(), "{path}: {status}");
            if n >= WARMUP {
                latencies_us.saturating_record(elapsed.as_micros() as u64);
            }
            shown = body.matches("<tr").count().saturating_sub(1);
        }
        rows.push(json!({
            "page": page,
            "path": path,
            "rows": shown,
            "p50_ms": percentile(&latencies_us, 0.50),
            "p99_ms": percentile(&latencies_us, 0.99),
            "max_ms": percentile(&latencies_us, 1.0),
        }));
    }
    rows
}

/// The value of the hidden input `name` in a page.
fn hidden_value(html: &str, name: &str) -> Option<String> {
    let at = html.find(&format!("name=\"{name}\""))?;
    let rest = &html[at..];
    let value = rest.find("value=\"")? + "value=\"".len();
    let end = rest[value..].find('"')?;
    Some(rest[value..value + end].to_owned())
}
