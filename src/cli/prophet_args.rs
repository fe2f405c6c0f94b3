//! The `prophet` model's flags.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use clap::Args;

use crate::model::prophet::{CustomSeasonality, Event, Growth, Mode, Settings};
use crate::series::Millis;

use super::args::{parse_duration, parse_time};

/// Settings of `--model prophet` (Prophet's names and defaults).
#[derive(Debug, Args, Default)]
pub struct ProphetArgs {
    /// Prophet's trend: `linear`, `logistic` (needs --cap) or `flat`.
    #[arg(long, value_name = "GROWTH", value_parser = ["linear", "logistic", "flat"])]
    growth: Option<String>,

    /// Prophet's capacity for logistic growth, in the metric's units.
    #[arg(long, value_name = "VALUE")]
    cap: Option<f64>,

    /// Prophet's seasonality mode: `additive` or `multiplicative`.
    #[arg(long, value_name = "MODE", value_parser = ["additive", "multiplicative"])]
    seasonality_mode: Option<String>,

    /// Prophet's number of potential changepoints [default: 25].
    #[arg(long, value_name = "N")]
    changepoints: Option<u32>,

    /// Prophet's changepoint prior scale τ [default: 0.05].
    #[arg(long, value_name = "TAU")]
    changepoint_prior_scale: Option<f64>,

    /// Prophet's seasonality prior scale [default: 10].
    #[arg(long, value_name = "SCALE")]
    seasonality_prior_scale: Option<f64>,

    /// A custom Prophet seasonality `NAME:PERIOD:ORDER`, e.g. `hourly:1h:3` (repeatable).
    #[arg(long, value_name = "NAME:PERIOD:ORDER")]
    add_seasonality: Vec<String>,

    /// Holidays and events for Prophet: a CSV with columns `name,start[,end]` (RFC 3339 or
    /// unix seconds; an occurrence without an end lasts one day).
    #[arg(long, value_name = "PATH")]
    events: Option<PathBuf>,

    /// Simulated paths for Prophet's intervals [default: 1000].
    #[arg(long, value_name = "N")]
    samples: Option<usize>,

    /// Seed of Prophet's interval simulation [default: 0].
    #[arg(long, value_name = "N")]
    seed: Option<u64>,
}

impl ProphetArgs {
    /// True when any Prophet flag was given.
    pub fn any(&self) -> bool {
        self.growth.is_some()
            || self.cap.is_some()
            || self.seasonality_mode.is_some()
            || self.changepoints.is_some()
            || self.changepoint_prior_scale.is_some()
            || self.seasonality_prior_scale.is_some()
            || !self.add_seasonality.is_empty()
            || self.events.is_some()
            || self.samples.is_some()
            || self.seed.is_some()
    }

    /// Prophet's settings from the flags; every problem is reported at once.
    pub fn settings(&self) -> anyhow::Result<Settings> {
        let mut s = Settings::default();
        let mut problems = Vec::new();
        match (self.growth.as_deref(), self.cap) {
            (Some("logistic"), Some(cap)) => s.growth = Growth::Logistic { cap },
            (Some("logistic"), None) => problems.push("--growth logistic needs --cap".to_string()),
            (_, Some(_)) => problems.push("--cap is for --growth logistic".to_string()),
            (Some("flat"), None) => s.growth = Growth::Flat,
            _ => {}
        }
        if self.seasonality_mode.as_deref() == Some("multiplicative") {
            s.mode = Mode::Multiplicative;
        }
        if let Some(n) = self.changepoints {
            s.changepoints = n;
        }
        for (flag, value, target) in [
            (
                "--changepoint-prior-scale",
                self.changepoint_prior_scale,
                &mut s.changepoint_prior_scale,
            ),
            (
                "--seasonality-prior-scale",
                self.seasonality_prior_scale,
                &mut s.seasonality_prior_scale,
            ),
        ] {
            match value {
                Some(v) if v.is_finite() && v > 0.0 => *target = v,
                Some(v) => problems.push(format!("{flag} must be a positive number, got {v}")),
                None => {}
            }
        }
        for spec in &self.add_seasonality {
            match parse_seasonality(spec) {
                Ok(c) => s.seasonalities.push(c),
                Err(e) => problems.push(format!("--add-seasonality {spec:?}: {e:#}")),
            }
        }
        if let Some(path) = &self.events {
            match read_events(path) {
                Ok(events) => s.events = events,
                Err(e) => problems.push(format!("--events {}: {e:#}", path.display())),
            }
        }
        if let Some(n) = self.samples {
            s.samples = n;
        }
        if let Some(seed) = self.seed {
            s.seed = seed;
        }
        if !problems.is_empty() {
            bail!("{}", problems.join("; "));
        }
        Ok(s)
    }
}

