//! A workload's scaling configuration in YAML, validated with every problem listed at once.
//!
//! The keys follow the HPA's own spelling, so a `behavior` block can be pasted from an HPA:
//!
//! ```yaml
//! workload: api
//! minReplicas: 2
//! maxReplicas: 50
//! startupSeconds: 90       # from asking for a pod to it serving
//! quantile: 0.9            # provision for the forecast's p90
//! tolerance: 0.1           # optional, the HPA's default
//! metrics:
//!   - name: requests
//!     query: sum(rate(http_requests_total{job="api"}[5m]))   # optional
//!     capacityPerReplica: 100
//! behavior:                # optional; the HPA's defaults otherwise
//!   scaleDown:
//!     stabilizationWindowSeconds: 300
//!     selectPolicy: Max
//!     policies:
//!       - type: Percent
//!         value: 50
//!         periodSeconds: 60
//! ```
//!
//! The document is walked by hand rather than deserialised with serde's derive, because
//! derive stops at the first problem and users fixing a config want all of them: each
//! message names its path (`metrics[1].capacityPerReplica`).

use serde_norway::{Mapping, Value};

use super::behavior::{Behavior, PolicyType, Rules, ScalingPolicy, Seconds, SelectPolicy};
use super::hpa::DEFAULT_TOLERANCE;
use super::policy::{MetricTarget, PolicySettings};

/// One metric of a workload, with the query that reads it.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricConfig {
    /// Name and capacity per replica.
    pub target: MetricTarget,
    /// PromQL for the metric's history, if given.
    pub query: Option<String>,
}

/// A validated workload configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkloadConfig {
    /// The workload's name.
    pub workload: String,
    /// Quantile, start-up and bounds.
    pub policy: PolicySettings,
    /// The HPA's tolerance.
    pub tolerance: f64,
    /// Metrics, at least one.
    pub metrics: Vec<MetricConfig>,
    /// Scale-up and scale-down rules.
    pub behavior: Behavior,
}

/// Every problem found in a configuration, one per line.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("invalid configuration:\n  {}", .problems.join("\n  "))]
pub struct ConfigError {
    /// The problems, each naming its key.
    pub problems: Vec<String>,
}

impl WorkloadConfig {
    /// Parses and validates a YAML document.
    pub fn from_yaml(text: &str) -> Result<Self, ConfigError> {
        let doc: Value = serde_norway::from_str(text).map_err(|e| ConfigError {
            problems: vec![format!("not valid YAML: {e}")],
        })?;
        let mut w = Walker::default();
        let Some(root) = w.mapping(&doc, "the document") else {
            return Err(w.finish());
        };
        w.known(
            root,
            "",
            &[
                "workload",
                "minReplicas",
                "maxReplicas",
                "startupSeconds",
                "quantile",
                "tolerance",
                "metrics",
                "behavior",
            ],
        );
        let workload = w.string(root, "", "workload", true).unwrap_or_default();
        let min_replicas = w.integer(root, "", "minReplicas", Some(1));
        let max_replicas = w.integer(root, "", "maxReplicas", None);
        let startup = w.integer(root, "", "startupSeconds", None);
        let quantile = w.number(root, "", "quantile", Some(0.9));
        let tolerance = w.number(root, "", "tolerance", Some(DEFAULT_TOLERANCE));
        if let (Some(lo), Some(hi)) = (min_replicas, max_replicas) {
            if lo > hi {
                w.problem(format!("minReplicas {lo} exceeds maxReplicas {hi}"));
            }
        }
        if let Some(lo) = min_replicas.filter(|v| *v < 0) {
            w.problem(format!("minReplicas {lo} is negative"));
        }
        if let Some(hi) = max_replicas.filter(|v| *v < 1) {
            w.problem(format!("maxReplicas {hi} must be at least 1"));
        }
        if let Some(s) = startup.filter(|v| *v < 0) {
            w.problem(format!("startupSeconds {s} is negative"));
        }
        if let Some(q) = quantile.filter(|q| !(*q > 0.0 && *q < 1.0)) {
            w.problem(format!("quantile {q} is not in (0, 1)"));
        }
        if let Some(t) = tolerance.filter(|t| !(*t >= 0.0 && *t < 1.0)) {
            w.problem(format!("tolerance {t} is not in [0, 1)"));
        }
        let metrics = w.metrics(root);
        let behavior = match root.get("behavior") {
            None => Behavior::default(),
            Some(v) => w.behavior(v),
        };
        if !w.problems.is_empty() {
            return Err(w.finish());
        }
        Ok(Self {
            workload,
            policy: PolicySettings {
                quantile: quantile.unwrap_or(0.9),
                startup: startup.unwrap_or(0),
                min_replicas: min_replicas.unwrap_or(1),
                max_replicas: max_replicas.unwrap_or(1),
            },
            tolerance: tolerance.unwrap_or(DEFAULT_TOLERANCE),
            metrics,
            behavior,
        })
    }

