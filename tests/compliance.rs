//! `prescale compliance scan` against a real Prometheus whose series carry personal and
//! payment data in their labels: each kind is found where it is, and no value is printed.

use std::process::Command;

use crate::common::{Backfill, Prometheus};

#[test]
fn scan_finds_personal_and_payment_labels_in_prometheus_without_printing_them() {
    let points: Vec<(i64, f64)> = (0..48).map(|h| (1_700_000_000 + h * 3600, 5.0)).collect();
    let server = Prometheus::start(&[
        Backfill {
            metric: "http_requests",
            labels: r#"route="/cart",user_id="u-1842""#,
            points: points.clone(),
        },
        Backfill {
            metric: "http_requests",
            labels: r#"route="/pay",user_id="u-77""#,
            points: points.clone(),
        },
        Backfill {
            metric: "logins",
            labels: r#"client="10.1.2.3",who="ana@example.org""#,
            points: points.clone(),
        },
        Backfill {
            metric: "payments",
            labels: r#"order="1234567890123",ref="4111111111111111""#,
            points: points.clone(),
        },
        Backfill {
            metric: "visits",
            labels: r#"clinic="north",diagnosis="asthma""#,
            points: points.clone(),
        },
        Backfill {
            metric: "clean",
            labels: r#"route="/healthz",status="200""#,
            points,
        },
    ]);
    let run = |query: &str, json: bool| {
        let mut cmd = Command::new(assert_cmd::cargo::cargo_bin("prescale"));
        cmd.args([
            "compliance",
            "scan",
            "--prometheus",
            &server.url,
            "--query",
            query,
        ])
        .args([
            "--start",
            "1700000000",
            "--end",
            "1700169200",
            "--step",
            "1h",
        ]);
        if json {
            cmd.arg("--json");
        }
        cmd.output().unwrap()
    };
    let out = run(
        r#"{__name__=~"http_requests|logins|payments|visits|clean"}"#,
        false,
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stdout}");
    assert!(
        stderr.contains("5 label(s) carry personal, health or payment data"),
        "{stderr}"
    );
    for row in [
        ("http_requests", "user_id", "user-id", "2", "its key"),
        ("logins", "client", "ip-address", "1", "its values"),
        ("logins", "who", "email", "1", "its values"),
        ("payments", "ref", "card-number", "1", "its values"),
        ("visits", "diagnosis", "health", "1", "its key"),
    ] {
        assert!(
            stdout.lines().any(|l| {
                let cells: Vec<&str> = l.split_whitespace().collect();
                cells.len() >= 5
                    && (cells[0], cells[1], cells[2], cells[3]) == (row.0, row.1, row.2, row.3)
                    && l.ends_with(row.4)
            }),
            "no row {row:?} in:\n{stdout}"
        );
    }
    for secret in [
        "u-1842",
        "u-77",
        "10.1.2.3",
        "ana@example.org",
        "4111111111111111",
    ] {
        assert!(
            !stdout.contains(secret) && !stderr.contains(secret),
            "{secret} was printed"
        );
    }
    // JSON for machines: examples/compliance-sightings.json is this scan's output, which
    // the compliance examples below read.
    let all = run(
        r#"{__name__=~"http_requests|logins|payments|visits|clean"}"#,
        true,
    );
    let found: serde_json::Value = serde_json::from_slice(&all.stdout).unwrap();
    let example: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(SIGHTINGS).unwrap()).unwrap();
    assert_eq!(
        found, example,
        "{SIGHTINGS} is no longer what the scan writes"
    );
    // A clean selection passes.
    let json = run(r#"{__name__="payments"}"#, true);
    let found: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(found[0]["kind"], "card-number");
    assert_eq!(found[0]["label"], "ref");
    let clean = run(r#"{__name__="clean"}"#, false);
    assert!(
        clean.status.success(),
        "{}",
        String::from_utf8_lossy(&clean.stderr)
    );
    assert!(String::from_utf8_lossy(&clean.stdout).starts_with("no personal"));
}

/// What `prescale compliance scan --json` writes for the series above.
const SIGHTINGS: &str = "examples/compliance-sightings.json";
const PASS: &str = "examples/compliance-pass.yaml";
const FAIL: &str = "examples/compliance-fail.yaml";
const AUDIT: &str = "examples/compliance-audit.jsonl";

fn prescale() -> Command {
    Command::new(assert_cmd::cargo::cargo_bin("prescale"))
}

fn text(out: &[u8]) -> String {
    String::from_utf8_lossy(out).into_owned()
}

/// The manifests `deploy render` writes for the three-region example, for the RBAC control.
fn rendered_manifests(dir: &std::path::Path) -> std::path::PathBuf {
    let out = dir.join("rendered");
    let run = prescale()
        .args(["deploy", "render", "--clusters", "examples/clusters.yaml"])
        .args(["--image", "ghcr.io/example/prescale:0.1.0"])
        .args([
            "--requestheader-client-ca",
            "examples/certs/euw1-front-proxy-ca.crt",
            "--out",
        ])
        .arg(&out)
        .output()
        .unwrap();
    assert!(run.status.success(), "{}", text(&run.stderr));
    out
}

#[test]
fn the_passing_example_scores_100_on_every_framework() {
    let dir = tempfile::tempdir().unwrap();
    let manifests = rendered_manifests(dir.path());
    let out = prescale()
        .args([
            "compliance",
            "check",
            "--config",
            PASS,
            "--audit-log",
            AUDIT,
        ])
        .args(["--sightings", SIGHTINGS, "--json", "--manifests"])
        .arg(&manifests)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["score"], 100.0, "{report:#}");
    assert_eq!(report["findings"].as_array().unwrap().len(), 0);
    let frameworks: Vec<&str> = report["frameworks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["framework"].as_str().unwrap())
        .collect();
    assert_eq!(frameworks, ["GDPR", "HIPAA", "PCI", "SOX"]);
    assert_eq!(report["controls"].as_array().unwrap().len(), 14);
    // The example log is the one serve wrote loading this very file (its hash).
    let load = first_record(AUDIT.as_ref());
    let file = std::fs::read(PASS).unwrap();
    assert_eq!(
        load["after"],
        prescale::audit::sha256_hex(&file),
        "{PASS} changed since {AUDIT} was written: rerun serve on it (README)"
    );
}

#[test]
fn the_failing_example_is_below_threshold_with_a_plan_and_fix_repairs_what_a_machine_can() {
    let dir = tempfile::tempdir().unwrap();
    let plan = dir.path().join("plan.txt");
    let out = prescale()
        .args([
            "compliance",
            "check",
            "--config",
            FAIL,
            "--sightings",
            SIGHTINGS,
        ])
        .arg("--plan")
        .arg(&plan)
        .output()
        .unwrap();
    let stdout = text(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(3),
        "{stdout}\n{}",
        text(&out.stderr)
    );
    assert!(text(&out.stderr).contains("is below the threshold 90"));
    // Every framework fails something, each finding names its control and object.
    for needle in [
        "GDPR-01",
        "GDPR-02",
        "GDPR-03",
        "HIPAA-01",
        "HIPAA-02",
        "HIPAA-03",
        "SOX-01",
        "SOX-02",
        "SOX-03",
        "PCI-01",
        "PCI-02",
        "PCI-03",
        "label user_id of http_requests",
        "carol approved their own change",
        "needs a person",
    ] {
        assert!(stdout.contains(needle), "{needle} missing:\n{stdout}");
    }
    assert_eq!(
        std::fs::read_to_string(&plan).unwrap().trim_end(),
        stdout.trim_end()
    );

    // The diff, not applied.
    let copy = dir.path().join("serve.yaml");
    std::fs::copy(FAIL, &copy).unwrap();
    let fix = |apply: bool| {
        let mut cmd = prescale();
        cmd.args(["compliance", "fix", "--sightings", SIGHTINGS, "--config"])
            .arg(&copy);
        if apply {
            cmd.arg("--apply");
        }
        cmd.output().unwrap()
    };
    let shown = fix(false);
    assert!(shown.status.success(), "{}", text(&shown.stderr));
    let diff = text(&shown.stdout);
    for line in [
        "-insecureHttp: true                     # \"just for now\"",
        "+insecureHttp: false                    # \"just for now\"",
        "+  enabled: true",
        "+    days: 30",
        "+  auditRetentionDays: 2555",
        "+    hash: [who, client, user_id]",
        "+    drop: [diagnosis, ref]",
    ] {
        assert!(diff.contains(line), "{line} missing in:\n{diff}");
    }
    assert_eq!(
        std::fs::read_to_string(&copy).unwrap(),
        std::fs::read_to_string(FAIL).unwrap()
    );
    // Applied: the comments stay, serve still loads it, and the score rises.
    let applied = fix(true);
    assert!(applied.status.success(), "{}", text(&applied.stderr));
    let fixed = std::fs::read_to_string(&copy).unwrap();
    assert!(fixed.starts_with("# A serve configuration that fails"));
    let valid = prescale()
        .args(["serve", "--check", "--config"])
        .arg(&copy)
        .output()
        .unwrap();
    assert!(valid.status.success(), "{}", text(&valid.stderr));
    let before = score(FAIL.as_ref());
    let after = score(&copy);
    assert!(after > before, "{before} -> {after}");
    assert!(text(&applied.stderr).contains(&format!("score {before:.1} -> {after:.1}")));
    // Nothing left for a machine to do.
    let again = fix(false);
    assert!(text(&again.stdout).starts_with("nothing to fix automatically"));
}

/// The first record of an audit log.
fn first_record(log: &std::path::Path) -> serde_json::Value {
    let text = std::fs::read_to_string(log).unwrap();
    serde_json::from_str(text.lines().next().unwrap()).unwrap()
}

fn score(config: &std::path::Path) -> f64 {
    let out = prescale()
        .args([
            "compliance",
            "check",
            "--json",
            "--sightings",
            SIGHTINGS,
            "--config",
        ])
        .arg(config)
        .output()
        .unwrap();
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    report["score"].as_f64().unwrap()
}

#[test]
fn user_controls_join_the_built_in_ones_and_a_broken_one_names_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let controls = dir.path().join("controls");
    std::fs::create_dir(&controls).unwrap();
    std::fs::write(
        controls.join("ops_01.rego"),
        r#"package prescale.controls.ops_01

metadata := {"id": "OPS-01", "framework": "OPS", "severity": "medium",
  "title": "Every workload keeps at least two replicas", "checks": "minReplicas >= 2",
  "fix": "raise minReplicas"}

findings contains f if {
  some w in input.config.workloads
  object.get(w, "minReplicas", 1) < 2
  f := {"object": sprintf("workload %s/%s", [w.namespace, w.workload]), "message": "one pod is a single point of failure"}
}
"#,
    )
    .unwrap();
    let config = dir.path().join("serve.yaml");
    std::fs::write(
        &config,
        std::fs::read_to_string(PASS)
            .unwrap()
            .replace("minReplicas: 2", "minReplicas: 1"),
    )
    .unwrap();
    let out = prescale()
        .args([
            "compliance",
            "check",
            "--json",
            "--audit-log",
            AUDIT,
            "--controls",
        ])
        .arg(&controls)
        .arg("--config")
        .arg(&config)
        .output()
        .unwrap();
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["findings"][0]["control"], "OPS-01", "{report:#}");
    assert_eq!(report["findings"][0]["object"], "workload demo/taxi");
    let ops = report["frameworks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["framework"] == "OPS")
        .unwrap();
    assert_eq!(ops["score"], 0.0);
    // The built-in controls weigh 81, OPS-01 3: 81 of 84 is 96.4, above the threshold.
    assert_eq!(report["score"], 96.4);
    assert!(out.status.success());

    std::fs::write(
        controls.join("broken.rego"),
        "package prescale.controls.broken\n\nmetadata := {\"id\": \"B-1\",\n  \"title\": \n",
    )
    .unwrap();
    let out = prescale()
        .args(["compliance", "check", "--controls"])
        .arg(&controls)
        .arg("--config")
        .arg(&config)
        .output()
        .unwrap();
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("broken.rego") && stderr.contains(":5:"),
        "{stderr}"
    );
}

