//! Where the library's `tracing` output goes: compact lines on stderr (filtered by
//! `PRESCALE_LOG`), and, when `OTEL_EXPORTER_OTLP_ENDPOINT` is set, every span of the crate
//! exported over OTLP/HTTP (protobuf) to that collector.
//!
//! Export is batched on the SDK's own thread: a span ends in a bounded queue (dropped when it
//! is full) and nothing in a request or a fit waits on the collector. A failed export (the
//! collector down or refusing) is counted in `prescale_trace_export_failures_total` of
//! `serve`'s `/metrics`, and nothing else happens. The standard variables are read by the
//! SDK: `OTEL_SERVICE_NAME` (default `prescale`), `OTEL_RESOURCE_ATTRIBUTES`,
//! `OTEL_TRACES_SAMPLER` and `OTEL_TRACES_SAMPLER_ARG`, `OTEL_BSP_*` (batching),
//! `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`, `OTEL_EXPORTER_OTLP_HEADERS` and `_TIMEOUT`.

use std::sync::OnceLock;
use std::time::Duration;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{SdkTracerProvider, SpanData, SpanExporter};
use opentelemetry_sdk::Resource;
use tracing_subscriber::filter::{EnvFilter, LevelFilter, Targets};
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::Layer as _;

use crate::serve::telemetry::trace_export_failures;

/// The provider, kept to flush its last spans at exit.
static PROVIDER: OnceLock<SdkTracerProvider> = OnceLock::new();

/// The OTLP exporter, counting its failed exports.
#[derive(Debug)]
struct Counted<E>(E);

impl<E: SpanExporter> SpanExporter for Counted<E> {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        let result = self.0.export(batch).await;
        if result.is_err() {
            trace_export_failures().inc();
        }
        result
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.0.shutdown_with_timeout(timeout)
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.0.force_flush()
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.0.set_resource(resource);
    }
}

/// The OTLP provider when `OTEL_EXPORTER_OTLP_ENDPOINT` (or the traces one) is set; a
/// collector that cannot be reached is not an error (exports fail and are counted).
fn otlp_provider() -> Option<SdkTracerProvider> {
    let set = |name: &str| std::env::var_os(name).is_some_and(|v| !v.is_empty());
    if !set("OTEL_EXPORTER_OTLP_ENDPOINT") && !set("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") {
        return None;
    }
    if let Ok(protocol) = std::env::var("OTEL_EXPORTER_OTLP_PROTOCOL") {
        if protocol != "http/protobuf" {
            note!("OTEL_EXPORTER_OTLP_PROTOCOL={protocol}: prescale exports http/protobuf only (point the endpoint at the collector's OTLP/HTTP port, 4318)");
        }
    }
    // The exporter's HTTP client is the crate's reqwest, whose TLS is rustls on `ring`.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let exporter = match opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .build()
    {
        Ok(e) => e,
        Err(e) => {
            note!("not exporting traces: {e}");
            return None;
        }
    };
    let mut resource = Resource::builder();
    let named = set("OTEL_SERVICE_NAME")
        || std::env::var("OTEL_RESOURCE_ATTRIBUTES").is_ok_and(|a| a.contains("service.name="));
    if !named {
        resource = resource.with_service_name("prescale");
    }
    Some(
        SdkTracerProvider::builder()
            .with_batch_exporter(Counted(exporter))
            .with_resource(resource.build())
            .build(),
    )
}

/// Sets up the subscriber once: stderr lines at `warn` (or as `PRESCALE_LOG` says) and, with
/// an OTLP endpoint, the crate's spans at `info` and above exported.
pub(super) fn init() {
    let filter = EnvFilter::try_from_env("PRESCALE_LOG").unwrap_or_else(|_| EnvFilter::new("warn"));
    let stderr = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_target(false)
        .without_time()
        .with_filter(filter);
    let otel = otlp_provider().map(|provider| {
        let tracer = provider.tracer("prescale");
        let _ = PROVIDER.set(provider);
        tracing_opentelemetry::layer()
            .with_tracer(tracer)
            .with_filter(
                Targets::new()
                    .with_target("prescale", LevelFilter::INFO)
                    .with_default(LevelFilter::OFF),
            )
    });
    // A second call (tests running several commands in one process) keeps the first.
    let _ = tracing_subscriber::registry()
        .with(stderr)
        .with(otel)
        .try_init();
}

/// Exports the spans still queued (at most a few seconds when the collector is away).
pub(super) fn flush() {
    if let Some(provider) = PROVIDER.get() {
        let _ = provider.force_flush();
    }
}
