//! A replay's settings as people give them, in time units (`refit every 1h on 14d of history`),
//! turned into the steps of one trace: the one way `simulate`, `report` and `demo` build
//! [`ReplaySettings`].

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::model::season;
use crate::series::Series;

use super::behavior::{Behavior, Seconds};
use super::hpa::DEFAULT_TOLERANCE;
use super::policy::PolicySettings;
use super::replay::{auto_capacity, ReplaySettings};

/// Load one replica serves at its target: a number, or derived from the trace.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Capacity {
    /// The trace's 95th percentile over 10 (about ten pods when busy): a scale for traces whose
    /// units say nothing about pods ([`auto_capacity`]).
    Auto,
    /// This much per replica, in the trace's units.
    PerReplica(f64),
}

impl Capacity {
    /// The capacity for `trace`.
    pub fn for_trace(self, trace: &Series) -> f64 {
        match self {
            Self::Auto => auto_capacity(trace),
            Self::PerReplica(c) => c,
        }
    }
}

impl std::str::FromStr for Capacity {
    type Err = String;

    /// `auto` or a number; range checks are the replay's, so they are listed with the others.
    fn from_str(text: &str) -> Result<Self, String> {
        if text == "auto" {
            return Ok(Self::Auto);
        }
        text.parse()
            .map(Self::PerReplica)
            .map_err(|_| format!("{text:?} is neither a number nor auto"))
    }
}

impl std::fmt::Display for Capacity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Auto => f.write_str("auto"),
            Self::PerReplica(c) => write!(f, "{c}"),
        }
    }
}

impl Serialize for Capacity {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Auto => s.serialize_str("auto"),
            Self::PerReplica(c) => s.serialize_f64(*c),
        }
    }
}

impl<'de> Deserialize<'de> for Capacity {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Form {
            Number(f64),
            Text(String),
        }
        match Form::deserialize(d)? {
            Form::Number(c) => Ok(Self::PerReplica(c)),
            Form::Text(t) => t.parse().map_err(serde::de::Error::custom),
        }
    }
}

/// Which part of the trace is scored; the part before it is the first fit's history.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scored {
    /// Everything after a warm-up of this long; `None`: the history window, or half the
    /// trace if that is shorter.
    AfterWarmup(Option<Duration>),
    /// The last this long of the trace, but never more than its second half.
    Last(Duration),
}

/// A replay's settings in time units, before they meet a trace.
#[derive(Debug, Clone, PartialEq)]
pub struct ReplayConfig {
    /// Load one replica serves at its target.
    pub capacity: Capacity,
    /// Quantile, start-up, bounds.
    pub policy: PolicySettings,
    /// The HPA's `behavior`; `None`: no `behavior` block (the controller's legacy path).
    pub behavior: Option<Behavior>,
    /// The HPA's tolerance.
    pub tolerance: f64,
    /// The HPA's sync period (whole seconds, at least one).
    pub sync: Duration,
    /// How often the model is refitted.
    pub refit_every: Duration,
    /// How much recent history each fit sees.
    pub history: Duration,
    /// Which part of the trace is scored.
    pub scored: Scored,
    /// Seasonal periods for the model, in steps; `None`: detected on the warm-up.
    pub seasons: Option<Vec<usize>>,
    /// Calibrated headroom (the quantile of the forecast's own recent misses) rather than the
    /// model's interval.
    pub calibrate: bool,
    /// How much recent history of misses calibrates the headroom.
    pub calibration_window: Duration,
}

impl Default for ReplayConfig {
    /// `prescale simulate`'s defaults: p90, no start-up, 1 to 10,000 replicas, an HPA with no
    /// `behavior` block (as most are written), the default tolerance and 15 s sync; refits every hour on 14 days of history;
    /// headroom calibrated on 7 days of misses.
    fn default() -> Self {
        Self {
            capacity: Capacity::Auto,
            policy: PolicySettings {
                quantile: 0.9,
                startup: 0,
                min_replicas: 1,
                max_replicas: 10_000,
            },
            behavior: None,
            tolerance: DEFAULT_TOLERANCE,
            sync: Duration::from_secs(15),
            refit_every: Duration::from_secs(3600),
            history: Duration::from_secs(14 * 86_400),
            scored: Scored::AfterWarmup(None),
            seasons: None,
            calibrate: true,
            calibration_window: Duration::from_secs(7 * 86_400),
        }
    }
}

impl ReplayConfig {
    /// These settings in `trace`'s steps (durations rounded to whole steps, at least one).
    pub fn for_trace(&self, trace: &Series) -> ReplaySettings {
        let step_ms = trace.step().max(1) as f64;
        let steps = |d: Duration| (d.as_millis() as f64 / step_ms).round() as usize;
        let history = steps(self.history).max(1);
        let n = trace.len();
        let warmup = match self.scored {
            Scored::AfterWarmup(Some(w)) => steps(w),
            Scored::AfterWarmup(None) => history.min(n / 2),
            Scored::Last(d) => n.saturating_sub(steps(d)).max(n / 2),
        }
        .max(1);
        let seasons = match &self.seasons {
            Some(s) => s.clone(),
            None => season::detect_for(&trace.slice(0..warmup.min(n))).1,
        };
        ReplaySettings {
            capacity: self.capacity.for_trace(trace),
            policy: self.policy.clone(),
            behavior: self.behavior.clone(),
            tolerance: self.tolerance,
            sync: self.sync.as_secs().max(1) as Seconds,
            refit_every: steps(self.refit_every).max(1),
            history,
            warmup,
            seasons,
            calibrate: self.calibrate,
            calibration_window: steps(self.calibration_window).max(1),
            reactive_utilisation: 1.0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::series::Labels;

    fn five_minutes(days: usize) -> Series {
        let values = (0..288 * days).map(|k| (k % 288) as f64 + 10.0).collect();
        Series::new(Labels::named("load"), 0, 300_000, values).unwrap()
    }

    #[test]
    fn durations_become_whole_steps_of_the_trace() {
        let trace = five_minutes(30);
        let s = ReplayConfig {
            seasons: Some(vec![288]),
            ..ReplayConfig::default()
        }
        .for_trace(&trace);
        assert_eq!(
            (s.refit_every, s.history, s.warmup),
            (12, 288 * 14, 288 * 14)
        );
        assert_eq!((s.sync, s.calibration_window), (15, 288 * 7));
        assert_eq!(s.seasons, [288]);
        // A history longer than half the trace warms up on half of it.
        let short = five_minutes(10);
        assert_eq!(ReplayConfig::default().for_trace(&short).warmup, 288 * 5);
        // The last 7 days of 30 are scored; of 10 days, never more than the second half.
        let last = ReplayConfig {
            scored: Scored::Last(Duration::from_secs(7 * 86_400)),
            ..ReplayConfig::default()
        };
        assert_eq!(last.for_trace(&trace).warmup, 288 * 23);
        assert_eq!(last.for_trace(&short).warmup, 288 * 5);
    }

    #[test]
    fn capacity_reads_auto_or_a_number() {
        assert_eq!("auto".parse::<Capacity>(), Ok(Capacity::Auto));
        assert_eq!("12.5".parse::<Capacity>(), Ok(Capacity::PerReplica(12.5)));
        assert!("lots".parse::<Capacity>().is_err());
        let c: Capacity = serde_json::from_str("40").unwrap();
        assert_eq!(c, Capacity::PerReplica(40.0));
        let c: Capacity = serde_json::from_str("\"auto\"").unwrap();
        assert_eq!(c, Capacity::Auto);
    }
}
