//! `prescale bench`: published benchmarks, scored exactly as their organisers did.

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::{Args, Subcommand};

use crate::eval::m4;
use crate::model::auto::{self, Combine};
use crate::model::{self, lstm, Floor, ModelSpec};
use crate::series::Series;

/// Flags of `prescale bench`.
#[derive(Debug, Args)]
pub(super) struct BenchArgs {
    #[command(subcommand)]
    which: Bench,
}

#[derive(Debug, Subcommand)]
enum Bench {
    /// The M4 hourly protocol: 414 series, horizon 48, sMAPE, MASE (m = 24) and OWA against
    /// Naive2 (hourly sMAPE 18.383, MASE 2.395). Prints CSV, one row per model.
    M4(M4Args),
    /// Operations data at autoscaling horizons: every series of a step (5 minutes by
    /// default) in a folder, rolling-origin backtests at several horizons, every model and
    /// `auto`; MASE, sMAPE and 95% coverage per model and horizon, and `auto`'s choice per
    /// series.
    Ops(OpsArgs),
}

#[derive(Debug, Args)]
struct OpsArgs {
    /// Folder of CSV series (`timestamp,value`); files of another step are skipped.
    #[arg(long, value_name = "DIR", default_value = "../shared/datasets/nab")]
    data: PathBuf,

    /// The step of the series to use.
    #[arg(long, value_name = "DURATION", value_parser = super::args::parse_duration, default_value = "5m")]
    step: std::time::Duration,

    /// Horizons in steps, comma-separated [default: 5 minutes, 30 minutes, 1 hour, 1 day
    /// of 5-minute steps].
    #[arg(long, value_delimiter = ',', default_value = "1,6,12,288")]
    horizons: Vec<usize>,

    /// Backtest windows per series and horizon (the last ones, back to back).
    #[arg(long, value_name = "K", default_value_t = 4)]
    windows: usize,

    /// Models to run, comma-separated.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "seasonal-naive,ets,theta,mstl,arima,prophet,lstm,ets-nonseasonal,theta-nonseasonal,auto"
    )]
    models: Vec<String>,

    /// How `auto` combines its candidates [default: auto's own].
    #[arg(long, value_name = "HOW")]
    combine: Option<Combine>,

    /// `auto`'s candidates, comma-separated registry names [default: auto's own list].
    #[arg(long, value_delimiter = ',', value_name = "MODELS")]
    candidates: Vec<String>,

    /// Only the first N series (sorted by file name).
    #[arg(long, value_name = "N")]
    limit: Option<usize>,

    /// Also write the series as loaded and every window scored to this folder
    /// (`<series>.csv`, `windows.csv`), so a peer (`benches/peers/statsforecast_ops.py`)
    /// forecasts exactly the same windows.
    #[arg(long, value_name = "DIR")]
    export: Option<PathBuf>,
}

#[derive(Debug, Args)]
struct M4Args {
    /// Folder holding Hourly-train.csv and Hourly-test.csv.
    #[arg(long, value_name = "DIR", default_value = "datasets/m4-hourly")]
    data: PathBuf,

    /// Models to run, comma-separated [default: every registered model].
    #[arg(long, value_delimiter = ',')]
    models: Vec<String>,

    /// Only the first N series (for a quick look; published figures need all 414).
    #[arg(long, value_name = "N")]
    limit: Option<usize>,

    /// Floor forecasts and intervals at zero: `auto` when the history never went below zero
    /// (every M4 hourly series), `zero` always, `none` never.
    #[arg(long, value_name = "FLOOR", default_value = "auto")]
    floor: Floor,

    /// How `auto` combines its candidates: `best`, `topK` (e.g. `top2`), `median` or
    /// `inverse-error` [default: auto's own].
    #[arg(long, value_name = "HOW")]
    combine: Option<Combine>,

    /// `auto`'s candidates, comma-separated registry names [default: auto's own list].
    #[arg(long, value_delimiter = ',', value_name = "MODELS")]
    candidates: Vec<String>,

    /// A network folder from `prescale train` for the `lstm` row [default: the bundled
    /// network for the series' step].
    #[arg(long, value_name = "DIR")]
    network: Option<PathBuf>,
}

/// Runs `prescale bench`.
pub(super) fn run(args: BenchArgs) -> anyhow::Result<()> {
    match args.which {
        Bench::M4(a) => run_m4(a),
        Bench::Ops(a) => run_ops(a),
    }
}

/// One series' windows and seconds per model, and `auto`'s choice on its whole history.
type SeriesResult = (
    Vec<(Vec<crate::eval::backtest::Window>, f64)>,
    Option<String>,
);

