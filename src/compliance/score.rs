//! Scores: 0–100 per framework and overall, each control weighted by its severity
//! (critical 10, high 5, medium 3, low 1). A control passes when it has no finding; the
//! score is the weight of the controls that pass over the weight of all of them, so one
//! critical failure costs as much as two high ones.

use serde::Serialize;

use super::control::{Outcome, Remedy, Severity};

/// A framework's score.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FrameworkScore {
    /// `GDPR`, `HIPAA`, `SOX`, `PCI` or a user's.
    pub framework: String,
    /// 0 to 100.
    pub score: f64,
    /// Controls of the framework.
    pub controls: usize,
    /// Of which failed.
    pub failed: usize,
}

/// One finding, with its control's identity and fix.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReportFinding {
    /// The control's id.
    pub control: String,
    /// Its framework.
    pub framework: String,
    /// Its severity.
    pub severity: Severity,
    /// Its title.
    pub title: String,
    /// What is concerned.
    pub object: String,
    /// What is wrong.
    pub message: String,
    /// How to fix it (the control's advice).
    pub fix: String,
    /// The change `prescale compliance fix` makes, when it can make one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remedy: Option<Remedy>,
}

/// A control's verdict.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ControlResult {
    /// Its id.
    pub id: String,
    /// Its framework.
    pub framework: String,
    /// Its severity.
    pub severity: Severity,
    /// Its title.
    pub title: String,
    /// Where it was read from.
    pub file: String,
    /// No finding.
    pub passed: bool,
    /// How many findings.
    pub findings: usize,
}

/// The whole check.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    /// What was checked (the configuration's path).
    pub subject: String,
    /// 0 to 100, over every control.
    pub score: f64,
    /// The passing score.
    pub threshold: f64,
    /// `score >= threshold`.
    pub passed: bool,
    /// Per framework, sorted by name.
    pub frameworks: Vec<FrameworkScore>,
    /// Every control's verdict.
    pub controls: Vec<ControlResult>,
    /// Every finding, worst severity first.
    pub findings: Vec<ReportFinding>,
}

/// `100 × passed weight / total weight`, to one decimal; 100 with no controls.
fn score<'a>(outcomes: impl Iterator<Item = &'a Outcome>) -> f64 {
    let (mut passed, mut total) = (0.0, 0.0);
    for o in outcomes {
        let w = o.control.metadata.severity.weight();
        total += w;
        if o.findings.is_empty() {
            passed += w;
        }
    }
    if total > 0.0 {
        (1000.0 * passed / total).round() / 10.0
    } else {
        100.0
    }
}

impl Report {
    /// Scores `outcomes` against `threshold`.
    pub fn new(subject: &str, outcomes: &[Outcome], threshold: f64) -> Self {
        let mut names: Vec<&str> = outcomes
            .iter()
            .map(|o| o.control.metadata.framework.as_str())
            .collect();
        names.sort_unstable();
        names.dedup();
        let frameworks = names
            .into_iter()
            .map(|name| {
                let of = || {
                    outcomes
                        .iter()
                        .filter(move |o| o.control.metadata.framework == name)
                };
                FrameworkScore {
                    framework: name.to_string(),
                    score: score(of()),
                    controls: of().count(),
                    failed: of().filter(|o| !o.findings.is_empty()).count(),
                }
            })
            .collect();
        let controls = outcomes
            .iter()
            .map(|o| ControlResult {
                id: o.control.metadata.id.clone(),
                framework: o.control.metadata.framework.clone(),
                severity: o.control.metadata.severity,
                title: o.control.metadata.title.clone(),
                file: o.control.file.clone(),
                passed: o.findings.is_empty(),
                findings: o.findings.len(),
            })
            .collect();
        let mut findings: Vec<ReportFinding> = outcomes
            .iter()
            .flat_map(|o| {
                o.findings.iter().map(|f| ReportFinding {
                    control: o.control.metadata.id.clone(),
                    framework: o.control.metadata.framework.clone(),
                    severity: o.control.metadata.severity,
                    title: o.control.metadata.title.clone(),
                    object: f.object.clone(),
                    message: f.message.clone(),
                    fix: o.control.metadata.fix.clone(),
                    remedy: f.remedy.clone(),
                })
            })
            .collect();
        findings.sort_by(|a, b| {
            b.severity
                .cmp(&a.severity)
                .then_with(|| a.control.cmp(&b.control))
                .then_with(|| a.object.cmp(&b.object))
        });
        let overall = score(outcomes.iter());
        Self {
            subject: subject.to_string(),
            score: overall,
            threshold,
            passed: overall >= threshold,
            frameworks,
            controls,
            findings,
        }
    }

