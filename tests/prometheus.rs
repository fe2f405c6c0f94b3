//! The Prometheus source against a real server (Debian's `prometheus`, backfilled with
//! `promtool`), and its failure modes against a refused port and a silent one.

use crate::common;

use std::net::TcpListener;
use std::time::Duration;

use crate::common::{load_dataset, Backfill, Prometheus};
use assert_cmd::Command;
use prescale::series::Series;
use prescale::source::prometheus::{
    query_range_blocking, PrometheusError, QueryOptions, RangeQuery,
};

/// Eight days of the bundled Twitter series: 2,304 five-minute samples per label set.
const DAYS: usize = 8;

fn amzn() -> Series {
    let s = load_dataset("Twitter_volume_AMZN.csv");
    s.slice(0..DAYS * 288)
}

fn points(s: &Series, factor: f64) -> Vec<(i64, f64)> {
    s.timestamps()
        .zip(s.values())
        .map(|(t, v)| (t / 1000, v * factor))
        .collect()
}

fn query(url: &str, promql: &str, s: &Series, step: i64) -> RangeQuery {
    RangeQuery {
        url: url.to_string(),
        query: promql.to_string(),
        start: s.start(),
        end: s.timestamp(s.len() - 1),
        step,
    }
}

fn quick(retries: u32) -> QueryOptions {
    QueryOptions {
        timeout: Duration::from_secs(20),
        retries,
        backoff: Duration::from_millis(10),
        ..QueryOptions::default()
    }
}

