//! `prescale forecast`: fit a model on the history and write its forecast.

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Args;
use polars::prelude::{Column, DataFrame};

use crate::forecast::Forecast;
use crate::model::lstm::{Lstm, Network};
use crate::model::{self, FittedModel, Model};
use crate::series::Series;
use crate::source::table::{write_csv, write_table};

use super::args::{FitArgs, InputArgs};

/// Flags of `prescale forecast`.
#[derive(Debug, Args)]
pub struct ForecastArgs {
    #[command(flatten)]
    input: InputArgs,

    /// Steps to forecast after the end of the history.
    #[arg(long, value_name = "H")]
    horizon: usize,

    /// Model name (see the README for the list).
    #[arg(long, default_value = "seasonal-naive")]
    model: String,

    #[command(flatten)]
    fit: FitArgs,

    /// Output file, CSV or Parquet by extension [default: CSV on stdout].
    #[arg(long, value_name = "PATH")]
    output: Option<PathBuf>,

    /// Save the fitted model to this file (one series only), e.g. models/taxi.json.
    #[arg(long, value_name = "PATH")]
    save_model: Option<PathBuf>,

    /// A model file saved with --save-model (forecasts its own series; no input), or a
    /// trained network folder from `prescale train` (forecasts the input series).
    #[arg(long, value_name = "PATH")]
    model_file: Option<PathBuf>,
}

/// Runs `prescale forecast`.
pub fn run(args: ForecastArgs) -> anyhow::Result<()> {
    let network = match &args.model_file {
        Some(dir) if dir.is_dir() => Some(Lstm::with_network(Network::load(dir)?)),
        _ => None,
    };
    if let (Some(path), None) = (&args.model_file, &network) {
        anyhow::ensure!(
            args.input.input.is_empty() && args.input.prometheus.is_none() && args.save_model.is_none(),
            "{} is a fitted model: it forecasts the series it was fitted on, so --input, --prometheus and --save-model do not apply (a folder from `prescale train` takes input)",
            path.display()
        );
        let fitted = FittedModel::load(path)?;
        eprintln!("{}: {}", path.display(), fitted.describe());
        let mut table = fitted
            .predict(args.horizon, args.fit.levels())?
            .to_frame()?;
        return write(&mut table, args.output.as_deref());
    }
    anyhow::ensure!(
        args.model == "prophet" || !args.fit.prophet.any(),
        "the Prophet flags (--growth, --add-seasonality, --events, ...) need --model prophet"
    );
    let model: Box<dyn Model> = match network {
        Some(lstm) => Box::new(lstm),
        None => args.fit.model(&args.model)?,
    };
    let all = args.input.load()?;
    anyhow::ensure!(
        args.save_model.is_none() || all.len() == 1,
        "--save-model saves one fitted model, but the input holds {} series",
        all.len()
    );
    let many = all.len() > 1;
    let mut table: Option<DataFrame> = None;
    for series in &all {
        let seasons = args.fit.seasons_for(series);
        let fitted = model::fit_floored(model.as_ref(), series, &seasons, args.fit.floor)
            .with_context(|| format!("fitting {} on {}", model.name(), series.labels()))?;
        let forecast = fitted.predict(args.horizon, args.fit.levels())?;
        if let Some(path) = &args.save_model {
            fitted.save(path)?;
            eprintln!("saved the fitted model to {}", path.display());
        }
        eprintln!(
            "{}: {} points; {}",
            series.labels(),
            series.len(),
            fitted.describe()
        );
        let df = frame(series, &forecast, many)?;
        match &mut table {
            Some(t) => {
                t.vstack_mut_owned(df)?;
            }
            None => table = Some(df),
        }
    }
    let mut table = table.context("no series to forecast")?;
    write(&mut table, args.output.as_deref())
}

/// Writes a table to `output` (CSV or Parquet by extension), or as CSV to stdout.
fn write(table: &mut DataFrame, output: Option<&Path>) -> anyhow::Result<()> {
    match output {
        Some(path) => {
            write_table(table, path)?;
            eprintln!("wrote {} row(s) to {}", table.height(), path.display());
        }
        None => write_csv(table, std::io::stdout().lock())?,
    }
    Ok(())
}

/// The forecast table of one series; with several series, a leading `series` column says
/// which.
fn frame(series: &Series, forecast: &Forecast, with_name: bool) -> anyhow::Result<DataFrame> {
    let mut df = forecast.to_frame()?;
    if with_name {
        let name = series.labels().to_string();
        let column = Column::new("series".into(), vec![name; df.height()]);
        df.insert_column(0, column)?;
    }
    Ok(df)
}
