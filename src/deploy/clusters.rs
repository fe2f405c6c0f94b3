//! Many clusters from one file: regions, clusters (kube context, region, data-residency zone,
//! the Prometheus each adapter reads, capacity limits) and where each workload runs, with
//! per-cluster overrides of its settings.
//!
//! [`render_clusters`] checks the whole file first, listing every problem with its path (an
//! unknown region or cluster, a duplicate name, a workload placed nowhere, a placement its
//! residency forbids, a placement over a cluster's capacity), then builds each cluster's
//! `serve` configuration and renders it with the single-cluster [`super::render`], so a
//! cluster folder holds exactly what `prescale deploy render --config` would for it.
//!
//! ```yaml
//! serve: {listen: {https: 0.0.0.0:6443, grpc: 0.0.0.0:9443}}   # shared serve settings
//! regions: [{name: us-east, residency: us}]
//! clusters:
//!   - {name: use1-a, context: prod-use1-a, region: us-east,
//!      prometheusUrl: http://prometheus.monitoring:9090,
//!      capacity: {maxReplicasPerWorkload: 60, nodes: 40},
//!      # its own serving certificate and front-proxy CA, in place of the shared settings';
//!      # files relative to the clusters file
//!      tls: {secret: prescale-tls, caBundle: certs/use1-a-ca.crt},
//!      requestheaderClientCA: certs/use1-a-front-proxy-ca.crt}
//! workloads:
//!   - workload: api            # a serve workload, plus the three keys below
//!     namespace: shop
//!     # ...
//!     residency: [us]          # zones its data may be processed in (absent: any)
//!     replicasPerNode: 4       # for the node budget (default 1)
//!     placements: [{cluster: use1-a, overrides: {maxReplicas: 30}}]
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde_norway::{Mapping, Value};

use super::{render, DeployError, RenderSettings, Rendered};
use crate::scale::config::{check_nesting, ConfigError, ConfigReader};
use crate::serve::config::is_dns_label;

/// The keys of the clusters file.
const ROOT_KEYS: [&str; 4] = ["serve", "regions", "clusters", "workloads"];
/// The keys of a workload that belong to the clusters file, not to `serve`.
const PLACEMENT_KEYS: [&str; 3] = ["residency", "replicasPerNode", "placements"];
/// `serve` keys a cluster sets itself.
const PER_CLUSTER_SERVE_KEYS: [&str; 1] = ["workloads"];

/// A region: a set of clusters in one place, in one data-residency zone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Region {
    /// Its name (also the traffic-weight destination).
    pub name: String,
    /// The data-residency zone it lies in (`eu`, `us`, ...).
    pub residency: String,
}

/// A cluster's capacity limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Capacity {
    /// The most replicas any one workload may have there.
    pub max_replicas_per_workload: Option<i64>,
    /// Nodes the cluster may use for the workloads placed on it (at their `maxReplicas`).
    pub nodes: Option<i64>,
}

/// A cluster as the file gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cluster {
    /// Its name (the output folder's name).
    pub name: String,
    /// The kube context that reaches it.
    pub context: String,
    /// The region it is in.
    pub region: String,
    /// The Prometheus its adapter reads.
    pub prometheus_url: String,
    /// Its limits.
    pub capacity: Capacity,
    /// Its own serving certificate, in place of the shared settings' (and their CA bundle).
    pub tls: Option<ClusterTls>,
    /// Its own front-proxy CA (PEM), in place of the shared one.
    pub requestheader_client_ca: Option<String>,
}

/// A cluster's own serving certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterTls {
    /// The Secret of type `kubernetes.io/tls` that holds it in the cluster.
    pub secret: String,
    /// The CA (PEM) that signed it, for the APIService's `caBundle`; `None`: the APIService
    /// skips verification.
    pub ca_bundle: Option<String>,
}

impl Cluster {
    /// The render settings of this cluster: `shared`, with the cluster's own certificate and
    /// front-proxy CA in place of the shared ones where it has them.
    pub fn render_settings(&self, shared: &RenderSettings) -> RenderSettings {
        let mut out = shared.clone();
        if let Some(tls) = &self.tls {
            out.tls_secret = Some(tls.secret.clone());
            out.ca_bundle = tls.ca_bundle.clone();
        }
        if let Some(ca) = &self.requestheader_client_ca {
            out.requestheader_client_ca = Some(ca.clone());
        }
        out
    }
}