#[test]
fn range_queries_against_a_real_prometheus() {
    let data = amzn();
    let server = Prometheus::start(&[
        Backfill {
            metric: "load",
            labels: r#"dataset="amzn""#,
            points: points(&data, 1.0),
        },
        Backfill {
            metric: "load",
            labels: r#"dataset="amzn_x2""#,
            points: points(&data, 2.0),
        },
    ]);
    let url = server.url.as_str();

    // Every written point comes back, through five chunks of at most 500 points.
    let small_chunks = QueryOptions {
        max_points_per_request: 500,
        ..quick(0)
    };
    let got = query_range_blocking(
        &query(url, r#"load{dataset="amzn"}"#, &data, 300_000),
        &small_chunks,
    )
    .expect("query succeeds");
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].labels().to_string(), r#"load{dataset="amzn"}"#);
    assert_eq!((got[0].start(), got[0].step()), (data.start(), data.step()));
    assert_eq!(got[0].values(), data.values());

    // A one-minute grid over eight days is 11,520 points: over Prometheus' 11,000 limit, so
    // it must be chunked. Each point is the latest sample at or before it (5 min lookback).
    let fine = query_range_blocking(
        &query(url, r#"load{dataset="amzn"}"#, &data, 60_000),
        &quick(0),
    )
    .expect("a range over the per-request limit is chunked");
    assert_eq!(fine[0].len(), (data.len() - 1) * 5 + 1);
    assert!(fine[0].len() > 11_000);
    for (k, v) in fine[0].values().iter().enumerate() {
        assert_eq!(*v, data.values()[k / 5], "minute {k}");
    }

    // One series per label set, sorted by labels.
    let both = query_range_blocking(&query(url, "load", &data, 300_000), &quick(0)).unwrap();
    let names: Vec<String> = both.iter().map(|s| s.labels().to_string()).collect();
    assert_eq!(
        names,
        [r#"load{dataset="amzn"}"#, r#"load{dataset="amzn_x2"}"#]
    );
    let doubled: Vec<f64> = data.values().iter().map(|v| v * 2.0).collect();
    assert_eq!(both[1].values(), &doubled[..]);

    // A query past the data's end leaves the missing points NaN, not invented.
    let mut longer = query(url, r#"load{dataset="amzn"}"#, &data, 300_000);
    longer.end += 24 * 3_600_000;
    let padded = query_range_blocking(&longer, &quick(0)).unwrap().remove(0);
    assert_eq!(padded.len(), data.len() + 288);
    assert!(padded.values()[data.len() + 1..].iter().all(|v| v.is_nan()));

    // A PromQL error carries Prometheus' own message and is not retried.
    let err =
        query_range_blocking(&query(url, "rate(load[5m]", &data, 300_000), &quick(3)).unwrap_err();
    match &err {
        PrometheusError::PromQl { message, .. } => {
            assert!(message.contains("parse error"), "{message}")
        }
        other => panic!("expected a PromQL error, got {other:?}"),
    }

    // An expression matching nothing is an empty result, naming the query.
    let err = query_range_blocking(
        &query(url, r#"load{dataset="nope"}"#, &data, 300_000),
        &quick(0),
    )
    .unwrap_err();
    assert!(
        matches!(err, PrometheusError::EmptyResult { .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("nope"), "{err}");

    // A URL that is not the API's base gets the HTTP status.
    let wrong = format!("{url}/not-prometheus");
    let err = query_range_blocking(&query(&wrong, "load", &data, 300_000), &quick(0)).unwrap_err();
    assert!(
        matches!(err, PrometheusError::Http { status: 404, .. }),
        "{err:?}"
    );

    // The CLI forecasts straight from Prometheus.
    let end = data.timestamp(data.len() - 1) / 1000;
    let out = Command::cargo_bin("prescale")
        .unwrap()
        .args([
            "forecast",
            "--prometheus",
            url,
            "--query",
            r#"load{dataset="amzn"}"#,
        ])
        .args([
            "--start",
            &(data.start() / 1000).to_string(),
            "--end",
            &end.to_string(),
        ])
        .args(["--step", "5m", "--horizon", "12", "--season", "288"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(
        lines[0],
        "timestamp,mean,lower_80,upper_80,lower_95,upper_95"
    );
    assert_eq!(lines.len(), 13);
    // Seasonal naive repeats the value one day before each forecast step.
    let first: f64 = lines[1].split(',').nth(1).unwrap().parse().unwrap();
    assert_eq!(first, data.values()[data.len() - 288]);
}

#[test]
fn a_refused_port_is_unreachable_after_the_retries() {
    let port = common::free_port();
    let q = RangeQuery {
        url: format!("http://127.0.0.1:{port}"),
        query: "up".into(),
        start: 0,
        end: 3_600_000,
        step: 60_000,
    };
    let err = query_range_blocking(&q, &quick(2)).unwrap_err();
    match &err {
        PrometheusError::Unreachable { attempts, .. } => {
            assert_eq!(*attempts, 3);
            // The transport's cause is kept, not folded into the message.
            let chain = prescale::human::chain(&err);
            assert!(chain.to_lowercase().contains("refused"), "{chain}");
        }
        other => panic!("expected unreachable, got {other:?}"),
    }
}

#[test]
fn a_server_that_never_answers_times_out() {
    // Accepted by the kernel's backlog, never read: the request hangs until the timeout.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let q = RangeQuery {
        url: format!("http://{}", listener.local_addr().unwrap()),
        query: "up".into(),
        start: 0,
        end: 3_600_000,
        step: 60_000,
    };
    let options = QueryOptions {
        timeout: Duration::from_millis(300),
        ..quick(1)
    };
    let err = query_range_blocking(&q, &options).unwrap_err();
    assert!(
        matches!(err, PrometheusError::Timeout { attempts: 2, .. }),
        "{err:?}"
    );
    drop(listener);
}

#[test]
fn an_answer_that_is_not_json_is_retried_and_a_zero_timeout_refused() {
    use std::io::{Read, Write};
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    // A 503 labelled JSON whose body is not JSON, as an overloaded proxy answers.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let served = Arc::new(AtomicUsize::new(0));
    let count = served.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut buf = [0u8; 4096];
            let _ = stream.read(&mut buf);
            count.fetch_add(1, Ordering::SeqCst);
            let body = "<html>upstream overloaded</html>";
            let _ = write!(
                stream,
                "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    let q = RangeQuery {
        url: url.clone(),
        query: "up".into(),
        start: 0,
        end: 3_600_000,
        step: 60_000,
    };
    let err = query_range_blocking(&q, &quick(2)).unwrap_err();
    assert_eq!(
        served.load(Ordering::SeqCst),
        3,
        "one try and two retries: {err:?}"
    );
    assert!(err.to_string().contains(&url), "{err}");
    let zero = QueryOptions {
        timeout: Duration::ZERO,
        ..quick(2)
    };
    let err = query_range_blocking(&q, &zero).unwrap_err();
    assert!(matches!(err, PrometheusError::Invalid(_)), "{err:?}");
    assert_eq!(
        served.load(Ordering::SeqCst),
        3,
        "refused before any request"
    );
}

#[test]
fn samples_aligned_to_the_step_rather_than_the_start_land_on_the_grid() {
    use std::io::{Read, Write};
    // As VictoriaMetrics answers by default: a range starting 17 s past a minute comes back
    // at whole minutes. Each sample belongs to the first grid point at or after its time.
    let step = 60;
    let start = 1_700_000_017_i64;
    let aligned = start - start.rem_euclid(step);
    let values: Vec<String> = (0..=11)
        .map(|k| format!("[{},\"{k}\"]", aligned + k * step))
        .collect();
    let body = format!(
        r#"{{"status":"success","data":{{"resultType":"matrix","result":[{{"metric":{{"job":"api"}},"values":[{}]}}]}}}}"#,
        values.join(",")
    );
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut buf = [0u8; 8192];
            let _ = stream.read(&mut buf);
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    let q = RangeQuery {
        url,
        query: "up".into(),
        start: start * 1000,
        end: (start + 10 * step) * 1000,
        step: step * 1000,
    };
    let series = query_range_blocking(&q, &quick(0)).expect("an aligned answer is read");
    assert_eq!(series.len(), 1);
    let s = &series[0];
    assert_eq!(s.start(), start * 1000);
    assert_eq!(s.values(), (0..=10).map(f64::from).collect::<Vec<_>>());
}
