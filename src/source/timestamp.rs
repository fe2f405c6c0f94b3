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

/// The unit of numeric timestamps, when it is given rather than read from their magnitude
/// (`s`, `ms`, `us`, `ns`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum TimeUnit {
    /// Seconds since the epoch.
    #[serde(rename = "s")]
    Seconds,
    /// Milliseconds since the epoch.
    #[serde(rename = "ms")]
    Millis,
    /// Microseconds since the epoch.
    #[serde(rename = "us")]
    Micros,
    /// Nanoseconds since the epoch.
    #[serde(rename = "ns")]
    Nanos,
}

impl std::str::FromStr for TimeUnit {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "s" => Ok(Self::Seconds),
            "ms" => Ok(Self::Millis),
            "us" => Ok(Self::Micros),
            "ns" => Ok(Self::Nanos),
            other => Err(format!("unknown time unit {other:?}; use s, ms, us or ns")),
        }
    }
}

/// 0001-01-01T00:00:00Z and 9999-12-31T23:59:59.999Z, the range of times read and written.
const FIRST_MILLIS: Millis = -62_135_596_800_000;
const LAST_MILLIS: Millis = 253_402_300_799_999;

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

    /// The format of numbers in `unit`.
    pub fn of_unit(unit: TimeUnit) -> Self {
        match unit {
            TimeUnit::Seconds => Self::UnixSeconds,
            TimeUnit::Millis => Self::UnixMillis,
            TimeUnit::Micros => Self::UnixMicros,
            TimeUnit::Nanos => Self::UnixNanos,
        }
    }

    /// Whether `text` (in this format) names a time between two milliseconds, a precision
    /// the millisecond grid cannot keep: two such times a fraction of a millisecond apart
    /// would become one.
    pub fn is_sub_millisecond(self, text: &str) -> bool {
        let text = text.trim();
        let digits_after_millis = |fraction: &str| {
            fraction
                .chars()
                .take_while(char::is_ascii_digit)
                .skip(3)
                .any(|c| c != '0')
        };
        match self {
            Self::UnixMillis => false,
            Self::UnixMicros => text.parse::<i64>().is_ok_and(|us| us % 1_000 != 0),
            Self::UnixNanos => text.parse::<i64>().is_ok_and(|ns| ns % 1_000_000 != 0),
            // Seconds with more than three decimals, and date-times with a fraction of a
            // second finer than milliseconds.
            Self::UnixSeconds | Self::Rfc3339 | Self::NaiveUtc => text
                .split_once('.')
                .is_some_and(|(_, fraction)| digits_after_millis(fraction)),
        }
    }

    /// Parses `text` in this format to milliseconds since the epoch (UTC): `None` when it does
    /// not parse or names a time outside the years 1 to 9999 (a number in the wrong unit
    /// usually does: milliseconds read as seconds are around the year 55,000).
    pub fn parse(self, text: &str) -> Option<Millis> {
        self.parse_any(text)
            .filter(|t| (FIRST_MILLIS..=LAST_MILLIS).contains(t))
    }

    fn parse_any(self, text: &str) -> Option<Millis> {
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
            Self::UnixSeconds => "unix seconds in the years 1 to 9999",
            Self::UnixMillis => "unix milliseconds in the years 1 to 9999",
            Self::UnixMicros => "unix microseconds in the years 1 to 9999",
            Self::UnixNanos => "unix nanoseconds",
            Self::Rfc3339 => "RFC 3339 (2015-02-26T21:42:53Z) in the years 1 to 9999",
            Self::NaiveUtc => "YYYY-MM-DD HH:MM:SS (UTC) in the years 1 to 9999",
        }
    }
}

/// Watches consecutive timestamps of a file for two that differ only below a millisecond, which
/// the millisecond grid would read as one (a duplicate that is not in the data).
#[derive(Debug, Default)]
pub(crate) struct SubMillisecondGuard {
    previous: Option<(Millis, String, u64)>,
}

impl SubMillisecondGuard {
    /// Checks the timestamp `text`, read as `t` in `format` at `line`, against the one before.
    pub(crate) fn check(
        &mut self,
        path: &std::path::Path,
        format: TimestampFormat,
        t: Millis,
        text: &str,
        line: u64,
    ) -> Result<(), super::SourceError> {
        if let Some((previous, first, first_line)) = &self.previous {
            if *previous == t
                && first.trim() != text.trim()
                && (format.is_sub_millisecond(first) || format.is_sub_millisecond(text))
            {
                return Err(super::SourceError::SubMillisecond {
                    path: path.to_path_buf(),
                    first_line: *first_line,
                    first: first.clone(),
                    line,
                    text: text.to_string(),
                });
            }
        }
        match &mut self.previous {
            // Reuse the buffer: one allocation per file, not per row.
            Some((p, buffer, l)) => {
                *p = t;
                buffer.clear();
                buffer.push_str(text);
                *l = line;
            }
            None => self.previous = Some((t, text.to_string(), line)),
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn times_between_milliseconds_are_recognised() {
        use TimestampFormat::*;
        for (format, text, sub) in [
            (UnixMicros, "1700000000000100", true),
            (UnixMicros, "1700000000001000", false),
            (UnixNanos, "1700000000000000500", true),
            (UnixNanos, "1700000000001000000", false),
            (UnixSeconds, "1700000000.0001", true),
            (UnixSeconds, "1700000000.250", false),
            (UnixMillis, "1700000000001", false),
            (Rfc3339, "2023-11-14T22:13:20.123456Z", true),
            (Rfc3339, "2023-11-14T22:13:20.123000+01:00", false),
            (NaiveUtc, "2023-11-14 22:13:20.5", false),
            (NaiveUtc, "2023-11-14 22:13:20.0005", true),
        ] {
            assert_eq!(format.is_sub_millisecond(text), sub, "{format:?} {text}");
        }
        assert_eq!("us".parse::<TimeUnit>(), Ok(TimeUnit::Micros));
        assert!("h"
            .parse::<TimeUnit>()
            .unwrap_err()
            .contains("s, ms, us or ns"));
        assert_eq!(
            TimestampFormat::of_unit(TimeUnit::Millis).parse("1700000000"),
            Some(1_700_000_000)
        );
    }

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
