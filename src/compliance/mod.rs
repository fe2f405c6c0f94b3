//! Compliance: what prescale's own data and deployment show to an auditor.
//!
//! - [`classify`](mod@classify): which label keys and values of the series prescale reads
//!   carry personal, health or payment data, reported by metric and label key, never by
//!   value;
//! - [`control`]: the controls, Rego policies evaluated with `regorus` (14 built in, for GDPR,
//!   HIPAA, SOX and PCI DSS; users add theirs in a folder);
//! - [`input`]: the document they read (configuration, rendered manifests, audit log state,
//!   sightings);
//! - [`score`]: severity-weighted scores per framework and overall, and the report;
//! - [`fix`]: the remedies applied to the configuration's text, as a diff;
//! - [`settings`]: the configuration's `compliance` block.
//!
//! ```
//! use prescale::compliance::{check, Sources};
//!
//! let sources = Sources {
//!     config: "examples/compliance-fail.yaml".into(),
//!     ..Sources::default()
//! };
//! let (report, _) = check(&sources, None, None)?;
//! assert!(!report.passed);
//! assert!(report.findings.iter().any(|f| f.control == "SOX-03"));
//! # Ok::<(), prescale::compliance::ComplianceError>(())
//! ```

use std::path::{Path, PathBuf};

pub mod classify;
pub mod control;
pub mod fix;
pub mod input;
pub mod score;
pub mod settings;

pub use classify::{classify, DataKind, Sighting};
pub use control::{Controls, Remedy, Severity};
pub use input::{Gathered, Sources};
pub use score::Report;
pub use settings::Settings;

/// What can go wrong in a compliance check.
#[derive(Debug, thiserror::Error)]
pub enum ComplianceError {
    /// A file could not be read.
    #[error("cannot read {}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A control file is malformed or breaks the conventions.
    #[error("control {file}: {message}")]
    Policy {
        /// The file (`built-in:<name>` for a built-in one).
        file: String,
        /// What is wrong, with the line where the parser says.
        message: String,
    },
    /// A control failed while evaluating.
    #[error("control {id} failed to evaluate: {message}")]
    Evaluation {
        /// The control's id.
        id: String,
        /// Why.
        message: String,
    },
    /// The configuration does not load.
    #[error("the configuration {} is not valid: {problems}", path.display())]
    Config {
        /// The file.
        path: PathBuf,
        /// Every problem.
        problems: String,
    },
    /// A manifest does not parse.
    #[error("manifest {}: {message}", path.display())]
    Manifest {
        /// The file.
        path: PathBuf,
        /// Why.
        message: String,
    },
    /// The sightings file is not what `compliance scan --json` writes.
    #[error("sightings {}: {message}", path.display())]
    Sightings {
        /// The file.
        path: PathBuf,
        /// Why.
        message: String,
    },
    /// Too many control files.
    #[error("{} holds more than {max} control files", dir.display())]
    TooManyControls {
        /// The folder.
        dir: PathBuf,
        /// The limit.
        max: usize,
    },
    /// Too many manifest files.
    #[error("{} holds more than {max} manifest files", dir.display())]
    TooManyManifests {
        /// The folder.
        dir: PathBuf,
        /// The limit.
        max: usize,
    },
}

/// Checks what `sources` names with the built-in controls and those in `controls` (or the
/// configuration's `compliance.controls` folder); `threshold` overrides the configuration's
/// (`compliance.threshold`, default 90). Returns the report and what it was computed from.
pub fn check(
    sources: &Sources,
    controls: Option<&Path>,
    threshold: Option<f64>,
) -> Result<(Report, Gathered), ComplianceError> {
    let gathered = input::gather(sources)?;
    let report = evaluate(sources, &gathered, controls, threshold)?;
    Ok((report, gathered))
}

