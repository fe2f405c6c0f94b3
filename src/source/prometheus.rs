//! Prometheus range queries, chunked, retried and turned into series.
//!
//! Built on `prometheus-http-query`. A long range is split so that no request asks for more
//! than [`QueryOptions::max_points_per_request`] points per series (Prometheus refuses more
//! than 11,000), the chunks are joined per label set, and each label set becomes one
//! [`Series`] on the query's grid (`start + k * step`), with `NaN` where Prometheus had no
//! sample. Transient failures (connection refused, timeouts, HTTP 5xx, Prometheus
//! `timeout`/`unavailable`/`internal`) are retried with exponential backoff; a PromQL error
//! is reported at once with Prometheus' own message.

use std::collections::BTreeMap;
use std::time::Duration;

use prometheus_http_query::{Client, Error as ClientError};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::series::{format_millis, Labels, Millis, Series};

/// Prometheus answers at most this many points per series in one range query.
pub const PROMETHEUS_MAX_POINTS: usize = 11_000;

/// A range query: what to ask and over which grid.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RangeQuery {
    /// Base URL of the Prometheus server, e.g. `http://127.0.0.1:9090`.
    pub url: String,
    /// The PromQL expression.
    pub query: String,
    /// First grid point, ms since the epoch (whole seconds: the API takes seconds).
    pub start: Millis,
    /// Last grid point (inclusive), ms since the epoch.
    pub end: Millis,
    /// Grid step, ms (whole seconds).
    pub step: Millis,
}

/// How to talk to the server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct QueryOptions {
    /// Limit for one HTTP request, connection included (`30s`).
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
    /// Extra attempts after a transient failure (0 = try once).
    pub retries: u32,
    /// Wait before the first retry; doubled for each further one (`500ms`).
    #[serde(with = "humantime_serde")]
    pub backoff: Duration,
    /// Points per series per request; must not exceed [`PROMETHEUS_MAX_POINTS`].
    pub max_points_per_request: usize,
}

impl Default for QueryOptions {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(30),
            retries: 3,
            backoff: Duration::from_millis(500),
            max_points_per_request: 10_000,
        }
    }
}

/// Why a Prometheus query failed. Each kind says what to check.
#[derive(Debug, Error)]
pub enum PrometheusError {
    /// Nothing answered at the URL.
    #[error("Prometheus at {url} is unreachable after {attempts} attempt(s) (is the server running and the URL right?)")]
    Unreachable {
        /// The base URL.
        url: String,
        /// Attempts made.
        attempts: u32,
        /// The transport's error.
        #[source]
        source: ClientError,
    },
    /// The server did not answer within the timeout.
    #[error("Prometheus at {url} did not answer within {timeout:?} after {attempts} attempt(s) (raise the timeout or shorten the range)")]
    Timeout {
        /// The base URL.
        url: String,
        /// The per-request timeout.
        timeout: Duration,
        /// Attempts made.
        attempts: u32,
    },
    /// An HTTP error that is not a Prometheus API answer (a proxy, a wrong path).
    #[error("Prometheus at {url} answered HTTP {status} (is the URL the server's base URL?)")]
    Http {
        /// The base URL.
        url: String,
        /// The HTTP status.
        status: u16,
    },
    /// Prometheus rejected the expression; the message is its own.
    #[error("PromQL error in {query:?}: {message}")]
    PromQl {
        /// The expression.
        query: String,
        /// Prometheus' message, e.g. `1:14: parse error: unclosed left parenthesis`.
        message: String,
    },
    /// Prometheus failed while running the query (after retries, where retrying made sense).
    #[error("Prometheus failed to run {query:?} ({kind}): {message}")]
    Server {
        /// The expression.
        query: String,
        /// Prometheus' error type (`timeout`, `execution`, ...).
        kind: String,
        /// Prometheus' message.
        message: String,
    },
    /// The query ran but matched no series in the range.
    #[error("{query:?} returned no data between {start} and {end}")]
    EmptyResult {
        /// The expression.
        query: String,
        /// Range start, formatted.
        start: String,
        /// Range end, formatted.
        end: String,
    },
    /// The expression is not a range vector (e.g. a scalar or string expression).
    #[error(
        "{query:?} returned a {kind} result; a range query needs an instant-vector expression"
    )]
    NotAMatrix {
        /// The expression.
        query: String,
        /// What came back.
        kind: String,
    },
    /// The request itself is invalid.
    #[error("invalid Prometheus query: {0}")]
    Invalid(String),
    /// The server answered something that is not a Prometheus API response.
    #[error("unexpected answer from Prometheus at {url}")]
    Unexpected {
        /// The base URL.
        url: String,
        /// What the client made of it.
        #[source]
        source: ClientError,
    },
    /// A blocking query was made from inside an async runtime, where blocking would stall
    /// the runtime's threads: async callers use [`query_range`].
    #[error("a blocking Prometheus query was made inside an async runtime; use the async query_range there")]
    InsideRuntime,
}

