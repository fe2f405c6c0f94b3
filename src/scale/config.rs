//! A workload's scaling configuration in YAML, validated with every problem listed at once.
//!
//! The keys follow the HPA's own spelling, so a `behavior` block can be pasted from an HPA:
//!
//! ```yaml
//! workload: api
//! namespace: shop          # optional, `default`
//! minReplicas: 2
//! maxReplicas: 50
//! startupSeconds: 90       # from asking for a pod to it serving
//! quantile: 0.9            # provision for the forecast's p90
//! tolerance: 0.1           # optional, the HPA's default
//! currentReplicas:         # optional: how `serve` reads the replica count now
//!   query: kube_deployment_status_replicas{namespace="shop",deployment="api"}
//! fallback:                # optional: what `serve` serves when forecasts fail
//!   failureThreshold: 3    #   consecutive failures of a metric
//!   maxForecastAge: 2h     #   or a forecast older than this
//!   serve: lastObservedLoad   # or currentReplicas, or replicas (with replicas: N)
//! metrics:
//!   - name: requests
//!     query: sum(rate(http_requests_total{job="api"}[5m]))   # or file: a CSV for trials
//!     step: 1m             # the query step / the file's grid
//!     history: 14d         # how much each fit sees
//!     refitEvery: 1h
//!     horizon: 30m         # how far each forecast reaches
//!     model: auto          # any registry name, or {name: ..., settings}
//!     capacityPerReplica: 100      # a load metric; or targetValue: for utilisation-like ones
//! behavior:                # optional; without it the controller's legacy path
//!   scaleDown:
//!     stabilizationWindowSeconds: 300
//!     selectPolicy: Max
//!     policies:
//!       - type: Percent
//!         value: 50
//!         periodSeconds: 60
//! ```
//!
//! The document is walked with a [`ConfigReader`] rather than deserialised with serde's derive,
//! because derive stops at the first problem and users fixing a config want all of them: each
//! message names its path (`metrics[1].capacityPerReplica`). Other configuration files that
//! hold workloads (`prescale serve`'s) read them with [`WorkloadConfig::read`].

use std::path::PathBuf;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde_norway::{Mapping, Value};

use crate::model::ModelSpec;

use super::behavior::{Behavior, PolicyType, Rules, ScalingPolicy, Seconds, SelectPolicy};
use super::hpa::DEFAULT_TOLERANCE;
use super::policy::{MetricTarget, PolicySettings, Target};

/// Where a metric's history comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MetricSource {
    /// A PromQL expression, queried over the history window at the metric's step.
    Query(String),
    /// A CSV or Parquet file (for trials without Prometheus): its whole content is the
    /// history, and its last timestamp is "now".
    File(PathBuf),
}

/// One metric of a workload: what it is, where it comes from, how it is forecast.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricConfig {
    /// Name and target.
    pub target: MetricTarget,
    /// Where its history comes from, if given (a replay reads its trace instead).
    pub source: Option<MetricSource>,
    /// The grid step: the query step, or the step a file is put on (`None`: the file's own).
    pub step: Option<Duration>,
    /// How much history each fit sees.
    pub history: Duration,
    /// How often the model is refitted.
    pub refit_every: Duration,
    /// How far each forecast reaches.
    pub horizon: Duration,
    /// The forecasting model.
    pub model: ModelSpec,
}

/// How `serve` knows a workload's replica count now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CurrentReplicas {
    /// A PromQL expression whose latest value is the count (e.g. kube-state-metrics'
    /// `kube_deployment_status_replicas{namespace="shop",deployment="api"}`).
    Query(String),
    /// A fixed count (for trials without a cluster).
    Fixed(i64),
}

/// What `serve` serves for a workload whose forecasts cannot be trusted.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum FallbackServe {
    /// A fixed replica count, as KEDA's `fallback.replicas`.
    Replicas(i64),
    /// The replica count now: hold.
    CurrentReplicas,
    /// What the reactive HPA would ask for from the last observed value of each metric.
    LastObservedLoad,
}

