//! Global traffic weights: the share of all traffic each region should take, step by step over
//! the horizon, from each region's forecast demand and planned capacity.
//!
//! At each step, [`plan_step`]:
//! - counts the global demand as the sum of the regions' forecasts (a region that is down still
//!   has users; a region whose forecast is missing adds nothing, as its demand is unknown);
//! - gives 0 to a region that is down, has no forecast, or no capacity;
//! - keeps each remaining region's own demand local up to its capacity, then spreads what is
//!   left over the regions' spare room, in proportion to it, so no region is planned above its
//!   capacity while another has room;
//! - where all of them together are short, weights follow capacity (every region equally
//!   overloaded) and the shortage is reported with its amount;
//! - moves each weight at most `max_change` from the previous step's, unless capacity or a
//!   failure forces a faster move (then the limit is lifted for that step and the reasons say
//!   so): the weights are the nearest (least squares) to the target within those bounds.
//!
//! [`VirtualService`] is Istio's `networking.istio.io/v1` object with one weighted route per
//! region, as typed serde structs.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::{Deserialize, Serialize};
use serde_norway::Value;

use super::downtime::{self, Down, DownSpec};
use crate::scale::config::{check_nesting, ConfigError, ConfigReader};
use crate::source::{self, ColumnSpec, LoadOptions};

/// Weights below this count as 0 and sums within it as equal.
const EPS: f64 = 1e-9;

/// One region at one step.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RegionStep {
    /// The region's own forecast demand; `None`: its forecast is missing.
    pub demand: Option<f64>,
    /// What it can serve (same unit as the demand).
    pub capacity: f64,
    /// Marked down: takes no traffic.
    pub down: bool,
}

/// The weights of one step and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Step {
    /// The step's time (unix milliseconds) when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<i64>,
    /// The same as RFC 3339 text, for people.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time: Option<String>,
    /// Global demand: the sum of the known forecasts.
    pub demand: f64,
    /// Capacity of the regions that can take traffic.
    pub capacity: f64,
    /// The share of global traffic per region (same order as the regions), summing to 1
    /// unless no region can take traffic.
    pub weights: Vec<f64>,
    /// Planned load per region (weight × demand).
    pub load: Vec<f64>,
    /// Demand over all regions' capacity (0 when there is enough).
    pub shortage: f64,
    /// Why the weights are what they are.
    pub reasons: Vec<String>,
}

/// Why a schedule cannot be planned.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WeightsError {
    /// The inputs are inconsistent.
    #[error("{0}")]
    Input(String),
    /// The plan file has problems (all listed, each with its path).
    #[error(transparent)]
    Config(#[from] ConfigError),
}

