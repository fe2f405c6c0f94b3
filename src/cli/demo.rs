//! `prescale demo`: the main job on bundled real data, with no argument and no server.

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Args;
use polars::prelude::Column;

use crate::eval::metrics;
use crate::forecast::Forecast;
use crate::model::{self, calendar_periods, season};
use crate::series::format_millis;
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
