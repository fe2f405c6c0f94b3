//! `prescale backtest`: rolling-origin evaluation of models over many series.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Subcommand};
use rayon::prelude::*;

use crate::deploy::shard::{self, Shard};
use crate::eval::backtest::{self, Plan, Row as BacktestRow};
use crate::eval::Summary;
use crate::forecast::format_level;
use crate::source::table::write_table;

use super::args::{FitArgs, InputArgs};

/// Flags of `prescale backtest`.
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub(super) struct BacktestArgs {
    #[command(subcommand)]
    command: Option<BacktestCommand>,

    #[command(flatten)]
    input: InputArgs,

    /// Models to compare, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "seasonal-naive")]
    model: Vec<String>,

    /// Steps forecast per window.
    #[arg(long, value_name = "H", required = true)]
    horizon: Option<usize>,

    /// Number of windows (origins), the last ones of each series.
    #[arg(long, value_name = "K", default_value_t = 3)]
    windows: usize,

    /// Steps between consecutive origins [default: the horizon, windows back to back].
    #[arg(long, value_name = "S")]
    step_between: Option<usize>,

    #[command(flatten)]
    fit: FitArgs,

    /// Results file, CSV or Parquet by extension: one row per series, model and window
    /// (with --shard or --shards: a folder for the shard's own Parquet file and manifest).
    #[arg(long, value_name = "PATH")]
    output: Option<PathBuf>,

    /// Run shard I of N only: the series whose name hashes to I (FNV-1a mod N); merge the
    /// shards' folder with `prescale backtest merge`.
    #[arg(long, value_name = "I/N", value_parser = parse_shard, requires = "output")]
    shard: Option<Shard>,

    /// Run one of N shards, its index read from JOB_COMPLETION_INDEX (as an Indexed Job sets it).
    #[arg(long, value_name = "N", conflicts_with = "shard", requires = "output")]
    shards: Option<usize>,
}

#[derive(Debug, Subcommand)]
enum BacktestCommand {
    /// Merge the shards in a folder into the results and summary one run gives.
    Merge(MergeArgs),
}

/// Flags of `prescale backtest merge`.
#[derive(Debug, Args)]
struct MergeArgs {
    /// The folder the shards wrote to.
    #[arg(value_name = "DIR")]
    dir: PathBuf,

    /// Results file, CSV or Parquet by extension.
    #[arg(long, value_name = "PATH")]
    output: Option<PathBuf>,
}

fn parse_shard(text: &str) -> Result<Shard, String> {
    Shard::parse(text).map_err(|e| e.to_string())
}

fn merge(args: MergeArgs) -> anyhow::Result<()> {
    let merged = shard::merge(&args.dir)?;
    print_summary(&merged.summaries, &merged.levels)?;
    if let Some(path) = &args.output {
        let mut table = merged.table()?;
        write_table(&mut table, path)?;
        note!("wrote {} row(s) to {}", table.height(), path.display());
    }
    Ok(())
}

/// Runs `prescale backtest`.
pub(super) fn run(args: BacktestArgs) -> anyhow::Result<()> {
    if let Some(BacktestCommand::Merge(m)) = args.command {
        return merge(m);
    }
    let horizon = args.horizon.context("--horizon is required")?;
    let shard = match (args.shard, args.shards) {
        (Some(s), _) => Some(s),
        (None, Some(n)) => Some(Shard::from_index_variable(
            std::env::var(shard::INDEX_VARIABLE).ok().as_deref(),
            n,
        )?),
        (None, None) => None,
    };
    if let (Some(output), None) = (&args.output, shard) {
        args.input.refuse_as_output(output, &[])?;
    }
    let models = args.fit.models(&args.model, None)?;
    let everything = args.input.load()?;
    let input_series = everything.len();
    let (positions, all): (Vec<usize>, Vec<_>) = everything
        .into_iter()
        .enumerate()
        .filter(|(_, s)| shard.is_none_or(|sh| sh.owns(&backtest::series_name(s))))
        .unzip();
    let plan = Plan {
        horizon,
        windows: args.windows,
        step_between: args.step_between.unwrap_or(horizon),
        floor: args.fit.floor,
    };
    let levels = args.fit.levels();
    let progress = super::progress::bar(all.len(), "series");
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
    let summaries: Vec<Summary> = args
        .model
        .iter()
        .map(|name| {
            Summary::of(
                name,
                rows.iter().filter(|r| &r.model == name).map(|r| &r.window),
            )
        })
        .collect();
    print_summary(&summaries, levels)?;
    if let Some(shard) = shard {
        let dir = args
            .output
            .as_ref()
            .context("--output is required with a shard")?;
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let manifest = shard::Manifest {
            index: shard.index,
            total: shard.total,
            settings: format!(
                "models={:?} horizon={} windows={} step_between={} floor={:?} levels={:?} model_settings={:?}",
                args.model, plan.horizon, plan.windows, plan.step_between, plan.floor, levels, args.fit
            ),
            models: args.model.clone(),
            levels: levels.to_vec(),
            input_series,
            series: positions
                .iter()
                .zip(&all)
                .map(|(i, s)| (*i, backtest::series_name(s)))
                .collect(),
            failed: summaries.iter().map(|s| (s.model.clone(), s.failed)).collect(),
        };
        let table = shard::write_shard(dir, shard, &manifest, &rows)?;
        note!(
            "shard {}/{}: {} of {} series, {} row(s) in {}",
            shard.index,
            shard.total,
            all.len(),
            input_series,
            rows.iter().filter(|r| r.window.outcome.is_ok()).count(),
            table.display()
        );
        return Ok(());
    }
    if let Some(path) = &args.output {
        let mut table = backtest::results_table(&rows, levels)?;
        write_table(&mut table, path)?;
        note!("wrote {} row(s) to {}", table.height(), path.display());
    }
    Ok(())
}

/// A number, or `n/a` when there is none (every window failed).
fn cell(value: Option<f64>, width: usize, precision: usize, unit: &str) -> String {
    let text = value.map_or_else(|| "n/a".to_string(), |v| format!("{v:.precision$}{unit}"));
    format!("{text:>width$}")
}

/// Mean scores per model over every successful window, one line each.
fn print_summary(summaries: &[Summary], levels: &[f64]) -> std::io::Result<()> {
    let mut header = format!(
        "{:<16} {:>8} {:>7} {:>12} {:>8} {:>8}",
        "model", "windows", "failed", "MAE", "sMAPE", "MASE"
    );
    for l in levels {
        header.push_str(&format!(" {:>9}", format!("cov{}%", format_level(*l))));
    }
    outln!("{header}")?;
    for s in summaries {
        let name = &s.model;
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
