//! `prescale backtest`: rolling-origin evaluation of models over many series.

use std::io::IsTerminal;
use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use polars::prelude::{Column, DataFrame};
use rayon::prelude::*;

use crate::eval::backtest::{self, Plan, Window};
use crate::forecast::format_level;
use crate::series::Series;
use crate::source::table::{timestamp_column, write_table};

use super::args::{FitArgs, InputArgs};

/// Flags of `prescale backtest`.
#[derive(Debug, Args)]
pub struct BacktestArgs {
    #[command(flatten)]
    input: InputArgs,

    /// Models to compare, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "seasonal-naive")]
    model: Vec<String>,

    /// Steps forecast per window.
    #[arg(long, value_name = "H")]
    horizon: usize,

    /// Number of windows (origins), the last ones of each series.
    #[arg(long, value_name = "K", default_value_t = 3)]
    windows: usize,

    /// Steps between consecutive origins [default: the horizon, windows back to back].
    #[arg(long, value_name = "S")]
    step_between: Option<usize>,

    #[command(flatten)]
    fit: FitArgs,

    /// Results file, CSV or Parquet by extension: one row per series, model and window.
    #[arg(long, value_name = "PATH")]
    output: Option<PathBuf>,
}

/// One row of the results table.
struct Row<'a> {
    series: String,
    model: &'a str,
    window: Window,
}

/// Runs `prescale backtest`.
pub fn run(args: BacktestArgs) -> anyhow::Result<()> {
    let models = args
        .model
        .iter()
        .map(|name| args.fit.model(name))
        .collect::<Result<Vec<_>, _>>()?;
    let all = args.input.load()?;
    let plan = Plan {
        horizon: args.horizon,
        windows: args.windows,
        step_between: args.step_between.unwrap_or(args.horizon),
        floor: args.fit.floor,
    };
    let levels = args.fit.levels();
    let progress = progress_bar(all.len());
    let per_series: Vec<anyhow::Result<Vec<Row>>> = all
        .par_iter()
        .map(|series| {
            let seasons = args.fit.seasons_for(series);
            let period = seasons.first().copied().unwrap_or(1);
            let name = series_name(series);
            let mut rows = Vec::new();
            for m in &models {
                let windows = backtest::run(m.as_ref(), series, &plan, &seasons, period, levels)
                    .with_context(|| name.clone())?;
                rows.extend(windows.into_iter().map(|window| Row {
                    series: name.clone(),
                    model: m.name(),
                    window,
                }));
            }
            progress.inc(1);
            Ok(rows)
        })
        .collect();
    progress.finish_and_clear();
    let mut rows = Vec::new();
    for r in per_series {
        rows.extend(r?);
    }
    for r in rows.iter().filter(|r| r.window.outcome.is_err()) {
        if let Err(e) = &r.window.outcome {
            eprintln!(
                "{} / {} / window {}: {e}",
                r.series, r.model, r.window.index
            );
        }
    }
    print_summary(&rows, &args.model, levels);
    if let Some(path) = &args.output {
        let mut table = results_table(&rows, levels)?;
        write_table(&mut table, path)?;
        eprintln!("wrote {} row(s) to {}", table.height(), path.display());
    }
    Ok(())
}

/// A progress bar on stderr when it is a terminal; hidden otherwise (CI logs, pipes).
fn progress_bar(len: usize) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(len as u64);
    if let Ok(style) =
        ProgressStyle::with_template("{bar:40} {pos}/{len} series, {elapsed} elapsed, ~{eta} left")
    {
        bar.set_style(style);
    }
    bar
}

/// A file's series is named by its stem; a series of a multi-series source by its labels.
fn series_name(series: &Series) -> String {
    let labels = series.labels();
    if labels.pairs.is_empty() {
        labels.name.clone()
    } else {
        labels.to_string()
    }
}

/// `series,model,window,origin,mae,rmse,smape,mase`, then `coverage_<L>,msis_<L>` per level.
fn results_table(rows: &[Row], levels: &[f64]) -> anyhow::Result<DataFrame> {
    let ok: Vec<&Row> = rows.iter().filter(|r| r.window.outcome.is_ok()).collect();
    let scores = |f: &dyn Fn(&crate::eval::Scores) -> f64| -> Vec<f64> {
        ok.iter()
            .map(|r| r.window.outcome.as_ref().map_or(f64::NAN, f))
            .collect()
    };
    let mut columns = vec![
        Column::new(
            "series".into(),
            ok.iter().map(|r| r.series.as_str()).collect::<Vec<_>>(),
        ),
        Column::new(
            "model".into(),
            ok.iter().map(|r| r.model).collect::<Vec<_>>(),
        ),
        Column::new(
            "window".into(),
            ok.iter().map(|r| r.window.index as u32).collect::<Vec<_>>(),
        ),
        timestamp_column("origin", ok.iter().map(|r| r.window.origin).collect())?,
        Column::new("mae".into(), scores(&|s| s.mae)),
        Column::new("rmse".into(), scores(&|s| s.rmse)),
        Column::new("smape".into(), scores(&|s| s.smape)),
        Column::new("mase".into(), scores(&|s| s.mase)),
    ];
    for (i, level) in levels.iter().enumerate() {
        let l = format_level(*level);
        columns.push(Column::new(
            format!("coverage_{l}").into(),
            scores(&|s| s.intervals.get(i).map_or(f64::NAN, |x| x.coverage)),
        ));
        columns.push(Column::new(
            format!("msis_{l}").into(),
            scores(&|s| s.intervals.get(i).map_or(f64::NAN, |x| x.msis)),
        ));
    }
    Ok(DataFrame::new(ok.len(), columns)?)
}

/// Mean scores per model over every successful window, one line each.
fn print_summary(rows: &[Row], models: &[String], levels: &[f64]) {
    let mut header = format!(
        "{:<16} {:>8} {:>7} {:>12} {:>8} {:>8}",
        "model", "windows", "failed", "MAE", "sMAPE", "MASE"
    );
    for l in levels {
        header.push_str(&format!(" {:>9}", format!("cov{}%", format_level(*l))));
    }
    println!("{header}");
    for name in models {
        let mine: Vec<&crate::eval::Scores> = rows
            .iter()
            .filter(|r| r.model == name)
            .filter_map(|r| r.window.outcome.as_ref().ok())
            .collect();
        let failed = rows
            .iter()
            .filter(|r| r.model == name && r.window.outcome.is_err())
            .count();
        let mean = |f: &dyn Fn(&crate::eval::Scores) -> f64| {
            let v: Vec<f64> = mine
                .iter()
                .map(|s| f(s))
                .filter(|x| x.is_finite())
                .collect();
            v.iter().sum::<f64>() / v.len().max(1) as f64
        };
        let mut line = format!(
            "{:<16} {:>8} {:>7} {:>12.3} {:>8.3} {:>8.3}",
            name,
            mine.len(),
            failed,
            mean(&|s| s.mae),
            mean(&|s| s.smape),
            mean(&|s| s.mase)
        );
        for i in 0..levels.len() {
            line.push_str(&format!(
                " {:>8.1}%",
                mean(&|s| s.intervals.get(i).map_or(f64::NAN, |x| x.coverage))
            ));
        }
        println!("{line}");
    }
}