    /// The report as text: the scores, then every finding with its fix, then the plan
    /// (what `prescale compliance fix` changes, and what needs a person).
    pub fn to_text(&self) -> String {
        use std::fmt::Write as _;
        let mut out = String::new();
        let _ = writeln!(
            out,
            "compliance of {}: {:.1}/100 (threshold {:.0}): {}",
            self.subject,
            self.score,
            self.threshold,
            if self.passed {
                "pass"
            } else {
                "BELOW THRESHOLD"
            }
        );
        let _ = writeln!(
            out,
            "\n{:<10} {:>6} {:>9} {:>7}",
            "framework", "score", "controls", "failed"
        );
        for f in &self.frameworks {
            let _ = writeln!(
                out,
                "{:<10} {:>6.1} {:>9} {:>7}",
                f.framework, f.score, f.controls, f.failed
            );
        }
        if self.findings.is_empty() {
            let _ = writeln!(out, "\nno findings: every control passes");
            return out;
        }
        let _ = writeln!(out, "\nfindings:");
        for f in &self.findings {
            let _ = writeln!(
                out,
                "  {:<9} {:<8} {}: {}",
                f.control,
                f.severity.name(),
                f.object,
                f.message
            );
        }
        let automatic: Vec<&ReportFinding> = self
            .findings
            .iter()
            .filter(|f| f.remedy.is_some())
            .collect();
        let manual: Vec<&ReportFinding> = self
            .findings
            .iter()
            .filter(|f| f.remedy.is_none())
            .collect();
        let _ = writeln!(out, "\nremediation plan:");
        if !automatic.is_empty() {
            let _ = writeln!(
                out,
                "  fixed by `prescale compliance fix --config {} --apply` ({}):",
                self.subject,
                automatic.len()
            );
            for f in automatic {
                if let Some(r) = &f.remedy {
                    let _ = writeln!(out, "    {:<9} {}", f.control, describe(r));
                }
            }
        }
        if !manual.is_empty() {
            let _ = writeln!(out, "  needs a person ({}):", manual.len());
            let mut seen = std::collections::BTreeSet::new();
            for f in manual {
                let _ = writeln!(out, "    {:<9} {}: {}", f.control, f.object, f.message);
                if seen.insert(&f.control) {
                    let _ = writeln!(out, "              fix: {}", f.fix);
                }
            }
        }
        out
    }
}

/// A remedy in words.
pub fn describe(remedy: &Remedy) -> String {
    match remedy {
        Remedy::Set { set, value } => format!("set {set} to {value}"),
        Remedy::Add { add, value } => format!("add {value} to {add}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compliance::control::Controls;

    #[test]
    fn scores_weigh_controls_by_severity() {
        let rego = |id: &str, severity: &str, fails: bool| {
            format!(
                "package prescale.controls.{}\n\nmetadata := {{\"id\": \"{id}\", \"framework\": \"F\", \"severity\": \"{severity}\", \"title\": \"t\", \"checks\": \"c\", \"fix\": \"x\"}}\n\nfindings contains f if {{\n  {}\n  f := {{\"object\": \"o\", \"message\": \"m\"}}\n}}\n",
                id.to_lowercase().replace('-', "_"),
                if fails { "true" } else { "false" }
            )
        };
        let controls = Controls::from_sources(vec![
            ("a.rego".into(), rego("A-1", "critical", true)),
            ("b.rego".into(), rego("B-1", "high", false)),
            ("c.rego".into(), rego("C-1", "low", false)),
        ])
        .unwrap();
        let outcomes = controls.evaluate(&serde_json::json!({})).unwrap();
        let report = Report::new("x.yaml", &outcomes, 90.0);
        // (5 + 1) / (10 + 5 + 1) = 37.5 %
        assert_eq!(report.score, 37.5);
        assert!(!report.passed);
        assert_eq!(report.frameworks[0].failed, 1);
        assert_eq!(report.findings.len(), 1);
        assert!(report.to_text().contains("needs a person (1)"));
    }
}