/// Parses `NAME:PERIOD:ORDER`, e.g. `hourly:1h:3`.
fn parse_seasonality(spec: &str) -> anyhow::Result<CustomSeasonality> {
    let parts: Vec<&str> = spec.split(':').collect();
    let [name, period, order] = parts[..] else {
        bail!("expected NAME:PERIOD:ORDER, e.g. hourly:1h:3");
    };
    if name.is_empty() {
        bail!("the name is empty");
    }
    let period = parse_duration(period)?.as_secs_f64();
    if period <= 0.0 {
        bail!("the period must be positive");
    }
    let order: u32 =
        order.parse().ok().filter(|o| *o > 0).with_context(|| {
            format!("the Fourier order {order:?} is not a positive whole number")
        })?;
    Ok(CustomSeasonality {
        name: name.to_string(),
        period_seconds: period,
        fourier_order: order,
    })
}

/// Reads an events CSV: `name,start[,end]`, grouped by name in order of appearance.
fn read_events(path: &Path) -> anyhow::Result<Vec<Event>> {
    const DAY: Millis = 86_400_000;
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .from_path(path)
        .context("cannot read the file")?;
    let mut events: Vec<Event> = Vec::new();
    for (line, record) in reader.records().enumerate() {
        let record = record.with_context(|| format!("row {}", line + 2))?;
        let field = |i: usize| record.get(i).map(str::trim).filter(|f| !f.is_empty());
        let at = |what| format!("row {}: {what}", line + 2);
        let name = field(0).with_context(|| at("no name"))?;
        let start = parse_time(field(1).with_context(|| at("no start"))?)
            .with_context(|| at("bad start"))?;
        let end = match field(2) {
            Some(end) => parse_time(end).with_context(|| at("bad end"))?,
            None => start + DAY,
        };
        if end <= start {
            bail!(at("the end is not after the start"));
        }
        match events.iter_mut().find(|e| e.name == name) {
            Some(e) => e.occurrences.push((start, end)),
            None => events.push(Event {
                name: name.to_string(),
                occurrences: vec![(start, end)],
            }),
        }
    }
    if events.is_empty() {
        bail!("no events in the file");
    }
    Ok(events)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seasonality_specs_parse_or_explain() {
        let s = parse_seasonality("hourly:1h:3").unwrap();
        assert_eq!((s.period_seconds, s.fourier_order), (3600.0, 3));
        for bad in ["hourly:1h", ":1h:3", "x:soon:3", "x:1h:0", "x:0s:2"] {
            assert!(parse_seasonality(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn events_group_by_name_and_default_to_one_day() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.csv");
        std::fs::write(
            &path,
            "name,start,end\nsale,2024-11-29T00:00:00Z,\nsale,2025-11-28T00:00:00Z,2025-11-30T00:00:00Z\nlaunch,1700000000,\n",
        )
        .unwrap();
        let events = read_events(&path).unwrap();
        assert_eq!(events.len(), 2);
        assert_eq!(events[0].occurrences.len(), 2);
        let (start, end) = events[0].occurrences[0];
        assert_eq!(end - start, 86_400_000);
        assert_eq!(events[1].occurrences[0].0, 1_700_000_000_000);
        std::fs::write(&path, "name,start\nsale,yesterday\n").unwrap();
        assert!(read_events(&path).is_err());
    }

    #[test]
    fn every_problem_is_reported() {
        let args = ProphetArgs {
            growth: Some("logistic".into()),
            changepoint_prior_scale: Some(-1.0),
            add_seasonality: vec!["bad".into()],
            ..ProphetArgs::default()
        };
        let message = args.settings().unwrap_err().to_string();
        for part in ["--cap", "--changepoint-prior-scale", "--add-seasonality"] {
            assert!(message.contains(part), "{message}");
        }
    }
}
