//! The audit log: the shipped example is what the code writes for a real replay through the
//! server's engine, `prescale audit verify` names the first bad record of each kind of
//! tampering, and a running `prescale serve` appends its decisions and configuration loads,
//! surviving a torn last line.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use prescale::audit::{self, AuditError, Broken, Problem, Record, VerifyOptions};
use prescale::serve::audit_trail::{AuditSettings, AuditTrail};
use prescale::serve::engine::Engine;
use prescale::serve::snapshot::Snapshot;
use prescale::serve::telemetry::Telemetry;
use prescale::serve::{Overrides, ServeConfig};

use crate::common::{self, free_port};

const EXAMPLE: &str = "examples/audit.jsonl";

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn prescale() -> Command {
    Command::new(assert_cmd::cargo::cargo_bin("prescale"))
}

/// The configuration of the replay, with the trace's file named as in the example.
fn replay_config(csv: &str) -> String {
    format!(
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
        file: {csv}
        step: 5m
        history: 3d
        refitEvery: 1h
        horizon: 1h
        model: seasonal-naive
        capacityPerReplica: 20
"
    )
}

/// Three days of the 5-minute AMZN trace as history, then three hours decided step by step by
/// the server's engine fed a growing file, each published decision audited as `serve` does,
/// with a refused reload half way.
fn replay_log(path: &Path) {
    let trace = common::load_dataset("Twitter_volume_AMZN.csv");
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("amzn.csv");
    let write_csv = |n: usize| {
        let mut text = String::from("timestamp,value\n");
        for (t, v) in trace
            .slice(0..n)
            .timestamps()
            .zip(trace.slice(0..n).values())
        {
            text.push_str(&format!("{},{v}\n", t / 1000));
        }
        std::fs::write(&csv, text).unwrap();
    };
    let warmup = 288 * 3;
    write_csv(warmup);
    let config = ServeConfig::from_yaml(
        &replay_config(&csv.display().to_string()),
        &Overrides::default(),
    )
    .unwrap();
    let mut engine = Engine::new(Arc::new(config), None)
        .map_err(|r| r.0)
        .unwrap();
    let settings = AuditSettings {
        file: path.to_path_buf(),
        rotate_bytes: 1 << 20,
    };
    let trail = AuditTrail::open(&settings, &Snapshot::empty(vec![]), 0).unwrap();
    // The file as a user would keep it beside the trace, so the example does not name a
    // temporary folder.
    let shown = replay_config("amzn.csv");
    let start = trace.timestamp(warmup);
    trail
        .append_blocking(vec![trail.configuration(
            "load",
            Path::new("serve.yaml"),
            Some(shown.as_bytes()),
            None,
            start,
        )])
        .unwrap();
    let telemetry = Telemetry::default();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut snapshot = Snapshot::empty(vec![]);
    for k in warmup..warmup + 36 {
        write_csv(k);
        let now = trace.timestamp(k);
        snapshot = runtime.block_on(engine.refresh(now, &telemetry, &snapshot));
        let entries = trail.decisions(&snapshot);
        assert_eq!(entries.len(), 1, "one decision per refresh");
        trail.append_blocking(entries).unwrap();
        if k == warmup + 18 {
            let bad = shown.replace("maxReplicas: 100", "maxReplicas: many");
            trail
                .append_blocking(vec![trail.configuration(
                    "reload",
                    Path::new("serve.yaml"),
                    Some(bad.as_bytes()),
                    Some(
                        "workloads[0].maxReplicas: expected a whole number, got String(\"many\")"
                            .into(),
                    ),
                    now + 1000,
                )])
                .unwrap();
        }
    }
}

