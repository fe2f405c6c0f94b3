//! Controls: Rego policies, one file per control, evaluated with `regorus`.
//!
//! A control is a Rego module in a package under `prescale.controls` that defines
//! `metadata` (its id, framework, severity, title, what it checks and how to fix it) and a
//! set `findings`: one object per thing that fails it, with `object` (what is concerned),
//! `message` (what is wrong) and, when a machine can fix it, `remedy` (a change to the
//! configuration: `{"set": "a.b", "value": v}` or `{"add": "a.b", "value": item}`, paths
//! dotted into the configuration document). The built-in controls live in
//! `src/compliance/controls/`; users add theirs by putting more `.rego` files in a folder.
//!
//! Why Rego: auditors and platform teams already write policies in it (OPA, Gatekeeper),
//! so a control can be read, reviewed and extended without reading Rust.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::ComplianceError;

/// The built-in controls, compiled into the binary (file name, source).
const BUILT_IN: [(&str, &str); 14] = [
    ("gdpr_01.rego", include_str!("controls/gdpr_01.rego")),
    ("gdpr_02.rego", include_str!("controls/gdpr_02.rego")),
    ("gdpr_03.rego", include_str!("controls/gdpr_03.rego")),
    ("hipaa_01.rego", include_str!("controls/hipaa_01.rego")),
    ("hipaa_02.rego", include_str!("controls/hipaa_02.rego")),
    ("hipaa_03.rego", include_str!("controls/hipaa_03.rego")),
    ("sox_01.rego", include_str!("controls/sox_01.rego")),
    ("sox_02.rego", include_str!("controls/sox_02.rego")),
    ("sox_03.rego", include_str!("controls/sox_03.rego")),
    ("sox_04.rego", include_str!("controls/sox_04.rego")),
    ("pci_01.rego", include_str!("controls/pci_01.rego")),
    ("pci_02.rego", include_str!("controls/pci_02.rego")),
    ("pci_03.rego", include_str!("controls/pci_03.rego")),
    ("pci_04.rego", include_str!("controls/pci_04.rego")),
];

/// Largest control file read (a control is a page of Rego).
const MAX_CONTROL_BYTES: u64 = 1 << 20;
/// Most control files read from a folder.
const MAX_CONTROL_FILES: usize = 1000;
/// How long all controls together may take on one input: Rego terminates, but a user's
/// control over a large input could still take long, and a check must not hang `serve`.
const EVALUATION_LIMIT: Duration = Duration::from_secs(10);

/// How much a failed control costs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Weight 1.
    Low,
    /// Weight 3.
    Medium,
    /// Weight 5.
    High,
    /// Weight 10.
    Critical,
}

impl Severity {
    /// The control's weight in a score.
    pub fn weight(self) -> f64 {
        match self {
            Severity::Low => 1.0,
            Severity::Medium => 3.0,
            Severity::High => 5.0,
            Severity::Critical => 10.0,
        }
    }

    /// Its name, as written in a control.
    pub fn name(self) -> &'static str {
        match self {
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }
}

/// What a control says about itself (its `metadata` rule).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Metadata {
    /// Its id, e.g. `GDPR-01`.
    pub id: String,
    /// The framework: `GDPR`, `HIPAA`, `SOX`, `PCI` or a user's own.
    pub framework: String,
    /// How much failing it costs.
    pub severity: Severity,
    /// One line.
    pub title: String,
    /// What it checks.
    pub checks: String,
    /// How to fix a failure.
    pub fix: String,
}

/// A change to the configuration that fixes a finding.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged, deny_unknown_fields)]
pub enum Remedy {
    /// Set the value at a dotted path.
    Set {
        /// The path, e.g. `insecureHttp` or `compliance.retention.days`.
        set: String,
        /// The value.
        value: serde_json::Value,
    },
    /// Add an item to the list at a dotted path (created when missing).
    Add {
        /// The path of the list.
        add: String,
        /// The item.
        value: serde_json::Value,
    },
}

/// One thing that fails a control.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Finding {
    /// What is concerned (a label of a metric, a manifest, the audit log).
    pub object: String,
    /// What is wrong.
    pub message: String,
    /// The change that fixes it, when a machine can make it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remedy: Option<Remedy>,
}

