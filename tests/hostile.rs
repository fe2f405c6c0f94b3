//! Hostile input costs a clear error and nothing else: outputs that would destroy inputs,
//! grids that would take gigabytes, horizons past the calendar, values that overflow a model.

use std::path::Path;
use std::time::{Duration, Instant};

use assert_cmd::Command;

use crate::common::dataset;

fn prescale() -> Command {
    Command::cargo_bin("prescale").expect("binary built")
}

/// Runs `cmd`, which must fail quickly with a message containing each of `needles`.
fn refused(cmd: &mut Command, needles: &[&str]) -> String {
    let started = Instant::now();
    let out = cmd
        .timeout(Duration::from_secs(120))
        .output()
        .expect("runs");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        !out.status.success(),
        "accepted: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    for needle in needles {
        assert!(stderr.contains(needle), "{needle:?} not in: {stderr}");
    }
    assert!(
        !stderr.contains("panicked"),
        "a panic is not an error message: {stderr}"
    );
    assert!(started.elapsed() < Duration::from_secs(120));
    stderr
}

fn write(path: &Path, text: &str) {
    std::fs::write(path, text).expect("write fixture");
}

#[test]
fn an_output_that_is_an_input_is_refused_and_the_input_kept() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("load.csv");
    std::fs::copy(dataset("nyc_taxi.csv"), &input).unwrap();
    let before = std::fs::read(&input).unwrap();
    // The same file by another spelling, for each command that writes.
    let other = dir.path().join("sub/../load.csv");
    std::fs::create_dir(dir.path().join("sub")).unwrap();
    let runs: [&[&str]; 4] = [
        &["forecast", "--horizon", "4", "--model", "naive", "--output"],
        &[
            "forecast",
            "--horizon",
            "4",
            "--model",
            "naive",
            "--save-model",
        ],
        &["backtest", "--horizon", "4", "--model", "naive", "--output"],
        &["report", "--output"],
    ];
    for args in runs {
        refused(
            prescale().args(args).arg(&other).arg("--input").arg(&input),
            &["is also an input", "choose another output path"],
        );
        assert_eq!(
            std::fs::read(&input).unwrap(),
            before,
            "{args:?} changed its input"
        );
    }
    // simulate writes summary.csv into its folder: an input of that name is kept.
    let summary = dir.path().join("summary.csv");
    std::fs::copy(&input, &summary).unwrap();
    refused(
        prescale()
            .args([
                "simulate",
                "--capacity",
                "1000",
                "--startup",
                "5m",
                "--input",
            ])
            .arg(&summary)
            .arg("--output")
            .arg(dir.path()),
        &["is also an input"],
    );
    assert_eq!(std::fs::read(&summary).unwrap(), before);
}

#[test]
fn grids_too_large_to_allocate_are_refused_before_allocating() {
    let dir = tempfile::tempdir().unwrap();
    // One timestamp typed in milliseconds among seconds.
    let mixed = dir.path().join("mixed.csv");
    let mut text = String::from("timestamp,value\n");
    for i in 0..200 {
        text.push_str(&format!("{},{}\n", 1_420_070_400 + i * 300, 100 + i % 7));
    }
    let seconds = text.clone();
    text.push_str("1420130400000,5\n");
    write(&mixed, &text);
    // Read as seconds, it is in the year 46,970: the row is named.
    refused(
        prescale()
            .args(["forecast", "--horizon", "4", "--input"])
            .arg(&mixed),
        &["line 202", "unix seconds in the years 1 to 9999"],
    );
    // One timestamp with two digits too many (the year 6470) stretches the grid past the limit.
    write(&mixed, &format!("{seconds}142013040000,5\n"));
    refused(
        prescale()
            .args(["forecast", "--horizon", "4", "--input"])
            .arg(&mixed),
        &["over the limit of 50000000", "same unit"],
    );
    // A one-millisecond step over seven months of data.
    refused(
        prescale()
            .args(["forecast", "--horizon", "4", "--step", "1ms", "--input"])
            .arg(dataset("nyc_taxi.csv")),
        &["over the limit of 50000000", "check the step"],
    );
}

