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
    /// Plan the share of global traffic each region takes, step by step, from each region's
    /// forecast demand and capacity; optionally an Istio VirtualService for the current step.
    Weights(WeightsArgs),
    /// Replay traffic weights over real traces (one per region, one region failing for a
    /// while) and print the load each way of weighting leaves unserved.
    WeightsReplay(ReplayArgs),
    /// Write an Indexed batch/v1 Job that runs a backtest in N shards (merge them with
    /// `prescale backtest merge`).
    RenderJob(RenderJobArgs),
}

/// Flags of `prescale deploy render-job`.
#[derive(Debug, Args)]
struct RenderJobArgs {
    /// Shards (the Job's completions).
    #[arg(long)]
    shards: i32,

    /// The Job's YAML file.
    #[arg(long, value_name = "FILE")]
    out: PathBuf,

    /// The container image to run.
    #[arg(long, value_name = "IMAGE")]
    image: String,

    /// The Job's name (also the results sub-folder).
    #[arg(long, default_value = "prescale-backtest")]
    name: String,

    /// Its namespace.
    #[arg(long, default_value = "prescale")]
    namespace: String,

    /// Pods at once [default: all shards].
    #[arg(long)]
    parallelism: Option<i32>,

    /// Retries of one shard before it counts as failed (the others keep their results).
    #[arg(long, default_value_t = 2)]
    retries_per_shard: i32,

    /// CPU per pod (request and limit).
    #[arg(long, default_value = "1")]
    cpu: String,

    /// Memory per pod (request and limit).
    #[arg(long, default_value = "2Gi")]
    memory: String,

    /// PersistentVolumeClaim with the dataset, mounted read-only at /data (the working
    /// folder: give the inputs relative to it).
    #[arg(long, value_name = "PVC")]
    dataset_claim: String,

    /// PersistentVolumeClaim the shards write to, mounted at /results.
    #[arg(long, value_name = "PVC")]
    results_claim: String,

    /// The backtest's arguments, after `--` (no --output or --shard: the Job sets them).
    #[arg(last = true, required = true, value_name = "BACKTEST ARGS")]
    backtest: Vec<String>,
}

/// Flags of `prescale deploy weights-replay`.
#[derive(Debug, Args)]
struct ReplayArgs {
    /// One trace per region (its own demand), on one grid; the region is the file's stem.
    #[arg(long, value_name = "FILE", required = true, num_args = 1..)]
    trace: Vec<PathBuf>,

    /// How much is replayed (the end of the traces); the time before is history.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "7d")]
    replay: std::time::Duration,

    /// History each forecast fit sees.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "14d")]
    fit_window: std::time::Duration,

    /// The region that fails (a trace's stem).
    #[arg(long, value_name = "REGION")]
    down: String,

    /// When it fails, after the replay's start.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "3d12h")]
    down_at: std::time::Duration,

    /// How long it stays down.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "1h")]
    down_for: std::time::Duration,

    /// Each region's capacity: this times the 90th percentile of its own demand before the
    /// replay.
    #[arg(long, default_value_t = 1.2)]
    headroom: f64,

    /// The most a weight moves per step.
    #[arg(long, default_value_t = 0.1)]
    max_change: f64,

    /// The forecasting model.
    #[arg(long, default_value = "seasonal-naive")]
    model: String,

    /// How often forecasts are refitted (each covers that far ahead).
    #[arg(long, value_parser = humantime::parse_duration, default_value = "1h")]
    refit_every: std::time::Duration,

    /// Seasons in steps [default: one day].
    #[arg(long, value_delimiter = ',')]
    season: Vec<usize>,
}

/// Flags of `prescale deploy weights`.
#[derive(Debug, Args)]
struct WeightsArgs {
    /// The plan: regions with their forecast files (`prescale forecast` output), capacity,
    /// `down` (true, or windows {from, until} of steps or times), route destinations;
    /// `maxChange`, `current` weights, `virtualService`.
    #[arg(long, value_name = "FILE")]
    plan: PathBuf,

    /// Write the schedule here (JSON, or YAML for .yaml/.yml) [default: JSON on stdout].
    #[arg(long, value_name = "FILE")]
    output: Option<PathBuf>,

    /// Write the Istio VirtualService for the first step (the current one) here.
    #[arg(long, value_name = "FILE")]
    virtual_service: Option<PathBuf>,
}

/// Flags of `prescale deploy render`.
#[derive(Debug, Args)]
struct RenderArgs {
    /// The `serve` configuration (kept verbatim in a ConfigMap).
    #[arg(long, value_name = "FILE", required_unless_present = "clusters")]
    config: Option<PathBuf>,

