//! Replaying a real load trace against scaling policies, step by step.
//!
//! The trace's value at step `k` is the load during `(t_{k−1}, t_k]` (the causal convention
//! of [`crate::series`]). Inside that interval the HPA syncs every `sync` seconds (15 s by
//! default; once per step when the trace step is shorter) and sees the latest *completed*
//! value, `y_{k−1}`: no policy ever reads the load it is about to serve.
//!
//! - **reactive**: the Kubernetes HPA on the observed load ([`ReactiveHpa`]: tolerance,
//!   `ceil(load / capacity)`, the `behavior` stabilization and rate limits).
//! - **predictive**: the same HPA reading prescale's External metric: the model is refitted
//!   every `refit_every` steps on the history seen so far (never beyond `t_{k−1}`), and the
//!   plan of [`super::policy`] at `t_{k−1}` (looking one sync period beyond the start-up, the
//!   HPA's own delay) sets the metric, served with
//!   [`external_value_for`](super::policy::external_value_for) so the HPA's tolerance cannot
//!   hold it a pod short. When a fit or a plan fails the step falls back to
//!   the observed load (reactive) and is counted.
//! - **hybrid**: one HPA with both metrics, the larger proposal winning (Crane's EHPA).
//!
//! Pods become ready `startup` seconds after they are asked for; scaling down removes
//! not-yet-ready pods first (the ReplicaSet controller's order). A step is under-provisioned
//! when its load exceeds the capacity of the pods that were ready throughout it.

use rayon::prelude::*;
use tracing::field::Empty;

use serde::{Deserialize, Serialize};

use crate::forecast::{level_for_quantile, Forecast};
use crate::human::chain;
use crate::model::{Model, ModelError};
use crate::series::{format_millis, Series};

use super::behavior::{Behavior, Seconds};
use super::hpa::ReactiveHpa;
use super::planner::{leads, serve_value, MetricPlanner, SyncSettings};
use super::policy::{MetricTarget, PolicySettings};
use super::refit::refit;

/// The scaling strategies a replay can run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Strategy {
    /// The HPA on the observed load.
    Reactive,
    /// The HPA on prescale's forecast.
    Predictive,
    /// The HPA on both, the larger winning.
    Hybrid,
}

impl Strategy {
    /// Every strategy, in table order.
    pub const ALL: [Strategy; 3] = [Self::Reactive, Self::Predictive, Self::Hybrid];

    /// The name used in tables.
    pub fn name(self) -> &'static str {
        match self {
            Self::Reactive => "reactive",
            Self::Predictive => "predictive",
            Self::Hybrid => "hybrid",
        }
    }
}

impl std::str::FromStr for Strategy {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        Self::ALL
            .into_iter()
            .find(|p| p.name() == s)
            .ok_or_else(|| format!("unknown strategy {s:?}; use reactive, predictive or hybrid"))
    }
}

/// Everything a replay needs besides the trace and the model.
#[derive(Debug, Clone)]
pub struct ReplaySettings {
    /// Load one replica serves at its target (the HPA's `AverageValue`).
    pub capacity: f64,
    /// Quantile, start-up, bounds.
    pub policy: PolicySettings,
    /// The HPA's `behavior`; `None`: the HPA has no `behavior` block and the controller takes
    /// its legacy path (see [`super::behavior`]).
    pub behavior: Option<Behavior>,
    /// The HPA's tolerance.
    pub tolerance: f64,
    /// Seconds between HPA syncs.
    pub sync: Seconds,
    /// Steps between refits of the model.
    pub refit_every: usize,
    /// Steps of history each fit sees (the most recent ones).
    pub history: usize,
    /// Steps before the first scored step (history for the first fit).
    pub warmup: usize,
    /// Seasonal periods for the model, in steps.
    pub seasons: Vec<usize>,
    /// Provision the quantile of the forecast's own recent errors (see `Calibration`)
    /// rather than the model's interval.
    pub calibrate: bool,
    /// How many recent errors calibrate the headroom.
    pub calibration_window: usize,
    /// The reactive HPA's `AverageValue` target as a fraction of `capacity` (1: a pod is
    /// asked to run at its full capacity). SREs set 0.5–0.8 to keep headroom; shortfall is
    /// still measured against the full capacity. Only the reactive strategy reads it: the
    /// predictive plan provisions its quantile for the full capacity.
    pub reactive_utilisation: f64,
}

/// Why a replay cannot run.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    /// Settings that cannot replay.
    #[error("invalid replay settings: {0}")]
    Invalid(String),
    /// The trace is too short for the warm-up.
    #[error("the trace has {got} steps; the warm-up needs {warmup} plus at least one to replay")]
    TooShort {
        /// Warm-up steps.
        warmup: usize,
        /// Trace steps.
        got: usize,
    },
}

