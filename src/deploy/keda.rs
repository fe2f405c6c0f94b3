//! KEDA's `ScaledObject` (`keda.sh/v1alpha1`), which `k8s-openapi` does not have: only the
//! fields prescale sets, typed, so a misspelt field cannot reach a cluster. The tests check
//! rendered objects against KEDA's published CRD schema.

use std::collections::BTreeMap;

use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscalerBehavior;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::Serialize;

/// A KEDA ScaledObject.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ScaledObject {
    /// Always `keda.sh/v1alpha1`.
    pub api_version: &'static str,
    /// Always `ScaledObject`.
    pub kind: &'static str,
    /// Name and namespace (the workload's).
    pub metadata: ObjectMeta,
    /// What to scale and on what.
    pub spec: ScaledObjectSpec,
}

impl ScaledObject {
    /// A ScaledObject with `metadata` and `spec`.
    pub fn new(metadata: ObjectMeta, spec: ScaledObjectSpec) -> Self {
        Self {
            api_version: "keda.sh/v1alpha1",
            kind: "ScaledObject",
            metadata,
            spec,
        }
    }
}

/// `spec` of a ScaledObject.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ScaledObjectSpec {
    /// The workload scaled.
    pub scale_target_ref: ScaleTargetRef,
    /// Seconds between KEDA's activity checks.
    pub polling_interval: i32,
    /// The HPA's lower bound.
    pub min_replica_count: i32,
    /// The HPA's upper bound.
    pub max_replica_count: i32,
    /// The behavior KEDA copies into the HPA it creates; `None`: the HPA gets none (the
    /// controller's legacy path).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub advanced: Option<Advanced>,
    /// The scalers; prescale's is one `external` trigger.
    pub triggers: Vec<Trigger>,
}

/// `spec.scaleTargetRef`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ScaleTargetRef {
    /// `apps/v1`.
    pub api_version: String,
    /// `Deployment`.
    pub kind: String,
    /// The workload's name.
    pub name: String,
}

/// `spec.advanced`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Advanced {
    /// Settings of the HPA KEDA creates.
    pub horizontal_pod_autoscaler_config: HpaConfig,
}

/// `spec.advanced.horizontalPodAutoscalerConfig`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HpaConfig {
    /// The HPA's `behavior`, as the plan assumed it.
    pub behavior: HorizontalPodAutoscalerBehavior,
}

/// One trigger.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Trigger {
    /// `external`.
    #[serde(rename = "type")]
    pub type_: String,
    /// `AverageValue`: the served value is replicas, averaged over pods to a target of 1.
    pub metric_type: String,
    /// The scaler's settings (`scalerAddress`, `workload`, TLS).
    pub metadata: BTreeMap<String, String>,
}
