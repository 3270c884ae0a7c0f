//! Instants as people type them, wherever a time is taken (`--since`, `--until`, `--as-of`,
//! the admin API's `since` and `until`): an RFC 3339 time (`2026-11-22T08:00:00Z`), a plain
//! date (`2026-11-22`, midnight UTC), `now`, or a time ago (`90s`, `30m`, `24h`, `7d`, `2w`).

use chrono::{DateTime, Duration, NaiveDate, Utc};

/// What a value that is none of the accepted forms is told.
pub const ACCEPTED: &str =
    "expected an RFC 3339 time (2026-11-22T08:00:00Z), a date (2026-11-22), now, or a time ago (30m, 24h, 7d)";

/// The instant `raw` names, relative values counted back from `now`.
pub fn parse(raw: &str, now: DateTime<Utc>) -> Result<DateTime<Utc>, String> {
    let raw = raw.trim();
    if raw.eq_ignore_ascii_case("now") {
        return Ok(now);
    }
    if let Ok(time) = DateTime::parse_from_rfc3339(raw) {
        return Ok(time.with_timezone(&Utc));
    }
    if let Ok(date) = NaiveDate::parse_from_str(raw, "%Y-%m-%d") {
        return Ok(date
            .and_hms_opt(0, 0, 0)
            .expect("midnight exists")
            .and_utc());
    }
    let ago = raw
        .char_indices()
        .last()
        .and_then(|(at, unit)| Some((raw[..at].parse::<i64>().ok()?, unit)))
        .filter(|(count, _)| (0..=100_000).contains(count))
        .and_then(|(count, unit)| match unit {
            's' => Some(Duration::seconds(count)),
            'm' => Some(Duration::minutes(count)),
            'h' => Some(Duration::hours(count)),
            'd' => Some(Duration::days(count)),
            'w' => Some(Duration::weeks(count)),
            _ => None,
        });
    match ago {
        Some(ago) => Ok(now - ago),
        None => Err(format!("`{raw}`: {ACCEPTED}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> DateTime<Utc> {
        "2026-11-27T12:00:00Z".parse().unwrap()
    }

    #[test]
    fn rfc3339_dates_now_and_times_ago_are_taken() {
        let at = |raw: &str| parse(raw, now()).unwrap().to_rfc3339();
        assert_eq!(at("2026-11-22T08:00:00+01:00"), "2026-11-22T07:00:00+00:00");
        assert_eq!(at("2026-11-22"), "2026-11-22T00:00:00+00:00");
        assert_eq!(at("now"), "2026-11-27T12:00:00+00:00");
        assert_eq!(at("24h"), "2026-11-26T12:00:00+00:00");
        assert_eq!(at("7d"), "2026-11-20T12:00:00+00:00");
        assert_eq!(at("30m"), "2026-11-27T11:30:00+00:00");
        assert_eq!(at("2w"), "2026-11-13T12:00:00+00:00");
    }

    #[test]
    fn anything_else_is_refused_with_the_accepted_forms() {
        for raw in [
            "yesterday",
            "",
            "24",
            "h",
            "-5d",
            "5y",
            "2026-13-01",
            "99999999d",
            "١٢h",
        ] {
            let refused = parse(raw, now()).unwrap_err();
            assert!(
                refused.contains("RFC 3339") && refused.contains("24h"),
                "{raw}: {refused}"
            );
        }
    }
}