/// The figures of one policy over the scored steps.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// Which policy.
    pub policy: Strategy,
    /// The quantile it provisioned for (predictive and hybrid).
    pub quantile: f64,
    /// Percent of scored steps whose load exceeded the ready capacity.
    pub underprovisioned_pct: f64,
    /// Load the ready capacity could not serve, percent of all load: Σ max(0, load − ready ×
    /// capacity) / Σ load. A step one request short counts for one request, not a whole step.
    pub unserved_pct: f64,
    /// Minutes of the under-provisioned steps (the time the SLO was violated).
    pub slo_violation_minutes: f64,
    /// Replica-hours paid for (ready or starting).
    pub replica_hours: f64,
    /// Most replicas at once.
    pub peak_replicas: i64,
    /// Syncs that changed the replica count.
    pub scaling_events: usize,
    /// Scaling events per day of replay.
    pub events_per_day: f64,
    /// Idle ready capacity, percent of ready capacity.
    pub waste_pct: f64,
    /// Load served, percent of the capacity paid for.
    pub utilisation_pct: f64,
    /// MASE of the load forecast the policy acted on (the last observed value for reactive),
    /// scaled by the seasonal naive error of the warm-up history.
    pub mase: f64,
    /// Steps where the forecast failed and the policy fell back to the observed load.
    pub forecast_fallbacks: usize,
    /// Steps scored.
    pub steps: usize,
}

/// One scored step: the load and, per policy (in the order asked), the ready and total pods.
#[derive(Debug, Clone, PartialEq)]
pub struct StepRecord {
    /// End of the step, ms.
    pub time: i64,
    /// The load during the step.
    pub load: f64,
    /// Pods ready throughout the step, per policy.
    pub ready: Vec<i64>,
    /// Pods at the end of the step (ready or starting), per policy.
    pub replicas: Vec<i64>,
    /// The replicas the plan wanted at the step's first HPA sync, per policy (`None` for the
    /// reactive HPA and where the forecast fell back): what `serve` decides from the same
    /// history.
    pub planned: Vec<Option<i64>>,
}

/// A finished replay.
#[derive(Debug, Clone)]
pub struct Replay {
    /// One outcome per policy asked for.
    pub outcomes: Vec<Outcome>,
    /// The step-by-step record.
    pub steps: Vec<StepRecord>,
}

/// The model's forecasts along the trace, one per refit, made once and shared by every
/// policy (and by the what-if runs of other quantiles).
#[derive(Debug)]
pub struct Forecasts {
    first_origin: usize,
    every: usize,
    /// Per refit: the forecast and the lag-one autocorrelation of the fit's errors, or why
    /// the fit failed.
    fits: Vec<Result<(Forecast, f64), ModelError>>,
}

impl Forecasts {
    /// Refits `model` every `settings.refit_every` steps from the end of the warm-up, each
    /// time on the `settings.history` steps up to the origin, forecasting far enough to
    /// cover the next refit plus the start-up, with the intervals for `quantiles`. Fits are
    /// independent, so they run in parallel.
    pub fn make(
        trace: &Series,
        model: &dyn Model,
        settings: &ReplaySettings,
        quantiles: &[f64],
    ) -> Self {
        let horizon = Self::horizon(trace, settings);
        let levels = levels_for(quantiles);
        // Each refit is a child of the caller's span (the command's), on whichever thread.
        let parent = tracing::Span::current();
        let fits = Self::origins(trace, settings)
            .par_iter()
            .map(|&r| {
                let from = (r + 1).saturating_sub(settings.history);
                let history = trace.slice(from..r + 1);
                let span = tracing::info_span!(
                    parent: &parent,
                    "fit",
                    model = model.name(),
                    fitted = Empty,
                    fallback = Empty,
                    series_length = history.len() as i64,
                    seasons = ?settings.seasons,
                    origin = %format_millis(trace.timestamp(r)),
                    error = Empty,
                );
                let made = refit(model, &history, &settings.seasons, horizon, &levels, &span)
                    .map(|made| (made.forecast, made.rho));
                if let Err(e) = &made {
                    tracing::warn!(
                        model = model.name(),
                        origin = %format_millis(trace.timestamp(r)),
                        reason = %chain(e),
                        "refit failed; the replay falls back to the observed load until the next refit"
                    );
                }
                made
            })
            .collect();
        Self {
            first_origin: settings.warmup.saturating_sub(1),
            every: settings.refit_every.max(1),
            fits,
        }
    }

