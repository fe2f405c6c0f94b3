//! The built `prescale` binary, run as a user runs it.

use crate::common;

use crate::common::dataset;
use assert_cmd::Command;

fn prescale() -> Command {
    Command::cargo_bin("prescale").expect("binary built")
}

fn stdout_of(cmd: &mut Command) -> String {
    let out = cmd.output().expect("runs");
    assert!(
        out.status.success(),
        "failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8")
}

/// Runs a command expected to fail and returns its stderr.
fn failure_of(cmd: &mut Command) -> String {
    let out = cmd.output().expect("runs");
    assert!(
        !out.status.success(),
        "expected failure, got: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8(out.stderr).expect("utf-8")
}

#[test]
fn report_writes_one_self_contained_page_per_run() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("report.html");
    let out = prescale()
        .args(["report", "--input"])
        .arg(common::dataset("Twitter_volume_AMZN.csv"))
        .arg(common::dataset("nyc_taxi.csv"))
        .args([
            "--models",
            "seasonal-naive,theta",
            "--replay-model",
            "seasonal-naive",
            "--replay",
            "3d",
            "--output",
        ])
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let html = std::fs::read_to_string(&path).unwrap();
    // Per trace: a backtest table, a forecast figure and a replay figure, the replay table,
    // the frontier figure and table.
    assert_eq!(html.matches("<svg").count(), 6);
    assert_eq!(html.matches("<h3>Scaling replay</h3>").count(), 2);
    assert_eq!(html.matches("<h3>Cost against shortfall</h3>").count(), 2);
    // The HPA's behavior in its own spelling, not Rust's debug output.
    assert!(html.contains("scale up to at most max(2 × current, 4)"));
    assert!(!html.contains("Policy {"));
    for text in [
        "Twitter_volume_AMZN",
        "nyc_taxi",
        "<td>theta</td>",
        "<td>hybrid</td>",
        "<td>rate-oracle (reference)</td>",
        "0.6 x (100 - waste %)",
        "prescale</dt>",
    ] {
        assert!(html.contains(text), "{text}");
    }
    // Self-contained: nothing to fetch, no script.
    assert!(!html.contains("<script") && !html.contains("src=\"http"));
}

#[test]
fn demo_scores_the_last_day_and_writes_the_forecast() {
    let dir = tempfile::tempdir().unwrap();
    let stdout = stdout_of(prescale().args(["demo", "--output"]).arg(dir.path()));
    assert!(stdout.contains("nyc_taxi.csv"), "{stdout}");
    for model in prescale::model::names() {
        assert!(
            stdout.lines().any(|l| l.starts_with(model)),
            "{model} row missing:\n{stdout}"
        );
    }
    assert!(stdout.contains("MASE"));
    // auto says what it chose and why.
    assert!(stdout.contains("using auto"), "{stdout}");
    assert!(stdout.contains("validation MASE"), "{stdout}");
    // The replica plan, with its reason, and the replay table of the three policies and the
    // reference.
    assert!(stdout.contains("pods now: forecast p90 of "), "{stdout}");
    // And how to serve such decisions from the bundled data.
    assert!(
        stdout.contains("prescale serve --config examples/serve.yaml"),
        "{stdout}"
    );
    for policy in [
        "reactive",
        "predictive",
        "hybrid",
        "rate-oracle (reference)",
    ] {
        assert!(
            stdout.lines().any(|l| l.trim_start().starts_with(policy)),
            "{policy} row missing:\n{stdout}"
        );
    }
    // The verdict at the HPA's 70% target, with a measured figure.
    let verdict = stdout
        .lines()
        .find(|l| l.contains("for the HPA's shortfall at target 70%") && l.contains("predictive"))
        .unwrap_or_else(|| panic!("no verdict:\n{stdout}"));
    assert!(
        verdict.contains("% fewer replica-hours")
            || verdict.contains("% more replica-hours")
            || verdict.contains("cannot leave that little unserved"),
        "{verdict}"
    );
    let html = std::fs::read_to_string(dir.path().join("report.html")).unwrap();
    assert!(html.starts_with("<!DOCTYPE html>") && html.matches("<svg").count() == 3);
    let csv = std::fs::read_to_string(dir.path().join("forecast.csv")).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    // auto's columns, then the actuals.
    assert!(
        lines[0].starts_with("timestamp,mean,lower_80,upper_80,lower_95,upper_95,"),
        "{}",
        lines[0]
    );
    assert!(lines[0].ends_with(",actual"), "{}", lines[0]);
    assert_eq!(lines.len(), 49);
    assert!(
        lines[1].starts_with("2015-01-31T00:00:00Z,"),
        "{}",
        lines[1]
    );
}