#[test]
fn notify_posts_the_json_report_to_a_webhook() {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let receiver = std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        stream
            .set_read_timeout(Some(std::time::Duration::from_secs(30)))
            .unwrap();
        let mut request = Vec::new();
        let mut buf = [0u8; 8192];
        loop {
            let n = stream.read(&mut buf).unwrap();
            request.extend_from_slice(&buf[..n]);
            let text = String::from_utf8_lossy(&request).to_string();
            if let Some((head, body)) = text.split_once("\r\n\r\n") {
                let length: usize = head
                    .lines()
                    .find_map(|l| {
                        l.to_lowercase()
                            .strip_prefix("content-length: ")
                            .map(|v| v.trim().parse().unwrap())
                    })
                    .unwrap_or(0);
                if body.len() >= length {
                    stream
                        .write_all(b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\n\r\n")
                        .unwrap();
                    return (head.to_string(), body.to_string());
                }
            }
            assert!(n > 0, "the connection closed early");
        }
    });
    let out = prescale()
        .args(["compliance", "check", "--config", FAIL, "--notify"])
        .arg(format!("http://127.0.0.1:{port}/hooks/compliance"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    let (head, body) = receiver.join().unwrap();
    assert!(
        head.starts_with("POST /hooks/compliance HTTP/1.1"),
        "{head}"
    );
    let report: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(report["subject"], FAIL);
    assert!(report["score"].as_f64().unwrap() < 90.0);
    // A webhook nobody listens on is an error that says where it was posting.
    let closed = crate::common::free_port();
    let out = prescale()
        .args([
            "compliance",
            "check",
            "--config",
            PASS,
            "--audit-log",
            AUDIT,
            "--notify",
        ])
        .arg(format!("http://127.0.0.1:{closed}/"))
        .output()
        .unwrap();
    assert!(
        text(&out.stderr).contains("posting the report to"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn serve_scores_each_configuration_it_loads_and_records_who_changed_it() {
    use crate::serve::{authority, sample, wait_until, Server};
    use std::time::Duration;
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let (_, front_proxy_ca) = authority(dir.path(), "front-proxy-ca");
    let serving = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let (cert, key) = (dir.path().join("tls.crt"), dir.path().join("tls.key"));
    std::fs::write(&cert, serving.cert.pem()).unwrap();
    std::fs::write(&key, serving.signing_key.serialize_pem()).unwrap();
    let config = std::fs::read_to_string(PASS)
        .unwrap()
        .replace("127.0.0.1:6443", "127.0.0.1:HTTPS_PORT")
        .replace("127.0.0.1:9443", "127.0.0.1:GRPC_PORT")
        .replace("demo-output/compliance-state", &state.display().to_string())
        .replace("every: 15s", "every: 1s");
    let (cert, key, ca) = (
        cert.display().to_string(),
        key.display().to_string(),
        front_proxy_ca.display().to_string(),
    );
    let server = Server::start(
        dir.path(),
        &config,
        &[
            "--tls-cert",
            &cert,
            "--tls-key",
            &key,
            "--requestheader-client-ca",
            &ca,
        ],
    );
    let overall = r#"prescale_compliance_score{framework="all"}"#;
    wait_until("the compliance score", Duration::from_secs(60), || {
        sample(&server, overall).is_some()
    });
    assert_eq!(sample(&server, overall), Some(100.0), "{}", server.log());
    // The load was recorded with its change record, and the check reads that log.
    let load = first_record(&state.join("audit.jsonl"));
    assert_eq!(load["action"], "load");
    assert_eq!(load["annotations"]["approver"], "bob@example.org");
    assert_eq!(load["annotations"]["ticket"], "OPS-2291");

    // A self-approved change is reloaded, recorded, and scored lower (SOX-03 and SOX-04).
    let path = dir.path().join("serve.yaml");
    let changed = std::fs::read_to_string(&path)
        .unwrap()
        .replace("approver: bob@example.org", "approver: alice@example.org");
    std::fs::write(&path, changed).unwrap();
    wait_until(
        "a lower score after the reload",
        Duration::from_secs(60),
        || sample(&server, overall).is_some_and(|s| s < 100.0),
    );
    let sox = sample(&server, r#"prescale_compliance_score{framework="SOX"}"#).unwrap();
    // SOX weights: 10 + 5 + 5 + 3 = 23; SOX-03 (5) and SOX-04 (3) fail.
    assert_eq!(sox, 65.2, "{}", server.log());
    assert!(server.log().contains("approved their own change"));
}
