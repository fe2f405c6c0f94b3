//! Tables on disk through polars: CSV or Parquet, chosen by the file extension.
//!
//! Used for series inputs in Parquet and for every tabular output (forecasts, backtest and
//! simulation results). Timestamps are stored as `Datetime(ms, UTC)`; in CSV they print as
//! RFC 3339 (`2015-01-31T00:00:00Z`).

use std::fs::File;
use std::io::Write;
use std::path::Path;

use polars::prelude::*;

use crate::series::{Duplicates, Labels, Millis, Samples};

use super::timestamp::{SubMillisecondGuard, TimestampFormat};
use super::{file_stem, ColumnSpec, SourceError};

/// A table file format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TableFormat {
    /// Comma-separated text with a header row.
    Csv,
    /// Apache Parquet.
    Parquet,
}

impl TableFormat {
    /// The format named by a path's extension (`.parquet`/`.pq`, otherwise CSV).
    pub fn of(path: &Path) -> Self {
        match path.extension().and_then(|e| e.to_str()) {
            Some(e) if e.eq_ignore_ascii_case("parquet") || e.eq_ignore_ascii_case("pq") => {
                Self::Parquet
            }
            _ => Self::Csv,
        }
    }
}

/// A column of UTC timestamps, stored as `Datetime(ms, UTC)`.
pub fn timestamp_column(name: &str, values: Vec<Millis>) -> Result<Column, PolarsError> {
    Column::new(name.into(), values).cast(&DataType::Datetime(
        TimeUnit::Milliseconds,
        Some(TimeZone::UTC),
    ))
}

/// A table of a `timestamp` column followed by `columns` of numbers (e.g. a forecast's
/// [`columns`](crate::forecast::Forecast::columns)), each as long as `timestamps`.
pub fn frame(
    timestamps: Vec<Millis>,
    columns: &[(String, &[f64])],
) -> Result<DataFrame, PolarsError> {
    let height = timestamps.len();
    let mut all = vec![timestamp_column("timestamp", timestamps)?];
    for (name, values) in columns {
        all.push(Column::new(name.as_str().into(), *values));
    }
    DataFrame::new(height, all)
}

/// Writes a table to `path`, as Parquet or CSV by its extension, creating parent folders.
/// The file appears whole or not at all: an interrupted write leaves the old file as it was.
pub fn write_table(df: &mut DataFrame, path: &Path) -> Result<(), SourceError> {
    let mut failed = None;
    let written = crate::files::write_atomic_with(path, |file| {
        let result = match TableFormat::of(path) {
            TableFormat::Parquet => ParquetWriter::new(&mut *file).finish(df).map(|_| ()),
            TableFormat::Csv => write_csv(df, &mut *file),
        };
        result.map_err(|e| {
            failed = Some(e);
            std::io::Error::other("the table could not be encoded")
        })
    });
    match (written, failed) {
        (_, Some(source)) => Err(SourceError::Table {
            path: path.to_path_buf(),
            source,
        }),
        (Err(source), None) => Err(SourceError::Io {
            path: path.to_path_buf(),
            source,
        }),
        (Ok(()), None) => Ok(()),
    }
}

/// Writes a table as CSV to any writer (stdout for the CLI).
/// Timestamps are written to the second, or to the millisecond when any of them falls between
/// seconds (a sub-second step), so that no two rows print the same time.
pub fn write_csv(df: &mut DataFrame, out: impl Write) -> Result<(), PolarsError> {
    let format = if has_subsecond_times(df)? {
        "%Y-%m-%dT%H:%M:%S%.3fZ"
    } else {
        "%Y-%m-%dT%H:%M:%SZ"
    };
    CsvWriter::new(out)
        .include_header(true)
        .with_datetime_format(Some(format.into()))
        .finish(df)
}

/// Whether any timestamp column holds a time that is not a whole second.
fn has_subsecond_times(df: &DataFrame) -> Result<bool, PolarsError> {
    for column in df.columns() {
        if matches!(
            column.dtype(),
            DataType::Datetime(TimeUnit::Milliseconds, _)
        ) {
            let millis = column.cast(&DataType::Int64)?;
            if millis.i64()?.iter().flatten().any(|t| t % 1000 != 0) {
                return Ok(true);
            }
        }
    }
    Ok(false)
}

