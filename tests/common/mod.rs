//! Shared helpers for integration tests: bundled data and a real Prometheus server.

#![allow(dead_code)] // each test binary uses a different subset

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use prescale::series::Series;
use prescale::source::{self, LoadOptions};

/// A file under the repository's `datasets/`.
pub(crate) fn dataset(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("datasets")
        .join(name)
}

/// Loads a bundled single-series file.
pub(crate) fn load_dataset(name: &str) -> Series {
    source::load(&dataset(name), &LoadOptions::default())
        .expect("bundled dataset loads")
        .remove(0)
}

/// A free TCP port on 127.0.0.1 (bound, then released).
pub(crate) fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind an ephemeral port")
        .port()
}

/// One metric series to backfill: labels as `key="value"` text, then (unix seconds, value).
pub(crate) struct Backfill<'a> {
    pub metric: &'a str,
    pub labels: &'a str,
    pub points: Vec<(i64, f64)>,
}

/// Held while `promtool` writes blocks: see [`Prometheus::start`].
static PROMTOOL: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// A Prometheus server on 127.0.0.1, backfilled with `promtool`, killed when dropped (also
/// when the test panics).
pub(crate) struct Prometheus {
    child: Child,
    pub(crate) url: String,
    port: u16,
    dir: tempfile::TempDir,
}

impl Prometheus {
    /// Writes `series` as OpenMetrics, builds TSDB blocks with `promtool tsdb
    /// create-blocks-from openmetrics` (before the server starts, so they are visible at
    /// once), then starts `prometheus` on a free port with a 100-year retention (retention
    /// counts back from the newest block) and waits until `/-/ready` answers 200.
    pub(crate) fn start(series: &[Backfill]) -> Prometheus {
        for tool in ["prometheus", "promtool"] {
            assert!(
                Command::new(tool).arg("--version").output().is_ok(),
                "`{tool}` is not installed: run `apt-get install -y --no-install-recommends prometheus` (or `bash .ci/run`, which does)"
            );
        }
        let dir = tempfile::tempdir().expect("temp dir");
        let om = dir.path().join("backfill.om");
        let mut text = String::new();
        for metric in dedup(series.iter().map(|s| s.metric)) {
            text.push_str(&format!(
                "# HELP {metric} backfilled by prescale's tests\n# TYPE {metric} gauge\n"
            ));
            for s in series.iter().filter(|s| s.metric == metric) {
                for (t, v) in &s.points {
                    text.push_str(&format!("{}{{{}}} {} {}\n", s.metric, s.labels, v, t));
                }
            }
        }
        text.push_str("# EOF\n");
        std::fs::write(&om, text).expect("write OpenMetrics file");
        let data = dir.path().join("data");
        // promtool preallocates a 512 MiB chunk segment for every block it writes; tests that
        // backfill at once multiplied that, and filled a CI disk with little room to spare. One
        // backfill at a time keeps the peak at one segment (the file is trimmed on close).
        let _one_at_a_time = PROMTOOL
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let out = Command::new("promtool")
            .args(["tsdb", "create-blocks-from", "openmetrics", "-q"])
            .arg(&om)
            .arg(&data)
            .output()
            .expect("run promtool");
        assert!(
            out.status.success(),
            "promtool failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let config = dir.path().join("prometheus.yml");
        std::fs::write(&config, "global:\n  scrape_interval: 1h\n").expect("write config");
        let port = free_port();
        let child = spawn_prometheus(dir.path(), port);
        let server = Prometheus {
            child,
            url: format!("http://127.0.0.1:{port}"),
            port,
            dir,
        };
        server.wait_ready();
        server
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while http_status(self.port, "/-/ready") != Some(200) {
            assert!(Instant::now() < deadline, "prometheus not ready after 60 s");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Stops the server (its data stays for [`Prometheus::restart`]).
    pub(crate) fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Starts the server again on the same port and data.
    pub(crate) fn restart(&mut self) {
        self.stop();
        self.child = spawn_prometheus(self.dir.path(), self.port);
        self.wait_ready();
    }
}

/// `prometheus` on `port` over the data and config in `dir`.
fn spawn_prometheus(dir: &Path, port: u16) -> Child {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("prometheus.log"))
        .expect("log file");
    Command::new("prometheus")
        .arg(format!(
            "--config.file={}",
            dir.join("prometheus.yml").display()
        ))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.join("data").display()
        ))
        .arg("--storage.tsdb.retention.time=100y")
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("start prometheus")
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn dedup<'a>(names: impl Iterator<Item = &'a str>) -> Vec<&'a str> {
    let mut out: Vec<&str> = Vec::new();
    for n in names {
        if !out.contains(&n) {
            out.push(n);
        }
    }
    out
}

/// The HTTP status of a GET on 127.0.0.1:`port`, or `None` if nothing answers.
fn http_status(port: u16, path: &str) -> Option<u16> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").ok()?;
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).ok()?;
    std::str::from_utf8(&head[9..12]).ok()?.parse().ok()
}
