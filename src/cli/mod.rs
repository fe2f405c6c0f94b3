//! The `prescale` command line: one file per subcommand, each thin over the library.

mod args;
mod backtest;
mod bench;
mod demo;
mod forecast;
mod prophet_args;
mod report;
mod simulate;
mod train;

use clap::{Parser, Subcommand};

/// Forecast service load and plan scaling before the load arrives.
#[derive(Debug, Parser)]
#[command(name = "prescale", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Forecast a series from a file or a Prometheus query.
    Forecast(Box<forecast::ForecastArgs>),
    /// Rolling-origin backtest: refit each model at the last K origins of each series and
    /// score the forecasts (MAE, RMSE, sMAPE, MASE, interval coverage and MSIS).
    Backtest(Box<backtest::BacktestArgs>),
    /// Train a global model (the LSTM) on many series and save it to a folder.
    Train(Box<train::TrainArgs>),
    /// Published benchmarks (M4 hourly), scored as their organisers scored them.
    Bench(bench::BenchArgs),
    /// Replay a load trace under the reactive HPA (autoscaling/v2 default behavior),
    /// prescale's predictive policy and the hybrid of both; one CSV row per policy.
    Simulate(Box<simulate::SimulateArgs>),
    /// Backtests, a forecast figure and a scaling replay per trace, in one self-contained
    /// HTML file.
    Report(Box<report::ReportArgs>),
    /// Run the whole path on the bundled NYC taxi data: forecast the last day from the
    /// history before it and score it against what happened.
    Demo(demo::DemoArgs),
}

/// Runs a parsed command line.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Forecast(args) => forecast::run(*args),
        Command::Backtest(args) => backtest::run(*args),
        Command::Train(args) => train::run(*args),
        Command::Bench(args) => bench::run(args),
        Command::Simulate(args) => simulate::run(*args),
        Command::Report(args) => report::run(*args),
        Command::Demo(args) => demo::run(args),
    }
}