/// When a metric's forecasts cannot be trusted, and what is served then (as KEDA's
/// `fallback`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Fallback {
    /// Consecutive failures (query, fit, non-finite forecast) after which a metric falls back.
    pub failure_threshold: u32,
    /// A forecast older than this falls back too.
    pub max_forecast_age: Duration,
    /// What is served.
    pub serve: FallbackServe,
}

impl Default for Fallback {
    fn default() -> Self {
        Self {
            failure_threshold: 3,
            max_forecast_age: Duration::from_secs(2 * 3600),
            serve: FallbackServe::LastObservedLoad,
        }
    }
}

/// A validated workload configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkloadConfig {
    /// The workload's name.
    pub workload: String,
    /// Its namespace.
    pub namespace: String,
    /// Quantile, start-up and bounds.
    pub policy: PolicySettings,
    /// The HPA's tolerance.
    pub tolerance: f64,
    /// Metrics, at least one.
    pub metrics: Vec<MetricConfig>,
    /// Scale-up and scale-down rules.
    pub behavior: Option<Behavior>,
    /// How the replica count now is known (for target values and the HPA's tolerance).
    pub current_replicas: Option<CurrentReplicas>,
    /// What is served when forecasts fail.
    pub fallback: Fallback,
    /// For a replay of a metric with a target value: the replica count its trace was recorded
    /// at (default 1), so that value × replicas is the demand the replay scales to.
    pub recorded_replicas: f64,
}

/// Every problem found in a configuration, one per line.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("invalid configuration:\n  {}", .problems.join("\n  "))]
pub struct ConfigError {
    /// The problems, each naming its key.
    pub problems: Vec<String>,
}

/// The keys of a workload, for [`ConfigReader::known`].
pub const WORKLOAD_KEYS: [&str; 12] = [
    "workload",
    "namespace",
    "minReplicas",
    "maxReplicas",
    "startupSeconds",
    "quantile",
    "tolerance",
    "metrics",
    "behavior",
    "currentReplicas",
    "fallback",
    "recordedReplicas",
];

impl WorkloadConfig {
    /// Parses and validates a YAML document holding one workload.
    pub fn from_yaml(text: &str) -> Result<Self, ConfigError> {
        check_nesting(text)?;
        let doc: Value = serde_norway::from_str(text).map_err(|e| ConfigError {
            problems: vec![format!("not valid YAML: {e}")],
        })?;
        let mut r = ConfigReader::default();
        let Some(root) = r.mapping(&doc, "the document") else {
            return Err(r.into_error());
        };
        r.known(root, "", &WORKLOAD_KEYS);
        let config = Self::read(&mut r, root, "");
        r.finish()?;
        Ok(config)
    }

