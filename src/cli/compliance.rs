//! `prescale compliance`: what an auditor checks. `scan` classifies the series' labels;
//! `check` scores a deployment against the controls; `fix` makes the changes that a machine
//! can make, as a diff.

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::{Args, Subcommand};

use crate::compliance::{self, classify, fix, input, Sources};

use super::args::InputArgs;
use super::Exit;

/// The exit code of a check below its threshold (1 is any other error).
const BELOW_THRESHOLD: u8 = 3;

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
    /// Score a deployment against the compliance controls (GDPR, HIPAA, SOX, PCI DSS and
    /// your own): its serve configuration, rendered manifests, audit log and the labels
    /// `scan` found. Prints the scores, every finding with its fix, and the remediation
    /// plan; exits 3 when the score is below the threshold.
    Check(Box<CheckArgs>),
    /// Make the fixes a machine can make (drop or hash a label, shorten retention, turn TLS
    /// on, ...) in the configuration, keeping its comments: prints the diff, and writes it
    /// with --apply. Lists what needs a person.
    Fix(Box<FixArgs>),
}

/// What both `check` and `fix` read.
#[derive(Debug, Args)]
struct CheckInputs {
    /// The serve configuration (its `compliance` block declares zones, retention, label
    /// handling and the change record).
    #[arg(long, value_name = "FILE")]
    config: PathBuf,

    /// The rendered manifests (`prescale deploy render --out DIR`), read recursively.
    #[arg(long, value_name = "DIR")]
    manifests: Option<PathBuf>,

    /// The audit log to verify [default: the one the configuration names].
    #[arg(long, value_name = "FILE")]
    audit_log: Option<PathBuf>,

    /// What `prescale compliance scan --json` found in the series' labels.
    #[arg(long, value_name = "FILE")]
    sightings: Option<PathBuf>,

    /// A folder of more Rego controls [default: the configuration's compliance.controls].
    #[arg(long, value_name = "DIR")]
    controls: Option<PathBuf>,

    /// The passing score [default: the configuration's compliance.threshold, or 90].
    #[arg(long, value_name = "SCORE", value_parser = threshold)]
    threshold: Option<f64>,
}

impl CheckInputs {
    fn sources(&self) -> anyhow::Result<Sources> {
        let sightings = match &self.sightings {
            Some(path) => input::read_sightings(path)?,
            None => vec![],
        };
        Ok(Sources {
            config: self.config.clone(),
            manifests: self.manifests.clone(),
            audit_log: self.audit_log.clone(),
            sightings,
        })
    }
}

fn threshold(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(t) if (0.0..=100.0).contains(&t) => Ok(t),
        _ => Err(format!("expected a score from 0 to 100, got {text:?}")),
    }
}

/// Flags of `prescale compliance check`.
#[derive(Debug, Args)]
struct CheckArgs {
    #[command(flatten)]
    inputs: CheckInputs,

    /// Print the report as JSON.
    #[arg(long)]
    json: bool,

    /// Below the threshold, also write the report with its remediation plan to this file.
    #[arg(long, value_name = "FILE")]
    plan: Option<PathBuf>,

    /// POST the JSON report to this webhook (http or https).
    #[arg(long, value_name = "URL")]
    notify: Option<String>,
}

/// Flags of `prescale compliance fix`.
#[derive(Debug, Args)]
struct FixArgs {
    #[command(flatten)]
    inputs: CheckInputs,

    /// Write the fixed configuration (atomically) instead of only showing the diff.
    #[arg(long)]
    apply: bool,
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
        ComplianceCommand::Check(a) => check(*a),
        ComplianceCommand::Fix(a) => fix(*a),
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

fn check(args: CheckArgs) -> anyhow::Result<()> {
    let sources = args.inputs.sources()?;
    let (report, _) = compliance::check(
        &sources,
        args.inputs.controls.as_deref(),
        args.inputs.threshold,
    )?;
    let json = serde_json::to_string_pretty(&report)?;
    if args.json {
        outln!("{json}")?;
    } else {
        outln!("{}", report.to_text().trim_end())?;
    }
    if let Some(url) = &args.notify {
        notify(url, &json).with_context(|| format!("posting the report to {url}"))?;
        note!("posted the report to {url}");
    }
    if !report.passed {
        if let Some(plan) = &args.plan {
            crate::files::write_atomic(plan, report.to_text().as_bytes())
                .with_context(|| format!("writing the plan to {}", plan.display()))?;
            note!("remediation plan written to {}", plan.display());
        }
        return Err(Exit {
            code: BELOW_THRESHOLD,
            message: format!(
                "compliance score {:.1} is below the threshold {:.0}: {} finding(s), {} fixed by `prescale compliance fix --apply`",
                report.score,
                report.threshold,
                report.findings.len(),
                report.findings.iter().filter(|f| f.remedy.is_some()).count()
            ),
        }
        .into());
    }
    Ok(())
}

fn fix(args: FixArgs) -> anyhow::Result<()> {
    let sources = args.inputs.sources()?;
    let controls = args.inputs.controls.as_deref();
    let (report, gathered) = compliance::check(&sources, controls, args.inputs.threshold)?;
    let fixed = fix::apply(&gathered.config_text, &compliance::remedies(&report));
    let name = args.inputs.config.display().to_string();
    let diff = fix::diff(&name, &gathered.config_text, &fixed.text);
    if diff.is_empty() {
        outln!("nothing to fix automatically in {name}")?;
    } else {
        outln!("{}", diff.trim_end())?;
    }
    for (remedy, why) in &fixed.refused {
        note!(
            "not fixed: {} ({why})",
            crate::compliance::score::describe(remedy)
        );
    }
    let manual: Vec<_> = report
        .findings
        .iter()
        .filter(|f| f.remedy.is_none())
        .collect();
    if !manual.is_empty() {
        note!("needs a person ({}):", manual.len());
        for f in manual {
            note!("  {:<9} {}: {}", f.control, f.object, f.message);
            note!("            fix: {}", f.fix);
        }
    }
    let (after, _) =
        compliance::check_text(&sources, &fixed.text, controls, args.inputs.threshold)?;
    note!(
        "score {:.1} -> {:.1} with these fixes (threshold {:.0})",
        report.score,
        after.score,
        after.threshold
    );
    if args.apply && !diff.is_empty() {
        write_fixed(&args.inputs.config, &fixed.text)?;
        note!("applied to {name}");
    } else if !diff.is_empty() {
        note!("not applied: run again with --apply to write {name}");
    }
    Ok(())
}

/// Writes the fixed configuration in place of the old (atomically: an interrupted write
/// leaves the old file; the old file's permissions are kept).
fn write_fixed(path: &Path, text: &str) -> anyhow::Result<()> {
    crate::files::write_atomic(path, text.as_bytes())
        .with_context(|| format!("writing {}", path.display()))
}

/// POSTs `json` to `url`, giving up after 10 seconds.
fn notify(url: &str, json: &str) -> anyhow::Result<()> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async {
        let response = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(10))
            .build()?
            .post(url)
            .header("content-type", "application/json")
            .body(json.to_string())
            .send()
            .await?;
        let status = response.status();
        anyhow::ensure!(status.is_success(), "the webhook answered {status}");
        Ok(())
    })
}
