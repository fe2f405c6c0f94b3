//! The `prescale` command line: one file per subcommand, each parsing its flags into the
//! library's settings, calling the library, and printing.

/// `writeln!` to stdout that returns the error instead of panicking, so a closed pipe
/// (`prescale ... | head`) ends the command quietly (see `main`).
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        writeln!(std::io::stdout().lock(), $($arg)*)
    }};
}

/// `eprintln!` that never panics: a progress note that cannot be written is dropped.
macro_rules! note {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr().lock(), $($arg)*);
    }};
}

mod args;
mod audit;
mod backtest;
mod bench;
mod compliance;
mod demo;
mod deploy;
mod forecast;
mod progress;
mod prophet_args;
mod report;
mod serve;
mod simulate;
mod telemetry;
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
    /// Replay a load trace under the reactive HPA (autoscaling/v2, as the controller runs it),
    /// prescale's predictive policy and the hybrid of both; one CSV row per policy.
    Simulate(Box<simulate::SimulateArgs>),
    /// Backtests, a forecast figure and a scaling replay per trace, in one self-contained
    /// HTML file.
    Report(Box<report::ReportArgs>),
    /// Run the whole path on the bundled NYC taxi data: forecast the last day from the
    /// history before it and score it against what happened.
    Demo(demo::DemoArgs),
    /// Serve scaling decisions to Kubernetes: the external metrics API and a KEDA external
    /// scaler, kept fresh on live Prometheus history.
    Serve(Box<serve::ServeArgs>),
    /// Kubernetes manifests that run `serve` in a cluster.
    Deploy(Box<deploy::DeployArgs>),
    /// The audit log that `serve` writes: check its hash chain.
    Audit(audit::AuditArgs),
    /// What an auditor checks: personal, health and payment data in the series' labels,
    /// and a deployment scored against GDPR, HIPAA, SOX and PCI DSS controls, with fixes.
    Compliance(compliance::ComplianceArgs),
}

/// Runs a parsed command line; library events at `warn` and above (or as `PRESCALE_LOG`
/// says, e.g. `PRESCALE_LOG=debug`) go to stderr, and spans to an OTLP collector when
/// `OTEL_EXPORTER_OTLP_ENDPOINT` is set.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    telemetry::init();
    let name = format!("{:?}", cli.command);
    let name = name
        .split(['(', ' '])
        .next()
        .unwrap_or_default()
        .to_lowercase();
    // The root of an offline command's trace (`serve` makes one per refresh and request).
    let root = (name != "serve").then(|| tracing::info_span!("command", command = %name));
    let result = match &root {
        Some(span) => span.in_scope(|| dispatch(cli)),
        None => dispatch(cli),
    };
    drop(root);
    telemetry::flush();
    result
}

fn dispatch(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Forecast(args) => forecast::run(*args),
        Command::Backtest(args) => backtest::run(*args),
        Command::Train(args) => train::run(*args),
        Command::Bench(args) => bench::run(args),
        Command::Simulate(args) => simulate::run(*args),
        Command::Report(args) => report::run(*args),
        Command::Demo(args) => demo::run(args),
        Command::Serve(args) => serve::run(*args),
        Command::Deploy(args) => deploy::run(*args),
        Command::Audit(args) => audit::run(args),
        Command::Compliance(args) => compliance::run(args),
    }
}

/// An error that ends the command with its own exit code (1 is any other error), e.g. a
/// compliance score below its threshold.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct Exit {
    /// The exit code.
    pub code: u8,
    /// What to print.
    pub message: String,
}

/// The exit code for a failed command: the [`Exit`] code it carries, or 1.
pub fn exit_code(error: &anyhow::Error) -> u8 {
    error.downcast_ref::<Exit>().map_or(1, |e| e.code)
}

/// The error's chain on one line, for `main`: `what failed: why: root cause`.
pub fn error_line(error: &anyhow::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    for cause in error.chain() {
        let text = cause.to_string();
        // A wrapper whose message already ends with its cause's would repeat it.
        if !parts.last().is_some_and(|p| p.ends_with(&text)) {
            parts.push(text);
        }
    }
    parts.join(": ")
}

/// True when the command failed only because stdout was closed (`prescale ... | head`):
/// that is success for a command line tool.
pub fn is_broken_pipe(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_lines_join_causes_once_and_broken_pipes_are_recognised() {
        let io = std::io::Error::new(std::io::ErrorKind::BrokenPipe, "pipe closed");
        let e = anyhow::Error::new(io).context("writing the forecast");
        assert_eq!(error_line(&e), "writing the forecast: pipe closed");
        assert!(is_broken_pipe(&e));
        assert!(!is_broken_pipe(&anyhow::anyhow!("no such file")));
    }
}
