//! The refresh loop's work: for each metric, read the history (Prometheus or a file), refit
//! on schedule on a bounded pool of blocking threads, keep the forecast anchored and
//! calibrated between refits with the same planner the replay uses, and decide each
//! workload's replicas; then publish every decision at once.
//!
//! Each metric's steps go through [`MetricPlanner`] exactly as a replay's steps do: when the
//! observation of a step arrives, its misses are recorded (`observe`), the model is refitted
//! if a refit is due (every `refitEvery`, counted on the data's own clock), and the forecast
//! to act on is anchored to that observation (`prepare`). The decision is [`serve_value`] at
//! the next HPA sync, so `serve` and `simulate` decide alike on the same history (a test
//! checks it step by step).
//!
//! Failures (Prometheus down or answering garbage, a failing fit) are counted per metric;
//! after the workload's `fallback.failureThreshold` consecutive failures, or when a forecast is
//! older than `fallback.maxForecastAge`, the workload is served its fallback, flagged in the
//! decision, the logs and `/metrics`, until a query and fit succeed again.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use futures_util::StreamExt as _;
use prometheus_http_query::Client;
use tokio::sync::Semaphore;
use tracing::field::Empty;
use tracing::Instrument as _;

use crate::forecast::{level_for_quantile, Forecast};
use crate::human::chain;
use crate::model::{season, FittedModel, Model, ModelError};
use crate::scale::config::{
    CurrentReplicas, FallbackServe, MetricConfig, MetricSource, WorkloadConfig,
};
use crate::scale::planner::{leads, serve_value, MetricPlanner, Prepared, SyncSettings};
use crate::scale::policy::{external_value_for, plan, PolicySettings};
use crate::scale::refit::{refit, Refit};
use crate::series::{format_millis, Millis, Series};
use crate::source::prometheus::{self, Credentials, PrometheusError, QueryOptions, RangeQuery};
use crate::source::{self, InputSettings};

use super::config::ServeConfig;
use super::snapshot::{MetricDecision, Snapshot, WorkloadDecision, FORMAT, VERSION};
use super::telemetry::{FitLabels, MetricLabels, ModelLabels, Telemetry, WorkloadLabels};

/// How much history of misses calibrates the headroom: a week, as `simulate` defaults to.
const CALIBRATION_WINDOW: Duration = Duration::from_secs(7 * 86_400);
/// Workloads refreshed at once (their fits are bounded separately by `refresh.concurrency`).
const WORKLOADS_AT_ONCE: usize = 32;

