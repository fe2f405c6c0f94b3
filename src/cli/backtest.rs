//! `prescale backtest`: rolling-origin evaluation of models over many series.

use std::io::IsTerminal;
use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use rayon::prelude::*;

use crate::eval::backtest::{self, Plan, Row as BacktestRow};
use crate::eval::Summary;
use crate::forecast::format_level;
use crate::source::table::write_table;

use super::args::{FitArgs, InputArgs};

/// Flags of `prescale backtest`.
#[derive(Debug, Args)]
pub(super) struct BacktestArgs {
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

/// Runs `prescale backtest`.
pub(super) fn run(args: BacktestArgs) -> anyhow::Result<()> {
    if let Some(output) = &args.output {
        args.input.refuse_as_output(output, &[])?;
    }
    let models = args.fit.models(&args.model, None)?;
    let all = args.input.load()?;
    let plan = Plan {
        horizon: args.horizon,
        windows: args.windows,
        step_between: args.step_between.unwrap_or(args.horizon),
        floor: args.fit.floor,
    };
    let levels = args.fit.levels();
    let progress = progress_bar(all.len());
    // The command's span, entered on each worker thread so the fits are part of its trace.
    let parent = tracing::Span::current();
    let per_series: Vec<anyhow::Result<Vec<BacktestRow>>> = all
        .par_iter()
        .map(|series| {
            let _trace = parent.enter();
            let seasons = args.fit.seasons_for(series);
            let period = seasons.first().copied().unwrap_or(1);
            let name = backtest::series_name(series);
            let mut rows = Vec::new();
            for m in &models {
                let windows = backtest::run(m.as_ref(), series, &plan, &seasons, period, levels)
                    .with_context(|| name.clone())?;
                rows.extend(windows.into_iter().map(|window| BacktestRow {
                    series: name.clone(),
                    model: m.name().to_string(),
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
    for r in &rows {
        if let Err(e) = &r.window.outcome {
            note!(
                "{} / {} / window {}: {}",
                r.series,
                r.model,
                r.window.index,
                crate::human::chain(e)
            );
        }
    }
    print_summary(&rows, &args.model, levels)?;
    if let Some(path) = &args.output {
        let mut table = backtest::results_table(&rows, levels)?;
        write_table(&mut table, path)?;
        note!("wrote {} row(s) to {}", table.height(), path.display());
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

/// A number, or `n/a` when there is none (every window failed).
fn cell(value: Option<f64>, width: usize, precision: usize, unit: &str) -> String {
    let text = value.map_or_else(|| "n/a".to_string(), |v| format!("{v:.precision$}{unit}"));
    format!("{text:>width$}")
}

/// Mean scores per model over every successful window, one line each.
fn print_summary(rows: &[BacktestRow], models: &[String], levels: &[f64]) -> std::io::Result<()> {
    let mut header = format!(
        "{:<16} {:>8} {:>7} {:>12} {:>8} {:>8}",
        "model", "windows", "failed", "MAE", "sMAPE", "MASE"
    );
    for l in levels {
        header.push_str(&format!(" {:>9}", format!("cov{}%", format_level(*l))));
    }
    outln!("{header}")?;
    for name in models {
        let s = Summary::of(
            name,
            rows.iter().filter(|r| &r.model == name).map(|r| &r.window),
        );
        let mut line = format!(
            "{:<16} {:>8} {:>7} {} {} {}",
            name,
            s.windows,
            s.failed,
            cell(s.mae, 12, 3, ""),
            cell(s.smape, 8, 3, ""),
            cell(s.mase, 8, 3, "")
        );
        for level in levels {
            line.push(' ');
            line.push_str(&cell(s.coverage_at(*level), 9, 1, "%"));
        }
        outln!("{line}")?;
    }
    Ok(())
}
