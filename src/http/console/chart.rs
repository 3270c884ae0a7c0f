//! Bar charts for the console, drawn by the server as inline SVG: no script, nothing fetched,
//! readable without colour (each bar carries its value in a `<title>`, shown on hover, and
//! the chart an `aria-label` summary). A charting crate (plotters) would bring dozens of
//! crates for the one kind of chart the overview needs.

use std::collections::BTreeMap;
use std::fmt::Write;

use chrono::{Duration, Timelike, Utc};

const WIDTH: f64 = 720.0;
const HEIGHT: f64 = 180.0;
const LEFT: f64 = 44.0;
const BOTTOM: f64 = 22.0;
const TOP: f64 = 10.0;

/// An XML text node's escaping.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// A bar per `(label, value)`, in order; every `label_every`-th label is written under the
/// axis. `unit` names what is counted ("tokens").
pub fn bars(points: &[(String, u64)], unit: &str, label_every: usize, colour: &str) -> String {
    let max = points.iter().map(|(_, v)| *v).max().unwrap_or(0).max(1);
    let total: u64 = points.iter().map(|(_, v)| *v).sum();
    let plot_width = WIDTH - LEFT;
    let plot_height = HEIGHT - TOP - BOTTOM;
    let slot = plot_width / points.len().max(1) as f64;
    let mut svg = String::new();
    let _ = write!(
        svg,
        r#"<svg viewBox="0 0 {WIDTH} {HEIGHT}" class="chart" role="img" aria-label="{} {} in all, at most {} in one bar">"#,
        total,
        escape(unit),
        max
    );
    // The value axis: zero and the maximum.
    let base = TOP + plot_height;
    let _ = write!(
        svg,
        r##"<line x1="{LEFT}" y1="{base}" x2="{WIDTH}" y2="{base}" stroke="#767676"/><line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{base}" stroke="#767676"/><text x="{}" y="{}" text-anchor="end" font-size="11">{max}</text><text x="{}" y="{base}" text-anchor="end" font-size="11">0</text>"##,
        LEFT - 4.0,
        TOP + 10.0,
        LEFT - 4.0
    );
    for (i, (label, value)) in points.iter().enumerate() {
        let height = plot_height * (*value as f64) / (max as f64);
        let x = LEFT + slot * i as f64 + slot * 0.1;
        let _ = write!(
            svg,
            r#"<rect x="{x:.1}" y="{:.1}" width="{:.1}" height="{height:.1}" fill="{colour}"><title>{}: {value} {}</title></rect>"#,
            base - height,
            (slot * 0.8).max(1.0),
            escape(label),
            escape(unit)
        );
        if label_every > 0 && i % label_every == 0 {
            let _ = write!(
                svg,
                r#"<text x="{x:.1}" y="{}" font-size="10">{}</text>"#,
                HEIGHT - 6.0,
                escape(label)
            );
        }
    }
    svg.push_str("</svg>");
    svg
}

/// The last `hours` whole hours, oldest first, as `YYYY-MM-DDTHH` keys.
pub fn last_hours(hours: i64) -> Vec<String> {
    let now = Utc::now()
        .with_minute(0)
        .and_then(|t| t.with_second(0))
        .unwrap_or_else(Utc::now);
    (0..hours)
        .rev()
        .map(|back| {
            (now - Duration::hours(back))
                .format("%Y-%m-%dT%H")
                .to_string()
        })
        .collect()
}

/// One bar per hour of `hours`, from counts keyed by hour.
pub fn per_hour(hours: &[String], counts: &BTreeMap<String, u64>) -> Vec<(String, u64)> {
    hours
        .iter()
        .map(|h| {
            let label = format!("{} {}:00", &h[5..10], &h[11..13]);
            (label, counts.get(h).copied().unwrap_or(0))
        })
        .collect()
}

/// Tokens issued and refreshed per hour over the last 7 days, of a client or a person (or
/// both), from the usage view, as a chart.
pub async fn tokens_last_week(
    db: &authledger_projections::Db,
    client_id: Option<&str>,
    username: Option<&str>,
) -> Result<String, authledger_projections::ProjectionError> {
    let week = last_hours(24 * 7);
    let from = format!("{}:00:00Z", week[0]);
    let mut tokens = BTreeMap::new();
    for row in
        authledger_projections::usage::report(db, client_id, username, Some(&from), None).await?
    {
        if row.metric == "tokens_issued" || row.metric == "tokens_refreshed" {
            *tokens.entry(row.hour[..13].to_owned()).or_insert(0u64) += row.count as u64;
        }
    }
    Ok(bars(&per_hour(&week, &tokens), "tokens", 24, "#0b57d0"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chart_has_a_bar_per_point_with_its_value_and_says_its_total() {
        let points = vec![
            ("09:00".to_owned(), 3),
            ("10:00".to_owned(), 0),
            ("11:00".to_owned(), 7),
        ];
        let svg = bars(&points, "tokens", 1, "#0b57d0");
        assert_eq!(svg.matches("<rect").count(), 3);
        assert!(svg.contains("<title>11:00: 7 tokens</title>"));
        assert!(svg.contains(r#"aria-label="10 tokens in all, at most 7 in one bar""#));
        assert!(
            bars(&[], "tokens", 1, "#000").starts_with("<svg"),
            "no data draws an empty chart"
        );
    }
}
