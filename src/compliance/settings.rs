//! The `compliance` block of a serve configuration: what the deployment declares about the
//! data it handles, which the controls hold it to.
//!
//! ```yaml
//! compliance:
//!   environment: production        # production (default), staging or development
//!   zone: eu                       # the residency zone prescale and its state run in
//!   dataZone: eu                   # the zone of the series it reads (its Prometheus)
//!   retention:
//!     days: 30                     # how long state (models, decisions) is kept
//!     maxDays: 30                  # the declared maximum for series data
//!   auditRetentionDays: 2555       # how long audit log files are kept
//!   labels:                        # label keys handled before storage
//!     drop: [email]
//!     hash: [user_id]
//!   change:                        # the change record of this version of the file
//!     author: alice
//!     approver: bob
//!     ticket: OPS-1234
//!   controls: /etc/prescale/controls   # more Rego controls (optional)
//! ```
//!
//! `serve` itself ignores the block except for `change`, which goes into the audit record
//! of each load and reload, and `controls`, read by the check it runs on each load.

use std::path::PathBuf;

use serde::Serialize;
use serde_norway::Value;

use crate::scale::config::{join, ConfigError, ConfigReader};

const KEYS: [&str; 9] = [
    "environment",
    "zone",
    "dataZone",
    "retention",
    "auditRetentionDays",
    "labels",
    "change",
    "controls",
    "threshold",
];
const ENVIRONMENTS: [&str; 3] = ["production", "staging", "development"];

/// Data retention.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Retention {
    /// Days state is kept.
    pub days: Option<f64>,
    /// The declared maximum, in days.
    pub max_days: Option<f64>,
}

/// Label keys handled before storage.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Labels {
    /// Dropped.
    pub drop: Vec<String>,
    /// Replaced by a hash.
    pub hash: Vec<String>,
}

/// Who changed the configuration, who approved it, and under which ticket.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Change {
    /// Who wrote the change.
    pub author: Option<String>,
    /// Who approved it.
    pub approver: Option<String>,
    /// The change ticket.
    pub ticket: Option<String>,
}

/// The compliance block, defaults applied.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Settings {
    /// `production`, `staging` or `development`.
    pub environment: String,
    /// Where prescale runs.
    pub zone: Option<String>,
    /// Where the series it reads come from.
    pub data_zone: Option<String>,
    /// Data retention.
    pub retention: Retention,
    /// Days audit files are kept.
    pub audit_retention_days: Option<f64>,
    /// Label handling.
    pub labels: Labels,
    /// The change record.
    pub change: Change,
    /// A folder of more controls.
    pub controls: Option<PathBuf>,
    /// The passing score (default 90).
    pub threshold: f64,
}

/// The passing score when none is set.
pub const DEFAULT_THRESHOLD: f64 = 90.0;

impl Default for Settings {
    fn default() -> Self {
        Self {
            // The strictest reading is the safe default: an unlabelled deployment is held to
            // production's rules.
            environment: "production".into(),
            zone: None,
            data_zone: None,
            retention: Retention::default(),
            audit_retention_days: None,
            labels: Labels::default(),
            change: Change::default(),
            controls: None,
            threshold: DEFAULT_THRESHOLD,
        }
    }
}

