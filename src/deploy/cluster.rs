//! The server's own objects in one cluster: Namespace, ServiceAccount, the RBAC of an
//! aggregated API server, the configuration as ConfigMaps, the Deployment and its Service.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec, DeploymentStrategy};
use k8s_openapi::api::core::v1::{
    Capabilities, ConfigMap, ConfigMapVolumeSource, Container, ContainerPort, EmptyDirVolumeSource,
    HTTPGetAction, Namespace, PersistentVolumeClaimVolumeSource, PodSecurityContext, PodSpec,
    PodTemplateSpec, Probe, ResourceRequirements, SeccompProfile, SecretVolumeSource,
    SecurityContext, Service, ServiceAccount, ServicePort, ServiceSpec, Volume, VolumeMount,
};
use k8s_openapi::api::rbac::v1::{ClusterRoleBinding, RoleBinding, RoleRef, Subject};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::{
    labels, meta, Object, RenderSettings, CONFIG_PATH, REQUESTHEADER_DIR, REQUESTHEADER_KEY,
    STATE_DIR, TLS_DIR,
};
use crate::serve::ServeConfig;

/// The port the Service exposes the external metrics API on (the APIService's).
pub const SERVICE_HTTPS_PORT: i32 = 443;
/// A non-root user with no home, as distroless images run.
const RUN_AS: i64 = 65_532;

/// The server's objects, in the order they are applied.
pub(crate) fn objects(
    config_yaml: &str,
    config: &ServeConfig,
    settings: &RenderSettings,
) -> Vec<Object> {
    let ns = settings.namespace.as_str();
    let mut out = vec![
        Object::new(
            "namespace.yaml",
            &Namespace {
                metadata: meta(ns, None, settings),
                ..Namespace::default()
            },
        ),
        Object::new(
            "serviceaccount.yaml",
            &ServiceAccount {
                metadata: meta(&settings.name, Some(ns), settings),
                ..ServiceAccount::default()
            },
        ),
        // An aggregated API server's standard grants: delegated authentication and
        // authorization (TokenReview, SubjectAccessReview) and reading the aggregator's
        // front-proxy CA from kube-system, so an operator or a future release can check
        // requests as the API server would without new RBAC.
        Object::new(
            "clusterrolebinding-auth-delegator.yaml",
            &ClusterRoleBinding {
                metadata: meta(
                    &format!("{}:system:auth-delegator", settings.name),
                    None,
                    settings,
                ),
                role_ref: cluster_role("system:auth-delegator"),
                subjects: Some(vec![service_account(settings)]),
            },
        ),
        Object::new(
            "rolebinding-auth-reader.yaml",
            &RoleBinding {
                metadata: meta(
                    &format!("{}-auth-reader", settings.name),
                    Some("kube-system"),
                    settings,
                ),
                role_ref: RoleRef {
                    api_group: "rbac.authorization.k8s.io".into(),
                    kind: "Role".into(),
                    name: "extension-apiserver-authentication-reader".into(),
                },
                subjects: Some(vec![service_account(settings)]),
            },
        ),
        Object::new(
            "configmap-config.yaml",
            &ConfigMap {
                metadata: meta(&format!("{}-config", settings.name), Some(ns), settings),
                data: Some(BTreeMap::from([(
                    "serve.yaml".to_string(),
                    config_yaml.to_string(),
                )])),
                ..ConfigMap::default()
            },
        ),
    ];
    if let Some(ca) = &settings.requestheader_client_ca {
        out.push(Object::new(
            "configmap-requestheader-ca.yaml",
            &ConfigMap {
                metadata: meta(
                    &format!("{}-requestheader-ca", settings.name),
                    Some(ns),
                    settings,
                ),
                data: Some(BTreeMap::from([(
                    REQUESTHEADER_KEY.to_string(),
                    ca.clone(),
                )])),
                ..ConfigMap::default()
            },
        ));
    }
    out.push(Object::new(
        "deployment.yaml",
        &deployment(config, settings),
    ));
    out.push(Object::new("service.yaml", &service(config, settings)));
    out
}

