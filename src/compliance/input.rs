//! The document the controls read (`input` in Rego), gathered from what an auditor would
//! look at: the serve configuration, the manifests rendered for a cluster, the audit log and
//! the classifier's sightings.
//!
//! ```text
//! input.configFile    the configuration's path
//! input.config        the configuration document itself (YAML read as JSON)
//! input.settings      its `compliance` block, defaults applied (see Settings)
//! input.serve         facts from the validated configuration:
//!                     {tls, certificate: "file"|"self-signed"|"none", authentication,
//!                      allowedNames, prometheusScheme: "https"|"http"|null, stateDir,
//!                      histories: [{workload, namespace, metric, days}]}
//! input.audit         the audit log: {enabled, file, present, verified, records, problem,
//!                     firstTime, lastTime,
//!                     configChanges: [{seq, action, outcome, author, approver, ticket}]}
//! input.manifests     the rendered Kubernetes objects ([] when none were given)
//! input.sightings     [{metric, label, kind, series, by_key}], kinds: email, ip-address,
//!                     user-id, card-number, health
//! ```

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::audit::{self, VerifyOptions};
use crate::serve::{FilesAt, Overrides, ServeConfig};

use super::settings::Settings;
use super::ComplianceError;

/// Largest manifest file read.
const MAX_MANIFEST_BYTES: u64 = 16 << 20;
/// Most manifest files read from a folder (a cluster's folder holds a few dozen).
const MAX_MANIFEST_FILES: usize = 10_000;
/// Most audit records whose configuration changes are handed to the controls (the newest).
const MAX_CONFIG_CHANGES: usize = 10_000;

/// One sighting of the classifier, as `prescale compliance scan --json` writes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SightingRecord {
    /// The metric.
    pub metric: String,
    /// The label key.
    pub label: String,
    /// The kind (`email`, `ip-address`, `user-id`, `card-number`, `health`).
    pub kind: String,
    /// Whether the key gave it away.
    pub by_key: bool,
    /// Series it was seen in.
    pub series: usize,
}

/// What goes into one check.
#[derive(Debug, Clone, Default)]
pub struct Sources {
    /// The serve configuration file.
    pub config: PathBuf,
    /// A folder of rendered manifests (`prescale deploy render --out`), read recursively.
    pub manifests: Option<PathBuf>,
    /// The audit log to read instead of the one the configuration names (another machine's
    /// path, copied here).
    pub audit_log: Option<PathBuf>,
    /// The classifier's sightings.
    pub sightings: Vec<SightingRecord>,
}

/// The input document, and the configuration's text it was built from (for fixes).
#[derive(Debug, Clone)]
pub struct Gathered {
    /// The document the controls read.
    pub input: Value,
    /// The configuration's text.
    pub config_text: String,
    /// The compliance settings read from it.
    pub settings: Settings,
}

/// Reads everything `sources` names into the controls' input.
pub fn gather(sources: &Sources) -> Result<Gathered, ComplianceError> {
    let text = crate::files::read_limited_text(&sources.config, crate::files::MAX_CONFIG_BYTES)
        .map_err(|source| ComplianceError::Read {
            path: sources.config.clone(),
            source,
        })?;
    gather_with_text(sources, &text)
}

/// As [`gather`], with the configuration's text given (a fixed version not yet written).
pub fn gather_with_text(sources: &Sources, text: &str) -> Result<Gathered, ComplianceError> {
    let mut gathered = from_config_text(&sources.config, text, sources.audit_log.as_deref())?;
    if let Some(dir) = &sources.manifests {
        gathered.input["manifests"] = Value::Array(read_manifests(dir)?);
    }
    gathered.input["sightings"] = serde_json::to_value(&sources.sightings).unwrap_or_default();
    Ok(gathered)
}

/// The input for a configuration given as text (no manifests, no sightings); the audit log
/// is the one it names unless `audit_log` says otherwise.
pub fn from_config_text(
    path: &Path,
    text: &str,
    audit_log: Option<&Path>,
) -> Result<Gathered, ComplianceError> {
    // The files it names belong to the pod it runs in: not checked here.
    let config =
        ServeConfig::parse(text, &Overrides::default(), FilesAt::Elsewhere).map_err(|e| {
            ComplianceError::Config {
                path: path.to_path_buf(),
                problems: e.to_string(),
            }
        })?;
    let yaml: serde_norway::Value =
        serde_norway::from_str(text).map_err(|e| ComplianceError::Config {
            path: path.to_path_buf(),
            problems: e.to_string(),
        })?;
    let settings = Settings::from_document(&yaml).map_err(|e| ComplianceError::Config {
        path: path.to_path_buf(),
        problems: e.to_string(),
    })?;
    let document = serde_json::to_value(&yaml).map_err(|e| ComplianceError::Config {
        path: path.to_path_buf(),
        problems: format!("cannot be read as JSON for the controls: {e}"),
    })?;
    // How much of each series a fit keeps: the retention of series data in practice.
    let histories: Vec<Value> = config
        .workloads
        .iter()
        .flat_map(|w| {
            w.metrics.iter().map(move |m| {
                json!({"workload": w.workload, "namespace": w.namespace, "metric": m.target.name,
                       "days": m.history.as_secs_f64() / 86_400.0})
            })
        })
        .collect();
    let audit_file = audit_log
        .map(Path::to_path_buf)
        .or_else(|| config.audit.as_ref().map(|a| a.file.clone()));
    let serve = json!({
        "tls": !config.insecure_http,
        "certificate": if config.insecure_http { "none" } else if config.tls.is_some() { "file" } else { "self-signed" },
        "authentication": config.authentication.is_some(),
        "allowedNames": config.authentication.as_ref().map(|a| a.allowed_names.clone()).unwrap_or_default(),
        "prometheusScheme": config.prometheus.as_ref().map(|p| if p.url.starts_with("https://") { "https" } else { "http" }),
        "stateDir": config.state_dir.as_ref().map(|d| d.display().to_string()),
        "histories": histories,
    });
    let input = json!({
        "configFile": path.display().to_string(),
        "config": document,
        "settings": serde_json::to_value(&settings).unwrap_or_default(),
        "serve": serve,
        "audit": audit_state(config.audit.is_some(), audit_file.as_deref()),
        "manifests": [],
        "sightings": [],
    });
    Ok(Gathered {
        input,
        config_text: text.to_string(),
        settings,
    })
}

