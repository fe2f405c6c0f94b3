//! `prescale forecast`: fit a model on the history and write its forecast.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use polars::prelude::{Column, DataFrame};

use crate::forecast::Forecast;
use crate::model::{self, calendar_periods};
use crate::series::Series;
use crate::source::table::{write_csv, write_table};

use super::args::{parse_levels, parse_seasons, InputArgs, Levels, Seasons};

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

    /// Seasonal periods in steps, most important first, e.g. `24,168` [default: one day and
    /// one week of steps, where they divide evenly].
    #[arg(long, value_name = "STEPS", value_parser = parse_seasons)]
    season: Option<Seasons>,

    /// Prediction interval levels in percent.
    #[arg(long, value_name = "LEVELS", default_value = "80,95", value_parser = parse_levels)]
    level: Levels,

    /// Output file, CSV or Parquet by extension [default: CSV on stdout].
    #[arg(long, value_name = "PATH")]
    output: Option<PathBuf>,
}

/// Runs `prescale forecast`.
pub fn run(args: ForecastArgs) -> anyhow::Result<()> {
    let model = model::by_name(&args.model)?;
    let all = args.input.load()?;
    let many = all.len() > 1;
    let mut table: Option<DataFrame> = None;
    for series in &all {
        let seasons = args
            .season
            .as_ref()
            .map_or_else(|| calendar_periods(series.step()), |s| s.0.clone());
        let fitted = model::fit(model.as_ref(), series, &seasons)
            .with_context(|| format!("fitting {} on {}", args.model, series.labels()))?;
        let forecast = fitted.predict(args.horizon, &args.level.0)?;
        eprintln!(
            "{}: {} points, seasons {:?}; {}",
            series.labels(),
            series.len(),
            seasons,
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
    match &args.output {
        Some(path) => {
            write_table(&mut table, path)?;
            eprintln!("wrote {} row(s) to {}", table.height(), path.display());
        }
        None => write_csv(&mut table, std::io::stdout().lock())?,
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
