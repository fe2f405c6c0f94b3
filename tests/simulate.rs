//! `prescale simulate` on a real trace, through the built binary, and its errors.

mod common;

use assert_cmd::Command;
use common::dataset;

fn prescale() -> Command {
    Command::cargo_bin("prescale").expect("binary built")
}

/// Seasonal naive keeps the replay quick in a debug build; the model does not change what
/// is checked here (the columns, the files; the no-peeking rule is a unit test). `changes`
/// replace flags by name.
fn simulate(dir: &std::path::Path, changes: &[(&str, &str)]) -> Command {
    simulate_on(&dataset("Twitter_volume_AMZN.csv"), dir, changes)
}

fn simulate_on(
    input: &std::path::Path,
    dir: &std::path::Path,
    changes: &[(&str, &str)],
) -> Command {
    let mut flags = vec![
        ("--capacity", "20"),
        ("--startup", "2m"),
        ("--model", "seasonal-naive"),
        ("--history", "3d"),
        ("--warmup", "20d"),
        ("--refit-every", "1h"),
    ];
    for (name, value) in changes {
        match flags.iter_mut().find(|(n, _)| n == name) {
            Some(slot) => slot.1 = value,
            None => flags.push((name, value)),
        }
    }
    let mut cmd = prescale();
    cmd.args(["simulate", "--input"])
        .arg(input)
        .arg("--output")
        .arg(dir);
    for (name, value) in flags {
        cmd.args([name, value]);
    }
    cmd
}

#[test]
fn replays_a_real_trace_under_every_policy() {
    let dir = tempfile::tempdir().unwrap();
    let out = simulate(dir.path(), &[]).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let stdout = String::from_utf8(out.stdout).unwrap();
    let mut lines = stdout.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    assert_eq!(
        header[..6],
        [
            "policy",
            "underprovisioned_pct",
            "slo_violation_minutes",
            "replica_hours",
            "peak_replicas",
            "scaling_events"
        ]
    );
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    let policies: Vec<&str> = rows.iter().map(|r| r[0]).collect();
    assert_eq!(policies, ["reactive", "predictive", "hybrid"]);
    for r in &rows {
        assert_eq!(r.len(), header.len());
        let under: f64 = r[1].parse().unwrap();
        let hours: f64 = r[3].parse().unwrap();
        assert!((0.0..=100.0).contains(&under), "{r:?}");
        assert!(hours > 0.0, "{r:?}");
        assert!(["A", "B", "C", "D", "F"].contains(&r[11]), "{r:?}");
    }
    // The Twitter series has bursts no policy sees coming, so every policy is short some of
    // the time; the reactive HPA, always a step behind, the most.
    let under = |i: usize| rows[i][1].parse::<f64>().unwrap();
    assert!(under(0) > 0.0);
    assert!(
        under(2) <= under(0),
        "hybrid {} vs reactive {}",
        under(2),
        under(0)
    );

    let replay = std::fs::read_to_string(dir.path().join("replay.csv")).unwrap();
    let mut replay_lines = replay.lines();
    assert_eq!(
        replay_lines.next().unwrap(),
        "time,load,ready_reactive,replicas_reactive,ready_predictive,replicas_predictive,ready_hybrid,replicas_hybrid"
    );
    // 22 days at 5 minutes replayed after the 20-day warm-up of the 15,831-step trace.
    assert_eq!(replay_lines.count(), 15_831 - 20 * 288);
    let summary = std::fs::read_to_string(dir.path().join("summary.csv")).unwrap();
    assert_eq!(summary, stdout);
}

#[test]
fn gaps_and_a_start_up_longer_than_the_refit_interval_are_handled() {
    // Every 7th row removed: regularized onto its 5-minute grid, the trace has gaps (NaN),
    // which no policy is scored on and the models interpolate.
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(dataset("Twitter_volume_AMZN.csv")).unwrap();
    let gappy: Vec<&str> = text
        .lines()
        .enumerate()
        .filter(|(i, _)| *i == 0 || i % 7 != 3)
        .map(|(_, l)| l)
        .collect();
    let input = dir.path().join("gappy.csv");
    std::fs::write(&input, gappy.join("\n")).unwrap();
    let out = simulate_on(&input, dir.path(), &[("--startup", "3h"), ("--step", "5m")])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let stdout = String::from_utf8(out.stdout).unwrap();
    let header: Vec<&str> = stdout.lines().next().unwrap().split(',').collect();
    let fallbacks = header
        .iter()
        .position(|h| *h == "forecast_fallbacks")
        .unwrap();
    for row in stdout.lines().skip(1) {
        let cells: Vec<&str> = row.split(',').collect();
        // A 3-hour start-up needs a horizon past the 1-hour refit interval: it gets one.
        assert_eq!(cells[fallbacks], "0", "{row}");
    }
}

#[test]
fn bad_settings_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let out = simulate(dir.path(), &[("--capacity", "0"), ("--quantile", "1.5")])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("capacity per replica 0") && stderr.contains("quantile 1.5"),
        "{stderr}"
    );
    let out = simulate(dir.path(), &[("--warmup", "100d")])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("warm-up needs"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
