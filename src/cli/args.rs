//! Flags shared by several subcommands, their parsers, and how they become the library's
//! settings ([`InputSettings`], [`ModelSpec`]).

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context};
use clap::Args;

use crate::model::auto::Combine;
use crate::model::{season, Floor, Model, ModelSpec};
use crate::series::{Aggregation, Duplicates, Millis, Series, SeriesError};
use crate::source::prometheus::{QueryOptions, RangeQuery};
use crate::source::{self, ColumnSpec, InputSettings, PrometheusInput, SourceError};

use super::prophet_args::ProphetArgs;

/// Where the history comes from: a file, or a Prometheus range query.
#[derive(Debug, Args)]
pub(super) struct InputArgs {
    /// CSV or Parquet files with a timestamp and a value column, or M4 wide CSVs (one series
    /// per row).
    #[arg(
        long,
        value_name = "PATH",
        num_args = 1..,
        conflicts_with = "prometheus"
    )]
    pub(super) input: Vec<PathBuf>,

    /// Timestamp column of the input file [default: timestamp, ts, time, date or the first].
    #[arg(long, value_name = "NAME")]
    time_column: Option<String>,

    /// Value column of the input file [default: value, y or the other column].
    #[arg(long, value_name = "NAME")]
    value_column: Option<String>,

    /// Unit of numeric timestamps (s, ms, us or ns) [default: read from their magnitude].
    #[arg(long, value_name = "UNIT")]
    time_unit: Option<crate::source::timestamp::TimeUnit>,

    /// Base URL of a Prometheus server, e.g. http://127.0.0.1:9090.
    #[arg(long, value_name = "URL", requires_all = ["query", "start", "end", "step"])]
    pub(super) prometheus: Option<String>,

    /// PromQL expression for --prometheus; one series per returned label set.
    #[arg(long, value_name = "PROMQL")]
    query: Option<String>,

    /// Range start: RFC 3339, unix seconds, `now` or `now-7d`.
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    start: Option<Millis>,

    /// Range end (inclusive): RFC 3339, unix seconds, `now` or `now-1h`.
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    end: Option<Millis>,

    /// Grid step (`30s`, `5m`, `1h`): the Prometheus query step, or for files the step to
    /// regularize onto [default for files: the most common spacing].
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    step: Option<Duration>,

    /// How samples falling in one step are combined when a file must be regularized.
    #[arg(long, value_name = "HOW", value_parser = ["last", "mean"], default_value = "last")]
    aggregate: String,

    /// Samples of a file that share a timestamp: refuse them, or keep the first, the last or
    /// their mean.
    #[arg(long, value_name = "RULE", default_value = "refuse")]
    duplicates: Duplicates,

    /// Per-request timeout for Prometheus.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "30s")]
    timeout: Duration,

    /// Retries after a transient Prometheus failure (exponential backoff from 0.5 s).
    #[arg(long, value_name = "N", default_value_t = 3)]
    retries: u32,

    /// The series is a monotonic counter: convert it to a per-second rate (resets handled as
    /// PromQL's rate() does).
    #[arg(long)]
    counter: bool,

    /// Interpolate gaps of at most this many steps; longer gaps stay missing.
    #[arg(long, value_name = "STEPS", default_value_t = source::DEFAULT_FILL_GAPS)]
    fill_gaps: usize,
}

impl InputArgs {
    /// Refuses writing to `output` when it is one of the input files (or `extra`, the
    /// command's other input files), before any work is done.
    pub(super) fn refuse_as_output(&self, output: &Path, extra: &[&Path]) -> anyhow::Result<()> {
        let inputs = self
            .input
            .iter()
            .map(PathBuf::as_path)
            .chain(extra.iter().copied());
        crate::files::refuse_overwriting_inputs(output, inputs)?;
        Ok(())
    }