/// Reads a whole table from CSV or Parquet.
pub fn read_table(path: &Path) -> Result<DataFrame, SourceError> {
    let err = |source| SourceError::Table {
        path: path.to_path_buf(),
        source,
    };
    let file = File::open(path).map_err(|source| SourceError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    match TableFormat::of(path) {
        TableFormat::Parquet => ParquetReader::new(file).finish().map_err(err),
        TableFormat::Csv => CsvReader::new(file).finish().map_err(err),
    }
}

/// Reads one series from a Parquet file with a timestamp column and a value column.
///
/// The timestamp column may be a `Datetime` of any unit, an integer (unix seconds or
/// milliseconds, by magnitude) or text in any format [`TimestampFormat`] knows. A null value
/// is a missing sample. Rows are numbered from 1 in errors.
pub fn read_samples(
    path: &Path,
    columns: &ColumnSpec,
    duplicates: Duplicates,
) -> Result<Samples, SourceError> {
    let df = read_table(path)?;
    if df.height() == 0 {
        return Err(SourceError::Empty {
            path: path.to_path_buf(),
        });
    }
    let names: Vec<String> = df
        .get_column_names()
        .iter()
        .map(|s| s.to_string())
        .collect();
    let (time_col, value_col) = columns.resolve(path, &names)?;
    let table_err = |source| SourceError::Table {
        path: path.to_path_buf(),
        source,
    };
    let times = df
        .column(&names[time_col])
        .map_err(table_err)?
        .as_materialized_series()
        .clone();
    let timestamps = timestamps_of(path, &times, columns)?;
    let values: Vec<f64> = df
        .column(&names[value_col])
        .and_then(|c| c.cast(&DataType::Float64))
        .map_err(|_| SourceError::BadValue {
            path: path.to_path_buf(),
            line: 0,
            column: names[value_col].clone(),
            text: format!(
                "column of type {}",
                df.column(&names[value_col])
                    .map(|c| c.dtype().to_string())
                    .unwrap_or_default()
            ),
        })?
        .f64()
        .map_err(table_err)?
        .iter()
        .map(|v| v.unwrap_or(f64::NAN))
        .collect();
    let (timestamps, values, from) = duplicates.merge(timestamps, values);
    Samples::new(Labels::named(file_stem(path)), timestamps, values).map_err(|source| {
        SourceError::InvalidRow {
            path: path.to_path_buf(),
            line: from[source.index().unwrap_or(0)] as u64 + 1,
            source,
        }
    })
}

fn timestamps_of(
    path: &Path,
    column: &Series,
    columns: &ColumnSpec,
) -> Result<Vec<Millis>, SourceError> {
    let bad = |row: usize, text: String, expected: &'static str| SourceError::BadTimestamp {
        path: path.to_path_buf(),
        line: row as u64 + 1,
        text,
        expected,
    };
    let table_err = |source| SourceError::Table {
        path: path.to_path_buf(),
        source,
    };
    match column.dtype() {
        DataType::Datetime(unit, _) => {
            let (per_ms, format) = match unit {
                TimeUnit::Nanoseconds => (1_000_000, TimestampFormat::UnixNanos),
                TimeUnit::Microseconds => (1_000, TimestampFormat::UnixMicros),
                TimeUnit::Milliseconds => (1, TimestampFormat::UnixMillis),
            };
            let raw = column.cast(&DataType::Int64).map_err(table_err)?;
            let mut guard = SubMillisecondGuard::default();
            raw.i64()
                .map_err(table_err)?
                .iter()
                .enumerate()
                .map(|(row, t)| {
                    let raw = t.ok_or_else(|| bad(row, "null".into(), "a timestamp"))?;
                    let t = raw.div_euclid(per_ms);
                    if per_ms > 1 {
                        guard.check(path, format, t, &raw.to_string(), row as u64 + 1)?;
                    }
                    Ok(t)
                })
                .collect()
        }
        DataType::String => {
            let strings = column.str().map_err(table_err)?;
            let mut format = None;
            let mut guard = SubMillisecondGuard::default();
            strings
                .iter()
                .enumerate()
                .map(|(row, text)| {
                    let text = text.unwrap_or("");
                    let f = match format {
                        Some(f) => f,
                        None => *format.insert(
                            columns
                                .time_format(text)
                                .ok_or_else(|| bad(row, text.into(), "a timestamp"))?,
                        ),
                    };
                    let t = f
                        .parse(text)
                        .ok_or_else(|| bad(row, text.into(), f.describe()))?;
                    guard.check(path, f, t, text, row as u64 + 1)?;
                    Ok(t)
                })
                .collect()
        }
        dt if dt.is_integer() || dt.is_float() => {
            let raw = column.cast(&DataType::Float64).map_err(table_err)?;
            let mut format = None;
            let mut guard = SubMillisecondGuard::default();
            raw.f64()
                .map_err(table_err)?
                .iter()
                .enumerate()
                .map(|(row, v)| {
                    let text = v.map(|v| v.to_string()).unwrap_or_else(|| "null".into());
                    let f = match format {
                        Some(f) => f,
                        None => *format.insert(
                            columns
                                .time_format(&text)
                                .ok_or_else(|| bad(row, text.clone(), "a timestamp"))?,
                        ),
                    };
                    let t = f
                        .parse(&text)
                        .ok_or_else(|| bad(row, text.clone(), f.describe()))?;
                    guard.check(path, f, t, &text, row as u64 + 1)?;
                    Ok(t)
                })
                .collect()
        }
        other => Err(bad(
            0,
            format!("column of type {other}"),
            "a timestamp column",
        )),
    }
}