/// Why one refresh of a metric failed.
#[derive(Debug, thiserror::Error)]
pub enum MetricError {
    /// Prometheus failed.
    #[error("querying Prometheus")]
    Query(#[from] PrometheusError),
    /// The query's answer cannot be one metric.
    #[error(
        "the query returned {0} series; a metric needs exactly one (aggregate it, e.g. sum(...))"
    )]
    NotOneSeries(usize),
    /// The file could not be read.
    #[error("reading the file")]
    File(#[from] source::SourceError),
    /// The model could not be fitted or forecast.
    #[error("fitting")]
    Fit(#[from] ModelError),
    /// A blocking task failed (a panic inside a model, caught).
    #[error("a fit stopped unexpectedly: {0}")]
    Task(String),
}

/// A fit in effect: its forecast from the origin on.
#[derive(Debug, Clone)]
struct Fit {
    forecast: Forecast,
    rho: f64,
    /// The time of the last point the model saw.
    origin: Millis,
    model: &'static str,
}

/// One metric of a workload and everything known about it.
#[derive(Debug)]
struct MetricRunner {
    config: MetricConfig,
    model: Arc<dyn Model>,
    history: Option<Series>,
    /// A file's modification time and length when last read.
    file_stamp: Option<(SystemTime, u64)>,
    fit: Option<Fit>,
    seasons: Option<Vec<usize>>,
    /// Made with the first history, whose step sets the leads.
    planner: Option<MetricPlanner>,
    quantile: f64,
    startup: i64,
    hpa_sync: i64,
    prepared: Option<Prepared>,
    last_step: Option<Millis>,
    last_observed: f64,
    failures: u32,
    error: Option<String>,
    /// The model a previous run saved, until the first history shows whether it fits.
    saved: Option<FittedModel>,
}

impl MetricRunner {
    fn new(
        config: MetricConfig,
        policy: &PolicySettings,
        hpa_sync: u64,
    ) -> Result<Self, ModelError> {
        let model: Arc<dyn Model> = Arc::from(config.model.build()?);
        Ok(Self {
            config,
            model,
            history: None,
            file_stamp: None,
            fit: None,
            seasons: None,
            planner: None,
            quantile: policy.quantile,
            startup: policy.startup,
            hpa_sync: hpa_sync as i64,
            prepared: None,
            last_step: None,
            last_observed: f64::NAN,
            failures: 0,
            error: None,
            saved: None,
        })
    }

    /// True when the metric's clock is the wall clock (a live query), not its data's.
    fn live(&self) -> bool {
        matches!(self.config.source, Some(MetricSource::Query(_)))
    }

    /// Reads what is new; `Ok(None)` when nothing is.
    async fn read(&mut self, ctx: &Ctx<'_>) -> Result<Option<Series>, MetricError> {
        match self.config.source.clone() {
            Some(MetricSource::Query(q)) => self.read_query(ctx, &q).await,
            Some(MetricSource::File(path)) => {
                let span = tracing::info_span!(
                    "read_file",
                    metric = %self.config.target.name,
                    path = %path.display(),
                    points = Empty,
                );
                let read = self.read_file(&path).instrument(span.clone()).await;
                if let Ok(Some(series)) = &read {
                    span.record("points", series.len() as i64);
                }
                read
            }
            None => Ok(None),
        }
    }

    async fn read_query(&self, ctx: &Ctx<'_>, promql: &str) -> Result<Option<Series>, MetricError> {
        let (Some(client), Some(url)) = (ctx.shared.prometheus, ctx.shared.prometheus_url) else {
            return Ok(None);
        };
        let step = self
            .config
            .step
            .map_or(60_000, |s| s.as_millis() as Millis)
            .max(1000);
        let end = ctx.shared.now - ctx.shared.now.rem_euclid(step);
        let window = history_steps(&self.config) as Millis;
        // The newest point is read again every refresh: a late sample may still complete it,
        // and a failing Prometheus is noticed at once rather than at the next step.
        let start = match &self.history {
            Some(h) => h.timestamp(h.len() - 1).min(end),
            None => end - (window - 1) * step,
        };
        let query = RangeQuery {
            url: url.to_string(),
            query: promql.to_string(),
            start,
            end,
            step,
        };
        let got = match prometheus::query_range_on(client, &query, ctx.shared.options).await {
            Ok(got) => got,
            // Nothing new yet (a scrape not in): not a failure once there is a history.
            Err(PrometheusError::EmptyResult { .. }) if self.history.is_some() => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        let [new] =
            <[Series; 1]>::try_from(got).map_err(|all| MetricError::NotOneSeries(all.len()))?;
        // The range starts at the newest point, so its first point is that one again (the
        // series is built on the query's own grid): nothing new unless there is more.
        if self.history.is_some() && new.len() <= 1 {
            return Ok(None);
        }
        let merged = match &self.history {
            None => new,
            Some(old) => {
                // The re-read newest point keeps the value already processed.
                let mut values = old.values().to_vec();
                values.extend_from_slice(new.values().get(1..).unwrap_or(&[]));
                let keep = values.len().saturating_sub(window as usize);
                let start = old.timestamp(keep);
                Series::new(old.labels().clone(), start, step, values.split_off(keep)).map_err(
                    |e| {
                        MetricError::File(source::SourceError::Series {
                            name: promql.to_string(),
                            source: e,
                        })
                    },
                )?
            }
        };
        Ok(Some(merged))
    }

    async fn read_file(&mut self, path: &Path) -> Result<Option<Series>, MetricError> {
        let meta = std::fs::metadata(path).map_err(|source| source::SourceError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let stamp = (
            meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
            meta.len(),
        );
        if self.file_stamp == Some(stamp) && self.history.is_some() {
            return Ok(None);
        }
        let settings = InputSettings {
            files: vec![path.to_path_buf()],
            step: self.config.step.map(|s| s.as_millis() as Millis),
            ..InputSettings::default()
        };
        let loaded = tokio::task::spawn_blocking(move || source::load_inputs(&settings))
            .await
            .map_err(|e| MetricError::Task(e.to_string()))??;
        let [series] = <[Series; 1]>::try_from(loaded.series)
            .map_err(|all| MetricError::NotOneSeries(all.len()))?;
        self.file_stamp = Some(stamp);
        Ok(Some(series))
    }

    /// Runs the planner over every step newer than the last one seen, refitting when due.
    async fn process(&mut self, ctx: &Ctx<'_>, labels: &MetricLabels) -> Result<(), MetricError> {
        let Some(history) = self.history.clone() else {
            return Ok(());
        };
        let n = history.len();
        if n == 0 {
            return Ok(());
        }
        let step_s = (history.step() / 1000).max(1);
        if self.planner.is_none() {
            let window = (CALIBRATION_WINDOW.as_secs() as i64 / step_s).max(1) as usize;
            self.planner = Some(MetricPlanner::new(
                self.quantile,
                true,
                window,
                leads(self.startup, self.hpa_sync, step_s),
            ));
        }
        // A first look starts at the newest point: misses are collected from then on (until
        // enough are, the model's own interval gives the headroom).
        let first = match self.last_step {
            None => n - 1,
            Some(last) => (0..n).find(|&i| history.timestamp(i) > last).unwrap_or(n),
        };
        if let Some(saved) = self.saved.take() {
            if self.fit.is_none() {
                self.restore(saved, &history);
            }
        }
        let mut outcome = Ok(());
        for i in first..n {
            let (t, y) = (history.timestamp(i), history.values()[i]);
            if let (Some(_), Some(planner)) = (self.last_step, self.planner.as_mut()) {
                planner.observe(y);
            }
            let due = self
                .fit
                .as_ref()
                .is_none_or(|f| t >= f.origin + self.config.refit_every.as_millis() as Millis);
            if due {
                match self.refit(ctx, &history, i).await {
                    Ok(fit) => {
                        if let Some(old) = &self.fit {
                            ctx.shared
                                .telemetry
                                .model_in_use
                                .remove(&model_labels(labels, old.model));
                        }
                        ctx.shared
                            .telemetry
                            .model_in_use
                            .get_or_create(&model_labels(labels, fit.model))
                            .set(1);
                        self.fit = Some(fit);
                    }
                    // The last fit stays in effect (it ages towards the fallback); the
                    // failure is counted once per refresh.
                    Err(e) => outcome = Err(e),
                }
            }
            let fit = self.fit.as_ref().map(|f| (&f.forecast, f.rho));
            self.prepared = self.planner.as_mut().and_then(|p| p.prepare(fit, t, y));
            self.last_step = Some(t);
            self.last_observed = y;
        }
        outcome
    }

    /// The model saved by a previous run, when it fits this history's grid: the server plans
    /// with it at once and refits when its refit is due. A corrupt or foreign file is
    /// reported and ignored.
    fn restore(&mut self, fitted: FittedModel, history: &Series) {
        let name = &self.config.target.name;
        let origin = fitted.next() - fitted.step();
        let newest = history.timestamp(history.len() - 1);
        if fitted.step() != history.step()
            || origin > newest
            || (newest - origin) % history.step() != 0
        {
            tracing::warn!(metric = %name, "ignoring the saved model: fitted on another grid");
            return;
        }
        let steps = ((newest - origin) / history.step()) as usize;
        let horizon =
            steps + (self.config.horizon.as_millis() as i64 / history.step()).max(1) as usize;
        let levels: Vec<f64> = level_for_quantile(self.quantile)
            .filter(|l| *l > 0.0)
            .into_iter()
            .collect();
        match fitted.predict(horizon, &levels) {
            // The saved model has no training values to measure its errors' autocorrelation
            // with: the forecast is anchored without damping (ρ = 0) until the next refit.
            Ok(forecast) if forecast.mean.iter().all(|v| v.is_finite()) => {
                tracing::info!(metric = %name, model = fitted.model(), "planning with the saved model until its refit is due");
                self.fit = Some(Fit {
                    forecast,
                    rho: 0.0,
                    origin,
                    model: fitted.model(),
                });
            }
            _ => tracing::warn!(metric = %name, "ignoring the saved model: it does not forecast"),
        }
    }

    /// Fits the model on the history window ending at point `i`, on a blocking thread.
    async fn refit(
        &mut self,
        ctx: &Ctx<'_>,
        history: &Series,
        i: usize,
    ) -> Result<Fit, MetricError> {
        let window = history_steps(&self.config);
        let slice = history.slice((i + 1).saturating_sub(window)..i + 1);
        let seasons = self
            .seasons
            .get_or_insert_with(|| season::detect_for(&slice).1)
            .clone();
        let step_s = (history.step() / 1000).max(1);
        let lead_steps = (self.startup / step_s) as usize + 1;
        let refit_steps =
            (self.config.refit_every.as_millis() as i64 / history.step().max(1)) as usize;
        let horizon_steps =
            (self.config.horizon.as_millis() as i64 / history.step().max(1)) as usize;
        let horizon = horizon_steps.max(refit_steps + lead_steps + 1).max(1);
        let levels: Vec<f64> = level_for_quantile(self.quantile)
            .filter(|l| *l > 0.0)
            .into_iter()
            .collect();
        let model = self.model.clone();
        let permit = ctx
            .shared
            .fits
            .acquire()
            .await
            .map_err(|e| MetricError::Task(e.to_string()))?;
        let started = Instant::now();
        let origin = history.timestamp(i);
        let fit_span = tracing::info_span!(
            "fit",
            metric = %self.config.target.name,
            model = model.name(),
            fitted = Empty,
            fallback = Empty,
            series_length = slice.len() as i64,
            seasons = ?seasons,
            origin = %format_millis(origin),
            error = Empty,
        );
        let made = tokio::task::spawn_blocking(move || {
            refit(
                model.as_ref(),
                &slice,
                &seasons,
                horizon,
                &levels,
                &fit_span,
            )
        })
        .await
        .map_err(|e| MetricError::Task(e.to_string()))?;
        drop(permit);
        let Refit {
            fitted,
            forecast,
            rho,
        } = made?;
        ctx.shared
            .telemetry
            .fit_duration
            .get_or_create(&FitLabels {
                model: fitted.model().to_string(),
            })
            .observe(started.elapsed().as_secs_f64());
        let model = fitted.model();
        if let Some(path) = ctx.model_path(self) {
            // A model that cannot be saved still serves; the next start refits.
            let saved = tokio::task::spawn_blocking(move || fitted.save(&path)).await;
            if let Ok(Err(e)) = saved {
                tracing::warn!(error = %chain(&e), "could not save a fitted model");
            }
        }
        Ok(Fit {
            forecast,
            rho,
            origin,
            model,
        })
    }

    /// The metric's own clock now: the wall clock for a live query, the newest point of a
    /// file.
    fn clock(&self, wall: Millis) -> Option<Millis> {
        if self.live() {
            Some(wall)
        } else {
            self.last_step
        }
    }
}

fn model_labels(labels: &MetricLabels, model: &str) -> ModelLabels {
    ModelLabels {
        namespace: labels.namespace.clone(),
        workload: labels.workload.clone(),
        metric: labels.metric.clone(),
        model: model.to_string(),
    }
}

/// Points each fit sees.
fn history_steps(config: &MetricConfig) -> usize {
    let step = config.step.map_or(60_000, |s| s.as_millis()).max(1);
    ((config.history.as_millis() / step) as usize).max(4)
}

/// What one metric's refresh sees: what every refresh shares, and its workload.
struct Ctx<'a> {
    shared: &'a Shared<'a>,
    workload: (&'a str, &'a str),
}

impl Ctx<'_> {
    fn model_path(&self, m: &MetricRunner) -> Option<PathBuf> {
        Some(model_path(
            self.shared.state_dir?,
            self.workload.0,
            self.workload.1,
            &m.config.target.name,
        ))
    }
}

/// Where a metric's fitted model is kept under the state directory.
fn model_path(state_dir: &Path, namespace: &str, workload: &str, metric: &str) -> PathBuf {
    state_dir
        .join("models")
        .join(crate::files::path_component(namespace))
        .join(crate::files::path_component(workload))
        .join(format!("{}.json", crate::files::path_component(metric)))
}

/// The model a previous run saved for a metric; a corrupt or foreign file is reported and
/// ignored (the metric is refitted), never fatal.
fn load_saved(
    state_dir: &Path,
    namespace: &str,
    workload: &str,
    metric: &str,
) -> Option<FittedModel> {
    let path = model_path(state_dir, namespace, workload, metric);
    if !path.exists() {
        return None;
    }
    match FittedModel::load(&path) {
        Ok(f) => Some(f),
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %chain(&e), "ignoring the saved model");
            None
        }
    }
}

