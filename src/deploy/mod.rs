//! `prescale deploy`: what a cluster needs to run `prescale serve`, as typed Kubernetes
//! objects.
//!
//! [`render`] turns a `serve` configuration into three folders of manifests, each object a
//! typed [`k8s_openapi`] value (or, for KEDA's CRD, a small typed serde struct in [`keda`])
//! serialised to YAML, never a text template:
//!
//! | folder | holds | apply it |
//! |---|---|---|
//! | `prescale/` | the Namespace, ServiceAccount, the aggregated API server's RBAC, the configuration (and front-proxy CA) as ConfigMaps, the Deployment and its Service | always |
//! | `external-metrics/` | the `v1beta1.external.metrics.k8s.io` APIService, the role that lets the HPA controller read it, one HPA v2 per workload reading `prescale_replicas` | on a cluster with no other external metrics adapter |
//! | `keda/` | one `ScaledObject` per workload with prescale as its `external` trigger | on a cluster running KEDA (which holds that APIService) |
//!
//! The configuration is checked as `serve` checks it, plus what only a cluster refuses: a
//! metric read from a file (the pod has none), plain HTTP (the aggregator speaks TLS), a
//! loopback listen address, certificate files with no Secret to mount them from. Every
//! problem is listed at once with its path.
//!
//! ```
//! use prescale::deploy::{render, RenderSettings};
//!
//! let config = "
//! prometheus: {url: http://prometheus.monitoring:9090}
//! workloads:
//!   - workload: api
//!     namespace: shop
//!     minReplicas: 2
//!     maxReplicas: 20
//!     startupSeconds: 60
//!     metrics:
//!       - name: requests
//!         query: sum(rate(http_requests_total{service=\"api\"}[5m]))
//!         step: 1m
//!         model: ets
//!         capacityPerReplica: 50
//! ";
//! let settings = RenderSettings::new("registry.example.com/prescale:0.1.0");
//! let rendered = render(config, &settings).unwrap();
//! let hpa = rendered
//!     .manifests
//!     .iter()
//!     .find(|m| m.path == "external-metrics/hpa-shop-api.yaml")
//!     .unwrap();
//! assert!(hpa.yaml.contains("name: prescale_replicas"));
//! ```

pub mod autoscalers;
pub mod cluster;
pub mod clusters;
pub mod downtime;
pub mod job;
pub mod keda;
pub mod shard;
pub mod traffic_replay;
pub mod weights;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use serde::Serialize;

use crate::scale::config::{ConfigError, MetricSource};
use crate::serve::config::is_dns_label;
use crate::serve::{FilesAt, Overrides, ServeConfig};

/// Where the configuration is mounted in the pod.
pub const CONFIG_PATH: &str = "/etc/prescale/config/serve.yaml";
/// The state folder in the pod (fitted models, last decisions, the self-signed certificate).
pub const STATE_DIR: &str = "/var/lib/prescale";
/// Where a TLS Secret is mounted in the pod (`tls.crt`, `tls.key`).
pub const TLS_DIR: &str = "/etc/prescale/tls";
/// Where the front-proxy CA is mounted in the pod.
pub const REQUESTHEADER_DIR: &str = "/etc/prescale/requestheader";
/// The key of the front-proxy CA, as `kube-system/extension-apiserver-authentication` names it.
pub const REQUESTHEADER_KEY: &str = "requestheader-client-ca-file";
/// The HPA controller's own tolerance unless its `--horizontal-pod-autoscaler-tolerance` says
/// otherwise; a workload planned with another one lands the HPA elsewhere than planned.
pub const CONTROLLER_TOLERANCE: f64 = 0.1;

/// How to render: names, image and what to mount, beside the `serve` configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderSettings {
    /// Name of the Deployment, Service, ServiceAccount and prefix of the rest.
    pub name: String,
    /// Namespace prescale runs in.
    pub namespace: String,
    /// The container image (prescale's binary as its entry point or on `PATH`).
    pub image: String,
    /// Pods of the Deployment; each refreshes on its own and serves the same decisions.
    pub replicas: i32,
    /// The front-proxy CA (PEM), mounted where the configuration's
    /// `authentication.requestheaderClientCaFile` is read.
    pub requestheader_client_ca: Option<String>,
    /// A Secret of type `kubernetes.io/tls` holding the serving certificate; `None`: the
    /// server makes a self-signed one at start.
    pub tls_secret: Option<String>,
    /// The CA (PEM) that signed the serving certificate, for the APIService's `caBundle`;
    /// `None`: the APIService skips verification (as with a self-signed certificate).
    pub ca_bundle: Option<String>,
    /// A PersistentVolumeClaim for the state folder; `None`: an `emptyDir`, which keeps the
    /// state across container restarts but not across pods.
    pub state_claim: Option<String>,
}

