//! `prescale bench`: published benchmarks, scored exactly as their organisers did.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Subcommand};

use crate::eval::m4;
use crate::model::auto::{self, Combine};
use crate::model::{self, lstm, Floor, ModelSpec};

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
    /// `inverse-error`.
    #[arg(long, value_name = "HOW", default_value = "best")]
    combine: Combine,

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
    }
}

fn run_m4(args: M4Args) -> anyhow::Result<()> {
    let names: Vec<String> = if args.models.is_empty() {
        model::names().into_iter().map(String::from).collect()
    } else {
        args.models
    };
    // The bench's own settings for the two models that take them here.
    let mut auto_settings = auto::Settings {
        combine: args.combine,
        ..auto::Settings::default()
    };
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