fn cluster_role(name: &str) -> RoleRef {
    RoleRef {
        api_group: "rbac.authorization.k8s.io".into(),
        kind: "ClusterRole".into(),
        name: name.into(),
    }
}

fn service_account(settings: &RenderSettings) -> Subject {
    Subject {
        kind: "ServiceAccount".into(),
        name: settings.name.clone(),
        namespace: Some(settings.namespace.clone()),
        ..Subject::default()
    }
}

/// The Deployment: one container running `prescale serve` on the mounted configuration, with
/// probes on its health endpoints, a state volume, and a locked-down security context.
fn deployment(config: &ServeConfig, settings: &RenderSettings) -> Deployment {
    let mut args: Vec<String> = ["serve", "--config", CONFIG_PATH, "--state-dir", STATE_DIR]
        .map(String::from)
        .to_vec();
    let mut mounts = vec![
        mount("config", "/etc/prescale/config", true),
        mount("state", STATE_DIR, false),
    ];
    let mut volumes = vec![
        Volume {
            name: "config".into(),
            config_map: Some(ConfigMapVolumeSource {
                name: format!("{}-config", settings.name),
                ..ConfigMapVolumeSource::default()
            }),
            ..Volume::default()
        },
        match &settings.state_claim {
            Some(claim) => Volume {
                name: "state".into(),
                persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
                    claim_name: claim.clone(),
                    read_only: None,
                }),
                ..Volume::default()
            },
            None => Volume {
                name: "state".into(),
                empty_dir: Some(EmptyDirVolumeSource {
                    size_limit: Some(Quantity("1Gi".into())),
                    ..EmptyDirVolumeSource::default()
                }),
                ..Volume::default()
            },
        },
    ];
    if let Some(secret) = &settings.tls_secret {
        args.extend([
            "--tls-cert".to_string(),
            format!("{TLS_DIR}/tls.crt"),
            "--tls-key".to_string(),
            format!("{TLS_DIR}/tls.key"),
        ]);
        mounts.push(mount("tls", TLS_DIR, true));
        volumes.push(Volume {
            name: "tls".into(),
            secret: Some(SecretVolumeSource {
                secret_name: Some(secret.clone()),
                ..SecretVolumeSource::default()
            }),
            ..Volume::default()
        });
    }
    if settings.requestheader_client_ca.is_some() {
        // Mounted at its own folder and named on the command line, which overrides the
        // configuration's path (the allowed names still come from the configuration).
        args.extend([
            "--requestheader-client-ca".to_string(),
            format!("{REQUESTHEADER_DIR}/{REQUESTHEADER_KEY}"),
        ]);
        mounts.push(mount("requestheader", REQUESTHEADER_DIR, true));
        volumes.push(Volume {
            name: "requestheader".into(),
            config_map: Some(ConfigMapVolumeSource {
                name: format!("{}-requestheader-ca", settings.name),
                ..ConfigMapVolumeSource::default()
            }),
            ..Volume::default()
        });
    }
    let mut ports = vec![ContainerPort {
        name: Some("https".into()),
        container_port: i32::from(config.listen_https.port()),
        protocol: Some("TCP".into()),
        ..ContainerPort::default()
    }];
    if let Some(grpc) = config.listen_grpc {
        ports.push(ContainerPort {
            name: Some("grpc".into()),
            container_port: i32::from(grpc.port()),
            protocol: Some("TCP".into()),
            ..ContainerPort::default()
        });
    }
    let probe = |path: &str, period: i32| Probe {
        http_get: Some(HTTPGetAction {
            path: Some(path.into()),
            port: IntOrString::String("https".into()),
            scheme: Some("HTTPS".into()),
            ..HTTPGetAction::default()
        }),
        period_seconds: Some(period),
        timeout_seconds: Some(5),
        failure_threshold: Some(3),
        ..Probe::default()
    };
    let container = Container {
        name: "prescale".into(),
        image: Some(settings.image.clone()),
        args: Some(args),
        ports: Some(ports),
        // Ready once every workload has a decision or a fallback; alive while it answers.
        readiness_probe: Some(probe("/readyz", 10)),
        liveness_probe: Some(probe("/livez", 20)),
        resources: Some(ResourceRequirements {
            requests: Some(BTreeMap::from([
                ("cpu".to_string(), Quantity("250m".into())),
                ("memory".to_string(), Quantity("128Mi".into())),
            ])),
            limits: Some(BTreeMap::from([(
                "memory".to_string(),
                Quantity("512Mi".into()),
            )])),
            ..ResourceRequirements::default()
        }),
        security_context: Some(SecurityContext {
            allow_privilege_escalation: Some(false),
            read_only_root_filesystem: Some(true),
            capabilities: Some(Capabilities {
                drop: Some(vec!["ALL".into()]),
                ..Capabilities::default()
            }),
            ..SecurityContext::default()
        }),
        volume_mounts: Some(mounts),
        ..Container::default()
    };
    Deployment {
        metadata: meta(&settings.name, Some(&settings.namespace), settings),
        spec: Some(DeploymentSpec {
            replicas: Some(settings.replicas),
            selector: LabelSelector {
                match_labels: Some(labels(settings, false)),
                ..LabelSelector::default()
            },
            // A claim is usually ReadWriteOnce: the old pod lets go before the new one mounts.
            strategy: settings.state_claim.as_ref().map(|_| DeploymentStrategy {
                type_: Some("Recreate".into()),
                ..DeploymentStrategy::default()
            }),
            template: PodTemplateSpec {
                metadata: Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
                    labels: Some(labels(settings, true)),
                    ..Default::default()
                }),
                spec: Some(PodSpec {
                    service_account_name: Some(settings.name.clone()),
                    containers: vec![container],
                    volumes: Some(volumes),
                    security_context: Some(PodSecurityContext {
                        run_as_non_root: Some(true),
                        run_as_user: Some(RUN_AS),
                        run_as_group: Some(RUN_AS),
                        fs_group: Some(RUN_AS),
                        seccomp_profile: Some(SeccompProfile {
                            type_: "RuntimeDefault".into(),
                            ..SeccompProfile::default()
                        }),
                        ..PodSecurityContext::default()
                    }),
                    ..PodSpec::default()
                }),
            },
            ..DeploymentSpec::default()
        }),
        ..Deployment::default()
    }
}

fn mount(name: &str, path: &str, read_only: bool) -> VolumeMount {
    VolumeMount {
        name: name.into(),
        mount_path: path.into(),
        read_only: Some(read_only),
        ..VolumeMount::default()
    }
}

/// The Service the APIService (port 443) and KEDA (the gRPC port) reach the pods through.
fn service(config: &ServeConfig, settings: &RenderSettings) -> Service {
    let mut ports = vec![ServicePort {
        name: Some("https".into()),
        port: SERVICE_HTTPS_PORT,
        target_port: Some(IntOrString::String("https".into())),
        protocol: Some("TCP".into()),
        ..ServicePort::default()
    }];
    if let Some(grpc) = config.listen_grpc {
        ports.push(ServicePort {
            name: Some("grpc".into()),
            port: i32::from(grpc.port()),
            target_port: Some(IntOrString::String("grpc".into())),
            protocol: Some("TCP".into()),
            ..ServicePort::default()
        });
    }
    Service {
        metadata: meta(&settings.name, Some(&settings.namespace), settings),
        spec: Some(ServiceSpec {
            selector: Some(labels(settings, false)),
            ports: Some(ports),
            ..ServiceSpec::default()
        }),
        ..Service::default()
    }
}
