//! What a report shows for one trace, computed: every model backtested on its last windows,
//! the best one's forecast drawn, and the trace's end replayed under each scaling strategy
//! with the measured headroom advice.

use std::path::Path;
use std::time::Duration;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::eval::backtest::{self, BacktestError, Plan};
use crate::eval::Summary;
use crate::human::thousands;
use crate::model::{self, calendar_periods, season, ModelError, ModelSpec};
use crate::scale::advice::{advise, ADVICE_QUANTILES};
use crate::scale::behavior::Seconds;
use crate::scale::frontier::{self, Curve, Frontier, Point, Sweep};
use crate::scale::policy::PolicySettings;
use crate::scale::replay::{replay_with, Forecasts, ReplayError, Strategy};
use crate::scale::replay_config::{Capacity, ReplayConfig, Scored};
use crate::scale::score::{score, DEFAULT_EVENTS_PER_DAY_LIMIT, FORMULAS};
use crate::series::{format_millis, Series};

use super::chart::{self, ChartError, FrontierCurve};
use super::{render, Page, Section, Table};

/// Interval levels the backtest scores and the forecast figure draws.
const LEVELS: [f64; 2] = [80.0, 95.0];

/// What a report is made with (the flags of `prescale report`, or the demo's).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct ReportSettings {
    /// Models to backtest.
    pub models: Vec<ModelSpec>,
    /// Steps per backtest window; one day of steps when `None`.
    pub horizon: Option<usize>,
    /// Backtest windows.
    pub windows: usize,
    /// Capacity per pod.
    pub capacity: Capacity,
    /// Pod start-up.
    #[serde(with = "humantime_serde")]
    pub startup: Duration,
    /// Quantile the predictive policy provisions for.
    pub quantile: f64,
    /// The HPA's maxReplicas.
    pub max_replicas: i64,
    /// Model the replay refits.
    pub replay_model: ModelSpec,
    /// Refit interval of the replay.
    #[serde(with = "humantime_serde")]
    pub refit_every: Duration,
    /// History per replay fit.
    #[serde(with = "humantime_serde")]
    pub history: Duration,
    /// How much of the trace's end is replayed.
    #[serde(with = "humantime_serde")]
    pub replay: Duration,
}

impl Default for ReportSettings {
    fn default() -> Self {
        Self {
            models: ["seasonal-naive", "ets", "mstl", "theta", "arima", "prophet"]
                .into_iter()
                .map(ModelSpec::named)
                .collect(),
            horizon: None,
            windows: 3,
            capacity: Capacity::Auto,
            startup: Duration::from_secs(120),
            quantile: 0.9,
            max_replicas: 100,
            replay_model: ModelSpec::named("ets"),
            refit_every: Duration::from_secs(3600),
            history: Duration::from_secs(14 * 86_400),
            replay: Duration::from_secs(28 * 86_400),
        }
    }
}

impl ReportSettings {
    /// The replay these settings ask for, with the seasons the backtest used.
    pub fn replay_config(&self, seasons: Vec<usize>) -> ReplayConfig {
        ReplayConfig {
            capacity: self.capacity,
            policy: PolicySettings {
                quantile: self.quantile,
                startup: self.startup.as_secs() as Seconds,
                min_replicas: 1,
                max_replicas: self.max_replicas,
            },
            refit_every: self.refit_every,
            history: self.history,
            scored: Scored::Last(self.replay),
            seasons: Some(seasons),
            ..ReplayConfig::default()
        }
    }
}