    /// Reference forecasts that know each step's local level but not its own noise: the value
    /// for step `j` is the mean of the observed steps within [`RATE_ORACLE_HALF_WIDTH`] of it
    /// on either side, itself left out. They read the future, so they are no policy: replayed
    /// as predictive, they show how much shortfall is left when the level is known and only
    /// each step's own noise is not. They are a reference, not a strict bound: a model that
    /// follows a burst from its newest observation can beat a four-step mean. Their intervals
    /// have zero width: the replay's calibrated headroom (the quantile of their own recent
    /// misses) supplies the spread.
    pub fn knowing_the_rate(trace: &Series, settings: &ReplaySettings, quantiles: &[f64]) -> Self {
        let y = trace.values();
        let rate: Vec<f64> = (0..y.len())
            .map(|j| {
                let from = j.saturating_sub(RATE_ORACLE_HALF_WIDTH);
                let to = (j + RATE_ORACLE_HALF_WIDTH + 1).min(y.len());
                let (sum, n) = (from..to)
                    .filter(|&i| i != j && y[i].is_finite())
                    .fold((0.0, 0usize), |(s, n), i| (s + y[i], n + 1));
                if n > 0 {
                    sum / n as f64
                } else {
                    f64::NAN
                }
            })
            .collect();
        let levels = levels_for(quantiles);
        let horizon = Self::horizon(trace, settings);
        let fits = Self::origins(trace, settings)
            .into_iter()
            .map(|r| {
                let mean: Vec<f64> = (r + 1..r + 1 + horizon)
                    .map(|j| rate.get(j).copied().unwrap_or(f64::NAN))
                    .collect();
                let f = known_path(trace, r, mean, &levels);
                // No anchoring to the last observation: the level is already known.
                if f.mean.first().is_some_and(|v| v.is_finite()) {
                    Ok((f, 0.0))
                } else {
                    Err(ModelError::failed(
                        "rate-oracle",
                        "no observed neighbour to take the level from",
                    ))
                }
            })
            .collect();
        Self {
            first_origin: settings.warmup.saturating_sub(1),
            every: settings.refit_every.max(1),
            fits,
        }
    }

    /// Forecasts that are the future itself: from every refit origin, the trace's own next
    /// values, with zero-width intervals at every level. A replay fed them shows what the HPA's
    /// mechanics (start-up, sync delay, tolerance, rate limits, stabilization) cost a policy that
    /// knows everything: the far end of every frontier. Beyond the trace's end, and over a
    /// missing value, the last known value stands in (nothing there is scored).
    pub fn the_future(trace: &Series, settings: &ReplaySettings, quantiles: &[f64]) -> Self {
        let y = trace.values();
        let levels = levels_for(quantiles);
        let horizon = Self::horizon(trace, settings);
        let fits = Self::origins(trace, settings)
            .into_iter()
            .map(|r| {
                let mut last = y[r];
                let mean: Vec<f64> = (r + 1..r + 1 + horizon)
                    .map(|j| {
                        if let Some(v) = y.get(j).copied().filter(|v| v.is_finite()) {
                            last = v;
                        }
                        last
                    })
                    .collect();
                if !mean.iter().all(|v| v.is_finite()) {
                    return Err(ModelError::failed(
                        "the future",
                        "no observed value to start from",
                    ));
                }
                let f = known_path(trace, r, mean, &levels);
                // Nothing to anchor: the values are already the truth.
                Ok((f, 0.0))
            })
            .collect();
        Self {
            first_origin: settings.warmup.saturating_sub(1),
            every: settings.refit_every.max(1),
            fits,
        }
    }

    /// The steps forecasts are made at: every `refit_every` from the end of the warm-up, up to
    /// the second-last step; none when the trace is too short for any.
    fn origins(trace: &Series, settings: &ReplaySettings) -> Vec<usize> {
        let first = settings.warmup.saturating_sub(1);
        (first..trace.len().saturating_sub(1))
            .step_by(settings.refit_every.max(1))
            .collect()
    }

    /// Steps each forecast covers: to the next refit plus the start-up.
    fn horizon(trace: &Series, settings: &ReplaySettings) -> usize {
        let step_s = (trace.step() / 1000).max(1);
        let lead_steps = (settings.policy.startup / step_s) as usize + 1;
        settings.refit_every + lead_steps + 1
    }

    /// No forecasts: every predictive step falls back to the observed load (for replays of
    /// the reactive policy alone).
    pub fn none() -> Self {
        Self {
            first_origin: 0,
            every: 1,
            fits: vec![],
        }
    }

    /// The forecast in effect when deciding for step `k` (made at or before `k − 1`).
    fn for_step(&self, k: usize) -> Option<&(Forecast, f64)> {
        let since = k.checked_sub(1)?.checked_sub(self.first_origin)?;
        self.fits.get(since / self.every)?.as_ref().ok()
    }

    /// Fits that failed.
    pub fn failures(&self) -> usize {
        self.fits.iter().filter(|f| f.is_err()).count()
    }

    /// Why each failed fit failed, in the order of the refits.
    pub fn failure_reasons(&self) -> impl Iterator<Item = &ModelError> {
        self.fits.iter().filter_map(|f| f.as_ref().err())
    }
}

