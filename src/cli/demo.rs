//! `prescale demo`: the main job on bundled real data, with no argument and no server.

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Args;
use polars::prelude::Column;

use crate::eval::metrics;
use crate::forecast::Forecast;
use crate::model::{self, calendar_periods, season};
use crate::scale::behavior::Behavior;
use crate::scale::hpa::DEFAULT_TOLERANCE;
use crate::scale::policy::{plan, MetricTarget, PolicySettings};
use crate::scale::replay::{replay, PolicyKind, ReplaySettings};
use crate::scale::score::{score, DEFAULT_EVENTS_PER_DAY_LIMIT};
use crate::series::{format_millis, Series};
use crate::source::{self, table::write_table, LoadOptions};

/// The bundled series the demo forecasts (NYC taxi passengers every 30 minutes, from NAB).
const DEMO_DATA: &str = "datasets/nyc_taxi.csv";

/// Flags of `prescale demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Folder for the forecast file.
    #[arg(long, value_name = "DIR", default_value = "demo-output")]
    output: PathBuf,
}

/// Runs `prescale demo`.
pub fn run(args: DemoArgs) -> anyhow::Result<()> {
    let path = bundled(DEMO_DATA);
    let series = source::load(&path, &LoadOptions::default())?
        .into_iter()
        .next()
        .context("the demo file holds no series")?;
    let horizon = calendar_periods(series.step())
        .first()
        .copied()
        .unwrap_or(24);
    anyhow::ensure!(
        series.len() > 3 * horizon,
        "{} is too short for the demo",
        path.display()
    );
    let (history, actual) = series.split_at(series.len() - horizon);
    let (candidates, seasons) = season::detect_for(&history);
    println!(
        "prescale demo: {} ({} points every {} min, {} to {})",
        path.display(),
        series.len(),
        series.step() / 60_000,
        format_millis(series.start()),
        format_millis(series.timestamp(series.len() - 1)),
    );
    println!(
        "forecasting the last day ({horizon} steps from {}) from the {} points before it;\nseasons {:?}: the periods of one day and one week ({:?} steps) that the history's autocorrelation supports\n",
        format_millis(actual.start()),
        history.len(),
        seasons,
        candidates
    );
    // MASE is scaled by the daily seasonal naive error, whatever the models use.
    let scale_period = horizon;
    println!(
        "{:<16} {:>10} {:>8} {:>8} {:>13}  fitted",
        "model", "MAE", "MASE", "sMAPE", "95% coverage"
    );
    let levels = [80.0, 95.0];
    let mut best: Option<(f64, &'static str, Forecast)> = None;
    for name in model::names() {
        let m = model::by_name(name)?;
        let fitted = model::fit(m.as_ref(), &history, &seasons)?;
        let forecast = fitted.predict(horizon, &levels)?;
        let mase = metrics::mase(
            actual.values(),
            &forecast.mean,
            history.values(),
            scale_period,
        );
        println!(
            "{:<16} {:>10.1} {:>8.3} {:>8.2} {:>12.1}%  {}",
            name,
            metrics::mae(actual.values(), &forecast.mean),
            mase,
            metrics::smape(actual.values(), &forecast.mean),
            forecast
                .interval(95.0)
                .map_or(f64::NAN, |i| metrics::coverage(
                    actual.values(),
                    &i.lower,
                    &i.upper
                )),
            fitted.describe()
        );
        if best.as_ref().is_none_or(|(b, _, _)| mase < *b) {
            best = Some((mase, name, forecast));
        }
    }
    let (mase, name, forecast) = best.context("the registry has no model")?;
    let mut table = forecast.to_frame()?;
    table.with_column(Column::new("actual".into(), actual.values()))?;
    let out = args.output.join("forecast.csv");
    write_table(&mut table, &out)?;
    println!(
        "\nbest: {name} (MASE {mase:.3}; below 1 beats the in-sample seasonal naive error)\nforecast with 80/95% intervals and the actual values written to {}",
        out.display()
    );
    print_plan(&history, &forecast)?;
    print_replay(&series, &seasons)?;
    Ok(())
}

/// The demo workload: one pod serves 1,000 passengers per half hour and takes 5 minutes to
/// start; prescale provisions for the forecast's p90.
fn demo_settings() -> PolicySettings {
    PolicySettings {
        quantile: 0.9,
        startup: 300,
        min_replicas: 2,
        max_replicas: 100,
    }
}

const DEMO_CAPACITY: f64 = 1000.0;

/// The replica plan for the forecast, with its reason.
fn print_plan(history: &Series, forecast: &Forecast) -> anyhow::Result<()> {
    let target = [MetricTarget {
        name: "passengers".into(),
        capacity_per_replica: DEMO_CAPACITY,
    }];
    let now = history.timestamp(history.len() - 1);
    let p = plan(&demo_settings(), &target, &[("passengers", forecast)], now)?;
    println!(
        "\nreplica plan at {} (1,000 passengers per pod, 5 min start-up, p90 headroom):\n  {} pods now: {}\n  serve {:.0} as the External metric (HPA AverageValue target 1000)",
        format_millis(now),
        p.desired,
        p.reason,
        p.external_value
    );
    let schedule: Vec<String> = p
        .schedule
        .iter()
        .step_by(4)
        .map(|(t, r)| format!("{} {r}", &format_millis(*t)[11..16]))
        .collect();
    println!("  schedule (every 2 h): {}", schedule.join(", "));
    Ok(())
}

/// Replays the last four weeks of the trace under each policy (ets refitted every 6 hours on
/// two weeks of history) and prints the `simulate` table.
fn print_replay(series: &Series, seasons: &[usize]) -> anyhow::Result<()> {
    let day = (86_400_000 / series.step().max(1)) as usize;
    let settings = ReplaySettings {
        capacity: DEMO_CAPACITY,
        policy: demo_settings(),
        behavior: Behavior::default(),
        tolerance: DEFAULT_TOLERANCE,
        sync: 15,
        refit_every: (day / 4).max(1),
        history: 14 * day,
        warmup: series.len().saturating_sub(28 * day).max(1),
        seasons: seasons.to_vec(),
    };
    let model = model::by_name("ets")?;
    let policies = [
        PolicyKind::Reactive,
        PolicyKind::Predictive,
        PolicyKind::Hybrid,
    ];
    let r = replay(series, model.as_ref(), &settings, &policies)?;
    println!(
        "\nreplay of the last 28 days: the HPA on the observed load (reactive), on prescale's forecast (predictive), on both (hybrid)"
    );
    println!(
        "{:<11} {:>17} {:>14} {:>13} {:>5} {:>7} {:>6}",
        "policy",
        "under-provisioned",
        "replica-hours",
        "peak replicas",
        "events",
        "overall",
        "grade"
    );
    for o in &r.outcomes {
        let s = score(o, DEFAULT_EVENTS_PER_DAY_LIMIT);
        println!(
            "{:<11} {:>16.2}% {:>14.1} {:>13} {:>6} {:>7.1} {:>6}",
            o.policy.name(),
            o.underprovisioned_pct,
            o.replica_hours,
            o.peak_replicas,
            o.scaling_events,
            s.overall,
            s.grade
        );
    }
    Ok(())
}

/// A bundled file: relative to the working directory, else to the source tree this binary
/// was built from (so `demo` works from any folder of a checkout).
fn bundled(relative: &str) -> PathBuf {
    let here = Path::new(relative);
    if here.exists() {
        return here.to_path_buf();
    }
    Path::new(env!("CARGO_MANIFEST_DIR")).join(relative)
}
