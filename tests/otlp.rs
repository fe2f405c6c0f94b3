//! Tracing over OTLP: `serve` and an offline command export their spans to a real receiver on
//! 127.0.0.1 (decoding OTLP/HTTP protobuf with the official `opentelemetry-proto` messages),
//! with the span tree and attributes checked, and serving goes on while the receiver is down.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::{self, free_port};

fn prescale() -> Command {
    Command::new(assert_cmd::cargo::cargo_bin("prescale"))
}

/// The Python with `opentelemetry-proto`: `PRESCALE_TEST_VENV` or `tests/.venv` (made by
/// `.ci/run` from `tests/requirements.txt`).
fn python() -> PathBuf {
    let venv = std::env::var_os("PRESCALE_TEST_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/.venv"));
    let python = venv.join("bin/python");
    assert!(
        python.exists(),
        "{} is missing: run .ci/run, or pip install -r tests/requirements.txt into a venv",
        python.display()
    );
    python
}

/// The receiver, killed when dropped.
struct Receiver(Child);

impl Receiver {
    fn start(port: u16, out: &Path) -> Receiver {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/otlp/receiver.py");
        let mut child = Command::new(python())
            .arg(script)
            .arg(port.to_string())
            .arg(out)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the OTLP receiver");
        // It prints one line once it listens.
        let mut line = String::new();
        std::io::BufRead::read_line(
            &mut std::io::BufReader::new(child.stdout.take().unwrap()),
            &mut line,
        )
        .unwrap();
        assert_eq!(line.trim(), "listening");
        Receiver(child)
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

struct Serve(Child);

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[derive(Debug, Clone)]
struct Span {
    trace: String,
    id: String,
    parent: String,
    name: String,
    attributes: HashMap<String, Value>,
    resource: HashMap<String, Value>,
}

fn spans(path: &Path) -> Vec<Span> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            let map = |k: &str| -> HashMap<String, Value> {
                v[k].as_object()
                    .map(|o| o.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
                    .unwrap_or_default()
            };
            Span {
                trace: v["trace_id"].as_str().unwrap().to_string(),
                id: v["span_id"].as_str().unwrap().to_string(),
                parent: v["parent_span_id"].as_str().unwrap().to_string(),
                name: v["name"].as_str().unwrap().to_string(),
                attributes: map("attributes"),
                resource: map("resource"),
            }
        })
        .collect()
}