    /// The loading settings these flags describe.
    pub(super) fn settings(&self) -> anyhow::Result<InputSettings> {
        let aggregation: Aggregation = self.aggregate.parse().map_err(anyhow::Error::msg)?;
        let prometheus = match &self.prometheus {
            None => None,
            Some(url) => Some(PrometheusInput {
                query: RangeQuery {
                    url: url.clone(),
                    query: self.query.clone().context("--query is required")?,
                    start: self.start.context("--start is required")?,
                    end: self.end.context("--end is required")?,
                    step: to_millis(self.step.context("--step is required")?),
                },
                options: QueryOptions {
                    timeout: self.timeout,
                    retries: self.retries,
                    ..QueryOptions::default()
                },
            }),
        };
        Ok(InputSettings {
            files: self.input.clone(),
            columns: ColumnSpec {
                time: self.time_column.clone(),
                value: self.value_column.clone(),
                time_unit: self.time_unit,
            },
            step: self.step.map(to_millis),
            aggregation,
            duplicates: self.duplicates,
            prometheus,
            counter: self.counter,
            fill_gaps: self.fill_gaps,
        })
    }

    /// Loads the series and reports the gaps filled on stderr.
    pub(super) fn load(&self) -> anyhow::Result<Vec<Series>> {
        let loaded = source::load_inputs(&self.settings()?).map_err(with_flag_hint)?;
        for note in &loaded.gaps {
            note!("{note}");
        }
        Ok(loaded.series)
    }
}

/// Adds the flag that fixes a source error, where one does: the library's messages name no
/// flags.
fn with_flag_hint(e: SourceError) -> anyhow::Error {
    let hint = match &e {
        SourceError::MissingColumn { .. } | SourceError::AmbiguousColumn { .. } => {
            Some("choose columns with --time-column / --value-column")
        }
        SourceError::NoInput => Some("give --input PATH or --prometheus URL"),
        SourceError::InvalidRow {
            source: SeriesError::Duplicate { .. },
            ..
        } => Some("keep one sample per timestamp with --duplicates first, last or mean"),
        SourceError::Prometheus(source::prometheus::PrometheusError::Timeout { .. }) => {
            Some("raise --timeout or shorten the range")
        }
        _ => None,
    };
    match hint {
        Some(hint) => anyhow::Error::new(e).context(hint),
        None => e.into(),
    }
}

/// Seasonal periods, interval levels and model settings: the flags of every command that
/// fits models.
#[derive(Debug, Args)]
pub(super) struct FitArgs {
    /// Seasonal periods in steps, most important first, e.g. `24,168`; the first also scales
    /// MASE [default: those of one day and one week of steps that the data's autocorrelation
    /// supports].
    #[arg(long, value_name = "STEPS", value_parser = parse_seasons)]
    season: Option<Seasons>,

    /// Prediction interval levels in percent.
    #[arg(long, value_name = "LEVELS", default_value = "80,95", value_parser = parse_levels)]
    level: Levels,

    /// Fix the ARIMA order `p,d,q` instead of searching (`--model arima` only); a mean is
    /// fitted when there is no differencing.
    #[arg(long, value_name = "P,D,Q", value_parser = parse_order)]
    order: Option<[usize; 3]>,

    /// Fix the seasonal ARIMA order `P,D,Q,m` (with --order; m is the period in steps).
    #[arg(long, value_name = "P,D,Q,M", value_parser = parse_seasonal_order, requires = "order")]
    seasonal_order: Option<[usize; 4]>,

    /// Floor forecasts and intervals at zero: `auto` when the history never went below zero,
    /// `zero` always, `none` never.
    #[arg(long, value_name = "FLOOR", default_value = "auto")]
    pub(super) floor: Floor,

    /// How `--model auto` turns its validated candidates into one forecast: `best` (the
    /// lowest validation MASE; the default), `topK` (the mean of the K best, e.g. `top2`),
    /// `median` or `inverse-error` (weights 1/MASE).
    #[arg(long, value_name = "HOW")]
    combine: Option<Combine>,

    /// Settings of `--model prophet`.
    #[command(flatten)]
    prophet: ProphetArgs,
}