/// A control and where it came from.
#[derive(Debug, Clone)]
pub struct Control {
    /// Its metadata.
    pub metadata: Metadata,
    /// Its file (`built-in:<name>` for the built-in ones).
    pub file: String,
    /// Its Rego package (`data.prescale.controls.<name>`).
    package: String,
}

/// A control's result on one input.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The control.
    pub control: Control,
    /// What fails it (none: it passes).
    pub findings: Vec<Finding>,
}

/// A set of controls, parsed and ready to evaluate.
#[derive(Debug, Clone)]
pub struct Controls {
    engine: regorus::Engine,
    controls: Vec<Control>,
}

impl Controls {
    /// The built-in controls and, when `extra` is given, every `.rego` file in that folder
    /// (not its subfolders). A file that does not parse is an error naming it and the line.
    pub fn load(extra: Option<&Path>) -> Result<Self, ComplianceError> {
        let mut sources: Vec<(String, String)> = BUILT_IN
            .iter()
            .map(|(name, text)| (format!("built-in:{name}"), (*text).to_string()))
            .collect();
        if let Some(dir) = extra {
            for path in rego_files(dir)? {
                let text = crate::files::read_limited_text(&path, MAX_CONTROL_BYTES).map_err(
                    |source| ComplianceError::Read {
                        path: path.clone(),
                        source,
                    },
                )?;
                sources.push((path.display().to_string(), text));
            }
        }
        Self::from_sources(sources)
    }

    /// Controls from `(file name, Rego source)` pairs.
    pub fn from_sources(sources: Vec<(String, String)>) -> Result<Self, ComplianceError> {
        let mut engine = regorus::Engine::new();
        engine.set_rego_v0(false);
        engine.set_execution_timer_config(regorus::utils::limits::ExecutionTimerConfig {
            limit: EVALUATION_LIMIT,
            check_interval: std::num::NonZeroU32::MIN.saturating_add(99),
        });
        let mut packages = Vec::new();
        for (file, text) in sources {
            let package =
                engine
                    .add_policy(file.clone(), text)
                    .map_err(|e| ComplianceError::Policy {
                        file: file.clone(),
                        message: e.to_string(),
                    })?;
            if !package.starts_with("data.prescale.controls.") {
                return Err(ComplianceError::Policy {
                    file,
                    message: format!(
                        "its package is {}, not one under prescale.controls (write `package prescale.controls.<name>`)",
                        package.trim_start_matches("data.")
                    ),
                });
            }
            packages.push((file, package));
        }
        let mut controls = Vec::new();
        let mut ids = BTreeSet::new();
        let mut seen_packages = BTreeSet::new();
        for (file, package) in packages {
            if !seen_packages.insert(package.clone()) {
                return Err(ComplianceError::Policy {
                    file,
                    message: format!(
                        "package {} is declared by another control file too",
                        package.trim_start_matches("data.")
                    ),
                });
            }
            let value = engine
                .eval_rule(format!("{package}.metadata"))
                .map_err(|e| ComplianceError::Policy {
                    file: file.clone(),
                    message: format!("its metadata cannot be evaluated: {e}"),
                })?;
            let metadata: Metadata = from_rego(&value).map_err(|e| ComplianceError::Policy {
                file: file.clone(),
                message: format!(
                    "its `metadata` must be an object with id, framework, severity (low, medium, high, critical), title, checks and fix: {e}"
                ),
            })?;
            if !ids.insert(metadata.id.clone()) {
                return Err(ComplianceError::Policy {
                    file,
                    message: format!("control id {} is used by another control", metadata.id),
                });
            }
            controls.push(Control {
                metadata,
                file,
                package,
            });
        }
        Ok(Self { engine, controls })
    }

    /// The controls, in the order loaded.
    pub fn controls(&self) -> &[Control] {
        &self.controls
    }

    /// Evaluates every control on `input` (see [`super::input`] for its shape).
    pub fn evaluate(&self, input: &serde_json::Value) -> Result<Vec<Outcome>, ComplianceError> {
        // A fresh copy per evaluation: the engine keeps the input, and a shared checker
        // (serve's) may be used from several places.
        let mut engine = self.engine.clone();
        engine.set_input(regorus::Value::from(input.clone()));
        let mut outcomes = Vec::with_capacity(self.controls.len());
        for control in &self.controls {
            let value = engine
                .eval_rule(format!("{}.findings", control.package))
                .map_err(|e| ComplianceError::Evaluation {
                    id: control.metadata.id.clone(),
                    message: e.to_string(),
                })?;
            // A control none of whose rules fired has no `findings` at all.
            let findings: Vec<Finding> = if value == regorus::Value::Undefined {
                Vec::new()
            } else {
                from_rego(&value).map_err(|e| ComplianceError::Evaluation {
                    id: control.metadata.id.clone(),
                    message: format!(
                        "`findings` must be a set of objects with object, message and an optional remedy: {e}"
                    ),
                })?
            };
            outcomes.push(Outcome {
                control: control.clone(),
                findings,
            });
        }
        Ok(outcomes)
    }
}