#[test]
fn horizons_past_the_limit_or_the_calendar_are_refused() {
    refused(
        prescale()
            .args([
                "forecast",
                "--model",
                "naive",
                "--horizon",
                "2000000",
                "--input",
            ])
            .arg(dataset("nyc_taxi.csv")),
        &["over the limit of 1000000"],
    );
    let dir = tempfile::tempdir().unwrap();
    let yearly = dir.path().join("yearly.csv");
    let mut text = String::from("timestamp,value\n");
    for year in 1950..2020 {
        text.push_str(&format!("{year}-01-01T00:00:00Z,{}\n", 10 + year % 5));
    }
    write(&yearly, &text);
    refused(
        prescale()
            .args([
                "forecast",
                "--model",
                "naive",
                "--step",
                "365d",
                "--horizon",
                "300000",
                "--input",
            ])
            .arg(&yearly),
        &["falls after the year 9999"],
    );
}

#[test]
fn extreme_values_give_finite_forecasts_or_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let spiked = |name: &str, spike: f64| {
        let path = dir.path().join(name);
        let mut text = String::from("timestamp,value\n");
        for i in 0..400 {
            let v = if i == 350 {
                spike
            } else {
                100.0 + (i % 24) as f64
            };
            text.push_str(&format!("{},{v:e}\n", 1_420_070_400 + i * 3600));
        }
        write(&path, &text);
        path
    };
    // Beyond the magnitude models compute with: refused at reading, with its line.
    refused(
        prescale()
            .args(["forecast", "--horizon", "24", "--model", "ets", "--input"])
            .arg(spiked("overflowing.csv", 1e308)),
        &["line 352", "1e308", "beyond ±1e150"],
    );
    // At the limit: every model forecasts finite numbers with intervals that stay open (a
    // spike of 1e308 once collapsed ETS's intervals to zero width around a mean of 101).
    let extreme = spiked("extreme.csv", 1e150);
    for model in ["naive", "seasonal-naive", "ets", "mstl", "theta", "arima"] {
        let out = prescale()
            .args(["forecast", "--horizon", "24", "--model", model, "--input"])
            .arg(&extreme)
            .timeout(Duration::from_secs(300))
            .output()
            .expect("runs");
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.contains("panicked"), "{model}: {stderr}");
        if out.status.success() {
            for line in stdout.lines().skip(1) {
                let cells: Vec<f64> = line
                    .split(',')
                    .skip(1)
                    .map(|cell| cell.parse().unwrap_or_else(|_| panic!("{model}: {cell:?}")))
                    .collect();
                assert!(
                    cells.iter().all(|v| v.is_finite()),
                    "{model} printed {line}"
                );
                // mean, lower_80, upper_80, lower_95, upper_95
                assert!(cells[4] > cells[0], "{model}: a closed interval in {line}");
            }
        } else {
            assert!(
                stderr.contains("non-finite")
                    || stderr.contains("too extreme")
                    || stderr.contains("overflow"),
                "{model} failed without saying why: {stderr}"
            );
        }
    }
}