#[test]
fn forecast_writes_csv_to_stdout() {
    let stdout = stdout_of(
        prescale()
            .args(["forecast", "--input"])
            .arg(dataset("nyc_taxi.csv"))
            .args(["--horizon", "48", "--season", "336", "--level", "90"]),
    );
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines[0], "timestamp,mean,lower_90,upper_90");
    assert_eq!(lines.len(), 49);
    assert!(
        lines[1].starts_with("2015-02-01T00:00:00Z,"),
        "{}",
        lines[1]
    );
    // Seasonal naive with a weekly season repeats the value one week before each step.
    let taxi = common::load_dataset("nyc_taxi.csv");
    let first: f64 = lines[1].split(',').nth(1).unwrap().parse().unwrap();
    assert_eq!(first, taxi.values()[taxi.len() - 336]);
}

#[test]
fn forecast_writes_parquet_by_extension() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("f.parquet");
    prescale()
        .args(["forecast", "--input"])
        .arg(dataset("Twitter_volume_AMZN.csv"))
        .args(["--horizon", "288", "--output"])
        .arg(&out)
        .assert()
        .success();
    let df = prescale::source::table::read_table(&out).unwrap();
    assert_eq!(df.height(), 288);
    let names: Vec<String> = df
        .get_column_names()
        .iter()
        .map(|s| s.to_string())
        .collect();
    assert_eq!(
        names,
        [
            "timestamp",
            "mean",
            "lower_80",
            "upper_80",
            "lower_95",
            "upper_95"
        ]
    );
}

#[test]
fn errors_are_one_clear_line_and_a_failing_exit() {
    let err = failure_of(prescale().args(["forecast", "--input", "no/such.csv", "--horizon", "4"]));
    assert!(
        err.contains("no/such.csv") && err.contains("no such file"),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "{err}");

    let err = failure_of(
        prescale()
            .args(["forecast", "--input"])
            .arg(dataset("nyc_taxi.csv"))
            .args(["--horizon", "4", "--model", "oracle"]),
    );
    assert!(
        err.contains("unknown model \"oracle\"") && err.contains("seasonal-naive"),
        "{err}"
    );

    let err = failure_of(
        prescale()
            .args(["forecast", "--input"])
            .arg(dataset("nyc_taxi.csv"))
            .args(["--horizon", "4", "--level", "100"]),
    );
    assert!(err.contains("between 0 and 100"), "{err}");

    let dir = tempfile::tempdir().unwrap();
    let short = dir.path().join("short.csv");
    std::fs::write(&short, "ts,value\n0,1\n60,2\n").unwrap();
    let err = failure_of(
        prescale()
            .args(["forecast", "--horizon", "4", "--season", "24", "--input"])
            .arg(&short),
    );
    assert!(err.contains("needs at least 25 observed points"), "{err}");
}

#[test]
fn backtest_writes_the_documented_results_table() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("results.csv");
    let stdout = stdout_of(
        prescale()
            .args([
                "backtest",
                "--model",
                "naive,seasonal-naive",
                "--horizon",
                "48",
                "--windows",
                "3",
                "--input",
            ])
            .arg(dataset("nyc_taxi.csv"))
            .arg(dataset("Twitter_volume_AMZN.csv"))
            .arg("--output")
            .arg(&out),
    );
    assert!(
        stdout.lines().any(|l| l.starts_with("seasonal-naive")),
        "{stdout}"
    );
    let csv = std::fs::read_to_string(&out).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(
        lines[0],
        "series,model,window,origin,mae,rmse,smape,mase,coverage_80,msis_80,coverage_95,msis_95"
    );
    // 2 series x 2 models x 3 windows.
    assert_eq!(lines.len(), 1 + 12);
    // The last window of nyc_taxi starts one horizon before the end.
    assert!(
        csv.contains("nyc_taxi,seasonal-naive,2,2015-01-31T00:00:00Z,"),
        "{csv}"
    );
}

#[test]
fn a_saved_model_forecasts_without_its_input() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("taxi.json");
    let fitted = stdout_of(
        prescale()
            .args(["forecast", "--horizon", "24", "--season", "48", "--input"])
            .arg(dataset("nyc_taxi.csv"))
            .arg("--save-model")
            .arg(&model),
    );
    let loaded = stdout_of(
        prescale()
            .args(["forecast", "--horizon", "24", "--model-file"])
            .arg(&model),
    );
    assert_eq!(fitted, loaded);

    let err = failure_of(
        prescale()
            .args(["forecast", "--horizon", "24", "--model-file"])
            .arg(&model)
            .arg("--input")
            .arg(dataset("nyc_taxi.csv")),
    );
    assert!(err.contains("is a fitted model"), "{err}");

    std::fs::write(&model, "{ truncated").unwrap();
    let err = failure_of(
        prescale()
            .args(["forecast", "--horizon", "24", "--model-file"])
            .arg(&model),
    );
    assert!(err.contains("not a readable model file"), "{err}");
}