    /// Reads a workload from `m` (at `path` in its document), noting every problem in `r`;
    /// the values returned are only meaningful when `r` has no problems. Unknown keys are
    /// the caller's to check (against [`WORKLOAD_KEYS`] and its own).
    pub fn read(r: &mut ConfigReader, m: &Mapping, path: &str) -> Self {
        let at = |key: &str| join(path, key);
        let workload = r.string(m, path, "workload", true).unwrap_or_default();
        let namespace = r
            .string(m, path, "namespace", false)
            .unwrap_or_else(|| "default".into());
        let min_replicas = r.integer(m, path, "minReplicas", Some(1));
        let max_replicas = r.integer(m, path, "maxReplicas", None);
        let startup = r.integer(m, path, "startupSeconds", None);
        let quantile = r.number(m, path, "quantile", Some(0.9));
        let tolerance = r.number(m, path, "tolerance", Some(DEFAULT_TOLERANCE));
        if let (Some(lo), Some(hi)) = (min_replicas, max_replicas) {
            if lo > hi {
                r.problem(format!(
                    "{} {lo} exceeds maxReplicas {hi}",
                    at("minReplicas")
                ));
            }
        }
        if let Some(lo) = min_replicas.filter(|v| *v < 0) {
            r.problem(format!("{} {lo} is negative", at("minReplicas")));
        }
        if let Some(hi) = max_replicas.filter(|v| *v < 1) {
            r.problem(format!("{} {hi} must be at least 1", at("maxReplicas")));
        }
        if let Some(s) = startup.filter(|v| *v < 0) {
            r.problem(format!("{} {s} is negative", at("startupSeconds")));
        }
        if let Some(q) = quantile.filter(|q| !(*q > 0.0 && *q < 1.0)) {
            r.problem(format!("{} {q} is not in (0, 1)", at("quantile")));
        }
        if let Some(t) = tolerance.filter(|t| !(*t >= 0.0 && *t < 1.0)) {
            r.problem(format!("{} {t} is not in [0, 1)", at("tolerance")));
        }
        let metrics = r.metrics(m, path);
        // No block is not the default block: the controller takes its legacy path.
        let behavior = m.get("behavior").map(|v| r.behavior(v, &at("behavior")));
        let current_replicas = match m.get("currentReplicas") {
            None => None,
            Some(v) => r.mapping(v, &at("currentReplicas")).and_then(|c| {
                let here = at("currentReplicas");
                r.known(c, &here, &["query", "replicas"]);
                match (c.contains_key("query"), c.contains_key("replicas")) {
                    (true, false) => r
                        .string(c, &here, "query", true)
                        .map(CurrentReplicas::Query),
                    (false, true) => match r.integer(c, &here, "replicas", None) {
                        Some(n) if n >= 0 => Some(CurrentReplicas::Fixed(n)),
                        Some(n) => {
                            r.problem(format!("{here}.replicas: {n} must be 0 or more"));
                            None
                        }
                        None => None,
                    },
                    _ => {
                        r.problem(format!(
                            "{here}: give query (PromQL) or replicas (a fixed count)"
                        ));
                        None
                    }
                }
            }),
        };
        let fallback = match m.get("fallback") {
            None => Fallback::default(),
            Some(v) => r.fallback(v, &at("fallback")),
        };
        let recorded_replicas = r
            .number(m, path, "recordedReplicas", Some(1.0))
            .filter(|v| r.positive(*v, &at("recordedReplicas")))
            .unwrap_or(1.0);
        Self {
            workload,
            namespace,
            policy: PolicySettings {
                quantile: quantile.unwrap_or(0.9),
                startup: startup.unwrap_or(0),
                min_replicas: min_replicas.unwrap_or(1),
                max_replicas: max_replicas.unwrap_or(1),
            },
            tolerance: tolerance.unwrap_or(DEFAULT_TOLERANCE),
            metrics,
            behavior,
            current_replicas,
            fallback,
            recorded_replicas,
        }
    }

    /// The trace and capacity per replica a replay of this workload's first metric uses: a
    /// load metric as it is; a target-value metric as the demand it stands for (each value ×
    /// [`WorkloadConfig::recorded_replicas`], a value that falls in proportion to the
    /// replicas, as CPU utilisation does) with the target as the capacity, which is the HPA's
    /// own `ceil(current × value / target)` written in demand.
    pub fn replay_trace(&self, trace: &crate::series::Series) -> (crate::series::Series, f64) {
        match self.metrics.first().map(|m| m.target.target) {
            Some(Target::Value(t)) => {
                let demand = trace.map_values(|v| v * self.recorded_replicas);
                (demand, t)
            }
            Some(Target::CapacityPerReplica(c)) => (trace.clone(), c),
            None => (trace.clone(), f64::NAN),
        }
    }

    /// Reads and validates a YAML file.
    pub fn load(path: &std::path::Path) -> Result<Self, ConfigError> {
        let text =
            crate::files::read_limited_text(path, crate::files::MAX_CONFIG_BYTES).map_err(|e| {
                ConfigError {
                    problems: vec![format!("cannot read {}: {e}", path.display())],
                }
            })?;
        Self::from_yaml(&text)
    }
}