    /// A clusters file (regions, clusters, workload placements): one folder per cluster under
    /// the output folder, each rendered as `--config` would render that cluster's own
    /// configuration (a cluster's own `tls` and `requestheaderClientCA` in place of the
    /// certificate flags).
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
        DeployCommand::Weights(args) => weights(args),
        DeployCommand::WeightsReplay(args) => weights_replay(args),
        DeployCommand::RenderJob(args) => render_job(args),
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
    let base = path.parent().unwrap_or(std::path::Path::new("."));
    let all = deploy::clusters::render_clusters(text, base, settings)
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

fn weights(args: WeightsArgs) -> anyhow::Result<()> {
    let text = crate::files::read_limited_text(&args.plan, crate::files::MAX_CONFIG_BYTES)
        .with_context(|| format!("cannot read {}", args.plan.display()))?;
    let base = args.plan.parent().unwrap_or(std::path::Path::new("."));
    let plan = deploy::weights::WeightsPlan::from_yaml(&text, base)
        .with_context(|| format!("invalid plan {}", args.plan.display()))?;
    let schedule = plan.schedule()?;
    let yaml = args
        .output
        .as_ref()
        .and_then(|p| p.extension())
        .is_some_and(|e| e == "yaml" || e == "yml");
    let body = if yaml {
        serde_norway::to_string(&schedule)?
    } else {
        serde_json::to_string_pretty(&schedule)? + "\n"
    };
    match &args.output {
        Some(path) => crate::files::write_atomic(path, body.as_bytes())
            .with_context(|| format!("cannot write {}", path.display()))?,
        None => {
            use std::io::Write as _;
            std::io::stdout().lock().write_all(body.as_bytes())?;
        }
    }
    let short = schedule.steps.iter().filter(|s| s.shortage > 0.0).count();
    note!(
        "{} step(s) over {} region(s); {short} step(s) short, {:.3} unserved in all",
        schedule.steps.len(),
        schedule.regions.len(),
        schedule.total_shortage
    );
    if let Some(path) = &args.virtual_service {
        let first = schedule
            .steps
            .first()
            .context("the forecasts have no step to route")?;
        let vs = plan.virtual_service(first).context(
            "no VirtualService: the plan has no virtualService block, or no region can take traffic now",
        )?;
        crate::files::write_atomic(path, serde_norway::to_string(&vs)?.as_bytes())
            .with_context(|| format!("cannot write {}", path.display()))?;
        note!(
            "VirtualService for the current step written to {}",
            path.display()
        );
    }
    Ok(())
}

fn weights_replay(args: ReplayArgs) -> anyhow::Result<()> {
    use crate::deploy::traffic_replay::{align, replay, ReplaySettings};
    let mut traces = Vec::new();
    let mut names = Vec::new();
    for path in &args.trace {
        let mut loaded = crate::source::load(path, &crate::source::LoadOptions::default())
            .with_context(|| format!("cannot read {}", path.display()))?;
        anyhow::ensure!(loaded.len() == 1, "{}: expected one series", path.display());
        traces.push(loaded.remove(0));
        names.push(
            path.file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default(),
        );
    }
    anyhow::ensure!(
        traces.len() >= 2,
        "--trace: a replay needs at least two regions"
    );
    let traces = align(traces)?;
    let step_ms = traces[0].step();
    let steps = |d: std::time::Duration| (d.as_millis() as i64 / step_ms.max(1)) as usize;
    let down_region = names
        .iter()
        .position(|n| *n == args.down)
        .with_context(|| format!("--down {}: not one of {}", args.down, names.join(", ")))?;
    let seasons = if args.season.is_empty() {
        vec![steps(std::time::Duration::from_secs(86_400)).max(1)]
    } else {
        args.season.clone()
    };
    let model = crate::model::build(&args.model, &serde_json::Value::Null)?;
    let settings = ReplaySettings {
        steps: steps(args.replay),
        headroom: args.headroom,
        down_region,
        down_at: steps(args.down_at),
        down_for: steps(args.down_for).max(1),
        max_change: args.max_change,
        refit_every: steps(args.refit_every).max(1),
        fit_window: steps(args.fit_window),
        seasons,
    };
    let started = std::time::Instant::now();
    let result = replay(&traces, model.as_ref(), &settings)?;
    note!(
        "{} regions ({}), {} steps replayed, {} down for {} steps from step {}; capacity {} ({:.1} s)",
        names.len(),
        names.join(", "),
        settings.steps,
        args.down,
        settings.down_for,
        settings.down_at,
        result
            .capacity
            .iter()
            .map(|c| format!("{c:.1}"))
            .collect::<Vec<_>>()
            .join("/"),
        started.elapsed().as_secs_f64()
    );
    outln!("strategy,unserved,unserved_share,unserved_during_failure")?;
    for o in &result.outcomes {
        outln!(
            "{},{:.1},{:.6},{:.1}",
            o.strategy,
            o.unserved,
            o.unserved_share,
            o.unserved_during_failure
        )?;
    }
    Ok(())
}

fn render_job(args: RenderJobArgs) -> anyhow::Result<()> {
    use clap::Parser as _;
    let out = args.out;
    let settings = deploy::job::JobSettings {
        name: args.name,
        namespace: args.namespace,
        image: args.image,
        shards: args.shards,
        parallelism: args.parallelism.unwrap_or(args.shards),
        retries_per_shard: args.retries_per_shard,
        cpu: args.cpu,
        memory: args.memory,
        dataset_claim: args.dataset_claim,
        results_claim: args.results_claim,
        backtest_args: args.backtest,
    };
    let job = deploy::job::render_job(&settings).context("cannot render the Job")?;
    // The pod's command line must parse as this binary parses it.
    let args = job
        .spec
        .as_ref()
        .and_then(|s| s.template.spec.as_ref())
        .and_then(|p| p.containers[0].args.clone())
        .unwrap_or_default();
    super::Cli::try_parse_from(std::iter::once("prescale".to_string()).chain(args.iter().cloned()))
        .map_err(|e| anyhow::anyhow!("the backtest arguments do not parse: {e}"))?;
    let yaml = serde_norway::to_string(&job)?;
    crate::files::write_atomic(&out, yaml.as_bytes())
        .with_context(|| format!("cannot write {}", out.display()))?;
    note!(
        "{} shard(s), results in {}/{} on claim {}: `kubectl apply -f {}`, then `prescale backtest merge` on that folder",
        settings.shards,
        deploy::job::RESULTS_DIR,
        settings.name,
        settings.results_claim,
        out.display()
    );
    Ok(())
}
