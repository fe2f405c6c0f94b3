//! The HTTP face: the Kubernetes external metrics API (`external.metrics.k8s.io/v1beta1`) as
//! the aggregator and the HPA call it, `/healthz`, `/readyz`, `/livez` and `/metrics`.
//!
//! [`router`] builds the whole `Router` from the shared state, so it is tested without a
//! socket. Handlers only read the published snapshot; they never wait on a fit. Every error is
//! a `metav1.Status` object, never a panic or a stack trace.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;
use tracing::Instrument as _;

use arc_swap::ArcSwap;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use super::selector::Selector;
use super::snapshot::{Published, FORECAST_METRIC, REPLICAS_METRIC};
use super::telemetry::{PathLabels, RequestLabels, Telemetry};

/// The API group and version served.
pub const GROUP_VERSION: &str = "external.metrics.k8s.io/v1beta1";
/// Longest request target (path and query) answered, in bytes.
pub const MAX_URI: usize = 4096;
const PREFIX: &str = "/apis/external.metrics.k8s.io/v1beta1";

/// Who the connection proved to be: set by the accept loop from the client certificate that
/// rustls verified against the front-proxy CA.
#[derive(Debug, Clone, Default)]
pub struct Peer {
    /// The common name of the verified client certificate, when one was presented.
    pub common_name: Option<String>,
}

/// Who may read the API.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Access {
    /// True when a verified front-proxy client certificate is required.
    pub require_front_proxy: bool,
    /// Common names accepted; empty accepts any the CA signed.
    pub allowed_names: Vec<String>,
}

/// What requests read.
#[derive(Debug)]
pub struct AppState {
    /// The decisions, replaced whole by the refresh loop.
    pub published: ArcSwap<Published>,
    /// Who may read.
    pub access: ArcSwap<Access>,
    /// The server's metrics.
    pub telemetry: Telemetry,
}

impl AppState {
    /// State with nothing published yet.
    pub fn new(published: Published, access: Access) -> Self {
        Self {
            published: ArcSwap::from_pointee(published),
            access: ArcSwap::from_pointee(access),
            telemetry: Telemetry::default(),
        }
    }
}

/// The whole HTTP API.
pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/healthz", get(ok))
        .route("/livez", get(ok))
        .route("/readyz", get(ready))
        .route("/metrics", get(metrics))
        .route(PREFIX, get(resources))
        .route(
            &format!("{PREFIX}/namespaces/{{namespace}}/{{metric}}"),
            get(values),
        )
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn_with_state(state.clone(), guard))
        .with_state(state)
}

/// A `metav1.Status` failure with the HTTP status it names.
pub fn status(code: StatusCode, reason: &str, message: impl Into<String>) -> Response {
    let body = serde_json::json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message.into(),
        "reason": reason,
        "code": code.as_u16(),
    });
    json(code, body.to_string())
}

fn json(code: StatusCode, body: String) -> Response {
    let mut response = (code, body).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// Bounds, authentication and accounting around every request.
async fn guard(State(state): State<Arc<AppState>>, mut request: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = route_of(request.uri().path());
    // Each request is its own trace; `decision.made_at` names the published decisions it
    // read (the `publish` span of the refresh that made them carries the same value).
    let span = tracing::info_span!(
        parent: None,
        "request",
        http.method = %request.method(),
        http.route = route,
        metric = tracing::field::Empty,
        http.status_code = tracing::field::Empty,
        decision.made_at = state.published.load().snapshot.made_at,
    );
    if route.ends_with("{metric}") {
        if let Some(metric) = request.uri().path().rsplit('/').next() {
            span.record("metric", metric);
        }
    }
    let response = async {
        if request
            .uri()
            .path_and_query()
            .is_some_and(|p| p.as_str().len() > MAX_URI)
        {
            status(
                StatusCode::URI_TOO_LONG,
                "RequestURITooLong",
                format!("the request target is over {MAX_URI} bytes"),
            )
        } else if request.uri().path().starts_with("/apis") {
            let access = state.access.load();
            let peer = request
                .extensions()
                .get::<Peer>()
                .cloned()
                .unwrap_or_default();
            let accepted = match &peer.common_name {
                Some(cn) => access.allowed_names.is_empty() || access.allowed_names.contains(cn),
                None => false,
            };
            // The aggregator's identity headers are only believed from its own connection.
            if !accepted {
                strip_remote_headers(request.headers_mut());
            }
            if access.require_front_proxy && !accepted {
                status(StatusCode::UNAUTHORIZED, "Unauthorized", "Unauthorized")
            } else {
                next.run(request).await
            }
        } else {
            next.run(request).await
        }
    }
    .instrument(span.clone())
    .await;
    span.record("http.status_code", i64::from(response.status().as_u16()));
    let t = &state.telemetry;
    t.requests
        .get_or_create(&RequestLabels {
            path: route.to_string(),
            code: response.status().as_u16().to_string(),
        })
        .inc();
    t.latency
        .get_or_create(&PathLabels {
            path: route.to_string(),
        })
        .observe(started.elapsed().as_secs_f64());
    response
}

/// The route a path falls in, as a bounded label (the raw path is the client's choice).
fn route_of(path: &str) -> &'static str {
    match path {
        "/healthz" => "/healthz",
        "/livez" => "/livez",
        "/readyz" => "/readyz",
        "/metrics" => "/metrics",
        PREFIX => PREFIX,
        p if p.starts_with(PREFIX) && p.contains("/namespaces/") => {
            "/apis/external.metrics.k8s.io/v1beta1/namespaces/{namespace}/{metric}"
        }
        _ => "other",
    }
}

