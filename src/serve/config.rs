//! `prescale serve`'s configuration: YAML, validated at start and on every reload, with every
//! problem listed at once with its path.
//!
//! ```yaml
//! prometheus:                      # needed by metrics with a query
//!   url: http://prometheus.monitoring:9090
//!   timeout: 10s
//!   retries: 2
//!   bearerTokenFile: /var/run/secrets/kubernetes.io/serviceaccount/token   # optional
//!   caFile: /etc/prometheus/ca.crt                                         # optional
//! stateDir: /var/lib/prescale      # fitted models and the last decisions (optional)
//! listen:
//!   https: 0.0.0.0:6443            # the external metrics API, /healthz, /readyz, /metrics
//!   grpc: 0.0.0.0:9443             # the KEDA external scaler (optional)
//! tls:                             # a certificate and key; self-signed when left out
//!   certFile: /etc/prescale/tls.crt
//!   keyFile: /etc/prescale/tls.key
//! insecureHttp: false              # plain HTTP: only for trials on a laptop
//! authentication:                  # the aggregator's front-proxy client certificate
//!   requestheaderClientCaFile: /etc/prescale/front-proxy-ca.crt
//!   requestheaderAllowedNames: [front-proxy-client]
//! refresh:
//!   every: 15s                     # how often history is read and plans are made
//!   concurrency: 2                 # fits at once
//! hpaSyncPeriod: 15s               # the HPA's sync period (plans look this much further)
//! audit:                           # the hash-chained audit log (on by default with stateDir)
//!   file: /var/lib/prescale/audit.jsonl   # default: <stateDir>/audit.jsonl
//!   rotateBytes: 67108864          # the active file is rotated past this size
//!   enabled: true
//! compliance:                      # what the compliance check holds it to (see
//!   environment: production        # `prescale compliance check`); serve records
//!   change: {author: alice, approver: bob, ticket: OPS-1}   # `change` in the audit log
//! workloads:                       # each as `simulate --config` reads one
//!   - workload: api
//!     namespace: shop
//!     ...
//! ```
//!
//! Relative file paths are read from the working directory.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_norway::{Mapping, Value};

use crate::scale::config::{
    join, ConfigError, ConfigReader, CurrentReplicas, MetricSource, WorkloadConfig, WORKLOAD_KEYS,
};

pub use crate::files::MAX_CONFIG_BYTES;

/// How to reach Prometheus.
#[derive(Debug, Clone, PartialEq)]
pub struct PrometheusConfig {
    /// Base URL.
    pub url: String,
    /// Per-request timeout.
    pub timeout: Duration,
    /// Retries after a transient failure.
    pub retries: u32,
    /// A file holding a bearer token sent with every query (re-read on each refresh, as
    /// service-account tokens rotate).
    pub bearer_token_file: Option<PathBuf>,
    /// A PEM file of the CA that signed Prometheus' certificate.
    pub ca_file: Option<PathBuf>,
}

/// The aggregator's front-proxy authentication (`requestheader` in Kubernetes' terms).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestHeaderAuth {
    /// The PEM CA bundle of `requestheader-client-ca-file`.
    pub client_ca_file: PathBuf,
    /// Common names accepted (`requestheader-allowed-names`); empty accepts any name the CA
    /// signed, as in Kubernetes.
    pub allowed_names: Vec<String>,
}

/// The whole configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct ServeConfig {
    /// Prometheus, when any metric queries it.
    pub prometheus: Option<PrometheusConfig>,
    /// Where fitted models and the last decisions are kept across restarts.
    pub state_dir: Option<PathBuf>,
    /// The HTTPS (or plain HTTP) address.
    pub listen_https: SocketAddr,
    /// The KEDA external scaler's gRPC address.
    pub listen_grpc: Option<SocketAddr>,
    /// A certificate and key (PEM); `None`: self-signed at start.
    pub tls: Option<(PathBuf, PathBuf)>,
    /// Plain HTTP instead of TLS.
    pub insecure_http: bool,
    /// Front-proxy authentication; `None`: the API answers anyone (a warning is logged and
    /// `/metrics` says so).
    pub authentication: Option<RequestHeaderAuth>,
    /// Time between refreshes.
    pub refresh_every: Duration,
    /// Fits at once.
    pub concurrency: usize,
    /// The HPA's sync period: a pod asked for now is asked for at the HPA's next sync, so
    /// plans look this much beyond the start-up (as the replay does).
    pub hpa_sync: Duration,
    /// The workloads.
    pub workloads: Vec<WorkloadConfig>,
    /// The audit log (`None`: off).
    pub audit: Option<super::audit_trail::AuditSettings>,
}

