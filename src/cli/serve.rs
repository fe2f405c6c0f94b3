//! `prescale serve`: the external metrics API and the KEDA external scaler over live
//! forecasts.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::Args;

use crate::serve::{self, Overrides, ServeConfig};

/// Flags of `prescale serve`; those given override the configuration file's values.
#[derive(Debug, Args)]
pub(super) struct ServeArgs {
    /// The YAML configuration (see the README; `examples/serve.yaml` runs on the bundled
    /// data without Prometheus).
    #[arg(long, value_name = "FILE")]
    config: PathBuf,

    /// Address of the external metrics API, /healthz, /readyz and /metrics.
    #[arg(long, value_name = "ADDR")]
    listen: Option<SocketAddr>,

    /// Where fitted models and the last decisions are kept across restarts.
    #[arg(long, value_name = "DIR")]
    state_dir: Option<PathBuf>,

    /// TLS certificate (PEM) [default: self-signed at start].
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    tls_cert: Option<PathBuf>,

    /// TLS private key (PEM).
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    tls_key: Option<PathBuf>,

    /// Serve plain HTTP instead of TLS (trials only).
    #[arg(long)]
    insecure_http: bool,

    /// The aggregator's front-proxy CA (`requestheader-client-ca-file` of the
    /// `kube-system/extension-apiserver-authentication` ConfigMap): API requests must come
    /// with a client certificate it signed.
    #[arg(long, value_name = "FILE")]
    requestheader_client_ca: Option<PathBuf>,

    /// Common names accepted on the front-proxy certificate (`requestheader-allowed-names`)
    /// [default: any the CA signed].
    #[arg(long, value_name = "NAME,...", value_delimiter = ',')]
    requestheader_allowed_names: Option<Vec<String>>,

    /// Check the configuration, print every problem, and exit.
    #[arg(long)]
    check: bool,
}

/// Runs `prescale serve`.
pub(super) fn run(args: ServeArgs) -> anyhow::Result<()> {
    let overrides = Overrides {
        listen: args.listen,
        state_dir: args.state_dir,
        tls: args.tls_cert.zip(args.tls_key),
        insecure_http: args.insecure_http,
        requestheader_client_ca: args.requestheader_client_ca,
        requestheader_allowed_names: args.requestheader_allowed_names,
    };
    if args.check {
        let config = ServeConfig::load(&args.config, &overrides)?;
        // The compliance block is the compliance check's to read: its problems too.
        let text = crate::files::read_limited_text(&args.config, crate::files::MAX_CONFIG_BYTES)?;
        let doc: serde_norway::Value = serde_norway::from_str(&text)?;
        crate::compliance::Settings::from_document(&doc)?;
        outln!(
            "{}: valid ({} workload(s), {} metric(s))",
            args.config.display(),
            config.workloads.len(),
            config
                .workloads
                .iter()
                .map(|w| w.metrics.len())
                .sum::<usize>()
        )?;
        return Ok(());
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("prescale-serve")
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async {
        let shutdown = async {
            let mut term =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = async {
                    match term.as_mut() {
                        Some(t) => { t.recv().await; }
                        None => std::future::pending::<()>().await,
                    }
                } => {}
            }
        };
        serve::run(
            &args.config,
            overrides,
            Some(Arc::new(crate::compliance::ServeCheck)),
            |started| {
                note!(
                    "serving the external metrics API on {}://{}{}{}",
                    if started.self_signed_cert.is_some() || !args.insecure_http {
                        "https"
                    } else {
                        "http"
                    },
                    started.https,
                    started
                        .grpc
                        .map(|g| format!(", the KEDA external scaler on {g}"))
                        .unwrap_or_default(),
                    started
                        .self_signed_cert
                        .map(|p| format!(" (self-signed certificate in {})", p.display()))
                        .unwrap_or_default()
                );
            },
            shutdown,
        )
        .await
    })?;
    Ok(())
}