impl FitArgs {
    /// The models called `names`, each with the settings these flags give it (and `lstm` with
    /// the network folder `network`, when one is given). Flags that set a model which is not
    /// among `names` are an error: they would otherwise be ignored.
    pub(super) fn specs(
        &self,
        names: &[String],
        network: Option<&Path>,
    ) -> anyhow::Result<Vec<ModelSpec>> {
        let mut given: Vec<(&str, &str, serde_json::Value)> = Vec::new();
        if let Some(order) = self.order {
            let settings = crate::model::arima::Settings {
                order: Some(order),
                seasonal_order: self.seasonal_order,
            };
            given.push(("arima", "--order", serde_json::to_value(settings)?));
        }
        if self.prophet.any() {
            let settings = self.prophet.settings()?;
            given.push((
                "prophet",
                "the Prophet flags (--growth, --add-seasonality, --events, ...)",
                serde_json::to_value(settings)?,
            ));
        }
        if let Some(combine) = self.combine {
            given.push((
                "auto",
                "--combine",
                serde_json::json!({ "combine": combine }),
            ));
        }
        if let Some(dir) = network {
            given.push((
                "lstm",
                "a network folder",
                serde_json::json!({ "network": dir }),
            ));
        }
        for (model, flags, _) in &given {
            if !names.iter().any(|n| n == model) {
                bail!("{flags} set {model}'s settings, so they need --model {model}");
            }
        }
        Ok(names
            .iter()
            .map(|name| ModelSpec {
                name: name.clone(),
                settings: given
                    .iter()
                    .find(|(model, _, _)| model == name)
                    .map_or(serde_json::Value::Null, |(_, _, v)| v.clone()),
            })
            .collect())
    }

    /// The models called `names`, built from [`FitArgs::specs`].
    pub(super) fn models(
        &self,
        names: &[String],
        network: Option<&Path>,
    ) -> anyhow::Result<Vec<Box<dyn Model>>> {
        self.specs(names, network)?
            .iter()
            .map(|spec| {
                spec.build()
                    .with_context(|| format!("--model {}", spec.name))
            })
            .collect()
    }

    /// The levels asked for.
    pub(super) fn levels(&self) -> &[f64] {
        &self.level.0
    }

    /// The seasons for `series`: the user's, or those detected from the data, reported on
    /// stderr so the output says which periods were used.
    pub(super) fn seasons_for(&self, series: &Series) -> Vec<usize> {
        if let Some(s) = &self.season {
            return s.0.clone();
        }
        let (candidates, kept) = season::detect_for(series);
        note!(
            "{}: seasons {kept:?} (detected from the candidates {candidates:?}: one day and one week of steps)",
            series.labels()
        );
        kept
    }
}

/// Parses `30s`, `5m`, `1h30m`, `1d` (humantime syntax) or a bare number of seconds.
pub(super) fn parse_duration(text: &str) -> anyhow::Result<Duration> {
    if let Ok(secs) = text.parse::<f64>() {
        if secs.is_finite() && secs >= 0.0 {
            return Ok(Duration::from_secs_f64(secs));
        }
    }
    humantime::parse_duration(text)
        .with_context(|| format!("{text:?} is not a duration such as 30s, 5m, 1h"))
}

/// Parses RFC 3339, unix seconds, `now`, or `now-<duration>` into ms since the epoch.
pub(super) fn parse_time(text: &str) -> anyhow::Result<Millis> {
    let text = text.trim();
    if let Some(rest) = text.strip_prefix("now") {
        let now = chrono::Utc::now().timestamp() * 1000;
        if rest.is_empty() {
            return Ok(now);
        }
        let ago = rest
            .strip_prefix('-')
            .with_context(|| format!("{text:?}: expected now or now-<duration>"))?;
        return Ok(now - to_millis(parse_duration(ago)?) / 1000 * 1000);
    }
    use crate::source::timestamp::TimestampFormat;
    TimestampFormat::detect(text)
        .and_then(|f| f.parse(text))
        .with_context(|| format!("{text:?} is not a time (RFC 3339, unix seconds, now or now-7d)"))
}