/// Runs a range query and returns one series per label set, sorted by labels.
pub async fn query_range(
    query: &RangeQuery,
    options: &QueryOptions,
) -> Result<Vec<Series>, PrometheusError> {
    let client = connect(&query.url, options.timeout, &Credentials::default())?;
    query_range_on(&client, query, options).await
}

/// How to authenticate to a Prometheus server behind TLS or a proxy.
#[derive(Clone, Default)]
pub struct Credentials {
    /// Sent as `Authorization: Bearer <token>`.
    pub bearer_token: Option<String>,
    /// PEM certificates trusted for the server's TLS certificate, besides none: a server
    /// with a private CA needs it.
    pub ca_pem: Option<Vec<u8>>,
}

impl std::fmt::Debug for Credentials {
    /// The token is a secret: never printed.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field(
                "bearer_token",
                &self.bearer_token.as_ref().map(|_| "<redacted>"),
            )
            .field("ca_pem", &self.ca_pem.as_ref().map(Vec::len))
            .finish()
    }
}

/// A client for the server at `url`, to run many queries on (a long-running server reuses
/// one connection pool rather than building a client per query).
pub fn connect(
    url: &str,
    timeout: Duration,
    credentials: &Credentials,
) -> Result<Client, PrometheusError> {
    // rustls needs a process-wide crypto provider; installing one twice is harmless.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut builder = reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout);
    if let Some(token) = &credentials.bearer_token {
        let mut headers = reqwest::header::HeaderMap::new();
        let mut value = reqwest::header::HeaderValue::from_str(&format!("Bearer {}", token.trim()))
            .map_err(|_| {
                PrometheusError::Invalid("the bearer token is not valid header text".into())
            })?;
        value.set_sensitive(true);
        headers.insert(reqwest::header::AUTHORIZATION, value);
        builder = builder.default_headers(headers);
    }
    if let Some(pem) = &credentials.ca_pem {
        for cert in reqwest::Certificate::from_pem_bundle(pem).map_err(|e| {
            PrometheusError::Invalid(format!("the CA file does not read as PEM: {e}"))
        })? {
            builder = builder.add_root_certificate(cert);
        }
    }
    let http = builder
        .build()
        .map_err(|e| PrometheusError::Invalid(format!("cannot build the HTTP client: {e}")))?;
    Client::from(http, url).map_err(|e| PrometheusError::Invalid(format!("URL {url:?}: {e}")))
}

/// [`query_range`] on a client made by [`connect`] (the query's URL is the client's).
#[tracing::instrument(
    name = "prometheus.query",
    skip_all,
    fields(
        promql = %query.query,
        start = %format_millis(query.start),
        end = %format_millis(query.end),
        step_seconds = query.step / 1000,
        series = tracing::field::Empty,
        points = tracing::field::Empty,
        retries = 0i64,
        error = tracing::field::Empty,
    )
)]
pub async fn query_range_on(
    client: &Client,
    query: &RangeQuery,
    options: &QueryOptions,
) -> Result<Vec<Series>, PrometheusError> {
    let result = query_range_inner(client, query, options).await;
    let span = tracing::Span::current();
    match &result {
        Ok(series) => {
            span.record("series", series.len() as i64);
            span.record(
                "points",
                series
                    .iter()
                    .map(|s| s.values().iter().filter(|v| v.is_finite()).count())
                    .sum::<usize>() as i64,
            );
        }
        Err(e) => {
            span.record("error", crate::human::chain(e));
        }
    }
    result
}

