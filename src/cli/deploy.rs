//! `prescale deploy`: manifests that run `prescale serve` in a cluster.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Subcommand};

use crate::deploy::{self, RenderSettings};

/// `prescale deploy` and its subcommands.
#[derive(Debug, Args)]
pub(super) struct DeployArgs {
    #[command(subcommand)]
    command: DeployCommand,
}

#[derive(Debug, Subcommand)]
enum DeployCommand {
    /// Write the typed Kubernetes objects that run `serve` on a configuration: the server
    /// (prescale/), the APIService and an HPA per workload (external-metrics/), or a KEDA
    /// ScaledObject per workload (keda/).
    Render(RenderArgs),
}

/// Flags of `prescale deploy render`.
#[derive(Debug, Args)]
struct RenderArgs {
    /// The `serve` configuration (kept verbatim in a ConfigMap).
    #[arg(long, value_name = "FILE", required_unless_present = "clusters")]
    config: Option<PathBuf>,

    /// A clusters file (regions, clusters, workload placements): one folder per cluster under
    /// the output folder, each rendered as `--config` would render that cluster's own
    /// configuration.
    #[arg(long, value_name = "FILE", conflicts_with = "config")]
    clusters: Option<PathBuf>,

    /// Output folder (files from an earlier render that are no longer rendered are removed;
    /// nothing else there is touched).
    #[arg(long, value_name = "DIR")]
    out: PathBuf,

    /// The container image to run.
    #[arg(long, value_name = "IMAGE")]
    image: String,

    /// Name of the Deployment, Service and ServiceAccount.
    #[arg(long, default_value = "prescale")]
    name: String,

    /// Namespace the server runs in.
    #[arg(long, default_value = "prescale")]
    namespace: String,

    /// Pods of the Deployment (each refreshes on its own and serves the same decisions).
    #[arg(long, default_value_t = 1)]
    replicas: i32,

    /// The front-proxy CA (PEM) to mount where the configuration's authentication reads it:
    /// `kubectl get configmap -n kube-system extension-apiserver-authentication -o
    /// jsonpath='{.data.requestheader-client-ca-file}'`.
    #[arg(long, value_name = "FILE")]
    requestheader_client_ca: Option<PathBuf>,

    /// A Secret of type kubernetes.io/tls with the serving certificate [default: self-signed
    /// at start].
    #[arg(long, value_name = "NAME")]
    tls_secret: Option<String>,

    /// The CA (PEM) that signed that certificate, for the APIService's caBundle [default: the
    /// APIService skips verification].
    #[arg(long, value_name = "FILE", requires = "tls_secret")]
    ca_bundle: Option<PathBuf>,

    /// A PersistentVolumeClaim for the state folder [default: an emptyDir].
    #[arg(long, value_name = "NAME")]
    state_claim: Option<String>,
}

/// Runs `prescale deploy`.
pub(super) fn run(args: DeployArgs) -> anyhow::Result<()> {
    match args.command {
        DeployCommand::Render(args) => render(args),
    }
}

fn render(args: RenderArgs) -> anyhow::Result<()> {
    let read = |path: &PathBuf| {
        crate::files::read_limited_text(path, crate::files::MAX_CONFIG_BYTES)
            .with_context(|| format!("cannot read {}", path.display()))
    };
    let settings = RenderSettings {
        name: args.name,
        namespace: args.namespace,
        image: args.image,
        replicas: args.replicas,
        requestheader_client_ca: args
            .requestheader_client_ca
            .as_ref()
            .map(read)
            .transpose()?,
        tls_secret: args.tls_secret,
        ca_bundle: args.ca_bundle.as_ref().map(read).transpose()?,
        state_claim: args.state_claim,
    };
    let Some(config_path) = &args.config else {
        let path = args
            .clusters
            .as_ref()
            .context("--config or --clusters is needed")?;
        return render_clusters(&read(path)?, path, &settings, &args.out);
    };
    let config = read(config_path)?;
    let rendered = deploy::render(&config, &settings)
        .with_context(|| format!("cannot render {}", config_path.display()))?;
    for warning in &rendered.warnings {
        note!("warning: {warning}");
    }
    deploy::write(&args.out, &rendered)?;
    for m in &rendered.manifests {
        outln!("{}", args.out.join(&m.path).display())?;
    }
    let out = args.out.display();
    let has_keda = rendered
        .manifests
        .iter()
        .any(|m| m.path.starts_with("keda/"));
    note!(
        "apply with `kubectl apply -f {out}/prescale -f {out}/external-metrics` (prescale as the cluster's external metrics adapter){}",
        if has_keda {
            format!(", or `kubectl apply -f {out}/prescale -f {out}/keda` on a cluster running KEDA")
        } else {
            String::new()
        }
    );
    Ok(())
}

fn render_clusters(
    text: &str,
    path: &std::path::Path,
    settings: &RenderSettings,
    out: &std::path::Path,
) -> anyhow::Result<()> {
    let all = deploy::clusters::render_clusters(text, settings)
        .with_context(|| format!("cannot render {}", path.display()))?;
    for warning in &all.warnings {
        note!("warning: {warning}");
    }
    for c in &all.clusters {
        for warning in &c.rendered.warnings {
            note!("warning: cluster {}: {warning}", c.cluster.name);
        }
    }
    for c in &all.clusters {
        let dir = out.join(&c.cluster.name);
        deploy::write(&dir, &c.rendered)?;
        for m in &c.rendered.manifests {
            outln!("{}", dir.join(&m.path).display())?;
        }
    }
    for c in &all.clusters {
        let dir = out.join(&c.cluster.name);
        let dir = dir.display();
        let keda = c
            .rendered
            .manifests
            .iter()
            .any(|m| m.path.starts_with("keda/"));
        note!(
            "{} (region {}, zone {}): `kubectl --context {} apply -f {dir}/prescale -f {dir}/external-metrics`{}",
            c.cluster.name,
            c.cluster.region,
            c.residency,
            c.cluster.context,
            if keda {
                format!(" (or `-f {dir}/keda` instead of external-metrics on a cluster running KEDA)")
            } else {
                String::new()
            }
        );
    }
    Ok(())
}