/// A duration in whole milliseconds.
pub(super) fn to_millis(d: Duration) -> Millis {
    Millis::try_from(d.as_millis()).unwrap_or(Millis::MAX)
}

/// Prediction interval levels in percent, from a comma list such as `80,95`.
///
/// A newtype so clap treats the list as one value rather than a repeated flag.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Levels(pub(super) Vec<f64>);

/// Seasonal periods in steps, from a comma list such as `24,168`.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Seasons(pub(super) Vec<usize>);

/// Parses a comma list of exactly `n` whole numbers named by `what`.
fn whole_numbers<const N: usize>(text: &str, what: &str) -> anyhow::Result<[usize; N]> {
    let parts: Vec<usize> = text
        .split(',')
        .map(|s| {
            s.trim()
                .parse()
                .with_context(|| format!("{s:?} in {what} is not a whole number"))
        })
        .collect::<anyhow::Result<_>>()?;
    let got = parts.len();
    parts
        .try_into()
        .map_err(|_| anyhow::anyhow!("{what} takes {N} comma-separated numbers, got {got}"))
}

/// Parses `p,d,q` (the bounds are the ARIMA settings' to check).
fn parse_order(text: &str) -> anyhow::Result<[usize; 3]> {
    whole_numbers(text, "--order p,d,q")
}

/// Parses `P,D,Q,m`.
fn parse_seasonal_order(text: &str) -> anyhow::Result<[usize; 4]> {
    whole_numbers(text, "--seasonal-order P,D,Q,m")
}

/// Parses `80,95` into levels in percent.
fn parse_levels(text: &str) -> anyhow::Result<Levels> {
    if text.trim().is_empty() {
        return Ok(Levels(vec![]));
    }
    text.split(',')
        .map(|l| {
            let v: f64 = l
                .trim()
                .parse()
                .with_context(|| format!("level {l:?} is not a number"))?;
            if !(v > 0.0 && v < 100.0) {
                bail!("level {v} must be a percentage strictly between 0 and 100");
            }
            Ok(v)
        })
        .collect::<anyhow::Result<_>>()
        .map(Levels)
}

/// Parses `24,168` into seasonal periods in steps.
pub(super) fn parse_seasons(text: &str) -> anyhow::Result<Seasons> {
    text.split(',')
        .map(|s| {
            let v: usize = s
                .trim()
                .parse()
                .with_context(|| format!("season {s:?} is not a whole number of steps"))?;
            if v == 0 {
                bail!("a season must be at least one step");
            }
            Ok(v)
        })
        .collect::<anyhow::Result<_>>()
        .map(Seasons)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_times() {
        assert_eq!(parse_duration("5m").unwrap(), Duration::from_secs(300));
        assert_eq!(parse_duration("90").unwrap(), Duration::from_secs(90));
        assert!(parse_duration("soon").is_err());
        assert_eq!(
            parse_time("2015-01-31T00:00:00Z").unwrap(),
            1_422_662_400_000
        );
        assert_eq!(parse_time("1422662400").unwrap(), 1_422_662_400_000);
        let gap = parse_time("now").unwrap() - parse_time("now-1h").unwrap();
        // The two calls may straddle a second boundary.
        assert!((3_600_000..=3_601_000).contains(&gap), "{gap}");
        assert!(parse_time("tomorrow").is_err());
    }

    #[test]
    fn levels_and_seasons() {
        assert_eq!(parse_levels("80, 95").unwrap(), Levels(vec![80.0, 95.0]));
        assert!(parse_levels("100").is_err());
        assert_eq!(parse_seasons("24,168").unwrap(), Seasons(vec![24, 168]));
        assert!(parse_seasons("0").is_err());
    }

    #[test]
    fn arima_orders() {
        assert_eq!(parse_order("2, 1,1").unwrap(), [2, 1, 1]);
        assert!(parse_order("2,1").is_err());
        assert!(parse_order("1,x,0").is_err());
        assert_eq!(parse_seasonal_order("1,1,0,24").unwrap(), [1, 1, 0, 24]);
        assert!(parse_seasonal_order("1,1,0").is_err());
    }
}