#[test]
fn prophet_flags_reach_the_model() {
    let dir = tempfile::tempdir().unwrap();
    let events = dir.path().join("events.csv");
    std::fs::write(
        &events,
        "name,start\nnew_year,2015-01-01T00:00:00Z\nthanksgiving,2014-11-27T00:00:00Z\n",
    )
    .unwrap();
    let out = stdout_of(
        prescale()
            .args([
                "forecast",
                "--model",
                "prophet",
                "--horizon",
                "4",
                "--input",
            ])
            .arg(dataset("nyc_taxi.csv"))
            .args(["--add-seasonality", "half_day:12h:2", "--events"])
            .arg(&events)
            .args(["--floor", "none", "--seed", "3"]),
    );
    let header = out.lines().next().unwrap();
    assert_eq!(
        header,
        "timestamp,mean,lower_80,upper_80,lower_95,upper_95,trend,daily,half_day,weekly,\
         new_year,thanksgiving"
    );
    assert_eq!(out.lines().count(), 5);

    let err = failure_of(
        prescale()
            .args([
                "forecast",
                "--model",
                "prophet",
                "--horizon",
                "4",
                "--input",
            ])
            .arg(dataset("nyc_taxi.csv"))
            .args(["--growth", "logistic", "--changepoint-prior-scale", "0"]),
    );
    assert!(err.contains("--growth logistic needs --cap"), "{err}");
    // Values that parse are the model's to check: its message names the setting.
    let err = failure_of(
        prescale()
            .args([
                "forecast",
                "--model",
                "prophet",
                "--horizon",
                "4",
                "--input",
            ])
            .arg(dataset("nyc_taxi.csv"))
            .args(["--changepoint-prior-scale", "0"]),
    );
    assert!(
        err.contains("changepoint_prior_scale must be a positive"),
        "{err}"
    );
    let err = failure_of(
        prescale()
            .args(["forecast", "--model", "ets", "--horizon", "4", "--input"])
            .arg(dataset("nyc_taxi.csv"))
            .args(["--growth", "flat"]),
    );
    assert!(err.contains("need --model prophet"), "{err}");
}

#[test]
fn train_saves_a_network_that_forecast_loads() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("hourly.csv");
    let mut text = String::from("timestamp,value\n");
    for t in 0..24 * 20 {
        let day = std::f64::consts::TAU * (t % 24) as f64 / 24.0;
        text += &format!(
            "{},{:.3}\n",
            1_700_000_000 + t * 3600,
            100.0 + 30.0 * day.sin()
        );
    }
    std::fs::write(&csv, text).unwrap();
    let network = dir.path().join("models/tiny");
    let out = prescale()
        .args(["train", "--model", "lstm", "--input"])
        .arg(&csv)
        .args([
            "--window",
            "48",
            "--horizon",
            "24",
            "--hidden",
            "8",
            "--epochs",
            "3",
        ])
        .args(["--windows-per-epoch", "128", "--batch", "32", "--output"])
        .arg(&network)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    // Without a terminal the progress bar is hidden and each epoch is a line.
    assert!(stderr.contains("epoch 3/3: train loss"), "{stderr}");
    assert!(network.join("config.json").is_file() && network.join("weights.safetensors").is_file());
    let config = std::fs::read_to_string(network.join("config.json")).unwrap();
    assert!(
        config.contains("\"command\": \"prescale train --model lstm"),
        "{config}"
    );

    let forecast = stdout_of(
        prescale()
            .args([
                "forecast",
                "--horizon",
                "30",
                "--level",
                "95",
                "--model-file",
            ])
            .arg(&network)
            .arg("--input")
            .arg(&csv),
    );
    let lines: Vec<&str> = forecast.lines().collect();
    assert_eq!(lines[0], "timestamp,mean,lower_95,upper_95");
    assert_eq!(lines.len(), 31);

    let err = failure_of(
        prescale()
            .args(["train", "--model", "ets", "--input"])
            .arg(&csv)
            .arg("--output")
            .arg(dir.path().join("ets")),
    );
    assert!(err.contains("only the lstm model is trained"), "{err}");
    std::fs::write(network.join("weights.safetensors"), b"not weights").unwrap();
    let err = failure_of(
        prescale()
            .args(["forecast", "--horizon", "3", "--model-file"])
            .arg(&network)
            .arg("--input")
            .arg(&csv),
    );
    assert!(err.contains("not a loadable LSTM model folder"), "{err}");
}

