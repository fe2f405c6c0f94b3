//! Time representation shared by every module.

use chrono::{DateTime, SecondsFormat};

/// Milliseconds since the Unix epoch, UTC: the resolution Prometheus stores.
pub type Millis = i64;

/// Formats a timestamp as RFC 3339 in UTC (`2015-01-31T00:00:00Z`), with milliseconds only
/// when they are not zero.
pub fn format_millis(t: Millis) -> String {
    match DateTime::from_timestamp_millis(t) {
        Some(dt) => dt.to_rfc3339_opts(SecondsFormat::AutoSi, true),
        // Out of chrono's range (±262,000 years): print the raw number rather than fail.
        None => format!("{t}ms"),
    }
}

/// Formats a step as a short duration (`1h`, `30m`, `5m`, `1h 30m`); non-positive steps as ms.
pub fn format_step(step: Millis) -> String {
    if step <= 0 {
        return format!("{step}ms");
    }
    humantime::format_duration(std::time::Duration::from_millis(step as u64)).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_as_utc_rfc3339() {
        assert_eq!(format_millis(0), "1970-01-01T00:00:00Z");
        assert_eq!(format_millis(1_500), "1970-01-01T00:00:01.500Z");
        assert_eq!(format_step(3_600_000), "1h");
        assert_eq!(format_step(1_800_000), "30m");
    }
}
