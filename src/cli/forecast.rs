//! `prescale forecast`: fit a model on the history and write its forecast.

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Args;
use polars::prelude::{Column, DataFrame};

use crate::forecast::Forecast;
use crate::model::{self, FittedModel};
use crate::series::Series;
use crate::source::table::{self, write_csv, write_table};

use super::args::{FitArgs, InputArgs};

/// Flags of `prescale forecast`.
#[derive(Debug, Args)]
pub(super) struct ForecastArgs {
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
pub(super) fn run(args: ForecastArgs) -> anyhow::Result<()> {
    let model_file: Vec<&Path> = args.model_file.as_deref().into_iter().collect();
    for output in args.output.iter().chain(&args.save_model) {
        args.input.refuse_as_output(output, &model_file)?;
    }
    // A folder is a trained network: the lstm model forecasting the input with it.
    let network = args.model_file.as_deref().filter(|p| p.is_dir());
    if let (Some(path), None) = (&args.model_file, network) {
        anyhow::ensure!(
            args.input.input.is_empty() && args.input.prometheus.is_none() && args.save_model.is_none(),
            "{} is a fitted model: it forecasts the series it was fitted on, so --input, --prometheus and --save-model do not apply (a folder from `prescale train` takes input)",
            path.display()
        );
        let fitted = FittedModel::load(path)?;
        note!("{}: {}", path.display(), fitted.describe());
        let forecast = fitted.predict(args.horizon, args.fit.levels())?;
        return write(&mut frame(None, &forecast)?, args.output.as_deref());
    }
    let name = if network.is_some() {
        "lstm"
    } else {
        &args.model
    };
    let model = args
        .fit
        .models(&[name.to_string()], network)?
        .pop()
        .context("no model")?;
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
        let fitted = model::fit_floored_for(
            model.as_ref(),
            series,
            &seasons,
            args.fit.floor,
            Some(args.horizon),
        )
        .with_context(|| format!("fitting {} on {}", model.name(), series.labels()))?;
        let forecast = fitted.predict(args.horizon, args.fit.levels())?;
        if let Some(path) = &args.save_model {
            fitted.save(path)?;
            note!("saved the fitted model to {}", path.display());
        }
        note!(
            "{}: {} points; {}",
            series.labels(),
            series.len(),
            fitted.describe()
        );
        let df = frame(many.then_some(series), &forecast)?;
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
            note!("wrote {} row(s) to {}", table.height(), path.display());
        }
        None => write_stdout(table)?,
    }
    Ok(())
}

/// Writes a table as CSV to stdout; a closed pipe is reported as the I/O error it is (and
/// `main` treats it as success).
pub(super) fn write_stdout(table: &mut DataFrame) -> anyhow::Result<()> {
    let mut buffer = Vec::new();
    write_csv(table, &mut buffer)?;
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    out.write_all(&buffer)?;
    out.flush()?;
    Ok(())
}

/// The forecast table; with `series` (several series in one output), a leading `series`
/// column says which.
pub(super) fn frame(series: Option<&Series>, forecast: &Forecast) -> anyhow::Result<DataFrame> {
    let mut df = table::frame(forecast.timestamps().collect(), &forecast.columns())?;
    if let Some(series) = series {
        let name = series.labels().to_string();
        let column = Column::new("series".into(), vec![name; df.height()]);
        df.insert_column(0, column)?;
    }
    Ok(df)
}