/// Plans one step for regions `names` given their inputs and the previous step's weights.
pub fn plan_step(
    names: &[String],
    regions: &[RegionStep],
    previous: Option<&[f64]>,
    max_change: f64,
) -> Step {
    let n = regions.len();
    let mut reasons = Vec::new();
    let demand: f64 = regions
        .iter()
        .filter_map(|r| r.demand)
        .filter(|d| d.is_finite())
        .map(|d| d.max(0.0))
        .sum();
    let mut available = vec![false; n];
    for (i, r) in regions.iter().enumerate() {
        let name = &names[i];
        if r.down {
            reasons.push(format!("{name} is down: 0"));
        } else if !r.demand.is_some_and(f64::is_finite) {
            reasons.push(format!("{name} has no forecast for this step: 0"));
        } else if !(r.capacity.is_finite() && r.capacity > 0.0) {
            reasons.push(format!("{name} has no capacity: 0"));
        } else {
            available[i] = true;
        }
    }
    let cap = |i: usize| {
        if available[i] {
            regions[i].capacity
        } else {
            0.0
        }
    };
    let capacity: f64 = (0..n).map(cap).sum();
    let finish = |weights: Vec<f64>, shortage: f64, reasons: Vec<String>| Step {
        timestamp: None,
        time: None,
        demand,
        capacity,
        load: weights.iter().map(|w| w * demand).collect(),
        weights,
        shortage,
        reasons,
    };
    if capacity <= 0.0 {
        reasons.push(format!(
            "no region can take traffic: all {demand:.3} of demand is unserved"
        ));
        return finish(vec![0.0; n], demand, reasons);
    }
    let by_capacity: Vec<f64> = (0..n).map(|i| cap(i) / capacity).collect();
    if demand <= capacity * EPS {
        reasons.push("no demand forecast: weights follow capacity".into());
        return finish(by_capacity, 0.0, reasons);
    }
    if demand > capacity * (1.0 + EPS) {
        let shortage = demand - capacity;
        reasons.push(format!(
            "short by {shortage:.3} ({:.1}% of demand {demand:.3} over capacity {capacity:.3}): weights follow capacity, every region at {:.0}% of its capacity",
            100.0 * shortage / demand,
            100.0 * demand / capacity
        ));
        return finish(by_capacity, shortage, reasons);
    }
    // Own demand local, the rest over spare room.
    let local: Vec<f64> = (0..n)
        .map(|i| {
            if available[i] {
                regions[i].demand.unwrap_or(0.0).max(0.0).min(cap(i))
            } else {
                0.0
            }
        })
        .collect();
    let rest = demand - local.iter().sum::<f64>();
    let spare: Vec<f64> = (0..n).map(|i| cap(i) - local[i]).collect();
    let spare_total: f64 = spare.iter().sum();
    let target: Vec<f64> = (0..n)
        .map(|i| {
            let moved = if spare_total > 0.0 {
                rest * spare[i] / spare_total
            } else {
                0.0
            };
            (local[i] + moved) / demand
        })
        .collect();
    if rest > demand * EPS {
        let over: Vec<String> = (0..n)
            .filter(|&i| available[i] && regions[i].demand.unwrap_or(0.0) > cap(i))
            .map(|i| names[i].clone())
            .collect();
        reasons.push(format!(
            "{rest:.3} of demand moved to regions with room ({}), in proportion to it",
            if over.is_empty() {
                "from regions that cannot take traffic".to_string()
            } else {
                format!("{} over capacity", over.join(", "))
            }
        ));
    }
    let upper: Vec<f64> = (0..n).map(|i| (cap(i) / demand).min(1.0)).collect();
    let weights = match previous.filter(|p| p.len() == n && max_change.is_finite()) {
        Some(prev) if max_change < 1.0 => {
            let lo: Vec<f64> = (0..n)
                .map(|i| {
                    if available[i] {
                        (prev[i] - max_change).max(0.0).min(upper[i])
                    } else {
                        0.0
                    }
                })
                .collect();
            let hi: Vec<f64> = (0..n)
                .map(|i| (prev[i] + max_change).min(upper[i]).max(lo[i]))
                .collect();
            if lo.iter().sum::<f64>() <= 1.0 + EPS && hi.iter().sum::<f64>() >= 1.0 - EPS {
                let w = project(&target, &lo, &hi);
                let held: Vec<String> = (0..n)
                    .filter(|&i| (w[i] - target[i]).abs() > 1e-6)
                    .map(|i| format!("{} {:.3} (target {:.3})", names[i], w[i], target[i]))
                    .collect();
                if !held.is_empty() {
                    reasons.push(format!(
                        "rate limit ±{max_change} per step held {}",
                        held.join(", ")
                    ));
                }
                w
            } else {
                reasons.push(format!(
                    "rate limit ±{max_change} per step lifted: capacity or a failure forces a larger move"
                ));
                target
            }
        }
        _ => target,
    };
    finish(weights, 0.0, reasons)
}

/// The point of `{w : Σw = 1, lo ≤ w ≤ hi}` nearest to `target`: `clamp(target + λ)` with λ
/// found by bisection (the sum is monotone in λ). The caller ensures `Σlo ≤ 1 ≤ Σhi`.
fn project(target: &[f64], lo: &[f64], hi: &[f64]) -> Vec<f64> {
    let at = |l: f64| -> Vec<f64> {
        target
            .iter()
            .zip(lo.iter().zip(hi))
            .map(|(t, (a, b))| (t + l).clamp(*a, *b))
            .collect()
    };
    let (mut a, mut b) = (-2.0, 2.0);
    for _ in 0..200 {
        let mid = 0.5 * (a + b);
        if at(mid).iter().sum::<f64>() < 1.0 {
            a = mid;
        } else {
            b = mid;
        }
    }
    let mut w = at(0.5 * (a + b));
    // Bisection leaves ~1e-16; put the rest on the region with the most slack.
    let residual = 1.0 - w.iter().sum::<f64>();
    if let Some(i) = (0..w.len()).max_by(|&i, &j| {
        let slack = |k: usize| {
            if residual > 0.0 {
                hi[k] - w[k]
            } else {
                w[k] - lo[k]
            }
        };
        slack(i).total_cmp(&slack(j))
    }) {
        w[i] = (w[i] + residual).clamp(lo[i], hi[i]);
    }
    w
}

/// One region's inputs over the horizon.
#[derive(Debug, Clone, PartialEq)]
pub struct RegionPlan {
    /// Its name.
    pub name: String,
    /// Its own forecast demand by step time (unix milliseconds); steps absent here have no
    /// forecast.
    pub forecast: BTreeMap<i64, f64>,
    /// Its capacity: one value for every step, or one per step (in step order).
    pub capacity: Vec<f64>,
    /// When it is down (takes no traffic): never, over the whole horizon, or in windows.
    pub down: Down,
}