/// Where the files a configuration names are read: checked at parse time only when here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FilesAt {
    /// On this machine: a missing file is a problem.
    Here,
    /// On another machine (the pod a configuration is rendered for): not checked.
    Elsewhere,
}

/// Values given on the command line, which override the file's.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Overrides {
    /// `--listen`.
    pub listen: Option<SocketAddr>,
    /// `--state-dir`.
    pub state_dir: Option<PathBuf>,
    /// `--tls-cert` and `--tls-key`.
    pub tls: Option<(PathBuf, PathBuf)>,
    /// `--insecure-http`.
    pub insecure_http: bool,
    /// `--requestheader-client-ca`.
    pub requestheader_client_ca: Option<PathBuf>,
    /// `--requestheader-allowed-names`.
    pub requestheader_allowed_names: Option<Vec<String>>,
}

/// `compliance` is read by the compliance check (`crate::compliance::settings`), not here.
const ROOT_KEYS: [&str; 11] = [
    "audit",
    "compliance",
    "prometheus",
    "stateDir",
    "listen",
    "tls",
    "insecureHttp",
    "authentication",
    "refresh",
    "workloads",
    "hpaSyncPeriod",
];

impl ServeConfig {
    /// Reads, validates and applies `overrides` to the file at `path`.
    pub fn load(path: &Path, overrides: &Overrides) -> Result<Self, ConfigError> {
        let text =
            crate::files::read_limited_text(path, MAX_CONFIG_BYTES).map_err(|e| ConfigError {
                problems: vec![format!("cannot read {}: {e}", path.display())],
            })?;
        Self::from_yaml(&text, overrides)
    }

    /// Parses and validates a YAML document, with `overrides` applied before the checks; the
    /// files it names must be readable here.
    pub fn from_yaml(text: &str, overrides: &Overrides) -> Result<Self, ConfigError> {
        Self::parse(text, overrides, FilesAt::Here)
    }

    /// Parses and validates a YAML document; `files` says whether the files it names (TLS,
    /// front-proxy CA, metric files) are checked here or belong to another machine (a pod
    /// the configuration is rendered for).
    pub fn parse(text: &str, overrides: &Overrides, files: FilesAt) -> Result<Self, ConfigError> {
        crate::scale::config::check_nesting(text)?;
        let doc: Value = serde_norway::from_str(text).map_err(|e| ConfigError {
            problems: vec![format!("not valid YAML: {e}")],
        })?;
        let mut r = ConfigReader::default();
        let Some(root) = r.mapping(&doc, "the document") else {
            return Err(r.into_error());
        };
        r.known(root, "", &ROOT_KEYS);
        let prometheus = root
            .get("prometheus")
            .and_then(|v| prometheus(&mut r, v, "prometheus"));
        let state_dir = r
            .string(root, "", "stateDir", false)
            .map(PathBuf::from)
            .or_else(|| overrides.state_dir.clone());
        let state_dir = overrides.state_dir.clone().or(state_dir);
        let (listen_https, listen_grpc) = listen(&mut r, root.get("listen"));
        let listen_https = overrides.listen.unwrap_or(listen_https);
        let mut tls = root.get("tls").and_then(|v| tls(&mut r, v));
        if overrides.tls.is_some() {
            tls = overrides.tls.clone();
        }
        let insecure_http = r.boolean(root, "", "insecureHttp", false) || overrides.insecure_http;
        let mut authentication = root
            .get("authentication")
            .and_then(|v| authentication(&mut r, v));
        if let Some(ca) = &overrides.requestheader_client_ca {
            authentication = Some(RequestHeaderAuth {
                client_ca_file: ca.clone(),
                allowed_names: authentication.map(|a| a.allowed_names).unwrap_or_default(),
            });
        }
        if let Some(names) = &overrides.requestheader_allowed_names {
            match &mut authentication {
                Some(a) => a.allowed_names = names.clone(),
                None => r.problem(
                    "requestheader allowed names need a requestheader client CA (authentication.requestheaderClientCaFile)",
                ),
            }
        }
        let (refresh_every, concurrency) = refresh(&mut r, root.get("refresh"));
        let hpa_sync = r
            .duration(root, "", "hpaSyncPeriod", Some(Duration::from_secs(15)))
            .unwrap_or(Duration::from_secs(15));
        let audit = audit(&mut r, root.get("audit"), state_dir.as_deref());
        let mut workloads = Vec::new();
        for (at, item) in r.list(root, "", "workloads", Some("workload")) {
            let Some(m) = r.mapping(item, &at) else {
                continue;
            };
            r.known(m, &at, &WORKLOAD_KEYS);
            workloads.push((at.clone(), WorkloadConfig::read(&mut r, m, &at)));
        }
        let config = Self {
            prometheus,
            state_dir,
            listen_https,
            listen_grpc,
            tls,
            insecure_http,
            authentication,
            refresh_every,
            concurrency,
            hpa_sync,
            workloads: vec![],
            audit,
        };
        config.check(&mut r, &workloads, files);
        r.finish()?;
        Ok(Self {
            workloads: workloads.into_iter().map(|(_, w)| w).collect(),
            ..config
        })
    }

