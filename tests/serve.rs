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
pub(crate) struct Server {
    child: Child,
    https: u16,
    grpc: u16,
    dir: PathBuf,
    scheme: &'static str,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    /// Starts the server on `config` with `args`, and waits until `/healthz` answers.
    pub(crate) fn start(dir: &Path, config: &str, args: &[&str]) -> Server {
        let https = free_port();
        let grpc = free_port();
        let path = dir.join("serve.yaml");
        let config = config
            .replace("HTTPS_PORT", &https.to_string())
            .replace("GRPC_PORT", &grpc.to_string());
        std::fs::write(&path, &config).unwrap();
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
        let scheme = if config.contains("insecureHttp: true") {
            "http"
        } else {
            "https"
        };
        let server = Server {
            child,
            https,
            grpc,
            dir: dir.to_path_buf(),
            scheme,
        };
        server.wait_for("/healthz", 200, Duration::from_secs(30));
        server
    }

    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("serve.log")).unwrap_or_default()
    }

    pub(crate) fn curl(&self, path: &str) -> (u16, String) {
        let out = Command::new("curl")
            .args(["-sk", "-w", "\n%{http_code}", "--max-time", "5"])
            .arg(format!("{}://127.0.0.1:{}{path}", self.scheme, self.https))
            .output()
            .expect("curl");
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        let (body, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
        (code.trim().parse().unwrap_or(0), body.to_string())
    }

    pub(crate) fn wait_for(&self, path: &str, code: u16, limit: Duration) -> String {
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

/// A kubeconfig for `kubectl --raw` against the server (TLS not verified: self-signed),
/// authenticating with a client certificate (`cert`, `key`) or, without one, a token the
/// server does not check (kubectl would otherwise prompt for a user name).
fn kubeconfig(dir: &Path, port: u16, cert: Option<(&Path, &Path)>) -> PathBuf {
    let (user, file) = match cert {
        Some((c, k)) => (
            format!(
                "client-certificate: {}\n    client-key: {}",
                c.display(),
                k.display()
            ),
            format!(
                "kubeconfig-{}",
                c.file_stem()
                    .map_or(String::new(), |s| s.to_string_lossy().into_owned())
            ),
        ),
        None => ("token: not-checked".to_string(), "kubeconfig".to_string()),
    };
    let path = dir.join(file);
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
- name: client
  user:
    {user}
contexts:
- name: prescale
  context: {{cluster: prescale, user: client}}
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
        .arg(kubeconfig(dir.path(), server.https, None))
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
        .arg(kubeconfig(dir.path(), server.https, None))
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

/// `/metrics` of `server`, and one sample's value in it.
pub(crate) fn sample(server: &Server, prefix: &str) -> Option<f64> {
    let (_, text) = server.curl("/metrics");
    text.lines()
        .find(|l| l.starts_with(prefix))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

pub(crate) fn wait_until(what: &str, limit: Duration, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !check() {
        assert!(Instant::now() < deadline, "{what} after {limit:?}");
        std::thread::sleep(Duration::from_millis(250));
    }
}

fn replicas_value(server: &Server) -> (u16, String) {
    server.curl("/apis/external.metrics.k8s.io/v1beta1/namespaces/demo/prescale_replicas?labelSelector=workload%3Dtweets")
}

/// A server on 127.0.0.1 that answers every request with HTTP 200, a JSON content type and a
/// body that is not JSON: a Prometheus answering garbage.
fn garbage_server() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut stream = stream;
            let mut buffer = [0u8; 4096];
            let _ = std::io::Read::read(&mut stream, &mut buffer);
            let _ = std::io::Write::write_all(
                &mut stream,
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 9\r\nConnection: close\r\n\r\nnot json!",
            );
        }
    });
    port
}

