//! `prescale serve`: the same decisions as `simulate` from the same history, and the real
//! server read by real clients (kubectl, the Python Kubernetes client, a gRPC client generated
//! from KEDA's proto), through faults.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use prescale::model::ModelSpec;
use prescale::scale::policy::PolicySettings;
use prescale::scale::replay::{replay_with, Forecasts, Strategy};
use prescale::scale::replay_config::{Capacity, ReplayConfig, Scored};
use prescale::series::Series;
use prescale::serve::engine::Engine;
use prescale::serve::snapshot::Snapshot;
use prescale::serve::telemetry::Telemetry;
use prescale::serve::{Overrides, ServeConfig};

use crate::common::{self, free_port};

/// Writes `series` as a CSV file (unix seconds, value).
fn write_csv(path: &Path, series: &Series) {
    let mut text = String::from("timestamp,value\n");
    for (t, v) in series.timestamps().zip(series.values()) {
        if v.is_finite() {
            text.push_str(&format!("{},{}\n", t / 1000, v));
        } else {
            text.push_str(&format!("{},\n", t / 1000));
        }
    }
    std::fs::write(path, text).unwrap();
}

#[test]
fn serve_and_simulate_decide_alike_from_the_same_history() {
    // Nine days of the 5-minute AMZN trace: three of history, then a day and a half decided
    // step by step by the replay and by the server's engine fed the same growing file.
    let trace = common::load_dataset("Twitter_volume_AMZN.csv").slice(0..288 * 9);
    let model = ModelSpec::named("seasonal-naive");
    let policy = PolicySettings {
        quantile: 0.9,
        startup: 120,
        min_replicas: 1,
        max_replicas: 100,
    };
    let replay_config = ReplayConfig {
        capacity: Capacity::PerReplica(20.0),
        policy: policy.clone(),
        history: Duration::from_secs(3 * 86_400),
        scored: Scored::AfterWarmup(Some(Duration::from_secs(3 * 86_400))),
        ..ReplayConfig::default()
    };
    let settings = replay_config.for_trace(&trace);
    let built = model.build().unwrap();
    let forecasts = Forecasts::make(&trace, built.as_ref(), &settings, &[0.9]);
    assert_eq!(forecasts.failures(), 0);
    let replay = replay_with(&trace, &forecasts, &settings, &[Strategy::Predictive]).unwrap();

    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("amzn.csv");
    let yaml = format!(
        "insecureHttp: true
workloads:
  - workload: tweets
    namespace: demo
    maxReplicas: 100
    startupSeconds: 120
    quantile: 0.9
    currentReplicas: {{replicas: 5}}
    metrics:
      - name: tweets
        file: {}
        step: 5m
        history: 3d
        refitEvery: 1h
        horizon: 1h
        model: seasonal-naive
        capacityPerReplica: 20
",
        csv.display()
    );
    write_csv(&csv, &trace.slice(0..settings.warmup));
    let config = ServeConfig::from_yaml(&yaml, &Overrides::default()).unwrap();
    let mut engine = Engine::new(std::sync::Arc::new(config), None)
        .map_err(|r| r.0)
        .unwrap();
    let telemetry = Telemetry::default();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut snapshot = Snapshot::empty(vec![]);
    let mut compared = 0;
    let steps = 432;
    for k in settings.warmup..settings.warmup + steps {
        // The file holds the points before step k: both decide for step k.
        write_csv(&csv, &trace.slice(0..k));
        snapshot = runtime.block_on(engine.refresh(0, &telemetry, &snapshot));
        let served = snapshot.workloads[0].desired;
        let planned = replay.steps[k - settings.warmup].planned[0]
            .unwrap_or_else(|| panic!("the replay fell back at step {k}"));
        assert_eq!(
            served, planned,
            "step {k}: serve decided {served}, the replay planned {planned}"
        );
        compared += 1;
    }
    assert_eq!(compared, steps);
}

/// The built binary.
fn prescale() -> Command {
    Command::new(assert_cmd::cargo::cargo_bin("prescale"))
}

/// `tests/.venv`, made by `.ci/run` from `tests/requirements.txt`.
fn python() -> PathBuf {
    let python = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/.venv/bin/python");
    assert!(
        python.exists(),
        "{} is missing: run .ci/run, or python3 -m venv tests/.venv && tests/.venv/bin/pip install -r tests/requirements.txt",
        python.display()
    );
    python
}