fn wait_until(what: &str, limit: Duration, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn curl(port: u16, path: &str) -> (u16, String, Duration) {
    let started = Instant::now();
    let out = Command::new("curl")
        .args(["-s", "-w", "\n%{http_code}", "--max-time", "5"])
        .arg(format!("http://127.0.0.1:{port}{path}"))
        .output()
        .expect("curl");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
    (
        code.trim().parse().unwrap_or(0),
        body.to_string(),
        started.elapsed(),
    )
}

const VALUES: &str = "/apis/external.metrics.k8s.io/v1beta1/namespaces/demo/prescale_replicas?labelSelector=workload%3Dtweets";

/// A refresh whose trace holds the whole path: read, fit (predict under it), plan.
fn complete_refresh(all: &[Span]) -> Option<Span> {
    all.iter()
        .filter(|s| s.name == "refresh" && s.parent.is_empty())
        .find(|root| {
            let names: Vec<&str> = all
                .iter()
                .filter(|s| s.trace == root.trace)
                .map(|s| s.name.as_str())
                .collect();
            ["read_file", "fit", "predict", "plan"]
                .iter()
                .all(|n| names.contains(n))
        })
        .cloned()
}

#[test]
fn serve_exports_a_span_tree_per_refresh_and_request_and_serves_on_without_a_collector() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("spans.jsonl");
    let otlp = free_port();
    let receiver = Receiver::start(otlp, &out);
    let http = free_port();
    let config = dir.path().join("serve.yaml");
    std::fs::write(
        &config,
        format!(
            "insecureHttp: true
listen: {{https: 127.0.0.1:{http}}}
refresh: {{every: 1s}}
workloads:
  - workload: tweets
    namespace: demo
    maxReplicas: 100
    startupSeconds: 120
    metrics:
      - name: tweets
        file: {}
        history: 3d
        refitEvery: 5m
        model: seasonal-naive
        capacityPerReplica: 20
",
            common::dataset("Twitter_volume_AMZN.csv").display()
        ),
    )
    .unwrap();
    let log = std::fs::File::create(dir.path().join("serve.log")).unwrap();
    let _serve = Serve(
        prescale()
            .args(["serve", "--config"])
            .arg(&config)
            .env(
                "OTEL_EXPORTER_OTLP_ENDPOINT",
                format!("http://127.0.0.1:{otlp}"),
            )
            .env("OTEL_SERVICE_NAME", "prescale-under-test")
            .env("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment=test")
            .env("OTEL_BSP_SCHEDULE_DELAY", "200")
            .env("OTEL_EXPORTER_OTLP_TIMEOUT", "1000")
            .env("PRESCALE_LOG", "info")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap(),
    );
    let serve_log = || std::fs::read_to_string(dir.path().join("serve.log")).unwrap_or_default();
    wait_until("a decision", Duration::from_secs(60), || {
        curl(http, VALUES).0 == 200
    });
    for _ in 0..3 {
        assert_eq!(curl(http, VALUES).0, 200);
    }
    wait_until(
        "a whole refresh and a request",
        Duration::from_secs(30),
        || {
            let all = spans(&out);
            complete_refresh(&all).is_some()
                && all.iter().any(|s| {
                    s.name == "request"
                        && s.attributes.contains_key("metric")
                        && s.attributes.get("http.status_code") == Some(&200.into())
                })
        },
    );
    let all = spans(&out);

    // One refresh of one workload is one trace: refresh > read_file, fit > predict, plan.
    let root = complete_refresh(&all).unwrap();
    assert_eq!(root.attributes["namespace"], "demo");
    assert_eq!(root.attributes["workload"], "tweets");
    assert!(root.attributes["desired"].as_i64().unwrap() >= 1);
    assert_eq!(root.resource["service.name"], "prescale-under-test");
    assert_eq!(root.resource["deployment.environment"], "test");
    let in_trace: Vec<&Span> = all.iter().filter(|s| s.trace == root.trace).collect();
    let one = |name: &str| *in_trace.iter().find(|s| s.name == name).unwrap();
    let (read, fit, predict, plan) = (one("read_file"), one("fit"), one("predict"), one("plan"));
    assert_eq!(read.parent, root.id);
    assert!(
        read.attributes["points"].as_i64().is_some_and(|n| n > 800),
        "{read:?}"
    );
    assert_eq!(fit.parent, root.id);
    assert_eq!(fit.attributes["model"], "seasonal-naive");
    assert_eq!(fit.attributes["fitted"], "seasonal-naive");
    assert_eq!(fit.attributes["fallback"], false);
    assert!(fit.attributes["series_length"].as_i64().unwrap() > 800);
    assert!(fit.attributes.contains_key("seasons"));
    assert_eq!(predict.parent, fit.id);
    assert!(predict.attributes["horizon"].as_i64().unwrap() >= 1);
    assert_eq!(plan.parent, root.id);
    assert_eq!(plan.attributes["metric"], "tweets");
    assert_eq!(plan.attributes["quantile"], 0.9);
    assert_eq!(plan.attributes["desired"], root.attributes["desired"]);
    assert!(plan.attributes["reason"].as_str().unwrap().contains("pods"));

    // A request is a trace of its own naming the published decisions it read (the test's
    // polls before the first decision are answered 503 and traced too: take one answered).
    let request = all
        .iter()
        .find(|s| {
            s.name == "request"
                && s.attributes.contains_key("metric")
                && s.attributes.get("http.status_code") == Some(&200.into())
        })
        .unwrap();
    assert!(request.parent.is_empty());
    assert_eq!(request.attributes["metric"], "prescale_replicas");
    assert_eq!(request.attributes["http.status_code"], 200);
    assert_eq!(request.attributes["http.method"], "GET");
    assert_eq!(
        request.attributes["http.route"],
        "/apis/external.metrics.k8s.io/v1beta1/namespaces/{namespace}/{metric}"
    );
    let made_at = &request.attributes["decision.made_at"];
    assert!(
        all.iter()
            .any(|s| s.name == "publish" && &s.attributes["decision.made_at"] == made_at),
        "no publish span with decision.made_at {made_at}"
    );

    // The collector goes away: requests are answered as fast, failures are counted.
    drop(receiver);
    let mut slowest = Duration::ZERO;
    for _ in 0..30 {
        let (code, _, took) = curl(http, VALUES);
        assert_eq!(code, 200, "{}", serve_log());
        slowest = slowest.max(took);
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        slowest < Duration::from_millis(500),
        "a request took {slowest:?}"
    );
    let failures = || {
        curl(http, "/metrics")
            .1
            .lines()
            .find_map(|l| l.strip_prefix("prescale_trace_export_failures_total "))
            .and_then(|v| v.trim().parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    wait_until("failed exports counted", Duration::from_secs(20), || {
        failures() > 0.0
    });
    assert_eq!(curl(http, "/healthz").0, 200);

    // It comes back: spans flow again.
    let before = spans(&out).len();
    let _receiver = Receiver::start(otlp, &out);
    wait_until(
        "spans after the collector is back",
        Duration::from_secs(20),
        || spans(&out).len() > before,
    );
}

#[test]
fn an_offline_backtest_is_one_trace_of_fits() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("spans.jsonl");
    let otlp = free_port();
    let _receiver = Receiver::start(otlp, &out);
    let status = prescale()
        .args([
            "backtest",
            "--model",
            "seasonal-naive,naive",
            "--horizon",
            "24",
            "--windows",
            "3",
            "--input",
        ])
        .arg(common::dataset("nyc_taxi.csv"))
        .env(
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            format!("http://127.0.0.1:{otlp}"),
        )
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    // The command flushes its spans before it exits.
    let all = spans(&out);
    let root = all
        .iter()
        .find(|s| s.name == "command")
        .expect("the command's span");
    assert!(root.parent.is_empty());
    assert_eq!(root.attributes["command"], "backtest");
    assert_eq!(root.resource["service.name"], "prescale");
    let windows: Vec<&Span> = all.iter().filter(|s| s.name == "backtest.window").collect();
    assert_eq!(windows.len(), 6, "3 windows of 2 models");
    for w in &windows {
        assert_eq!(
            (w.trace.as_str(), w.parent.as_str()),
            (root.trace.as_str(), root.id.as_str())
        );
        let fit = all
            .iter()
            .find(|s| s.name == "fit" && s.parent == w.id)
            .expect("a fit under each window");
        assert_eq!(fit.attributes["model"], w.attributes["model"]);
        assert!(all.iter().any(|s| s.name == "predict" && s.parent == w.id));
    }
}

#[test]
fn a_prometheus_query_is_a_span_with_its_promql_and_points() {
    let points: Vec<(i64, f64)> = (0..96)
        .map(|i| (1_700_000_000 + i * 300, 10.0 + (i % 12) as f64))
        .collect();
    let server = common::Prometheus::start(&[common::Backfill {
        metric: "load",
        labels: r#"service="api""#,
        points,
    }]);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("spans.jsonl");
    let otlp = free_port();
    let _receiver = Receiver::start(otlp, &out);
    let run = prescale()
        .args([
            "forecast",
            "--model",
            "naive",
            "--horizon",
            "4",
            "--prometheus",
            &server.url,
        ])
        .args([
            "--query",
            r#"sum(load{service="api"})"#,
            "--start",
            "1700000000",
        ])
        .args(["--end", "1700028500", "--step", "5m"])
        .env(
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            format!("http://127.0.0.1:{otlp}"),
        )
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let all = spans(&out);
    let root = all
        .iter()
        .find(|s| s.name == "command")
        .expect("the command's span");
    assert_eq!(root.attributes["command"], "forecast");
    let query = all
        .iter()
        .find(|s| s.name == "prometheus.query")
        .expect("the query's span");
    assert_eq!(
        (query.trace.as_str(), query.parent.as_str()),
        (root.trace.as_str(), root.id.as_str())
    );
    assert_eq!(query.attributes["promql"], r#"sum(load{service="api"})"#);
    assert_eq!(query.attributes["step_seconds"], 300);
    assert_eq!(query.attributes["series"], 1);
    assert_eq!(query.attributes["points"], 96);
    assert_eq!(query.attributes["retries"], 0);
    assert!(query.attributes["start"]
        .as_str()
        .unwrap()
        .contains("2023-11-14T22:13:20"));
}