/// One workload and its metrics.
#[derive(Debug)]
struct WorkloadRunner {
    config: WorkloadConfig,
    metrics: Vec<MetricRunner>,
    last_desired: Option<i64>,
}

impl WorkloadRunner {
    fn key(&self) -> String {
        format!("{}/{}", self.config.namespace, self.config.workload)
    }

    fn labels(&self) -> WorkloadLabels {
        WorkloadLabels {
            namespace: self.config.namespace.clone(),
            workload: self.config.workload.clone(),
        }
    }

    async fn refresh(&mut self, shared: &Shared<'_>) -> Option<WorkloadDecision> {
        let ctx = Ctx {
            shared,
            workload: (&self.config.namespace, &self.config.workload),
        };
        let key = self.key();
        for m in &mut self.metrics {
            let labels = MetricLabels {
                namespace: self.config.namespace.clone(),
                workload: self.config.workload.clone(),
                metric: m.config.target.name.clone(),
            };
            let read = m.read(&ctx).await;
            let outcome = match read {
                Ok(Some(series)) => {
                    m.history = Some(series);
                    m.process(&ctx, &labels).await
                }
                Ok(None) => Ok(()),
                Err(e) => Err(e),
            };
            match outcome {
                Ok(()) => {
                    if m.failures > 0 {
                        tracing::info!(workload = %self.config.workload, metric = %labels.metric, "metric recovered");
                    }
                    m.failures = 0;
                    m.error = None;
                }
                Err(e) => {
                    m.failures += 1;
                    let text = chain(&e);
                    match &e {
                        MetricError::Query(_) | MetricError::NotOneSeries(_) => {
                            ctx.shared
                                .telemetry
                                .query_errors
                                .get_or_create(&labels)
                                .inc();
                        }
                        _ => {
                            ctx.shared.telemetry.fit_errors.get_or_create(&labels).inc();
                        }
                    }
                    tracing::warn!(workload = %key, metric = %labels.metric, failures = m.failures, error = %text, "refresh failed");
                    m.error = Some(text);
                }
            }
            if let (Some(fit), Some(clock)) = (&m.fit, m.clock(shared.now)) {
                ctx.shared
                    .telemetry
                    .forecast_age
                    .get_or_create(&labels)
                    .set(((clock - fit.origin) as f64 / 1000.0).max(0.0));
            }
        }
        let current = self.current_replicas(&ctx).await;
        self.decide(shared, current)
    }

