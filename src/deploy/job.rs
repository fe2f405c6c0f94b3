//! An Indexed `batch/v1` Job that runs a backtest in shards: pod `i` runs
//! `prescale backtest … --shards N --output DIR` with `JOB_COMPLETION_INDEX=i` (set by
//! Kubernetes), reading the dataset from one volume and writing its shard to another; a
//! failed index is retried alone (`backoffLimitPerIndex`), and `prescale backtest merge DIR`
//! puts the shards together once the Job completes.

use std::collections::BTreeMap;

use k8s_openapi::api::batch::v1::{Job, JobSpec};
use k8s_openapi::api::core::v1::{
    Capabilities, Container, PersistentVolumeClaimVolumeSource, PodSecurityContext, PodSpec,
    PodTemplateSpec, ResourceRequirements, SeccompProfile, SecurityContext, Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use crate::scale::config::ConfigError;
use crate::serve::config::is_dns_label;

/// Where the dataset volume is mounted.
pub const DATA_DIR: &str = "/data";
/// Where the results volume is mounted.
pub const RESULTS_DIR: &str = "/results";

/// What the Job runs and with what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobSettings {
    /// The Job's name (also the results sub-folder).
    pub name: String,
    /// Its namespace.
    pub namespace: String,
    /// The container image (prescale as its entry point).
    pub image: String,
    /// Shards (the Job's completions).
    pub shards: i32,
    /// Pods at once.
    pub parallelism: i32,
    /// Retries of one shard before it counts as failed.
    pub retries_per_shard: i32,
    /// CPU request (and limit) per pod, as a Kubernetes quantity.
    pub cpu: String,
    /// Memory request (and limit) per pod.
    pub memory: String,
    /// PersistentVolumeClaim holding the dataset (mounted read-only at [`DATA_DIR`]).
    pub dataset_claim: String,
    /// PersistentVolumeClaim the shards write to (at [`RESULTS_DIR`]), shared by all pods.
    pub results_claim: String,
    /// The backtest's own arguments (paths under [`DATA_DIR`]), without the output or shard.
    pub backtest_args: Vec<String>,
}

