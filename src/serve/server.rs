//! The running server: listeners, the refresh loop that publishes decisions, configuration
//! reloads (SIGHUP, or a changed file), state kept across restarts, graceful shutdown.

use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;
use tracing::Instrument as _;

use crate::human::chain;
use crate::scale::config::ConfigError;

use super::api::{router, Access, AppState};
use super::audit_trail::AuditTrail;
use super::check::ConfigCheck;
use super::config::{Overrides, ServeConfig};
use super::engine::{describe, wall_clock, Engine, EngineError};
use super::keda::Scaler;
use super::listener::{serve, Limits};
use super::snapshot::{self, Published, Snapshot};
use super::telemetry::OutcomeLabels;
use super::tls::{server_config, TlsError};

/// How often the configuration file is checked for changes.
const CONFIG_POLL: Duration = Duration::from_secs(5);

/// Why the server could not start (once started, nothing but a signal stops it).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServeError {
    /// The configuration is invalid (every problem is listed).
    #[error("the configuration")]
    Config(#[from] ConfigError),
    /// TLS could not be set up.
    #[error("TLS")]
    Tls(#[from] TlsError),
    /// An address could not be bound.
    #[error("cannot listen on {addr}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The engine could not be built.
    #[error("the engine")]
    Engine(#[from] EngineError),
    /// The audit log could not be opened (or its newest record is not whole).
    #[error("the audit log")]
    Audit(#[from] crate::audit::AuditError),
}

/// What a started server tells its caller.
#[derive(Debug, Clone)]
pub struct Started {
    /// The API's address (the port is the one bound, useful with port 0).
    pub https: SocketAddr,
    /// The gRPC address, when one is served.
    pub grpc: Option<SocketAddr>,
    /// Where the self-signed certificate was written, when one was made and a state
    /// directory is configured.
    pub self_signed_cert: Option<PathBuf>,
}

/// Runs `prescale serve` with the configuration at `path` until `shutdown` resolves; `ready`
/// is told the bound addresses once the listeners are up; `check` (the compliance check) is
/// run on each configuration loaded.
pub async fn run(
    path: &Path,
    overrides: Overrides,
    check: Option<Arc<dyn ConfigCheck>>,
    ready: impl FnOnce(Started),
    shutdown: impl Future<Output = ()>,
) -> Result<(), ServeError> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let config = Arc::new(ServeConfig::load(path, &overrides)?);
    let window = config.refresh_every.as_secs().max(1);
    let namespaces = || config.workloads.iter().map(|w| w.namespace.clone());
    let keys: Vec<String> = config
        .workloads
        .iter()
        .map(|w| format!("{}/{}", w.namespace, w.workload))
        .collect();
    let restored = restore(&config, &keys);
    let audit = match &config.audit {
        Some(settings) => Some(Arc::new(AuditTrail::open(
            settings,
            &restored,
            wall_clock(),
        )?)),
        None => None,
    };
    let state = Arc::new(AppState::new(
        Published::new(restored.clone(), namespaces(), window),
        access(&config),
    ));
    state
        .telemetry
        .authentication_enabled
        .set(i64::from(config.authentication.is_some()));
    state
        .telemetry
        .tls_enabled
        .set(i64::from(!config.insecure_http));
    if config.authentication.is_none() {
        tracing::warn!("front-proxy authentication is off: the API answers any client (set authentication.requestheaderClientCaFile in a cluster)");
    }

    let mut self_signed_cert = None;
    let acceptor = if config.insecure_http {
        tracing::warn!("serving plain HTTP (insecureHttp): for trials only");
        None
    } else {
        let names = vec![
            "localhost".to_string(),
            "127.0.0.1".to_string(),
            "prescale".to_string(),
        ];
        let (tls, made) = server_config(
            config.tls.as_ref().map(|(c, k)| (c.as_path(), k.as_path())),
            config
                .authentication
                .as_ref()
                .map(|a| a.client_ca_file.as_path()),
            &names,
        )?;
        if let (Some(made), Some(dir)) = (made, &config.state_dir) {
            let path = dir.join("self-signed.crt");
            match crate::files::write_atomic(&path, made.cert_pem.as_bytes()) {
                Ok(()) => {
                    tracing::info!(path = %path.display(), "serving a self-signed certificate");
                    self_signed_cert = Some(path);
                }
                Err(e) => tracing::warn!(error = %e, "could not write the self-signed certificate"),
            }
        }
        Some(TlsAcceptor::from(tls))
    };

    let bind = |addr: SocketAddr| async move {
        TcpListener::bind(addr)
            .await
            .map_err(|source| ServeError::Bind { addr, source })
    };
    let https = bind(config.listen_https).await?;
    let grpc = match config.listen_grpc {
        Some(a) => Some(bind(a).await?),
        None => None,
    };
    let started = Started {
        https: https.local_addr().unwrap_or(config.listen_https),
        grpc: grpc.as_ref().and_then(|g| g.local_addr().ok()),
        self_signed_cert,
    };
    let (stop, stopped) = watch::channel(false);
    let (published_tx, published_rx) = watch::channel(0u64);
    let limits = Limits::default();
    let mut tasks = vec![tokio::spawn(serve(
        https,
        acceptor.clone(),
        router(state.clone()),
        limits,
        stopped.clone(),
    ))];
    if let Some(grpc) = grpc {
        let scaler = Scaler::new(state.clone(), published_rx);
        let app = Router::new().route_service("/externalscaler.ExternalScaler/{*method}", scaler);
        tasks.push(tokio::spawn(serve(
            grpc,
            acceptor,
            app,
            limits,
            stopped.clone(),
        )));
    }
    tracing::info!(https = %started.https, grpc = ?started.grpc, workloads = config.workloads.len(), "serving");
    ready(started);

    let engine = Engine::new(config.clone(), None).map_err(|r| r.0)?;
    if let Some(a) = &audit {
        let bytes = crate::files::read_limited(path, crate::files::MAX_CONFIG_BYTES).ok();
        let entry = a.configuration("load", path, bytes.as_deref(), None, wall_clock());
        if !a.append(vec![entry]).await {
            state.telemetry.audit_errors.inc();
        }
    }
    // After the load is recorded, so the check sees it in the audit log.
    if let Some(c) = &check {
        super::check::run(c, path, &state.telemetry).await;
    }
    let refresh = refresh_loop(
        engine,
        (path.to_path_buf(), overrides, check),
        state.clone(),
        published_tx,
        restored,
        stopped,
        audit,
    );
    tokio::select! {
        _ = refresh => {}
        _ = shutdown => {}
    }
    let _ = stop.send(true);
    for task in tasks {
        let _ = task.await;
    }
    let last = state.published.load().snapshot.clone();
    persist(&config, &last).await;
    tracing::info!("stopped");
    Ok(())
}

fn access(config: &ServeConfig) -> Access {
    Access {
        require_front_proxy: config.authentication.is_some(),
        allowed_names: config
            .authentication
            .as_ref()
            .map(|a| a.allowed_names.clone())
            .unwrap_or_default(),
    }
}

/// The persisted decisions of the configured workloads, served at once with their age; a
/// corrupt or foreign file is reported and ignored.
fn restore(config: &ServeConfig, keys: &[String]) -> Snapshot {
    let empty = || Snapshot::empty(keys.to_vec());
    let Some(dir) = &config.state_dir else {
        return empty();
    };
    match snapshot::restore(dir) {
        Ok(Some(mut s)) => {
            s.workloads
                .retain(|w| keys.contains(&format!("{}/{}", w.namespace, w.workload)));
            s.pending = keys
                .iter()
                .filter(|k| {
                    !s.workloads
                        .iter()
                        .any(|w| &format!("{}/{}", w.namespace, w.workload) == *k)
                })
                .cloned()
                .collect();
            for w in &s.workloads {
                let age = (wall_clock() - w.decided_at).max(0) / 1000;
                tracing::info!(workload = %format!("{}/{}", w.namespace, w.workload), age_seconds = age, "serving the persisted decision until the first refresh");
            }
            s
        }
        Ok(None) => empty(),
        Err(e) => {
            tracing::warn!(error = %chain(&e), "ignoring the persisted decisions");
            empty()
        }
    }
}

async fn persist(config: &ServeConfig, snapshot: &Arc<Snapshot>) {
    let Some(dir) = config.state_dir.clone() else {
        return;
    };
    let snapshot = snapshot.clone();
    let saved = tokio::task::spawn_blocking(move || snapshot::persist(&dir, &snapshot)).await;
    if let Ok(Err(e)) = saved {
        tracing::warn!(error = %chain(&e), "could not persist the decisions");
    }
}

/// Refreshes every `refresh.every`, publishing each time; reloads the configuration on SIGHUP
/// or when the file changes (a valid one replaces the old, an invalid one is refused with its
/// problems and the old keeps serving).
async fn refresh_loop(
    mut engine: Engine,
    (path, overrides, check): (PathBuf, Overrides, Option<Arc<dyn ConfigCheck>>),
    state: Arc<AppState>,
    published: watch::Sender<u64>,
    mut last: Snapshot,
    mut stopped: watch::Receiver<bool>,
    audit: Option<Arc<AuditTrail>>,
) {
    let mut hangup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
    let mut ticks = tokio::time::interval(engine.config().refresh_every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut poll = tokio::time::interval(CONFIG_POLL);
    let mut seen = crate::files::read_limited(&path, crate::files::MAX_CONFIG_BYTES).ok();
    let mut generation = 0u64;
    loop {
        let reload = tokio::select! {
            _ = ticks.tick() => false,
            _ = poll.tick() => {
                let now = crate::files::read_limited(&path, crate::files::MAX_CONFIG_BYTES).ok();
                let changed = now.is_some() && now != seen;
                if changed {
                    seen = now;
                }
                changed
            }
            _ = async {
                match hangup.as_mut() {
                    Some(h) => { h.recv().await; }
                    None => std::future::pending::<()>().await,
                }
            } => true,
            _ = stopped.changed() => return,
        };
        if reload {
            let refused;
            (engine, refused) = reload_config(engine, &path, &overrides, &state);
            let applied = refused.is_none();
            if let Some(a) = &audit {
                let bytes = crate::files::read_limited(&path, crate::files::MAX_CONFIG_BYTES).ok();
                let entry =
                    a.configuration("reload", &path, bytes.as_deref(), refused, wall_clock());
                if !a.append(vec![entry]).await {
                    state.telemetry.audit_errors.inc();
                }
            }
            // A refused file is not in effect: the old score stands for the old configuration.
            if let (Some(c), true) = (&check, applied) {
                super::check::run(c, &path, &state.telemetry).await;
            }
            ticks = tokio::time::interval(engine.config().refresh_every);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            continue;
        }
        let config = engine.config().clone();
        last = engine.refresh(wall_clock(), &state.telemetry, &last).await;
        for w in &last.workloads {
            tracing::debug!("{}", describe(w));
        }
        generation += 1;
        let span = tracing::info_span!(
            parent: None,
            "publish",
            generation = generation as i64,
            workloads = last.workloads.len() as i64,
            pending = last.pending.len() as i64,
            decision.made_at = last.made_at,
        );
        async {
            state.published.store(Arc::new(Published::new(
                last.clone(),
                config.workloads.iter().map(|w| w.namespace.clone()),
                config.refresh_every.as_secs().max(1),
            )));
            let _ = published.send(generation);
            if let Some(a) = &audit {
                let entries = a.decisions(&state.published.load().snapshot);
                if !a.append(entries).await {
                    state.telemetry.audit_errors.inc();
                }
            }
            persist(&config, &state.published.load().snapshot).await;
        }
        .instrument(span)
        .await;
    }
}

/// Loads the configuration again; returns the engine in effect and, when the new one was
/// refused, why.
fn reload_config(
    engine: Engine,
    path: &Path,
    overrides: &Overrides,
    state: &AppState,
) -> (Engine, Option<String>) {
    let labels = |outcome: &str| OutcomeLabels {
        outcome: outcome.into(),
    };
    match ServeConfig::load(path, overrides) {
        Ok(new) => {
            let old = engine.config().clone();
            if new.listen_https != old.listen_https
                || new.listen_grpc != old.listen_grpc
                || new.tls != old.tls
                || new.insecure_http != old.insecure_http
                || new.authentication.as_ref().map(|a| &a.client_ca_file)
                    != old.authentication.as_ref().map(|a| &a.client_ca_file)
            {
                tracing::warn!("listen addresses, TLS and the front-proxy CA change on restart; the rest is applied now");
            }
            let new = Arc::new(new);
            match Engine::new(new.clone(), Some(engine)) {
                Ok(next) => {
                    state.access.store(Arc::new(Access {
                        require_front_proxy: old.authentication.is_some(),
                        allowed_names: new
                            .authentication
                            .as_ref()
                            .map(|a| a.allowed_names.clone())
                            .unwrap_or_default(),
                    }));
                    state
                        .telemetry
                        .reloads
                        .get_or_create(&labels("applied"))
                        .inc();
                    tracing::info!(workloads = new.workloads.len(), "configuration reloaded");
                    (next, None)
                }
                Err(rejected) => {
                    let (e, previous) = *rejected;
                    state
                        .telemetry
                        .reloads
                        .get_or_create(&labels("refused"))
                        .inc();
                    tracing::error!(error = %chain(&e), "the new configuration cannot run; the old one keeps serving");
                    (
                        previous.expect("the engine in effect was handed over"),
                        Some(chain(&e)),
                    )
                }
            }
        }
        Err(problems) => {
            state
                .telemetry
                .reloads
                .get_or_create(&labels("refused"))
                .inc();
            tracing::error!(problems = %problems, "refused the new configuration; the old one keeps serving");
            (engine, Some(problems.to_string()))
        }
    }
}
