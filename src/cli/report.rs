//! `prescale report`: backtests, a forecast and a scaling replay per trace, in one
//! self-contained HTML file.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use rayon::prelude::*;

use crate::eval::backtest::{self, Plan};
use crate::model::{self, calendar_periods, season};
use crate::report::{chart, render, Page, Section, Table};
use crate::scale::behavior::{Behavior, Seconds};
use crate::scale::hpa::DEFAULT_TOLERANCE;
use crate::scale::policy::{thousands, PolicySettings};
use crate::scale::replay::{auto_capacity, replay_with, Forecasts, PolicyKind, ReplaySettings};
use crate::scale::score::{score, DEFAULT_EVENTS_PER_DAY_LIMIT, FORMULAS};
use crate::series::{format_millis, Series};

use super::args::{parse_duration, InputArgs};
use super::simulate::{advise, ADVICE_QUANTILES};

/// Flags of `prescale report`.
#[derive(Debug, Args)]
pub struct ReportArgs {
    #[command(flatten)]
    input: InputArgs,

    /// The HTML file to write.
    #[arg(long, value_name = "PATH", default_value = "report.html")]
    output: PathBuf,

    /// Models to backtest, comma-separated.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "seasonal-naive,ets,mstl,theta,arima,prophet"
    )]
    models: Vec<String>,

    /// Steps per backtest window [default: one day of steps].
    #[arg(long, value_name = "H")]
    horizon: Option<usize>,

    /// Backtest windows, the last ones of each trace.
    #[arg(long, value_name = "K", default_value_t = 3)]
    windows: usize,

    /// Load one replica serves, or `auto`: the trace's 95th percentile over 10 (about ten pods
    /// at busy times).
    #[arg(long, value_name = "C|auto", default_value = "auto")]
    capacity: String,

    /// Pod start-up time.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "2m")]
    startup: Duration,

    /// Forecast quantile the predictive policy provisions for.
    #[arg(long, value_name = "Q", default_value_t = 0.9)]
    quantile: f64,

    /// Most replicas any policy may run (the HPA's maxReplicas): with `--capacity auto`, 100 is
    /// ten times the busy count.
    #[arg(long, value_name = "N", default_value_t = 100)]
    max_replicas: i64,

    /// Model the replay refits.
    #[arg(long, default_value = "ets")]
    replay_model: String,

    /// How often the replay refits its model.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "1h")]
    refit_every: Duration,

    /// History each replay fit sees.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "14d")]
    history: Duration,

    /// How much of each trace's end is replayed.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "28d")]
    replay: Duration,
}

/// What a report section is made with (the flags of `prescale report`, or the demo's).
pub(super) struct ReportSettings {
    /// Models to backtest.
    pub models: Vec<String>,
    /// Steps per backtest window; one day of steps when `None`.
    pub horizon: Option<usize>,
    /// Backtest windows.
    pub windows: usize,
    /// Capacity per pod; `None` for the automatic choice.
    pub capacity: Option<f64>,
    /// Pod start-up.
    pub startup: Duration,
    /// Quantile the predictive policy provisions for.
    pub quantile: f64,
    /// The HPA's maxReplicas.
    pub max_replicas: i64,
    /// Model the replay refits.
    pub replay_model: String,
    /// Refit interval of the replay.
    pub refit_every: Duration,
    /// History per replay fit.
    pub history: Duration,
    /// How much of the trace's end is replayed.
    pub replay: Duration,
}

impl ReportArgs {
    fn settings(&self) -> anyhow::Result<ReportSettings> {
        let capacity = match self.capacity.as_str() {
            "auto" => None,
            c => Some(
                c.parse::<f64>()
                    .ok()
                    .filter(|c| c.is_finite() && *c > 0.0)
                    .with_context(|| {
                        format!("--capacity {c:?} is neither a positive number nor auto")
                    })?,
            ),
        };
        Ok(ReportSettings {
            models: self.models.clone(),
            horizon: self.horizon,
            windows: self.windows,
            capacity,
            startup: self.startup,
            quantile: self.quantile,
            max_replicas: self.max_replicas,
            replay_model: self.replay_model.clone(),
            refit_every: self.refit_every,
            history: self.history,
            replay: self.replay,
        })
    }
}