/// A schedule: the regions and their weights at each step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Schedule {
    /// Region names, in the order of each step's weights.
    pub regions: Vec<String>,
    /// The most a weight moves between steps (unless forced).
    pub max_change: f64,
    /// The steps, in time order.
    pub steps: Vec<Step>,
    /// Total demand left unserved over the horizon by planned shortage.
    pub total_shortage: f64,
}

/// Plans every step: the steps are the union of the regions' forecast times. `previous`
/// (the weights in force now) rate-limits the first step.
pub fn schedule(
    regions: &[RegionPlan],
    max_change: f64,
    previous: Option<&[f64]>,
) -> Result<Schedule, WeightsError> {
    if regions.is_empty() {
        return Err(WeightsError::Input("no region to weigh".into()));
    }
    if !(max_change > 0.0 && max_change.is_finite()) {
        return Err(WeightsError::Input(format!(
            "the largest change per step must be a positive number, got {max_change}"
        )));
    }
    let names: Vec<String> = regions.iter().map(|r| r.name.clone()).collect();
    if let Some(p) = previous {
        if p.len() != regions.len() || p.iter().any(|w| !(w.is_finite() && *w >= 0.0)) {
            return Err(WeightsError::Input(format!(
                "the current weights must be {} non-negative numbers, one per region",
                regions.len()
            )));
        }
    }
    let times: std::collections::BTreeSet<i64> = regions
        .iter()
        .flat_map(|r| r.forecast.keys().copied())
        .collect();
    for r in regions {
        if r.capacity.is_empty()
            || (r.capacity.len() != 1 && r.capacity.len() != times.len())
            || r.capacity.iter().any(|c| !(c.is_finite() && *c >= 0.0))
        {
            return Err(WeightsError::Input(format!(
                "region {}: capacity must be one non-negative number or one per step ({} steps), got {} value(s)",
                r.name,
                times.len(),
                r.capacity.len()
            )));
        }
    }
    let mut steps: Vec<Step> = Vec::with_capacity(times.len());
    let mut prev = previous.map(<[f64]>::to_vec);
    for (k, t) in times.iter().enumerate() {
        let inputs: Vec<RegionStep> = regions
            .iter()
            .map(|r| RegionStep {
                demand: r.forecast.get(t).copied(),
                capacity: r.capacity[if r.capacity.len() == 1 { 0 } else { k }],
                down: r.down.at(*t),
            })
            .collect();
        let mut step = plan_step(&names, &inputs, prev.as_deref(), max_change);
        step.timestamp = Some(*t);
        step.time = Some(crate::series::format_millis(*t));
        prev = Some(step.weights.clone());
        steps.push(step);
    }
    let total_shortage = steps.iter().map(|s| s.shortage).sum();
    Ok(Schedule {
        regions: names,
        max_change,
        steps,
        total_shortage,
    })
}

/// What routing `demand` (one row per step, one value per region: each region's own actual
/// traffic) with `weights` (one row per step) leaves unserved, given each region's actual
/// capacity per step (0 while it is down).
pub fn unserved(demand: &[Vec<f64>], weights: &[Vec<f64>], capacity: &[Vec<f64>]) -> f64 {
    demand
        .iter()
        .zip(weights)
        .zip(capacity)
        .map(|((d, w), c)| {
            let total: f64 = d.iter().sum();
            let routed: f64 = w.iter().sum();
            let lost_unrouted = total * (1.0 - routed).max(0.0);
            lost_unrouted
                + w.iter()
                    .zip(c)
                    .map(|(wi, ci)| (wi * total - ci).max(0.0))
                    .sum::<f64>()
        })
        .sum()
}

/// Istio's `VirtualService` (`networking.istio.io/v1`): only the fields prescale sets.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct VirtualService {
    /// Always `networking.istio.io/v1`.
    pub api_version: &'static str,
    /// Always `VirtualService`.
    pub kind: &'static str,
    /// Name and namespace.
    pub metadata: ObjectMeta,
    /// Hosts and routes.
    pub spec: VirtualServiceSpec,
}

/// `spec` of a VirtualService.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct VirtualServiceSpec {
    /// The hosts the routes apply to.
    pub hosts: Vec<String>,
    /// Gateways (absent: the mesh's sidecars).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub gateways: Vec<String>,
    /// The HTTP routes: one, weighted over the regions.
    pub http: Vec<HttpRoute>,
}