    /// The checks that span keys: sources a server can read, no workload twice, TLS files
    /// that exist.
    fn check(&self, r: &mut ConfigReader, workloads: &[(String, WorkloadConfig)], files: FilesAt) {
        let missing = |path: &Path| files == FilesAt::Here && !path.is_file();
        let mut seen = std::collections::HashSet::new();
        for (at, w) in workloads {
            if !seen.insert((w.namespace.clone(), w.workload.clone())) {
                r.problem(format!(
                    "{at}: workload {}/{} appears twice",
                    w.namespace, w.workload
                ));
            }
            if !is_dns_label(&w.namespace) {
                r.problem(format!(
                    "{}: {:?} is not a Kubernetes namespace name (lower-case letters, digits and '-', at most 63)",
                    join(at, "namespace"),
                    w.namespace
                ));
            }
            let needs_current = w
                .metrics
                .iter()
                .any(|m| matches!(m.target.target, crate::scale::policy::Target::Value(_)));
            match &w.current_replicas {
                None if needs_current => r.problem(format!(
                    "{at}: a metric with targetValue needs currentReplicas (a query such as kube_deployment_status_replicas, or a fixed count)"
                )),
                Some(CurrentReplicas::Query(_)) if self.prometheus.is_none() => r.problem(format!(
                    "{}: a query needs prometheus.url",
                    join(at, "currentReplicas")
                )),
                _ => {}
            }
            for (i, m) in w.metrics.iter().enumerate() {
                let here = format!("{at}.metrics[{i}]");
                match &m.source {
                    None => r.problem(format!(
                        "{here}: give a query (PromQL) or a file (CSV or Parquet) to read it from"
                    )),
                    Some(MetricSource::Query(_)) => {
                        if self.prometheus.is_none() {
                            r.problem(format!("{here}.query: a query needs prometheus.url"));
                        }
                        if m.step.is_none() {
                            r.problem(format!("{here}.step: missing (a query needs its step)"));
                        }
                    }
                    Some(MetricSource::File(path)) => {
                        if missing(path) {
                            r.problem(format!(
                                "{here}.file: {} is not a readable file",
                                path.display()
                            ));
                        }
                    }
                }
                if let Some(step) = m.step {
                    if m.history < 4 * step {
                        r.problem(format!(
                            "{here}.history: {} is under four steps of {}",
                            humantime::format_duration(m.history),
                            humantime::format_duration(step)
                        ));
                    }
                    if m.horizon < step {
                        r.problem(format!("{here}.horizon: shorter than one step"));
                    }
                }
            }
        }
        if let Some((cert, key)) = &self.tls {
            for (what, path) in [("certFile", cert), ("keyFile", key)] {
                if missing(path) {
                    r.problem(format!(
                        "tls.{what}: {} is not a readable file",
                        path.display()
                    ));
                }
            }
        }
        if let Some(a) = &self.authentication {
            if missing(&a.client_ca_file) {
                r.problem(format!(
                    "authentication.requestheaderClientCaFile: {} is not a readable file",
                    a.client_ca_file.display()
                ));
            }
            if self.insecure_http {
                r.problem("authentication needs TLS: front-proxy certificates cannot be checked over plain HTTP (drop insecureHttp)");
            }
        }
        if self.insecure_http && self.tls.is_some() {
            r.problem("insecureHttp and tls are exclusive");
        }
    }
}