    /// The replica count now: the configured query or count, else the last decision, else
    /// the minimum.
    async fn current_replicas(&self, ctx: &Ctx<'_>) -> i64 {
        let fallback = self.last_desired.unwrap_or(self.config.policy.min_replicas);
        match &self.config.current_replicas {
            Some(CurrentReplicas::Fixed(n)) => *n,
            Some(CurrentReplicas::Query(q)) => {
                let (Some(client), Some(url)) = (ctx.shared.prometheus, ctx.shared.prometheus_url)
                else {
                    return fallback;
                };
                let end = ctx.shared.now - ctx.shared.now.rem_euclid(15_000);
                let query = RangeQuery {
                    url: url.to_string(),
                    query: q.clone(),
                    start: end - 300_000,
                    end,
                    step: 15_000,
                };
                match prometheus::query_range_on(client, &query, ctx.shared.options).await {
                    Ok(series) => series
                        .first()
                        .and_then(|s| s.values().iter().rev().find(|v| v.is_finite()).copied())
                        .map_or(fallback, |v| v.round() as i64),
                    Err(e) => {
                        tracing::warn!(workload = %self.key(), error = %chain(&e), "could not read the current replica count; assuming {fallback}");
                        fallback
                    }
                }
            }
            None => fallback,
        }
    }

