//! Backtests past one machine: each shard of an Indexed Job takes a stable, hash-based share of
//! the series and writes its own results; [`merge`] puts the shards back together into exactly
//! what one run gives.
//!
//! A series belongs to shard `fnv1a64(name) mod N` (FNV-1a: the same on every machine and
//! every build, unlike the standard library's hasher). A shard writes
//! `shard-IIIII-of-NNNNN.parquet` (the results table of its series, as a single run writes it)
//! and then `shard-IIIII-of-NNNNN.json`, its manifest: the settings it ran with, its series with
//! their positions in the input, and its failed windows. The manifest is written last, so a
//! shard that died left none and is simply run again alone; [`merge`] refuses a folder with a
//! shard missing, two shards that ran with different settings, or series counted twice.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use polars::prelude::{DataFrame, DataType, PolarsError};
use serde::{Deserialize, Serialize};

use crate::eval::backtest::{results_table, Row, Window};
use crate::eval::{IntervalScore, Scores, Summary};
use crate::forecast::format_level;
use crate::source::table::{read_table, write_table};
use crate::source::SourceError;

/// The environment variable an Indexed Job sets to the pod's completion index.
pub const INDEX_VARIABLE: &str = "JOB_COMPLETION_INDEX";

/// Why sharding or merging failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ShardError {
    /// A shard number or a folder's shards are not what they should be.
    #[error("{0}")]
    Invalid(String),
    /// A results table could not be read or written.
    #[error(transparent)]
    Table(#[from] SourceError),
    /// A results table did not have the expected columns.
    #[error("{path}: not a backtest results table")]
    Columns {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: PolarsError,
    },
    /// A manifest could not be read, parsed or written.
    #[error("{path}: {message}")]
    Manifest {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
}

/// One shard of `total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    /// From 0.
    pub index: usize,
    /// How many shards.
    pub total: usize,
}

impl Shard {
    /// `I/N`, with `0 <= I < N`.
    pub fn parse(text: &str) -> Result<Self, ShardError> {
        let bad = || {
            ShardError::Invalid(format!(
                "shard {text:?}: expected I/N with 0 <= I < N (e.g. 0/4)"
            ))
        };
        let (i, n) = text.split_once('/').ok_or_else(bad)?;
        let index = i.trim().parse().map_err(|_| bad())?;
        let total = n.trim().parse().map_err(|_| bad())?;
        Self::new(index, total).map_err(|_| bad())
    }

    /// Shard `index` of `total`.
    pub fn new(index: usize, total: usize) -> Result<Self, ShardError> {
        if total == 0 || index >= total {
            return Err(ShardError::Invalid(format!(
                "shard {index} of {total}: the index must be under the number of shards"
            )));
        }
        Ok(Self { index, total })
    }

    /// Shard `value` (the text of [`INDEX_VARIABLE`]) of `total`.
    pub fn from_index_variable(value: Option<&str>, total: usize) -> Result<Self, ShardError> {
        let value = value.ok_or_else(|| {
            ShardError::Invalid(format!(
                "{INDEX_VARIABLE} is not set (an Indexed Job sets it in each pod)"
            ))
        })?;
        let index = value.trim().parse().map_err(|_| {
            ShardError::Invalid(format!("{INDEX_VARIABLE}={value:?} is not a whole number"))
        })?;
        Self::new(index, total)
    }

    /// Whether the series named `name` is this shard's.
    pub fn owns(&self, name: &str) -> bool {
        (fnv1a64(name.as_bytes()) % self.total as u64) as usize == self.index
    }

    /// The shard's file name without extension.
    pub fn stem(&self) -> String {
        format!("shard-{:05}-of-{:05}", self.index, self.total)
    }
}

/// FNV-1a, 64 bits.
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// What a shard ran and found, beside its results table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    /// Its index.
    pub index: usize,
    /// How many shards.
    pub total: usize,
    /// The settings every shard must share (models, horizon, windows, ...), as text.
    pub settings: String,
    /// The models, in the order the single run reports them.
    pub models: Vec<String>,
    /// Interval levels scored.
    pub levels: Vec<f64>,
    /// Series in the whole input.
    pub input_series: usize,
    /// This shard's series: (position in the input, name).
    pub series: Vec<(usize, String)>,
    /// Failed windows per model.
    pub failed: BTreeMap<String, usize>,
}