impl ReplaySettings {
    /// Checks that these settings can replay `trace`, listing every problem; call it before
    /// [`Forecasts::make`] to report bad settings before any fit is spent on them.
    pub fn validate(&self, trace: &Series) -> Result<(), ReplayError> {
        let mut problems = vec![];
        if !(self.capacity.is_finite() && self.capacity > 0.0) {
            problems.push(format!(
                "capacity per replica {} must be a positive number",
                self.capacity
            ));
        }
        if let Err(e) = self.policy.validate(&[]) {
            problems.push(e.to_string());
        }
        if self.policy.max_replicas < 1 {
            problems.push("max replicas must be at least 1".into());
        }
        if !(self.tolerance.is_finite() && (0.0..1.0).contains(&self.tolerance)) {
            problems.push(format!("tolerance {} must be in [0, 1)", self.tolerance));
        }
        if !(self.reactive_utilisation.is_finite() && self.reactive_utilisation > 0.0) {
            problems.push(format!(
                "the reactive HPA's target utilisation {} must be a positive number",
                self.reactive_utilisation
            ));
        }
        if self.sync <= 0 {
            problems.push(format!("sync period {} s must be positive", self.sync));
        }
        if self.refit_every == 0 {
            problems.push("refit interval must be at least one step".into());
        }
        if self.warmup == 0 || self.history == 0 {
            problems.push("warm-up and history must be at least one step".into());
        }
        if trace.step() < 1000 || trace.step() % 1000 != 0 {
            problems.push(format!(
                "the trace step ({} ms) must be a whole number of seconds",
                trace.step()
            ));
        }
        if !problems.is_empty() {
            return Err(ReplayError::Invalid(problems.join("; ")));
        }
        if trace.len() <= self.warmup {
            return Err(ReplayError::TooShort {
                warmup: self.warmup,
                got: trace.len(),
            });
        }
        Ok(())
    }
}

/// Replays `trace` under each of `policies`, forecasting with `model` where needed.
pub fn replay(
    trace: &Series,
    model: &dyn Model,
    settings: &ReplaySettings,
    policies: &[Strategy],
) -> Result<Replay, ReplayError> {
    settings.validate(trace)?;
    let forecasts = Forecasts::make(trace, model, settings, &[settings.policy.quantile]);
    replay_with(trace, &forecasts, settings, policies)
}

/// Replays with forecasts already made (their levels must include the settings' quantile).
pub fn replay_with(
    trace: &Series,
    forecasts: &Forecasts,
    settings: &ReplaySettings,
    policies: &[Strategy],
) -> Result<Replay, ReplayError> {
    settings.validate(trace)?;
    let runs: Vec<(Outcome, Vec<StepPath>)> = policies
        .iter()
        .map(|&p| run(trace, forecasts, settings, p))
        .collect();
    let y = trace.values();
    let steps = (settings.warmup..trace.len())
        .enumerate()
        .map(|(i, k)| StepRecord {
            time: trace.timestamp(k),
            load: y[k],
            ready: runs.iter().map(|(_, path)| path[i].0).collect(),
            replicas: runs.iter().map(|(_, path)| path[i].1).collect(),
            planned: runs.iter().map(|(_, path)| path[i].2).collect(),
        })
        .collect();
    Ok(Replay {
        outcomes: runs.into_iter().map(|(o, _)| o).collect(),
        steps,
    })
}

/// How many steps on each side of a step the reference of [`Forecasts::knowing_the_rate`]
/// averages: two, so four neighbours estimate the level.
pub const RATE_ORACLE_HALF_WIDTH: usize = 2;

/// The central interval levels that give `quantiles`, sorted and without repeats.
fn levels_for(quantiles: &[f64]) -> Vec<f64> {
    let mut levels: Vec<f64> = quantiles
        .iter()
        .filter_map(|&q| level_for_quantile(q))
        .filter(|&l| l > 0.0)
        .collect();
    levels.sort_by(f64::total_cmp);
    levels.dedup();
    levels
}

/// A capacity per pod that gives about ten pods at the trace's 95th percentile: a scale for
/// replaying traces whose units say nothing about pods.
pub fn auto_capacity(trace: &Series) -> f64 {
    let mut v: Vec<f64> = trace
        .values()
        .iter()
        .copied()
        .filter(|x| x.is_finite())
        .collect();
    v.sort_by(f64::total_cmp);
    let p95 = v.get(v.len() * 95 / 100).copied().unwrap_or(1.0);
    if p95 > 0.0 {
        p95 / 10.0
    } else {
        1.0
    }
}

/// Pods of one workload, each with the time it becomes ready.
struct Pods {
    ready_at: Vec<Seconds>,
}

impl Pods {
    fn count(&self) -> i64 {
        self.ready_at.len() as i64
    }

    fn ready(&self, now: Seconds) -> i64 {
        self.ready_at.iter().filter(|&&t| t <= now).count() as i64
    }

    fn scale_to(&mut self, target: i64, now: Seconds, startup: Seconds) {
        let target = target.max(0) as usize;
        if target > self.ready_at.len() {
            self.ready_at.resize(target, now + startup);
        } else {
            // Latest-ready first: starting pods go before serving ones.
            self.ready_at.sort_unstable();
            self.ready_at.truncate(target);
        }
    }
}

