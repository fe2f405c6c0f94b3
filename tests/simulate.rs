//! `prescale simulate` on a real trace, through the built binary, and its errors.

use crate::common::dataset;
use assert_cmd::Command;

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
        cmd.arg(name);
        // An empty value marks a switch such as --counter.
        if !value.is_empty() {
            cmd.arg(value);
        }
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
fn a_counter_trace_is_replayed_as_its_rate() {
    // The tweet counts summed into a counter, as Prometheus would scrape it, with one reset.
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(dataset("Twitter_volume_AMZN.csv")).unwrap();
    let mut total = 0.0;
    let mut lines = vec!["timestamp,value".to_string()];
    for (i, line) in text.lines().skip(1).enumerate() {
        let (time, value) = line.split_once(',').unwrap();
        total += value.parse::<f64>().unwrap();
        if i == 9000 {
            total = value.parse::<f64>().unwrap(); // the process restarted
        }
        lines.push(format!("{time},{total}"));
    }
    let input = dir.path().join("counter.csv");
    std::fs::write(&input, lines.join("\n")).unwrap();
    let run = |extra: &[(&str, &str)]| {
        let out = simulate_on(&input, dir.path(), extra).output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    // The rate is per second, so the capacity per pod is chosen from the data.
    let as_rate = run(&[("--counter", ""), ("--capacity", "auto")]);
    let rows: Vec<Vec<String>> = as_rate
        .lines()
        .skip(1)
        .map(|l| l.split(',').map(String::from).collect())
        .collect();
    assert_eq!(rows.len(), 3);
    for r in &rows {
        let under: f64 = r[1].parse().unwrap();
        assert!((0.0..100.0).contains(&under), "{r:?}");
        // The reset became one rate sample, not a huge negative one: no fit failed on it.
        assert_eq!(r[15], "0", "{r:?}");
    }
    let replay = std::fs::read_to_string(dir.path().join("replay.csv")).unwrap();
    // The first sample has no rate, so the trace is one step shorter.
    assert_eq!(replay.lines().count() - 1, 15_831 - 1 - 20 * 288);
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

#[test]
fn the_rate_oracle_is_a_labelled_reference_row() {
    let dir = tempfile::tempdir().unwrap();
    let out = simulate(
        dir.path(),
        &[("--policy", "reactive"), ("--rate-oracle", "")],
    )
    .output()
    .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let stdout = String::from_utf8(out.stdout).unwrap();
    let rows: Vec<Vec<&str>> = stdout
        .lines()
        .skip(1)
        .map(|l| l.split(',').collect())
        .collect();
    let policies: Vec<&str> = rows.iter().map(|r| r[0]).collect();
    assert_eq!(policies, ["reactive", "rate-oracle"]);
    // Knowing each step's level (not its noise), p90 leaves far fewer steps short than an
    // HPA a step behind.
    let under = |i: usize| rows[i][1].parse::<f64>().unwrap();
    assert!(under(1) < under(0) / 2.0, "{stdout}");
    let summary = std::fs::read_to_string(dir.path().join("summary.csv")).unwrap();
    assert_eq!(summary, stdout);
}

#[test]
fn the_frontier_sweeps_every_policy_on_the_taxi_trace() {
    // The bundled taxi trace (30-minute steps), its last ~35 days replayed: the reactive HPA
    // at six targets, predictive, hybrid and the rate reference at eight quantiles, and the
    // replay fed the future.
    let dir = tempfile::tempdir().unwrap();
    let out = simulate_on(
        &dataset("nyc_taxi.csv"),
        dir.path(),
        &[
            ("--capacity", "1000"),
            ("--startup", "5m"),
            ("--history", "14d"),
            ("--warmup", "180d"),
            ("--frontier", ""),
        ],
    )
    .output()
    .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let stdout = String::from_utf8(out.stdout).unwrap();
    let mut lines = stdout.lines();
    assert_eq!(
        lines.next().unwrap(),
        "policy,target_or_quantile,replica_hours,underprovisioned_pct,unserved_pct,slo_violation_minutes,trace"
    );
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    let number = |cell: &str| cell.parse::<f64>().unwrap();
    let of = |policy: &str| -> Vec<&Vec<&str>> { rows.iter().filter(|r| r[0] == policy).collect() };
    assert_eq!(
        ["reactive", "predictive", "hybrid", "rate-oracle", "future"].map(|p| of(p).len()),
        [6, 8, 8, 8, 1],
        "{stdout}"
    );
    for r in &rows {
        let (under, unserved, minutes) = (number(r[3]), number(r[4]), number(r[5]));
        assert!(
            (0.0..=100.0).contains(&under) && (0.0..=100.0).contains(&unserved),
            "{r:?}"
        );
        // Unserved load only where steps were short, and SLO minutes are those steps' time.
        assert_eq!(unserved > 0.0, under > 0.0, "{r:?}");
        assert_eq!(minutes > 0.0, under > 0.0, "{r:?}");
    }
    // The HPA at a higher target keeps fewer pods: replica-hours fall as its target rises,
    // and it leaves more load unserved at 100% than at 50%.
    let hpa = of("reactive");
    let targets: Vec<f64> = hpa.iter().map(|r| number(r[1])).collect();
    assert_eq!(targets, [0.5, 0.6, 0.7, 0.8, 0.9, 1.0]);
    for w in hpa.windows(2) {
        assert!(number(w[0][2]) > number(w[1][2]), "{w:?}");
    }
    assert!(number(hpa[5][4]) > number(hpa[0][4]), "{hpa:?}");
    // Fed the future, nothing is short, and no replay at the same cost or less leaves less
    // load unserved.
    let future = of("future")[0];
    assert_eq!(number(future[4]), 0.0, "{future:?}");
    for r in rows.iter().filter(|r| number(r[2]) <= number(future[2])) {
        assert!(number(future[4]) <= number(r[4]), "{r:?} vs {future:?}");
    }
    // The comparison at each HPA target, and the verdict at 70%.
    assert!(stderr.contains("HPA at 70% ("), "{stderr}");
    assert!(
        stderr.contains("for the HPA's shortfall at target 70%"),
        "{stderr}"
    );
    let written = std::fs::read_to_string(dir.path().join("frontier.csv")).unwrap();
    assert_eq!(written, stdout);
    let comparison = std::fs::read_to_string(dir.path().join("frontier-comparison.csv")).unwrap();
    let mut comparison = comparison.lines();
    assert_eq!(
        comparison.next().unwrap(),
        "hpa_target,hpa_replica_hours,hpa_unserved_pct,policy,replica_hours_at_hpa_unserved,bound,saving_pct,unserved_pct_at_hpa_cost,hpa_slo_violation_minutes,replica_hours_at_hpa_slo_minutes,slo_bound,slo_saving_pct,trace"
    );
    // Four other curves at each of six targets.
    assert_eq!(comparison.count(), 6 * 4);
}

#[test]
fn frontiers_at_several_start_ups_run_in_parallel_and_match_single_runs() {
    // The taxi trace's last ten days at two start-ups in one parallel run, and the 5-minute
    // start-up alone: the parallel run's rows for it are the single run's, plus the column.
    let run = |startup_flag: (&str, &str)| {
        let dir = tempfile::tempdir().unwrap();
        let out = simulate_on(
            &dataset("nyc_taxi.csv"),
            dir.path(),
            &[
                ("--capacity", "1000"),
                startup_flag,
                ("--warmup", "205d"),
                ("--frontier", ""),
            ],
        )
        .output()
        .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(out.status.success(), "{stderr}");
        let comparison =
            std::fs::read_to_string(dir.path().join("frontier-comparison.csv")).unwrap();
        (String::from_utf8(out.stdout).unwrap(), comparison, stderr)
    };
    let (both, both_comparison, stderr) = run(("--startups", "1m,5m"));
    let (alone, _, _) = run(("--startup", "5m"));
    let mut lines = both.lines();
    assert_eq!(
        lines.next().unwrap(),
        "policy,target_or_quantile,replica_hours,underprovisioned_pct,unserved_pct,slo_violation_minutes,trace,startup_s"
    );
    let rows: Vec<&str> = lines.collect();
    let at = |s: &str| -> Vec<String> {
        rows.iter()
            .filter_map(|r| r.strip_suffix(&format!(",{s}")).map(str::to_string))
            .collect()
    };
    let (one_minute, five_minutes) = (at("60"), at("300"));
    assert_eq!(one_minute.len(), 31, "{both}");
    assert_eq!(one_minute.len() + five_minutes.len(), rows.len());
    // In the order given: all of 1m, then all of 5m.
    assert!(rows[..31].iter().all(|r| r.ends_with(",60")), "{both}");
    assert_eq!(five_minutes, alone.lines().skip(1).collect::<Vec<_>>());
    // The HPA does not forecast: a longer start-up never leaves it less load unserved.
    let unserved = |r: &String| r.split(',').nth(4).unwrap().parse::<f64>().unwrap();
    for (fast, slow) in one_minute
        .iter()
        .zip(&five_minutes)
        .filter(|(r, _)| r.starts_with("reactive,"))
    {
        assert!(unserved(fast) <= unserved(slow), "{fast} vs {slow}");
    }
    assert!(both_comparison
        .lines()
        .next()
        .unwrap()
        .ends_with(",trace,startup_s"));
    assert!(
        stderr.contains("2 run(s): 1 trace(s) × 2 start-up(s)"),
        "{stderr}"
    );
    assert!(
        stderr.contains("nyc_taxi (start-up 60 s): HPA at 70%"),
        "{stderr}"
    );
}
