//! What `serve` writes to the audit log ([`crate::audit`]): every decision it publishes and
//! every configuration it loads or refuses, each with the SHA-256 of the object before and
//! after.
//!
//! A decision is recorded when it differs from the last one recorded for its workload (each
//! refresh decides anew, so in practice every published decision); one restored from disk at
//! start is not recorded again. The configuration's hash is that of the file's bytes.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::audit::{sha256_hex, AuditError, AuditLog, Entry, ObjectRef, Outcome};
use crate::series::Millis;

use super::snapshot::{Snapshot, WorkloadDecision};

/// The actor of what the server does on its own.
pub const ACTOR: &str = "prescale-serve";

/// Where the audit log is written and when its file is rotated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditSettings {
    /// The active file (rotated ones sit beside it).
    pub file: PathBuf,
    /// Rotate the active file once it holds this many bytes.
    pub rotate_bytes: u64,
}

/// The default rotation size: 64 MiB.
pub const DEFAULT_ROTATE_BYTES: u64 = 64 << 20;

/// The change record a configuration carries (`compliance.change`: author, approver,
/// ticket), copied into the audit record of its load so the log says who changed it and
/// who approved it.
fn change_record(bytes: &[u8]) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let Ok(doc) = serde_norway::from_slice::<serde_norway::Value>(bytes) else {
        return out;
    };
    if let Some(change) = doc.get("compliance").and_then(|c| c.get("change")) {
        for key in ["author", "approver", "ticket"] {
            if let Some(v) = change.get(key).and_then(|v| v.as_str()) {
                out.insert(key.to_string(), v.to_string());
            }
        }
    }
    out
}

/// The server's audit log and what it last recorded.
#[derive(Debug)]
pub struct AuditTrail {
    log: Mutex<AuditLog>,
    /// Per workload (`namespace/name`), the hash of the last decision recorded.
    last: Mutex<HashMap<String, String>>,
    /// The hash of the configuration in effect.
    config: Mutex<Option<String>>,
}

/// The SHA-256 of a decision as persisted (its JSON).
pub fn decision_hash(d: &WorkloadDecision) -> String {
    sha256_hex(&serde_json::to_vec(d).unwrap_or_default())
}

impl AuditTrail {
    /// Opens the log; a torn last line left by a crash is moved aside and a `recover` record
    /// appended (and logged). `restored` holds the decisions served from disk at start, which
    /// are not recorded again.
    pub fn open(
        settings: &AuditSettings,
        restored: &Snapshot,
        now: Millis,
    ) -> Result<Self, AuditError> {
        let (mut log, torn) = AuditLog::open(&settings.file, Some(settings.rotate_bytes))?;
        if let Some(torn) = torn {
            tracing::error!(file = %settings.file.display(), bytes = torn.bytes, saved_to = %torn.saved_to.display(), seq = torn.seq, "the audit log's last line was torn (a write cut short); moved aside");
            log.recover(&torn, ACTOR, now)?;
        }
        let last = restored
            .workloads
            .iter()
            .map(|d| (format!("{}/{}", d.namespace, d.workload), decision_hash(d)))
            .collect();
        Ok(Self {
            log: Mutex::new(log),
            last: Mutex::new(last),
            config: Mutex::new(None),
        })
    }

    /// The log's active file.
    pub fn path(&self) -> PathBuf {
        self.log
            .lock()
            .map(|l| l.path().to_path_buf())
            .unwrap_or_default()
    }

    /// The records of the decisions of `snapshot` not recorded yet, timed at their decision.
    pub fn decisions(&self, snapshot: &Snapshot) -> Vec<Entry> {
        let Ok(mut last) = self.last.lock() else {
            return vec![];
        };
        let mut entries = Vec::new();
        for d in &snapshot.workloads {
            let key = format!("{}/{}", d.namespace, d.workload);
            let after = decision_hash(d);
            let before = last.get(&key).cloned();
            if before.as_deref() == Some(after.as_str()) {
                continue;
            }
            let mut annotations = BTreeMap::new();
            annotations.insert("desired".to_string(), d.desired.to_string());
            annotations.insert("value".to_string(), d.value.to_string());
            if let Some(c) = d.current {
                annotations.insert("current".to_string(), c.to_string());
            }
            annotations.insert("reason".to_string(), d.reason.clone());
            if let Some(f) = &d.fallback {
                annotations.insert("fallback".to_string(), f.clone());
            }
            let models: Vec<String> = d
                .metrics
                .iter()
                .map(|m| format!("{}={}", m.name, m.model.as_deref().unwrap_or("none")))
                .collect();
            annotations.insert("models".to_string(), models.join(","));
            entries.push(Entry {
                time: d.decided_at,
                actor: ACTOR.to_string(),
                action: "publish".to_string(),
                object: ObjectRef {
                    resource: "workloads".to_string(),
                    namespace: Some(d.namespace.clone()),
                    name: d.workload.clone(),
                },
                before,
                after: Some(after.clone()),
                outcome: Outcome::Success,
                annotations,
            });
            last.insert(key, after);
        }
        entries
    }

    /// The record of a configuration load: `action` is `load` (at start) or `reload`;
    /// `bytes` the file's content as read (`None` when unreadable); `refused` the problems
    /// when it was not applied.
    pub fn configuration(
        &self,
        action: &str,
        path: &Path,
        bytes: Option<&[u8]>,
        refused: Option<String>,
        now: Millis,
    ) -> Entry {
        let after = bytes.map(sha256_hex);
        let mut config = self.config.lock().ok();
        let before = config.as_ref().and_then(|c| (**c).clone());
        let mut annotations = bytes.map(change_record).unwrap_or_default();
        let outcome = match refused {
            Some(problems) => {
                annotations.insert("problems".to_string(), problems);
                Outcome::Failure
            }
            None => {
                if let Some(c) = config.as_mut() {
                    **c = after.clone();
                }
                Outcome::Success
            }
        };
        Entry {
            time: now,
            actor: ACTOR.to_string(),
            action: action.to_string(),
            object: ObjectRef {
                resource: "configurations".to_string(),
                namespace: None,
                name: path.display().to_string(),
            },
            before,
            after,
            outcome,
            annotations,
        }
    }

    /// Appends `entries` here and now (each synced to disk).
    pub fn append_blocking(&self, entries: Vec<Entry>) -> Result<u64, AuditError> {
        let Ok(mut log) = self.log.lock() else {
            return Ok(0);
        };
        let mut n = 0;
        for e in entries {
            log.append(e)?;
            n += 1;
        }
        Ok(n)
    }

    /// Appends `entries` on a blocking thread; a failure is logged and returned as `false`
    /// (serving goes on: the decisions are already published).
    pub async fn append(self: &Arc<Self>, entries: Vec<Entry>) -> bool {
        if entries.is_empty() {
            return true;
        }
        let this = self.clone();
        match tokio::task::spawn_blocking(move || this.append_blocking(entries)).await {
            Ok(Ok(_)) => true,
            Ok(Err(e)) => {
                tracing::error!(error = %crate::human::chain(&e), "could not append to the audit log");
                false
            }
            Err(e) => {
                tracing::error!(error = %e, "could not append to the audit log");
                false
            }
        }
    }
}
