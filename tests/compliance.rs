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
        r#"{__name__=~"http_requests|logins|payments|clean"}"#,
        false,
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stdout}");
    assert!(
        stderr.contains("4 label(s) carry personal, health or payment data"),
        "{stderr}"
    );
    for row in [
        ("http_requests", "user_id", "user-id", "2", "its key"),
        ("logins", "client", "ip-address", "1", "its values"),
        ("logins", "who", "email", "1", "its values"),
        ("payments", "ref", "card-number", "1", "its values"),
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
    // JSON for machines, and a clean selection passes.
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
