//! What the benchmark prints, and writes with `--json`: one table per run, the yardsticks
//! and the peer beside the scenarios.

use serde_json::{json, Value};

use crate::Args;

/// Everything measured in one run.
pub(crate) struct Results {
    pub(crate) commits: f64,
    pub(crate) signs: f64,
    pub(crate) yardsticks_steal: Option<f64>,
    pub(crate) rows: Vec<Value>,
    pub(crate) peer_rows: Vec<Value>,
    pub(crate) rss: f64,
    pub(crate) not_visible: usize,
    pub(crate) ledger_rates: Option<(f64, f64)>,
    pub(crate) rebuild_rate: Option<f64>,
    pub(crate) audit_pages: Vec<Value>,
}

pub(crate) fn print(args: &Args, results: Results) {
    let Results {
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
    } = results;
    println!();
    println!("authledger load benchmark: store={}, connections={}, {} s per scenario (+{} s warm-up), preload={} events, ledger={}",
        args.store, args.connections, args.duration, args.warmup, args.preload, args.ledger);
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
        "{:<24} {:>10} {:>9} {:>9} {:>9} {:>8} {:>12} {:>9} {:>7} {:>13} {:>7}",
        "scenario",
        "req/s",
        "p50 ms",
        "p99 ms",
        "max ms",
        "errors",
        "x commit",
        "x RS256",
        "steal",
        "RSS MiB end/peak",
        "SQLite"
    );
    for row in &rows {
        println!(
            "{:<24} {:>10.0} {:>9.2} {:>9.2} {:>9.2} {:>8} {:>12} {:>9} {:>7} {:>7.0}/{:<5.0} {:>7.1}",
            row["scenario"].as_str().unwrap(),
            row["rps"].as_f64().unwrap(),
            row["p50_ms"].as_f64().unwrap(),
            row["p99_ms"].as_f64().unwrap(),
            row["max_ms"].as_f64().unwrap(),
            row["errors"],
            percent(&row["ratio_to_commit_yardstick"]),
            percent(&row["ratio_to_rs256"]),
            percent(&row["cpu_steal"]),
            row["rss_end_mib"].as_f64().unwrap_or(f64::NAN),
            row["rss_peak_so_far_mib"].as_f64().unwrap_or(f64::NAN),
            row["sqlite_mib"].as_f64().unwrap_or(f64::NAN),
        );
    }
    if !peer_rows.is_empty() {
        println!(
            "peer ({}), same connections and duration, right after:",
            args.peer.as_deref().unwrap_or_default()
        );
        for row in &peer_rows {
            println!(
                "{:<24} {:>10.0} {:>9.2} {:>9.2} {:>9} {:>8}  authledger / peer: {}",
                format!("peer {}", row["scenario"].as_str().unwrap()),
                row["rps"].as_f64().unwrap(),
                row["p50_ms"].as_f64().unwrap(),
                row["p99_ms"].as_f64().unwrap(),
                "",
                row["errors"],
                percent(&row["authledger_to_peer"]),
            );
        }
    }
    println!("steal: CPU time the hypervisor gave to other guests during that measurement; figures taken under different steal do not compare");
    println!("process RSS peak (server and load generator share the process): {rss:.0} MiB");
    println!("read-your-writes: {not_visible} of 50 fresh tokens not yet introspectable as active");
    if let Some((link, verify)) = ledger_rates {
        println!(
            "ledger over the preloaded history: linking {link:.0} events/s, `ledger verify` {verify:.0} events/s ({:.1} s per million; the target is under 10)",
            1e6 / verify
        );
    }
    println!("console pages, one request at a time (a person reading):");
    println!(
        "{:<24} {:>6} {:>9} {:>9} {:>9}  path",
        "page", "rows", "p50 ms", "p99 ms", "max ms"
    );
    for row in &audit_pages {
        println!(
            "{:<24} {:>6} {:>9.2} {:>9.2} {:>9.2}  {}",
            row["page"].as_str().unwrap(),
            row["rows"].as_u64().unwrap_or(0),
            row["p50_ms"].as_f64().unwrap(),
            row["p99_ms"].as_f64().unwrap(),
            row["max_ms"].as_f64().unwrap(),
            row["path"].as_str().unwrap()
        );
    }

    if let Some(path) = &args.json {
        let report = json!({
            "store": args.store, "ledger": args.ledger, "connections": args.connections, "duration_s": args.duration, "warmup_s": args.warmup,
            "preload_events": args.preload, "rebuild_events_per_s": rebuild_rate,
            "ledger_link_events_per_s": ledger_rates.map(|r| r.0), "ledger_verify_events_per_s": ledger_rates.map(|r| r.1), "yardstick_commits_per_s": commits, "rs256_signs_per_s": signs, "yardsticks_cpu_steal": yardsticks_steal,
            "rss_peak_mib": rss, "read_your_writes_misses": not_visible, "scenarios": rows, "peer": peer_rows, "audit_pages": audit_pages,
        });
        std::fs::write(path, serde_json::to_string_pretty(&report).unwrap())
            .expect("write --json file");
    }
}