/// As [`check`], for the configuration's text given here (a fixed version not yet written).
pub fn check_text(
    sources: &Sources,
    text: &str,
    controls: Option<&Path>,
    threshold: Option<f64>,
) -> Result<(Report, Gathered), ComplianceError> {
    let gathered = input::gather_with_text(sources, text)?;
    let report = evaluate(sources, &gathered, controls, threshold)?;
    Ok((report, gathered))
}

fn evaluate(
    sources: &Sources,
    gathered: &Gathered,
    controls: Option<&Path>,
    threshold: Option<f64>,
) -> Result<Report, ComplianceError> {
    let controls = Controls::load(controls.or(gathered.settings.controls.as_deref()))?;
    let outcomes = controls.evaluate(&gathered.input)?;
    Ok(Report::new(
        &sources.config.display().to_string(),
        &outcomes,
        threshold.unwrap_or(gathered.settings.threshold),
    ))
}

/// The check `serve` runs on each configuration it loads: the built-in controls and the
/// configuration's own, on the configuration and the audit log it names. Each finding is
/// logged as a warning.
#[derive(Debug, Default, Clone, Copy)]
pub struct ServeCheck;

impl crate::serve::ConfigCheck for ServeCheck {
    fn scores(&self, path: &Path) -> Result<Vec<(String, f64)>, String> {
        let sources = Sources {
            config: path.to_path_buf(),
            ..Sources::default()
        };
        let (report, _) = check(&sources, None, None).map_err(|e| crate::human::chain(&e))?;
        for f in &report.findings {
            tracing::warn!(control = %f.control, severity = f.severity.name(), object = %f.object, "compliance finding: {}", f.message);
        }
        let mut scores: Vec<(String, f64)> = report
            .frameworks
            .iter()
            .map(|f| (f.framework.clone(), f.score))
            .collect();
        scores.push(("all".to_string(), report.score));
        Ok(scores)
    }
}

/// The remedies of a report's findings, worst first, each once.
pub fn remedies(report: &Report) -> Vec<Remedy> {
    let mut out: Vec<Remedy> = Vec::new();
    for f in &report.findings {
        if let Some(r) = &f.remedy {
            if !out.contains(r) {
                out.push(r.clone());
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sources(config: &str, audit: Option<&str>) -> Sources {
        Sources {
            config: config.into(),
            audit_log: audit.map(PathBuf::from),
            sightings: input::read_sightings(Path::new("examples/compliance-sightings.json"))
                .unwrap(),
            ..Sources::default()
        }
    }

    #[test]
    fn the_examples_pass_and_fail_as_documented() {
        let (pass, _) = check(
            &sources(
                "examples/compliance-pass.yaml",
                Some("examples/compliance-audit.jsonl"),
            ),
            None,
            None,
        )
        .unwrap();
        assert_eq!(pass.score, 100.0, "{}", pass.to_text());
        let (fail, _) = check(&sources("examples/compliance-fail.yaml", None), None, None).unwrap();
        let failed: Vec<&str> = fail
            .controls
            .iter()
            .filter(|c| !c.passed)
            .map(|c| c.id.as_str())
            .collect();
        assert_eq!(
            failed,
            [
                "GDPR-01", "GDPR-02", "GDPR-03", "HIPAA-01", "HIPAA-02", "HIPAA-03", "SOX-01",
                "SOX-02", "SOX-03", "PCI-01", "PCI-02", "PCI-03"
            ],
            "{}",
            fail.to_text()
        );
        assert!(!fail.passed);
    }

    #[test]
    fn fixing_the_failing_example_clears_every_automatic_finding() {
        let s = sources("examples/compliance-fail.yaml", None);
        let (report, gathered) = check(&s, None, None).unwrap();
        let fixed = fix::apply(&gathered.config_text, &remedies(&report));
        assert!(fixed.refused.is_empty(), "{:?}", fixed.refused);
        let (after, _) = check_text(&s, &fixed.text, None, None).unwrap();
        assert!(
            after.findings.iter().all(|f| f.remedy.is_none()),
            "{}",
            after.to_text()
        );
        assert!(after.score > report.score);
    }
}
