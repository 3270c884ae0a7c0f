//! Usage that reads produce (introspections answered active, userinfo calls, failed client
//! authentications): counted in memory, because a read must not append an event, and added to
//! `usage_reads_hourly` every [`FLUSH_INTERVAL`] and at shutdown. A crash loses at most that
//! interval's counts. Prometheus metrics are kept alongside, per process.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use authledger_projections::usage::usage_hour;
use authledger_projections::usage::{add_read_counts, UsageRow};
use authledger_projections::Db;
use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry};

pub const FLUSH_INTERVAL: Duration = Duration::from_secs(30);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReadMetric {
    IntrospectionActive,
    Userinfo,
    ClientAuthFailed,
}

impl ReadMetric {
    fn as_str(self) -> &'static str {
        match self {
            ReadMetric::IntrospectionActive => "introspections_active",
            ReadMetric::Userinfo => "userinfo_calls",
            ReadMetric::ClientAuthFailed => "client_auth_failures",
        }
    }
}

type Key = (String, String, String, ReadMetric);

pub struct Usage {
    pending: Mutex<HashMap<Key, i64>>,
    pub registry: Registry,
    pub requests: HistogramVec,
    pub tokens_issued: IntCounterVec,
    pub reads: IntCounterVec,
}

impl Default for Usage {
    fn default() -> Self {
        Usage::new()
    }
}

impl Usage {
    pub fn new() -> Usage {
        let registry = Registry::new();
        let requests = HistogramVec::new(
            HistogramOpts::new(
                "authledger_http_request_duration_seconds",
                "HTTP request latency",
            )
            .buckets(vec![
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
            ]),
            &["route", "method", "status"],
        )
        .expect("valid histogram");
        let tokens_issued = IntCounterVec::new(
            Opts::new(
                "authledger_tokens_issued_total",
                "Token responses by client and grant type",
            ),
            &["client_id", "grant_type"],
        )
        .expect("valid counter");
        let reads = IntCounterVec::new(
            Opts::new("authledger_reads_total", "Introspections answered active, userinfo calls and failed client authentications, by client"),
            &["client_id", "metric"],
        )
        .expect("valid counter");
        for collector in [
            Box::new(requests.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(tokens_issued.clone()),
            Box::new(reads.clone()),
        ] {
            registry.register(collector).expect("unique metric names");
        }
        Usage {
            pending: Mutex::new(HashMap::new()),
            registry,
            requests,
            tokens_issued,
            reads,
        }
    }

    pub fn count(&self, client_id: &str, username: Option<&str>, metric: ReadMetric) {
        self.reads
            .with_label_values(&[client_id, metric.as_str()])
            .inc();
        let key = (
            usage_hour(chrono::Utc::now()),
            client_id.to_owned(),
            username.unwrap_or_default().to_owned(),
            metric,
        );
        *self
            .pending
            .lock()
            .expect("usage lock")
            .entry(key)
            .or_default() += 1;
    }

    /// Adds the pending counts to the store. While the database cannot be reached they stay
    /// pending for the next flush. A row the database refuses is refused alone: the rows are
    /// then saved one by one, and only the refused one is dropped (and logged), so one bad
    /// value can never stop usage from being saved.
    pub async fn flush(&self, db: &Db) {
        let drained: Vec<(Key, i64)> = self.pending.lock().expect("usage lock").drain().collect();
        let row = |((hour, client_id, username, metric), count): &(Key, i64)| UsageRow {
            hour: hour.clone(),
            client_id: client_id.clone(),
            username: username.clone(),
            metric: metric.as_str().to_owned(),
            count: *count,
        };
        let rows: Vec<UsageRow> = drained.iter().map(row).collect();
        let Err(error) = add_read_counts(db, &rows).await else {
            return;
        };
        let mut keep = Vec::new();
        if error.is_unreachable() {
            keep = drained;
        } else {
            for entry in drained {
                match add_read_counts(db, &[row(&entry)]).await {
                    Ok(()) => {}
                    Err(error) if error.is_unreachable() => keep.push(entry),
                    Err(error) => {
                        tracing::warn!(%error, client_id = %entry.0 .1.escape_debug(), "a usage count the database refuses was dropped")
                    }
                }
            }
        }
        if !keep.is_empty() {
            tracing::warn!(%error, "usage counts not saved yet; keeping them for the next flush");
            let mut pending = self.pending.lock().expect("usage lock");
            for (key, count) in keep {
                *pending.entry(key).or_default() += count;
            }
        }
    }

    /// The Prometheus text exposition of this process's metrics.
    pub fn render(&self) -> String {
        let mut out = String::new();
        prometheus::TextEncoder::new()
            .encode_utf8(&self.registry.gather(), &mut out)
            .expect("text encoding of gathered metrics");
        out
    }
}