/// The audit log's state: on or off, present, verified, and its configuration changes.
fn audit_state(enabled: bool, file: Option<&Path>) -> Value {
    // A log with nothing to verify: why, in the same shape as a present one.
    let absent = |file: Option<&Path>, problem: String| {
        json!({"enabled": enabled, "file": file.map(|f| f.display().to_string()),
               "present": false, "verified": false, "records": 0, "problem": problem,
               "configChanges": []})
    };
    let Some(file) = file else {
        return absent(None, "no audit log is configured".into());
    };
    let files = match audit::files_of(file) {
        Ok(f) if !f.is_empty() => f,
        Ok(_) => return absent(Some(file), "the audit log does not exist yet".into()),
        Err(e) => return absent(Some(file), crate::human::chain(&e)),
    };
    let (verified, problem, records, span) = match audit::verify(&files, &VerifyOptions::default())
    {
        Ok(v) => (true, None, v.records, v.span),
        Err(e) => (false, Some(crate::human::chain(&e)), 0, None),
    };
    json!({
        "enabled": enabled,
        "file": file.display().to_string(),
        "present": true,
        "verified": verified,
        "records": records,
        "problem": problem,
        "firstTime": span.as_ref().map(|s| s.0.clone()),
        "lastTime": span.as_ref().map(|s| s.1.clone()),
        "configChanges": config_changes(&files),
    })
}

/// The configuration loads and reloads recorded in the log, newest last, with the change
/// record each carried (`author`, `approver`, `ticket` annotations; null when missing).
fn config_changes(files: &[PathBuf]) -> Vec<Value> {
    let mut changes = Vec::new();
    for record in audit::records(files).unwrap_or_default() {
        if record.object.resource != "configurations" || record.outcome != audit::Outcome::Success {
            continue;
        }
        let get = |k: &str| record.annotations.get(k).cloned();
        changes.push(json!({
            "seq": record.seq,
            "time": record.time,
            "action": record.action,
            "author": get("author"),
            "approver": get("approver"),
            "ticket": get("ticket"),
        }));
    }
    let skip = changes.len().saturating_sub(MAX_CONFIG_CHANGES);
    changes.split_off(skip)
}

/// Every object in the YAML files under `dir` (recursively).
fn read_manifests(dir: &Path) -> Result<Vec<Value>, ComplianceError> {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let read = |source| ComplianceError::Read {
            path: d.clone(),
            source,
        };
        for entry in std::fs::read_dir(&d).map_err(read)? {
            let path = entry.map_err(read)?.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
                files.push(path);
            }
            if files.len() > MAX_MANIFEST_FILES {
                return Err(ComplianceError::TooManyManifests {
                    dir: dir.to_path_buf(),
                    max: MAX_MANIFEST_FILES,
                });
            }
        }
    }
    files.sort();
    let mut objects = Vec::new();
    for path in files {
        let text =
            crate::files::read_limited_text(&path, MAX_MANIFEST_BYTES).map_err(|source| {
                ComplianceError::Read {
                    path: path.clone(),
                    source,
                }
            })?;
        crate::scale::config::check_nesting(&text).map_err(|e| ComplianceError::Manifest {
            path: path.clone(),
            message: e.to_string(),
        })?;
        for doc in serde_norway::Deserializer::from_str(&text) {
            let value = Value::deserialize(doc).map_err(|e| ComplianceError::Manifest {
                path: path.clone(),
                message: e.to_string(),
            })?;
            if !value.is_null() {
                let mut value = value;
                if let Some(o) = value.as_object_mut() {
                    o.insert("_file".into(), json!(path.display().to_string()));
                }
                objects.push(value);
            }
        }
    }
    Ok(objects)
}

/// Reads the JSON written by `prescale compliance scan --json`.
pub fn read_sightings(path: &Path) -> Result<Vec<SightingRecord>, ComplianceError> {
    let text = crate::files::read_limited_text(path, crate::files::MAX_CONFIG_BYTES).map_err(
        |source| ComplianceError::Read {
            path: path.to_path_buf(),
            source,
        },
    )?;
    serde_json::from_str(&text).map_err(|e| ComplianceError::Sightings {
        path: path.to_path_buf(),
        message: e.to_string(),
    })
}
