//! Published decisions: an immutable snapshot the refresh loop replaces as a whole and
//! requests only read (through `arc-swap`), persisted under the state directory so a restart
//! serves the last decisions at once.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::series::{format_millis, Millis};

use super::quantity;
use super::selector::Selector;

/// The format tag of a persisted snapshot.
pub const FORMAT: &str = "prescale-decisions";
/// The version this build writes and reads.
pub const VERSION: u32 = 1;
/// The External metric holding each workload's planned replica count (AverageValue target 1).
pub const REPLICAS_METRIC: &str = "prescale_replicas";
/// The External metric holding each metric's planned forecast quantile.
pub const FORECAST_METRIC: &str = "prescale_forecast";

/// What was decided for one metric of a workload.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MetricDecision {
    /// The metric's name.
    pub name: String,
    /// The forecast quantile the plan provisions for this metric (the largest over the lead
    /// time), in the metric's units; `None` while it has no forecast.
    pub forecast: Option<f64>,
    /// The replicas this metric alone needs.
    pub replicas: Option<i64>,
    /// The model that made the forecast (`None` before the first fit).
    pub model: Option<String>,
    /// When the model was fitted (the time of the last point it saw).
    pub fitted_at: Option<Millis>,
    /// The newest observation's time.
    pub observed_at: Option<Millis>,
    /// The newest observation.
    pub last_observed: Option<f64>,
    /// Consecutive failures (query, fit, plan).
    pub failures: u32,
    /// The last failure, with its causes.
    pub error: Option<String>,
}

/// What was decided for one workload.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkloadDecision {
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub workload: String,
    /// When it was decided (wall clock).
    pub decided_at: Millis,
    /// The replicas the plan wants.
    pub desired: i64,
    /// The value served as `prescale_replicas` (the plan, or the first count the HPA will
    /// move to from the current one despite its tolerance).
    pub value: f64,
    /// The replica count the decision assumed now.
    pub current: Option<i64>,
    /// The decision in words.
    pub reason: String,
    /// Why a fallback was served instead of a forecast, when it was.
    pub fallback: Option<String>,
    /// Per metric.
    pub metrics: Vec<MetricDecision>,
}

/// Every decision at one moment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Snapshot {
    /// [`FORMAT`].
    pub format: String,
    /// [`VERSION`].
    pub version: u32,
    /// When it was made (wall clock).
    pub made_at: Millis,
    /// Workloads without a decision yet (starting, or failing before a first fit).
    pub pending: Vec<String>,
    /// The decisions.
    pub workloads: Vec<WorkloadDecision>,
}

impl Snapshot {
    /// An empty snapshot: nothing decided yet.
    pub fn empty(pending: Vec<String>) -> Self {
        Self {
            format: FORMAT.into(),
            version: VERSION,
            made_at: 0,
            pending,
            workloads: vec![],
        }
    }
}

/// Why a persisted snapshot was not used (reported, never fatal).
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// The file could not be read or written.
    #[error("{}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Not a snapshot this build reads.
    #[error("{}: not a prescale decisions file of version {VERSION}", path.display())]
    Foreign {
        /// The file.
        path: PathBuf,
        /// What the parser said.
        #[source]
        source: Option<serde_json::Error>,
    },
}

/// The snapshot's file under a state directory.
pub fn snapshot_path(state_dir: &Path) -> PathBuf {
    state_dir.join("decisions.json")
}

/// Writes `snapshot` atomically (temporary file, sync, rename).
pub fn persist(state_dir: &Path, snapshot: &Snapshot) -> Result<(), StateError> {
    let path = snapshot_path(state_dir);
    let bytes = serde_json::to_vec(snapshot).map_err(|e| StateError::Foreign {
        path: path.clone(),
        source: Some(e),
    })?;
    crate::files::write_atomic(&path, &bytes).map_err(|source| StateError::Io { path, source })
}

/// Reads the persisted snapshot; `Ok(None)` when there is none yet.
pub fn restore(state_dir: &Path) -> Result<Option<Snapshot>, StateError> {
    let path = snapshot_path(state_dir);
    let bytes = match crate::files::read_limited(&path, crate::files::MAX_MODEL_BYTES) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(StateError::Io { path, source }),
    };
    let snapshot: Snapshot = serde_json::from_slice(&bytes).map_err(|e| StateError::Foreign {
        path: path.clone(),
        source: Some(e),
    })?;
    if snapshot.format != FORMAT || snapshot.version != VERSION {
        return Err(StateError::Foreign { path, source: None });
    }
    Ok(Some(snapshot))
}