fn strip_remote_headers(headers: &mut HeaderMap) {
    let remote: Vec<_> = headers
        .keys()
        .filter(|k| k.as_str().starts_with("x-remote-"))
        .cloned()
        .collect();
    for k in remote {
        headers.remove(k);
    }
}

async fn ok() -> &'static str {
    "ok"
}

/// Ready once every workload has a decision (forecast or fallback); the detail names the
/// ones that do not.
async fn ready(State(state): State<Arc<AppState>>) -> Response {
    let published = state.published.load();
    let pending = &published.snapshot.pending;
    if pending.is_empty() {
        let fallbacks: Vec<String> = published
            .snapshot
            .workloads
            .iter()
            .filter(|w| w.fallback.is_some())
            .map(|w| format!("{}/{}", w.namespace, w.workload))
            .collect();
        let text = if fallbacks.is_empty() {
            "ok\n".to_string()
        } else {
            format!("ok (serving the fallback: {})\n", fallbacks.join(", "))
        };
        (StatusCode::OK, text).into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("no decision yet for: {}\n", pending.join(", ")),
        )
            .into_response()
    }
}

async fn metrics(State(state): State<Arc<AppState>>) -> Response {
    let mut response = state.telemetry.encode().into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8"),
    );
    response
}

/// The discovery document the aggregator probes: the two metrics, namespaced, `get` only.
async fn resources() -> Response {
    let resource = |name: &str| {
        serde_json::json!({
            "name": name,
            "singularName": "",
            "namespaced": true,
            "kind": "ExternalMetricValueList",
            "verbs": ["get"],
        })
    };
    let body = serde_json::json!({
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": GROUP_VERSION,
        "resources": [resource(REPLICAS_METRIC), resource(FORECAST_METRIC)],
    });
    json(StatusCode::OK, body.to_string())
}

/// An `ExternalMetricValueList` with one item per matching workload (or metric).
async fn values(
    State(state): State<Arc<AppState>>,
    path: Result<Path<(String, String)>, PathRejection>,
    query: Result<Query<HashMap<String, String>>, QueryRejection>,
) -> Response {
    // Malformed percent-encoding (or bytes that are not UTF-8) is the client's error.
    let (namespace, metric) = match path {
        Ok(Path(p)) => p,
        Err(e) => return status(StatusCode::BAD_REQUEST, "BadRequest", e.body_text()),
    };
    let query = match query {
        Ok(Query(q)) => q,
        Err(e) => return status(StatusCode::BAD_REQUEST, "BadRequest", e.body_text()),
    };
    if metric != REPLICAS_METRIC && metric != FORECAST_METRIC {
        return status(
            StatusCode::NOT_FOUND,
            "NotFound",
            format!(
                "the server could not find the metric {metric} for namespaces {namespace} (served: {REPLICAS_METRIC}, {FORECAST_METRIC})"
            ),
        );
    }
    let selector = match Selector::parse(query.get("labelSelector").map_or("", String::as_str)) {
        Ok(s) => s,
        Err(e) => return status(StatusCode::BAD_REQUEST, "BadRequest", e.to_string()),
    };
    let published = state.published.load();
    if !published.has_namespace(&namespace) {
        return status(
            StatusCode::NOT_FOUND,
            "NotFound",
            format!("no workload is configured in namespace {namespace}"),
        );
    }
    let items: Vec<&str> = published
        .matching(&namespace, &metric, &selector)
        .into_iter()
        .map(|i| i.json.as_str())
        .collect();
    if items.is_empty() {
        // The HPA treats an empty list as an error; say why rather than answer nothing.
        let pending = published.snapshot.pending.iter().any(|p| {
            p.strip_prefix(&format!("{namespace}/")).is_some_and(|w| {
                selector.matches(&[("workload".to_string(), w.to_string())].into())
            })
        });
        return if pending {
            status(
                StatusCode::SERVICE_UNAVAILABLE,
                "ServiceUnavailable",
                format!("no decision yet for {metric} in namespace {namespace}: the first forecast is being made"),
            )
        } else {
            status(
                StatusCode::NOT_FOUND,
                "NotFound",
                format!(
                    "the server could not find the metric {metric} for namespaces {namespace} matching the selector"
                ),
            )
        };
    }
    let mut body = String::with_capacity(128 + items.iter().map(|i| i.len() + 1).sum::<usize>());
    body.push_str(
        r#"{"kind":"ExternalMetricValueList","apiVersion":"external.metrics.k8s.io/v1beta1","metadata":{},"items":["#,
    );
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            body.push(',');
        }
        body.push_str(item);
    }
    body.push_str("]}");
    json(StatusCode::OK, body)
}

