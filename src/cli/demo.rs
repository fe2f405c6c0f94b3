//! `prescale demo`: the main job on bundled real data, with no argument and no server.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use polars::prelude::Column;

use crate::forecast::metrics;
use crate::forecast::Forecast;
use crate::model::{self, calendar_periods, season, ModelSpec};
use crate::report::{self, section::section, ReportSettings};
use crate::scale::policy::{plan, MetricTarget, PolicySettings};
use crate::scale::replay_config::Capacity;
use crate::series::{format_millis, Series};
use crate::source::{self, table::write_table, LoadOptions};

use super::forecast::frame;

/// The bundled series the demo forecasts (NYC taxi passengers every 30 minutes, from NAB).
const DEMO_DATA: &str = "datasets/nyc_taxi.csv";

/// Flags of `prescale demo`.
#[derive(Debug, Args)]
pub(super) struct DemoArgs {
    /// Folder for the forecast file and the HTML report.
    #[arg(long, value_name = "DIR", default_value = "demo-output")]
    output: PathBuf,
}

/// Runs `prescale demo`.
pub(super) fn run(args: DemoArgs) -> anyhow::Result<()> {
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
    outln!(
        "prescale demo: {} ({} points every {} min, {} to {})",
        path.display(),
        series.len(),
        series.step() / 60_000,
        format_millis(series.start()),
        format_millis(series.timestamp(series.len() - 1)),
    )?;
    outln!(
        "forecasting the last day ({horizon} steps from {}) from the {} points before it;\nseasons {:?}: the periods of one day and one week ({:?} steps) that the history's autocorrelation supports\n",
        format_millis(actual.start()),
        history.len(),
        seasons,
        candidates
    )?;
    // MASE is scaled by the daily seasonal naive error, whatever the models use.
    let scale_period = horizon;
    outln!(
        "{:<16} {:>10} {:>8} {:>8} {:>13}  fitted",
        "model",
        "MAE",
        "MASE",
        "sMAPE",
        "95% coverage"
    )?;
    let levels = [80.0, 95.0];
    let mut chosen: Option<(f64, String, Forecast)> = None;
    for name in model::names() {
        let m = model::by_name(name)?;
        let fitted = model::fit_for(m.as_ref(), &history, &seasons, horizon)?;
        let forecast = fitted.predict(horizon, &levels)?;
        let mase = metrics::mase(
            actual.values(),
            &forecast.mean,
            history.values(),
            scale_period,
        );
        outln!(
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
        )?;
        if name == "auto" {
            chosen = Some((mase, fitted.describe(), forecast));
        }
    }
    // The forecast to act on is `auto`'s: chosen from the history alone, by backtesting the
    // candidates on its last windows (the table's scores use the day it had not seen).
    let (mase, why, forecast) = chosen.context("the registry has no auto model")?;
    let mut table = frame(None, &forecast)?;
    table.with_column(Column::new("actual".into(), actual.values()))?;
    let out = args.output.join("forecast.csv");
    write_table(&mut table, &out)?;
    outln!(
        "\nusing auto (MASE {mase:.3} on the unseen day; below 1 beats the in-sample seasonal naive error)\n  {why}\nforecast with 80/95% intervals and the actual values written to {}",
        out.display()
    )?;
    print_plan(&history, &forecast)?;
    report(&series, &args.output)?;
    outln!(
        "\nto serve such decisions to Kubernetes (the external metrics API and a KEDA scaler) from the bundled data, with no Prometheus:\n  prescale serve --config examples/serve.yaml\n  curl -sk 'https://127.0.0.1:6443/apis/external.metrics.k8s.io/v1beta1/namespaces/demo/prescale_replicas?labelSelector=workload%3Dtaxi'"
    )?;
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
    let target = [MetricTarget::capacity("passengers", DEMO_CAPACITY)];
    let now = history.timestamp(history.len() - 1);
    let p = plan(
        &demo_settings(),
        &target,
        &[("passengers", forecast)],
        now,
        None,
    )?;
    outln!(
        "\nreplica plan at {} (1,000 passengers per pod, 5 min start-up, p90 headroom):\n  {} pods now: {}\n  serve {:.0} as the External metric (HPA AverageValue target 1000)",
        format_millis(now),
        p.desired,
        p.reason,
        p.external_value
    )?;
    let schedule: Vec<String> = p
        .schedule
        .iter()
        .step_by(4)
        .map(|(t, r)| format!("{} {r}", &format_millis(*t)[11..16]))
        .collect();
    outln!("  schedule (every 2 h): {}", schedule.join(", "))?;
    Ok(())
}

/// The report on the bundled trace: every model backtested over the last three days, and the
/// last 28 days replayed (ets refitted every hour on two weeks of history); prints the replay
/// table and writes the HTML page.
fn report(series: &Series, output: &Path) -> anyhow::Result<()> {
    let settings = ReportSettings {
        models: model::names().into_iter().map(ModelSpec::named).collect(),
        horizon: None,
        windows: 3,
        capacity: Capacity::PerReplica(DEMO_CAPACITY),
        startup: Duration::from_secs(demo_settings().startup as u64),
        quantile: demo_settings().quantile,
        max_replicas: demo_settings().max_replicas,
        replay_model: ModelSpec::named("ets"),
        refit_every: Duration::from_secs(3600),
        history: Duration::from_secs(14 * 86_400),
        replay: Duration::from_secs(28 * 86_400),
    };
    let section = section(&settings, series)?;
    outln!(
        "\nreplay of the last 28 days: the HPA on the observed load (reactive), on prescale's forecast (predictive), on both (hybrid), and a reference fed each step's level from its neighbours (rate-oracle: it reads the future)"
    )?;
    let t = &section.simulation;
    // policy, under-provisioned, replica-hours, peak, events, overall, grade.
    let columns = [0, 1, 3, 4, 5, 10, 11];
    let policy_width = t
        .rows
        .iter()
        .filter_map(|r| r.first())
        .map(|p| p.chars().count())
        .max()
        .unwrap_or(0);
    let widths = [policy_width.max(11), 18, 14, 5, 7, 8, 6];
    let line = |cells: &[String]| {
        columns
            .iter()
            .zip(widths)
            .map(|(&c, w)| {
                let cell = cells.get(c).map_or("", |s| s.as_str());
                if c == 0 {
                    format!("{cell:<w$}")
                } else {
                    format!("{cell:>w$}")
                }
            })
            .collect::<Vec<_>>()
            .join(" ")
    };
    outln!("{}", line(&t.header))?;
    for row in &t.rows {
        outln!("{}", line(row))?;
    }
    for advice in &section.advice {
        outln!("  {advice}")?;
    }
    // The verdict: each policy along its own knob against the HPA at the target SREs use.
    outln!(
        "\ncost against shortfall (the HPA at targets 50–100% of a pod's capacity, predictive and hybrid at quantiles 0.5–0.99; the frontier chart and table are in the report):"
    )?;
    for verdict in &section.verdicts {
        outln!("  {verdict}")?;
    }
    let path = output.join("report.html");
    report::write(&settings, vec![section], &path)?;
    outln!(
        "\nthe report (backtest, forecast and replay figures) is in {}",
        path.display()
    )?;
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