/// The Job for `s`, or every problem with the settings.
pub fn render_job(s: &JobSettings) -> Result<Job, ConfigError> {
    let mut problems = Vec::new();
    for (what, v) in [
        ("name", &s.name),
        ("namespace", &s.namespace),
        ("dataset claim", &s.dataset_claim),
        ("results claim", &s.results_claim),
    ] {
        if !is_dns_label(v) {
            problems.push(format!(
                "the {what} {v:?} is not a DNS-1123 label (lower-case letters, digits and '-', at most 63)"
            ));
        }
    }
    if s.image.trim().is_empty() {
        problems.push("the container image is empty".into());
    }
    if !(1..=100_000).contains(&s.shards) {
        problems.push(format!("{} shards: between 1 and 100000", s.shards));
    }
    if s.parallelism < 1 {
        problems.push(format!("parallelism {} is under 1", s.parallelism));
    }
    if s.retries_per_shard < 0 {
        problems.push(format!(
            "retries per shard {} is negative",
            s.retries_per_shard
        ));
    }
    for (what, q) in [("cpu", &s.cpu), ("memory", &s.memory)] {
        let ok = !q.is_empty()
            && q.chars().next().is_some_and(|c| c.is_ascii_digit())
            && q.chars().all(|c| c.is_ascii_alphanumeric() || c == '.');
        if !ok {
            problems.push(format!(
                "the {what} {q:?} is not a Kubernetes quantity (e.g. 2, 500m, 4Gi)"
            ));
        }
    }
    for a in &s.backtest_args {
        if ["--output", "--shard", "--shards"].contains(&a.split('=').next().unwrap_or("")) {
            problems.push(format!(
                "the backtest arguments set {a}: the Job sets the output folder and the shard itself"
            ));
        }
    }
    if !problems.is_empty() {
        return Err(ConfigError { problems });
    }
    let labels = BTreeMap::from([
        (
            "app.kubernetes.io/name".to_string(),
            "prescale-backtest".to_string(),
        ),
        ("app.kubernetes.io/instance".to_string(), s.name.clone()),
        (
            "app.kubernetes.io/managed-by".to_string(),
            "prescale".to_string(),
        ),
    ]);
    let mut args = vec!["backtest".to_string()];
    args.extend(s.backtest_args.iter().cloned());
    args.extend([
        "--shards".to_string(),
        s.shards.to_string(),
        "--output".to_string(),
        format!("{RESULTS_DIR}/{}", s.name),
    ]);
    let resources = BTreeMap::from([
        ("cpu".to_string(), Quantity(s.cpu.clone())),
        ("memory".to_string(), Quantity(s.memory.clone())),
    ]);
    let claim = |name: &str, claim: &str, read_only: bool| Volume {
        name: name.into(),
        persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
            claim_name: claim.into(),
            read_only: Some(read_only),
        }),
        ..Volume::default()
    };
    let mount = |name: &str, path: &str, read_only: bool| VolumeMount {
        name: name.into(),
        mount_path: path.into(),
        read_only: Some(read_only),
        ..VolumeMount::default()
    };
    Ok(Job {
        metadata: ObjectMeta {
            name: Some(s.name.clone()),
            namespace: Some(s.namespace.clone()),
            labels: Some(labels.clone()),
            ..ObjectMeta::default()
        },
        spec: Some(JobSpec {
            completion_mode: Some("Indexed".into()),
            completions: Some(s.shards),
            parallelism: Some(s.parallelism.min(s.shards)),
            // A shard that fails is retried alone; the others keep their results.
            backoff_limit_per_index: Some(s.retries_per_shard),
            ttl_seconds_after_finished: Some(7 * 24 * 3600),
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(labels),
                    ..ObjectMeta::default()
                }),
                spec: Some(PodSpec {
                    restart_policy: Some("Never".into()),
                    containers: vec![Container {
                        name: "backtest".into(),
                        image: Some(s.image.clone()),
                        args: Some(args),
                        working_dir: Some(DATA_DIR.into()),
                        resources: Some(ResourceRequirements {
                            requests: Some(resources.clone()),
                            limits: Some(resources),
                            ..ResourceRequirements::default()
                        }),
                        volume_mounts: Some(vec![
                            mount("dataset", DATA_DIR, true),
                            mount("results", RESULTS_DIR, false),
                        ]),
                        security_context: Some(SecurityContext {
                            allow_privilege_escalation: Some(false),
                            read_only_root_filesystem: Some(true),
                            capabilities: Some(Capabilities {
                                drop: Some(vec!["ALL".into()]),
                                ..Capabilities::default()
                            }),
                            ..SecurityContext::default()
                        }),
                        ..Container::default()
                    }],
                    volumes: Some(vec![
                        claim("dataset", &s.dataset_claim, true),
                        claim("results", &s.results_claim, false),
                    ]),
                    security_context: Some(PodSecurityContext {
                        run_as_non_root: Some(true),
                        run_as_user: Some(65_532),
                        fs_group: Some(65_532),
                        seccomp_profile: Some(SeccompProfile {
                            type_: "RuntimeDefault".into(),
                            ..SeccompProfile::default()
                        }),
                        ..PodSecurityContext::default()
                    }),
                    ..PodSpec::default()
                }),
            },
            ..JobSpec::default()
        }),
        ..Job::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> JobSettings {
        JobSettings {
            name: "m4-auto".into(),
            namespace: "forecasting".into(),
            image: "prescale:test".into(),
            shards: 8,
            parallelism: 4,
            retries_per_shard: 2,
            cpu: "2".into(),
            memory: "4Gi".into(),
            dataset_claim: "m4".into(),
            results_claim: "results".into(),
            backtest_args: vec!["--input".into(), "m4-hourly/Hourly-train.csv".into()],
        }
    }

    #[test]
    fn the_job_runs_each_shard_from_its_completion_index() {
        let job = render_job(&settings()).unwrap();
        let spec = job.spec.unwrap();
        assert_eq!(spec.completion_mode.as_deref(), Some("Indexed"));
        assert_eq!(spec.completions, Some(8));
        let pod = spec.template.spec.unwrap();
        let args = pod.containers[0].args.clone().unwrap();
        assert_eq!(
            args[args.len() - 4..],
            ["--shards", "8", "--output", "/results/m4-auto"].map(String::from)
        );
    }

    #[test]
    fn every_problem_is_listed() {
        let mut s = settings();
        s.name = "M4".into();
        s.shards = 0;
        s.memory = "lots".into();
        s.backtest_args.push("--output=x".into());
        let e = render_job(&s).unwrap_err();
        let all = e.problems.join("\n");
        for needle in ["\"M4\"", "0 shards", "memory \"lots\"", "--output=x"] {
            assert!(all.contains(needle), "{needle:?} not in {all}");
        }
    }
}
