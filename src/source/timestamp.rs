//! Parsing the timestamp formats found in load data.

use chrono::{DateTime, NaiveDateTime};

use crate::series::Millis;

/// A timestamp format, detected once per file from its first row and then required of every
/// row, so a file that mixes formats fails on the row that breaks the pattern.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimestampFormat {
    /// Seconds since the epoch, possibly fractional (`1424986973`, `1424986973.5`).
    UnixSeconds,
    /// Milliseconds since the epoch (`1424986973000`).
    UnixMillis,
    /// Microseconds since the epoch (`1424986973000000`), truncated to milliseconds.
    UnixMicros,
    /// Nanoseconds since the epoch (`1424986973000000000`), truncated to milliseconds.
    UnixNanos,
    /// RFC 3339 with a zone (`2015-02-26T21:42:53Z`, `...+01:00`).
    Rfc3339,
    /// `YYYY-MM-DD HH:MM:SS` (or with a `T`), optionally fractional, read as UTC.
    NaiveUtc,
}

/// Integers at or above this are read as milliseconds: as seconds they would be past the
/// year 5000, as milliseconds they are after March 1973.
const MILLIS_THRESHOLD: f64 = 1e11;
/// The same step from milliseconds to microseconds (as milliseconds, past the year 5138).
const MICROS_THRESHOLD: f64 = 1e14;
/// And from microseconds to nanoseconds.
const NANOS_THRESHOLD: f64 = 1e17;

impl TimestampFormat {
    /// Recognises the format of one timestamp, or `None` if it is none of the above.
    pub fn detect(text: &str) -> Option<Self> {
        let text = text.trim();
        if let Ok(n) = text.parse::<f64>() {
            if !n.is_finite() {
                return None;
            }
            let a = n.abs();
            return Some(if text.contains('.') || a < MILLIS_THRESHOLD {
                Self::UnixSeconds
            } else if a < MICROS_THRESHOLD {
                Self::UnixMillis
            } else if a < NANOS_THRESHOLD {
                Self::UnixMicros
            } else {
                Self::UnixNanos
            });
        }
        [Self::Rfc3339, Self::NaiveUtc]
            .into_iter()
            .find(|f| f.parse(text).is_some())
    }

    /// Parses `text` in this format to milliseconds since the epoch (UTC).
    pub fn parse(self, text: &str) -> Option<Millis> {
        let text = text.trim();
        match self {
            Self::UnixSeconds => {
                let s: f64 = text.parse().ok()?;
                let ms = (s * 1000.0).round();
                (ms.is_finite() && ms.abs() < 9e15).then_some(ms as Millis)
            }
            Self::UnixMillis => text.parse().ok(),
            Self::UnixMicros => text.parse::<i64>().ok().map(|us| us.div_euclid(1_000)),
            Self::UnixNanos => text.parse::<i64>().ok().map(|ns| ns.div_euclid(1_000_000)),
            Self::Rfc3339 => DateTime::parse_from_rfc3339(text)
                .ok()
                .map(|dt| dt.timestamp_millis()),
            Self::NaiveUtc => ["%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S%.f"]
                .iter()
                .find_map(|f| NaiveDateTime::parse_from_str(text, f).ok())
                .map(|dt| dt.and_utc().timestamp_millis()),
        }
    }

    /// A human description, for error messages.
    pub fn describe(self) -> &'static str {
        match self {
            Self::UnixSeconds => "unix seconds",
            Self::UnixMillis => "unix milliseconds",
            Self::UnixMicros => "unix microseconds",
            Self::UnixNanos => "unix nanoseconds",
            Self::Rfc3339 => "RFC 3339 (2015-02-26T21:42:53Z)",
            Self::NaiveUtc => "YYYY-MM-DD HH:MM:SS (UTC)",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn micro_and_nanosecond_timestamps_are_read_as_such() {
        let ms = 1_424_986_973_123;
        for (text, format) in [
            ("1424986973", TimestampFormat::UnixSeconds),
            ("1424986973123", TimestampFormat::UnixMillis),
            ("1424986973123456", TimestampFormat::UnixMicros),
            ("1424986973123456789", TimestampFormat::UnixNanos),
        ] {
            assert_eq!(TimestampFormat::detect(text), Some(format), "{text}");
            let parsed = format.parse(text).unwrap();
            assert_eq!(parsed / 1000, ms / 1000, "{text}: {parsed}");
        }
        assert_eq!(
            TimestampFormat::UnixMicros.parse("1424986973123456"),
            Some(ms)
        );
        assert_eq!(
            TimestampFormat::UnixNanos.parse("1424986973123456789"),
            Some(ms)
        );
    }

    #[test]
    fn detects_and_parses_every_format() {
        let cases = [
            (
                "1424986973",
                TimestampFormat::UnixSeconds,
                1_424_986_973_000,
            ),
            (
                "1424986973.5",
                TimestampFormat::UnixSeconds,
                1_424_986_973_500,
            ),
            (
                "1424986973000",
                TimestampFormat::UnixMillis,
                1_424_986_973_000,
            ),
            (
                "2015-02-26T21:42:53Z",
                TimestampFormat::Rfc3339,
                1_424_986_973_000,
            ),
            (
                "2015-02-26T22:42:53+01:00",
                TimestampFormat::Rfc3339,
                1_424_986_973_000,
            ),
            (
                "2015-02-26 21:42:53",
                TimestampFormat::NaiveUtc,
                1_424_986_973_000,
            ),
            (
                "2015-02-26T21:42:53",
                TimestampFormat::NaiveUtc,
                1_424_986_973_000,
            ),
        ];
        for (text, format, ms) in cases {
            assert_eq!(TimestampFormat::detect(text), Some(format), "{text}");
            assert_eq!(format.parse(text), Some(ms), "{text}");
        }
    }

    #[test]
    fn rejects_what_is_not_a_time() {
        for text in ["", "yesterday", "2015-02-30 00:00:00", "inf", "NaN"] {
            assert_eq!(TimestampFormat::detect(text), None, "{text}");
        }
    }

    proptest! {
        #[test]
        fn round_trips_through_every_format(ms in 0i64..4_000_000_000_000) {
            let secs = ms / 1000 * 1000;
            let dt = DateTime::from_timestamp_millis(secs).unwrap();
            let texts = [
                (TimestampFormat::UnixSeconds, (secs / 1000).to_string()),
                (TimestampFormat::UnixMillis, ms.to_string()),
                (TimestampFormat::Rfc3339, dt.to_rfc3339()),
                (TimestampFormat::NaiveUtc, dt.format("%Y-%m-%d %H:%M:%S").to_string()),
            ];
            for (format, text) in texts {
                let expected = if format == TimestampFormat::UnixMillis { ms } else { secs };
                prop_assert_eq!(format.parse(&text), Some(expected));
            }
        }

        #[test]
        fn never_panics_on_arbitrary_text(text in ".{0,40}") {
            if let Some(f) = TimestampFormat::detect(&text) {
                prop_assert!(f.parse(&text).is_some());
            }
        }
    }
}
