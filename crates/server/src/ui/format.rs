//! Numbers, times and money as the pages show them. `assets/app.js` has the same rules
//! for what it updates live.

use rswe_protocol::SessionStatus;

pub(crate) use crate::now_ms;

/// Dollars: `$0.42`, `<$0.01`, `$12.30`, `$1,234`; a `+` when some requests had no known
/// price; `—` when nothing is known.
pub fn usd(cost: f64, unknown: bool) -> String {
    let more = if unknown { "+" } else { "" };
    if !cost.is_finite() || cost <= 0.0 {
        return if unknown { "?".into() } else { "$0.00".into() };
    }
    let text = if cost < 0.01 {
        "<$0.01".to_string()
    } else if cost < 1000.0 {
        format!("${cost:.2}")
    } else {
        format!("${}", thousands(cost.round() as u64))
    };
    format!("{text}{more}")
}

fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Token counts: `950`, `12.3k`, `1.2M`.
pub fn tokens(n: u64) -> String {
    match n {
        0..1_000 => n.to_string(),
        1_000..100_000 => trim_zero(format!("{:.1}", n as f64 / 1_000.0)) + "k",
        100_000..1_000_000 => format!("{}k", (n as f64 / 1_000.0).round() as u64),
        _ => trim_zero(format!("{:.1}", n as f64 / 1_000_000.0)) + "M",
    }
}

fn trim_zero(text: String) -> String {
    text.strip_suffix(".0").map(str::to_string).unwrap_or(text)
}

/// A duration: `340 ms`, `2.1 s`, `3 min 5 s`, `1 h 2 min`.
pub fn duration(ms: u64) -> String {
    match ms {
        0..1_000 => format!("{ms} ms"),
        1_000..60_000 => trim_zero(format!("{:.1}", ms as f64 / 1_000.0)) + " s",
        60_000..3_600_000 => format!("{} min {} s", ms / 60_000, (ms % 60_000) / 1_000),
        _ => format!("{} h {} min", ms / 3_600_000, (ms % 3_600_000) / 60_000),
    }
}

/// How long ago: `just now`, `5 min ago`, `3 h ago`, `2 d ago`, then the date.
pub fn relative(ms: i64, now: i64) -> String {
    let seconds = (now - ms).max(0) / 1_000;
    match seconds {
        0..45 => "just now".into(),
        45..3_600 => format!("{} min ago", (seconds / 60).max(1)),
        3_600..86_400 => format!("{} h ago", seconds / 3_600),
        86_400..2_592_000 => format!("{} d ago", seconds / 86_400),
        _ => crate::api::sessions::format_day(ms),
    }
}

/// `YYYY-MM-DDTHH:MM:SSZ`, for `<time datetime>`.
pub fn iso(ms: i64) -> String {
    let day = crate::api::sessions::format_day(ms);
    let in_day = ms.rem_euclid(86_400_000) / 1_000;
    format!("{day}T{:02}:{:02}:{:02}Z", in_day / 3_600, (in_day % 3_600) / 60, in_day % 60)
}

/// `YYYY-MM-DD HH:MM UTC`, for tooltips.
pub fn datetime(ms: i64) -> String {
    let day = crate::api::sessions::format_day(ms);
    let in_day = ms.rem_euclid(86_400_000) / 1_000;
    format!("{day} {:02}:{:02} UTC", in_day / 3_600, (in_day % 3_600) / 60)
}

/// A byte count: `512 B`, `3.4 KB`, `1.2 MB`.
pub fn bytes(n: u64) -> String {
    match n {
        0..1_024 => format!("{n} B"),
        1_024..1_048_576 => trim_zero(format!("{:.1}", n as f64 / 1_024.0)) + " KB",
        _ => trim_zero(format!("{:.1}", n as f64 / 1_048_576.0)) + " MB",
    }
}

/// What the status badge says, and its `data-status`: a working session that waits for a
/// free slot is `queued`.
pub fn status(status: SessionStatus, queued: bool) -> (&'static str, &'static str) {
    match status {
        SessionStatus::Working if queued => ("queued", "Queued"),
        SessionStatus::Working => ("working", "Working"),
        SessionStatus::Waiting => ("waiting", "Waiting for you"),
        SessionStatus::Idle => ("idle", "Idle"),
        SessionStatus::Failed => ("failed", "Failed"),
        SessionStatus::Stopped => ("stopped", "Stopped"),
    }
}

/// A value made safe to be part of a URL's query.
pub fn query_component(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn money_tokens_and_durations() {
        assert_eq!(usd(0.0, false), "$0.00");
        assert_eq!(usd(0.0, true), "?");
        assert_eq!(usd(0.004, false), "<$0.01");
        assert_eq!(usd(0.4234, true), "$0.42+");
        assert_eq!(usd(12345.6, false), "$12,346");
        assert_eq!(tokens(950), "950");
        assert_eq!(tokens(12_345), "12.3k");
        assert_eq!(tokens(200_000), "200k");
        assert_eq!(tokens(1_000_000), "1M");
        assert_eq!(duration(340), "340 ms");
        assert_eq!(duration(2_100), "2.1 s");
        assert_eq!(duration(185_000), "3 min 5 s");
        assert_eq!(bytes(3_500), "3.4 KB");
    }

    #[test]
    fn times() {
        let now = 1_764_000_000_000;
        assert_eq!(relative(now - 10_000, now), "just now");
        assert_eq!(relative(now - 5 * 60_000, now), "5 min ago");
        assert_eq!(relative(now - 3 * 3_600_000, now), "3 h ago");
        assert_eq!(relative(now - 2 * 86_400_000, now), "2 d ago");
        assert_eq!(iso(0), "1970-01-01T00:00:00Z");
        assert_eq!(iso(86_400_000 + 3_723_000), "1970-01-02T01:02:03Z");
        assert_eq!(query_component("a b&c=1.2"), "a%20b%26c%3D1.2");
    }
}