/// One HTTP route.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HttpRoute {
    /// The route's name.
    pub name: String,
    /// Its weighted destinations.
    pub route: Vec<RouteDestination>,
}

/// A weighted destination.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RouteDestination {
    /// Where.
    pub destination: Destination,
    /// Percent of the traffic (the route's weights sum to 100).
    pub weight: i32,
}

/// A destination service (and subset).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Destination {
    /// The service's host name.
    pub host: String,
    /// A DestinationRule subset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subset: Option<String>,
}

/// The VirtualService routing by `weights` (shares summing to 1) to `destinations`, as whole
/// percents summing to 100 (largest remainders). `None` when no weight is positive.
pub fn virtual_service(
    metadata: ObjectMeta,
    hosts: Vec<String>,
    gateways: Vec<String>,
    destinations: &[Destination],
    weights: &[f64],
) -> Option<VirtualService> {
    let percents = percents(weights)?;
    Some(VirtualService {
        api_version: "networking.istio.io/v1",
        kind: "VirtualService",
        metadata,
        spec: VirtualServiceSpec {
            hosts,
            gateways,
            http: vec![HttpRoute {
                name: "prescale-weights".into(),
                route: destinations
                    .iter()
                    .zip(percents)
                    .map(|(d, weight)| RouteDestination {
                        destination: d.clone(),
                        weight,
                    })
                    .collect(),
            }],
        },
    })
}

/// Whole percents summing to 100 by largest remainders; `None` when no weight is positive.
pub fn percents(weights: &[f64]) -> Option<Vec<i32>> {
    let total: f64 = weights.iter().filter(|w| w.is_finite() && **w > 0.0).sum();
    if total <= 0.0 {
        return None;
    }
    let exact: Vec<f64> = weights
        .iter()
        .map(|w| {
            if w.is_finite() && *w > 0.0 {
                100.0 * w / total
            } else {
                0.0
            }
        })
        .collect();
    let mut out: Vec<i32> = exact.iter().map(|e| e.floor() as i32).collect();
    let mut left = 100 - out.iter().sum::<i32>();
    let mut order: Vec<usize> = (0..exact.len()).collect();
    order.sort_by(|&a, &b| (exact[b] - exact[b].floor()).total_cmp(&(exact[a] - exact[a].floor())));
    for i in order {
        if left <= 0 {
            break;
        }
        out[i] += 1;
        left -= 1;
    }
    Some(out)
}

/// Where the VirtualService goes and what it routes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VirtualServiceSettings {
    /// Its name.
    pub name: String,
    /// Its namespace.
    pub namespace: String,
    /// The hosts it routes.
    pub hosts: Vec<String>,
    /// The gateways it binds to (empty: the mesh).
    pub gateways: Vec<String>,
}

/// A weights plan file, read: the regions with their forecasts loaded.
#[derive(Debug, Clone, PartialEq)]
pub struct WeightsPlan {
    /// The regions.
    pub regions: Vec<RegionPlan>,
    /// Each region's route destination (same order), when a VirtualService is wanted.
    pub destinations: Vec<Option<Destination>>,
    /// The most a weight moves per step.
    pub max_change: f64,
    /// The weights in force now, one per region.
    pub current: Option<Vec<f64>>,
    /// The VirtualService to write, if any.
    pub virtual_service: Option<VirtualServiceSettings>,
}