impl RenderSettings {
    /// Defaults (`prescale` in namespace `prescale`, one pod, self-signed TLS, state in an
    /// `emptyDir`) for `image`.
    pub fn new(image: impl Into<String>) -> Self {
        Self {
            name: "prescale".into(),
            namespace: "prescale".into(),
            image: image.into(),
            replicas: 1,
            requestheader_client_ca: None,
            tls_secret: None,
            ca_bundle: None,
            state_claim: None,
        }
    }
}

/// One rendered file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    /// Relative path in the output folder, e.g. `prescale/deployment.yaml`.
    pub path: String,
    /// The object as YAML.
    pub yaml: String,
}

/// What [`render`] made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    /// The files, in the order they are applied.
    pub manifests: Vec<Manifest>,
    /// Things that render but deserve a look (no front-proxy authentication, a tolerance the
    /// controller does not use, no KEDA address).
    pub warnings: Vec<String>,
}

/// Why rendering failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DeployError {
    /// The configuration or the settings have problems (all listed, each with its path).
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// An object could not be written as YAML.
    #[error("cannot write {what} as YAML")]
    Yaml {
        /// The object.
        what: String,
        /// Why.
        #[source]
        source: serde_norway::Error,
    },
    /// A file could not be written.
    #[error("cannot write {}", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// Renders the manifests for the `serve` configuration `config_yaml` (kept verbatim in the
/// ConfigMap, comments and all).
pub fn render(config_yaml: &str, settings: &RenderSettings) -> Result<Rendered, DeployError> {
    let config = check(config_yaml, settings)?;
    let mut warnings = Vec::new();
    if config.authentication.is_none() {
        warnings.push(
            "no front-proxy authentication: the API answers any client that reaches the pod (set authentication.requestheaderClientCaFile)".to_string(),
        );
    }
    for w in &config.workloads {
        if (w.tolerance - CONTROLLER_TOLERANCE).abs() > 1e-12 {
            warnings.push(format!(
                "workload {}/{} is planned with tolerance {} but the HPA controller applies its own (--horizontal-pod-autoscaler-tolerance, {} by default): set them alike",
                w.namespace, w.workload, w.tolerance, CONTROLLER_TOLERANCE
            ));
        }
    }
    let mut out = Vec::new();
    for object in cluster::objects(config_yaml, &config, settings) {
        out.push(object.into_manifest("prescale")?);
    }
    for object in autoscalers::external_metrics(&config, settings) {
        out.push(object.into_manifest("external-metrics")?);
    }
    match autoscalers::scaled_objects(&config, settings) {
        Some(objects) => {
            for object in objects {
                out.push(object.into_manifest("keda")?);
            }
        }
        None => warnings.push(
            "no listen.grpc in the configuration: no KEDA ScaledObjects rendered".to_string(),
        ),
    }
    Ok(Rendered {
        manifests: out,
        warnings,
    })
}

