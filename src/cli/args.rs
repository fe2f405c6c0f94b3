//! Flags shared by several subcommands, and their parsers.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::Args;

use crate::model::arima::{Arima, Spec};
use crate::model::auto::{Auto, Combine};
use crate::model::prophet::Prophet;
use crate::model::{Floor, Model};
use crate::series::{Aggregation, Millis, Series};
use crate::source::{self, prometheus, ColumnSpec, LoadOptions};

use super::prophet_args::ProphetArgs;

/// Where the history comes from: a file, or a Prometheus range query.
#[derive(Debug, Args)]
pub struct InputArgs {
    /// CSV or Parquet files with a timestamp and a value column, or M4 wide CSVs (one series
    /// per row).
    #[arg(
        long,
        value_name = "PATH",
        num_args = 1..,
        conflicts_with = "prometheus"
    )]
    pub input: Vec<PathBuf>,

    /// Timestamp column of the input file [default: timestamp, ts, time, date or the first].
    #[arg(long, value_name = "NAME")]
    pub time_column: Option<String>,

    /// Value column of the input file [default: value, y or the other column].
    #[arg(long, value_name = "NAME")]
    pub value_column: Option<String>,

    /// Base URL of a Prometheus server, e.g. http://127.0.0.1:9090.
    #[arg(long, value_name = "URL", requires_all = ["query", "start", "end", "step"])]
    pub prometheus: Option<String>,

    /// PromQL expression for --prometheus; one series per returned label set.
    #[arg(long, value_name = "PROMQL")]
    pub query: Option<String>,

    /// Range start: RFC 3339, unix seconds, `now` or `now-7d`.
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    pub start: Option<Millis>,

    /// Range end (inclusive): RFC 3339, unix seconds, `now` or `now-1h`.
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    pub end: Option<Millis>,

    /// Grid step (`30s`, `5m`, `1h`): the Prometheus query step, or for files the step to
    /// regularize onto [default for files: the most common spacing].
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub step: Option<Duration>,

    /// How samples falling in one step are combined when a file must be regularized.
    #[arg(long, value_enum, default_value_t = Aggregation::Last)]
    pub aggregate: Aggregation,

    /// Per-request timeout for Prometheus.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "30s")]
    pub timeout: Duration,

    /// Retries after a transient Prometheus failure (exponential backoff from 0.5 s).
    #[arg(long, value_name = "N", default_value_t = 3)]
    pub retries: u32,

    /// The series is a monotonic counter: convert it to a per-second rate (resets handled as
    /// PromQL's rate() does).
    #[arg(long)]
    pub counter: bool,

    /// Interpolate gaps of at most this many steps; longer gaps stay missing.
    #[arg(long, value_name = "STEPS", default_value_t = 3)]
    pub fill_gaps: usize,
}

impl InputArgs {
    /// Loads the series, applies --counter and --fill-gaps, and reports what was done on
    /// stderr.
    pub fn load(&self) -> anyhow::Result<Vec<Series>> {
        let raw = match (self.input.is_empty(), &self.prometheus) {
            (false, _) => {
                let options = LoadOptions {
                    columns: ColumnSpec {
                        time: self.time_column.clone(),
                        value: self.value_column.clone(),
                    },
                    step: self.step.map(to_millis),
                    aggregation: self.aggregate,
                    ..LoadOptions::default()
                };
                let mut all = Vec::new();
                for path in &self.input {
                    all.extend(source::load(path, &options)?);
                }
                all
            }
            (true, Some(url)) => {
                let query = prometheus::RangeQuery {
                    url: url.clone(),
                    query: self.query.clone().context("--query is required")?,
                    start: self.start.context("--start is required")?,
                    end: self.end.context("--end is required")?,
                    step: to_millis(self.step.context("--step is required")?),
                };
                let options = prometheus::QueryOptions {
                    timeout: self.timeout,
                    retries: self.retries,
                    ..prometheus::QueryOptions::default()
                };
                prometheus::query_range_blocking(&query, &options)?
            }
            (true, None) => bail!("give --input PATH or --prometheus URL"),
        };
        Ok(raw
            .into_iter()
            .map(|s| {
                let s = if self.counter { s.counter_to_rate() } else { s };
                let (filled, report) = s.fill_gaps(self.fill_gaps);
                if report.filled + report.left_missing > 0 {
                    eprintln!(
                        "{}: filled {} missing point(s) in gaps of up to {} step(s); {} point(s) in {} longer or edge gap(s) stay missing",
                        s.labels(),
                        report.filled,
                        self.fill_gaps,
                        report.left_missing,
                        report.gaps_left
                    );
                }
                filled
            })
            .collect())
    }
}

/// Seasonal periods and interval levels: the flags of every command that fits models.
#[derive(Debug, Args)]
pub struct FitArgs {
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
    order: Option<Order>,

    /// Fix the seasonal ARIMA order `P,D,Q,m` (with --order; m is the period in steps).
    #[arg(long, value_name = "P,D,Q,M", value_parser = parse_seasonal_order, requires = "order")]
    seasonal_order: Option<SeasonalOrder>,

    /// Floor forecasts and intervals at zero: `auto` when the history never went below zero,
    /// `zero` always, `none` never.
    #[arg(long, value_name = "FLOOR", default_value = "auto")]
    pub floor: Floor,

    /// How `--model auto` turns its validated candidates into one forecast: `best` (the
    /// lowest validation MASE), `topK` (the mean of the K best, e.g. `top2`), `median` or
    /// `inverse-error` (weights 1/MASE).
    #[arg(long, value_name = "HOW", default_value = "best")]
    pub combine: Combine,

