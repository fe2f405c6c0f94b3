//! The KEDA external scaler: the gRPC service `externalscaler.ExternalScaler` of KEDA's
//! `externalscaler.proto` (`IsActive`, `StreamIsActive`, `GetMetricSpec`, `GetMetrics`), so a
//! cluster that already runs KEDA adds prescale as a `type: external` trigger.
//!
//! The messages are written here with prost's derive and the service as a small tower
//! `Service` over tonic's `Grpc`, rather than generated from the `.proto` at build time: no
//! `protoc`, no build script, and five messages are clearer to read than 400 generated lines.
//! `proto/externalscaler.proto` holds the same contract for clients (the tests generate a
//! Python client from it); field numbers and the package name are the wire contract.
//!
//! A trigger's metadata names the workload (`workload`, default the ScaledObject's name) and
//! optionally one metric (`metric`): without it the scaler serves the workload's planned
//! replicas (target 1, so KEDA's AverageValue computes exactly the plan); with it, that
//! metric's planned forecast quantile (target: the metric's capacity per replica or target
//! value).

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::sync::watch;
use tonic::body::Body;
use tonic::server::Grpc;
use tonic::{Request, Response, Status};
use tonic_prost::ProstCodec;

use super::api::AppState;
use super::snapshot::{Published, WorkloadDecision};

/// A ScaledObject, as KEDA names it in every call.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ScaledObjectRef {
    /// The ScaledObject's name.
    #[prost(string, tag = "1")]
    pub name: String,
    /// Its namespace.
    #[prost(string, tag = "2")]
    pub namespace: String,
    /// The trigger's metadata.
    #[prost(map = "string, string", tag = "3")]
    pub scaler_metadata: HashMap<String, String>,
}

/// Whether the workload should run at all.
#[derive(Clone, PartialEq, prost::Message)]
pub struct IsActiveResponse {
    /// True when the plan wants pods.
    #[prost(bool, tag = "1")]
    pub result: bool,
}

/// The metrics a trigger scales on.
#[derive(Clone, PartialEq, prost::Message)]
pub struct GetMetricSpecResponse {
    /// One here.
    #[prost(message, repeated, tag = "1")]
    pub metric_specs: Vec<MetricSpec>,
}

/// A metric and its target.
#[derive(Clone, PartialEq, prost::Message)]
pub struct MetricSpec {
    /// The metric's name (KEDA prefixes it with `s<trigger index>-` for the HPA).
    #[prost(string, tag = "1")]
    pub metric_name: String,
    /// The target, rounded (KEDA before 2.17 reads only this).
    #[prost(int64, tag = "2")]
    pub target_size: i64,
    /// The target.
    #[prost(double, tag = "3")]
    pub target_size_float: f64,
}

/// A request for a metric's value.
#[derive(Clone, PartialEq, prost::Message)]
pub struct GetMetricsRequest {
    /// The ScaledObject.
    #[prost(message, optional, tag = "1")]
    pub scaled_object_ref: Option<ScaledObjectRef>,
    /// The metric, as [`MetricSpec::metric_name`] named it.
    #[prost(string, tag = "2")]
    pub metric_name: String,
}

/// A metric's value.
#[derive(Clone, PartialEq, prost::Message)]
pub struct GetMetricsResponse {
    /// Exactly one.
    #[prost(message, repeated, tag = "1")]
    pub metric_values: Vec<MetricValue>,
}

/// One value.
#[derive(Clone, PartialEq, prost::Message)]
pub struct MetricValue {
    /// The metric.
    #[prost(string, tag = "1")]
    pub metric_name: String,
    /// The value rounded up (KEDA before 2.17 reads only this).
    #[prost(int64, tag = "2")]
    pub metric_value: i64,
    /// The value.
    #[prost(double, tag = "3")]
    pub metric_value_float: f64,
}