/// The configuration as `serve` would read it in the pod, and every problem that keeps it
/// from running there.
fn check(config_yaml: &str, settings: &RenderSettings) -> Result<ServeConfig, ConfigError> {
    let mut problems = Vec::new();
    for (what, value) in [("name", &settings.name), ("namespace", &settings.namespace)] {
        if !is_dns_label(value) {
            problems.push(format!(
                "the {what} {value:?} is not a DNS-1123 label (lower-case letters, digits and '-', at most 63)"
            ));
        }
    }
    if settings.image.trim().is_empty() {
        problems.push("the container image is empty".into());
    }
    if settings.replicas < 1 {
        problems.push(format!("replicas {} is under 1", settings.replicas));
    }
    for (what, pem) in [
        ("front-proxy CA", &settings.requestheader_client_ca),
        ("CA bundle", &settings.ca_bundle),
    ] {
        if pem.as_deref().is_some_and(|p| !holds_certificate(p)) {
            problems.push(format!("the {what} holds no PEM certificate"));
        }
    }
    if settings.ca_bundle.is_some() && settings.tls_secret.is_none() {
        problems.push(
            "a CA bundle verifies a certificate from a TLS Secret, and none is named (a self-signed certificate changes at every start)".into(),
        );
    }
    for (what, value) in [
        ("TLS Secret", &settings.tls_secret),
        ("state claim", &settings.state_claim),
    ] {
        if let Some(v) = value {
            if !is_dns_subdomain(v) {
                problems.push(format!("the {what} {v:?} is not a Kubernetes object name"));
            }
        }
    }
    let config = match ServeConfig::parse(config_yaml, &Overrides::default(), FilesAt::Elsewhere) {
        Ok(c) => Some(c),
        Err(e) => {
            problems.extend(e.problems);
            None
        }
    };
    if let Some(config) = &config {
        if config.insecure_http {
            problems.push(
                "insecureHttp: the aggregator and KEDA reach the server over TLS only".into(),
            );
        }
        if config.listen_https.ip().is_loopback() {
            problems.push(format!(
                "listen.https: {} is not reachable from outside the pod (listen on 0.0.0.0)",
                config.listen_https
            ));
        }
        if config.listen_grpc.is_some_and(|g| g.ip().is_loopback()) {
            problems.push("listen.grpc: a loopback address is not reachable from outside the pod (listen on 0.0.0.0)".into());
        }
        if config.tls.is_some() && settings.tls_secret.is_none() {
            problems.push(
                "tls: the certificate files are not in the pod: name a Secret of type kubernetes.io/tls to mount instead".into(),
            );
        }
        match (&config.authentication, &settings.requestheader_client_ca) {
            (Some(a), None) => problems.push(format!(
                "authentication.requestheaderClientCaFile: nothing to mount at {}: give the front-proxy CA ({REQUESTHEADER_KEY} of kube-system/extension-apiserver-authentication)",
                a.client_ca_file.display()
            )),
            (None, Some(_)) => problems.push(
                "a front-proxy CA is given but the configuration has no authentication block to use it".into(),
            ),
            _ => {}
        }
        for (i, w) in config.workloads.iter().enumerate() {
            for (j, m) in w.metrics.iter().enumerate() {
                if let Some(MetricSource::File(path)) = &m.source {
                    problems.push(format!(
                        "workloads[{i}].metrics[{j}].file: {} is not in the pod: read the metric from Prometheus with a query",
                        path.display()
                    ));
                }
            }
        }
    }
    match config {
        Some(config) if problems.is_empty() => Ok(config),
        _ => Err(ConfigError { problems }),
    }
}

/// Whether `pem` holds at least one certificate and nothing unreadable.
fn holds_certificate(pem: &str) -> bool {
    let certs = CertificateDer::pem_slice_iter(pem.as_bytes()).collect::<Result<Vec<_>, _>>();
    matches!(certs, Ok(ref c) if !c.is_empty())
}

/// A DNS-1123 subdomain, as most object names must be.
fn is_dns_subdomain(s: &str) -> bool {
    s.len() <= 253 && s.split('.').all(is_dns_label)
}

/// Writes `rendered` under `dir`. Files a previous render wrote there (listed in
/// `.prescale-rendered`) and not written now are removed, so an applied folder never carries a
/// workload that left the configuration; nothing else in `dir` is touched.
pub fn write(dir: &Path, rendered: &Rendered) -> Result<(), DeployError> {
    let index = dir.join(".prescale-rendered");
    let failed = |path: &Path| {
        let path = path.to_path_buf();
        move |source| DeployError::Write { path, source }
    };
    let previous = std::fs::read_to_string(&index).unwrap_or_default();
    let now: Vec<&str> = rendered.manifests.iter().map(|m| m.path.as_str()).collect();
    for old in previous.lines().filter(|l| !now.contains(l)) {
        // Only plain relative paths a render could have written.
        if old.ends_with(".yaml") && !old.starts_with('/') && !old.split('/').any(|p| p == "..") {
            let path = dir.join(old);
            match std::fs::remove_file(&path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    return Err(failed(&path)(e));
                }
                _ => {}
            }
        }
    }
    for m in &rendered.manifests {
        let path = dir.join(&m.path);
        crate::files::write_atomic(&path, m.yaml.as_bytes()).map_err(failed(&path))?;
    }
    let mut listing = now.join("\n");
    listing.push('\n');
    crate::files::write_atomic(&index, listing.as_bytes()).map_err(failed(&index))
}

/// One object to render: its file name in its folder and its YAML.
#[derive(Debug)]
pub(crate) struct Object {
    file: String,
    yaml: Result<String, serde_norway::Error>,
}

impl Object {
    /// `value` serialised, to be written as `file`.
    pub(crate) fn new(file: impl Into<String>, value: &impl Serialize) -> Self {
        Self {
            file: file.into(),
            yaml: serde_norway::to_string(value),
        }
    }

    fn into_manifest(self, folder: &str) -> Result<Manifest, DeployError> {
        let path = format!("{folder}/{}", self.file);
        let yaml = self.yaml.map_err(|source| DeployError::Yaml {
            what: path.clone(),
            source,
        })?;
        Ok(Manifest { path, yaml })
    }
}