/// Per scored step: (ready, total) pods and the replicas planned at its first sync.
type StepPath = (i64, i64, Option<i64>);

/// The simulation of one policy: its outcome, and its [`StepPath`] per scored step.
fn run(
    trace: &Series,
    forecasts: &Forecasts,
    settings: &ReplaySettings,
    kind: Strategy,
) -> (Outcome, Vec<StepPath>) {
    let y = trace.values();
    let step_s = trace.step() / 1000;
    // Syncs split each step evenly (a 20 s step with 15 s syncs gets two of 10 s), so every
    // second of the step is counted once.
    let syncs_per_step = (step_s + settings.sync - 1) / settings.sync.max(1);
    let sync = (step_s + syncs_per_step - 1) / syncs_per_step;
    let sync_time = |step_start: Seconds, j: Seconds| step_start + j * step_s / syncs_per_step;
    let p = &settings.policy;
    let target = [MetricTarget::capacity("load", settings.capacity)];
    // Only the reactive HPA runs below full capacity: the forecast's External metric is
    // served for a target of the full capacity (the plan holds the headroom).
    let hpa_target = match kind {
        Strategy::Reactive => settings.capacity * settings.reactive_utilisation,
        _ => settings.capacity,
    };
    let mut hpa = ReactiveHpa::new(
        hpa_target,
        p.min_replicas,
        p.max_replicas,
        settings.behavior.clone(),
    )
    .with_tolerance(settings.tolerance);
    let start = settings.warmup;
    let initial = if y[start - 1].is_finite() {
        (y[start - 1].max(0.0) / hpa_target).ceil() as i64
    } else {
        p.min_replicas
    };
    let mut pods = Pods {
        ready_at: vec![Seconds::MIN; initial.clamp(p.min_replicas, p.max_replicas) as usize],
    };
    let (mut under, mut scored, mut events, mut fallbacks) = (0usize, 0usize, 0usize, 0usize);
    let (mut replica_seconds, mut peak) = (0.0, pods.count());
    let (mut idle, mut ready_capacity, mut served, mut paid) = (0.0, 0.0, 0.0, 0.0);
    let (mut unserved, mut total_load) = (0.0, 0.0);
    let (mut abs_error, mut errors) = (0.0, 0usize);
    let at_sync = SyncSettings {
        policy: p,
        sync,
        capacity: settings.capacity,
        tolerance: settings.tolerance,
    };
    let lead_steps = leads(p.startup, sync, step_s);
    // Every decision is made within the step under way and looks `lead_steps` ahead of it.
    let mut planner = MetricPlanner::new(
        p.quantile,
        settings.calibrate,
        settings.calibration_window,
        lead_steps,
    )
    .keeping(lead_steps);
    let mut path = Vec::with_capacity(trace.len() - start);
    for k in start..trace.len() {
        let observed = y[k - 1];
        let step_start = trace.timestamp(k - 1) / 1000;
        // The forecast for this step, following the newest observation between refits, with
        // the load it expects (for the accuracy score; the reactive HPA expects the last).
        let prepared = match kind {
            Strategy::Reactive => None,
            _ => planner.prepare(
                forecasts.for_step(k).map(|(f, rho)| (f, *rho)),
                trace.timestamp(k - 1),
                observed,
            ),
        };
        let mut expected = prepared.as_ref().map_or(observed, |p| p.expected);
        let mut fell_back = kind != Strategy::Reactive && prepared.is_none();
        let mut ready_min = i64::MAX;
        // Pod-seconds paid during this step.
        let mut step_pod_seconds = 0;
        let mut planned = None;
        for j in 1..=syncs_per_step {
            let (since, now) = (sync_time(step_start, j - 1), sync_time(step_start, j));
            // The ready count only grows between syncs, so its low point over the interval
            // since the last sync is at its start, with the pods as that sync left them.
            ready_min = ready_min.min(pods.ready(since));
            step_pod_seconds += pods.count() * (now - since);
            let current = pods.count();
            // The HPA reads the External metric at every sync: the plan is made then.
            let served = prepared.as_ref().and_then(|prepared| {
                serve_value(
                    &at_sync,
                    &target,
                    &[("load", &prepared.forecast)],
                    now * 1000,
                    current,
                )
                .ok()
                .map(|(decision, value)| {
                    if j == 1 {
                        planned = Some(decision.desired);
                    }
                    value
                })
            });
            fell_back |= kind != Strategy::Reactive && served.is_none();
            let next = match (kind, served) {
                (Strategy::Reactive, _) | (_, None) => hpa.sync(now, current, observed),
                (Strategy::Predictive, Some(v)) => hpa.sync(now, current, v),
                (Strategy::Hybrid, Some(v)) => hpa.sync_many(now, current, &[observed, v]),
            };
            if next != current {
                events += 1;
                pods.scale_to(next, now, p.startup);
            }
            peak = peak.max(pods.count());
        }
        replica_seconds += step_pod_seconds as f64;
        if fell_back {
            fallbacks += 1;
            expected = observed;
        }
        let load = y[k];
        if load.is_finite() {
            scored += 1;
            let capacity = ready_min as f64 * settings.capacity;
            if load > capacity * (1.0 + 1e-12) {
                under += 1;
                unserved += load - capacity;
            }
            total_load += load.max(0.0);
            idle += (capacity - load).max(0.0);
            ready_capacity += capacity;
            // The capacity paid for during the step, on average (ready or starting).
            let bought = step_pod_seconds as f64 / step_s as f64 * settings.capacity;
            served += load.min(bought);
            paid += bought;
            if expected.is_finite() {
                abs_error += (load - expected).abs();
                errors += 1;
            }
            if kind != Strategy::Reactive {
                planner.observe(load);
            }
        }
        path.push((ready_min, pods.count(), planned));
    }
    let m = settings.seasons.first().copied().unwrap_or(1).max(1);
    let scale = crate::forecast::metrics::seasonal_scale(&y[..start], m);
    let pct = |a: f64, b: f64| if b > 0.0 { 100.0 * a / b } else { 0.0 };
    let step_minutes = step_s as f64 / 60.0;
    let days = (trace.len() - start) as f64 * step_s as f64 / 86_400.0;
    let outcome = Outcome {
        policy: kind,
        quantile: p.quantile,
        underprovisioned_pct: pct(under as f64, scored as f64),
        unserved_pct: pct(unserved, total_load),
        slo_violation_minutes: under as f64 * step_minutes,
        replica_hours: replica_seconds / 3600.0,
        peak_replicas: peak,
        scaling_events: events,
        events_per_day: if days > 0.0 {
            events as f64 / days
        } else {
            0.0
        },
        waste_pct: pct(idle, ready_capacity),
        utilisation_pct: pct(served, paid),
        mase: if errors > 0 && scale > 0.0 {
            abs_error / errors as f64 / scale
        } else {
            f64::NAN
        },
        forecast_fallbacks: fallbacks,
        steps: scored,
    };
    (outcome, path)
}