async fn query_range_inner(
    client: &Client,
    query: &RangeQuery,
    options: &QueryOptions,
) -> Result<Vec<Series>, PrometheusError> {
    // The grid every series is laid on, checked before the first request.
    let len = crate::series::grid_len(query.start, query.end, query.step, false)
        .map_err(|e| PrometheusError::Invalid(e.to_string()))?;
    let chunks = plan_chunks(query, options)?;
    let mut joined: BTreeMap<Labels, Vec<(Millis, f64)>> = BTreeMap::new();
    for (start, end) in chunks {
        let matrix = with_retries(query, options, || async {
            let result = client
                .query_range(
                    &query.query,
                    start / 1000,
                    end / 1000,
                    query.step as f64 / 1000.0,
                )
                .get()
                .await?;
            Ok(result)
        })
        .await?;
        collect_matrix(query, matrix.data(), &mut joined)?;
    }
    lay_on_grid(query, len, joined)
}

/// Decodes one `query_range` answer body (`{"status":"success","data":{...}}`) as the client
/// path does and lays its samples on the query's grid: what the server answered, read as
/// Prometheus defines it. The client path decodes through `prometheus-http-query`; this entry
/// takes the body itself, for tests and the fuzz targets of the decoder.
pub fn decode_range_body(query: &RangeQuery, body: &[u8]) -> Result<Vec<Series>, PrometheusError> {
    #[derive(serde::Deserialize)]
    struct Answer {
        data: prometheus_http_query::response::PromqlResult,
    }
    let len = crate::series::grid_len(query.start, query.end, query.step, false)
        .map_err(|e| PrometheusError::Invalid(e.to_string()))?;
    let answer: Answer = serde_json::from_slice(body).map_err(|e| {
        PrometheusError::Invalid(format!("the answer is not a Prometheus result: {e}"))
    })?;
    let mut joined = BTreeMap::new();
    collect_matrix(query, answer.data.data(), &mut joined)?;
    lay_on_grid(query, len, joined)
}

/// Adds the samples of one answer (a range vector per label set) to `joined`.
fn collect_matrix(
    query: &RangeQuery,
    data: &prometheus_http_query::response::Data,
    joined: &mut BTreeMap<Labels, Vec<(Millis, f64)>>,
) -> Result<(), PrometheusError> {
    let Some(vectors) = data.as_matrix() else {
        return Err(PrometheusError::NotAMatrix {
            query: query.query.clone(),
            kind: result_kind(data).into(),
        });
    };
    for vector in vectors {
        let points = joined
            .entry(Labels::from_prometheus(vector.metric()))
            .or_default();
        points.extend(
            vector
                .samples()
                .iter()
                .map(|s| ((s.timestamp() * 1000.0).round() as Millis, s.value())),
        );
    }
    Ok(())
}

/// One series per label set, each on the query's grid of `len` points.
fn lay_on_grid(
    query: &RangeQuery,
    len: usize,
    joined: BTreeMap<Labels, Vec<(Millis, f64)>>,
) -> Result<Vec<Series>, PrometheusError> {
    if joined.is_empty() {
        return Err(PrometheusError::EmptyResult {
            query: query.query.clone(),
            start: format_millis(query.start),
            end: format_millis(query.end),
        });
    }
    joined
        .into_iter()
        .map(|(labels, points)| {
            let mut values = vec![f64::NAN; len];
            for (t, v) in points {
                // Prometheus answers at start + k·step exactly; servers that align the range to
                // multiples of the step instead (VictoriaMetrics does by default) answer between
                // those points. A sample goes to the first grid point at or after its time, so no
                // point holds a value from after its own time, and none is dropped. A time so
                // far off that the arithmetic would overflow is off the grid.
                let Some(offset) = t.checked_sub(query.start) else {
                    continue;
                };
                if offset <= -query.step {
                    continue;
                }
                // Both positive here: offset > 0, and the step was checked positive.
                let k = if offset <= 0 {
                    0
                } else {
                    offset.unsigned_abs().div_ceil(query.step.unsigned_abs())
                };
                if let Some(slot) = usize::try_from(k).ok().and_then(|k| values.get_mut(k)) {
                    // ±Inf (e.g. a PromQL division by zero) carries no load information:
                    // it is kept as a missing sample, like a scrape that did not happen; so is
                    // a value beyond the magnitude models compute with.
                    // Of several samples for one point, the latest number wins.
                    if v.abs() <= crate::series::MAX_ABS_VALUE {
                        *slot = v;
                    }
                }
            }
            Series::new(labels, query.start, query.step, values)
                .map_err(|e| PrometheusError::Invalid(e.to_string()))
        })
        .collect()
}