/// Metadata with prescale's labels.
pub(crate) fn meta(name: &str, namespace: Option<&str>, settings: &RenderSettings) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.to_string()),
        namespace: namespace.map(str::to_string),
        labels: Some(labels(settings, true)),
        ..ObjectMeta::default()
    }
}

/// `app.kubernetes.io` labels; the selector's subset when `all` is false (a Deployment's
/// selector cannot change, so it holds no version).
pub(crate) fn labels(settings: &RenderSettings, all: bool) -> BTreeMap<String, String> {
    let mut l = BTreeMap::from([
        ("app.kubernetes.io/name".to_string(), "prescale".to_string()),
        (
            "app.kubernetes.io/instance".to_string(),
            settings.name.clone(),
        ),
    ]);
    if all {
        l.insert(
            "app.kubernetes.io/version".into(),
            env!("CARGO_PKG_VERSION").into(),
        );
        l.insert("app.kubernetes.io/managed-by".into(), "prescale".into());
    }
    l
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONFIG: &str = "
prometheus: {url: http://prometheus:9090}
listen: {https: 0.0.0.0:6443, grpc: 0.0.0.0:9443}
workloads:
  - workload: api
    namespace: shop
    minReplicas: 2
    maxReplicas: 20
    startupSeconds: 60
    metrics:
      - {name: requests, query: up, step: 1m, model: ets, capacityPerReplica: 50}
";

    #[test]
    fn every_problem_a_cluster_refuses_is_listed_at_once() {
        let config = "
listen: {https: 127.0.0.1:6443}
authentication: {requestheaderClientCaFile: /ca.crt}
workloads:
  - workload: api
    namespace: shop
    minReplicas: 1
    maxReplicas: 5
    startupSeconds: 60
    metrics:
      - {name: requests, file: load.csv, capacityPerReplica: 10}
";
        let mut settings = RenderSettings::new(" ");
        settings.namespace = "Prescale".into();
        settings.ca_bundle = Some("not a certificate".into());
        let Err(DeployError::Config(e)) = render(config, &settings) else {
            panic!("rendered a config a cluster cannot run");
        };
        let all = e.problems.join("\n");
        for needle in [
            "namespace \"Prescale\"",
            "image is empty",
            "CA bundle holds no PEM",
            "and none is named",
            "listen.https: 127.0.0.1:6443",
            "authentication.requestheaderClientCaFile: nothing to mount at /ca.crt",
            "workloads[0].metrics[0].file: load.csv is not in the pod",
        ] {
            assert!(all.contains(needle), "{needle:?} missing from:\n{all}");
        }
        let plain = CONFIG.replace("workloads:", "insecureHttp: true\nworkloads:");
        let Err(DeployError::Config(e)) = render(&plain, &RenderSettings::new("prescale:test"))
        else {
            panic!("rendered a plain-HTTP server for the aggregator");
        };
        assert!(
            e.problems.iter().any(|p| p.starts_with("insecureHttp")),
            "{e}"
        );
    }

    #[test]
    fn renders_each_folder_and_warns_without_authentication() {
        let rendered = render(CONFIG, &RenderSettings::new("prescale:test")).unwrap();
        let paths: Vec<&str> = rendered.manifests.iter().map(|m| m.path.as_str()).collect();
        for expected in [
            "prescale/namespace.yaml",
            "prescale/deployment.yaml",
            "prescale/service.yaml",
            "external-metrics/apiservice.yaml",
            "external-metrics/hpa-shop-api.yaml",
            "keda/scaledobject-shop-api.yaml",
        ] {
            assert!(paths.contains(&expected), "{expected} not in {paths:?}");
        }
        assert!(rendered.warnings.iter().any(|w| w.contains("front-proxy")));
    }

    #[test]
    fn a_second_render_removes_only_what_the_first_wrote_and_no_longer_exists() {
        let dir = tempfile::tempdir().unwrap();
        let first = render(CONFIG, &RenderSettings::new("prescale:test")).unwrap();
        write(dir.path(), &first).unwrap();
        std::fs::write(dir.path().join("prescale/mine.yaml"), "kept").unwrap();
        let fewer = Rendered {
            manifests: first.manifests[..2].to_vec(),
            warnings: vec![],
        };
        write(dir.path(), &fewer).unwrap();
        assert!(dir.path().join(&first.manifests[0].path).is_file());
        assert!(!dir.path().join(&first.manifests[3].path).exists());
        assert!(dir.path().join("prescale/mine.yaml").is_file());
    }
}
