//! `prescale serve` under load, measured: `cargo bench --bench serve`.
//!
//! 1. A full refresh (read + fit + plan) of 1,000 file-backed metrics with `ets`, timed, and
//!    the cost of one `auto` refresh on a sample of them.
//! 2. `GET` of one metric value with 1,000 workloads published, by `wrk` (Debian) on loopback
//!    for 10 s at 32 connections, beside a bare hyper server answering a constant body of the
//!    same size on the same machine (the limit here): requests/s, p50/p99 latency, and the
//!    ratio, over plain HTTP (TLS is not measured here). Then the same two at a fixed offered
//!    load of 20,000 requests/s with `oha -q` (`cargo install oha`), where latency is the
//!    server's rather than the queue's.
//! 3. The process's resident memory (server, the bench's own data and all) around that load.
//!
//! Without `--bench` (as `cargo test --all-targets` runs bench targets) it only says so and
//! exits: this is a measurement, not a test.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use prescale::series::Series;
use prescale::serve::api::{router, Access, AppState};
use prescale::serve::engine::{wall_clock, Engine};
use prescale::serve::listener::{serve, Limits};
use prescale::serve::snapshot::{Published, Snapshot};
use prescale::serve::telemetry::Telemetry;
use prescale::serve::{Overrides, ServeConfig};
use prescale::source::{self, LoadOptions};

const METRICS: usize = 1000;

fn write_csv(path: &Path, series: &Series, scale: f64) {
    let mut text = String::from("timestamp,value\n");
    for (t, v) in series.timestamps().zip(series.values()) {
        text.push_str(&format!("{},{}\n", t / 1000, v * scale));
    }
    std::fs::write(path, text).expect("write a trace");
}

/// A configuration of `n` workloads, each one metric read from its own file: the bundled
/// AMZN trace's last 14 days, scaled differently per workload.
fn config(dir: &Path, n: usize, model: &str, port: u16) -> ServeConfig {
    let amzn = source::load(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("datasets/Twitter_volume_AMZN.csv"),
        &LoadOptions::default(),
    )
    .expect("bundled data")
    .remove(0);
    let last = amzn.slice(amzn.len() - 288 * 14..amzn.len());
    let mut yaml = format!("insecureHttp: true\nlisten: {{https: 127.0.0.1:{port}}}\nworkloads:\n");
    for i in 0..n {
        let path = dir.join(format!("w{i}.csv"));
        if !path.exists() {
            write_csv(&path, &last, 1.0 + (i % 97) as f64 / 10.0);
        }
        yaml.push_str(&format!(
            "  - workload: w{i}\n    namespace: bench\n    maxReplicas: 500\n    startupSeconds: 120\n    metrics:\n      - name: load\n        file: {}\n        history: 7d\n        horizon: 1h\n        model: {model}\n        capacityPerReplica: 20\n",
            path.display()
        ));
    }
    ServeConfig::from_yaml(&yaml, &Overrides::default()).expect("a valid benchmark config")
}

/// Runs one full refresh; returns the snapshot and the seconds it took.
fn refresh(config: ServeConfig) -> (Snapshot, f64) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let mut engine = Engine::new(Arc::new(config), None)
        .map_err(|r| r.0)
        .expect("engine");
    let telemetry = Telemetry::default();
    let started = Instant::now();
    let snapshot =
        runtime.block_on(engine.refresh(wall_clock(), &telemetry, &Snapshot::empty(vec![])));
    (snapshot, started.elapsed().as_secs_f64())
}

struct Wrk {
    rps: f64,
    p50_ms: f64,
    p99_ms: f64,
}

fn wrk(url: &str) -> Option<Wrk> {
    let out = Command::new("wrk")
        .args(["-t2", "-c32", "-d10s", "--latency", url])
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let millis = |v: &str| -> Option<f64> {
        let v = v.trim();
        if let Some(us) = v.strip_suffix("us") {
            us.parse::<f64>().ok().map(|x| x / 1000.0)
        } else if let Some(ms) = v.strip_suffix("ms") {
            ms.parse().ok()
        } else {
            v.strip_suffix('s')?.parse::<f64>().ok().map(|x| x * 1000.0)
        }
    };
    let field = |prefix: &str| {
        text.lines()
            .find(|l| l.trim_start().starts_with(prefix))
            .and_then(|l| l.split_whitespace().nth(1))
            .map(str::to_string)
    };
    Some(Wrk {
        rps: field("Requests/sec:")?.parse().ok()?,
        p50_ms: millis(&field("50%")?)?,
        p99_ms: millis(&field("99%")?)?,
    })
}

/// Latency at a fixed offered load (20,000 requests/s) with `oha -q`, where `wrk` measures at
/// saturation (where queueing, not the server, sets the tail). `None` when oha is absent.
fn oha_at_rate(url: &str, rate: u32) -> Option<Wrk> {
    let out = Command::new("oha")
        .args([
            "-z",
            "10s",
            "-c",
            "32",
            "--no-tui",
            "--output-format",
            "json",
        ])
        .args(["-q", &rate.to_string(), url])
        .output()
        .ok()?;
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
    let ms = |key: &str| {
        report["latencyPercentiles"][key]
            .as_f64()
            .map(|s| s * 1000.0)
    };
    Some(Wrk {
        rps: report["summary"]["requestsPerSec"].as_f64()?,
        p50_ms: ms("p50")?,
        p99_ms: ms("p99")?,
    })
}