/// A forecast from origin `r` that is a known path: `mean`, with zero-width intervals at
/// every level (the references the replay compares policies with know their values).
fn known_path(trace: &Series, r: usize, mean: Vec<f64>, levels: &[f64]) -> Forecast {
    let intervals = levels
        .iter()
        .map(|&level| crate::forecast::Interval {
            level,
            lower: mean.clone(),
            upper: mean.clone(),
        })
        .collect();
    Forecast {
        start: trace.timestamp(r) + trace.step(),
        step: trace.step(),
        mean,
        intervals,
        components: vec![],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::naive::SeasonalNaive;
    use crate::series::Labels;

    /// A daily cycle at 5-minute steps with a morning ramp, 6 days.
    fn trace() -> Series {
        let values = (0..288 * 6)
            .map(|k| {
                let hour = (k % 288) as f64 / 12.0;
                let wobble = ((k * 7919) % 13) as f64;
                200.0 + 800.0 * (-(hour - 14.0).powi(2) / 8.0).exp() + wobble
            })
            .collect();
        Series::new(Labels::named("load"), 0, 300_000, values).unwrap()
    }

    pub(super) fn settings() -> ReplaySettings {
        ReplaySettings {
            capacity: 100.0,
            policy: PolicySettings {
                quantile: 0.9,
                startup: 300,
                min_replicas: 1,
                max_replicas: 100,
            },
            behavior: Some(Behavior::default()),
            tolerance: 0.1,
            sync: 15,
            refit_every: 12,
            history: 288 * 3,
            warmup: 288 * 3,
            seasons: vec![288],
            calibrate: false,
            calibration_window: 2016,
            reactive_utilisation: 1.0,
        }
    }

    #[test]
    fn predictive_scales_ahead_of_a_daily_ramp() {
        let model = SeasonalNaive::seasonal();
        let r = replay(
            &trace(),
            &model,
            &settings(),
            &[Strategy::Reactive, Strategy::Predictive, Strategy::Hybrid],
        )
        .unwrap();
        let [reactive, predictive, hybrid] = &r.outcomes[..] else {
            panic!("three outcomes");
        };
        // The reactive HPA is always one step late on the ramp; the forecast of a repeating
        // day is not.
        assert!(reactive.underprovisioned_pct > 10.0, "{reactive:?}");
        assert!(
            predictive.underprovisioned_pct < reactive.underprovisioned_pct / 4.0,
            "{predictive:?} vs {reactive:?}"
        );
        assert!(hybrid.underprovisioned_pct <= predictive.underprovisioned_pct);
        assert_eq!(predictive.forecast_fallbacks, 0);
        assert_eq!(r.steps.len(), 288 * 3);
        assert!(r.steps.iter().all(|s| s.ready.len() == 3));
        // Seasonal naive forecasts a repeating day better than the last value does.
        assert!(
            predictive.mase < reactive.mase,
            "{predictive:?} {reactive:?}"
        );
    }

    #[test]
    fn a_perfect_forecast_is_never_short() {
        // The mechanics (start-up, sync delay, rate limits, stabilization, tolerance) must not
        // lose what the forecast knows: with the future itself, no step is short. On 5-minute
        // steps with a 5-minute start-up, and on 30-minute steps with a 2-minute one.
        for (step, startup) in [(300_000, 300), (1_800_000, 120)] {
            let t = trace();
            let t = Series::new(Labels::named("load"), 0, step, t.values().to_vec()).unwrap();
            let mut s = settings();
            s.policy.startup = startup;
            let r = replay_with(
                &t,
                &Forecasts::the_future(&t, &s, &[0.9]),
                &s,
                &[Strategy::Reactive, Strategy::Predictive],
            )
            .unwrap();
            assert!(r.outcomes[0].underprovisioned_pct > 5.0);
            assert_eq!(
                r.outcomes[1].underprovisioned_pct, 0.0,
                "{:?}",
                r.outcomes[1]
            );
        }
    }

    #[test]
    fn the_rate_reference_averages_the_neighbours_and_never_the_step_itself() {
        let t = trace();
        let mut values = t.values().to_vec();
        let spike = 288 * 3 + 5;
        values[spike] += 10_000.0;
        let t = Series::new(Labels::named("load"), 0, 300_000, values).unwrap();
        let s = settings();
        let f = Forecasts::knowing_the_rate(&t, &s, &[0.9]);
        let y = t.values();
        let (forecast, rho) = f.for_step(spike).unwrap();
        assert_eq!(*rho, 0.0);
        let at = forecast.position(t.timestamp(spike)).unwrap();
        let neighbours = (y[spike - 2] + y[spike - 1] + y[spike + 1] + y[spike + 2]) / 4.0;
        assert!((forecast.mean[at] - neighbours).abs() < 1e-9);
        // The step after the spike sees it as one of its four neighbours.
        let after = (y[spike - 1] + y[spike] + y[spike + 2] + y[spike + 3]) / 4.0;
        assert!((forecast.mean[at + 1] - after).abs() < 1e-9);
        assert!(forecast.quantile(0.9).is_some());
        // Replayed, knowing the level beats the HPA that is a step behind on the ramp.
        let mut calibrated = s.clone();
        calibrated.calibrate = true;
        let r = replay_with(
            &t,
            &f,
            &calibrated,
            &[Strategy::Reactive, Strategy::Predictive],
        )
        .unwrap();
        assert!(
            r.outcomes[1].underprovisioned_pct < r.outcomes[0].underprovisioned_pct / 4.0,
            "{:?}",
            r.outcomes
        );
    }

    #[test]
    fn calibration_cuts_the_cost_of_wide_model_intervals() {
        // Seasonal naive's intervals grow with the horizon; the misses it actually makes on
        // a repeating day are small, so calibrated p90 needs fewer replica-hours.
        let model = SeasonalNaive::seasonal();
        let mut s = settings();
        let wide = replay(&trace(), &model, &s, &[Strategy::Predictive]).unwrap();
        s.calibrate = true;
        let calibrated = replay(&trace(), &model, &s, &[Strategy::Predictive]).unwrap();
        let (w, c) = (&wide.outcomes[0], &calibrated.outcomes[0]);
        assert!(c.replica_hours < w.replica_hours, "{c:?} vs {w:?}");
        assert!(c.underprovisioned_pct < 15.0, "{c:?}");
    }

    #[test]
    fn decisions_never_depend_on_the_future() {
        let model = SeasonalNaive::seasonal();
        let s = settings();
        let original = trace();
        let cut = 288 * 4 + 100;
        let mut changed = original.values().to_vec();
        for v in &mut changed[cut..] {
            *v *= 3.0;
        }
        let changed = Series::new(Labels::named("load"), 0, 300_000, changed).unwrap();
        let policies = [Strategy::Reactive, Strategy::Predictive, Strategy::Hybrid];
        let a = replay(&original, &model, &s, &policies).unwrap();
        let b = replay(&changed, &model, &s, &policies).unwrap();
        // Steps up to and including `cut` were decided on values before `cut`.
        let same = cut - s.warmup + 1;
        let decisions = |r: &Replay| -> Vec<(Vec<i64>, Vec<i64>)> {
            r.steps
                .iter()
                .map(|s| (s.ready.clone(), s.replicas.clone()))
                .collect()
        };
        let (da, db) = (decisions(&a), decisions(&b));
        assert_eq!(da[..same], db[..same]);
        assert_ne!(da[same..], db[same..]);
    }

    #[test]
    fn bad_settings_and_short_traces_are_errors() {
        let model = SeasonalNaive::seasonal();
        let mut s = settings();
        s.capacity = 0.0;
        s.refit_every = 0;
        s.tolerance = f64::NAN;
        let err = replay(&trace(), &model, &s, &[Strategy::Reactive]).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("capacity") && text.contains("refit") && text.contains("tolerance"),
            "{text}"
        );
        // Forecasts for a trace too short to replay are none, not a panic.
        let one = trace().slice(0..1);
        assert!(Forecasts::make(&one, &model, &settings(), &[0.9])
            .fits
            .is_empty());
        let short = trace().slice(0..100);
        assert!(matches!(
            replay(&short, &model, &settings(), &[Strategy::Reactive]),
            Err(ReplayError::TooShort { .. })
        ));
    }

    #[test]
    fn every_second_is_paid_once_when_syncs_do_not_divide_the_step() {
        // 20 s steps with 15 s syncs: two syncs of 10 s each. A steady load of 1.5 pods keeps
        // two pods, so the bill is exactly two pods for every scored second.
        let t = Series::new(Labels::named("load"), 0, 20_000, vec![150.0; 2000]).unwrap();
        let s = settings();
        let r = replay_with(&t, &Forecasts::none(), &s, &[Strategy::Reactive]).unwrap();
        let o = &r.outcomes[0];
        let scored_seconds = (2000 - s.warmup) as f64 * 20.0;
        assert!(
            (o.replica_hours - 2.0 * scored_seconds / 3600.0).abs() < 1e-9,
            "{o:?}"
        );
        assert_eq!(o.underprovisioned_pct, 0.0);
        assert!((o.utilisation_pct - 75.0).abs() < 1e-9, "{o:?}");
        // A step that is not whole seconds is refused.
        let odd = Series::new(Labels::named("load"), 0, 1_500, vec![150.0; 2000]).unwrap();
        let err = replay_with(&odd, &Forecasts::none(), &s, &[Strategy::Reactive]);
        assert!(matches!(err, Err(ReplayError::Invalid(m)) if m.contains("whole number")));
    }

    #[test]
    fn unserved_load_and_the_hpa_target_are_measured_as_documented() {
        // A steady 150 per 5-minute step with capacity 100 and at most one pod: every step is
        // short by 50 of its 150, so a third of the load is unserved and every minute violates
        // the SLO.
        let t = Series::new(Labels::named("load"), 0, 300_000, vec![150.0; 1000]).unwrap();
        let mut s = settings();
        s.policy.max_replicas = 1;
        let r = replay_with(&t, &Forecasts::none(), &s, &[Strategy::Reactive]).unwrap();
        let o = &r.outcomes[0];
        let scored = (1000 - s.warmup) as f64;
        assert_eq!(o.underprovisioned_pct, 100.0);
        assert!((o.unserved_pct - 100.0 / 3.0).abs() < 1e-9, "{o:?}");
        assert!(
            (o.slo_violation_minutes - scored * 5.0).abs() < 1e-9,
            "{o:?}"
        );
        // At a target of half a pod's capacity the HPA keeps ceil(150 / 50) = 3 pods: nothing
        // is short, and it pays for 3 pods where full capacity needs 2.
        let mut s = settings();
        let full = replay_with(&t, &Forecasts::none(), &s, &[Strategy::Reactive]).unwrap();
        s.reactive_utilisation = 0.5;
        let half = replay_with(&t, &Forecasts::none(), &s, &[Strategy::Reactive]).unwrap();
        let hours = scored * 5.0 / 60.0;
        assert!((full.outcomes[0].replica_hours - 2.0 * hours).abs() < 1e-9);
        assert!((half.outcomes[0].replica_hours - 3.0 * hours).abs() < 1e-9);
        assert_eq!(half.outcomes[0].unserved_pct, 0.0);
        // A target that is not positive is refused with the other settings problems.
        s.reactive_utilisation = -1.0;
        assert!(replay_with(&t, &Forecasts::none(), &s, &[Strategy::Reactive]).is_err());
    }

    #[test]
    fn a_failing_model_falls_back_to_reactive_and_is_counted() {
        // Far too little history for any fit: every predictive step falls back.
        let mut s = settings();
        s.history = 1;
        let model = SeasonalNaive::seasonal();
        let r = replay(
            &trace(),
            &model,
            &s,
            &[Strategy::Reactive, Strategy::Predictive],
        )
        .unwrap();
        assert_eq!(r.outcomes[1].forecast_fallbacks, r.outcomes[1].steps);
        assert_eq!(
            r.outcomes[0].underprovisioned_pct,
            r.outcomes[1].underprovisioned_pct
        );
        // Each failed refit keeps its reason.
        let forecasts = Forecasts::make(&trace(), &model, &s, &[0.9]);
        assert_eq!(forecasts.failure_reasons().count(), forecasts.failures());
        assert!(forecasts
            .failure_reasons()
            .all(|e| matches!(e, ModelError::TooShort { .. })));
    }
}
