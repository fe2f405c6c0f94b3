//! The `prophet` model's flags, turned into [`prophet::Settings`](Settings); the model
//! checks the values (every problem at once) when it is built.

use anyhow::{bail, Context};
use clap::Args;
use std::path::PathBuf;

use crate::model::prophet::{CustomSeasonality, Event, Growth, Mode, Settings};
use crate::source::events;

use super::args::parse_duration;

/// Settings of `--model prophet` (Prophet's names and defaults).
#[derive(Debug, Args, Default)]
pub(super) struct ProphetArgs {
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
    pub(super) fn any(&self) -> bool {
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

    /// Prophet's settings from the flags; every flag that does not parse is reported at once.
    pub(super) fn settings(&self) -> anyhow::Result<Settings> {
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
        if let Some(v) = self.changepoint_prior_scale {
            s.changepoint_prior_scale = v;
        }
        if let Some(v) = self.seasonality_prior_scale {
            s.seasonality_prior_scale = v;
        }
        for spec in &self.add_seasonality {
            match parse_seasonality(spec) {
                Ok(c) => s.seasonalities.push(c),
                Err(e) => problems.push(format!("--add-seasonality {spec:?}: {e:#}")),
            }
        }
        if let Some(path) = &self.events {
            match events::read(path) {
                Ok(read) => {
                    s.events = read
                        .into_iter()
                        .map(|(name, occurrences)| Event { name, occurrences })
                        .collect();
                }
                Err(e) => problems.push(format!("--events: {}", crate::human::chain(&e))),
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
    let period = parse_duration(period)?.as_secs_f64();
    let order: u32 = order
        .parse()
        .with_context(|| format!("the Fourier order {order:?} is not a whole number"))?;
    Ok(CustomSeasonality {
        name: name.to_string(),
        period_seconds: period,
        fourier_order: order,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seasonality_specs_parse_or_explain() {
        let s = parse_seasonality("hourly:1h:3").unwrap();
        assert_eq!((s.period_seconds, s.fourier_order), (3600.0, 3));
        for bad in ["hourly:1h", "x:soon:3", "x:1h:many"] {
            assert!(parse_seasonality(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn every_flag_problem_is_reported() {
        let args = ProphetArgs {
            growth: Some("logistic".into()),
            add_seasonality: vec!["bad".into()],
            ..ProphetArgs::default()
        };
        let message = args.settings().unwrap_err().to_string();
        for part in ["--cap", "--add-seasonality"] {
            assert!(message.contains(part), "{message}");
        }
    }

    #[test]
    fn values_are_checked_by_the_model_when_it_is_built() {
        let args = ProphetArgs {
            changepoint_prior_scale: Some(-1.0),
            add_seasonality: vec!["x:0s:0".into()],
            ..ProphetArgs::default()
        };
        let settings = args.settings().unwrap();
        let err = crate::model::prophet::Prophet::from_settings(settings).unwrap_err();
        let text = err.to_string();
        for part in [
            "changepoint_prior_scale",
            "period must be positive",
            "Fourier order",
        ] {
            assert!(text.contains(part), "{text}");
        }
    }
}