/// The deepest `[`/`{` nesting a configuration may have: real ones stay under 10.
pub const MAX_NESTING: usize = 64;

/// Refuses YAML nested deeper than [`MAX_NESTING`] flow levels before the parser sees it:
/// the YAML scanner's cost grows with the square of the depth (50,000 levels took 4.5 s, a
/// 16 MiB file of `[` would take hours) before its own recursion limit answers. Brackets in
/// quoted strings and comments are skipped; those in plain scalars (PromQL's `{job="a"}[5m]`)
/// are counted, which only matters past 64 unclosed ones.
pub fn check_nesting(text: &str) -> Result<(), ConfigError> {
    let mut depth = 0usize;
    let mut quote: Option<char> = None;
    let mut previous = '\n';
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None => match c {
                '"' | '\'' => quote = Some(c),
                '#' if previous.is_whitespace() => {
                    // A comment runs to the end of the line.
                    for rest in chars.by_ref() {
                        if rest == '\n' {
                            break;
                        }
                    }
                }
                '[' | '{' => {
                    depth += 1;
                    if depth > MAX_NESTING {
                        return Err(ConfigError {
                            problems: vec![format!(
                                "not valid YAML: nested more than {MAX_NESTING} levels deep"
                            )],
                        });
                    }
                }
                ']' | '}' => depth = depth.saturating_sub(1),
                _ => {}
            },
        }
        // A quote closes at the end of a line for this count: an apostrophe in a plain
        // scalar (`it's`) must not hide the rest of the file.
        if c == '\n' {
            quote = None;
        }
        previous = c;
    }
    Ok(())
}

/// Reads values out of a YAML document, collecting every problem with its path instead of
/// stopping at the first.
#[derive(Debug, Default)]
pub struct ConfigReader {
    problems: Vec<String>,
}

impl ConfigReader {
    /// Notes a problem (its text should start with the path it concerns).
    pub fn problem(&mut self, text: impl Into<String>) {
        self.problems.push(text.into());
    }

    /// True when a problem was noted.
    pub fn has_problems(&self) -> bool {
        !self.problems.is_empty()
    }

    /// `Ok` when no problem was noted, else every problem.
    pub fn finish(self) -> Result<(), ConfigError> {
        if self.problems.is_empty() {
            Ok(())
        } else {
            Err(self.into_error())
        }
    }

    /// The problems noted, as an error.
    pub fn into_error(self) -> ConfigError {
        ConfigError {
            problems: self.problems,
        }
    }