impl WeightsPlan {
    /// Reads a plan file's text; forecast files are read relative to `base`. A forecast file
    /// is what `prescale forecast` writes (`timestamp` and `mean` columns); one that cannot be
    /// read is a problem unless its region is down over the whole horizon. Windows of `down`
    /// (see [`downtime`]) are placed on the steps of all the forecasts together.
    pub fn from_yaml(text: &str, base: &std::path::Path) -> Result<Self, WeightsError> {
        check_nesting(text)?;
        let doc: Value = serde_norway::from_str(text).map_err(|e| ConfigError {
            problems: vec![format!("not valid YAML: {e}")],
        })?;
        let mut r = ConfigReader::default();
        let Some(root) = r.mapping(&doc, "the document") else {
            return Err(r.into_error().into());
        };
        r.known(
            root,
            "",
            &["maxChange", "current", "virtualService", "regions"],
        );
        let max_change = r.number(root, "", "maxChange", Some(0.1)).unwrap_or(0.1);
        if !(max_change > 0.0 && max_change <= 1.0) {
            r.problem(format!("maxChange: {max_change} is not in (0, 1]"));
        }
        let mut regions = Vec::new();
        let mut destinations = Vec::new();
        let mut seen = std::collections::BTreeSet::new();
        // Each region's `down` with its index in `regions` once it is kept there.
        let mut downs: Vec<(DownSpec, Option<usize>)> = Vec::new();
        for (at, v) in r.list(root, "", "regions", Some("region")) {
            let Some(m) = r.mapping(v, &at) else { continue };
            r.known(
                m,
                &at,
                &["name", "forecast", "capacity", "down", "destination"],
            );
            let name = r.string(m, &at, "name", true);
            if let Some(n) = &name {
                if !seen.insert(n.clone()) {
                    r.problem(format!("{at}.name: duplicate region {n:?}"));
                }
            }
            let down = downtime::read(&mut r, m, &at);
            let capacity = match m.get("capacity") {
                Some(Value::Sequence(items)) => items
                    .iter()
                    .enumerate()
                    .filter_map(|(i, v)| match v.as_f64() {
                        Some(x) if x.is_finite() && x >= 0.0 => Some(x),
                        _ => {
                            r.problem(format!(
                                "{at}.capacity[{i}]: expected a non-negative number"
                            ));
                            None
                        }
                    })
                    .collect(),
                _ => match r.number(m, &at, "capacity", None) {
                    Some(x) if x >= 0.0 => vec![x],
                    Some(x) => {
                        r.problem(format!("{at}.capacity: {x} is negative"));
                        vec![]
                    }
                    None => vec![],
                },
            };
            let mut forecast = BTreeMap::new();
            if let Some(file) = r.string(m, &at, "forecast", false) {
                let path = base.join(&file);
                let options = LoadOptions {
                    columns: ColumnSpec {
                        value: Some("mean".into()),
                        ..ColumnSpec::default()
                    },
                    ..LoadOptions::default()
                };
                match source::load(&path, &options) {
                    Ok(series) => match series.as_slice() {
                        [one] => {
                            for (t, v) in one.timestamps().zip(one.values()) {
                                if v.is_finite() {
                                    forecast.insert(t, *v);
                                }
                            }
                        }
                        _ => r.problem(format!(
                            "{at}.forecast: {} holds {} series, expected one",
                            path.display(),
                            series.len()
                        )),
                    },
                    Err(e) if down == DownSpec::Always => {
                        // A region down over the whole horizon needs no forecast.
                        let _ = e;
                    }
                    Err(e) => r.problem(format!("{at}.forecast: {e}")),
                }
            }
            let destination = r.deserialize::<Destination>(m, &at, "destination");
            if let (Some(name), false) = (name, capacity.is_empty()) {
                downs.push((down, Some(regions.len())));
                regions.push(RegionPlan {
                    name,
                    forecast,
                    capacity,
                    down: Down::Never,
                });
                destinations.push(destination);
            } else {
                downs.push((down, None));
            }
        }
        let times: Vec<i64> = regions
            .iter()
            .flat_map(|g| g.forecast.keys().copied())
            .collect::<std::collections::BTreeSet<i64>>()
            .into_iter()
            .collect();
        for (spec, kept) in downs {
            let down = spec.resolve(&mut r, &times);
            if let Some(i) = kept {
                regions[i].down = down;
            }
        }
        let current = match root.get("current") {
            None => None,
            Some(v) => r.mapping(v, "current").map(|m| {
                regions
                    .iter()
                    .map(|g| {
                        r.number(m, "current", &g.name, None)
                            .filter(|w| *w >= 0.0)
                            .unwrap_or(0.0)
                    })
                    .collect()
            }),
        };
        let virtual_service = match root.get("virtualService") {
            None => None,
            Some(v) => r.mapping(v, "virtualService").and_then(|m| {
                r.known(m, "virtualService", &["name", "namespace", "hosts", "gateways"]);
                let name = r.string(m, "virtualService", "name", true);
                let namespace = r.string(m, "virtualService", "namespace", true);
                let hosts = r.strings(m, "virtualService", "hosts");
                if hosts.is_empty() {
                    r.problem("virtualService.hosts: at least one host is needed");
                }
                let gateways = r.strings(m, "virtualService", "gateways");
                for (i, d) in destinations.iter().enumerate() {
                    if d.is_none() {
                        r.problem(format!(
                            "regions[{i}].destination: needed for the VirtualService (host, and subset if any)"
                        ));
                    }
                }
                Some(VirtualServiceSettings {
                    name: name?,
                    namespace: namespace?,
                    hosts,
                    gateways,
                })
            }),
        };
        r.finish()?;
        Ok(Self {
            regions,
            destinations,
            max_change,
            current,
            virtual_service,
        })
    }

    /// The schedule over the forecasts' steps.
    pub fn schedule(&self) -> Result<Schedule, WeightsError> {
        schedule(&self.regions, self.max_change, self.current.as_deref())
    }