/// A bare hyper server answering `body` to every request: the most this machine serves.
async fn constant(listener: tokio::net::TcpListener, body: &'static str) {
    use hyper_util::rt::{TokioExecutor, TokioIo};
    use hyper_util::server::conn::auto;
    loop {
        let Ok((tcp, _)) = listener.accept().await else {
            continue;
        };
        tokio::spawn(async move {
            let service = hyper::service::service_fn(|_req| async move {
                Ok::<_, Infallible>(
                    http::Response::builder()
                        .header("content-type", "application/json")
                        .body(http_body_util_full(body))
                        .expect("a response"),
                )
            });
            let _ = auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(tcp), service)
                .await;
        });
    }
}

fn http_body_util_full(body: &'static str) -> axum::body::Body {
    axum::body::Body::from(body)
}

fn rss_kb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        println!("serve benchmark: run with `cargo bench --bench serve`");
        return;
    }
    let dir = std::env::temp_dir().join("prescale-serve-bench");
    std::fs::create_dir_all(&dir).expect("a bench folder");

    // 1. Refresh costs.
    let (snapshot, seconds) = refresh(config(&dir, METRICS, "ets", 0));
    println!(
        "refresh of {METRICS} file-backed metrics (7 days of 5-minute history each, ets): {seconds:.1} s, {} decisions",
        snapshot.workloads.len()
    );
    let sample = 20;
    let (_, auto_seconds) = refresh(config(&dir, sample, "auto", 0));
    println!(
        "refresh of {sample} metrics with auto: {auto_seconds:.1} s ({:.2} s per metric; {METRICS} would take about {:.0} s on this machine)",
        auto_seconds / sample as f64,
        auto_seconds / sample as f64 * METRICS as f64
    );

    // 2. Serving.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let namespaces = vec!["bench".to_string()];
    let state = Arc::new(AppState::new(
        Published::new(snapshot, namespaces, 15),
        Access::default(),
    ));
    let (stop_tx, stop) = tokio::sync::watch::channel(false);
    let (api, bare) = runtime.block_on(async {
        let api = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let bare = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        (api, bare)
    });
    let api_addr: SocketAddr = api.local_addr().expect("address");
    let bare_addr: SocketAddr = bare.local_addr().expect("address");
    let path = "/apis/external.metrics.k8s.io/v1beta1/namespaces/bench/prescale_replicas?labelSelector=workload%3Dw500";
    let sample_body: &'static str = Box::leak(
        runtime
            .block_on(async {
                use tower::ServiceExt as _;
                let response = router(state.clone())
                    .oneshot(
                        http::Request::get(path)
                            .body(axum::body::Body::empty())
                            .expect("a request"),
                    )
                    .await
                    .expect("a response");
                axum::body::to_bytes(response.into_body(), 1 << 20)
                    .await
                    .expect("a body")
            })
            .iter()
            .map(|&b| b as char)
            .collect::<String>()
            .into_boxed_str(),
    );
    runtime.spawn(serve(
        api,
        None,
        router(state.clone()),
        Limits::default(),
        stop.clone(),
    ));
    runtime.spawn(constant(bare, sample_body));
    std::thread::sleep(Duration::from_millis(200));
    let before = rss_kb();
    let ours = wrk(&format!("http://{api_addr}{path}"));
    let limit = wrk(&format!("http://{bare_addr}/"));
    let after = rss_kb();
    match (ours, limit) {
        (Some(o), Some(l)) => {
            println!("| server | requests/s | p50 | p99 |");
            println!("|---|---|---|---|");
            println!(
                "| prescale serve, GET of one value ({METRICS} workloads published) | {:.0} | {:.3} ms | {:.3} ms |",
                o.rps, o.p50_ms, o.p99_ms
            );
            println!(
                "| bare hyper, the same body as a constant | {:.0} | {:.3} ms | {:.3} ms |",
                l.rps, l.p50_ms, l.p99_ms
            );
            println!("throughput ratio: {:.2}", o.rps / l.rps);
        }
        _ => println!("wrk is not installed (apt-get install wrk): no load figures"),
    }
    let rate = 20_000;
    match (
        oha_at_rate(&format!("http://{api_addr}{path}"), rate),
        oha_at_rate(&format!("http://{bare_addr}/"), rate),
    ) {
        (Some(o), Some(l)) => {
            println!("at a fixed {rate} requests/s (oha -q, 32 connections, 10 s):");
            println!("| server | requests/s | p50 | p99 |");
            println!("|---|---|---|---|");
            println!(
                "| prescale serve | {:.0} | {:.3} ms | {:.3} ms |",
                o.rps, o.p50_ms, o.p99_ms
            );
            println!(
                "| bare hyper | {:.0} | {:.3} ms | {:.3} ms |",
                l.rps, l.p50_ms, l.p99_ms
            );
        }
        _ => println!("oha is not installed (cargo install oha): no fixed-rate figures"),
    }
    println!("resident memory of this process (server, bench and all): {before} kB before the load, {after} kB after");
    let _ = stop_tx.send(true);
}