#[test]
fn a_closed_stdout_ends_the_command_quietly() {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;
    // 20,000 rows do not fit in a pipe's buffer: the reader closes after the header.
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("prescale"))
        .args([
            "forecast",
            "--model",
            "naive",
            "--horizon",
            "20000",
            "--input",
        ])
        .arg(dataset("nyc_taxi.csv"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("runs");
    let mut first = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut first)
        .expect("read the header");
    assert!(first.starts_with("timestamp,mean"), "{first}");
    let out = child.wait_with_output().expect("waits");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        !stderr.contains("error") && !stderr.contains("panicked"),
        "{stderr}"
    );
}

#[test]
fn model_flags_for_a_model_not_asked_for_are_refused() {
    let err = failure_of(
        prescale()
            .args([
                "backtest",
                "--model",
                "ets,theta",
                "--horizon",
                "4",
                "--order",
                "1,1,1",
                "--input",
            ])
            .arg(dataset("nyc_taxi.csv")),
    );
    assert!(
        err.contains("--order set arima's settings, so they need --model arima"),
        "{err}"
    );
    let err = failure_of(
        prescale()
            .args([
                "forecast",
                "--model",
                "arima",
                "--horizon",
                "4",
                "--order",
                "6,0,0",
                "--input",
            ])
            .arg(dataset("nyc_taxi.csv")),
    );
    assert!(err.contains("p and q go up to 5"), "{err}");
}

#[test]
fn bench_ops_scores_every_series_of_the_step_at_each_horizon_and_says_what_auto_chose() {
    // The bundled folder: the 5-minute AMZN series is used, the 30-minute taxi series skipped.
    let export = tempfile::tempdir().unwrap();
    let out = prescale()
        .args([
            "bench",
            "ops",
            "--export",
            export.path().to_str().unwrap(),
            "--data",
            dataset("").to_str().unwrap(),
            "--horizons",
            "1,12",
            "--windows",
            "2",
            "--models",
            "seasonal-naive,naive,auto",
            "--candidates",
            "seasonal-naive,naive",
        ])
        .output()
        .expect("runs");
    let stdout = String::from_utf8(out.stdout).unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("nyc_taxi.csv: skipped"), "{stderr}");
    for horizon in [
        "horizon 1 steps (5m), 1 series",
        "horizon 12 steps (1h), 1 series",
    ] {
        assert!(stdout.contains(horizon), "{stdout}");
    }
    // A row per model and horizon, with its scores.
    let rows: Vec<&str> = stdout
        .lines()
        .filter(|l| l.starts_with("auto ") && !l.starts_with("auto against"))
        .collect();
    assert_eq!(rows.len(), 2, "{stdout}");
    let mase: f64 = rows[1].split_whitespace().nth(1).unwrap().parse().unwrap();
    assert!(mase > 0.0 && mase < 5.0, "{stdout}");
    assert!(
        stdout.contains("auto against its best candidate"),
        "{stdout}"
    );
    assert!(
        stdout.contains("Twitter_volume_AMZN: auto: inverse-MASE weighted mean of")
            && stdout.contains("windows of 12 steps"),
        "{stdout}"
    );
    // The export: the series as loaded (15,831 five-minute steps, missing ones empty) and the
    // four windows scored, the last ending with the series.
    let series = std::fs::read_to_string(export.path().join("Twitter_volume_AMZN.csv")).unwrap();
    let lines: Vec<&str> = series.lines().collect();
    assert_eq!(lines[0], "timestamp,value");
    assert_eq!(lines.len(), 1 + 15_831, "{}", lines[1]);
    assert_eq!(lines[1], "1424986973000,57");
    let windows = std::fs::read_to_string(export.path().join("windows.csv")).unwrap();
    assert_eq!(
        windows.lines().collect::<Vec<_>>(),
        [
            "series,file,seasons,period,horizon,window,origin",
            "Twitter_volume_AMZN,Twitter_volume_AMZN.csv,288,288,1,0,15829",
            "Twitter_volume_AMZN,Twitter_volume_AMZN.csv,288,288,1,1,15830",
            "Twitter_volume_AMZN,Twitter_volume_AMZN.csv,288,288,12,0,15807",
            "Twitter_volume_AMZN,Twitter_volume_AMZN.csv,288,288,12,1,15819",
        ]
    );
}
