//! What turns served decisions into scaling: the APIService and one HPA v2 per workload for
//! clusters where prescale is the external metrics adapter, or one KEDA ScaledObject per
//! workload where KEDA is.
//!
//! Each carries the workload's bounds and `behavior` exactly as the configuration gives them
//! (a behavior written out in full, or none, which sends the controller down its legacy path),
//! because the plan assumed them: the HPA the cluster runs must be the HPA the plan (and the
//! replay) modelled.

use std::collections::BTreeMap;

use k8s_openapi::api::autoscaling::v2::{
    CrossVersionObjectReference, ExternalMetricSource, HPAScalingPolicy, HPAScalingRules,
    HorizontalPodAutoscaler, HorizontalPodAutoscalerBehavior, HorizontalPodAutoscalerSpec,
    MetricIdentifier, MetricSpec, MetricTarget,
};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, PolicyRule, RoleRef, Subject};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::kube_aggregator::pkg::apis::apiregistration::v1::{
    APIService, APIServiceSpec, ServiceReference,
};
use k8s_openapi::ByteString;

use super::cluster::SERVICE_HTTPS_PORT;
use super::keda::{Advanced, HpaConfig, ScaleTargetRef, ScaledObject, ScaledObjectSpec, Trigger};
use super::{meta, Object, RenderSettings};
use crate::scale::behavior::{Behavior, PolicyType, Rules, SelectPolicy};
use crate::scale::config::WorkloadConfig;
use crate::serve::ServeConfig;

/// The metric the HPA reads: the replicas the plan wants (`AverageValue` 1 per pod).
pub const REPLICAS_METRIC: &str = "prescale_replicas";

/// The APIService, the role letting the HPA controller read external metrics, and an HPA per
/// workload.
pub(crate) fn external_metrics(config: &ServeConfig, settings: &RenderSettings) -> Vec<Object> {
    let mut out = vec![
        Object::new("apiservice.yaml", &api_service(settings)),
        // The HPA controller reads external metrics as its own service account; clusters grant
        // it nothing on this group until an adapter says so. Only the two metrics the server
        // answers (the resource of an external metric is its name), not `*`: least privilege,
        // as compliance control PCI-04 checks.
        Object::new(
            "clusterrole-external-metrics-reader.yaml",
            &ClusterRole {
                metadata: meta(
                    &format!("{}-external-metrics-reader", settings.name),
                    None,
                    settings,
                ),
                rules: Some(vec![PolicyRule {
                    api_groups: Some(vec!["external.metrics.k8s.io".into()]),
                    resources: Some(vec![
                        crate::serve::snapshot::REPLICAS_METRIC.into(),
                        crate::serve::snapshot::FORECAST_METRIC.into(),
                    ]),
                    verbs: vec!["get".into(), "list".into(), "watch".into()],
                    ..PolicyRule::default()
                }]),
                ..ClusterRole::default()
            },
        ),
        Object::new(
            "clusterrolebinding-hpa-external-metrics.yaml",
            &ClusterRoleBinding {
                metadata: meta(
                    &format!("{}-hpa-external-metrics", settings.name),
                    None,
                    settings,
                ),
                role_ref: RoleRef {
                    api_group: "rbac.authorization.k8s.io".into(),
                    kind: "ClusterRole".into(),
                    name: format!("{}-external-metrics-reader", settings.name),
                },
                subjects: Some(vec![Subject {
                    kind: "ServiceAccount".into(),
                    name: "horizontal-pod-autoscaler".into(),
                    namespace: Some("kube-system".into()),
                    ..Subject::default()
                }]),
            },
        ),
    ];
    for w in &config.workloads {
        out.push(Object::new(
            format!("hpa-{}-{}.yaml", w.namespace, w.workload),
            &hpa(w, settings),
        ));
    }
    out
}

fn api_service(settings: &RenderSettings) -> APIService {
    APIService {
        metadata: meta("v1beta1.external.metrics.k8s.io", None, settings),
        spec: Some(APIServiceSpec {
            group: Some("external.metrics.k8s.io".into()),
            version: Some("v1beta1".into()),
            group_priority_minimum: 100,
            version_priority: 100,
            service: Some(ServiceReference {
                name: Some(settings.name.clone()),
                namespace: Some(settings.namespace.clone()),
                port: Some(SERVICE_HTTPS_PORT),
            }),
            // Verification needs the CA of a stable certificate; a self-signed one is made
            // anew at each start, so the aggregator cannot pin it.
            ca_bundle: settings
                .ca_bundle
                .as_ref()
                .map(|pem| ByteString(pem.as_bytes().to_vec())),
            insecure_skip_tls_verify: settings.ca_bundle.is_none().then_some(true),
        }),
        ..APIService::default()
    }
}