/// One item of an `ExternalMetricValueList`, rendered once when published.
#[derive(Debug, Clone)]
pub struct Item {
    /// Its labels, matched against the request's selector.
    pub labels: BTreeMap<String, String>,
    /// The item as JSON.
    pub json: String,
}

/// A snapshot with the index requests read: items per (namespace, metric name), rendered
/// once so a request only filters and concatenates.
#[derive(Debug)]
pub struct Published {
    /// The snapshot.
    pub snapshot: Arc<Snapshot>,
    items: HashMap<(String, String), Vec<Item>>,
    /// Per (namespace, metric name), each workload's positions in `items`: the HPA asks for
    /// one workload, and a thousand configured ones should not cost a thousand matches.
    by_workload: HashMap<(String, String), HashMap<String, Vec<usize>>>,
    /// Namespaces that hold a configured workload (an unknown namespace is a 404).
    namespaces: std::collections::HashSet<String>,
}

impl Published {
    /// Indexes `snapshot`; `namespaces` are those of the configured workloads, and `window`
    /// the seconds each value covers (the refresh period).
    pub fn new(
        snapshot: Snapshot,
        namespaces: impl IntoIterator<Item = String>,
        window: u64,
    ) -> Self {
        let mut items: HashMap<(String, String), Vec<Item>> = HashMap::new();
        for w in &snapshot.workloads {
            let timestamp = format_seconds(w.decided_at);
            if let Some(value) = quantity::format(w.value) {
                let labels = BTreeMap::from([("workload".to_string(), w.workload.clone())]);
                items
                    .entry((w.namespace.clone(), REPLICAS_METRIC.into()))
                    .or_default()
                    .push(Item {
                        json: item_json(REPLICAS_METRIC, &labels, &timestamp, window, &value),
                        labels,
                    });
            }
            for m in &w.metrics {
                let Some(value) = m.forecast.and_then(quantity::format) else {
                    continue;
                };
                let labels = BTreeMap::from([
                    ("workload".to_string(), w.workload.clone()),
                    ("metric".to_string(), m.name.clone()),
                ]);
                items
                    .entry((w.namespace.clone(), FORECAST_METRIC.into()))
                    .or_default()
                    .push(Item {
                        json: item_json(FORECAST_METRIC, &labels, &timestamp, window, &value),
                        labels,
                    });
            }
        }
        let by_workload = items
            .iter()
            .map(|(key, list)| {
                let mut index: HashMap<String, Vec<usize>> = HashMap::new();
                for (i, item) in list.iter().enumerate() {
                    if let Some(w) = item.labels.get("workload") {
                        index.entry(w.clone()).or_default().push(i);
                    }
                }
                (key.clone(), index)
            })
            .collect();
        Self {
            snapshot: Arc::new(snapshot),
            items,
            by_workload,
            namespaces: namespaces.into_iter().collect(),
        }
    }

    /// The items of `metric` in `namespace` that `selector` matches, in published order;
    /// through the workload index when the selector pins the workload.
    pub fn matching(&self, namespace: &str, metric: &str, selector: &Selector) -> Vec<&Item> {
        let key = (namespace.to_string(), metric.to_string());
        let Some(list) = self.items.get(&key) else {
            return Vec::new();
        };
        match (selector.pinned("workload"), self.by_workload.get(&key)) {
            (Some(workloads), Some(index)) => {
                let mut at: Vec<usize> = workloads
                    .iter()
                    .filter_map(|w| index.get(w))
                    .flatten()
                    .copied()
                    .collect();
                at.sort_unstable();
                at.dedup();
                at.into_iter()
                    .map(|i| &list[i])
                    .filter(|i| selector.matches(&i.labels))
                    .collect()
            }
            _ => list
                .iter()
                .filter(|i| selector.matches(&i.labels))
                .collect(),
        }
    }

    /// The items of `metric` in `namespace`.
    pub fn items(&self, namespace: &str, metric: &str) -> &[Item] {
        self.items
            .get(&(namespace.to_string(), metric.to_string()))
            .map_or(&[], Vec::as_slice)
    }

    /// True when a configured workload lives in `namespace`.
    pub fn has_namespace(&self, namespace: &str) -> bool {
        self.namespaces.contains(namespace)
    }
}

/// RFC 3339 in whole seconds, as `metav1.Time` writes it.
fn format_seconds(t: Millis) -> String {
    format_millis(t - t.rem_euclid(1000))
}