/// Why a report could not be made.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ReportError {
    /// A model could not be built or failed where it had to succeed.
    #[error("model")]
    Model(#[from] ModelError),
    /// The backtest windows do not fit the trace.
    #[error("backtest")]
    Backtest(#[from] BacktestError),
    /// The replay could not run.
    #[error("replaying {trace}")]
    Replay {
        /// The trace.
        trace: String,
        /// Why.
        #[source]
        source: ReplayError,
    },
    /// A chart could not be drawn.
    #[error("chart")]
    Chart(#[from] ChartError),
    /// The page could not be written.
    #[error("writing {}", path.display())]
    Write {
        /// The file.
        path: std::path::PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
}

/// Backtests, the forecast figure and the replay for one trace.
pub fn section(settings: &ReportSettings, trace: &Series) -> Result<Section, ReportError> {
    let name = trace.labels().to_string();
    let models = settings
        .models
        .iter()
        .map(ModelSpec::build)
        .collect::<Result<Vec<_>, _>>()?;
    let replay_model = settings.replay_model.build()?;
    let horizon = settings.horizon.unwrap_or_else(|| {
        calendar_periods(trace.step())
            .first()
            .copied()
            .unwrap_or(24)
    });
    let (_, seasons) = season::detect_for(trace);
    let period = seasons.first().copied().unwrap_or(1);
    let about = format!(
        "{} points every {}, {} to {}; seasons {:?} (steps)",
        thousands(trace.len() as f64),
        humantime::format_duration(Duration::from_millis(trace.step().max(0) as u64)),
        format_millis(trace.start()),
        format_millis(trace.timestamp(trace.len().saturating_sub(1))),
        seasons
    );

    // Backtest every model; the best by mean MASE draws the forecast figure.
    let plan = Plan::back_to_back(horizon, settings.windows);
    let summaries: Vec<Summary> = models
        .par_iter()
        .map(|m| -> Result<Summary, ReportError> {
            let windows = backtest::run(m.as_ref(), trace, &plan, &seasons, period, &LEVELS)?;
            Ok(Summary::of(m.name(), &windows))
        })
        .collect::<Result<_, _>>()?;
    let cell = |v: Option<f64>, precision: usize, unit: &str| {
        v.map_or_else(|| "n/a".to_string(), |x| format!("{x:.precision$}{unit}"))
    };
    let backtest = Table {
        header: [
            "model",
            "windows",
            "failed",
            "MAE",
            "sMAPE",
            "MASE",
            "80% coverage",
            "95% coverage",
        ]
        .map(String::from)
        .to_vec(),
        rows: summaries
            .iter()
            .map(|s| {
                vec![
                    s.model.clone(),
                    s.windows.to_string(),
                    s.failed.to_string(),
                    cell(s.mae, 1, ""),
                    cell(s.smape, 2, ""),
                    cell(s.mase, 3, ""),
                    cell(s.coverage_at(80.0), 1, "%"),
                    cell(s.coverage_at(95.0), 1, "%"),
                ]
            })
            .collect(),
    };
    let best = summaries
        .iter()
        .zip(&models)
        .filter_map(|(s, m)| s.mase.map(|v| (m, v)))
        .min_by(|a, b| a.1.total_cmp(&b.1))
        .map(|(m, _)| m);
    let (forecast_svg, forecast_caption) = match best {
        Some(best) if trace.len() > 2 * horizon => {
            let (history, actual) = trace.split_at(trace.len() - horizon);
            let fitted = model::fit_for(best.as_ref(), &history, &seasons, horizon)?;
            let forecast = fitted.predict(horizon, &LEVELS)?;
            let tail: Vec<(i64, f64)> = (history.len().saturating_sub(3 * horizon)..history.len())
                .map(|i| (history.timestamp(i), history.values()[i]))
                .collect();
            let best = best.name();
            let svg = chart::forecast_chart(
                &format!("{name}: {best}, the last {horizon} steps"),
                &tail,
                &forecast,
                actual.values(),
            )?;
            (
                svg,
                format!(
                    "{best} (lowest mean MASE in the backtest) forecasting the last {horizon} steps from the history before them: mean, 80% and 95% intervals, and what happened. {}",
                    fitted.describe()
                ),
            )
        }
        _ => (
            String::new(),
            "no model forecast this trace in the backtest".into(),
        ),
    };

    // Replay the trace's end under each strategy.
    let replay_failed = |source| ReportError::Replay {
        trace: name.clone(),
        source,
    };
    let config = settings.replay_config(seasons);
    let replay = config.for_trace(trace);
    let capacity = replay.capacity;
    let mut quantiles = ADVICE_QUANTILES.to_vec();
    quantiles.push(settings.quantile);
    // The frontier sweep reuses these forecasts: they carry its quantiles' intervals too.
    let sweep_settings = Sweep::default();
    quantiles.extend(&sweep_settings.quantiles);
    replay.validate(trace).map_err(replay_failed)?;
    let forecasts = Forecasts::make(trace, replay_model.as_ref(), &replay, &quantiles);
    let result = replay_with(trace, &forecasts, &replay, &Strategy::ALL).map_err(replay_failed)?;
    // The reference a better forecast could approach (see `simulate --rate-oracle`): cheap,
    // no fits.
    let reference = replay_with(
        trace,
        &Forecasts::knowing_the_rate(trace, &replay, &quantiles),
        &replay,
        &[Strategy::Predictive],
    )
    .map_err(replay_failed)?;
    let simulation = Table {
        header: [
            "policy",
            "under-provisioned",
            "SLO violation min",
            "replica-hours",
            "peak",
            "events",
            "provisioning",
            "efficiency",
            "accuracy",
            "stability",
            "overall",
            "grade",
        ]
        .map(String::from)
        .to_vec(),
        rows: result
            .outcomes
            .iter()
            .map(|o| (o.policy.name(), o))
            .chain(
                reference
                    .outcomes
                    .iter()
                    .map(|o| ("rate-oracle (reference)", o)),
            )
            .map(|(policy, o)| {
                let s = score(o, DEFAULT_EVENTS_PER_DAY_LIMIT);
                vec![
                    policy.to_string(),
                    format!("{:.2}%", o.underprovisioned_pct),
                    format!("{:.0}", o.slo_violation_minutes),
                    format!("{:.1}", o.replica_hours),
                    o.peak_replicas.to_string(),
                    o.scaling_events.to_string(),
                    format!("{:.1}", s.provisioning),
                    format!("{:.1}", s.efficiency),
                    format!("{:.1}", s.accuracy),
                    format!("{:.1}", s.stability),
                    format!("{:.1}", s.overall),
                    s.grade.to_string(),
                ]
            })
            .collect(),
    };
    let mut advice = vec![];
    for o in result
        .outcomes
        .iter()
        .filter(|o| o.policy != Strategy::Reactive)
    {
        if let Some(a) = advise(trace, &forecasts, &replay, o).map_err(replay_failed)? {
            advice.push(format!("{}: {a}", o.policy.name()));
        }
    }
    // The last three days of the replay (or all of it, if shorter).
    let step_ms = trace.step().max(1) as f64;
    let shown = ((3.0 * 86_400_000.0 / step_ms).round() as usize)
        .max(1)
        .min(result.steps.len());
    let window = &result.steps[result.steps.len() - shown..];
    let times: Vec<i64> = window.iter().map(|s| s.time).collect();
    let load: Vec<f64> = window.iter().map(|s| s.load).collect();
    let ready: Vec<(&str, Vec<f64>)> = Strategy::ALL
        .iter()
        .enumerate()
        .map(|(i, p)| {
            (
                p.name(),
                window
                    .iter()
                    .map(|s| s.ready[i] as f64 * capacity)
                    .collect(),
            )
        })
        .collect();
    let capacity_svg = chart::capacity_chart(
        &format!("{name}: load and ready capacity, last {shown} steps of the replay"),
        &times,
        &load,
        &ready,
    )?;
    let points =
        frontier::sweep(trace, &forecasts, &replay, &sweep_settings).map_err(replay_failed)?;
    let (frontier, verdicts, frontier_svg) = frontier_parts(&name, &points)?;
    Ok(Section {
        name,
        about,
        backtest,
        forecast_svg,
        forecast_caption,
        simulation,
        advice,
        capacity_svg,
        capacity_caption: format!(
            "Ready capacity (pods serving × {} per pod) under each policy against the load; the replay refits {} every {} steps. Where the black line is above a policy's line, that policy is short.",
            thousands(capacity),
            settings.replay_model,
            replay.refit_every
        ),
        frontier,
        verdicts,
        frontier_svg,
        frontier_caption: "Cost against shortfall: each policy replayed along its own knob (the reactive HPA at target utilisations, labelled; predictive, hybrid and the rate-oracle reference at quantiles 0.5 to 0.99; `future`: fed the trace itself). Dots are replays, lines join each curve's efficient ones. Lower and further left is better: where a policy's line is below the HPA's, it leaves less load unserved for the same replica-hours.".into(),
    })
}

/// The frontier table, the verdicts at the HPA's 70% target and the chart for `points`.
fn frontier_parts(
    name: &str,
    points: &[Point],
) -> Result<(Table, Vec<String>, String), ReportError> {
    let table = Table {
        header: [
            "policy",
            "target or quantile",
            "replica-hours",
            "under-provisioned",
            "unserved load",
            "SLO violation min",
        ]
        .map(String::from)
        .to_vec(),
        rows: points
            .iter()
            .map(|p| {
                vec![
                    p.curve.name().to_string(),
                    p.setting.map_or("-".into(), |s| format!("{s}")),
                    format!("{:.1}", p.replica_hours),
                    format!("{:.2}%", p.underprovisioned_pct),
                    format!("{:.3}%", p.unserved_pct),
                    format!("{:.0}", p.slo_violation_minutes),
                ]
            })
            .collect(),
    };
    let comparisons = frontier::compare(points);
    let verdicts = [Curve::Predictive, Curve::Hybrid]
        .into_iter()
        .filter_map(|c| frontier::verdict(&comparisons, 0.7, c))
        .collect();
    let curves: Vec<FrontierCurve> = Curve::ALL
        .into_iter()
        .filter(|&c| points.iter().any(|p| p.curve == c))
        .map(|c| {
            let of_curve = || points.iter().filter(move |p| p.curve == c);
            FrontierCurve {
                name: c.name().to_string(),
                points: of_curve()
                    .map(|p| (p.replica_hours, p.unserved_pct))
                    .collect(),
                frontier: Frontier::of(points, c).points().to_vec(),
                marks: if c == Curve::Reactive {
                    of_curve()
                        .filter_map(|p| {
                            let target = p.setting?;
                            Some((
                                (p.replica_hours, p.unserved_pct),
                                format!("{:.0}%", target * 100.0),
                            ))
                        })
                        .collect()
                } else {
                    vec![]
                },
            }
        })
        .collect();
    let svg = chart::frontier_chart(
        &format!("{name}: replica-hours against unserved load"),
        &curves,
    )?;
    Ok((table, verdicts, svg))
}

/// The page's list of settings and versions.
pub fn settings_list(settings: &ReportSettings) -> Vec<(String, String)> {
    let replay = settings.replay_config(vec![]);
    let behavior = &replay.behavior;
    let models: Vec<String> = settings.models.iter().map(ToString::to_string).collect();
    vec![
        ("prescale".into(), env!("CARGO_PKG_VERSION").into()),
        (
            "generated".into(),
            format_millis(chrono::Utc::now().timestamp_millis()),
        ),
        ("backtest models".into(), models.join(", ")),
        (
            "backtest".into(),
            format!(
                "last {} windows of {} each, back to back",
                settings.windows,
                settings
                    .horizon
                    .map_or("one day".to_string(), |h| format!("{h} steps"))
            ),
        ),
        (
            "replay".into(),
            format!(
                "last {} of each trace; {} refitted every {} on {} of history; HPA sync {} s, tolerance {}",
                humantime::format_duration(settings.replay),
                settings.replay_model,
                humantime::format_duration(settings.refit_every),
                humantime::format_duration(settings.history),
                replay.sync.as_secs(),
                replay.tolerance
            ),
        ),
        (
            "policy".into(),
            format!(
                "capacity {} per pod, start-up {}, provision for p{}, 1 to {} replicas",
                match settings.capacity {
                    Capacity::Auto => "auto (the 95th percentile over 10)".into(),
                    Capacity::PerReplica(c) => thousands(c),
                },
                humantime::format_duration(settings.startup),
                settings.quantile * 100.0,
                settings.max_replicas
            ),
        ),
        (
            "HPA behavior".into(),
            crate::scale::behavior::describe(behavior.as_ref()),
        ),
    ]
}

/// Writes the page holding `sections`, made with `settings`, to `path`.
pub fn write(
    settings: &ReportSettings,
    sections: Vec<Section>,
    path: &Path,
) -> Result<(), ReportError> {
    let page = Page {
        title: "prescale report".into(),
        settings: settings_list(settings),
        formulas: FORMULAS.into(),
        sections,
    };
    crate::files::write_atomic(path, render(&page).as_bytes()).map_err(|source| {
        ReportError::Write {
            path: path.to_path_buf(),
            source,
        }
    })
}