fn run_ops(args: OpsArgs) -> anyhow::Result<()> {
    use crate::eval::backtest;
    use crate::eval::Summary;
    use rayon::prelude::*;
    use std::time::Instant;

    let step = i64::try_from(args.step.as_millis()).context("the step is too long")?;
    let mut files: Vec<PathBuf> = std::fs::read_dir(&args.data)
        .with_context(|| format!("reading {}", args.data.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "csv"))
        .collect();
    files.sort();
    let mut all = Vec::new();
    for path in &files {
        // A repeated timestamp (a clock set back) keeps the mean of its samples.
        let options = crate::source::LoadOptions {
            duplicates: crate::series::Duplicates::Mean,
            ..crate::source::LoadOptions::default()
        };
        let loaded = crate::source::load(path, &options)
            .with_context(|| format!("loading {}", path.display()))?;
        for series in loaded {
            if series.step() == step {
                all.push(series);
            } else {
                note!(
                    "{}: skipped, its step is {} ms, not {step} ms",
                    path.display(),
                    series.step()
                );
            }
        }
    }
    all.truncate(args.limit.unwrap_or(usize::MAX));
    anyhow::ensure!(
        !all.is_empty(),
        "no series of that step in {}",
        args.data.display()
    );
    let mut auto_settings = auto::Settings::default();
    if let Some(c) = args.combine {
        auto_settings.combine = c;
    }
    if !args.candidates.is_empty() {
        auto_settings.candidates = args.candidates.iter().map(ModelSpec::named).collect();
    }
    let models = args
        .models
        .iter()
        .map(|name| {
            let settings = match name.as_str() {
                "auto" => serde_json::to_value(&auto_settings)?,
                _ => serde_json::Value::Null,
            };
            model::build(name, &settings).with_context(|| format!("--models {name}"))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let levels = [95.0];
    let seasons: Vec<Vec<usize>> = all
        .iter()
        .map(|s| crate::model::season::detect_for(s).1)
        .collect();
    if let Some(dir) = &args.export {
        export_windows(dir, &all, &seasons, &args)?;
    }
    for &horizon in &args.horizons {
        let plan = ops_plan(&args, horizon);
        // Per series: per model, its windows and the seconds they took; auto's choice.
        let results: Vec<SeriesResult> =
            all.par_iter()
                .zip(&seasons)
                .map(|(series, seasons)| {
                    let period = seasons.first().copied().unwrap_or(1);
                    let per_model = models
                        .iter()
                        .map(|m| {
                            let started = Instant::now();
                            let windows =
                                backtest::run(m.as_ref(), series, &plan, seasons, period, &levels)
                                    .unwrap_or_default();
                            (windows, started.elapsed().as_secs_f64())
                        })
                        .collect();
                    let choice = models.iter().find(|m| m.name() == "auto").map(|m| {
                        match model::fit_floored_for(
                            m.as_ref(),
                            series,
                            seasons,
                            Floor::Auto,
                            Some(horizon),
                        ) {
                            Ok(f) => f.describe(),
                            Err(e) => format!("failed: {}", crate::human::chain(&e)),
                        }
                    });
                    (per_model, choice)
                })
                .collect();
        outln!(
            "\nhorizon {horizon} steps ({}), {} series, {} windows each",
            humantime::format_duration(args.step * horizon as u32),
            all.len(),
            args.windows
        )?;
        outln!(
            "{:<18} {:>8} {:>8} {:>8} {:>7} {:>9}",
            "model",
            "MASE",
            "sMAPE",
            "cov95%",
            "failed",
            "seconds"
        )?;
        let mut best_single: Option<(f64, &str)> = None;
        let mut auto_mase = None;
        for (i, m) in models.iter().enumerate() {
            let windows: Vec<&backtest::Window> =
                results.iter().flat_map(|(r, _)| r[i].0.iter()).collect();
            let seconds: f64 = results.iter().map(|(r, _)| r[i].1).sum();
            let s = Summary::of(m.name(), windows);
            let show = |v: Option<f64>| v.map_or("n/a".to_string(), |v| format!("{v:.3}"));
            outln!(
                "{:<18} {:>8} {:>8} {:>8} {:>7} {:>9.1}",
                m.name(),
                show(s.mase),
                show(s.smape),
                s.coverage_at(95.0)
                    .map_or("n/a".to_string(), |c| format!("{c:.1}")),
                s.failed,
                seconds
            )?;
            match (m.name(), s.mase) {
                ("auto", mase) => auto_mase = mase,
                (name, Some(mase))
                    if auto_settings.candidates.iter().any(|c| c.name == name)
                        && best_single.is_none_or(|(b, _)| mase < b) =>
                {
                    best_single = Some((mase, name));
                }
                _ => {}
            }
        }
        if let (Some(a), Some((b, name))) = (auto_mase, best_single) {
            outln!(
                "auto against its best candidate ({name}): {:+.1}%",
                100.0 * (a / b - 1.0)
            )?;
        }
        for ((_, choice), series) in results.iter().zip(&all) {
            if let Some(choice) = choice {
                outln!("  {}: {choice}", backtest::series_name(series))?;
            }
        }
    }
    Ok(())
}

/// The windows `bench ops` scores at `horizon`: the last `--windows` blocks, back to back.
fn ops_plan(args: &OpsArgs, horizon: usize) -> crate::eval::backtest::Plan {
    crate::eval::backtest::Plan {
        horizon,
        windows: args.windows,
        step_between: horizon,
        floor: Floor::Auto,
    }
}

/// Writes each series as `bench ops` loaded it (`timestamp` in ms, `value`, empty where
/// missing) and `windows.csv` (`series,file,seasons,period,horizon,window,origin`: the
/// forecast starts at row `origin` of the series file, from the rows before it; `seasons`
/// space-separated, `period` scales MASE). Written by hand: two numeric columns need no
/// table library, and the peer reads them with pandas.
fn export_windows(
    dir: &Path,
    all: &[Series],
    seasons: &[Vec<usize>],
    args: &OpsArgs,
) -> anyhow::Result<()> {
    use crate::eval::backtest::series_name;
    use std::fmt::Write as _;

    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut windows = String::from("series,file,seasons,period,horizon,window,origin\n");
    for (series, seasons) in all.iter().zip(seasons) {
        let name = series_name(series);
        let file = crate::files::path_component(&name) + ".csv";
        let mut text = String::from("timestamp,value\n");
        for (i, v) in series.values().iter().enumerate() {
            let value = if v.is_finite() {
                v.to_string()
            } else {
                String::new()
            };
            writeln!(text, "{},{value}", series.timestamp(i))?;
        }
        crate::files::write_atomic(&dir.join(&file), text.as_bytes())?;
        let period = seasons.first().copied().unwrap_or(1);
        let listed: Vec<String> = seasons.iter().map(usize::to_string).collect();
        for &horizon in &args.horizons {
            let plan = ops_plan(args, horizon);
            // A series too short for these windows is skipped by the backtest too.
            let Ok(origins) = plan.origins(series.len()) else {
                continue;
            };
            for (window, origin) in origins.into_iter().enumerate() {
                writeln!(
                    windows,
                    "{name},{file},{},{period},{horizon},{window},{origin}",
                    listed.join(" ")
                )?;
            }
        }
    }
    crate::files::write_atomic(&dir.join("windows.csv"), windows.as_bytes())?;
    note!("wrote the series and their windows to {}", dir.display());
    Ok(())
}

fn run_m4(args: M4Args) -> anyhow::Result<()> {
    let names: Vec<String> = if args.models.is_empty() {
        model::names().into_iter().map(String::from).collect()
    } else {
        args.models
    };
    // The bench's own settings for the two models that take them here.
    let mut auto_settings = auto::Settings::default();
    if let Some(c) = args.combine {
        auto_settings.combine = c;
    }
    if !args.candidates.is_empty() {
        auto_settings.candidates = args.candidates.iter().map(ModelSpec::named).collect();
    }
    let lstm_settings = lstm::Settings {
        network: args.network.clone(),
    };
    let models = names
        .iter()
        .map(|name| {
            let settings = match name.as_str() {
                "auto" => serde_json::to_value(&auto_settings)?,
                "lstm" => serde_json::to_value(&lstm_settings)?,
                _ => serde_json::Value::Null,
            };
            model::build(name, &settings).with_context(|| format!("--models {name}"))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let data = m4::load(&args.data)
        .with_context(|| format!("loading the M4 hourly set from {}", args.data.display()))?;
    outln!("model,smape,mase,owa,seconds,n_series,coverage_95,msis_95,fallbacks")?;
    for m in &models {
        let s = m4::evaluate_floored(m.as_ref(), &data, args.limit, args.floor)?;
        outln!(
            "{},{:.3},{:.3},{:.4},{:.3},{},{:.2},{:.3},{}",
            s.model,
            s.smape,
            s.mase,
            s.owa,
            s.seconds,
            s.n_series,
            s.coverage_95,
            s.msis_95,
            s.fallbacks
        )?;
    }
    Ok(())
}