/// A `prescale serve` process, killed when dropped.
struct Server {
    child: Child,
    https: u16,
    grpc: u16,
    dir: PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    /// Starts the server on `config` with `args`, and waits until `/healthz` answers.
    fn start(dir: &Path, config: &str, args: &[&str]) -> Server {
        let https = free_port();
        let grpc = free_port();
        let path = dir.join("serve.yaml");
        let config = config
            .replace("HTTPS_PORT", &https.to_string())
            .replace("GRPC_PORT", &grpc.to_string());
        std::fs::write(&path, config).unwrap();
        let log = std::fs::File::create(dir.join("serve.log")).unwrap();
        let child = prescale()
            .arg("serve")
            .arg("--config")
            .arg(&path)
            .args(args)
            .env("PRESCALE_LOG", "info")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start prescale serve");
        let server = Server {
            child,
            https,
            grpc,
            dir: dir.to_path_buf(),
        };
        server.wait_for("/healthz", 200, Duration::from_secs(30));
        server
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("serve.log")).unwrap_or_default()
    }

    fn curl(&self, path: &str) -> (u16, String) {
        let out = Command::new("curl")
            .args(["-sk", "-w", "\n%{http_code}", "--max-time", "5"])
            .arg(format!("https://127.0.0.1:{}{path}", self.https))
            .output()
            .expect("curl");
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        let (body, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
        (code.trim().parse().unwrap_or(0), body.to_string())
    }

    fn wait_for(&self, path: &str, code: u16, limit: Duration) -> String {
        let deadline = Instant::now() + limit;
        loop {
            let (got, body) = self.curl(path);
            if got == code {
                return body;
            }
            assert!(
                Instant::now() < deadline,
                "{path} answered {got} ({body}), not {code}, after {limit:?}; log:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

/// A kubeconfig for `kubectl --raw` against the server (TLS not verified: self-signed).
fn kubeconfig(dir: &Path, port: u16) -> PathBuf {
    let path = dir.join("kubeconfig");
    std::fs::write(
        &path,
        format!(
            "apiVersion: v1
kind: Config
clusters:
- name: prescale
  cluster:
    server: https://127.0.0.1:{port}
    insecure-skip-tls-verify: true
users:
- name: tester
  user:
    token: not-checked
contexts:
- name: prescale
  context: {{cluster: prescale, user: tester}}
current-context: prescale
"
        ),
    )
    .unwrap();
    path
}

const TRIAL: &str = "
listen: {https: 127.0.0.1:HTTPS_PORT, grpc: 127.0.0.1:GRPC_PORT}
stateDir: STATE
refresh: {every: 1s}
workloads:
  - workload: tweets
    namespace: demo
    maxReplicas: 50
    startupSeconds: 120
    metrics:
      - name: tweets
        file: DATA
        history: 3d
        horizon: 1h
        model: ets
        capacityPerReplica: 20
";

#[test]
fn real_clients_read_the_decisions() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("amzn.csv");
    write_csv(
        &data,
        &common::load_dataset("Twitter_volume_AMZN.csv").slice(0..288 * 5),
    );
    let config = TRIAL
        .replace("STATE", &dir.path().join("state").display().to_string())
        .replace("DATA", &data.display().to_string());
    let server = Server::start(dir.path(), &config, &[]);
    server.wait_for("/readyz", 200, Duration::from_secs(60));

    // kubectl, as the aggregator's users read it.
    let path = "/apis/external.metrics.k8s.io/v1beta1/namespaces/demo/prescale_replicas?labelSelector=workload%3Dtweets";
    let out = Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(kubeconfig(dir.path(), server.https))
        .args(["get", "--raw", path])
        .output()
        .expect("kubectl is installed");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let list: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(list["kind"], "ExternalMetricValueList");
    let value = list["items"][0]["value"].as_str().unwrap().to_string();
    let milli = prescale::serve::quantity::parse_milli(&value).unwrap();
    assert!((1000..=50_000).contains(&milli), "{value}");
    // An unknown metric is kubectl's NotFound.
    let out = Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(kubeconfig(dir.path(), server.https))
        .args([
            "get",
            "--raw",
            "/apis/external.metrics.k8s.io/v1beta1/namespaces/demo/nothing",
        ])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("Error from server (NotFound)"));

    // The official Python client, and a gRPC client generated from KEDA's proto.
    let script = format!(
        r#"
import json, subprocess, sys
from kubernetes import client
c = client.Configuration()
c.host = "https://127.0.0.1:{https}"
c.verify_ssl = False
api = client.CustomObjectsApi(client.ApiClient(c))
obj = api.list_namespaced_custom_object("external.metrics.k8s.io", "v1beta1", "demo", "prescale_forecast",
                                        label_selector="workload in (tweets),metric=tweets")
print("PY", json.dumps(obj))
subprocess.run([sys.executable, "-m", "grpc_tools.protoc", "-I", "{protos}", "--python_out", "{out}",
                "--grpc_python_out", "{out}", "{protos}/externalscaler.proto"], check=True)
sys.path.insert(0, "{out}")
import grpc, externalscaler_pb2 as pb, externalscaler_pb2_grpc as rpc
with open("{cert}", "rb") as f:
    creds = grpc.ssl_channel_credentials(root_certificates=f.read())
channel = grpc.secure_channel("localhost:{grpc}", creds)
stub = rpc.ExternalScalerStub(channel)
ref = pb.ScaledObjectRef(name="tweets", namespace="demo")
spec = stub.GetMetricSpec(ref, timeout=5)
metrics = stub.GetMetrics(pb.GetMetricsRequest(scaledObjectRef=ref, metricName=spec.metricSpecs[0].metricName), timeout=5)
active = stub.IsActive(ref, timeout=5)
first = next(iter(stub.StreamIsActive(ref, timeout=5)))
print("GRPC", spec.metricSpecs[0].metricName, spec.metricSpecs[0].targetSizeFloat,
      metrics.metricValues[0].metricValueFloat, metrics.metricValues[0].metricValue, active.result, first.result)
try:
    stub.GetMetrics(pb.GetMetricsRequest(scaledObjectRef=pb.ScaledObjectRef(name="nope", namespace="demo")), timeout=5)
except grpc.RpcError as e:
    print("GRPCERR", e.code().name)
"#,
        https = server.https,
        grpc = server.grpc,
        protos = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures")
            .display(),
        out = dir.path().display(),
        cert = dir.path().join("state/self-signed.crt").display(),
    );
    let out = Command::new(python())
        .arg("-c")
        .arg(&script)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let py = stdout.lines().find_map(|l| l.strip_prefix("PY ")).unwrap();
    let obj: serde_json::Value = serde_json::from_str(py).unwrap();
    assert_eq!(obj["items"][0]["metricLabels"]["metric"], "tweets");
    let grpc: Vec<&str> = stdout
        .lines()
        .find_map(|l| l.strip_prefix("GRPC "))
        .unwrap()
        .split(' ')
        .collect();
    assert_eq!(grpc[0], "prescale-tweets");
    assert_eq!(grpc[1], "1.0");
    let served: f64 = grpc[2].parse().unwrap();
    assert!(
        (served * 1000.0 - milli as f64).abs() <= 1.0,
        "{served} vs {milli}"
    );
    assert_eq!((grpc[4], grpc[5]), ("True", "True"));
    assert!(stdout.contains("GRPCERR NOT_FOUND"), "{stdout}");
    println!("kubectl: {value}; python: {py}; grpc: {grpc:?}");
}

#[test]
fn a_malformed_config_lists_every_problem_and_does_not_start() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.yaml");
    std::fs::write(
        &path,
        "listen: {https: nowhere}\nworkloads:\n  - workload: a\n    maxReplicas: 0\n    metrics: []\n",
    )
    .unwrap();
    let out = prescale()
        .args(["serve", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    for part in [
        "listen.https: \"nowhere\" is not an address",
        "workloads[0].maxReplicas 0 must be at least 1",
        "workloads[0].metrics: empty",
        "workloads[0].startupSeconds: missing",
    ] {
        assert!(err.contains(part), "{part}: {err}");
    }
    // The shipped examples are valid (the cluster one with its CA file given here).
    let ca = dir.path().join("ca.crt");
    std::fs::write(&ca, "placeholder").unwrap();
    for (example, extra) in [
        ("examples/serve.yaml", vec![]),
        (
            "examples/serve-prometheus.yaml",
            vec![
                "--requestheader-client-ca".to_string(),
                ca.display().to_string(),
            ],
        ),
    ] {
        let out = prescale()
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .args(["serve", "--check", "--config", example])
            .args(&extra)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{example}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