#[test]
fn prometheus_down_garbage_reloads_and_restarts_fall_back_and_recover() {
    // Two days of the AMZN trace as if it ended now, and the deployment's replica count.
    let amzn = common::load_dataset("Twitter_volume_AMZN.csv").slice(0..288 * 2);
    let now = chrono::Utc::now().timestamp();
    let end = now - now.rem_euclid(300) - 300;
    let first = end - 300 * (amzn.len() as i64 - 1);
    let points: Vec<(i64, f64)> = amzn
        .values()
        .iter()
        .enumerate()
        .map(|(i, v)| (first + 300 * i as i64, *v))
        .collect();
    let replicas: Vec<(i64, f64)> = points.iter().map(|(t, _)| (*t, 4.0)).collect();
    let mut prometheus = common::Prometheus::start(&[
        common::Backfill {
            metric: "tweets",
            labels: r#"brand="amzn""#,
            points,
        },
        common::Backfill {
            metric: "kube_deployment_status_replicas",
            labels: r#"deployment="tweets""#,
            points: replicas,
        },
    ]);
    let dir = tempfile::tempdir().unwrap();
    let config = |url: &str| {
        format!(
            "prometheus: {{url: {url}, timeout: 2s, retries: 0}}
listen: {{https: 127.0.0.1:HTTPS_PORT, grpc: 127.0.0.1:GRPC_PORT}}
stateDir: {state}
refresh: {{every: 1s}}
workloads:
  - workload: tweets
    namespace: demo
    maxReplicas: 50
    startupSeconds: 120
    currentReplicas: {{query: 'kube_deployment_status_replicas{{deployment=\"tweets\"}}'}}
    fallback: {{failureThreshold: 2, serve: replicas, replicas: 7}}
    metrics:
      - name: tweets
        query: sum(tweets{{brand=\"amzn\"}})
        step: 5m
        history: 1d
        refitEvery: 1h
        horizon: 1h
        model: ets
        capacityPerReplica: 20
",
            state = dir.path().join("state").display()
        )
    };
    let server = Server::start(dir.path(), &config(&prometheus.url), &[]);
    server.wait_for("/readyz", 200, Duration::from_secs(60));
    let fallback = r#"prescale_fallback_active{namespace="demo",workload="tweets"}"#;
    assert_eq!(sample(&server, fallback), Some(0.0));
    let (code, body) = replicas_value(&server);
    assert_eq!(code, 200, "{body}");
    let live: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_ne!(live["items"][0]["value"], "7");

    // Prometheus stops: after two failed refreshes the fallback (7 pods) is served and
    // flagged in /metrics, the readiness detail and the log.
    prometheus.stop();
    wait_until("the fallback is flagged", Duration::from_secs(30), || {
        sample(&server, fallback) == Some(1.0)
    });
    let (_, body) = replicas_value(&server);
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["items"][0]["value"], "6999m", "{body}");
    assert!(server
        .curl("/readyz")
        .1
        .contains("serving the fallback: demo/tweets"));
    assert!(server.log().contains("serving the fallback"));
    assert!(sample(&server, r#"prescale_prometheus_query_errors_total{namespace="demo",workload="tweets",metric="tweets"}"#).unwrap() >= 2.0);

    // It comes back: the forecast is served again.
    prometheus.restart();
    wait_until(
        "recovery from the fallback",
        Duration::from_secs(30),
        || sample(&server, fallback) == Some(0.0),
    );

    // A restart with the state directory serves the last decision at once, even with
    // Prometheus answering garbage; a corrupt model file is reported, never fatal.
    wait_until("a forecast decision", Duration::from_secs(30), || {
        replicas_value(&server).0 == 200
    });
    let last = replicas_value(&server).1;
    let value = |body: &str| -> serde_json::Value {
        serde_json::from_str::<serde_json::Value>(body).unwrap()["items"][0]["value"].clone()
    };
    assert_ne!(value(&last), "6999m");
    drop(server);
    let models = dir.path().join("state/models/demo/tweets/tweets.json");
    assert!(models.exists(), "the fitted model was saved");
    std::fs::write(&models, "{ truncated").unwrap();
    let garbage = format!("http://127.0.0.1:{}", garbage_server());
    let patient = config(&garbage).replace("failureThreshold: 2", "failureThreshold: 1000");
    let server = Server::start(dir.path(), &patient, &[]);
    let (code, again) = replicas_value(&server);
    assert_eq!(code, 200, "{again}; log:\n{}", server.log());
    assert_eq!(value(&again), value(&last));
    assert!(server.log().contains("serving the persisted decision"));
    wait_until(
        "the corrupt model is reported",
        Duration::from_secs(30),
        || server.log().contains("ignoring the saved model"),
    );

    // A reload (SIGHUP) to a configuration that falls back after two failures is applied;
    // then an invalid file is refused and the configuration in effect keeps serving.
    let path = dir.path().join("serve.yaml");
    let ports = |text: String| {
        text.replace("HTTPS_PORT", &server.https.to_string())
            .replace("GRPC_PORT", &server.grpc.to_string())
    };
    std::fs::write(&path, ports(config(&garbage))).unwrap();
    let _ = Command::new("kill")
        .args(["-HUP", &server.child.id().to_string()])
        .status();
    wait_until(
        "the garbage answers are a fallback",
        Duration::from_secs(30),
        || sample(&server, fallback) == Some(1.0),
    );
    assert!(server.log().contains("configuration reloaded"));
    std::fs::write(&path, "workloads: [oops\n").unwrap();
    wait_until(
        "the invalid reload is refused",
        Duration::from_secs(30),
        || {
            sample(
                &server,
                r#"prescale_config_reloads_total{outcome="refused"}"#,
            ) == Some(1.0)
        },
    );
    assert_eq!(replicas_value(&server).0, 200);
    assert!(!server.log().contains("panicked"));
}

/// A CA and a client certificate it signs, as PEM files in `dir`: (ca, cert, key).
fn client_certificate(
    dir: &Path,
    name: &str,
    ca: Option<&(rcgen::Issuer<'static, rcgen::KeyPair>, PathBuf)>,
    common_name: &str,
) -> (PathBuf, PathBuf, PathBuf) {
    use rcgen::{CertificateParams, DnType, ExtendedKeyUsagePurpose, KeyPair};
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params
        .distinguished_name
        .push(DnType::CommonName, common_name);
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let (ca_path, cert) = match ca {
        Some((issuer, path)) => (path.clone(), params.signed_by(&key, issuer).unwrap()),
        None => unreachable!("callers pass a CA"),
    };
    let cert_path = dir.join(format!("{name}.crt"));
    let key_path = dir.join(format!("{name}.key"));
    std::fs::write(&cert_path, cert.pem()).unwrap();
    std::fs::write(&key_path, key.serialize_pem()).unwrap();
    (ca_path, cert_path, key_path)
}

/// A certificate authority, its PEM written to `dir/<name>.crt`.
pub(crate) fn authority(
    dir: &Path,
    name: &str,
) -> (rcgen::Issuer<'static, rcgen::KeyPair>, PathBuf) {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    let cert = params.self_signed(&key).unwrap();
    let path = dir.join(format!("{name}.crt"));
    std::fs::write(&path, cert.pem()).unwrap();
    (Issuer::new(params, key), path)
}

/// kubectl `get --raw` with a client certificate (or none): its exit status and output.
fn kubectl_as(dir: &Path, port: u16, cert: Option<(&Path, &Path)>, path: &str) -> (bool, String) {
    let out = Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(kubeconfig(dir, port, cert))
        .args(["get", "--raw", path])
        .output()
        .unwrap();
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[test]
fn only_the_allowed_front_proxy_certificate_reads_values() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("amzn.csv");
    write_csv(
        &data,
        &common::load_dataset("Twitter_volume_AMZN.csv").slice(0..288 * 5),
    );
    let front_proxy = authority(dir.path(), "front-proxy-ca");
    let other_ca = authority(dir.path(), "other-ca");
    let (ca, allowed, allowed_key) = client_certificate(
        dir.path(),
        "allowed",
        Some(&front_proxy),
        "front-proxy-client",
    );
    let (_, wrong_name, wrong_name_key) =
        client_certificate(dir.path(), "wrong-name", Some(&front_proxy), "intruder");
    let (_, foreign, foreign_key) =
        client_certificate(dir.path(), "foreign", Some(&other_ca), "front-proxy-client");
    let config = TRIAL
        .replace("STATE", &dir.path().join("state").display().to_string())
        .replace("DATA", &data.display().to_string());
    let server = Server::start(
        dir.path(),
        &config,
        &[
            "--requestheader-client-ca",
            &ca.display().to_string(),
            "--requestheader-allowed-names",
            "front-proxy-client,aggregator",
        ],
    );
    server.wait_for("/readyz", 200, Duration::from_secs(60));
    let path = "/apis/external.metrics.k8s.io/v1beta1/namespaces/demo/prescale_replicas";
    let (ok, out) = kubectl_as(
        dir.path(),
        server.https,
        Some((&allowed, &allowed_key)),
        path,
    );
    assert!(
        ok && out.contains("ExternalMetricValueList"),
        "allowed: {out}"
    );
    let (ok, out) = kubectl_as(
        dir.path(),
        server.https,
        Some((&wrong_name, &wrong_name_key)),
        path,
    );
    assert!(
        !ok && out.contains("Unauthorized"),
        "a name not allowed: {out}"
    );
    let (ok, out) = kubectl_as(
        dir.path(),
        server.https,
        Some((&foreign, &foreign_key)),
        path,
    );
    assert!(
        !ok && !out.contains("ExternalMetricValueList"),
        "another CA: {out}"
    );
    let (ok, out) = kubectl_as(dir.path(), server.https, None, path);
    assert!(!ok && out.contains("Unauthorized"), "no certificate: {out}");
    // Health endpoints stay open to probes without a certificate.
    assert_eq!(server.curl("/healthz").0, 200);
    assert_eq!(server.curl("/readyz").0, 200);
    assert_eq!(
        sample(&server, "prescale_authentication_enabled"),
        Some(1.0)
    );
}

#[test]
fn hostile_requests_cost_a_status_and_nothing_else() {
    use std::io::{Read, Write};
    use std::net::TcpStream;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("amzn.csv");
    write_csv(
        &data,
        &common::load_dataset("Twitter_volume_AMZN.csv").slice(0..288 * 5),
    );
    let config = format!(
        "insecureHttp: true\n{}",
        TRIAL
            .replace("STATE", &dir.path().join("state").display().to_string())
            .replace("DATA", &data.display().to_string())
    );
    let server = Server::start(dir.path(), &config, &[]);
    server.wait_for("/readyz", 200, Duration::from_secs(60));
    let rss = || -> u64 {
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", server.child.id())).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
            .unwrap()
    };
    let before = rss();
    // Slow clients hold connections open byte by byte; they must not starve the others.
    let slow: Vec<TcpStream> = (0..50)
        .filter_map(|_| TcpStream::connect(("127.0.0.1", server.https)).ok())
        .collect();
    let valid = "/apis/external.metrics.k8s.io/v1beta1/namespaces/demo/prescale_replicas?labelSelector=workload%3Dtweets";
    // Over the API's URI bound (4 KiB) but inside the header buffer: a 414 Status; a header
    // block over the buffer (16 KiB) is refused by the HTTP layer itself with a 431.
    let huge_selector = format!(
        "/apis/external.metrics.k8s.io/v1beta1/namespaces/demo/prescale_replicas?labelSelector={}",
        "a%3Db%2C".repeat(1000)
    );
    let over_buffer = format!(
        "/apis/external.metrics.k8s.io/v1beta1/namespaces/demo/prescale_replicas?labelSelector={}",
        "a%3Db%2C".repeat(3000)
    );
    let attacks: Vec<Vec<u8>> = vec![
        b"GET /%FF%FE/%00 HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
        b"GET /apis/external.metrics.k8s.io/v1beta1/namespaces/%FF/prescale_replicas HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
        format!("GET {huge_selector} HTTP/1.1\r\nHost: x\r\n\r\n").into_bytes(),
        format!("GET {over_buffer} HTTP/1.1\r\nHost: x\r\n\r\n").into_bytes(),
        format!("GET / HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n", "y".repeat(64 * 1024)).into_bytes(),
        b"\x16\x03\x01\x02\x00garbage".to_vec(),
        b"GET /apis/external.metrics.k8s.io/v1beta1/namespaces/demo/prescale_replicas?labelSelector=a%20in%20(((( HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
        b"DELETE /apis/external.metrics.k8s.io/v1beta1 HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
        b"GET /\xff\xfe HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
        b"POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999\r\n\r\nabc".to_vec(),
    ];
    let mut answered = 0;
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let attacks = attacks.clone();
            let port = server.https;
            std::thread::spawn(move || {
                let mut count = 0;
                for i in 0..2500 {
                    let attack = &attacks[(i + t) % attacks.len()];
                    if let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) {
                        let _ = s.set_read_timeout(Some(Duration::from_millis(500)));
                        let _ = s.write_all(attack);
                        let mut sink = [0u8; 256];
                        let _ = s.read(&mut sink);
                        count += 1;
                    }
                }
                count
            })
        })
        .collect();
    // Meanwhile valid requests keep being answered.
    let mut valid_ok = 0;
    let started = Instant::now();
    while threads.iter().any(|t| !t.is_finished()) {
        if server.curl(valid).0 == 200 {
            valid_ok += 1;
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "the attack did not end"
        );
    }
    for t in threads {
        answered += t.join().unwrap();
    }
    assert_eq!(answered, 10_000);
    assert!(
        valid_ok >= 5,
        "only {valid_ok} valid requests answered during the attack"
    );
    // Each kind gets its Status answer.
    for (path, code) in [
        ("/%FF%FE/%00", 404),
        ("/apis/external.metrics.k8s.io/v1beta1/namespaces/%FF/prescale_replicas", 400),
        (huge_selector.as_str(), 414),
        ("/apis/external.metrics.k8s.io/v1beta1/namespaces/demo/prescale_replicas?labelSelector=a%20in%20((((", 400),
    ] {
        let (got, body) = server.curl(path);
        let shown: String = path.chars().take(100).collect();
        assert_eq!(got, code, "{shown}: {body}");
        let status: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(status["kind"], "Status", "{body}");
    }
    assert_eq!(server.curl(&over_buffer).0, 431);
    drop(slow);
    assert_eq!(server.curl(valid).0, 200);
    let after = rss();
    assert!(
        after < before + 50 * 1024 && after < 200 * 1024,
        "RSS grew from {before} kB to {after} kB"
    );
    assert!(!server.log().contains("panicked"), "{}", server.log());
    println!("RSS {before} kB before, {after} kB after 10,000 hostile requests; {valid_ok} valid answered meanwhile");
}