async fn not_found(method: Method) -> Response {
    if method != Method::GET {
        return method_not_allowed().await;
    }
    status(
        StatusCode::NOT_FOUND,
        "NotFound",
        "the server could not find the requested resource",
    )
}

async fn method_not_allowed() -> Response {
    status(
        StatusCode::METHOD_NOT_ALLOWED,
        "MethodNotAllowed",
        "the server does not allow this method on the requested resource (only GET)",
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::serve::snapshot::{MetricDecision, Snapshot, WorkloadDecision};
    use axum::body::Body;
    use axum::http::Request;
    use tower::ServiceExt as _;

    fn snapshot(pending: Vec<String>) -> Snapshot {
        let workload = |name: &str, desired: i64| WorkloadDecision {
            namespace: "shop".into(),
            workload: name.into(),
            decided_at: 1_700_000_000_000,
            desired,
            value: desired as f64 * (1.0 - 1e-9),
            current: Some(3),
            reason: "forecast".into(),
            fallback: None,
            metrics: vec![MetricDecision {
                name: "rps".into(),
                forecast: Some(41.5),
                replicas: Some(desired),
                model: Some("ets".into()),
                fitted_at: None,
                observed_at: None,
                last_observed: Some(40.0),
                failures: 0,
                error: None,
            }],
        };
        Snapshot {
            workloads: vec![workload("api", 5), workload("web", 2)],
            ..Snapshot::empty(pending)
        }
    }

    fn app(access: Access, pending: Vec<String>) -> Router {
        let published = Published::new(snapshot(pending), ["shop".to_string()], 15);
        router(Arc::new(AppState::new(published, access)))
    }

    async fn get(app: &Router, uri: &str, peer: Option<&str>) -> (StatusCode, String) {
        let mut request = Request::get(uri).body(Body::empty()).unwrap();
        if let Some(cn) = peer {
            request.extensions_mut().insert(Peer {
                common_name: Some(cn.into()),
            });
        }
        let response = app.clone().oneshot(request).await.unwrap();
        let code = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .unwrap();
        (code, String::from_utf8(bytes.to_vec()).unwrap())
    }

    fn parse(body: &str) -> serde_json::Value {
        serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"))
    }

    #[tokio::test]
    async fn discovery_and_values_are_what_the_aggregator_and_the_hpa_read() {
        let app = app(Access::default(), vec![]);
        let (code, body) = get(&app, PREFIX, None).await;
        assert_eq!(code, StatusCode::OK);
        let v = parse(&body);
        assert_eq!(v["kind"], "APIResourceList");
        assert_eq!(v["groupVersion"], GROUP_VERSION);
        assert_eq!(v["resources"][0]["kind"], "ExternalMetricValueList");
        assert_eq!(v["resources"][0]["verbs"], serde_json::json!(["get"]));

        let uri =
            format!("{PREFIX}/namespaces/shop/prescale_replicas?labelSelector=workload%3Dapi");
        let (code, body) = get(&app, &uri, None).await;
        assert_eq!(code, StatusCode::OK);
        let v = parse(&body);
        assert_eq!(v["kind"], "ExternalMetricValueList");
        assert_eq!(v["items"].as_array().unwrap().len(), 1);
        assert_eq!(v["items"][0]["value"], "4999m");
        assert_eq!(v["items"][0]["metricLabels"]["workload"], "api");
        // '+' for a space, as Go encodes queries; a set; no selector: every workload.
        let uri = format!(
            "{PREFIX}/namespaces/shop/prescale_replicas?labelSelector=workload+in+%28api%2Cweb%29"
        );
        assert_eq!(
            parse(&get(&app, &uri, None).await.1)["items"]
                .as_array()
                .unwrap()
                .len(),
            2
        );
        let uri = format!("{PREFIX}/namespaces/shop/prescale_forecast?labelSelector=workload%3Dweb%2Cmetric%3Drps");
        let v = parse(&get(&app, &uri, None).await.1);
        assert_eq!(v["items"][0]["value"], "41500m");
        assert_eq!(v["items"][0]["metricLabels"]["metric"], "rps");
    }

    #[tokio::test]
    async fn errors_are_status_objects() {
        let app = app(Access::default(), vec!["shop/batch".into()]);
        for (uri, code, reason) in [
            (
                format!("{PREFIX}/namespaces/shop/other_metric"),
                404,
                "NotFound",
            ),
            (
                format!("{PREFIX}/namespaces/elsewhere/prescale_replicas"),
                404,
                "NotFound",
            ),
            (
                format!("{PREFIX}/namespaces/shop/prescale_replicas?labelSelector=workload%3Dnone"),
                404,
                "NotFound",
            ),
            (
                format!(
                    "{PREFIX}/namespaces/shop/prescale_replicas?labelSelector=workload%3Dbatch"
                ),
                503,
                "ServiceUnavailable",
            ),
            (
                format!("{PREFIX}/namespaces/shop/prescale_replicas?labelSelector=a%3D%3D%3D"),
                400,
                "BadRequest",
            ),
            (
                format!(
                    "{PREFIX}/namespaces/shop/prescale_replicas?labelSelector={}",
                    "a".repeat(5000)
                ),
                414,
                "RequestURITooLong",
            ),
            ("/apis".to_string(), 404, "NotFound"),
            ("/nothing/here".to_string(), 404, "NotFound"),
        ] {
            let (got, body) = get(&app, &uri, None).await;
            assert_eq!(got.as_u16(), code, "{uri}: {body}");
            let v = parse(&body);
            assert_eq!(
                (v["kind"].as_str(), v["status"].as_str()),
                (Some("Status"), Some("Failure")),
                "{body}"
            );
            assert_eq!(v["reason"], reason, "{uri}");
            assert_eq!(v["code"], code);
        }
        let post = Request::post(PREFIX).body(Body::empty()).unwrap();
        let response = app.clone().oneshot(post).await.unwrap();
        assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
        // Readiness names the workload without a decision.
        let (code, body) = get(&app, "/readyz", None).await;
        assert_eq!(code, StatusCode::SERVICE_UNAVAILABLE);
        assert!(body.contains("shop/batch"), "{body}");
    }

    #[tokio::test]
    async fn only_the_front_proxy_reads_when_authentication_is_on() {
        let access = Access {
            require_front_proxy: true,
            allowed_names: vec!["front-proxy-client".into()],
        };
        let app = app(access, vec![]);
        let uri = format!("{PREFIX}/namespaces/shop/prescale_replicas");
        let (code, body) = get(&app, &uri, None).await;
        assert_eq!(code, StatusCode::UNAUTHORIZED);
        assert_eq!(parse(&body)["reason"], "Unauthorized");
        assert_eq!(
            get(&app, &uri, Some("someone-else")).await.0,
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(
            get(&app, &uri, Some("front-proxy-client")).await.0,
            StatusCode::OK
        );
        // Health stays open; /metrics counts what was answered.
        assert_eq!(get(&app, "/healthz", None).await.0, StatusCode::OK);
        assert_eq!(get(&app, "/readyz", None).await.0, StatusCode::OK);
        let (code, metrics) = get(&app, "/metrics", None).await;
        assert_eq!(code, StatusCode::OK);
        assert!(metrics.contains("prescale_http_requests_total{path=\"/apis/external.metrics.k8s.io/v1beta1/namespaces/{namespace}/{metric}\",code=\"401\"} 2"), "{metrics}");
    }
}