/// Writes a shard's results table and then its manifest under `dir`.
pub fn write_shard(
    dir: &Path,
    shard: Shard,
    manifest: &Manifest,
    rows: &[Row],
) -> Result<PathBuf, ShardError> {
    let table = dir.join(format!("{}.parquet", shard.stem()));
    let mut df = results_table(rows, &manifest.levels).map_err(|source| ShardError::Columns {
        path: table.clone(),
        source,
    })?;
    write_table(&mut df, &table)?;
    let path = dir.join(format!("{}.json", shard.stem()));
    let text = serde_json::to_string_pretty(manifest).map_err(|e| ShardError::Manifest {
        path: path.clone(),
        message: e.to_string(),
    })?;
    crate::files::write_atomic(&path, text.as_bytes()).map_err(|e| ShardError::Manifest {
        path: path.clone(),
        message: e.to_string(),
    })?;
    Ok(table)
}

/// The shards of a folder put back together.
#[derive(Debug)]
pub struct Merged {
    /// Every scored window, in the single run's order (input series, model, window).
    pub rows: Vec<Row>,
    /// The models, in order.
    pub models: Vec<String>,
    /// Interval levels scored.
    pub levels: Vec<f64>,
    /// The summary per model, as the single run prints it.
    pub summaries: Vec<Summary>,
}

impl Merged {
    /// The results table, as the single run writes it.
    pub fn table(&self) -> Result<DataFrame, PolarsError> {
        results_table(&self.rows, &self.levels)
    }
}

/// Merges the shards in `dir`.
pub fn merge(dir: &Path) -> Result<Merged, ShardError> {
    let entries = std::fs::read_dir(dir).map_err(|e| ShardError::Manifest {
        path: dir.to_path_buf(),
        message: e.to_string(),
    })?;
    let mut manifests: Vec<(PathBuf, Manifest)> = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if !(name.starts_with("shard-") && name.ends_with(".json")) {
            continue;
        }
        let text = crate::files::read_limited_text(&path, crate::files::MAX_CONFIG_BYTES).map_err(
            |e| ShardError::Manifest {
                path: path.clone(),
                message: e.to_string(),
            },
        )?;
        let m: Manifest = serde_json::from_str(&text).map_err(|e| ShardError::Manifest {
            path: path.clone(),
            message: e.to_string(),
        })?;
        manifests.push((path, m));
    }
    manifests.sort_by_key(|(_, m)| m.index);
    let Some((_, first)) = manifests.first() else {
        return Err(ShardError::Invalid(format!(
            "{}: no shard manifest (shard-*.json): no shard has finished",
            dir.display()
        )));
    };
    let first = first.clone();
    let missing: Vec<usize> = (0..first.total)
        .filter(|i| !manifests.iter().any(|(_, m)| m.index == *i))
        .collect();
    if !missing.is_empty() {
        return Err(ShardError::Invalid(format!(
            "{}: shard(s) {} of {} have not finished: run them again",
            dir.display(),
            missing
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", "),
            first.total
        )));
    }
    for (path, m) in &manifests {
        if m.total != first.total
            || m.settings != first.settings
            || m.models != first.models
            || m.levels != first.levels
            || m.input_series != first.input_series
        {
            return Err(ShardError::Invalid(format!(
                "{}: ran with other settings or shard count than shard {} ({} of {}: {})",
                path.display(),
                first.index,
                first.total,
                first.settings,
                m.settings
            )));
        }
    }
    let mut position: BTreeMap<&str, usize> = BTreeMap::new();
    for (path, m) in &manifests {
        for (i, name) in &m.series {
            if position.insert(name, *i).is_some() {
                return Err(ShardError::Invalid(format!(
                    "{}: series {name:?} is in two shards",
                    path.display()
                )));
            }
        }
    }
    if position.len() != first.input_series {
        return Err(ShardError::Invalid(format!(
            "the shards hold {} series, the input {}",
            position.len(),
            first.input_series
        )));
    }
    let model_order: BTreeMap<&str, usize> = first
        .models
        .iter()
        .enumerate()
        .map(|(i, m)| (m.as_str(), i))
        .collect();
    let mut rows = Vec::new();
    for (path, _) in &manifests {
        let table = path.with_extension("parquet");
        rows.extend(read_rows(&table, &first.levels).map_err(|e| match e {
            ShardError::Columns { source, .. } => ShardError::Columns {
                path: table.clone(),
                source,
            },
            other => other,
        })?);
    }
    let mut keyed = Vec::with_capacity(rows.len());
    for r in rows {
        let (Some(s), Some(mo)) = (
            position.get(r.series.as_str()),
            model_order.get(r.model.as_str()),
        ) else {
            return Err(ShardError::Invalid(format!(
                "a results row of series {:?} and model {:?} is in no manifest",
                r.series, r.model
            )));
        };
        keyed.push(((*s, *mo, r.window.index), r));
    }
    keyed.sort_by_key(|(k, _)| *k);
    let rows: Vec<Row> = keyed.into_iter().map(|(_, r)| r).collect();
    let summaries = first
        .models
        .iter()
        .map(|name| {
            let mut s = Summary::of(
                name,
                rows.iter().filter(|r| &r.model == name).map(|r| &r.window),
            );
            s.failed = manifests
                .iter()
                .map(|(_, m)| m.failed.get(name).copied().unwrap_or(0))
                .sum();
            s
        })
        .collect();
    Ok(Merged {
        rows,
        models: first.models.clone(),
        levels: first.levels.clone(),
        summaries,
    })
}