fn prometheus(r: &mut ConfigReader, v: &Value, path: &str) -> Option<PrometheusConfig> {
    let m = r.mapping(v, path)?;
    r.known(
        m,
        path,
        &["url", "timeout", "retries", "bearerTokenFile", "caFile"],
    );
    let url = r.string(m, path, "url", true);
    if let Some(u) = &url {
        if !(u.starts_with("http://") || u.starts_with("https://")) {
            r.problem(format!(
                "{path}.url: {u:?} must start with http:// or https://"
            ));
        }
    }
    let timeout = r.duration(m, path, "timeout", Some(Duration::from_secs(10)));
    let retries = r.integer(m, path, "retries", Some(2));
    let retries = match retries.map(u32::try_from) {
        Some(Ok(n)) if n <= 10 => Some(n),
        Some(_) => {
            r.problem(format!("{path}.retries: must be 0 to 10"));
            None
        }
        None => None,
    };
    let file = |r: &mut ConfigReader, key: &str| {
        r.string(m, path, key, false)
            .map(PathBuf::from)
            .filter(|p| {
                let ok = p.is_file();
                if !ok {
                    r.problem(format!(
                        "{}: {} is not a readable file",
                        join(path, key),
                        p.display()
                    ));
                }
                ok
            })
    };
    let bearer_token_file = file(r, "bearerTokenFile");
    let ca_file = file(r, "caFile");
    Some(PrometheusConfig {
        url: url?,
        timeout: timeout?,
        retries: retries?,
        bearer_token_file,
        ca_file,
    })
}

fn listen(r: &mut ConfigReader, v: Option<&Value>) -> (SocketAddr, Option<SocketAddr>) {
    let default_https: SocketAddr = ([0, 0, 0, 0], 6443).into();
    let Some(v) = v else {
        return (default_https, None);
    };
    let Some(m) = r.mapping(v, "listen") else {
        return (default_https, None);
    };
    r.known(m, "listen", &["https", "grpc"]);
    let mut address = |key: &str| {
        r.string(m, "listen", key, false)
            .and_then(|a| match a.parse::<SocketAddr>() {
                Ok(addr) => Some(addr),
                Err(_) => {
                    r.problem(format!(
                        "listen.{key}: {a:?} is not an address such as 0.0.0.0:6443"
                    ));
                    None
                }
            })
    };
    let https = address("https").unwrap_or(default_https);
    let grpc = address("grpc");
    if grpc == Some(https) {
        r.problem("listen.grpc: the same address as listen.https");
    }
    (https, grpc)
}

fn tls(r: &mut ConfigReader, v: &Value) -> Option<(PathBuf, PathBuf)> {
    let m = r.mapping(v, "tls")?;
    r.known(m, "tls", &["certFile", "keyFile"]);
    let cert = r.string(m, "tls", "certFile", true)?;
    let key = r.string(m, "tls", "keyFile", true)?;
    Some((cert.into(), key.into()))
}

fn authentication(r: &mut ConfigReader, v: &Value) -> Option<RequestHeaderAuth> {
    let m: &Mapping = r.mapping(v, "authentication")?;
    r.known(
        m,
        "authentication",
        &["requestheaderClientCaFile", "requestheaderAllowedNames"],
    );
    let ca = r.string(m, "authentication", "requestheaderClientCaFile", true)?;
    let names = r.strings(m, "authentication", "requestheaderAllowedNames");
    Some(RequestHeaderAuth {
        client_ca_file: ca.into(),
        allowed_names: names,
    })
}

/// The audit log: `audit.file`, else `<stateDir>/audit.jsonl`; off with `enabled: false` or
/// without either.
fn audit(
    r: &mut ConfigReader,
    v: Option<&Value>,
    state_dir: Option<&Path>,
) -> Option<super::audit_trail::AuditSettings> {
    use super::audit_trail::{AuditSettings, DEFAULT_ROTATE_BYTES};
    let default_file = state_dir.map(|d| d.join("audit.jsonl"));
    let Some(m) = v.and_then(|v| r.mapping(v, "audit")) else {
        return default_file.map(|file| AuditSettings {
            file,
            rotate_bytes: DEFAULT_ROTATE_BYTES,
        });
    };
    r.known(m, "audit", &["file", "rotateBytes", "enabled"]);
    let enabled = r.boolean(m, "audit", "enabled", true);
    let file = r.string(m, "audit", "file", false).map(PathBuf::from);
    let rotate = r.integer(m, "audit", "rotateBytes", Some(DEFAULT_ROTATE_BYTES as i64));
    let rotate_bytes = match rotate {
        Some(n) if n >= 4096 => n as u64,
        Some(n) => {
            r.problem(format!("audit.rotateBytes: {n} is under 4096"));
            DEFAULT_ROTATE_BYTES
        }
        None => DEFAULT_ROTATE_BYTES,
    };
    if !enabled {
        return None;
    }
    match file.or(default_file) {
        Some(file) => Some(AuditSettings { file, rotate_bytes }),
        None => {
            r.problem("audit.file: needed when there is no stateDir");
            None
        }
    }
}