/// A Rego value read as `T` (through JSON, the format both sides share).
fn from_rego<T: serde::de::DeserializeOwned>(value: &regorus::Value) -> Result<T, String> {
    let json = value.to_json_str().map_err(|e| e.to_string())?;
    serde_json::from_str(&json).map_err(|e| e.to_string())
}

/// The `.rego` files of `dir`, sorted.
fn rego_files(dir: &Path) -> Result<Vec<PathBuf>, ComplianceError> {
    let read = |source| ComplianceError::Read {
        path: dir.to_path_buf(),
        source,
    };
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(read)? {
        let path = entry.map_err(read)?.path();
        if path.extension().is_some_and(|e| e == "rego") && path.is_file() {
            files.push(path);
        }
        if files.len() > MAX_CONTROL_FILES {
            return Err(ComplianceError::TooManyControls {
                dir: dir.to_path_buf(),
                max: MAX_CONTROL_FILES,
            });
        }
    }
    files.sort();
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_in_controls_cover_the_four_frameworks_with_unique_ids() {
        let controls = Controls::load(None).unwrap();
        assert_eq!(controls.controls().len(), 14);
        let frameworks: BTreeSet<&str> = controls
            .controls()
            .iter()
            .map(|c| c.metadata.framework.as_str())
            .collect();
        assert_eq!(
            frameworks.into_iter().collect::<Vec<_>>(),
            ["GDPR", "HIPAA", "PCI", "SOX"]
        );
    }

    #[test]
    fn a_malformed_control_is_an_error_naming_the_file_and_line() {
        let bad = "package prescale.controls.bad\n\nimport rego.v1\n\nmetadata := {\"id\": \"X\"\n";
        let err = Controls::from_sources(vec![("mine/bad.rego".into(), bad.into())]).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("mine/bad.rego"), "{text}");
        assert!(text.contains(":6:") || text.contains(":5:"), "{text}");
    }

    #[test]
    fn metadata_and_packages_are_checked() {
        let outside = "package other\n\nimport rego.v1\n\nmetadata := {}\n";
        let err = Controls::from_sources(vec![("o.rego".into(), outside.into())]).unwrap_err();
        assert!(
            err.to_string().contains("not one under prescale.controls"),
            "{err}"
        );
        let no_severity = "package prescale.controls.x\n\nimport rego.v1\n\nmetadata := {\"id\": \"X-1\", \"framework\": \"X\", \"severity\": \"dire\", \"title\": \"t\", \"checks\": \"c\", \"fix\": \"f\"}\n";
        let err = Controls::from_sources(vec![("x.rego".into(), no_severity.into())]).unwrap_err();
        assert!(err.to_string().contains("severity"), "{err}");
    }

    #[test]
    fn findings_come_back_typed_and_a_silent_control_passes() {
        let rego = r#"package prescale.controls.tls

import rego.v1

metadata := {"id": "T-1", "framework": "T", "severity": "high", "title": "TLS on",
  "checks": "no plain HTTP", "fix": "set insecureHttp to false"}

findings contains f if {
  input.config.insecureHttp == true
  f := {"object": "the listener", "message": "plain HTTP", "remedy": {"set": "insecureHttp", "value": false}}
}
"#;
        let controls = Controls::from_sources(vec![("tls.rego".into(), rego.into())]).unwrap();
        let on = controls
            .evaluate(&serde_json::json!({"config": {"insecureHttp": true}}))
            .unwrap();
        assert_eq!(on[0].findings.len(), 1);
        assert_eq!(
            on[0].findings[0].remedy,
            Some(Remedy::Set {
                set: "insecureHttp".into(),
                value: serde_json::json!(false)
            })
        );
        let off = controls
            .evaluate(&serde_json::json!({"config": {}}))
            .unwrap();
        assert!(off[0].findings.is_empty());
    }
}
