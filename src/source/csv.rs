//! Long-format CSV: a header row, a timestamp column and a value column.
//!
//! Read with the `csv` crate rather than polars so that every error can name the file line it
//! comes from; polars reads and writes the tabular results (see [`super::table`]).

use std::path::Path;

use crate::series::{Duplicates, Labels, Millis, Samples};

use super::timestamp::{SubMillisecondGuard, TimestampFormat};
use super::{file_stem, ColumnSpec, SourceError};

/// Reads one series from a CSV file such as `timestamp,value` or `ts,value`.
///
/// The timestamp format (unix seconds or milliseconds, RFC 3339, `YYYY-MM-DD HH:MM:SS` as UTC)
/// is detected from the first data row. An empty value cell, `NaN` or `nan` is a missing
/// sample. The series is named after the file stem.
pub fn read_samples(
    path: &Path,
    columns: &ColumnSpec,
    duplicates: Duplicates,
) -> Result<Samples, SourceError> {
    let file = std::fs::File::open(path).map_err(|source| SourceError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    parse_samples(std::io::BufReader::new(file), path, columns, duplicates)
}

/// Reads one series from CSV text already open as `input`, as [`read_samples`] does for a file;
/// `path` names the series and appears in every error.
///
/// ```
/// use prescale::series::Duplicates;
/// use prescale::source::{csv::parse_samples, ColumnSpec};
///
/// let text = "timestamp,value\n1700000000,1.5\n1700000060,2\n";
/// let samples = parse_samples(text.as_bytes(), "load.csv".as_ref(), &ColumnSpec::default(), Duplicates::Refuse)?;
/// assert_eq!(samples.len(), 2);
/// # Ok::<(), prescale::source::SourceError>(())
/// ```
pub fn parse_samples(
    input: impl std::io::Read,
    path: &Path,
    columns: &ColumnSpec,
    duplicates: Duplicates,
) -> Result<Samples, SourceError> {
    let mut reader = ::csv::ReaderBuilder::new()
        .trim(::csv::Trim::All)
        .from_reader(input);
    let header: Vec<String> = reader
        .headers()
        .map_err(|e| SourceError::from_csv(path, e))?
        .iter()
        .map(str::to_string)
        .collect();
    if header.iter().all(|h| h.is_empty()) {
        return Err(SourceError::Empty {
            path: path.to_path_buf(),
        });
    }
    let (time_col, value_col) = columns.resolve(path, &header)?;

    let mut format: Option<TimestampFormat> = None;
    let mut sub_millisecond = SubMillisecondGuard::default();
    let mut timestamps: Vec<Millis> = Vec::new();
    let mut values = Vec::new();
    let mut lines = Vec::new();
    for record in reader.records() {
        let record = record.map_err(|e| SourceError::from_csv(path, e))?;
        let line = record.position().map_or(0, |p| p.line());
        let field = |i: usize| record.get(i).unwrap_or("");
        let time_text = field(time_col);
        let fmt = match format {
            Some(f) => f,
            None => {
                let f = columns.time_format(time_text).ok_or_else(|| {
                    SourceError::BadTimestamp {
                        path: path.to_path_buf(),
                        line,
                        text: time_text.to_string(),
                        expected:
                            "unix seconds, milliseconds, microseconds or nanoseconds, RFC 3339 or YYYY-MM-DD HH:MM:SS",
                    }
                })?;
                *format.insert(f)
            }
        };
        let t = fmt
            .parse(time_text)
            .ok_or_else(|| SourceError::BadTimestamp {
                path: path.to_path_buf(),
                line,
                text: time_text.to_string(),
                expected: fmt.describe(),
            })?;
        sub_millisecond.check(path, fmt, t, time_text, line)?;
        let value = parse_value(field(value_col)).ok_or_else(|| SourceError::BadValue {
            path: path.to_path_buf(),
            line,
            column: header[value_col].clone(),
            text: field(value_col).to_string(),
        })?;
        timestamps.push(t);
        values.push(value);
        lines.push(line);
    }
    if timestamps.is_empty() {
        return Err(SourceError::Empty {
            path: path.to_path_buf(),
        });
    }
    let (timestamps, values, from) = duplicates.merge(timestamps, values);
    Samples::new(Labels::named(file_stem(path)), timestamps, values).map_err(|source| {
        SourceError::InvalidRow {
            path: path.to_path_buf(),
            line: lines[from[source.index().unwrap_or(0)]],
            source,
        }
    })
}

/// Parses a value cell: a number, or empty / `NaN` for a missing sample. Infinity parses and
/// is rejected later by [`Samples::new`] with the row named.
pub(crate) fn parse_value(text: &str) -> Option<f64> {
    let text = text.trim();
    if text.is_empty() || text.eq_ignore_ascii_case("nan") {
        return Some(f64::NAN);
    }
    text.parse().ok()
}
