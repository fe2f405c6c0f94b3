//! The loading pipeline as one call: where the series come from (files, or a Prometheus range
//! query) and how they are made ready for models (a counter turned into its rate, short gaps
//! filled), driven by a plain settings value that flags and configuration files both fill.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::series::{Aggregation, Duplicates, GapReport, Labels, Millis, Series};

use super::prometheus::{self, QueryOptions, RangeQuery};
use super::{ColumnSpec, LoadOptions, SourceError};

/// Short gaps interpolated by default, in steps.
pub const DEFAULT_FILL_GAPS: usize = 3;

/// Where series come from and how they are prepared.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct InputSettings {
    /// CSV or Parquet files with a timestamp and a value column, or M4 wide CSVs (one series
    /// per row).
    pub files: Vec<PathBuf>,
    /// Which columns of a file hold the timestamps and the values.
    pub columns: ColumnSpec,
    /// Grid step for files, ms; `None`: the most common spacing of the samples.
    pub step: Option<Millis>,
    /// How samples falling in one step of a file are combined.
    pub aggregation: Aggregation,
    /// What to do with samples of a file that share a timestamp.
    pub duplicates: Duplicates,
    /// A Prometheus range query instead of files.
    pub prometheus: Option<PrometheusInput>,
    /// The series are monotonic counters: turn each into its per-second rate.
    pub counter: bool,
    /// Interpolate gaps of at most this many steps; longer gaps stay missing.
    pub fill_gaps: usize,
}

impl Default for InputSettings {
    fn default() -> Self {
        Self {
            files: Vec::new(),
            columns: ColumnSpec::default(),
            step: None,
            aggregation: Aggregation::default(),
            duplicates: Duplicates::default(),
            prometheus: None,
            counter: false,
            fill_gaps: DEFAULT_FILL_GAPS,
        }
    }
}

/// A Prometheus range query and how to talk to the server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrometheusInput {
    /// What to ask, over which grid.
    pub query: RangeQuery,
    /// Timeout, retries, chunking.
    #[serde(default)]
    pub options: QueryOptions,
}

/// What [`load_inputs`] made: the series, and the gaps it filled or left in each.
#[derive(Debug, Clone, PartialEq)]
pub struct Loaded {
    /// The series, in input order (files), or sorted by labels (Prometheus).
    pub series: Vec<Series>,
    /// One note per series that had missing points.
    pub gaps: Vec<GapNote>,
}

/// The gaps of one series: what was filled and what stays missing.
#[derive(Debug, Clone, PartialEq)]
pub struct GapNote {
    /// The series.
    pub labels: Labels,
    /// The longest gap filled, in steps.
    pub limit: usize,
    /// What was done.
    pub report: GapReport,
}

impl std::fmt::Display for GapNote {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: filled {} missing point(s) in gaps of up to {} step(s); {} point(s) in {} longer or edge gap(s) stay missing",
            self.labels,
            self.report.filled,
            self.limit,
            self.report.left_missing,
            self.report.gaps_left
        )
    }
}

/// Loads every series `settings` names and prepares it: counters become rates, gaps of up to
/// `fill_gaps` steps are interpolated.
///
/// Prometheus is queried with its own blocking runtime, so this must not be called from
/// inside an async runtime (that is an error, not a panic): async callers use
/// [`prometheus::query_range`] and [`prepare`].
pub fn load_inputs(settings: &InputSettings) -> Result<Loaded, SourceError> {
    let raw = match (&settings.prometheus, settings.files.is_empty()) {
        (Some(p), true) => prometheus::query_range_blocking(&p.query, &p.options)?,
        (None, false) => {
            let options = LoadOptions {
                columns: settings.columns.clone(),
                step: settings.step,
                aggregation: settings.aggregation,
                duplicates: settings.duplicates,
                ..LoadOptions::default()
            };
            let mut all = Vec::new();
            let mut seen: std::collections::HashMap<String, &PathBuf> = Default::default();
            for path in &settings.files {
                for series in super::load(path, &options)? {
                    let name = series.labels().to_string();
                    if let Some(first) = seen.insert(name.clone(), path) {
                        return Err(SourceError::SameName {
                            name,
                            first: first.clone(),
                            second: path.clone(),
                        });
                    }
                    all.push(series);
                }
            }
            all
        }
        (Some(_), false) => return Err(SourceError::TwoInputs),
        (None, true) => return Err(SourceError::NoInput),
    };
    prepare(raw, settings)
}

/// The preparation steps of [`load_inputs`] on series already read.
pub fn prepare(raw: Vec<Series>, settings: &InputSettings) -> Result<Loaded, SourceError> {
    let mut series = Vec::with_capacity(raw.len());
    let mut gaps = Vec::new();
    for s in raw {
        let s = if settings.counter {
            s.counter_to_rate().map_err(|source| SourceError::Series {
                name: s.labels().to_string(),
                source,
            })?
        } else {
            s
        };
        let (filled, report) =
            s.fill_gaps(settings.fill_gaps)
                .map_err(|source| SourceError::Series {
                    name: s.labels().to_string(),
                    source,
                })?;
        if report.filled + report.left_missing > 0 {
            gaps.push(GapNote {
                labels: s.labels().clone(),
                limit: settings.fill_gaps,
                report,
            });
        }
        series.push(filled);
    }
    Ok(Loaded { series, gaps })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn csv(dir: &tempfile::TempDir, name: &str, text: &str) -> PathBuf {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn files_are_loaded_turned_into_rates_and_gap_filled_in_one_call() {
        let dir = tempfile::tempdir().unwrap();
        let path = csv(
            &dir,
            "requests.csv",
            "timestamp,value\n0,0\n10,100\n20,\n30,300\n40,400\n",
        );
        let settings = InputSettings {
            files: vec![path],
            counter: true,
            ..InputSettings::default()
        };
        let loaded = load_inputs(&settings).unwrap();
        assert_eq!(loaded.series.len(), 1);
        // 10 requests per second throughout; the rate after the gap averages over it.
        assert_eq!(loaded.series[0].values(), &[10.0, 10.0, 10.0, 10.0]);
        assert_eq!(loaded.gaps.len(), 1);
        assert!(loaded.gaps[0]
            .to_string()
            .contains("filled 1 missing point"));
    }

    #[test]
    fn no_input_and_two_inputs_are_errors() {
        assert!(matches!(
            load_inputs(&InputSettings::default()),
            Err(SourceError::NoInput)
        ));
        let both = InputSettings {
            files: vec!["x.csv".into()],
            prometheus: Some(PrometheusInput {
                query: RangeQuery {
                    url: "http://127.0.0.1:9".into(),
                    query: "up".into(),
                    start: 0,
                    end: 60_000,
                    step: 60_000,
                },
                options: QueryOptions::default(),
            }),
            ..InputSettings::default()
        };
        assert!(matches!(load_inputs(&both), Err(SourceError::TwoInputs)));
    }

    #[test]
    fn settings_read_from_yaml_with_defaults() {
        let s: InputSettings =
            serde_norway::from_str("files: [a.csv]\ncounter: true\nfillGaps: 5\n").unwrap();
        assert_eq!(s.files, [PathBuf::from("a.csv")]);
        assert!(s.counter);
        assert_eq!(s.fill_gaps, 5);
        assert_eq!(s.aggregation, Aggregation::Last);
        assert!(serde_norway::from_str::<InputSettings>("file: a.csv\n").is_err());
    }
}
