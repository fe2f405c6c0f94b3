//! `prescale compliance`: what the series prescale reads carry that an auditor cares about.

use clap::{Args, Subcommand};

use crate::compliance::classify;

use super::args::InputArgs;

/// `prescale compliance` and its subcommands.
#[derive(Debug, Args)]
pub(super) struct ComplianceArgs {
    #[command(subcommand)]
    command: ComplianceCommand,
}

#[derive(Debug, Subcommand)]
enum ComplianceCommand {
    /// Scan the label keys and values of the series (files or a Prometheus query) for
    /// personal, health and payment data: e-mail and IP addresses, user ids, card numbers
    /// (Luhn), health labels. Prints where each was seen, never the value; exits 1 when
    /// anything was.
    Scan(Box<ScanArgs>),
}

/// Flags of `prescale compliance scan`.
#[derive(Debug, Args)]
struct ScanArgs {
    #[command(flatten)]
    input: InputArgs,

    /// Print JSON (one object per finding) instead of a table.
    #[arg(long)]
    json: bool,
}

/// Runs `prescale compliance`.
pub(super) fn run(args: ComplianceArgs) -> anyhow::Result<()> {
    match args.command {
        ComplianceCommand::Scan(scan) => {
            let series = scan.input.load()?;
            let found = classify::classify(series.iter().map(|s| s.labels()));
            if scan.json {
                outln!("{}", serde_json::to_string_pretty(&found)?)?;
            } else if found.is_empty() {
                outln!(
                    "no personal, health or payment data in the labels of {} series",
                    series.len()
                )?;
            } else {
                outln!(
                    "{:<32} {:<20} {:<12} {:>7}  seen in",
                    "metric",
                    "label",
                    "kind",
                    "series"
                )?;
                for s in &found {
                    outln!(
                        "{:<32} {:<20} {:<12} {:>7}  {}",
                        s.metric,
                        s.label,
                        s.kind.name(),
                        s.series,
                        if s.by_key { "its key" } else { "its values" }
                    )?;
                }
            }
            if !found.is_empty() {
                anyhow::bail!(
                    "{} label(s) carry personal, health or payment data: drop or hash them before storage (Prometheus metric_relabel_configs: action labeldrop, or hashmod)",
                    found.len()
                );
            }
            Ok(())
        }
    }
}