/// Blocking wrapper around [`query_range`] for callers without an async runtime.
pub fn query_range_blocking(
    query: &RangeQuery,
    options: &QueryOptions,
) -> Result<Vec<Series>, PrometheusError> {
    if tokio::runtime::Handle::try_current().is_ok() {
        return Err(PrometheusError::InsideRuntime);
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| PrometheusError::Invalid(format!("cannot start the async runtime: {e}")))?;
    runtime.block_on(query_range(query, options))
}

/// Splits the query's grid into request ranges of at most `max_points_per_request` points,
/// each starting on the grid so the joined points are exactly the query's grid.
pub fn plan_chunks(
    query: &RangeQuery,
    options: &QueryOptions,
) -> Result<Vec<(Millis, Millis)>, PrometheusError> {
    let invalid = |m: String| Err(PrometheusError::Invalid(m));
    if query.step < 1000 || query.step % 1000 != 0 {
        return invalid(format!(
            "step must be a whole number of seconds, got {} ms",
            query.step
        ));
    }
    if query.start % 1000 != 0 || query.end % 1000 != 0 {
        return invalid("start and end must be whole seconds".into());
    }
    if query.end < query.start {
        return invalid(format!(
            "end {} is before start {}",
            format_millis(query.end),
            format_millis(query.start)
        ));
    }
    if options.timeout.is_zero() {
        return invalid(
            "a timeout of zero would fail every request; give a positive timeout".into(),
        );
    }
    let per = options.max_points_per_request;
    if per == 0 || per > PROMETHEUS_MAX_POINTS {
        return invalid(format!(
            "points per request must be 1..={PROMETHEUS_MAX_POINTS}, got {per}"
        ));
    }
    let span = (per as Millis - 1) * query.step;
    let mut chunks = Vec::new();
    let mut start = query.start;
    while start <= query.end {
        let end = (start + span).min(query.end);
        chunks.push((start, end));
        start = end + query.step;
    }
    Ok(chunks)
}

/// Runs `request`, retrying transient failures with exponential backoff.
async fn with_retries<T, F, Fut>(
    query: &RangeQuery,
    options: &QueryOptions,
    mut request: F,
) -> Result<T, PrometheusError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, ClientError>>,
{
    let mut attempt = 0;
    loop {
        attempt += 1;
        match request().await {
            Ok(v) => return Ok(v),
            Err(e) => {
                let failure = classify(e, query, options, attempt);
                if !failure.transient || attempt > options.retries {
                    return Err(failure.error);
                }
                tracing::Span::current().record("retries", i64::from(attempt));
                let wait = options.backoff.saturating_mul(1 << (attempt - 1).min(16));
                tokio::time::sleep(wait).await;
            }
        }
    }
}

struct Failure {
    error: PrometheusError,
    transient: bool,
}

fn classify(e: ClientError, query: &RangeQuery, options: &QueryOptions, attempts: u32) -> Failure {
    use prometheus_http_query::error::PrometheusErrorType as Kind;
    let url = query.url.clone();
    match e {
        ClientError::Prometheus(p) => {
            let transient = matches!(
                p.error_type(),
                Kind::Timeout | Kind::Unavailable | Kind::Internal
            );
            let error = if p.error_type() == Kind::BadData {
                PrometheusError::PromQl {
                    query: query.query.clone(),
                    message: p.message().to_string(),
                }
            } else {
                PrometheusError::Server {
                    query: query.query.clone(),
                    kind: p.error_type().to_string(),
                    message: p.message().to_string(),
                }
            };
            Failure { error, transient }
        }
        ClientError::Client(c) => {
            let inner = c.inner();
            if let Some(status) = inner.and_then(|r| r.status()) {
                let code = status.as_u16();
                return Failure {
                    error: PrometheusError::Http { url, status: code },
                    transient: status.is_server_error() || code == 429,
                };
            }
            if inner.is_some_and(|r| r.is_timeout()) {
                return Failure {
                    error: PrometheusError::Timeout {
                        url,
                        timeout: options.timeout,
                        attempts,
                    },
                    transient: true,
                };
            }
            if inner.is_some_and(|r| r.is_connect() || r.is_request()) {
                return Failure {
                    error: PrometheusError::Unreachable {
                        url,
                        attempts,
                        source: ClientError::Client(c),
                    },
                    transient: true,
                };
            }
            // A body that is not the JSON its content type promised comes from proxies and
            // overloaded servers as often as from a wrong URL (a 5xx page labelled JSON): it is
            // retried like a 5xx, and reported as what it is once the retries are spent.
            let garbled = inner.is_some_and(|r| r.is_decode() || r.is_body());
            Failure {
                error: PrometheusError::Unexpected {
                    url,
                    source: ClientError::Client(c),
                },
                transient: garbled,
            }
        }
        other => Failure {
            error: PrometheusError::Unexpected { url, source: other },
            transient: false,
        },
    }
}