#[test]
fn a_repeated_timestamp_is_refused_with_the_way_through_which_works() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("dst.csv");
    let mut text = String::from("timestamp,value\n");
    for i in 0..300 {
        text.push_str(&format!("{},{}\n", 1_394_330_400 + i * 300, 10 + i % 12));
        if i == 150 {
            // A clock set back an hour at a daylight-saving change repeats one timestamp.
            text.push_str(&format!("{},{}\n", 1_394_330_400 + i * 300, 30));
        }
    }
    write(&file, &text);
    refused(
        prescale()
            .args(["forecast", "--horizon", "2", "--input"])
            .arg(&file),
        &[
            "line 153",
            "duplicate timestamp",
            "--duplicates first, last or mean",
        ],
    );
    for rule in ["first", "last", "mean"] {
        let out = prescale()
            .args([
                "forecast",
                "--horizon",
                "2",
                "--model",
                "naive",
                "--duplicates",
                rule,
            ])
            .arg("--input")
            .arg(&file)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{rule}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn devices_as_inputs_or_configurations_are_refused_not_read_forever() {
    refused(
        prescale().args(["forecast", "--horizon", "2", "--input", "/dev/zero"]),
        &["/dev/zero", "not a regular file"],
    );
    refused(
        prescale().args(["serve", "--check", "--config", "/dev/zero"]),
        &["cannot read /dev/zero", "not a regular file"],
    );
    refused(
        prescale()
            .args(["simulate", "--config", "/dev/zero", "--input"])
            .arg(dataset("nyc_taxi.csv")),
        &["cannot read /dev/zero", "not a regular file"],
    );
    refused(
        prescale().args(["forecast", "--horizon", "2", "--model-file", "/dev/zero"]),
        &["/dev/zero", "not a regular file"],
    );
}

#[test]
fn same_named_inputs_and_huge_fourier_orders_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    for folder in ["a", "b"] {
        std::fs::create_dir(dir.path().join(folder)).unwrap();
        std::fs::copy(
            dataset("nyc_taxi.csv"),
            dir.path().join(folder).join("load.csv"),
        )
        .unwrap();
    }
    refused(
        prescale()
            .args(["backtest", "--horizon", "4", "--model", "naive", "--input"])
            .arg(dir.path().join("a/load.csv"))
            .arg(dir.path().join("b/load.csv")),
        &["both hold a series named load", "rename one of the files"],
    );
    refused(
        prescale()
            .args(["forecast", "--horizon", "4", "--model", "prophet"])
            .args(["--add-seasonality", "x:1h:100000", "--input"])
            .arg(dataset("nyc_taxi.csv")),
        &["Fourier order must be 1 to 100, got 100000"],
    );
}

#[test]
fn guesses_are_refused_ambiguous_columns_zero_samples_nan_learning_rates() {
    let dir = tempfile::tempdir().unwrap();
    let three = dir.path().join("three.csv");
    let mut text = String::from("timestamp,cpu,memory\n");
    for i in 0..100 {
        text.push_str(&format!(
            "{},{},{}\n",
            1_420_070_400 + i * 300,
            i % 9,
            100 - i % 7
        ));
    }
    write(&three, &text);
    refused(
        prescale()
            .args(["forecast", "--horizon", "2", "--input"])
            .arg(&three),
        &[
            "which column holds the values is ambiguous",
            "--value-column",
        ],
    );
    let chosen = prescale()
        .args([
            "forecast",
            "--horizon",
            "2",
            "--model",
            "naive",
            "--value-column",
            "memory",
        ])
        .arg("--input")
        .arg(&three)
        .output()
        .unwrap();
    assert!(
        chosen.status.success(),
        "{}",
        String::from_utf8_lossy(&chosen.stderr)
    );
    refused(
        prescale()
            .args([
                "forecast",
                "--horizon",
                "2",
                "--model",
                "prophet",
                "--samples",
                "0",
                "--input",
            ])
            .arg(dataset("nyc_taxi.csv")),
        &["samples must be 1 to 100000"],
    );
    refused(
        prescale()
            .args(["train", "--learning-rate", "NaN", "--output"])
            .arg(dir.path().join("net"))
            .arg("--input")
            .arg(dataset("nyc_taxi.csv")),
        &["learning rate must be a finite number"],
    );
    assert!(!dir.path().join("net").exists(), "nothing written");
}

#[test]
fn network_shapes_that_would_hang_or_exhaust_memory_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    for (flag, value, needle) in [
        ("--patch", "0", "is not a positive multiple of patch 0"),
        (
            "--hidden",
            "100000000",
            "hidden units 100000000 is over the limit of 4096",
        ),
        ("--layers", "50", "layers 50 is over the limit of 8"),
    ] {
        refused(
            prescale()
                .args(["train", flag, value, "--output"])
                .arg(dir.path().join("net"))
                .arg("--input")
                .arg(dataset("nyc_taxi.csv")),
            &[needle],
        );
    }
    assert!(!dir.path().join("net").exists(), "nothing written");
}

#[test]
fn a_configuration_nested_to_burn_the_parser_is_refused_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let deep = dir.path().join("deep.yaml");
    // 8 MiB of flow nesting: the YAML scanner alone would take hours on it.
    write(
        &deep,
        &format!("workloads: {}{}", "[".repeat(4 << 20), "]".repeat(4 << 20)),
    );
    refused(
        prescale().args(["serve", "--check", "--config"]).arg(&deep),
        &["nested more than 64 levels deep"],
    );
    refused(
        prescale()
            .args(["simulate", "--config"])
            .arg(&deep)
            .arg("--input")
            .arg(dataset("nyc_taxi.csv")),
        &["nested more than 64 levels deep"],
    );
}