    /// The VirtualService for `step`'s weights; `None` when the plan names none or no
    /// region can take traffic.
    pub fn virtual_service(&self, step: &Step) -> Option<VirtualService> {
        let settings = self.virtual_service.as_ref()?;
        let destinations: Option<Vec<Destination>> = self.destinations.iter().cloned().collect();
        virtual_service(
            ObjectMeta {
                name: Some(settings.name.clone()),
                namespace: Some(settings.namespace.clone()),
                labels: Some(std::collections::BTreeMap::from([(
                    "app.kubernetes.io/managed-by".to_string(),
                    "prescale".to_string(),
                )])),
                ..ObjectMeta::default()
            },
            settings.hosts.clone(),
            settings.gateways.clone(),
            &destinations?,
            &step.weights,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn names(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("r{i}")).collect()
    }

    #[test]
    fn a_region_down_gets_zero_and_its_share_goes_where_there_is_room() {
        let regions = [
            RegionStep {
                demand: Some(100.0),
                capacity: 150.0,
                down: true,
            },
            RegionStep {
                demand: Some(100.0),
                capacity: 120.0,
                down: false,
            },
            RegionStep {
                demand: Some(100.0),
                capacity: 200.0,
                down: false,
            },
        ];
        let s = plan_step(&names(3), &regions, None, 1.0);
        assert_eq!(s.weights[0], 0.0);
        assert!((s.weights.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        // 100 moved over spare room 20 and 100.
        assert!(
            (s.load[1] - (100.0 + 100.0 * 20.0 / 120.0)).abs() < 1e-9,
            "{s:?}"
        );
        assert!(s.reasons.iter().any(|r| r == "r0 is down: 0"));
        assert_eq!(s.shortage, 0.0);
    }

    #[test]
    fn a_shortage_is_reported_with_its_amount() {
        let regions = [
            RegionStep {
                demand: Some(300.0),
                capacity: 100.0,
                down: false,
            },
            RegionStep {
                demand: None,
                capacity: 100.0,
                down: false,
            },
        ];
        let s = plan_step(&names(2), &regions, None, 1.0);
        assert!((s.shortage - 200.0).abs() < 1e-9);
        assert_eq!(s.weights, vec![1.0, 0.0]);
        assert!(
            s.reasons.iter().any(|r| r.starts_with("short by 200.000")),
            "{s:?}"
        );
    }

    #[test]
    fn changes_are_rate_limited_unless_forced() {
        let regions = [
            RegionStep {
                demand: Some(10.0),
                capacity: 100.0,
                down: false,
            },
            RegionStep {
                demand: Some(90.0),
                capacity: 100.0,
                down: false,
            },
        ];
        let s = plan_step(&names(2), &regions, Some(&[0.5, 0.5]), 0.1);
        assert!((s.weights[0] - 0.4).abs() < 1e-9, "{s:?}");
        assert!((s.weights[1] - 0.6).abs() < 1e-9, "{s:?}");
        let down = [
            regions[0],
            RegionStep {
                down: true,
                ..regions[1]
            },
        ];
        let s = plan_step(&names(2), &down, Some(&[0.5, 0.5]), 0.1);
        assert_eq!(s.weights, vec![1.0, 0.0]);
        assert!(s.reasons.iter().any(|r| r.contains("lifted")), "{s:?}");
    }

    /// Hourly forecasts in `dir`: a, b and c with demand 100, 50 and 50.
    fn write_forecasts(dir: &std::path::Path) {
        for (name, level) in [("a", 100.0), ("b", 50.0), ("c", 50.0)] {
            let mut csv = String::from("timestamp,mean\n");
            for h in 0..8 {
                csv.push_str(&format!("2015-04-22T{h:02}:00:00Z,{level}\n"));
            }
            std::fs::write(dir.join(format!("{name}.csv")), csv).unwrap();
        }
    }

    /// A plan over those forecasts, capacity 200 each, with `down_b` as b's `down`.
    fn windowed_plan(dir: &std::path::Path, down_b: &str) -> Result<WeightsPlan, WeightsError> {
        let plan = format!(
            "maxChange: 0.1
current: {{a: 0.5, b: 0.25, c: 0.25}}
regions:
  - {{name: a, forecast: a.csv, capacity: 200}}
  - {{name: b, forecast: b.csv, capacity: 200, down: {down_b}}}
  - {{name: c, forecast: c.csv, capacity: 200}}
"
        );
        WeightsPlan::from_yaml(&plan, dir)
    }

    #[test]
    fn a_window_of_down_takes_a_region_out_and_brings_it_back_within_the_limit() {
        let dir = tempfile::tempdir().unwrap();
        write_forecasts(dir.path());
        let plan = windowed_plan(
            dir.path(),
            "{from: '2015-04-22T02:00:00Z', until: '2015-04-22 04:00:00'}",
        )
        .unwrap();
        let s = plan.schedule().unwrap();
        let b: Vec<f64> = s.steps.iter().map(|s| s.weights[1]).collect();
        // Before: the current weights hold; down at 02:00 and 03:00; then back 0.1 per step.
        for (k, want) in [
            (0, 0.25),
            (1, 0.25),
            (2, 0.0),
            (3, 0.0),
            (4, 0.1),
            (5, 0.2),
            (6, 0.25),
        ] {
            assert!((b[k] - want).abs() < 1e-9, "step {k}: {b:?}");
        }
        assert!(s.steps[2].reasons.iter().any(|r| r == "b is down: 0"));
        assert!(
            s.steps[2].reasons.iter().any(|r| r.contains("lifted")),
            "{:?}",
            s.steps[2]
        );
        assert!(
            s.steps[4].reasons.iter().any(|r| r.contains("held")),
            "{:?}",
            s.steps[4]
        );
        assert!(!s.steps[4].reasons.iter().any(|r| r.contains("is down")));
        for step in &s.steps {
            assert!(
                (step.weights.iter().sum::<f64>() - 1.0).abs() < 1e-9,
                "{step:?}"
            );
        }
        // The same window by steps.
        let by_step = windowed_plan(dir.path(), "{from: 2, until: 4}").unwrap();
        assert_eq!(by_step.schedule().unwrap(), s);
    }

    #[test]
    fn a_region_down_for_a_window_still_needs_its_forecast() {
        let dir = tempfile::tempdir().unwrap();
        write_forecasts(dir.path());
        std::fs::remove_file(dir.path().join("b.csv")).unwrap();
        // Down over the whole horizon: no forecast needed.
        windowed_plan(dir.path(), "true").unwrap();
        let Err(WeightsError::Config(e)) = windowed_plan(dir.path(), "{from: 1, until: 99}") else {
            panic!("planned a region down for a window with no forecast");
        };
        let all = e.problems.join("\n");
        assert!(all.contains("regions[1].forecast: "), "{all}");
        assert!(
            all.contains("regions[1].down.until: step 99 is outside the horizon (steps 0 to 7"),
            "{all}"
        );
    }

    #[test]
    fn percents_sum_to_100() {
        assert_eq!(percents(&[1.0 / 3.0; 3]), Some(vec![34, 33, 33]));
        assert_eq!(percents(&[0.0, 0.0]), None);
    }

    fn region() -> impl Strategy<Value = RegionStep> {
        (
            prop::option::weighted(0.9, 0.0..1000.0f64),
            prop_oneof![Just(0.0), 0.0..1000.0f64],
            prop::bool::weighted(0.2),
        )
            .prop_map(|(demand, capacity, down)| RegionStep {
                demand,
                capacity,
                down,
            })
    }

    /// Three regions over hourly steps of `demand` (one row per step), region `i` down over
    /// `windows[i]` (start step, length) when given.
    fn windowed(
        demand: &[Vec<f64>],
        capacity: &[f64],
        windows: &[Option<(usize, usize)>],
    ) -> Vec<RegionPlan> {
        const HOUR: i64 = 3_600_000;
        (0..3)
            .map(|i| RegionPlan {
                name: format!("r{i}"),
                forecast: demand
                    .iter()
                    .enumerate()
                    .map(|(k, row)| (k as i64 * HOUR, row[i]))
                    .collect(),
                capacity: vec![capacity[i]],
                down: match windows[i] {
                    Some((from, len)) => {
                        Down::Windows(vec![(from as i64 * HOUR, (from + len) as i64 * HOUR)])
                    }
                    None => Down::Never,
                },
            })
            .collect()
    }

    proptest! {
        #[test]
        fn weights_obey_their_invariants(
            regions in prop::collection::vec(region(), 1..6),
            previous in prop::collection::vec(0.0..1.0f64, 6),
            max_change in 0.01..1.0f64,
        ) {
            let n = regions.len();
            let prev: Vec<f64> = previous[..n].to_vec();
            let s = plan_step(&names(n), &regions, Some(&prev), max_change);
            let available = |i: usize| {
                let r = &regions[i];
                !r.down && r.demand.is_some() && r.capacity > 0.0
            };
            let sum: f64 = s.weights.iter().sum();
            for (i, w) in s.weights.iter().enumerate() {
                prop_assert!(*w >= 0.0, "negative weight {w}");
                if !available(i) {
                    prop_assert_eq!(*w, 0.0, "a region that cannot take traffic got some");
                }
            }
            let any = (0..n).any(available);
            if !any {
                prop_assert!((s.shortage - s.demand).abs() < 1e-9);
            } else {
                prop_assert!((sum - 1.0).abs() < 1e-9, "weights sum to {sum}");
                let over = |i: usize| s.load[i] > regions[i].capacity * (1.0 + 1e-9) + 1e-9;
                let room = |i: usize| available(i) && s.load[i] < regions[i].capacity * (1.0 - 1e-9) - 1e-9;
                if s.shortage > 0.0 {
                    prop_assert!((s.shortage - (s.demand - s.capacity)).abs() < 1e-6 * s.demand.max(1.0));
                    prop_assert!(!(0..n).any(room), "short yet a region has room: {s:?}");
                } else {
                    // Nobody over capacity (so failover only ever moved load where there was room).
                    prop_assert!(!(0..n).any(over), "a region over capacity: {s:?}");
                }
            }
        }

        #[test]
        fn a_region_down_in_a_window_gets_zero_there_and_the_invariants_hold(
            demand in prop::collection::vec(prop::collection::vec(1.0..100.0f64, 3), 2..24),
            capacity in prop::collection::vec(prop_oneof![Just(0.0), 0.0..300.0f64], 3),
            windows in prop::collection::vec(prop::option::weighted(0.7, (0usize..24, 1usize..8)), 3),
            max_change in 0.01..1.0f64,
        ) {
            let plans = windowed(&demand, &capacity, &windows);
            let s = schedule(&plans, max_change, None).unwrap();
            prop_assert_eq!(s.steps.len(), demand.len());
            for (k, step) in s.steps.iter().enumerate() {
                let t = step.timestamp.unwrap();
                let available = |i: usize| !plans[i].down.at(t) && capacity[i] > 0.0;
                for (i, w) in step.weights.iter().enumerate() {
                    prop_assert!(*w >= 0.0, "negative weight {w}");
                    if plans[i].down.at(t) {
                        prop_assert_eq!(*w, 0.0, "r{} is down at step {} yet got some: {:?}", i, k, step);
                    }
                }
                if (0..3).any(available) {
                    let sum: f64 = step.weights.iter().sum();
                    prop_assert!((sum - 1.0).abs() < 1e-9, "weights sum to {sum}");
                    if step.shortage == 0.0 {
                        for (i, (load, cap)) in step.load.iter().zip(&capacity).enumerate() {
                            prop_assert!(*load <= cap * (1.0 + 1e-9) + 1e-9, "r{i} over capacity: {step:?}");
                        }
                    }
                } else {
                    prop_assert!((step.shortage - step.demand).abs() < 1e-9);
                }
            }
        }

        #[test]
        fn after_a_window_the_weights_come_back_within_the_limit(
            demand in prop::collection::vec(prop::collection::vec(1.0..100.0f64, 3), 2..24),
            windows in prop::collection::vec(prop::option::weighted(0.7, (0usize..24, 1usize..8)), 3),
            max_change in 0.01..0.5f64,
        ) {
            // Room everywhere: only a region going down forces a move past the limit.
            let plans = windowed(&demand, &[1e6; 3], &windows);
            let s = schedule(&plans, max_change, None).unwrap();
            for k in 1..s.steps.len() {
                let (before, now) = (&s.steps[k - 1], &s.steps[k]);
                let down = |step: &Step, i: usize| plans[i].down.at(step.timestamp.unwrap());
                let newly_down = (0..3).any(|i| down(now, i) && !down(before, i));
                let none_before = (0..3).all(|i| down(before, i));
                if newly_down || none_before {
                    continue;
                }
                for i in 0..3 {
                    prop_assert!(
                        (now.weights[i] - before.weights[i]).abs() <= max_change + 1e-9,
                        "r{} moved {} -> {} at step {}: {:?}", i, before.weights[i], now.weights[i], k, now
                    );
                }
            }
        }

        #[test]
        fn unforced_steps_move_at_most_the_limit(
            demand in prop::collection::vec(0.0..100.0f64, 3),
            max_change in 0.01..0.5f64,
        ) {
            // Ample capacity everywhere: nothing forces a move.
            let regions: Vec<RegionStep> = demand
                .iter()
                .map(|d| RegionStep { demand: Some(*d), capacity: 1000.0, down: false })
                .collect();
            let prev = [1.0 / 3.0; 3];
            let s = plan_step(&names(3), &regions, Some(&prev), max_change);
            for (w, p) in s.weights.iter().zip(prev) {
                prop_assert!((w - p).abs() <= max_change + 1e-9, "{w} from {p}");
            }
        }
    }
}