#[test]
fn the_example_log_is_what_a_real_replay_writes_and_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    replay_log(&path);
    let made = std::fs::read_to_string(&path).unwrap();
    let example = root().join(EXAMPLE);
    if std::env::var_os("PRESCALE_WRITE_EXAMPLES").is_some() {
        std::fs::write(&example, &made).unwrap();
    }
    let shipped = std::fs::read_to_string(&example).unwrap();
    assert_eq!(
        shipped, made,
        "{EXAMPLE} is not what the replay writes (PRESCALE_WRITE_EXAMPLES=1 regenerates it)"
    );
    let v = audit::verify(&[example], &VerifyOptions::default()).unwrap();
    assert_eq!((v.first_seq, v.last_seq), (1, 38));
    let records: Vec<Record> = made
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(records.iter().filter(|r| r.action == "publish").count(), 36);
    // Each decision's `before` is the previous decision's `after`.
    let publishes: Vec<&Record> = records.iter().filter(|r| r.action == "publish").collect();
    for pair in publishes.windows(2) {
        assert_eq!(pair[1].before, pair[0].after);
    }
    let refused = records.iter().find(|r| r.action == "reload").unwrap();
    assert_eq!(refused.outcome, audit::Outcome::Failure);
    assert_eq!(refused.before, records[0].after);
}

/// `prescale audit verify` on `lines` written to a file: its exit status and output.
fn verify_cli(dir: &Path, name: &str, text: &str) -> (bool, String) {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    let out = prescale()
        .args(["audit", "verify", "--log"])
        .arg(&path)
        .output()
        .unwrap();
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), all)
}