/// The gRPC service name, part of every method's path.
pub const SERVICE: &str = "externalscaler.ExternalScaler";

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;
type ActiveStream =
    Pin<Box<dyn tokio_stream::Stream<Item = Result<IsActiveResponse, Status>> + Send + 'static>>;

/// The scaler: reads the published decisions, and wakes streaming clients when they change.
#[derive(Debug, Clone)]
pub struct Scaler {
    state: Arc<AppState>,
    /// Bumped at every publication.
    published: watch::Receiver<u64>,
}

impl Scaler {
    /// The scaler over `state`; `published` changes each time new decisions are published.
    pub fn new(state: Arc<AppState>, published: watch::Receiver<u64>) -> Self {
        Self { state, published }
    }
}

/// What a trigger asks for.
struct Target {
    namespace: String,
    workload: String,
    metric: Option<String>,
}

impl Target {
    fn of(r: &ScaledObjectRef) -> Result<Self, Status> {
        let workload = r
            .scaler_metadata
            .get("workload")
            .cloned()
            .unwrap_or_else(|| r.name.clone());
        if workload.is_empty() || r.namespace.is_empty() {
            return Err(Status::invalid_argument(
                "the ScaledObject needs a namespace, and a name or a `workload` in the trigger's metadata",
            ));
        }
        Ok(Self {
            namespace: r.namespace.clone(),
            workload,
            metric: r.scaler_metadata.get("metric").cloned(),
        })
    }

    /// The name the metric is given (lower case: some KEDA versions lower-case it).
    fn metric_name(&self) -> String {
        match &self.metric {
            None => format!("prescale-{}", self.workload).to_lowercase(),
            Some(m) => format!("prescale-{}-{}", self.workload, m).to_lowercase(),
        }
    }

    fn decision<'a>(&self, published: &'a Published) -> Result<&'a WorkloadDecision, Status> {
        let snapshot = &published.snapshot;
        if let Some(d) = snapshot
            .workloads
            .iter()
            .find(|w| w.namespace == self.namespace && w.workload == self.workload)
        {
            return Ok(d);
        }
        let key = format!("{}/{}", self.namespace, self.workload);
        Err(if snapshot.pending.contains(&key) {
            Status::unavailable(format!(
                "no decision yet for {key}: the first forecast is being made"
            ))
        } else {
            Status::not_found(format!("workload {key} is not configured in prescale"))
        })
    }

    /// (value, target) of what the trigger scales on.
    fn value(&self, published: &Published) -> Result<(f64, f64), Status> {
        let d = self.decision(published)?;
        match &self.metric {
            None => Ok((d.value, 1.0)),
            Some(name) => {
                let m = d.metrics.iter().find(|m| &m.name == name).ok_or_else(|| {
                    Status::not_found(format!(
                        "workload {}/{} has no metric {name}",
                        d.namespace, d.workload
                    ))
                })?;
                let forecast = m.forecast.ok_or_else(|| {
                    Status::unavailable(format!(
                        "metric {name} has no forecast now ({})",
                        d.fallback.as_deref().unwrap_or("not fitted yet")
                    ))
                })?;
                let target = m
                    .replicas
                    .filter(|r| *r > 0)
                    .map_or(1.0, |r| (forecast / r as f64).max(f64::MIN_POSITIVE));
                Ok((forecast, target))
            }
        }
    }
}

impl Scaler {
    fn is_active(&self, r: &ScaledObjectRef) -> Result<IsActiveResponse, Status> {
        let target = Target::of(r)?;
        let published = self.state.published.load();
        Ok(IsActiveResponse {
            result: target.decision(&published)?.desired > 0,
        })
    }

    fn metric_spec(&self, r: &ScaledObjectRef) -> Result<GetMetricSpecResponse, Status> {
        let target = Target::of(r)?;
        let published = self.state.published.load();
        let (_, size) = target.value(&published)?;
        Ok(GetMetricSpecResponse {
            metric_specs: vec![MetricSpec {
                metric_name: target.metric_name(),
                target_size: size.ceil().max(1.0) as i64,
                target_size_float: size,
            }],
        })
    }