/// The scored windows of a results table.
fn read_rows(path: &Path, levels: &[f64]) -> Result<Vec<Row>, ShardError> {
    let df = read_table(path)?;
    let columns = |source| ShardError::Columns {
        path: path.to_path_buf(),
        source,
    };
    let text = |name: &str| -> Result<Vec<String>, PolarsError> {
        Ok(df
            .column(name)?
            .str()?
            .iter()
            .map(|v| v.unwrap_or_default().to_string())
            .collect())
    };
    let ints = |name: &str| -> Result<Vec<i64>, PolarsError> {
        Ok(df
            .column(name)?
            .cast(&DataType::Int64)?
            .i64()?
            .iter()
            .map(|v| v.unwrap_or_default())
            .collect())
    };
    let floats = |name: &str| -> Result<Vec<f64>, PolarsError> {
        Ok(df
            .column(name)?
            .cast(&DataType::Float64)?
            .f64()?
            .iter()
            .map(|v| v.unwrap_or(f64::NAN))
            .collect())
    };
    let series = text("series").map_err(columns)?;
    let model = text("model").map_err(columns)?;
    let window = ints("window").map_err(columns)?;
    let origin = ints("origin").map_err(columns)?;
    let [mae, rmse, smape, mase] =
        ["mae", "rmse", "smape", "mase"].map(|c| floats(c).map_err(columns));
    let (mae, rmse, smape, mase) = (mae?, rmse?, smape?, mase?);
    let mut intervals = Vec::new();
    for l in levels {
        let name = format_level(*l);
        intervals.push((
            *l,
            floats(&format!("coverage_{name}")).map_err(columns)?,
            floats(&format!("msis_{name}")).map_err(columns)?,
        ));
    }
    Ok((0..df.height())
        .map(|i| Row {
            series: series[i].clone(),
            model: model[i].clone(),
            window: Window {
                index: usize::try_from(window[i]).unwrap_or_default(),
                origin: origin[i],
                outcome: Ok(Scores {
                    mae: mae[i],
                    rmse: rmse[i],
                    smape: smape[i],
                    mase: mase[i],
                    intervals: intervals
                        .iter()
                        .map(|(level, coverage, msis)| IntervalScore {
                            level: *level,
                            coverage: coverage[i],
                            msis: msis[i],
                        })
                        .collect(),
                }),
            },
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_are_parsed_and_checked() {
        assert_eq!(Shard::parse("2/4").unwrap(), Shard { index: 2, total: 4 });
        for bad in ["4/4", "1/0", "a/2", "3"] {
            assert!(Shard::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(
            Shard::from_index_variable(Some("1"), 3).unwrap(),
            Shard { index: 1, total: 3 }
        );
        assert!(Shard::from_index_variable(None, 3)
            .unwrap_err()
            .to_string()
            .contains(INDEX_VARIABLE));
    }

    #[test]
    fn every_series_has_exactly_one_shard_and_the_hash_is_stable() {
        // FNV-1a's published test vectors.
        assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
        let shards: Vec<Shard> = (0..4).map(|i| Shard::new(i, 4).unwrap()).collect();
        let mut counts = [0usize; 4];
        for k in 0..1000 {
            let name = format!("H{k}");
            let owners: Vec<usize> = shards
                .iter()
                .filter(|s| s.owns(&name))
                .map(|s| s.index)
                .collect();
            assert_eq!(owners.len(), 1, "{name}");
            counts[owners[0]] += 1;
        }
        assert!(counts.iter().all(|c| (200..300).contains(c)), "{counts:?}");
    }
}