fn result_kind(data: &prometheus_http_query::response::Data) -> &'static str {
    use prometheus_http_query::response::Data;
    match data {
        Data::Vector(_) => "instant vector",
        Data::Matrix(_) => "range vector",
        Data::Scalar(_) => "scalar",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn query(start: Millis, end: Millis, step: Millis) -> RangeQuery {
        RangeQuery {
            url: "http://127.0.0.1:9".into(),
            query: "up".into(),
            start,
            end,
            step,
        }
    }

    #[test]
    fn an_answer_body_is_laid_on_the_querys_grid_whatever_its_times_and_values() {
        let q = query(1_700_000_000_000, 1_700_000_240_000, 60_000);
        // On the grid, between grid points (as VictoriaMetrics aligns), ±Inf and a value
        // beyond the magnitude models take (missing), and times far outside the range or
        // beyond what arithmetic on them can hold (dropped, never a panic).
        let body = br#"{"status":"success","data":{"resultType":"matrix","result":[
            {"metric":{"job":"api"},"values":[[1700000000,"1"],[1700000090,"2"],[1700000120,"+Inf"],
             [1700000180,"1e300"],[1700000240,"5"],[1e300,"7"],[-1e300,"8"],[1700009999,"9"]]}]}}"#;
        let series = decode_range_body(&q, body).unwrap();
        assert_eq!(series.len(), 1);
        let values = series[0].values();
        assert_eq!(values.len(), 5);
        assert_eq!(values[0], 1.0);
        assert!(values[1].is_nan(), "{values:?}");
        // 90 s is between 60 s and 120 s: the first grid point at or after it; the +Inf
        // at 120 s is missing and does not overwrite that number.
        assert_eq!(values[2], 2.0);
        assert!(values[3].is_nan() && values[4] == 5.0, "{values:?}");
        for bad in [
            &b"not json"[..],
            br#"{"status":"success","data":{"resultType":"vector","result":[]}}"#,
            br#"{"status":"success","data":{"resultType":"matrix","result":[]}}"#,
        ] {
            assert!(decode_range_body(&q, bad).is_err());
        }
    }

    #[test]
    fn a_blocking_query_inside_a_runtime_is_an_error_not_a_panic() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let result = runtime.block_on(async {
            query_range_blocking(&query(0, 60_000, 60_000), &QueryOptions::default())
        });
        assert!(matches!(result, Err(PrometheusError::InsideRuntime)));
    }

    #[test]
    fn rejects_bad_ranges() {
        let o = QueryOptions::default();
        assert!(plan_chunks(&query(0, 10_000, 500), &o).is_err());
        assert!(plan_chunks(&query(10_000, 0, 1000), &o).is_err());
        let too_many = QueryOptions {
            max_points_per_request: 11_001,
            ..o
        };
        assert!(plan_chunks(&query(0, 10_000, 1000), &too_many).is_err());
    }

    proptest! {
        #[test]
        fn chunks_tile_the_grid_exactly(
            n in 1i64..100_000, step_s in 1i64..3600, per in 1usize..=11_000, start_s in 0i64..2_000_000_000,
        ) {
            let step = step_s * 1000;
            let start = start_s * 1000;
            let q = query(start, start + (n - 1) * step, step);
            let o = QueryOptions { max_points_per_request: per, ..QueryOptions::default() };
            let chunks = plan_chunks(&q, &o).unwrap();
            prop_assert_eq!(chunks[0].0, q.start);
            prop_assert_eq!(chunks[chunks.len() - 1].1, q.end);
            let mut total = 0;
            for (i, &(a, b)) in chunks.iter().enumerate() {
                let points = (b - a) / step + 1;
                prop_assert!(points >= 1 && points as usize <= per);
                prop_assert_eq!((a - start) % step, 0);
                if i > 0 {
                    prop_assert_eq!(a, chunks[i - 1].1 + step);
                }
                total += points;
            }
            prop_assert_eq!(total, n);
        }
    }
}