    fn metrics(&self, r: &GetMetricsRequest) -> Result<GetMetricsResponse, Status> {
        let object = r
            .scaled_object_ref
            .as_ref()
            .ok_or_else(|| Status::invalid_argument("the request names no ScaledObject"))?;
        let target = Target::of(object)?;
        let published = self.state.published.load();
        let (value, _) = target.value(&published)?;
        Ok(GetMetricsResponse {
            metric_values: vec![MetricValue {
                metric_name: target.metric_name(),
                metric_value: value.ceil() as i64,
                metric_value_float: value,
            }],
        })
    }

    /// The activity now, then again each time it changes.
    fn activity_stream(&self, r: ScaledObjectRef) -> Result<ActiveStream, Status> {
        use futures_util::future::ready;
        use futures_util::StreamExt as _;
        let first = self.is_active(&r)?.result;
        let scaler = self.clone();
        let later = tokio_stream::wrappers::WatchStream::from_changes(self.published.clone())
            .filter_map(move |_| ready(scaler.is_active(&r).ok().map(|a| a.result)));
        let changes = futures_util::stream::iter([first])
            .chain(later)
            .scan(None, |last: &mut Option<bool>, v| {
                let changed = *last != Some(v);
                *last = Some(v);
                ready(Some(changed.then_some(v)))
            })
            .filter_map(ready)
            .map(|result| Ok(IsActiveResponse { result }));
        Ok(Box::pin(changes))
    }
}

/// Adapts a closure to a tower `Service`, which tonic turns into a unary or streaming method.
struct Method<F>(F);

impl<F, Fut, M, R> tower_service::Service<Request<M>> for Method<F>
where
    F: FnMut(Request<M>) -> Fut,
    Fut: Future<Output = Result<Response<R>, Status>>,
{
    type Response = Response<R>;
    type Error = Status;
    type Future = Fut;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Status>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<M>) -> Fut {
        (self.0)(request)
    }
}

impl<B> tower_service::Service<http::Request<B>> for Scaler
where
    B: http_body::Body + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>> + Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let scaler = self.clone();
        Box::pin(async move {
            let method = request
                .uri()
                .path()
                .strip_prefix("/externalscaler.ExternalScaler/")
                .unwrap_or("")
                .to_string();
            let s = scaler.clone();
            Ok(match method.as_str() {
                "IsActive" => {
                    Grpc::new(ProstCodec::default())
                        .unary(
                            Method(move |r: Request<ScaledObjectRef>| {
                                let out = s.is_active(r.get_ref()).map(Response::new);
                                async move { out }
                            }),
                            request,
                        )
                        .await
                }
                "StreamIsActive" => {
                    Grpc::new(ProstCodec::default())
                        .server_streaming(
                            Method(move |r: Request<ScaledObjectRef>| {
                                let out = s.activity_stream(r.into_inner()).map(Response::new);
                                async move { out }
                            }),
                            request,
                        )
                        .await
                }
                "GetMetricSpec" => {
                    Grpc::new(ProstCodec::default())
                        .unary(
                            Method(move |r: Request<ScaledObjectRef>| {
                                let out = s.metric_spec(r.get_ref()).map(Response::new);
                                async move { out }
                            }),
                            request,
                        )
                        .await
                }
                "GetMetrics" => {
                    Grpc::new(ProstCodec::default())
                        .unary(
                            Method(move |r: Request<GetMetricsRequest>| {
                                let out = s.metrics(r.get_ref()).map(Response::new);
                                async move { out }
                            }),
                            request,
                        )
                        .await
                }
                // e.g. StreamMetricSpec of newer KEDA: it falls back to GetMetricSpec.
                _ => {
                    Status::unimplemented(format!("{SERVICE} has no method {method:?}")).into_http()
                }
            })
        })
    }
}