    /// Settings of `--model prophet`; other models ignore them.
    #[command(flatten)]
    pub prophet: ProphetArgs,
}

impl FitArgs {
    /// The model called `name` with these flags: the registry's, or an ARIMA of the fixed
    /// order given by --order / --seasonal-order.
    pub fn model(&self, name: &str) -> anyhow::Result<Box<dyn Model>> {
        if name == "prophet" {
            return Ok(Box::new(Prophet::new(self.prophet.settings()?)));
        }
        if name == "auto" {
            return Ok(Box::new(Auto {
                combine: self.combine,
                ..Auto::default()
            }));
        }
        let Some(Order(p, d, q)) = self.order else {
            return Ok(crate::model::by_name(name)?);
        };
        if name != "arima" {
            bail!("--order fixes an ARIMA order, so it needs --model arima (got {name:?})");
        }
        let SeasonalOrder(sp, sd, sq, m) = self.seasonal_order.unwrap_or(SeasonalOrder(0, 0, 0, 1));
        Ok(Box::new(Arima::new(Spec {
            p,
            d,
            q,
            sp,
            sd,
            sq,
            m,
            mean: d + sd == 0,
        })))
    }

    /// The levels asked for.
    pub fn levels(&self) -> &[f64] {
        &self.level.0
    }

    /// The seasons for `series`: the user's, or those detected from the data, reported on
    /// stderr so the output says which periods were used.
    pub fn seasons_for(&self, series: &Series) -> Vec<usize> {
        if let Some(s) = &self.season {
            return s.0.clone();
        }
        let (candidates, kept) = crate::model::season::detect_for(series);
        eprintln!(
            "{}: seasons {kept:?} (detected from the candidates {candidates:?}: one day and one week of steps)",
            series.labels()
        );
        kept
    }
}

/// Parses `30s`, `5m`, `1h30m`, `1d` (humantime syntax) or a bare number of seconds.
pub fn parse_duration(text: &str) -> anyhow::Result<Duration> {
    if let Ok(secs) = text.parse::<f64>() {
        if secs.is_finite() && secs >= 0.0 {
            return Ok(Duration::from_secs_f64(secs));
        }
    }
    humantime::parse_duration(text)
        .with_context(|| format!("{text:?} is not a duration such as 30s, 5m, 1h"))
}

/// Parses RFC 3339, unix seconds, `now`, or `now-<duration>` into ms since the epoch.
pub fn parse_time(text: &str) -> anyhow::Result<Millis> {
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
pub fn to_millis(d: Duration) -> Millis {
    d.as_millis() as Millis
}

/// Prediction interval levels in percent, from a comma list such as `80,95`.
///
/// A newtype so clap treats the list as one value rather than a repeated flag.
#[derive(Debug, Clone, PartialEq)]
pub struct Levels(pub Vec<f64>);

/// Seasonal periods in steps, from a comma list such as `24,168`.
#[derive(Debug, Clone, PartialEq)]
pub struct Seasons(pub Vec<usize>);

/// A non-seasonal ARIMA order `(p, d, q)`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Order(pub usize, pub usize, pub usize);

/// A seasonal ARIMA order `(P, D, Q)` with its period `m`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SeasonalOrder(pub usize, pub usize, pub usize, pub usize);

/// Parses a comma list of exactly `n` whole numbers named by `what`.
fn whole_numbers(text: &str, n: usize, what: &str) -> anyhow::Result<Vec<usize>> {
    let parts: Vec<usize> = text
        .split(',')
        .map(|s| {
            s.trim()
                .parse()
                .with_context(|| format!("{s:?} in {what} is not a whole number"))
        })
        .collect::<anyhow::Result<_>>()?;
    if parts.len() != n {
        bail!(
            "{what} takes {n} comma-separated numbers, got {}",
            parts.len()
        );
    }
    Ok(parts)
}

/// Parses `p,d,q`; orders above 5 and more than two differences are refused as `auto.arima`
/// bounds them (beyond them the fit is rarely meaningful and slow).
pub fn parse_order(text: &str) -> anyhow::Result<Order> {
    let v = whole_numbers(text, 3, "--order p,d,q")?;
    if v[0] > 5 || v[2] > 5 || v[1] > 2 {
        bail!("--order {text}: p and q go up to 5 and d up to 2");
    }
    Ok(Order(v[0], v[1], v[2]))
}

/// Parses `P,D,Q,m`.
pub fn parse_seasonal_order(text: &str) -> anyhow::Result<SeasonalOrder> {
    let v = whole_numbers(text, 4, "--seasonal-order P,D,Q,m")?;
    if v[0] > 2 || v[2] > 2 || v[1] > 1 {
        bail!("--seasonal-order {text}: P and Q go up to 2 and D up to 1");
    }
    if v[3] < 2 {
        bail!("--seasonal-order {text}: the period m must be at least 2 steps");
    }
    Ok(SeasonalOrder(v[0], v[1], v[2], v[3]))
}

/// Parses `80,95` into levels in percent.
pub fn parse_levels(text: &str) -> anyhow::Result<Levels> {
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
pub fn parse_seasons(text: &str) -> anyhow::Result<Seasons> {
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
        assert_eq!(parse_order("2, 1,1").unwrap(), Order(2, 1, 1));
        assert!(parse_order("2,1").is_err());
        assert!(parse_order("6,0,0").is_err());
        assert!(parse_order("1,x,0").is_err());
        assert_eq!(
            parse_seasonal_order("1,1,0,24").unwrap(),
            SeasonalOrder(1, 1, 0, 24)
        );
        assert!(parse_seasonal_order("1,1,0").is_err());
        assert!(parse_seasonal_order("1,1,0,1").is_err());
    }
}