const POLICIES: [PolicyKind; 3] = [
    PolicyKind::Reactive,
    PolicyKind::Predictive,
    PolicyKind::Hybrid,
];

/// Runs `prescale report`.
pub fn run(args: ReportArgs) -> anyhow::Result<()> {
    let settings = args.settings()?;
    let traces = args.input.load()?;
    let sections = traces
        .iter()
        .map(|trace| {
            eprintln!(
                "{}: backtesting {} model(s) and replaying",
                trace.labels(),
                settings.models.len()
            );
            section(&settings, trace)
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    write(&settings, sections, &args.output)?;
    eprintln!("wrote {}", args.output.display());
    Ok(())
}

/// Writes the page holding `sections` to `path`.
pub(super) fn write(
    settings: &ReportSettings,
    sections: Vec<Section>,
    path: &std::path::Path,
) -> anyhow::Result<()> {
    let page = Page {
        title: "prescale report".into(),
        settings: settings_list(settings),
        formulas: FORMULAS.into(),
        sections,
    };
    std::fs::write(path, render(&page)).with_context(|| format!("writing {}", path.display()))
}

fn settings_list(args: &ReportSettings) -> Vec<(String, String)> {
    let behavior = Behavior::default();
    vec![
        ("prescale".into(), env!("CARGO_PKG_VERSION").into()),
        (
            "generated".into(),
            format_millis(chrono::Utc::now().timestamp_millis()),
        ),
        ("backtest models".into(), args.models.join(", ")),
        (
            "backtest".into(),
            format!(
                "last {} windows of {} each, back to back",
                args.windows,
                args.horizon
                    .map_or("one day".to_string(), |h| format!("{h} steps"))
            ),
        ),
        (
            "replay".into(),
            format!(
                "last {} of each trace; {} refitted every {} on {} of history; HPA sync 15 s, tolerance {DEFAULT_TOLERANCE}",
                humantime::format_duration(args.replay),
                args.replay_model,
                humantime::format_duration(args.refit_every),
                humantime::format_duration(args.history)
            ),
        ),
        (
            "policy".into(),
            format!(
                "capacity {} per pod, start-up {}, provision for p{}, 1 to {} replicas",
                args.capacity
                    .map_or("auto (the 95th percentile over 10)".into(), thousands),
                humantime::format_duration(args.startup),
                args.quantile * 100.0,
                args.max_replicas
            ),
        ),
        (
            "HPA behavior".into(),
            format!(
                "scale up: window {} s, {:?} of {:?}; scale down: window {} s, {:?} of {:?}",
                behavior.scale_up.stabilization,
                behavior.scale_up.select,
                behavior.scale_up.policies,
                behavior.scale_down.stabilization,
                behavior.scale_down.select,
                behavior.scale_down.policies
            ),
        ),
    ]
}

/// Backtests, the forecast figure and the replay for one trace.
pub(super) fn section(args: &ReportSettings, trace: &Series) -> anyhow::Result<Section> {
    let name = trace.labels().to_string();
    let models = args
        .models
        .iter()
        .map(|n| model::by_name(n))
        .collect::<Result<Vec<_>, _>>()?;
    let replay_model = model::by_name(&args.replay_model)?;
    let replay_model = replay_model.as_ref();
    let horizon = args.horizon.unwrap_or_else(|| {
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
        humantime::format_duration(Duration::from_millis(trace.step() as u64)),
        format_millis(trace.start()),
        format_millis(trace.timestamp(trace.len() - 1)),
        seasons
    );

    // Backtest every model; the best by mean MASE draws the forecast figure.
    let plan = Plan::back_to_back(horizon, args.windows);
    let levels = [80.0, 95.0];
    let results: Vec<(String, Vec<crate::eval::Scores>, usize)> = models
        .par_iter()
        .map(|m| -> anyhow::Result<_> {
            let windows = backtest::run(m.as_ref(), trace, &plan, &seasons, period, &levels)?;
            let failed = windows.iter().filter(|w| w.outcome.is_err()).count();
            let ok = windows.into_iter().filter_map(|w| w.outcome.ok()).collect();
            Ok((m.name().to_string(), ok, failed))
        })
        .collect::<anyhow::Result<_>>()?;
    let mean = |v: &[crate::eval::Scores], f: &dyn Fn(&crate::eval::Scores) -> f64| {
        let xs: Vec<f64> = v.iter().map(f).filter(|x| x.is_finite()).collect();
        if xs.is_empty() {
            f64::NAN
        } else {
            xs.iter().sum::<f64>() / xs.len() as f64
        }
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
        rows: results
            .iter()
            .map(|(m, s, failed)| {
                vec![
                    m.clone(),
                    s.len().to_string(),
                    failed.to_string(),
                    format!("{:.1}", mean(s, &|x| x.mae)),
                    format!("{:.2}", mean(s, &|x| x.smape)),
                    format!("{:.3}", mean(s, &|x| x.mase)),
                    format!("{:.1}%", mean(s, &|x| x.intervals[0].coverage)),
                    format!("{:.1}%", mean(s, &|x| x.intervals[1].coverage)),
                ]
            })
            .collect(),
    };
    let best = results
        .iter()
        .map(|(m, s, _)| (m, mean(s, &|x| x.mase)))
        .filter(|(_, v)| v.is_finite())
        .min_by(|a, b| a.1.total_cmp(&b.1))
        .map(|(m, _)| m.clone());
    let (forecast_svg, forecast_caption) = match &best {
        Some(best) if trace.len() > 2 * horizon => {
            let m = model::by_name(best)?;
            let (history, actual) = trace.split_at(trace.len() - horizon);
            let fitted = model::fit(m.as_ref(), &history, &seasons)?;
            let forecast = fitted.predict(horizon, &levels)?;
            let tail: Vec<(i64, f64)> = (history.len().saturating_sub(3 * horizon)..history.len())
                .map(|i| (history.timestamp(i), history.values()[i]))
                .collect();
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

    // Replay the trace's end under each policy.
    let capacity = args.capacity.unwrap_or_else(|| auto_capacity(trace));
    let steps = |d: Duration| (d.as_millis() as f64 / trace.step() as f64).round() as usize;
    let settings = ReplaySettings {
        capacity,
        policy: PolicySettings {
            quantile: args.quantile,
            startup: args.startup.as_secs() as Seconds,
            min_replicas: 1,
            max_replicas: args.max_replicas,
        },
        behavior: Behavior::default(),
        tolerance: DEFAULT_TOLERANCE,
        sync: 15,
        refit_every: steps(args.refit_every).max(1),
        history: steps(args.history).max(1),
        warmup: trace
            .len()
            .saturating_sub(steps(args.replay))
            .max(trace.len() / 2)
            .max(1),
        seasons: seasons.clone(),
        calibrate: true,
        calibration_window: steps(Duration::from_secs(7 * 86_400)).max(1),
    };
    let mut quantiles = ADVICE_QUANTILES.to_vec();
    quantiles.push(args.quantile);
    settings
        .validate(trace)
        .with_context(|| format!("replaying {name}"))?;
    let forecasts = Forecasts::make(trace, replay_model, &settings, &quantiles);
    let result = replay_with(trace, &forecasts, &settings, &POLICIES)
        .with_context(|| format!("replaying {name}"))?;
    // The bound a better forecast could reach (see `simulate --rate-oracle`): cheap, no fits.
    let reference = replay_with(
        trace,
        &Forecasts::knowing_the_rate(trace, &settings, &quantiles),
        &settings,
        &[PolicyKind::Predictive],
    )
    .with_context(|| format!("replaying {name} knowing the rate"))?;
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
        .filter(|o| o.policy != PolicyKind::Reactive)
    {
        if let Some(a) = advise(trace, &forecasts, &settings, o)? {
            advice.push(format!("{}: {a}", o.policy.name()));
        }
    }
    // The last three days of the replay (or all of it, if shorter).
    let shown = steps(Duration::from_secs(3 * 86_400))
        .max(1)
        .min(result.steps.len());
    let window = &result.steps[result.steps.len() - shown..];
    let times: Vec<i64> = window.iter().map(|s| s.time).collect();
    let load: Vec<f64> = window.iter().map(|s| s.load).collect();
    let ready: Vec<(&str, Vec<f64>)> = POLICIES
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
            args.replay_model,
            settings.refit_every
        ),
    })
}