fn refresh(r: &mut ConfigReader, v: Option<&Value>) -> (Duration, usize) {
    let defaults = (Duration::from_secs(15), 2);
    let Some(m) = v.and_then(|v| r.mapping(v, "refresh")) else {
        return defaults;
    };
    r.known(m, "refresh", &["every", "concurrency"]);
    let every = r
        .duration(m, "refresh", "every", Some(defaults.0))
        .unwrap_or(defaults.0);
    if every < Duration::from_secs(1) {
        r.problem("refresh.every: at least 1s");
    }
    let concurrency = match r.integer(m, "refresh", "concurrency", Some(2)) {
        Some(n) if (1..=64).contains(&n) => n as usize,
        Some(n) => {
            r.problem(format!("refresh.concurrency: {n} is not 1 to 64"));
            defaults.1
        }
        None => defaults.1,
    };
    (every, concurrency)
}

/// A Kubernetes namespace name: a DNS-1123 label.
pub fn is_dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "
stateDir: /tmp/prescale-state
listen: {https: 127.0.0.1:18443, grpc: 127.0.0.1:19443}
insecureHttp: true
refresh: {every: 30s, concurrency: 4}
workloads:
  - workload: taxi
    namespace: demo
    maxReplicas: 100
    startupSeconds: 300
    metrics:
      - name: passengers
        file: datasets/nyc_taxi.csv
        model: ets
        capacityPerReplica: 1000
";

    #[test]
    fn a_valid_file_reads_and_flags_override_it() {
        let c = ServeConfig::from_yaml(GOOD, &Overrides::default()).unwrap();
        assert_eq!(c.listen_https.port(), 18443);
        assert_eq!(c.listen_grpc.map(|a| a.port()), Some(19443));
        assert_eq!((c.refresh_every.as_secs(), c.concurrency), (30, 4));
        assert_eq!(c.workloads[0].namespace, "demo");
        assert!(c.insecure_http && c.authentication.is_none());
        let o = Overrides {
            listen: Some(([127, 0, 0, 1], 1).into()),
            state_dir: Some("/elsewhere".into()),
            ..Overrides::default()
        };
        let c = ServeConfig::from_yaml(GOOD, &o).unwrap();
        assert_eq!(c.listen_https.port(), 1);
        assert_eq!(c.state_dir, Some(PathBuf::from("/elsewhere")));
    }

    #[test]
    fn every_problem_is_listed_with_its_path() {
        let bad = "
prometheus: {url: prometheus:9090, retries: 99}
listen: {https: everywhere}
tls: {certFile: /no/such.crt, keyFile: /no/such.key}
insecureHttp: true
refresh: {concurrency: 0}
sidecar: yes
workloads:
  - workload: api
    namespace: Shop
    maxReplicas: 10
    startupSeconds: 30
    metrics:
      - name: rps
        capacityPerReplica: 10
      - name: cpu
        query: avg(cpu)
        targetValue: 0.7
  - workload: api
    namespace: Shop
    maxReplicas: 10
    startupSeconds: 30
    metrics:
      - name: rps
        file: /no/such.csv
        step: 1m
        history: 2m
        capacityPerReplica: 10
";
        let err = ServeConfig::from_yaml(bad, &Overrides::default()).unwrap_err();
        let all = err.problems.join("\n");
        for expected in [
            "prometheus.url: \"prometheus:9090\" must start with http://",
            "prometheus.retries: must be 0 to 10",
            "listen.https: \"everywhere\" is not an address",
            "refresh.concurrency: 0 is not 1 to 64",
            "sidecar: unknown key",
            "workloads[0].namespace: \"Shop\" is not a Kubernetes namespace name",
            "workloads[0].metrics[0]: give a query (PromQL) or a file",
            "workloads[0].metrics[1].step: missing (a query needs its step)",
            "workloads[0]: a metric with targetValue needs currentReplicas",
            "workloads[1]: workload Shop/api appears twice",
            "workloads[1].metrics[0].file: /no/such.csv is not a readable file",
            "workloads[1].metrics[0].history: 2m is under four steps of 1m",
            "tls.certFile: /no/such.crt is not a readable file",
            "insecureHttp and tls are exclusive",
        ] {
            assert!(all.contains(expected), "missing {expected:?} in:\n{all}");
        }
    }
}