fn item_json(
    metric: &str,
    labels: &BTreeMap<String, String>,
    timestamp: &str,
    window: u64,
    value: &str,
) -> String {
    serde_json::json!({
        "metricName": metric,
        "metricLabels": labels,
        "timestamp": timestamp,
        "window": window,
        "value": value,
    })
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decision() -> WorkloadDecision {
        WorkloadDecision {
            namespace: "shop".into(),
            workload: "api".into(),
            decided_at: 1_700_000_000_123,
            desired: 13,
            value: 13.0 * (1.0 - 1e-9),
            current: Some(10),
            reason: "forecast".into(),
            fallback: None,
            metrics: vec![MetricDecision {
                name: "rps".into(),
                forecast: Some(1250.5),
                replicas: Some(13),
                model: Some("ets".into()),
                fitted_at: Some(1_699_999_000_000),
                observed_at: Some(1_700_000_000_000),
                last_observed: Some(1100.0),
                failures: 0,
                error: None,
            }],
        }
    }

    #[test]
    fn items_are_rendered_once_with_quantities_and_labels() {
        let s = Snapshot {
            workloads: vec![decision()],
            ..Snapshot::empty(vec![])
        };
        let p = Published::new(s, ["shop".to_string()], 15);
        let replicas = p.items("shop", REPLICAS_METRIC);
        assert_eq!(replicas.len(), 1);
        let v: serde_json::Value = serde_json::from_str(&replicas[0].json).unwrap();
        assert_eq!(v["value"], "12999m");
        assert_eq!(v["timestamp"], "2023-11-14T22:13:20Z");
        assert_eq!(v["window"], 15);
        assert_eq!(v["metricLabels"]["workload"], "api");
        let forecast = p.items("shop", FORECAST_METRIC);
        let v: serde_json::Value = serde_json::from_str(&forecast[0].json).unwrap();
        assert_eq!(v["value"], "1250500m");
        assert!(p.items("other", REPLICAS_METRIC).is_empty());
        assert!(p.has_namespace("shop") && !p.has_namespace("other"));
    }

    #[test]
    fn the_workload_index_finds_what_a_full_scan_finds() {
        let workloads = ["api", "web", "db", "api2"]
            .into_iter()
            .map(|name| WorkloadDecision {
                workload: name.into(),
                ..decision()
            })
            .collect();
        let s = Snapshot {
            workloads,
            ..Snapshot::empty(vec![])
        };
        let p = Published::new(s, ["shop".to_string()], 15);
        for text in [
            "",
            "workload=api",
            "workload==web",
            "workload in (db, api, nothing)",
            "workload=api,metric=rps",
            "workload=api,metric=other",
            "workload!=api",
            "workload notin (api, web)",
            "metric=rps",
            "workload",
            "workload=absent",
        ] {
            let selector = Selector::parse(text).unwrap();
            for metric in [REPLICAS_METRIC, FORECAST_METRIC] {
                let scanned: Vec<&str> = p
                    .items("shop", metric)
                    .iter()
                    .filter(|i| selector.matches(&i.labels))
                    .map(|i| i.json.as_str())
                    .collect();
                let indexed: Vec<&str> = p
                    .matching("shop", metric, &selector)
                    .into_iter()
                    .map(|i| i.json.as_str())
                    .collect();
                assert_eq!(indexed, scanned, "{text:?} on {metric}");
            }
        }
        assert_eq!(
            p.matching(
                "shop",
                REPLICAS_METRIC,
                &Selector::parse("workload=db").unwrap()
            )
            .len(),
            1
        );
    }

    #[test]
    fn a_snapshot_persists_and_a_corrupt_or_foreign_one_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        assert!(restore(dir.path()).unwrap().is_none());
        let s = Snapshot {
            workloads: vec![decision()],
            ..Snapshot::empty(vec![])
        };
        persist(dir.path(), &s).unwrap();
        assert_eq!(restore(dir.path()).unwrap(), Some(s));
        std::fs::write(snapshot_path(dir.path()), b"{\"format\": \"prescale-decis").unwrap();
        assert!(matches!(
            restore(dir.path()),
            Err(StateError::Foreign { .. })
        ));
        std::fs::write(
            snapshot_path(dir.path()),
            br#"{"format":"something-else","version":1,"madeAt":0,"pending":[],"workloads":[]}"#,
        )
        .unwrap();
        assert!(matches!(
            restore(dir.path()),
            Err(StateError::Foreign { .. })
        ));
    }
}