/// One cluster's rendering.
#[derive(Debug, Clone, PartialEq)]
pub struct ClusterRendered {
    /// The cluster.
    pub cluster: Cluster,
    /// Its region's residency zone.
    pub residency: String,
    /// The `serve` configuration built for it (kept in its ConfigMap).
    pub config_yaml: String,
    /// Its manifests, paths relative to its own folder.
    pub rendered: Rendered,
}

/// What [`render_clusters`] made.
#[derive(Debug, Clone, PartialEq)]
pub struct ClustersRendered {
    /// The regions, in file order.
    pub regions: Vec<Region>,
    /// One entry per cluster with at least one workload, in file order.
    pub clusters: Vec<ClusterRendered>,
    /// Things worth a look that do not stop rendering (a cluster with no workload, a region
    /// with no cluster).
    pub warnings: Vec<String>,
}

/// A workload with where it goes, before merging.
struct Placed<'a> {
    path: String,
    id: String,
    settings: &'a Mapping,
    placements: Vec<(String, String, Option<&'a Mapping>)>,
}

/// Checks the clusters file `text` and renders each cluster with `settings` (the same image,
/// names and mounts everywhere, but for a cluster's own `tls` and `requestheaderClientCA`,
/// whose files are read relative to `base`, the clusters file's folder). Every problem of the
/// file is listed at once, each with its path; problems a cluster's own `serve` configuration
/// has are prefixed with the cluster.
pub fn render_clusters(
    text: &str,
    base: &Path,
    settings: &RenderSettings,
) -> Result<ClustersRendered, DeployError> {
    check_nesting(text)?;
    let doc: Value = serde_norway::from_str(text).map_err(|e| ConfigError {
        problems: vec![format!("not valid YAML: {e}")],
    })?;
    let mut r = ConfigReader::default();
    let Some(root) = r.mapping(&doc, "the document") else {
        return Err(r.into_error().into());
    };
    r.known(root, "", &ROOT_KEYS);
    let serve = match root.get("serve") {
        None => Mapping::new(),
        Some(v) => r.mapping(v, "serve").cloned().unwrap_or_default(),
    };
    for key in PER_CLUSTER_SERVE_KEYS {
        if serve.contains_key(key) {
            r.problem(format!(
                "serve.{key}: set per cluster (list workloads at the top level with their placements)"
            ));
        }
    }
    if serve
        .get("prometheus")
        .and_then(Value::as_mapping)
        .is_some_and(|p| p.contains_key("url"))
    {
        r.problem("serve.prometheus.url: set per cluster (clusters[].prometheusUrl)");
    }

    let regions = read_regions(&mut r, root);
    let mut clusters = read_clusters(&mut r, root, &regions, base);
    for (ci, c) in clusters.iter_mut().enumerate() {
        if c.requestheader_client_ca.is_some() && !serve.contains_key("authentication") {
            r.problem(format!(
                "clusters[{ci}].requestheaderClientCA: serve has no authentication block to use it"
            ));
            // Said here with its path; the cluster's render would say it again without.
            c.requestheader_client_ca = None;
        }
    }
    let workloads = read_workloads(&mut r, root);

    // Placements: known clusters, allowed zones, capacity.
    let mut by_name: BTreeMap<&str, (usize, &Cluster)> = BTreeMap::new();
    for (i, c) in clusters.iter().enumerate() {
        // A duplicate is a problem already; placements go to the first.
        by_name.entry(c.name.as_str()).or_insert((i, c));
    }
    let zone_of = |c: &Cluster| {
        regions
            .iter()
            .find(|g| g.name == c.region)
            .map(|g| g.residency.clone())
    };
    // cluster index -> (workload index, merged settings)
    let mut per_cluster: BTreeMap<usize, Vec<(usize, Mapping)>> = BTreeMap::new();
    let mut nodes_needed: BTreeMap<usize, Vec<(String, i64)>> = BTreeMap::new();
    for (wi, w) in workloads.iter().enumerate() {
        let allowed: Vec<String> = r.strings(w.settings, &w.path, "residency");
        let per_node = r
            .integer(w.settings, &w.path, "replicasPerNode", Some(1))
            .unwrap_or(1);
        if per_node < 1 {
            r.problem(format!("{}.replicasPerNode: {per_node} is under 1", w.path));
        }
        for (at, cluster, overrides) in &w.placements {
            let Some((ci, c)) = by_name.get(cluster.as_str()) else {
                r.problem(format!(
                    "{at}.cluster: unknown cluster {cluster:?} (clusters are {})",
                    names(clusters.iter().map(|c| c.name.as_str()))
                ));
                continue;
            };
            if let Some(zone) = zone_of(c) {
                if !allowed.is_empty() && !allowed.contains(&zone) {
                    r.problem(format!(
                        "{at}.cluster: {cluster} is in region {} of residency zone {zone}, where {} may not run (its residency allows {})",
                        c.region,
                        w.id,
                        allowed.join(", ")
                    ));
                }
            }
            let mut merged = w.settings.clone();
            for key in PLACEMENT_KEYS {
                merged.remove(key);
            }
            if let Some(o) = overrides {
                for (k, v) in o.iter() {
                    let key = k.as_str().unwrap_or("<non-text key>");
                    if PLACEMENT_KEYS.contains(&key) || key == "workload" || key == "namespace" {
                        r.problem(format!(
                            "{at}.overrides.{key}: cannot be overridden per cluster"
                        ));
                        continue;
                    }
                    merged.insert(k.clone(), v.clone());
                }
            }
            let max = merged.get("maxReplicas").and_then(Value::as_i64);
            if let (Some(max), Some(limit)) = (max, c.capacity.max_replicas_per_workload) {
                if max > limit {
                    r.problem(format!(
                        "{at}: maxReplicas {max} of {} is over cluster {cluster}'s limit of {limit} (capacity.maxReplicasPerWorkload): override maxReplicas for this cluster",
                        w.id
                    ));
                }
            }
            if let Some(max) = max.filter(|_| per_node >= 1) {
                nodes_needed.entry(*ci).or_default().push((
                    w.id.clone(),
                    max.div_euclid(per_node) + i64::from(max % per_node != 0),
                ));
            }
            per_cluster.entry(*ci).or_default().push((wi, merged));
        }
    }
    for (ci, needs) in &nodes_needed {
        let c = &clusters[*ci];
        if let Some(budget) = c.capacity.nodes {
            let total: i64 = needs.iter().map(|(_, n)| n).sum();
            if total > budget {
                r.problem(format!(
                    "clusters[{ci}].capacity.nodes: the workloads placed on {} need up to {total} nodes at their maxReplicas ({}), over its budget of {budget}",
                    c.name,
                    needs
                        .iter()
                        .map(|(id, n)| format!("{id} {n}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            }
        }
    }

    let mut warnings = Vec::new();
    for g in &regions {
        if !clusters.iter().any(|c| c.region == g.name) {
            warnings.push(format!("region {} has no cluster", g.name));
        }
    }
    // Each cluster's serve configuration, rendered; its problems join the file's.
    let mut out = Vec::new();
    for (ci, c) in clusters.iter().enumerate() {
        let Some(placed) = per_cluster.remove(&ci) else {
            warnings.push(format!(
                "cluster {} runs no workload: nothing rendered for it",
                c.name
            ));
            continue;
        };
        let mut config = serve.clone();
        let mut prometheus = config
            .get("prometheus")
            .and_then(Value::as_mapping)
            .cloned()
            .unwrap_or_default();
        prometheus.insert("url".into(), Value::String(c.prometheus_url.clone()));
        config.insert("prometheus".into(), Value::Mapping(prometheus));
        let order: Vec<usize> = placed.iter().map(|(wi, _)| *wi).collect();
        config.insert(
            "workloads".into(),
            Value::Sequence(placed.into_iter().map(|(_, m)| Value::Mapping(m)).collect()),
        );
        let yaml = match serde_norway::to_string(&Value::Mapping(config)) {
            Ok(y) => format!(
                "# prescale serve on cluster {} (region {}), built from a clusters file by `prescale deploy render`.\n{y}",
                c.name, c.region
            ),
            Err(source) => {
                return Err(DeployError::Yaml {
                    what: format!("the serve configuration of cluster {}", c.name),
                    source,
                })
            }
        };
        let settings = c.render_settings(settings);
        if r.has_problems() {
            // Still check each cluster's configuration so every problem is listed at once.
            if let Err(DeployError::Config(e)) = render(&yaml, &settings) {
                for p in e.problems {
                    r.problem(cluster_problem(&c.name, &order, &p));
                }
            }
            continue;
        }
        match render(&yaml, &settings) {
            Ok(rendered) => out.push(ClusterRendered {
                cluster: c.clone(),
                residency: zone_of(c).unwrap_or_default(),
                config_yaml: yaml,
                rendered,
            }),
            Err(DeployError::Config(e)) => {
                for p in e.problems {
                    r.problem(cluster_problem(&c.name, &order, &p));
                }
            }
            Err(e) => return Err(e),
        }
    }
    r.finish()?;
    Ok(ClustersRendered {
        regions,
        clusters: out,
        warnings,
    })
}

/// A problem of a cluster's built configuration, with its workload index mapped back to the
/// clusters file's.
fn cluster_problem(cluster: &str, order: &[usize], problem: &str) -> String {
    if let Some(rest) = problem.strip_prefix("workloads[") {
        if let Some((index, tail)) = rest.split_once(']') {
            if let Some(original) = index.parse::<usize>().ok().and_then(|i| order.get(i)) {
                return format!("cluster {cluster}: workloads[{original}]{tail}");
            }
        }
    }
    format!("cluster {cluster}: serve.{problem}")
}

fn names<'a>(it: impl Iterator<Item = &'a str>) -> String {
    let all: Vec<&str> = it.collect();
    if all.is_empty() {
        "none".into()
    } else {
        all.join(", ")
    }
}

/// Notes a duplicate of `name` seen first at `first`.
fn unique(
    r: &mut ConfigReader,
    seen: &mut BTreeMap<String, String>,
    name: &str,
    at: &str,
    what: &str,
) {
    if let Some(first) = seen.get(name) {
        r.problem(format!("{at}: duplicate {what} {name:?} (also {first})"));
    } else {
        seen.insert(name.to_string(), at.to_string());
    }
}

fn read_regions(r: &mut ConfigReader, root: &Mapping) -> Vec<Region> {
    let mut out = Vec::new();
    let mut seen = BTreeMap::new();
    for (at, v) in r.list(root, "", "regions", Some("region")) {
        let Some(m) = r.mapping(v, &at) else { continue };
        r.known(m, &at, &["name", "residency"]);
        let name = r.string(m, &at, "name", true);
        let residency = r.string(m, &at, "residency", true);
        if let Some(name) = &name {
            unique(r, &mut seen, name, &format!("{at}.name"), "region");
        }
        if let (Some(name), Some(residency)) = (name, residency) {
            out.push(Region { name, residency });
        }
    }
    out
}

fn read_clusters(
    r: &mut ConfigReader,
    root: &Mapping,
    regions: &[Region],
    base: &Path,
) -> Vec<Cluster> {
    let mut out = Vec::new();
    let mut names = BTreeMap::new();
    let mut contexts = BTreeMap::new();
    for (at, v) in r.list(root, "", "clusters", Some("cluster")) {
        let Some(m) = r.mapping(v, &at) else { continue };
        r.known(
            m,
            &at,
            &[
                "name",
                "context",
                "region",
                "prometheusUrl",
                "capacity",
                "tls",
                "requestheaderClientCA",
            ],
        );
        let name = r.string(m, &at, "name", true);
        if let Some(name) = &name {
            if !is_dns_label(name) {
                r.problem(format!(
                    "{at}.name: {name:?} is not a DNS-1123 label (lower-case letters, digits and '-', at most 63)"
                ));
            }
            unique(r, &mut names, name, &format!("{at}.name"), "cluster");
        }
        let context = r.string(m, &at, "context", true);
        if let Some(context) = &context {
            unique(
                r,
                &mut contexts,
                context,
                &format!("{at}.context"),
                "kube context",
            );
        }
        let region = r.string(m, &at, "region", true);
        if let Some(region) = &region {
            if !regions.iter().any(|g| &g.name == region) {
                r.problem(format!(
                    "{at}.region: unknown region {region:?} (regions are {})",
                    self::names(regions.iter().map(|g| g.name.as_str()))
                ));
            }
        }
        let url = r.string(m, &at, "prometheusUrl", true);
        let mut capacity = Capacity::default();
        if let Some(v) = m.get("capacity") {
            let cat = format!("{at}.capacity");
            if let Some(c) = r.mapping(v, &cat) {
                r.known(c, &cat, &["maxReplicasPerWorkload", "nodes"]);
                for (key, slot) in [
                    (
                        "maxReplicasPerWorkload",
                        &mut capacity.max_replicas_per_workload,
                    ),
                    ("nodes", &mut capacity.nodes),
                ] {
                    if c.contains_key(key) {
                        *slot = r.integer(c, &cat, key, None);
                        if slot.is_some_and(|n| n < 1) {
                            r.problem(format!("{cat}.{key}: under 1"));
                        }
                    }
                }
            }
        }
        let tls = m
            .get("tls")
            .and_then(|v| read_tls(r, v, &format!("{at}.tls"), base));
        let requestheader_client_ca =
            r.string(m, &at, "requestheaderClientCA", false)
                .and_then(|file| {
                    read_certificate(r, base, &file, &format!("{at}.requestheaderClientCA"))
                });
        if let (Some(name), Some(context), Some(region), Some(prometheus_url)) =
            (name, context, region, url)
        {
            out.push(Cluster {
                name,
                context,
                region,
                prometheus_url,
                capacity,
                tls,
                requestheader_client_ca,
            });
        }
    }
    out
}

/// A cluster's `tls: {secret, caBundle}` at `at`.
fn read_tls(r: &mut ConfigReader, v: &Value, at: &str, base: &Path) -> Option<ClusterTls> {
    let m = r.mapping(v, at)?;
    r.known(m, at, &["secret", "caBundle"]);
    let ca_file = r.string(m, at, "caBundle", false);
    let ca_bundle = ca_file
        .as_ref()
        .and_then(|file| read_certificate(r, base, file, &format!("{at}.caBundle")));
    let secret = if m.contains_key("secret") || ca_file.is_none() {
        r.string(m, at, "secret", true)
    } else {
        r.problem(format!(
            "{at}.caBundle: a CA bundle verifies the certificate of a TLS Secret, and {at}.secret names none (a self-signed certificate changes at every start)"
        ));
        None
    };
    if let Some(secret) = &secret {
        if !super::is_dns_subdomain(secret) {
            r.problem(format!(
                "{at}.secret: {secret:?} is not a Kubernetes object name"
            ));
            return None;
        }
    }
    Some(ClusterTls {
        secret: secret?,
        ca_bundle,
    })
}

/// The PEM certificate(s) in `file` (relative to `base`), or a problem at `at`.
fn read_certificate(r: &mut ConfigReader, base: &Path, file: &str, at: &str) -> Option<String> {
    let path = base.join(file);
    match crate::files::read_limited_text(&path, crate::files::MAX_CONFIG_BYTES) {
        Ok(pem) if super::holds_certificate(&pem) => Some(pem),
        Ok(_) => {
            r.problem(format!("{at}: {} holds no PEM certificate", path.display()));
            None
        }
        Err(e) => {
            r.problem(format!("{at}: cannot read {}: {e}", path.display()));
            None
        }
    }
}

fn read_workloads<'a>(r: &mut ConfigReader, root: &'a Mapping) -> Vec<Placed<'a>> {
    let mut out = Vec::new();
    let mut seen = BTreeMap::new();
    for (at, v) in r.list(root, "", "workloads", Some("workload")) {
        let Some(m) = r.mapping(v, &at) else { continue };
        let name = m.get("workload").and_then(Value::as_str).unwrap_or("?");
        let namespace = m.get("namespace").and_then(Value::as_str).unwrap_or("?");
        let id = format!("{namespace}/{name}");
        unique(r, &mut seen, &id, &at, "workload");
        let mut placements = Vec::new();
        let mut clusters = BTreeSet::new();
        let listed = r.list(m, &at, "placements", None);
        if listed.is_empty() {
            r.problem(format!(
                "{at}.placements: workload {id} is placed on no cluster"
            ));
        }
        for (pat, p) in listed {
            let Some(pm) = r.mapping(p, &pat) else {
                continue;
            };
            r.known(pm, &pat, &["cluster", "overrides"]);
            let Some(cluster) = r.string(pm, &pat, "cluster", true) else {
                continue;
            };
            if !clusters.insert(cluster.clone()) {
                r.problem(format!("{pat}.cluster: {id} is placed on {cluster} twice"));
                continue;
            }
            let overrides = match pm.get("overrides") {
                None => None,
                Some(o) => r.mapping(o, &format!("{pat}.overrides")),
            };
            placements.push((pat, cluster, overrides));
        }
        out.push(Placed {
            path: at,
            id,
            settings: m,
            placements,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = "
serve:
  listen: {https: 0.0.0.0:6443, grpc: 0.0.0.0:9443}
regions:
  - {name: us-east, residency: us}
  - {name: eu-west, residency: eu}
clusters:
  - {name: use1, context: ctx-use1, region: us-east, prometheusUrl: 'http://prom-us:9090',
     capacity: {maxReplicasPerWorkload: 40, nodes: 10}}
  - {name: euw1, context: ctx-euw1, region: eu-west, prometheusUrl: 'http://prom-eu:9090'}
workloads:
  - workload: api
    namespace: shop
    minReplicas: 2
    maxReplicas: 20
    startupSeconds: 60
    replicasPerNode: 4
    metrics:
      - {name: requests, query: up, step: 1m, model: ets, capacityPerReplica: 50}
    placements:
      - cluster: use1
      - {cluster: euw1, overrides: {maxReplicas: 80}}
";

    #[test]
    fn each_cluster_gets_its_own_prometheus_and_overrides() {
        let out =
            render_clusters(FILE, Path::new("."), &RenderSettings::new("prescale:test")).unwrap();
        assert_eq!(out.clusters.len(), 2);
        let us = &out.clusters[0];
        assert!(
            us.config_yaml.contains("http://prom-us:9090"),
            "{}",
            us.config_yaml
        );
        assert!(!us.config_yaml.contains("placements"));
        let eu = &out.clusters[1];
        assert_eq!(eu.residency, "eu");
        let hpa = eu
            .rendered
            .manifests
            .iter()
            .find(|m| m.path == "external-metrics/hpa-shop-api.yaml")
            .unwrap();
        assert!(hpa.yaml.contains("maxReplicas: 80"), "{}", hpa.yaml);
        let hpa = us
            .rendered
            .manifests
            .iter()
            .find(|m| m.path == "external-metrics/hpa-shop-api.yaml")
            .unwrap();
        assert!(hpa.yaml.contains("maxReplicas: 20"), "{}", hpa.yaml);
    }

    #[test]
    fn every_problem_is_listed_with_its_path() {
        let bad = FILE
            .replace("region: eu-west,", "region: eu-central,")
            .replace("name: euw1,", "name: use1,")
            .replace(
                "- {cluster: euw1, overrides: {maxReplicas: 80}}",
                "- {cluster: ap1}",
            )
            .replace("maxReplicas: 20", "maxReplicas: 50")
            .replace(
                "replicasPerNode: 4",
                "replicasPerNode: 4\n    residency: [eu]",
            )
            + "  - {workload: lost, namespace: shop}\n";
        let Err(DeployError::Config(e)) =
            render_clusters(&bad, Path::new("."), &RenderSettings::new("prescale:test"))
        else {
            panic!("rendered a broken clusters file");
        };
        let all = e.problems.join("\n");
        for needle in [
            "clusters[1].region: unknown region \"eu-central\"",
            "clusters[1].name: duplicate cluster \"use1\" (also clusters[0].name)",
            "workloads[0].placements[1].cluster: unknown cluster \"ap1\"",
            "workloads[0].placements[0].cluster: use1 is in region us-east of residency zone us, where shop/api may not run",
            "workloads[0].placements[0]: maxReplicas 50 of shop/api is over cluster use1's limit of 40",
            "clusters[0].capacity.nodes: the workloads placed on use1 need up to 13 nodes",
            "workloads[1].placements: workload shop/lost is placed on no cluster",
        ] {
            assert!(all.contains(needle), "{needle:?} missing from:\n{all}");
        }
    }

    fn ca_pem() -> String {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params.self_signed(&key).unwrap().pem()
    }

    fn manifest<'a>(c: &'a ClusterRendered, path: &str) -> &'a str {
        &c.rendered
            .manifests
            .iter()
            .find(|m| m.path == path)
            .unwrap_or_else(|| panic!("{path} not rendered"))
            .yaml
    }

    #[test]
    fn a_cluster_with_its_own_certificate_renders_as_the_flags_would() {
        let dir = tempfile::tempdir().unwrap();
        let pem = ca_pem();
        std::fs::create_dir(dir.path().join("certs")).unwrap();
        std::fs::write(dir.path().join("certs/use1-ca.crt"), &pem).unwrap();
        let file = FILE.replace(
            "capacity: {maxReplicasPerWorkload: 40, nodes: 10}}",
            "capacity: {maxReplicasPerWorkload: 40, nodes: 10},\n     tls: {secret: use1-tls, caBundle: certs/use1-ca.crt}}",
        );
        let shared = RenderSettings::new("prescale:test");
        let out = render_clusters(&file, dir.path(), &shared).unwrap();
        let (us, eu) = (&out.clusters[0], &out.clusters[1]);
        assert_eq!(
            us.cluster.tls,
            Some(ClusterTls {
                secret: "use1-tls".into(),
                ca_bundle: Some(pem.clone())
            })
        );
        // Exactly what the single-cluster render makes with --tls-secret and --ca-bundle.
        let flags = RenderSettings {
            tls_secret: Some("use1-tls".into()),
            ca_bundle: Some(pem),
            ..shared
        };
        let alone = render(&us.config_yaml, &flags).unwrap();
        assert_eq!(us.rendered, alone);
        let api = manifest(us, "external-metrics/apiservice.yaml");
        assert!(api.contains("caBundle:"), "{api}");
        assert!(!api.contains("insecureSkipTLSVerify"), "{api}");
        assert!(manifest(us, "prescale/deployment.yaml").contains("use1-tls"));
        // The other cluster keeps the shared settings: a self-signed certificate.
        let api = manifest(eu, "external-metrics/apiservice.yaml");
        assert!(api.contains("insecureSkipTLSVerify: true"), "{api}");
        assert!(!api.contains("caBundle:"), "{api}");
    }

    #[test]
    fn every_certificate_problem_is_listed_with_its_path() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("junk.crt"), "not a certificate").unwrap();
        let file = FILE
            .replace(
                "capacity: {maxReplicasPerWorkload: 40, nodes: 10}}",
                "capacity: {maxReplicasPerWorkload: 40, nodes: 10},\n     tls: {caBundle: junk.crt, key: x}, requestheaderClientCA: missing.crt}",
            )
            .replace(
                "prometheusUrl: 'http://prom-eu:9090'}",
                "prometheusUrl: 'http://prom-eu:9090', tls: {secret: Not_A_Name}}",
            );
        let Err(DeployError::Config(e)) =
            render_clusters(&file, dir.path(), &RenderSettings::new("prescale:test"))
        else {
            panic!("rendered broken certificates");
        };
        let all = e.problems.join("\n");
        let junk = dir.path().join("junk.crt");
        let missing = dir.path().join("missing.crt");
        for needle in [
            "clusters[0].tls.key: unknown key (expected one of secret, caBundle)".to_string(),
            format!("clusters[0].tls.caBundle: {} holds no PEM certificate", junk.display()),
            "clusters[0].tls.caBundle: a CA bundle verifies the certificate of a TLS Secret, and clusters[0].tls.secret names none".to_string(),
            format!("clusters[0].requestheaderClientCA: cannot read {}", missing.display()),
            "clusters[1].tls.secret: \"Not_A_Name\" is not a Kubernetes object name".to_string(),
        ] {
            assert!(all.contains(&needle), "{needle:?} missing from:\n{all}");
        }
        // A front-proxy CA with nothing in serve to use it.
        std::fs::write(dir.path().join("ca.crt"), ca_pem()).unwrap();
        let file = FILE.replace(
            "prometheusUrl: 'http://prom-eu:9090'}",
            "prometheusUrl: 'http://prom-eu:9090', requestheaderClientCA: ca.crt}",
        );
        let Err(DeployError::Config(e)) =
            render_clusters(&file, dir.path(), &RenderSettings::new("prescale:test"))
        else {
            panic!("rendered a CA nothing uses");
        };
        assert_eq!(
            e.problems,
            ["clusters[1].requestheaderClientCA: serve has no authentication block to use it"]
        );
    }

    #[test]
    fn a_cluster_configuration_problem_names_the_cluster_and_the_file_workload() {
        let bad = FILE.replace(
            "{cluster: euw1, overrides: {maxReplicas: 80}}",
            "{cluster: euw1, overrides: {minReplicas: -3}}",
        );
        let Err(DeployError::Config(e)) =
            render_clusters(&bad, Path::new("."), &RenderSettings::new("prescale:test"))
        else {
            panic!("rendered a bad override");
        };
        assert!(
            e.problems
                .iter()
                .any(|p| p.starts_with("cluster euw1: workloads[0].minReplicas")),
            "{e}"
        );
    }
}