    /// `v` as a mapping, or a problem.
    pub fn mapping<'a>(&mut self, v: &'a Value, path: &str) -> Option<&'a Mapping> {
        match v {
            Value::Mapping(m) => Some(m),
            _ => {
                self.problem(format!("{path}: expected a mapping of keys to values"));
                None
            }
        }
    }

    /// Flags keys not in `allowed` (a typo would otherwise be silently ignored).
    pub fn known(&mut self, m: &Mapping, path: &str, allowed: &[&str]) {
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

    /// Non-empty text at `key`; a problem when it is required and missing.
    pub fn string(&mut self, m: &Mapping, path: &str, key: &str, required: bool) -> Option<String> {
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
    pub fn number(
        &mut self,
        m: &Mapping,
        path: &str,
        key: &str,
        default: Option<f64>,
    ) -> Option<f64> {
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

    /// A whole number, or `default` when absent (`None` default: required).
    pub fn integer(
        &mut self,
        m: &Mapping,
        path: &str,
        key: &str,
        default: Option<i64>,
    ) -> Option<i64> {
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

    /// `true` or `false`, or `default` when absent.
    pub fn boolean(&mut self, m: &Mapping, path: &str, key: &str, default: bool) -> bool {
        match m.get(key) {
            None => default,
            Some(Value::Bool(b)) => *b,
            Some(v) => {
                self.problem(format!(
                    "{}: expected true or false, got {v:?}",
                    join(path, key)
                ));
                default
            }
        }
    }

    /// A positive duration written `30s`, `5m`, `1h30m`, `14d` (or a number of seconds), or
    /// `default` when absent (`None` default: required).
    pub fn duration(
        &mut self,
        m: &Mapping,
        path: &str,
        key: &str,
        default: Option<Duration>,
    ) -> Option<Duration> {
        let parsed = match m.get(key) {
            None => {
                if default.is_none() {
                    self.problem(format!("{}: missing", join(path, key)));
                }
                return default;
            }
            Some(Value::String(s)) => humantime::parse_duration(s.trim()).ok(),
            Some(v) => v
                .as_f64()
                .filter(|x| x.is_finite() && *x >= 0.0 && *x < 1e12)
                .map(Duration::from_secs_f64),
        };
        match parsed.filter(|d| !d.is_zero()) {
            Some(d) => Some(d),
            None => {
                self.problem(format!(
                    "{}: expected a positive duration such as 30s, 5m, 1h or 14d, got {:?}",
                    join(path, key),
                    m.get(key)
                ));
                None
            }
        }
    }

    /// A list of text at `key` (absent: empty).
    pub fn strings(&mut self, m: &Mapping, path: &str, key: &str) -> Vec<String> {
        match m.get(key) {
            None => vec![],
            Some(Value::Sequence(items)) => items
                .iter()
                .enumerate()
                .filter_map(|(i, v)| match v {
                    Value::String(s) => Some(s.clone()),
                    other => {
                        self.problem(format!(
                            "{}[{i}]: expected text, got {other:?}",
                            join(path, key)
                        ));
                        None
                    }
                })
                .collect(),
            Some(other) => {
                self.problem(format!(
                    "{}: expected a list of text, got {other:?}",
                    join(path, key)
                ));
                vec![]
            }
        }
    }

    /// The items of the list at `key`, each with its path (`key[i]`); when `required` names
    /// the item (`Some("metric")`), a missing or empty list is a problem.
    pub fn list<'a>(
        &mut self,
        m: &'a Mapping,
        path: &str,
        key: &str,
        required: Option<&str>,
    ) -> Vec<(String, &'a Value)> {
        let at = join(path, key);
        match m.get(key) {
            None => {
                if let Some(item) = required {
                    self.problem(format!("{at}: missing (at least one {item} is needed)"));
                }
                vec![]
            }
            Some(Value::Sequence(items)) => {
                if let Some(item) = required.filter(|_| items.is_empty()) {
                    self.problem(format!("{at}: empty (at least one {item} is needed)"));
                }
                items
                    .iter()
                    .enumerate()
                    .map(|(i, v)| (format!("{at}[{i}]"), v))
                    .collect()
            }
            Some(_) => {
                self.problem(format!("{at}: expected a list"));
                vec![]
            }
        }
    }

    /// The value at `key` read by its serde implementation (for values with rich types of
    /// their own, such as a model's settings); absent is `None`, a mismatch a problem.
    pub fn deserialize<T: DeserializeOwned>(
        &mut self,
        m: &Mapping,
        path: &str,
        key: &str,
    ) -> Option<T> {
        let v = m.get(key)?;
        match serde_norway::from_value(v.clone()) {
            Ok(t) => Some(t),
            Err(e) => {
                self.problem(format!("{}: {e}", join(path, key)));
                None
            }
        }
    }

    fn metrics(&mut self, root: &Mapping, path: &str) -> Vec<MetricConfig> {
        let mut out = vec![];
        let mut names = std::collections::HashSet::new();
        for (at, item) in self.list(root, path, "metrics", Some("metric")) {
            let Some(m) = self.mapping(item, &at) else {
                continue;
            };
            self.known(
                m,
                &at,
                &[
                    "name",
                    "query",
                    "file",
                    "step",
                    "history",
                    "refitEvery",
                    "horizon",
                    "model",
                    "capacityPerReplica",
                    "targetValue",
                ],
            );
            let name = self.string(m, &at, "name", true);
            let target = match (
                m.contains_key("capacityPerReplica"),
                m.contains_key("targetValue"),
            ) {
                (true, true) => {
                    self.problem(format!(
                        "{at}: give capacityPerReplica (a load metric) or targetValue (a utilisation-like metric), not both"
                    ));
                    None
                }
                (false, true) => self
                    .number(m, &at, "targetValue", None)
                    .filter(|v| self.positive(*v, &join(&at, "targetValue")))
                    .map(Target::Value),
                _ => self
                    .number(m, &at, "capacityPerReplica", None)
                    .filter(|v| self.positive(*v, &join(&at, "capacityPerReplica")))
                    .map(Target::CapacityPerReplica),
            };
            let query = self.string(m, &at, "query", false);
            let file = self.string(m, &at, "file", false);
            let source = match (query, file) {
                (Some(_), Some(_)) => {
                    self.problem(format!("{at}: give a query or a file, not both"));
                    None
                }
                (Some(q), None) => Some(MetricSource::Query(q)),
                (None, Some(f)) => Some(MetricSource::File(PathBuf::from(f))),
                (None, None) => None,
            };
            let step = match m.get("step") {
                None => None,
                Some(_) => self.duration(m, &at, "step", None),
            };
            if let Some(s) = step.filter(|s| s.subsec_nanos() != 0) {
                self.problem(format!(
                    "{}: {s:?} is not a whole number of seconds",
                    join(&at, "step")
                ));
            }
            let history = self.duration(m, &at, "history", Some(Duration::from_secs(14 * 86_400)));
            let refit_every = self.duration(m, &at, "refitEvery", Some(Duration::from_secs(3600)));
            let horizon = self.duration(m, &at, "horizon", Some(Duration::from_secs(3600)));
            let model = self
                .deserialize::<ModelSpec>(m, &at, "model")
                .unwrap_or_else(|| ModelSpec::named("auto"));
            match model.build() {
                Ok(built) => {
                    if let Some(step) = step {
                        if let Err(e) = built.check_step(step.as_millis() as i64) {
                            self.problem(format!(
                                "{}: {} (choose another model for this step)",
                                join(&at, "model"),
                                crate::human::chain(&e)
                            ));
                        }
                    }
                }
                Err(e) => self.problem(format!(
                    "{}: {}",
                    join(&at, "model"),
                    crate::human::chain(&e)
                )),
            }
            if let Some(n) = &name {
                if !names.insert(n.clone()) {
                    self.problem(format!("{}: {n:?} appears twice", join(&at, "name")));
                }
            }
            if let (Some(name), Some(target), Some(history), Some(refit_every), Some(horizon)) =
                (name, target, history, refit_every, horizon)
            {
                out.push(MetricConfig {
                    target: MetricTarget { name, target },
                    source,
                    step,
                    history,
                    refit_every,
                    horizon,
                    model,
                });
            }
        }
        out
    }

    fn positive(&mut self, v: f64, path: &str) -> bool {
        if v > 0.0 {
            true
        } else {
            self.problem(format!("{path}: {v} must be positive"));
            false
        }
    }

    fn fallback(&mut self, v: &Value, path: &str) -> Fallback {
        let mut fallback = Fallback::default();
        let Some(m) = self.mapping(v, path) else {
            return fallback;
        };
        self.known(
            m,
            path,
            &["failureThreshold", "maxForecastAge", "serve", "replicas"],
        );
        if let Some(n) = self.integer(m, path, "failureThreshold", Some(3)) {
            match u32::try_from(n) {
                Ok(n) if n >= 1 => fallback.failure_threshold = n,
                _ => self.problem(format!(
                    "{}: {n} must be a whole number of at least 1",
                    join(path, "failureThreshold")
                )),
            }
        }
        if let Some(d) = self.duration(m, path, "maxForecastAge", Some(fallback.max_forecast_age)) {
            fallback.max_forecast_age = d;
        }
        let replicas = self.integer(m, path, "replicas", Some(-1));
        let serve = self.string(m, path, "serve", false);
        fallback.serve = match (serve.as_deref(), replicas) {
            (Some("replicas") | None, Some(n)) if n >= 0 && m.contains_key("replicas") => {
                FallbackServe::Replicas(n)
            }
            (Some("replicas"), _) => {
                self.problem(format!(
                    "{}: serve: replicas needs replicas: N (a whole number, 0 or more)",
                    path
                ));
                FallbackServe::LastObservedLoad
            }
            (None, Some(n)) if m.contains_key("replicas") => {
                self.problem(format!("{}: {n} must be 0 or more", join(path, "replicas")));
                FallbackServe::LastObservedLoad
            }
            (None, _) | (Some("lastObservedLoad"), _) => FallbackServe::LastObservedLoad,
            (Some("currentReplicas"), _) => FallbackServe::CurrentReplicas,
            (Some(other), _) => {
                self.problem(format!(
                    "{}: {other:?} is not replicas, currentReplicas or lastObservedLoad",
                    join(path, "serve")
                ));
                FallbackServe::LastObservedLoad
            }
        };
        fallback
    }

    fn behavior(&mut self, v: &Value, path: &str) -> Behavior {
        let mut behavior = Behavior::default();
        let Some(m) = self.mapping(v, path) else {
            return behavior;
        };
        self.known(m, path, &["scaleUp", "scaleDown"]);
        if let Some(up) = m.get("scaleUp") {
            if let Some(rules) = self.rules(up, &join(path, "scaleUp"), &behavior.scale_up) {
                behavior.scale_up = rules;
            }
        }
        if let Some(down) = m.get("scaleDown") {
            if let Some(rules) = self.rules(down, &join(path, "scaleDown"), &behavior.scale_down) {
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

/// `path.key`, or `key` at the root.
pub fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deep_nesting_is_refused_before_parsing_and_real_brackets_pass() {
        let deep = format!("workloads: {}{}", "[".repeat(100_000), "]".repeat(100_000));
        let e = check_nesting(&deep).unwrap_err();
        assert!(e.problems[0].contains("nested more than 64 levels"), "{e}");
        let e = WorkloadConfig::from_yaml(&deep).unwrap_err();
        assert!(e.problems[0].contains("nested more than 64"), "{e}");
        for fine in [
            "query: sum(rate(http_requests_total{job=\"api\"}[5m]))  # [[[[ in a comment\n",
            "name: '[[[[[[[[' \ndescription: it's {not} [nested]\n",
            &format!("a: {}{}", "[".repeat(64), "]".repeat(64)),
        ] {
            check_nesting(fine).unwrap();
        }
    }

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
    fn a_behavior_printed_reads_back_the_same_and_none_stays_none() {
        let without = GOOD.split("behavior:").next().unwrap();
        assert_eq!(WorkloadConfig::from_yaml(without).unwrap().behavior, None);
        let c = WorkloadConfig::from_yaml(GOOD).unwrap();
        let printed = format!("{without}behavior: {}\n", c.behavior.as_ref().unwrap());
        let again = WorkloadConfig::from_yaml(&printed).unwrap();
        assert_eq!(again.behavior, c.behavior);
        let mut b = Behavior::default();
        b.scale_up.select = SelectPolicy::Disabled;
        let printed = format!("{without}behavior: {b}\n");
        assert_eq!(
            WorkloadConfig::from_yaml(&printed).unwrap().behavior,
            Some(b)
        );
    }

    #[test]
    fn a_valid_config_reads_with_the_hpa_defaults_filled_in() {
        let c = WorkloadConfig::from_yaml(GOOD).unwrap();
        assert_eq!(c.workload, "api");
        assert_eq!(c.policy.quantile, 0.95);
        assert_eq!((c.policy.min_replicas, c.policy.max_replicas), (2, 50));
        assert_eq!(c.policy.startup, 90);
        assert_eq!(c.tolerance, DEFAULT_TOLERANCE);
        assert_eq!(c.metrics.len(), 2);
        assert_eq!(c.metrics[1].source, None);
        assert_eq!(
            c.metrics[0].source,
            Some(MetricSource::Query(
                "sum(rate(http_requests_total[5m]))".into()
            ))
        );
        assert_eq!(c.metrics[0].model, ModelSpec::named("auto"));
        assert_eq!(c.metrics[0].refit_every, Duration::from_secs(3600));
        assert_eq!(c.namespace, "default");
        assert_eq!(c.fallback, Fallback::default());
        let behavior = c.behavior.as_ref().unwrap();
        assert_eq!(behavior.scale_up, Behavior::default().scale_up);
        assert_eq!(behavior.scale_down.stabilization, 600);
        assert_eq!(behavior.scale_down.select, SelectPolicy::Max);
        assert_eq!(
            behavior.scale_down.policies,
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

    #[test]
    fn serve_keys_read_with_their_paths_and_every_problem_listed() {
        let good = "
workload: api
namespace: shop
maxReplicas: 30
startupSeconds: 60
currentReplicas:
  query: kube_deployment_status_replicas{deployment=\"api\"}
fallback: {failureThreshold: 5, maxForecastAge: 90m, serve: replicas, replicas: 4}
metrics:
  - name: cpu
    file: datasets/nyc_taxi.csv
    step: 30m
    history: 7d
    refitEvery: 2h
    horizon: 30m
    model: {name: arima, order: [1, 1, 1]}
    targetValue: 0.6
";
        let c = WorkloadConfig::from_yaml(good).unwrap();
        assert_eq!(c.namespace, "shop");
        assert_eq!(
            c.fallback,
            Fallback {
                failure_threshold: 5,
                max_forecast_age: Duration::from_secs(5400),
                serve: FallbackServe::Replicas(4)
            }
        );
        let m = &c.metrics[0];
        assert_eq!(m.target, MetricTarget::value("cpu", 0.6));
        assert_eq!(m.step, Some(Duration::from_secs(1800)));
        assert_eq!(m.model.name, "arima");
        assert!(
            matches!(c.current_replicas, Some(CurrentReplicas::Query(q)) if q.contains("deployment"))
        );

        let bad = "
workload: api
maxReplicas: 30
startupSeconds: 60
fallback: {serve: sometimes, failureThreshold: 0}
metrics:
  - name: rps
    query: up
    file: x.csv
    step: soon
    model: {name: ets, order: [1, 0, 0]}
    capacityPerReplica: 10
    targetValue: 0.5
  - name: q
    step: 1m
    model: lstm
    capacityPerReplica: 100
  - name: z
    model: oracle
    targetValue: -1
";
        let err = WorkloadConfig::from_yaml(bad).unwrap_err();
        let all = err.problems.join("\n");
        for expected in [
            "fallback.failureThreshold: 0 must be a whole number of at least 1",
            "fallback.serve: \"sometimes\" is not replicas",
            "metrics[0]: give capacityPerReplica (a load metric) or targetValue",
            "metrics[0]: give a query or a file, not both",
            "metrics[0].step: expected a positive duration",
            "metrics[0].model: ets: invalid settings: unknown field `order`",
            "metrics[1].model: lstm: no network trained on 1m steps",
            "metrics[2].model: unknown model \"oracle\"",
            "metrics[2].targetValue: -1 must be positive",
        ] {
            assert!(all.contains(expected), "missing {expected:?} in:\n{all}");
        }
    }
}