impl Settings {
    /// Reads the `compliance` block of a configuration document (absent: the defaults);
    /// every problem is listed with its path.
    pub fn from_document(doc: &Value) -> Result<Self, ConfigError> {
        let mut s = Settings::default();
        let Some(block) = doc.get("compliance") else {
            return Ok(s);
        };
        let mut r = ConfigReader::default();
        let path = "compliance";
        let Some(m) = r.mapping(block, path) else {
            return Err(r.into_error());
        };
        r.known(m, path, &KEYS);
        if let Some(env) = r.string(m, path, "environment", false) {
            if ENVIRONMENTS.contains(&env.as_str()) {
                s.environment = env;
            } else {
                r.problem(format!(
                    "{}: expected one of {}, got {env:?}",
                    join(path, "environment"),
                    ENVIRONMENTS.join(", ")
                ));
            }
        }
        s.zone = r.string(m, path, "zone", false);
        s.data_zone = r.string(m, path, "dataZone", false);
        let days = |r: &mut ConfigReader, m: &serde_norway::Mapping, at: &str, key: &str| {
            let d = r.number(m, at, key, Some(f64::NAN)).filter(|d| !d.is_nan());
            if d.is_some_and(|d| d < 0.0) {
                r.problem(format!("{}: days cannot be negative", join(at, key)));
            }
            d
        };
        if let Some(ret) = m.get("retention") {
            let at = join(path, "retention");
            if let Some(rm) = r.mapping(ret, &at) {
                r.known(rm, &at, &["days", "maxDays"]);
                s.retention.days = days(&mut r, rm, &at, "days");
                s.retention.max_days = days(&mut r, rm, &at, "maxDays");
            }
        }
        s.audit_retention_days = days(&mut r, m, path, "auditRetentionDays");
        if let Some(labels) = m.get("labels") {
            let at = join(path, "labels");
            if let Some(lm) = r.mapping(labels, &at) {
                r.known(lm, &at, &["drop", "hash"]);
                s.labels.drop = r.strings(lm, &at, "drop");
                s.labels.hash = r.strings(lm, &at, "hash");
            }
        }
        if let Some(change) = m.get("change") {
            let at = join(path, "change");
            if let Some(cm) = r.mapping(change, &at) {
                r.known(cm, &at, &["author", "approver", "ticket"]);
                s.change.author = r.string(cm, &at, "author", false);
                s.change.approver = r.string(cm, &at, "approver", false);
                s.change.ticket = r.string(cm, &at, "ticket", false);
            }
        }
        s.controls = r.string(m, path, "controls", false).map(PathBuf::from);
        if let Some(t) = r.number(m, path, "threshold", Some(DEFAULT_THRESHOLD)) {
            if (0.0..=100.0).contains(&t) {
                s.threshold = t;
            } else {
                r.problem(format!(
                    "{}: a score from 0 to 100, got {t}",
                    join(path, "threshold")
                ));
            }
        }
        r.finish()?;
        Ok(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(yaml: &str) -> Result<Settings, ConfigError> {
        Settings::from_document(&serde_norway::from_str(yaml).unwrap())
    }

    #[test]
    fn absent_block_is_production_with_the_default_threshold() {
        let s = settings("workloads: []\n").unwrap();
        assert_eq!(s, Settings::default());
        assert_eq!(s.environment, "production");
    }

    #[test]
    fn every_problem_is_listed_with_its_path() {
        let e = settings(
            "compliance:\n  environment: prod\n  retention: {days: -1, maxDays: x}\n  labels: {drop: 3}\n  colour: red\n  threshold: 120\n",
        )
        .unwrap_err();
        let text = e.problems.join("\n");
        for needle in [
            "compliance.environment",
            "compliance.retention.days",
            "compliance.retention.maxDays",
            "compliance.labels.drop",
            "compliance.colour",
            "compliance.threshold",
        ] {
            assert!(text.contains(needle), "{needle} missing in:\n{text}");
        }
    }

    #[test]
    fn a_full_block_is_read() {
        let s = settings(
            "compliance:\n  environment: staging\n  zone: eu\n  dataZone: us\n  retention: {days: 40, maxDays: 30}\n  auditRetentionDays: 365\n  labels: {drop: [email], hash: [user_id]}\n  change: {author: a, approver: b, ticket: T-1}\n",
        )
        .unwrap();
        assert_eq!(s.environment, "staging");
        assert_eq!(s.retention.days, Some(40.0));
        assert_eq!(s.labels.hash, ["user_id"]);
        assert_eq!(s.change.ticket.as_deref(), Some("T-1"));
    }
}