    /// Reads and validates a YAML file.
    pub fn load(path: &std::path::Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            problems: vec![format!("cannot read {}: {e}", path.display())],
        })?;
        Self::from_yaml(&text)
    }
}

/// Collects problems while reading values out of the document.
#[derive(Default)]
struct Walker {
    problems: Vec<String>,
}

impl Walker {
    fn problem(&mut self, text: String) {
        self.problems.push(text);
    }

    fn finish(self) -> ConfigError {
        ConfigError {
            problems: self.problems,
        }
    }

    fn mapping<'a>(&mut self, v: &'a Value, path: &str) -> Option<&'a Mapping> {
        match v {
            Value::Mapping(m) => Some(m),
            _ => {
                self.problem(format!("{path}: expected a mapping of keys to values"));
                None
            }
        }
    }

    /// Flags keys not in `allowed` (a typo would otherwise be silently ignored).
    fn known(&mut self, m: &Mapping, path: &str, allowed: &[&str]) {
        for key in m.keys() {
            let name = key.as_str().unwrap_or("<non-text key>");
            if !allowed.contains(&name) {
                self.problem(format!(
                    "{}: unknown key (expected one of {})",
                    join(path, name),
                    allowed.join(", ")
                ));
            }
        }
    }

    fn string(&mut self, m: &Mapping, path: &str, key: &str, required: bool) -> Option<String> {
        match m.get(key) {
            None if required => {
                self.problem(format!("{}: missing", join(path, key)));
                None
            }
            None => None,
            Some(Value::String(s)) if !s.trim().is_empty() => Some(s.clone()),
            Some(_) => {
                self.problem(format!("{}: expected non-empty text", join(path, key)));
                None
            }
        }
    }

    /// A number, or `default` when absent (`None` default: required).
    fn number(&mut self, m: &Mapping, path: &str, key: &str, default: Option<f64>) -> Option<f64> {
        match m.get(key) {
            None => {
                if default.is_none() {
                    self.problem(format!("{}: missing", join(path, key)));
                }
                default
            }
            Some(v) => match v.as_f64().filter(|x| x.is_finite()) {
                Some(x) => Some(x),
                None => {
                    self.problem(format!("{}: expected a number, got {v:?}", join(path, key)));
                    None
                }
            },
        }
    }

    fn integer(&mut self, m: &Mapping, path: &str, key: &str, default: Option<i64>) -> Option<i64> {
        match m.get(key) {
            None => {
                if default.is_none() {
                    self.problem(format!("{}: missing", join(path, key)));
                }
                default
            }
            Some(v) => match v.as_i64() {
                Some(x) => Some(x),
                None => {
                    self.problem(format!(
                        "{}: expected a whole number, got {v:?}",
                        join(path, key)
                    ));
                    None
                }
            },
        }
    }

    fn metrics(&mut self, root: &Mapping) -> Vec<MetricConfig> {
        let Some(list) = root.get("metrics") else {
            self.problem("metrics: missing (at least one metric is needed)".into());
            return vec![];
        };
        let Value::Sequence(items) = list else {
            self.problem("metrics: expected a list".into());
            return vec![];
        };
        if items.is_empty() {
            self.problem("metrics: empty (at least one metric is needed)".into());
        }
        let mut out = vec![];
        let mut names = std::collections::HashSet::new();
        for (i, item) in items.iter().enumerate() {
            let path = format!("metrics[{i}]");
            let Some(m) = self.mapping(item, &path) else {
                continue;
            };
            self.known(m, &path, &["name", "query", "capacityPerReplica"]);
            let name = self.string(m, &path, "name", true);
            let query = self.string(m, &path, "query", false);
            let capacity = self.number(m, &path, "capacityPerReplica", None);
            if let Some(c) = capacity.filter(|c| *c <= 0.0) {
                self.problem(format!("{path}.capacityPerReplica: {c} must be positive"));
            }
            if let Some(n) = &name {
                if !names.insert(n.clone()) {
                    self.problem(format!("{path}.name: {n:?} appears twice"));
                }
            }
            if let (Some(name), Some(capacity)) = (name, capacity) {
                out.push(MetricConfig {
                    target: MetricTarget {
                        name,
                        capacity_per_replica: capacity,
                    },
                    query,
                });
            }
        }
        out
    }

    fn behavior(&mut self, v: &Value) -> Behavior {
        let mut behavior = Behavior::default();
        let Some(m) = self.mapping(v, "behavior") else {
            return behavior;
        };
        self.known(m, "behavior", &["scaleUp", "scaleDown"]);
        if let Some(up) = m.get("scaleUp") {
            if let Some(rules) = self.rules(up, "behavior.scaleUp", &behavior.scale_up) {
                behavior.scale_up = rules;
            }
        }
        if let Some(down) = m.get("scaleDown") {
            if let Some(rules) = self.rules(down, "behavior.scaleDown", &behavior.scale_down) {
                behavior.scale_down = rules;
            }
        }
        behavior
    }

    /// One direction's rules; keys left out keep the HPA's defaults (`defaults`), as the
    /// API server fills them in.
    fn rules(&mut self, v: &Value, path: &str, defaults: &Rules) -> Option<Rules> {
        let m = self.mapping(v, path)?;
        self.known(
            m,
            path,
            &["stabilizationWindowSeconds", "selectPolicy", "policies"],
        );
        let stabilization = self.integer(
            m,
            path,
            "stabilizationWindowSeconds",
            Some(defaults.stabilization),
        );
        if let Some(s) = stabilization.filter(|s| !(0..=3600).contains(s)) {
            self.problem(format!(
                "{path}.stabilizationWindowSeconds: {s} is outside 0..=3600 (the HPA's range)"
            ));
        }
        let select = match self.string(m, path, "selectPolicy", false).as_deref() {
            None => Some(defaults.select),
            Some("Max") => Some(SelectPolicy::Max),
            Some("Min") => Some(SelectPolicy::Min),
            Some("Disabled") => Some(SelectPolicy::Disabled),
            Some(other) => {
                self.problem(format!(
                    "{path}.selectPolicy: {other:?} is not Max, Min or Disabled"
                ));
                None
            }
        };
        let policies = match m.get("policies") {
            None => Some(defaults.policies.clone()),
            Some(Value::Sequence(items)) if items.is_empty() => {
                // The API server refuses an empty list: that direction would never scale.
                self.problem(format!(
                    "{path}.policies: at least one policy is needed (use selectPolicy: Disabled to turn this direction off)"
                ));
                None
            }
            Some(Value::Sequence(items)) => {
                let parsed: Vec<Option<ScalingPolicy>> = items
                    .iter()
                    .enumerate()
                    .map(|(i, item)| self.policy(item, &format!("{path}.policies[{i}]")))
                    .collect();
                parsed.into_iter().collect()
            }
            Some(_) => {
                self.problem(format!("{path}.policies: expected a list"));
                None
            }
        };
        Some(Rules {
            stabilization: stabilization? as Seconds,
            select: select?,
            policies: policies?,
        })
    }

    fn policy(&mut self, v: &Value, path: &str) -> Option<ScalingPolicy> {
        let m = self.mapping(v, path)?;
        self.known(m, path, &["type", "value", "periodSeconds"]);
        let kind = match self.string(m, path, "type", true).as_deref() {
            Some("Pods") => Some(PolicyType::Pods),
            Some("Percent") => Some(PolicyType::Percent),
            Some(other) => {
                self.problem(format!("{path}.type: {other:?} is not Pods or Percent"));
                None
            }
            None => None,
        };
        let value = self.integer(m, path, "value", None);
        if let Some(x) = value.filter(|x| *x <= 0) {
            self.problem(format!("{path}.value: {x} must be positive"));
        }
        let period = self.integer(m, path, "periodSeconds", None);
        if let Some(p) = period.filter(|p| !(1..=1800).contains(p)) {
            self.problem(format!(
                "{path}.periodSeconds: {p} is outside 1..=1800 (the HPA's range)"
            ));
        }
        Some(ScalingPolicy {
            kind: kind?,
            value: value?,
            period: period?,
        })
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "
workload: api
minReplicas: 2
maxReplicas: 50
startupSeconds: 90
quantile: 0.95
metrics:
  - name: requests
    query: sum(rate(http_requests_total[5m]))
    capacityPerReplica: 100
  - name: queue
    capacityPerReplica: 1000
behavior:
  scaleDown:
    stabilizationWindowSeconds: 600
    policies:
      - type: Pods
        value: 2
        periodSeconds: 60
";

    #[test]
    fn a_valid_config_reads_with_the_hpa_defaults_filled_in() {
        let c = WorkloadConfig::from_yaml(GOOD).unwrap();
        assert_eq!(c.workload, "api");
        assert_eq!(c.policy.quantile, 0.95);
        assert_eq!((c.policy.min_replicas, c.policy.max_replicas), (2, 50));
        assert_eq!(c.policy.startup, 90);
        assert_eq!(c.tolerance, DEFAULT_TOLERANCE);
        assert_eq!(c.metrics.len(), 2);
        assert_eq!(c.metrics[1].query, None);
        assert_eq!(c.behavior.scale_up, Behavior::default().scale_up);
        assert_eq!(c.behavior.scale_down.stabilization, 600);
        assert_eq!(c.behavior.scale_down.select, SelectPolicy::Max);
        assert_eq!(
            c.behavior.scale_down.policies,
            [ScalingPolicy {
                kind: PolicyType::Pods,
                value: 2,
                period: 60
            }]
        );
    }

    #[test]
    fn every_problem_is_listed_at_once() {
        let bad = "
workload: api
minReplicas: 9
maxReplicas: 3
startupSeconds: 90
quantile: 1.2
replicas: 4
metrics:
  - name: requests
    capacityPerReplica: -5
  - capacityPerReplica: 10
    unit: rps
behavior:
  scaleUp:
    selectPolicy: Fastest
    policies:
      - type: Pods
        value: 0
        periodSeconds: 15
  scaleDown:
    policies: []
";
        let err = WorkloadConfig::from_yaml(bad).unwrap_err();
        let all = err.problems.join("\n");
        for expected in [
            "minReplicas 9 exceeds maxReplicas 3",
            "quantile 1.2 is not in (0, 1)",
            "replicas: unknown key",
            "metrics[0].capacityPerReplica: -5 must be positive",
            "metrics[1].name: missing",
            "metrics[1].unit: unknown key",
            "behavior.scaleUp.selectPolicy: \"Fastest\"",
            "behavior.scaleUp.policies[0].value: 0 must be positive",
            "behavior.scaleDown.policies: at least one policy is needed",
        ] {
            assert!(all.contains(expected), "missing {expected:?} in:\n{all}");
        }
        assert_eq!(err.problems.len(), 9, "{all}");
    }

    #[test]
    fn missing_metrics_and_broken_yaml_are_reported() {
        let err = WorkloadConfig::from_yaml("workload: api\nmaxReplicas: 5\nstartupSeconds: 30\n")
            .unwrap_err();
        assert_eq!(
            err.problems,
            ["metrics: missing (at least one metric is needed)"]
        );
        let err = WorkloadConfig::from_yaml("workload: [unclosed").unwrap_err();
        assert!(err.problems[0].starts_with("not valid YAML"), "{err}");
        let err = WorkloadConfig::from_yaml("- just\n- a list\n").unwrap_err();
        assert!(err.problems[0].contains("expected a mapping"), "{err}");
    }
}