fn target_ref(w: &WorkloadConfig) -> CrossVersionObjectReference {
    CrossVersionObjectReference {
        api_version: Some("apps/v1".into()),
        kind: "Deployment".into(),
        name: w.workload.clone(),
    }
}

fn hpa(w: &WorkloadConfig, settings: &RenderSettings) -> HorizontalPodAutoscaler {
    HorizontalPodAutoscaler {
        metadata: meta(&w.workload, Some(&w.namespace), settings),
        spec: Some(HorizontalPodAutoscalerSpec {
            scale_target_ref: target_ref(w),
            min_replicas: Some(clamp_i32(w.policy.min_replicas)),
            max_replicas: clamp_i32(w.policy.max_replicas),
            metrics: Some(vec![MetricSpec {
                type_: "External".into(),
                external: Some(ExternalMetricSource {
                    metric: MetricIdentifier {
                        name: REPLICAS_METRIC.into(),
                        selector: Some(LabelSelector {
                            match_labels: Some(BTreeMap::from([(
                                "workload".to_string(),
                                w.workload.clone(),
                            )])),
                            ..LabelSelector::default()
                        }),
                    },
                    target: MetricTarget {
                        type_: "AverageValue".into(),
                        average_value: Some(Quantity("1".into())),
                        ..MetricTarget::default()
                    },
                }),
                ..MetricSpec::default()
            }]),
            // No block in the configuration: none here either, so the controller takes the
            // legacy path the plan assumed (see `scale::hpa`).
            behavior: w.behavior.as_ref().map(behavior),
        }),
        ..HorizontalPodAutoscaler::default()
    }
}

/// A ScaledObject per workload with prescale's gRPC address as its external trigger; `None`
/// when the configuration serves no gRPC.
pub(crate) fn scaled_objects(
    config: &ServeConfig,
    settings: &RenderSettings,
) -> Option<Vec<Object>> {
    let grpc = config.listen_grpc?;
    let address = format!(
        "{}.{}.svc:{}",
        settings.name,
        settings.namespace,
        grpc.port()
    );
    Some(
        config
            .workloads
            .iter()
            .map(|w| {
                let mut metadata = BTreeMap::from([
                    ("scalerAddress".to_string(), address.clone()),
                    ("workload".to_string(), w.workload.clone()),
                    ("enableTLS".to_string(), "true".to_string()),
                ]);
                if settings.ca_bundle.is_none() {
                    // The server's certificate is self-signed (or its CA was not given).
                    metadata.insert("unsafeSsl".into(), "true".into());
                }
                let spec = ScaledObjectSpec {
                    scale_target_ref: ScaleTargetRef {
                        api_version: "apps/v1".into(),
                        kind: "Deployment".into(),
                        name: w.workload.clone(),
                    },
                    polling_interval: 15,
                    min_replica_count: clamp_i32(w.policy.min_replicas),
                    max_replica_count: clamp_i32(w.policy.max_replicas),
                    advanced: w.behavior.as_ref().map(|b| Advanced {
                        horizontal_pod_autoscaler_config: HpaConfig {
                            behavior: behavior(b),
                        },
                    }),
                    triggers: vec![Trigger {
                        type_: "external".into(),
                        metric_type: "AverageValue".into(),
                        metadata,
                    }],
                };
                Object::new(
                    format!("scaledobject-{}-{}.yaml", w.namespace, w.workload),
                    &ScaledObject::new(meta(&w.workload, Some(&w.namespace), settings), spec),
                )
            })
            .collect(),
    )
}

/// The workload's behavior in the HPA API's terms (every field written out, so the cluster's
/// defaults never differ from the plan's).
pub fn behavior(b: &Behavior) -> HorizontalPodAutoscalerBehavior {
    HorizontalPodAutoscalerBehavior {
        scale_up: Some(rules(&b.scale_up)),
        scale_down: Some(rules(&b.scale_down)),
    }
}

fn rules(r: &Rules) -> HPAScalingRules {
    HPAScalingRules {
        stabilization_window_seconds: Some(clamp_i32(r.stabilization)),
        select_policy: Some(
            match r.select {
                SelectPolicy::Max => "Max",
                SelectPolicy::Min => "Min",
                SelectPolicy::Disabled => "Disabled",
            }
            .into(),
        ),
        policies: Some(
            r.policies
                .iter()
                .map(|p| HPAScalingPolicy {
                    type_: match p.kind {
                        PolicyType::Pods => "Pods",
                        PolicyType::Percent => "Percent",
                    }
                    .into(),
                    value: clamp_i32(p.value),
                    period_seconds: clamp_i32(p.period),
                })
                .collect(),
        ),
        ..HPAScalingRules::default()
    }
}

/// The configuration validated these into the API's ranges; clamping only keeps the
/// conversion total.
fn clamp_i32(v: i64) -> i32 {
    v.clamp(i64::from(i32::MIN), i64::from(i32::MAX)) as i32
}
