//! The notebook in `notebooks/` runs headless on fresh `backtest` and `simulate` outputs, so
//! it cannot rot. Needs `notebooks/.venv` (made by `.ci/run` from `notebooks/requirements.txt`).

use std::path::Path;
use std::process::Command;

use crate::common::dataset;

fn prescale(args: &[&str]) {
    let out = assert_cmd::Command::cargo_bin("prescale")
        .expect("binary built")
        .args(args)
        .output()
        .expect("runs");
    assert!(
        out.status.success(),
        "prescale {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn the_replay_notebook_executes_on_real_outputs() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let jupyter = root.join("notebooks/.venv/bin/jupyter");
    assert!(
        jupyter.exists(),
        "{} is missing: run .ci/run, or python3 -m venv notebooks/.venv && notebooks/.venv/bin/pip install -r notebooks/requirements.txt",
        jupyter.display()
    );
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let taxi = dataset("nyc_taxi.csv");
    let taxi = taxi.to_str().unwrap();
    let backtest = out.join("backtest.parquet");
    std::fs::create_dir_all(&out).unwrap();
    prescale(&[
        "backtest",
        "--input",
        taxi,
        "--model",
        "seasonal-naive,theta",
        "--horizon",
        "48",
        "--windows",
        "3",
        "--output",
        backtest.to_str().unwrap(),
    ]);
    prescale(&[
        "simulate",
        "--input",
        taxi,
        "--capacity",
        "1000",
        "--startup",
        "5m",
        "--model",
        "seasonal-naive",
        "--warmup",
        "180d",
        "--output",
        out.to_str().unwrap(),
        "--format",
        "parquet",
    ]);
    // The frontiers: the same replay along every policy's knob (frontier.csv).
    prescale(&[
        "simulate",
        "--input",
        taxi,
        "--capacity",
        "1000",
        "--startup",
        "5m",
        "--model",
        "seasonal-naive",
        "--warmup",
        "180d",
        "--frontier",
        "--output",
        out.to_str().unwrap(),
    ]);
    let executed = dir.path().join("executed.ipynb");
    let run = Command::new(&jupyter)
        .args(["nbconvert", "--to", "notebook", "--execute", "--output"])
        .arg(&executed)
        .arg(root.join("notebooks/replay.ipynb"))
        .env("PRESCALE_OUTPUT", &out)
        .output()
        .expect("jupyter runs");
    assert!(
        run.status.success(),
        "the notebook failed:\n{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let text = std::fs::read_to_string(&executed).unwrap();
    assert!(text.contains("ok: 6 backtest rows"), "{text}");
    // The figures were drawn (PNG outputs embedded).
    assert!(text.matches("image/png").count() >= 4);
}