#[test]
fn timestamps_read_in_the_unit_given_and_never_merged_below_a_millisecond() {
    let dir = tempfile::tempdir().unwrap();
    // Milliseconds at a 250 ms step: read, forecast, and printed to the millisecond.
    let fast = dir.path().join("fast.csv");
    let mut text = String::from("timestamp,value\n");
    for i in 0..200 {
        text.push_str(&format!(
            "{},{}\n",
            1_700_000_000_000i64 + 250 * i,
            10 + i % 7
        ));
    }
    write(&fast, &text);
    let out = prescale()
        .args(["forecast", "--horizon", "2", "--model", "naive", "--input"])
        .arg(&fast)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let times: Vec<&str> = stdout
        .lines()
        .skip(1)
        .map(|l| l.split(',').next().unwrap())
        .collect();
    assert_eq!(
        times,
        ["2023-11-14T22:14:10.000Z", "2023-11-14T22:14:10.250Z"]
    );
    // The same numbers said to be seconds are in the year 55,000: refused with the unit named.
    refused(
        prescale()
            .args([
                "forecast",
                "--horizon",
                "2",
                "--model",
                "naive",
                "--time-unit",
                "s",
                "--input",
            ])
            .arg(&fast),
        &["line 2", "unix seconds in the years 1 to 9999"],
    );
    // Microseconds 100 µs apart would become one millisecond: refused, not merged.
    let finer = dir.path().join("finer.csv");
    let mut text = String::from("timestamp,value\n");
    for i in 0..20 {
        text.push_str(&format!("{},{i}\n", 1_700_000_000_000_000i64 + 100 * i));
    }
    write(&finer, &text);
    refused(
        prescale()
            .args(["forecast", "--horizon", "2", "--model", "naive", "--input"])
            .arg(&finer),
        &["lines 2 and 3", "less than a millisecond apart"],
    );
    // Seconds given as such even where their magnitude would say milliseconds.
    let forced = dir.path().join("forced.csv");
    write(
        &forced,
        "timestamp,value\n100000000000,1\n100000000060,2\n100000000120,3\n100000000180,4\n",
    );
    let out = prescale()
        .args([
            "forecast",
            "--horizon",
            "1",
            "--model",
            "naive",
            "--time-unit",
            "s",
            "--input",
        ])
        .arg(&forced)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("5138-11-16T09:50:40Z"));
}

#[test]
fn model_files_with_orders_or_sizes_beyond_the_limits_are_refused_before_allocating() {
    let dir = tempfile::tempdir().unwrap();
    let saved = |model: &str| {
        let path = dir.path().join(format!("{model}.json"));
        let out = prescale()
            .args([
                "forecast",
                "--horizon",
                "2",
                "--model",
                model,
                "--save-model",
            ])
            .arg(&path)
            .arg("--input")
            .arg(dataset("nyc_taxi.csv"))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let json: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        (path, json)
    };
    let forecast_from = |path: &Path| {
        let mut cmd = prescale();
        cmd.args(["forecast", "--horizon", "2", "--model-file"])
            .arg(path);
        cmd
    };
    // An ARIMA whose seasonal period asks for a 100,001-dimensional state (80 GB).
    let (path, mut json) = saved("arima");
    json["state"]["spec"]["m"] = 100_000.into();
    json["state"]["spec"]["sp"] = 1.into();
    std::fs::write(&path, json.to_string()).unwrap();
    refused(
        &mut forecast_from(&path),
        &["dimensions, over the limit of 400"],
    );
    // A Prophet asking for four billion changepoints and as many simulated paths.
    let (path, mut json) = saved("prophet");
    json["state"]["settings"]["changepoints"] = 4_000_000_000u64.into();
    json["state"]["settings"]["samples"] = 4_000_000_000u64.into();
    std::fs::write(&path, json.to_string()).unwrap();
    refused(
        &mut forecast_from(&path),
        &[
            "changepoints must be at most 1000",
            "samples must be 1 to 100000",
        ],
    );
}