    fn decide(&mut self, shared: &Shared<'_>, current: i64) -> Option<WorkloadDecision> {
        let span = tracing::info_span!(
            "plan",
            metric = %self
                .metrics
                .iter()
                .map(|m| m.config.target.name.as_str())
                .collect::<Vec<_>>()
                .join(","),
            quantile = self.config.policy.quantile,
            current,
            desired = Empty,
            reason = Empty,
            fallback = Empty,
        );
        let _entered = span.enter();
        let decision = self.decide_inner(shared, current);
        match &decision {
            Some(d) => {
                span.record("desired", d.desired);
                span.record("reason", d.reason.as_str());
                if let Some(f) = &d.fallback {
                    span.record("fallback", f.as_str());
                }
            }
            None => {
                span.record("reason", "pending: no forecast yet");
            }
        }
        decision
    }

    fn decide_inner(&mut self, shared: &Shared<'_>, current: i64) -> Option<WorkloadDecision> {
        let w = &self.config;
        let fallback = &w.fallback;
        let max_age = fallback.max_forecast_age.as_millis() as Millis;
        let live = self.metrics.iter().any(MetricRunner::live);
        let sync_ms = shared.hpa_sync as Millis * 1000;
        // The decision's time: now for live data; for files, the next HPA sync after their
        // newest point, as a replay decides.
        let now = if live {
            shared.now
        } else {
            self.metrics.iter().filter_map(|m| m.last_step).max()? + sync_ms
        };
        let mut reasons = Vec::new();
        for m in &self.metrics {
            let name = &m.config.target.name;
            if m.failures >= fallback.failure_threshold {
                reasons.push(format!(
                    "{name} failed {} times in a row ({})",
                    m.failures,
                    m.error.as_deref().unwrap_or("unknown")
                ));
            } else if let (Some(fit), Some(clock)) = (&m.fit, m.clock(shared.now)) {
                if clock - fit.origin > max_age {
                    reasons.push(format!(
                        "the forecast of {name} is {} old",
                        humantime::format_duration(Duration::from_secs(
                            ((clock - fit.origin) / 1000) as u64
                        ))
                    ));
                }
            }
        }
        let pending = self.metrics.iter().any(|m| m.prepared.is_none());
        if reasons.is_empty() && pending {
            return None;
        }
        let targets: Vec<_> = self
            .metrics
            .iter()
            .map(|m| m.config.target.clone())
            .collect();
        let at_sync = SyncSettings {
            policy: &w.policy,
            sync: shared.hpa_sync as i64,
            capacity: 1.0,
            tolerance: w.tolerance,
        };
        let lead = PolicySettings {
            startup: w.policy.startup + shared.hpa_sync as i64,
            ..w.policy.clone()
        };
        let mut metrics: Vec<MetricDecision> = self
            .metrics
            .iter()
            .map(|m| {
                let own = m.prepared.as_ref().and_then(|p| {
                    plan(
                        &lead,
                        std::slice::from_ref(&m.config.target),
                        &[(&m.config.target.name, &p.forecast)],
                        now,
                        Some(current),
                    )
                    .ok()
                });
                MetricDecision {
                    name: m.config.target.name.clone(),
                    forecast: own.as_ref().map(|d| d.driver.load),
                    replicas: own.as_ref().map(|d| d.driver.replicas),
                    model: m.fit.as_ref().map(|f| f.model.to_string()),
                    fitted_at: m.fit.as_ref().map(|f| f.origin),
                    observed_at: m.last_step,
                    last_observed: m.last_observed.is_finite().then_some(m.last_observed),
                    failures: m.failures,
                    error: m.error.clone(),
                }
            })
            .collect();
        if reasons.is_empty() {
            let forecasts: Vec<(&str, &Forecast)> = self
                .metrics
                .iter()
                .filter_map(|m| {
                    Some((
                        m.config.target.name.as_str(),
                        &m.prepared.as_ref()?.forecast,
                    ))
                })
                .collect();
            match serve_value(&at_sync, &targets, &forecasts, now, current) {
                Ok((decision, value)) => {
                    self.last_desired = Some(decision.desired);
                    return Some(WorkloadDecision {
                        namespace: w.namespace.clone(),
                        workload: w.workload.clone(),
                        decided_at: shared.now,
                        desired: decision.desired,
                        value,
                        current: Some(current),
                        reason: decision.reason,
                        fallback: None,
                        metrics,
                    });
                }
                Err(e) => reasons.push(format!("no plan: {}", chain(&e))),
            }
        }
        // The fallback, as KEDA serves it.
        let desired = match fallback.serve {
            FallbackServe::Replicas(n) => n,
            FallbackServe::CurrentReplicas => current,
            FallbackServe::LastObservedLoad => self
                .metrics
                .iter()
                .filter(|m| m.last_observed.is_finite())
                .filter_map(|m| m.config.target.replicas_for(m.last_observed, Some(current)))
                .max()
                .unwrap_or(current),
        }
        .clamp(w.policy.min_replicas, w.policy.max_replicas);
        for m in &mut metrics {
            m.forecast = None;
        }
        let why = reasons.join("; ");
        tracing::warn!(workload = %self.key(), desired, reason = %why, "serving the fallback");
        self.last_desired = Some(desired);
        Some(WorkloadDecision {
            namespace: w.namespace.clone(),
            workload: w.workload.clone(),
            decided_at: shared.now,
            desired,
            value: external_value_for(desired, current, 1.0, w.tolerance),
            current: Some(current),
            reason: format!("fallback ({:?}) serves {desired} pods", fallback.serve),
            fallback: Some(why),
            metrics,
        })
    }
}

