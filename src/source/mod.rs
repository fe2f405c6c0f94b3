//! Where series come from: files (CSV, Parquet, M4 wide CSV) and Prometheus; and tables
//! written back to disk.
//!
//! Every source returns validated [`Series`]; how raw samples become a regular series
//! (directly, or regularized onto a step) is decided here, once, in [`to_series`].
//! [`load_inputs`] is the whole loading pipeline as one call over [`InputSettings`].

pub mod csv;
pub mod events;
mod inputs;
pub mod m4;
pub mod prometheus;
pub mod table;
pub mod timestamp;

pub use inputs::{
    load_inputs, prepare, GapNote, InputSettings, Loaded, PrometheusInput, DEFAULT_FILL_GAPS,
};

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::series::{Aggregation, Duplicates, Millis, Samples, Series, SeriesError};

/// Why a source could not produce series.
#[derive(Debug, Error)]
pub enum SourceError {
    /// The file could not be opened, read or written.
    #[error("{}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The file has no data rows.
    #[error("{}: the file has no data rows", path.display())]
    Empty {
        /// The file.
        path: PathBuf,
    },
    /// A column the caller named (or a default) is not in the header.
    #[error("{}: no column {column:?}; the header has {available:?}", path.display())]
    MissingColumn {
        /// The file.
        path: PathBuf,
        /// The column looked for.
        column: String,
        /// The columns present.
        available: Vec<String>,
    },
    /// More than one column could hold the values and none is named `value` or `y`: reading
    /// one of them would be a guess.
    #[error("{}: the header has {available:?}; which column holds the values is ambiguous (none is named value or y)", path.display())]
    AmbiguousColumn {
        /// The file.
        path: PathBuf,
        /// The columns present.
        available: Vec<String>,
    },
    /// A timestamp cell does not parse.
    #[error("{} line {line}: cannot read timestamp {text:?} (expected {expected})", path.display())]
    BadTimestamp {
        /// The file.
        path: PathBuf,
        /// 1-based line (row, for Parquet).
        line: u64,
        /// The cell's text.
        text: String,
        /// What was expected.
        expected: &'static str,
    },
    /// Two timestamps less than a millisecond apart, which the millisecond grid would merge.
    #[error("{} lines {first_line} and {line}: timestamps {first:?} and {text:?} are less than a millisecond apart; prescale's grid is in milliseconds: aggregate the data to a step of at least 1 ms", path.display())]
    SubMillisecond {
        /// The file.
        path: PathBuf,
        /// 1-based line (row, for Parquet) of the earlier timestamp.
        first_line: u64,
        /// Its text.
        first: String,
        /// 1-based line of the later one.
        line: u64,
        /// Its text.
        text: String,
    },
    /// A value cell is not a number.
    #[error("{} line {line}: value {text:?} in column {column:?} is not a number", path.display())]
    BadValue {
        /// The file.
        path: PathBuf,
        /// 1-based line (row, for Parquet).
        line: u64,
        /// The column.
        column: String,
        /// The cell's text.
        text: String,
    },
    /// The rows parse but do not form a valid series.
    #[error("{} line {line}", path.display())]
    InvalidRow {
        /// The file.
        path: PathBuf,
        /// 1-based line of the offending row.
        line: u64,
        /// What is wrong with it.
        source: SeriesError,
    },
    /// The CSV itself is malformed (e.g. unbalanced quotes, invalid UTF-8).
    #[error("{}: malformed CSV{}: {message}", path.display(), line.map(|l| format!(" at line {l}")).unwrap_or_default())]
    Csv {
        /// The file.
        path: PathBuf,
        /// Line, when known.
        line: Option<u64>,
        /// The parser's message.
        message: String,
    },
    /// polars could not read or write the table.
    #[error("{}", path.display())]
    Table {
        /// The file.
        path: PathBuf,
        /// polars' error.
        source: polars::error::PolarsError,
    },
    /// A Prometheus query failed.
    #[error(transparent)]
    Prometheus(#[from] prometheus::PrometheusError),
    /// Neither files nor a Prometheus query were given.
    #[error("no input: give files or a Prometheus query")]
    NoInput,
    /// Both files and a Prometheus query were given.
    #[error("give files or a Prometheus query, not both")]
    TwoInputs,
    /// Two inputs give series the same name (files with the same stem in different folders),
    /// so their results could not be told apart.
    #[error("{} and {} both hold a series named {name}: rename one of the files", first.display(), second.display())]
    SameName {
        /// The shared name.
        name: String,
        /// The first file.
        first: PathBuf,
        /// The second.
        second: PathBuf,
    },
    /// Samples could not be put on a grid, or a series could not be prepared.
    #[error("{name}")]
    Series {
        /// The series.
        name: String,
        /// Why.
        source: SeriesError,
    },
}

impl SourceError {
    fn from_csv(path: &Path, e: ::csv::Error) -> Self {
        let line = e.position().map(|p| p.line());
        let message = e.to_string();
        match e.into_kind() {
            ::csv::ErrorKind::Io(source) => Self::Io {
                path: path.to_path_buf(),
                source,
            },
            _ => Self::Csv {
                path: path.to_path_buf(),
                line,
                message,
            },
        }
    }
}

/// Which columns of a long-format table hold the timestamps and the values.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ColumnSpec {
    /// Timestamp column; default: the first of `timestamp`, `ts`, `time`, `date`, `datetime`
    /// (any case), else the first column.
    pub time: Option<String>,
    /// Value column; default: `value`, else `y`, else the one column that is not the time (with
    /// more than one such column, an error rather than a guess).
    pub value: Option<String>,
    /// The unit of numeric timestamps; default: read from their magnitude (see
    /// [`TimestampFormat::detect`](timestamp::TimestampFormat::detect)).
    pub time_unit: Option<timestamp::TimeUnit>,
}