#[test]
fn verify_names_the_first_bad_record_of_each_kind_of_tampering() {
    let dir = tempfile::tempdir().unwrap();
    let shipped = std::fs::read_to_string(root().join(EXAMPLE)).unwrap();
    let lines: Vec<&str> = shipped.lines().collect();
    let join = |l: &[String]| l.join("\n") + "\n";
    let owned: Vec<String> = lines.iter().map(|s| s.to_string()).collect();

    let (ok, out) = verify_cli(dir.path(), "good.jsonl", &shipped);
    assert!(ok, "{out}");
    assert!(out.starts_with("ok: 38 record(s), seq 1 to 38"), "{out}");

    let mut edited = owned.clone();
    edited[9] = edited[9].replacen("\"desired\":\"", "\"desired\":\"9", 1);
    assert_ne!(edited[9], owned[9]);
    let (ok, out) = verify_cli(dir.path(), "edited.jsonl", &join(&edited));
    assert!(
        !ok && out.contains("line 10: record seq 10: edited"),
        "{out}"
    );

    let mut deleted = owned.clone();
    deleted.remove(20);
    let (ok, out) = verify_cli(dir.path(), "deleted.jsonl", &join(&deleted));
    assert!(
        !ok && out.contains("record seq 21: missing: the next record is seq 22"),
        "{out}"
    );

    let mut reordered = owned.clone();
    reordered.swap(4, 5);
    let (ok, out) = verify_cli(dir.path(), "reordered.jsonl", &join(&reordered));
    assert!(
        !ok && out.contains("record seq 5: missing: the next record is seq 6"),
        "{out}"
    );

    // An inserted record, well formed and chained to the one before it.
    let mut fake: Record = serde_json::from_str(&owned[30]).unwrap();
    fake.annotations.insert("desired".into(), "1".into());
    fake.hash = fake.compute_hash();
    let mut inserted = owned.clone();
    inserted.insert(30, serde_json::to_string(&fake).unwrap());
    let (ok, out) = verify_cli(dir.path(), "inserted.jsonl", &join(&inserted));
    assert!(
        !ok && out.contains("record seq 31: out of order: found after seq 31"),
        "{out}"
    );

    let torn = format!("{}{}", join(&owned[..37]), &owned[37][..40]);
    let (ok, out) = verify_cli(dir.path(), "torn.jsonl", &torn);
    assert!(
        !ok && out.contains("line 38: record seq 38: the last line is torn"),
        "{out}"
    );

    // Dropping the newest records is caught against the head printed before.
    let head = out_head(&shipped, dir.path());
    std::fs::write(dir.path().join("cut.jsonl"), join(&owned[..30])).unwrap();
    let out = prescale()
        .args(["audit", "verify", "--head", &head, "--log"])
        .arg(dir.path().join("cut.jsonl"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("is not in the log"));
}

fn out_head(text: &str, dir: &Path) -> String {
    let path = dir.join("head.jsonl");
    std::fs::write(&path, text).unwrap();
    let v = audit::verify(&[path], &VerifyOptions::default()).unwrap();
    v.head
}

fn wait_until(what: &str, limit: Duration, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn records(path: &Path) -> Vec<Record> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

#[test]
fn serve_appends_its_decisions_and_reloads_and_recovers_from_a_torn_line() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let config = dir.path().join("serve.yaml");
    let csv = common::dataset("Twitter_volume_AMZN.csv");
    let text = |max: &str| {
        format!(
            "insecureHttp: true
listen: {{https: 127.0.0.1:{}}}
stateDir: {}
refresh: {{every: 1s}}
workloads:
  - workload: tweets
    namespace: demo
    maxReplicas: {max}
    startupSeconds: 120
    metrics:
      - name: tweets
        file: {}
        history: 3d
        model: seasonal-naive
        capacityPerReplica: 20
",
            free_port(),
            state.display(),
            csv.display()
        )
    };
    std::fs::write(&config, text("100")).unwrap();
    let log = state.join("audit.jsonl");
    let start = || {
        prescale()
            .args(["serve", "--config"])
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.path().join("serve.log")).unwrap())
            .spawn()
            .unwrap()
    };
    let mut child = start();
    wait_until("a load and two decisions", Duration::from_secs(60), || {
        records(&log).len() >= 3
    });
    // The file did not change, so the decision is decided again at each refresh on the same
    // data: each is recorded, chained to the one before.
    std::fs::write(&config, text("many")).unwrap();
    wait_until("the refused reload", Duration::from_secs(30), || {
        records(&log).iter().any(|r| r.action == "reload")
    });
    std::fs::write(&config, text("50")).unwrap();
    wait_until("the applied reload", Duration::from_secs(30), || {
        records(&log)
            .iter()
            .any(|r| r.action == "reload" && r.outcome == audit::Outcome::Success)
    });
    let _ = child.kill();
    let _ = child.wait();
    let all = records(&log);
    assert_eq!(all[0].action, "load");
    let reloads: Vec<&Record> = all.iter().filter(|r| r.action == "reload").collect();
    assert_eq!(reloads[0].outcome, audit::Outcome::Failure);
    assert!(reloads[0].annotations["problems"].contains("maxReplicas"));
    assert_eq!(reloads[0].before, all[0].after);
    // The applied reload follows the configuration in effect, not the refused one.
    assert_eq!(reloads[1].before, all[0].after);
    assert_ne!(reloads[1].after, all[0].after);
    assert!(all.iter().any(|r| r.action == "publish"
        && r.object.name == "tweets"
        && r.object.namespace.as_deref() == Some("demo")));
    let v = audit::verify(std::slice::from_ref(&log), &VerifyOptions::default()).unwrap();
    assert_eq!(v.last_seq as usize, all.len());

    // A crash mid-write: the torn line is reported by verify, then moved aside on restart.
    let mut bytes = std::fs::read(&log).unwrap();
    bytes.extend_from_slice(b"{\"kind\":\"Event\",\"apiVer");
    std::fs::write(&log, &bytes).unwrap();
    match audit::verify(std::slice::from_ref(&log), &VerifyOptions::default()) {
        Err(AuditError::Broken(Broken {
            problem: Problem::Torn { bytes: 23 },
            ..
        })) => {}
        other => panic!("the torn line was not reported: {other:?}"),
    }
    let before = all.len();
    let mut child = start();
    wait_until("the recovery record", Duration::from_secs(60), || {
        records(&log).len() > before + 1
    });
    let _ = child.kill();
    let _ = child.wait();
    let after = records(&log);
    assert_eq!(after[before].action, "recover");
    assert_eq!(after[before].annotations["tornBytes"], "23");
    let moved: Vec<PathBuf> = std::fs::read_dir(&state)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().contains(".torn-"))
        .collect();
    assert_eq!(moved.len(), 1);
    // A process killed mid-append can leave a torn line of its own; whole records verify.
    let text = std::fs::read_to_string(&log).unwrap();
    let whole: String = text
        .lines()
        .filter(|l| serde_json::from_str::<Record>(l).is_ok())
        .map(|l| format!("{l}\n"))
        .collect();
    let path = dir.path().join("whole.jsonl");
    std::fs::write(&path, whole).unwrap();
    audit::verify(&[path], &VerifyOptions::default()).unwrap();
}