/// What every workload's refresh shares.
struct Shared<'a> {
    now: Millis,
    prometheus: Option<&'a Client>,
    prometheus_url: Option<&'a str>,
    options: &'a QueryOptions,
    fits: &'a Semaphore,
    telemetry: &'a Telemetry,
    state_dir: Option<&'a Path>,
    hpa_sync: u64,
}

/// Why the engine could not be built from a configuration.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// A model could not be built (checked at configuration time, so rare).
    #[error("workload {workload}, metric {metric}")]
    Model {
        /// The workload.
        workload: String,
        /// The metric.
        metric: String,
        /// Why.
        #[source]
        source: ModelError,
    },
    /// The Prometheus client could not be made.
    #[error("Prometheus")]
    Prometheus(#[from] PrometheusError),
    /// A credentials file could not be read.
    #[error("reading {}", path.display())]
    Credentials {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// Every workload's state, refreshed together.
pub struct Engine {
    config: Arc<ServeConfig>,
    workloads: Vec<WorkloadRunner>,
    prometheus: Option<Client>,
    options: QueryOptions,
    fits: Arc<Semaphore>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("workloads", &self.workload_keys())
            .field(
                "prometheus",
                &self.config.prometheus.as_ref().map(|p| &p.url),
            )
            .finish_non_exhaustive()
    }
}

impl Engine {
    /// The engine for `config`; metrics whose configuration is unchanged from `previous` keep
    /// their history, fit and calibration (a reload does not refit what did not change). On
    /// an error, `previous` is handed back untouched.
    pub fn new(
        config: Arc<ServeConfig>,
        previous: Option<Engine>,
    ) -> Result<Self, Box<(EngineError, Option<Engine>)>> {
        // Everything that can fail first, so a failure leaves `previous` as it was.
        let (prometheus, options) = match connect(&config) {
            Ok(c) => c,
            Err(e) => return Err(Box::new((e, previous))),
        };
        let reusable = |w: &WorkloadConfig, m: &MetricConfig| {
            previous.as_ref().is_some_and(|p| {
                p.workloads.iter().any(|o| {
                    o.config.namespace == w.namespace
                        && o.config.workload == w.workload
                        && o.config.policy == w.policy
                        && o.metrics.iter().any(|k| &k.config == m)
                })
            })
        };
        let mut fresh = Vec::new();
        for w in &config.workloads {
            for m in &w.metrics {
                if reusable(w, m) {
                    continue;
                }
                match MetricRunner::new(m.clone(), &w.policy, config.hpa_sync.as_secs()) {
                    Ok(mut r) => {
                        r.saved = config.state_dir.as_deref().and_then(|dir| {
                            load_saved(dir, &w.namespace, &w.workload, &m.target.name)
                        });
                        fresh.push(((w.namespace.clone(), w.workload.clone()), r));
                    }
                    Err(source) => {
                        let e = EngineError::Model {
                            workload: format!("{}/{}", w.namespace, w.workload),
                            metric: m.target.name.clone(),
                            source,
                        };
                        return Err(Box::new((e, previous)));
                    }
                }
            }
        }
        let mut old: Vec<WorkloadRunner> = previous.map(|e| e.workloads).unwrap_or_default();
        let mut workloads = Vec::new();
        for w in &config.workloads {
            // The planner's leads depend on the policy: a changed policy starts afresh.
            let mut kept = old
                .iter()
                .position(|o| {
                    o.config.namespace == w.namespace
                        && o.config.workload == w.workload
                        && o.config.policy == w.policy
                })
                .map(|i| old.swap_remove(i).metrics)
                .unwrap_or_default();
            let mut metrics = Vec::new();
            for m in &w.metrics {
                let runner = match kept.iter().position(|k| &k.config == m) {
                    Some(i) => kept.swap_remove(i),
                    None => {
                        let at = fresh
                            .iter()
                            .position(|((ns, name), r)| {
                                ns == &w.namespace && name == &w.workload && &r.config == m
                            })
                            .expect("built in the first pass");
                        fresh.swap_remove(at).1
                    }
                };
                metrics.push(runner);
            }
            workloads.push(WorkloadRunner {
                config: w.clone(),
                metrics,
                last_desired: None,
            });
        }
        Ok(Self {
            fits: Arc::new(Semaphore::new(config.concurrency)),
            config,
            workloads,
            prometheus,
            options,
        })
    }

    /// The configuration in effect.
    pub fn config(&self) -> &Arc<ServeConfig> {
        &self.config
    }

    /// Workloads as `namespace/name`, in configuration order.
    pub fn workload_keys(&self) -> Vec<String> {
        self.workloads.iter().map(WorkloadRunner::key).collect()
    }

    /// Refreshes every workload at wall-clock time `now` and returns the decisions (with the
    /// workloads still pending); `previous` supplies the decision of a workload that has none
    /// this time (restored from state, not yet refitted).
    pub async fn refresh(
        &mut self,
        now: Millis,
        telemetry: &Telemetry,
        previous: &Snapshot,
    ) -> Snapshot {
        let started = Instant::now();
        let shared = Shared {
            now,
            prometheus: self.prometheus.as_ref(),
            prometheus_url: self.config.prometheus.as_ref().map(|p| p.url.as_str()),
            options: &self.options,
            fits: &self.fits,
            telemetry,
            state_dir: self.config.state_dir.as_deref(),
            hpa_sync: self.config.hpa_sync.as_secs().max(1),
        };
        let decisions: Vec<(String, WorkloadLabels, Option<WorkloadDecision>)> =
            futures_util::stream::iter(self.workloads.iter_mut().map(|w| {
                let shared = &shared;
                // One refresh of one workload is one trace.
                let span = tracing::info_span!(
                    parent: None,
                    "refresh",
                    namespace = %w.config.namespace,
                    workload = %w.config.workload,
                    metrics = w.metrics.len() as i64,
                    desired = Empty,
                    fallback = Empty,
                );
                async move {
                    let decision = w.refresh(shared).instrument(span.clone()).await;
                    if let Some(d) = &decision {
                        span.record("desired", d.desired);
                        span.record("fallback", d.fallback.is_some());
                    }
                    (w.key(), w.labels(), decision)
                }
            }))
            .buffered(WORKLOADS_AT_ONCE)
            .collect()
            .await;
        let mut workloads = Vec::new();
        let mut pending = Vec::new();
        for (key, labels, decision) in decisions {
            match decision {
                Some(d) => {
                    telemetry
                        .fallback_active
                        .get_or_create(&labels)
                        .set(i64::from(d.fallback.is_some()));
                    if d.fallback.is_some() {
                        telemetry.fallbacks_served.get_or_create(&labels).inc();
                    }
                    telemetry
                        .desired_replicas
                        .get_or_create(&labels)
                        .set(d.desired);
                    workloads.push(d);
                }
                None => match previous
                    .workloads
                    .iter()
                    .find(|p| format!("{}/{}", p.namespace, p.workload) == key)
                {
                    Some(p) => workloads.push(p.clone()),
                    None => pending.push(key),
                },
            }
        }
        telemetry
            .refresh_duration
            .observe(started.elapsed().as_secs_f64());
        Snapshot {
            format: FORMAT.into(),
            version: VERSION,
            made_at: now,
            pending,
            workloads,
        }
    }
}

/// The Prometheus client and query options of `config`, when it has Prometheus.
fn connect(config: &ServeConfig) -> Result<(Option<Client>, QueryOptions), EngineError> {
    let Some(p) = &config.prometheus else {
        return Ok((None, QueryOptions::default()));
    };
    let read = |path: &Option<PathBuf>| -> Result<Option<Vec<u8>>, EngineError> {
        path.as_ref()
            .map(|p| {
                std::fs::read(p).map_err(|source| EngineError::Credentials {
                    path: p.clone(),
                    source,
                })
            })
            .transpose()
    };
    let credentials = Credentials {
        bearer_token: read(&p.bearer_token_file)?
            .map(|b| String::from_utf8_lossy(&b).trim().to_string()),
        ca_pem: read(&p.ca_file)?,
    };
    let options = QueryOptions {
        timeout: p.timeout,
        retries: p.retries,
        ..QueryOptions::default()
    };
    Ok((
        Some(prometheus::connect(&p.url, p.timeout, &credentials)?),
        options,
    ))
}

/// The wall clock, in ms since the epoch.
pub fn wall_clock() -> Millis {
    chrono::Utc::now().timestamp_millis()
}

/// Logs the decision that a workload's refresh made, for the operator's log.
pub fn describe(d: &WorkloadDecision) -> String {
    format!(
        "{}/{} at {}: {} pods ({})",
        d.namespace,
        d.workload,
        format_millis(d.decided_at),
        d.desired,
        d.fallback.as_deref().unwrap_or(&d.reason)
    )
}