impl ColumnSpec {
    /// The format of the timestamp column, from its first cell: the given unit, or detected.
    fn time_format(&self, first: &str) -> Option<timestamp::TimestampFormat> {
        match self.time_unit {
            Some(unit) => Some(timestamp::TimestampFormat::of_unit(unit)),
            None => timestamp::TimestampFormat::detect(first),
        }
    }

    /// Finds the (time, value) column indices in a header.
    fn resolve(&self, path: &Path, header: &[String]) -> Result<(usize, usize), SourceError> {
        let find = |name: &str| header.iter().position(|h| h.eq_ignore_ascii_case(name));
        let missing = |column: &str| SourceError::MissingColumn {
            path: path.to_path_buf(),
            column: column.to_string(),
            available: header.to_vec(),
        };
        let time = match &self.time {
            Some(name) => find(name).ok_or_else(|| missing(name))?,
            None => ["timestamp", "ts", "time", "date", "datetime"]
                .iter()
                .find_map(|n| find(n))
                .unwrap_or(0),
        };
        let value = match &self.value {
            Some(name) => find(name).ok_or_else(|| missing(name))?,
            None => match find("value").or_else(|| find("y")) {
                Some(i) => i,
                None => {
                    let others: Vec<usize> = (0..header.len()).filter(|&i| i != time).collect();
                    match others[..] {
                        [only] => only,
                        [] => return Err(missing("value")),
                        _ => {
                            return Err(SourceError::AmbiguousColumn {
                                path: path.to_path_buf(),
                                available: header.to_vec(),
                            })
                        }
                    }
                }
            },
        };
        Ok((time, value))
    }
}

/// How file inputs become series.
#[derive(Debug, Clone)]
pub struct LoadOptions {
    /// Column names for long-format files.
    pub columns: ColumnSpec,
    /// Grid step; default: the most common spacing of the samples.
    pub step: Option<Millis>,
    /// How samples are combined when they must be regularized.
    pub aggregation: Aggregation,
    /// Step of M4 wide files, which carry no timestamps (default one hour).
    pub wide_step: Millis,
    /// What to do with samples that share a timestamp.
    pub duplicates: Duplicates,
}

impl Default for LoadOptions {
    fn default() -> Self {
        Self {
            columns: ColumnSpec::default(),
            step: None,
            aggregation: Aggregation::default(),
            wide_step: 3_600_000,
            duplicates: Duplicates::default(),
        }
    }
}

/// Largest input file read (4 GiB): far beyond a series worth forecasting, below what
/// would exhaust a machine's memory once parsed.
pub const MAX_INPUT_BYTES: u64 = 4 << 30;

/// Loads every series in a file: one for a long CSV or Parquet file, one per row for an M4
/// wide CSV (recognised by its `V1,V2,...` header).
pub fn load(path: &Path, options: &LoadOptions) -> Result<Vec<Series>, SourceError> {
    let refused = |text: String| SourceError::Io {
        path: path.to_path_buf(),
        source: std::io::Error::new(std::io::ErrorKind::InvalidInput, text),
    };
    let meta = std::fs::metadata(path).map_err(|source| SourceError::Io {
        path: path.to_path_buf(),
        source: if source.kind() == std::io::ErrorKind::NotFound {
            std::io::Error::new(std::io::ErrorKind::NotFound, "no such file")
        } else {
            source
        },
    })?;
    // A device (`/dev/zero`), a pipe or a folder would be read forever or not at all.
    if !meta.is_file() {
        return Err(refused(
            "not a regular file (a device, a pipe or a folder)".into(),
        ));
    }
    if meta.len() > MAX_INPUT_BYTES {
        return Err(refused(format!(
            "{} bytes, over the {MAX_INPUT_BYTES} bytes read from one input file",
            meta.len()
        )));
    }
    let samples = match table::TableFormat::of(path) {
        table::TableFormat::Parquet => {
            table::read_samples(path, &options.columns, options.duplicates)?
        }
        table::TableFormat::Csv => {
            if is_wide_csv(path)? {
                return m4::read_wide(path, options.wide_step);
            }
            csv::read_samples(path, &options.columns, options.duplicates)?
        }
    };
    Ok(vec![to_series(
        &samples,
        options.step,
        options.aggregation,
    )?])
}

/// Puts samples on a grid: as they are when they already sit on one with the requested step,
/// otherwise regularized with `aggregation` (see [`Samples::regularize`]).
pub fn to_series(
    samples: &Samples,
    step: Option<Millis>,
    aggregation: Aggregation,
) -> Result<Series, SourceError> {
    let wrap = |source| SourceError::Series {
        name: samples.labels().to_string(),
        source,
    };
    let inferred = samples.infer_step();
    if step.is_none() || step == inferred {
        if let Ok(series) = Series::from_samples(samples) {
            return Ok(series);
        }
    }
    let step = step.or(inferred).unwrap_or(1000);
    samples.regularize(step, aggregation).map_err(wrap)
}

fn is_wide_csv(path: &Path) -> Result<bool, SourceError> {
    let mut reader = ::csv::ReaderBuilder::new()
        .flexible(true)
        .from_path(path)
        .map_err(|e| SourceError::from_csv(path, e))?;
    let header: Vec<String> = match reader.headers() {
        Ok(h) => h.iter().map(str::to_string).collect(),
        Err(_) => return Ok(false),
    };
    Ok(m4::looks_wide(&header))
}

/// The name a file gives its series: its stem (`nyc_taxi` for `datasets/nyc_taxi.csv`).
pub fn file_stem(path: &Path) -> String {
    path.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default()
}
