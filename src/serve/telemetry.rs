//! The server's own metrics, in Prometheus' exposition format at `/metrics`.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use std::sync::atomic::AtomicU64;

/// A served request: the route (not the raw path, which a client chooses) and the status.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// The route, e.g. `/apis/external.metrics.k8s.io/v1beta1/namespaces/{namespace}/{metric}`.
    pub path: String,
    /// The HTTP status, or the gRPC status name.
    pub code: String,
}

/// A route.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PathLabels {
    /// The route.
    pub path: String,
}

/// A workload.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct WorkloadLabels {
    /// Its namespace.
    pub namespace: String,
    /// Its name.
    pub workload: String,
}

/// A metric of a workload.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct MetricLabels {
    /// The workload's namespace.
    pub namespace: String,
    /// The workload.
    pub workload: String,
    /// The metric.
    pub metric: String,
}

/// The model a metric uses.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ModelLabels {
    /// The workload's namespace.
    pub namespace: String,
    /// The workload.
    pub workload: String,
    /// The metric.
    pub metric: String,
    /// The model (the registry name of what was fitted).
    pub model: String,
}

/// A model name.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FitLabels {
    /// The model.
    pub model: String,
}

/// The outcome of a configuration reload.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    /// `applied` or `refused`.
    pub outcome: String,
}

/// A compliance framework (`GDPR`, `HIPAA`, `SOX`, `PCI`, a user's, or `all`).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FrameworkLabels {
    /// The framework.
    pub framework: String,
}

type FloatGauge = Gauge<f64, AtomicU64>;

/// Span batches the process could not export to its OTLP collector (counted by whoever sets
/// up the exporter; one counter per process, shown by every [`Telemetry`]).
pub fn trace_export_failures() -> &'static Counter {
    static FAILURES: std::sync::OnceLock<Counter> = std::sync::OnceLock::new();
    FAILURES.get_or_init(Counter::default)
}

/// Every metric the server exports, registered once.
#[derive(Debug)]
pub struct Telemetry {
    registry: Registry,
    /// Requests by route and status.
    pub requests: Family<RequestLabels, Counter>,
    /// Request latency by route.
    pub latency: Family<PathLabels, Histogram>,
    /// Seconds since each metric's model was fitted.
    pub forecast_age: Family<MetricLabels, FloatGauge>,
    /// Fit duration by model.
    pub fit_duration: Family<FitLabels, Histogram>,
    /// 1 for the model each metric uses now.
    pub model_in_use: Family<ModelLabels, Gauge>,
    /// 1 while a workload is served its fallback.
    pub fallback_active: Family<WorkloadLabels, Gauge>,
    /// Refreshes that served a workload its fallback.
    pub fallbacks_served: Family<WorkloadLabels, Counter>,
    /// Failed Prometheus queries by metric.
    pub query_errors: Family<MetricLabels, Counter>,
    /// Failed fits by metric.
    pub fit_errors: Family<MetricLabels, Counter>,
    /// The replicas each workload's plan wants.
    pub desired_replicas: Family<WorkloadLabels, Gauge>,
    /// Seconds one refresh of every workload took.
    pub refresh_duration: Histogram,
    /// Configuration reloads by outcome.
    pub reloads: Family<OutcomeLabels, Counter>,
    /// 1 when front-proxy authentication is on.
    pub authentication_enabled: Gauge,
    /// 1 when the API is served over TLS.
    pub tls_enabled: Gauge,
    /// Audit records that could not be written.
    pub audit_errors: Counter,
    /// The configuration's compliance score, per framework and `all` (absent while no
    /// check has succeeded on the configuration in effect).
    pub compliance_score: Family<FrameworkLabels, FloatGauge>,
    /// Compliance checks that could not run.
    pub compliance_check_errors: Counter,
}

impl Default for Telemetry {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("prescale");
        let latency_buckets = || Histogram::new(exponential_buckets(0.00005, 2.0, 16));
        let t = Self {
            requests: Family::default(),
            latency: Family::new_with_constructor(latency_buckets),
            forecast_age: Family::default(),
            fit_duration: Family::new_with_constructor(|| {
                Histogram::new(exponential_buckets(0.001, 2.0, 18))
            }),
            model_in_use: Family::default(),
            fallback_active: Family::default(),
            fallbacks_served: Family::default(),
            query_errors: Family::default(),
            fit_errors: Family::default(),
            desired_replicas: Family::default(),
            refresh_duration: Histogram::new(exponential_buckets(0.001, 2.0, 18)),
            reloads: Family::default(),
            authentication_enabled: Gauge::default(),
            tls_enabled: Gauge::default(),
            audit_errors: Counter::default(),
            compliance_score: Family::default(),
            compliance_check_errors: Counter::default(),
            registry: Registry::default(),
        };
        registry.register(
            "http_requests",
            "Requests served, by route and status",
            t.requests.clone(),
        );
        registry.register(
            "http_request_duration_seconds",
            "Time to answer a request, by route",
            t.latency.clone(),
        );
        registry.register(
            "forecast_age_seconds",
            "Seconds since the metric's model was fitted",
            t.forecast_age.clone(),
        );
        registry.register(
            "fit_duration_seconds",
            "Time one fit took, by model",
            t.fit_duration.clone(),
        );
        registry.register(
            "model_in_use",
            "1 for the model each metric's forecast comes from",
            t.model_in_use.clone(),
        );
        registry.register(
            "fallback_active",
            "1 while a workload is served its fallback",
            t.fallback_active.clone(),
        );
        registry.register(
            "fallbacks_served",
            "Refreshes that served a workload its fallback",
            t.fallbacks_served.clone(),
        );
        registry.register(
            "prometheus_query_errors",
            "Failed Prometheus queries, by metric",
            t.query_errors.clone(),
        );
        registry.register("fit_errors", "Failed fits, by metric", t.fit_errors.clone());
        registry.register(
            "desired_replicas",
            "Replicas each workload's plan wants",
            t.desired_replicas.clone(),
        );
        registry.register(
            "refresh_duration_seconds",
            "Time one refresh of every workload took (queries, fits, plans)",
            t.refresh_duration.clone(),
        );
        registry.register(
            "config_reloads",
            "Configuration reloads, by outcome",
            t.reloads.clone(),
        );
        registry.register(
            "authentication_enabled",
            "1 when the API requires the aggregator's front-proxy certificate",
            t.authentication_enabled.clone(),
        );
        registry.register(
            "tls_enabled",
            "1 when the API is served over TLS",
            t.tls_enabled.clone(),
        );
        registry.register(
            "audit_write_errors",
            "Audit records that could not be written (the decisions were published)",
            t.audit_errors.clone(),
        );
        registry.register(
            "compliance_score",
            "Compliance score (0-100) of the configuration in effect, by framework (all: overall)",
            t.compliance_score.clone(),
        );
        registry.register(
            "compliance_check_errors",
            "Compliance checks of a loaded configuration that could not run",
            t.compliance_check_errors.clone(),
        );
        registry.register(
            "trace_export_failures",
            "Span batches that could not be exported to the OTLP collector",
            trace_export_failures().clone(),
        );
        Self { registry, ..t }
    }
}

impl Telemetry {
    /// The exposition text.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Encoding into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}
