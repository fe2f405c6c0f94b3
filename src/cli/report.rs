//! `prescale report`: backtests, a forecast and a scaling replay per trace, in one
//! self-contained HTML file.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use crate::model::ModelSpec;
use crate::report::{self, section::section, ReportSettings};
use crate::scale::replay_config::Capacity;

use super::args::{parse_duration, InputArgs};

/// Flags of `prescale report`.
#[derive(Debug, Args)]
pub(super) struct ReportArgs {
    #[command(flatten)]
    input: InputArgs,

    /// The HTML file to write.
    #[arg(long, value_name = "PATH", default_value = "report.html")]
    output: PathBuf,

    /// Models to backtest, comma-separated.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "seasonal-naive,ets,mstl,theta,arima,prophet"
    )]
    models: Vec<String>,

    /// Steps per backtest window [default: one day of steps].
    #[arg(long, value_name = "H")]
    horizon: Option<usize>,

    /// Backtest windows, the last ones of each trace.
    #[arg(long, value_name = "K", default_value_t = 3)]
    windows: usize,

    /// Load one replica serves, or `auto`: the trace's 95th percentile over 10 (about ten pods
    /// at busy times).
    #[arg(long, value_name = "C|auto", default_value = "auto")]
    capacity: Capacity,

    /// Pod start-up time.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "2m")]
    startup: Duration,

    /// Forecast quantile the predictive policy provisions for.
    #[arg(long, value_name = "Q", default_value_t = 0.9)]
    quantile: f64,

    /// Most replicas any policy may run (the HPA's maxReplicas): with `--capacity auto`, 100 is
    /// ten times the busy count.
    #[arg(long, value_name = "N", default_value_t = 100)]
    max_replicas: i64,

    /// Model the replay refits.
    #[arg(long, default_value = "ets")]
    replay_model: String,

    /// How often the replay refits its model.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "1h")]
    refit_every: Duration,

    /// History each replay fit sees.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "14d")]
    history: Duration,

    /// How much of each trace's end is replayed.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "28d")]
    replay: Duration,
}

impl ReportArgs {
    fn settings(&self) -> ReportSettings {
        ReportSettings {
            models: self.models.iter().map(ModelSpec::named).collect(),
            horizon: self.horizon,
            windows: self.windows,
            capacity: self.capacity,
            startup: self.startup,
            quantile: self.quantile,
            max_replicas: self.max_replicas,
            replay_model: ModelSpec::named(&self.replay_model),
            refit_every: self.refit_every,
            history: self.history,
            replay: self.replay,
        }
    }
}

/// Runs `prescale report`.
pub(super) fn run(args: ReportArgs) -> anyhow::Result<()> {
    let settings = args.settings();
    if let Capacity::PerReplica(c) = settings.capacity {
        anyhow::ensure!(
            c.is_finite() && c > 0.0,
            "--capacity {c} is neither a positive number nor auto"
        );
    }
    args.input.refuse_as_output(&args.output, &[])?;
    let traces = args.input.load()?;
    let sections = traces
        .iter()
        .map(|trace| {
            note!(
                "{}: backtesting {} model(s) and replaying",
                trace.labels(),
                settings.models.len()
            );
            section(&settings, trace)
        })
        .collect::<Result<Vec<_>, _>>()?;
    report::write(&settings, sections, &args.output)?;
    note!("wrote {}", args.output.display());
    Ok(())
}
