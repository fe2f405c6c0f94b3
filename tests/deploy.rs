//! `prescale deploy render`: every rendered object validated by real tools (PyPI
//! `kubernetes-validate --strict` for built-in kinds, KEDA's published CRD schema for
//! ScaledObjects), the rendered pod's command line started as `serve --check` on the files
//! the pod would mount, and a configuration a cluster cannot run refused with every problem.

use std::path::{Path, PathBuf};
use std::process::Command;

use assert_cmd::cargo::CommandCargoExt;
use serde_norway::Value;

fn venv_tool(name: &str) -> PathBuf {
    let tool = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/.venv/bin")
        .join(name);
    assert!(
        tool.is_file(),
        "{} is missing: run `bash .ci/run` (its client environment step) or `python3 -m venv tests/.venv && tests/.venv/bin/pip install -r tests/requirements.txt`",
        tool.display()
    );
    tool
}

fn yaml(path: &Path) -> Value {
    serde_norway::from_str(&std::fs::read_to_string(path).expect("rendered file"))
        .expect("rendered YAML parses")
}

fn yaml_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("rendered folder")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    files
}

fn front_proxy_ca(dir: &Path) -> PathBuf {
    let key = rcgen::KeyPair::generate().expect("key");
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "front-proxy-ca");
    let cert = params.self_signed(&key).expect("CA");
    let path = dir.join("front-proxy-ca.crt");
    std::fs::write(&path, cert.pem()).expect("write CA");
    path
}

fn render(args: &[&str]) -> std::process::Output {
    Command::cargo_bin("prescale")
        .expect("binary")
        .args(["deploy", "render"])
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("run prescale deploy render")
}

#[test]
fn rendered_manifests_validate_and_the_pod_command_reads_what_it_mounts() {
    let dir = tempfile::tempdir().expect("temp dir");
    let ca = front_proxy_ca(dir.path());
    let out = dir.path().join("out");
    let config = "examples/serve-prometheus.yaml";
    let run = render(&[
        "--config",
        config,
        "--out",
        out.to_str().unwrap(),
        "--image",
        "registry.example.com/prescale:0.1.0",
        "--requestheader-client-ca",
        ca.to_str().unwrap(),
    ]);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "render failed: {stderr}");
    let listed = String::from_utf8_lossy(&run.stdout);
    assert!(stderr.contains("kubectl apply -f"), "{stderr}");

    // Every listed file exists, and the folders hold nothing else.
    let server = yaml_files(&out.join("prescale"));
    let external = yaml_files(&out.join("external-metrics"));
    let keda = yaml_files(&out.join("keda"));
    let all: Vec<&PathBuf> = server.iter().chain(&external).chain(&keda).collect();
    assert_eq!(listed.lines().count(), all.len(), "{listed}");
    for f in &all {
        assert!(
            listed.contains(&*f.to_string_lossy()),
            "{} not listed",
            f.display()
        );
    }

    // Built-in kinds, strictly, for the API version the types were generated for and for
    // the newest one the validator knows.
    let validate = venv_tool("kubernetes-validate");
    for version in [None, Some("1.33.0")] {
        let mut cmd = Command::new(&validate);
        cmd.arg("--strict");
        if let Some(v) = version {
            cmd.args(["-k", v]);
        }
        let checked = cmd
            .args(server.iter().chain(&external))
            .output()
            .expect("run kubernetes-validate");
        let text = String::from_utf8_lossy(&checked.stdout).into_owned()
            + &String::from_utf8_lossy(&checked.stderr);
        assert!(
            checked.status.success(),
            "kubernetes-validate {version:?}:\n{text}"
        );
        assert_eq!(
            text.matches(" passed for resource ").count(),
            server.len() + external.len(),
            "every object validated once ({version:?}):\n{text}"
        );
    }
    // ScaledObjects against KEDA's own CRD schema, unknown fields refused.
    let crd = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let checked = Command::new(venv_tool("python"))
        .arg(crd.join("validate_crd.py"))
        .arg(crd.join("keda.sh_scaledobjects.yaml"))
        .args(&keda)
        .output()
        .expect("run the CRD validator");
    let text = String::from_utf8_lossy(&checked.stdout);
    assert!(checked.status.success(), "ScaledObjects:\n{text}");
    assert_eq!(
        text.matches("valid ScaledObject v1alpha1").count(),
        1,
        "{text}"
    );

    // The HPA reads the decision metric for its workload with the configuration's bounds
    // and behavior, written out in full.
    let hpa = yaml(&out.join("external-metrics/hpa-shop-checkout.yaml"));
    assert_eq!(hpa["apiVersion"].as_str(), Some("autoscaling/v2"));
    assert_eq!(hpa["metadata"]["namespace"].as_str(), Some("shop"));
    let spec = &hpa["spec"];
    assert_eq!(spec["minReplicas"].as_i64(), Some(3));
    assert_eq!(spec["maxReplicas"].as_i64(), Some(60));
    assert_eq!(spec["scaleTargetRef"]["name"].as_str(), Some("checkout"));
    let external_metric = &spec["metrics"][0]["external"];
    assert_eq!(
        external_metric["metric"]["name"].as_str(),
        Some("prescale_replicas")
    );
    assert_eq!(
        external_metric["metric"]["selector"]["matchLabels"]["workload"].as_str(),
        Some("checkout")
    );
    assert_eq!(
        external_metric["target"]["averageValue"].as_str(),
        Some("1")
    );
    let down = &spec["behavior"]["scaleDown"];
    assert_eq!(down["stabilizationWindowSeconds"].as_i64(), Some(600));
    assert_eq!(down["policies"][0]["type"].as_str(), Some("Percent"));
    assert_eq!(down["policies"][0]["value"].as_i64(), Some(20));
    let up = &spec["behavior"]["scaleUp"];
    assert_eq!(
        up["policies"].as_sequence().map(Vec::len),
        Some(2),
        "the HPA's default scale-up, written out"
    );

    let api = yaml(&out.join("external-metrics/apiservice.yaml"));
    assert_eq!(
        api["metadata"]["name"].as_str(),
        Some("v1beta1.external.metrics.k8s.io")
    );
    assert_eq!(
        api["spec"]["service"]["namespace"].as_str(),
        Some("prescale")
    );
    assert_eq!(api["spec"]["service"]["port"].as_i64(), Some(443));
    let scaled = yaml(&out.join("keda/scaledobject-shop-checkout.yaml"));
    let trigger = &scaled["spec"]["triggers"][0];
    assert_eq!(trigger["type"].as_str(), Some("external"));
    assert_eq!(
        trigger["metadata"]["scalerAddress"].as_str(),
        Some("prescale.prescale.svc:9443")
    );

    // The pod: its arguments, run against the files its volumes would hold (the mount paths
    // moved under a temporary root), make a valid `serve` command.
    let deployment = yaml(&out.join("prescale/deployment.yaml"));
    let pod = &deployment["spec"]["template"]["spec"];
    let container = &pod["containers"][0];
    let args: Vec<&str> = container["args"]
        .as_sequence()
        .expect("args")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let root = dir.path().join("pod");
    let config_map = yaml(&out.join("prescale/configmap-config.yaml"));
    let ca_map = yaml(&out.join("prescale/configmap-requestheader-ca.yaml"));
    assert_eq!(
        config_map["data"]["serve.yaml"].as_str(),
        Some(
            std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(config))
                .unwrap()
                .as_str()
        ),
        "the configuration is kept verbatim"
    );
    for mount in container["volumeMounts"].as_sequence().expect("mounts") {
        let at = root.join(mount["mountPath"].as_str().unwrap().trim_start_matches('/'));
        std::fs::create_dir_all(&at).unwrap();
        let volume = pod["volumes"]
            .as_sequence()
            .unwrap()
            .iter()
            .find(|v| v["name"] == mount["name"])
            .expect("every mount has its volume");
        if let Some(name) = volume["configMap"]["name"].as_str() {
            let map = [&config_map, &ca_map]
                .into_iter()
                .find(|m| m["metadata"]["name"].as_str() == Some(name))
                .expect("the ConfigMap is rendered");
            for (key, value) in map["data"].as_mapping().unwrap() {
                std::fs::write(at.join(key.as_str().unwrap()), value.as_str().unwrap()).unwrap();
            }
        }
    }
    let moved: Vec<String> = args
        .iter()
        .map(|a| match a.strip_prefix('/') {
            Some(path) => root.join(path).to_string_lossy().into_owned(),
            None => a.to_string(),
        })
        .collect();
    assert_eq!(moved.first().map(String::as_str), Some("serve"));
    let check = Command::cargo_bin("prescale")
        .unwrap()
        .args(&moved)
        .arg("--check")
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "{moved:?}: {}",
        String::from_utf8_lossy(&check.stderr)
    );
    assert!(String::from_utf8_lossy(&check.stdout).contains("valid (1 workload(s), 4 metric(s))"));
    assert_eq!(
        container["readinessProbe"]["httpGet"]["path"].as_str(),
        Some("/readyz")
    );
    assert_eq!(
        container["securityContext"]["readOnlyRootFilesystem"].as_bool(),
        Some(true)
    );

    // A second render into the same folder without gRPC drops the ScaledObjects it wrote.
    let no_grpc = dir.path().join("no-grpc.yaml");
    let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(config))
        .unwrap()
        .replace("  grpc: 0.0.0.0:9443\n", "");
    std::fs::write(&no_grpc, text).unwrap();
    let again = render(&[
        "--config",
        no_grpc.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--image",
        "prescale:0.1.0",
        "--requestheader-client-ca",
        ca.to_str().unwrap(),
    ]);
    assert!(
        again.status.success(),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    assert!(yaml_files(&out.join("keda")).is_empty());
    assert!(String::from_utf8_lossy(&again.stderr).contains("no KEDA ScaledObjects"));
}

#[test]
fn a_configuration_a_cluster_cannot_run_is_refused_with_every_problem() {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = dir.path().join("out");
    // The bundled trial configuration reads files, which a pod does not have.
    let run = render(&[
        "--config",
        "examples/serve.yaml",
        "--out",
        out.to_str().unwrap(),
        "--image",
        "prescale:0.1.0",
        "--namespace",
        "Not_A_Name",
    ]);
    assert!(!run.status.success());
    let stderr = String::from_utf8_lossy(&run.stderr);
    for needle in [
        "Not_A_Name",
        "workloads[0].metrics[0].file",
        "read the metric from Prometheus with a query",
        "listen.https: 127.0.0.1:6443 is not reachable from outside the pod",
    ] {
        assert!(stderr.contains(needle), "{needle:?} not in:\n{stderr}");
    }
    assert!(!out.exists(), "nothing is written when rendering fails");
}

/// Every `.yaml` file under `dir`, at any depth, sorted.
fn yaml_files_deep(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).expect("rendered folder") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            out.extend(yaml_files_deep(&path));
        } else if path.extension().is_some_and(|e| e == "yaml") {
            out.push(path);
        }
    }
    out.sort();
    out
}

#[test]
fn the_three_region_example_renders_one_valid_folder_per_cluster() {
    let dir = tempfile::tempdir().expect("temp dir");
    let ca = front_proxy_ca(dir.path());
    let out = dir.path().join("out");
    let run = render(&[
        "--clusters",
        "examples/clusters.yaml",
        "--out",
        out.to_str().unwrap(),
        "--image",
        "registry.example.com/prescale:0.1.0",
        "--requestheader-client-ca",
        ca.to_str().unwrap(),
    ]);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "render failed: {stderr}");
    for (cluster, context) in [
        ("use1-a", "prod-us-east-1a"),
        ("use1-b", "prod-us-east-1b"),
        ("euw1", "prod-eu-west-1"),
        ("aps1", "prod-ap-south-1"),
    ] {
        assert!(
            stderr.contains(&format!(
                "kubectl --context {context} apply -f {}",
                out.join(cluster).join("prescale").display()
            )),
            "{cluster}: {stderr}"
        );
    }
    let all = yaml_files_deep(&out);
    let (keda, builtin): (Vec<&PathBuf>, Vec<&PathBuf>) = all
        .iter()
        .partition(|p| p.parent().is_some_and(|d| d.ends_with("keda")));
    assert_eq!(
        String::from_utf8_lossy(&run.stdout).lines().count(),
        all.len()
    );
    // Placements: EU accounts only in euw1, search only in the US, checkout everywhere
    // with each cluster's override.
    let hpa = |cluster: &str, name: &str| out.join(cluster).join("external-metrics").join(name);
    assert!(hpa("euw1", "hpa-accounts-accounts-eu.yaml").is_file());
    for c in ["use1-a", "use1-b", "aps1"] {
        assert!(!hpa(c, "hpa-accounts-accounts-eu.yaml").exists(), "{c}");
    }
    assert!(!hpa("euw1", "hpa-search-search.yaml").exists());
    assert!(!hpa("aps1", "hpa-search-search.yaml").exists());
    for (cluster, max) in [("use1-a", 60), ("use1-b", 40), ("euw1", 60), ("aps1", 30)] {
        let h = yaml(&hpa(cluster, "hpa-shop-checkout.yaml"));
        assert_eq!(h["spec"]["maxReplicas"].as_i64(), Some(max), "{cluster}");
    }
    // Each cluster's adapter reads its own Prometheus.
    let config = yaml(&out.join("euw1/prescale/configmap-config.yaml"));
    let serve: Value =
        serde_norway::from_str(config["data"]["serve.yaml"].as_str().unwrap()).unwrap();
    assert_eq!(
        serve["prometheus"]["url"].as_str(),
        Some("http://thanos-query.monitoring.svc:9090")
    );
    assert_eq!(serve["workloads"].as_sequence().map(Vec::len), Some(2));

    // euw1 has its own serving certificate and front-proxy CA (examples/certs/): the
    // aggregator verifies it with that CA; the others keep the flags' (self-signed, skip).
    use k8s_openapi::kube_aggregator::pkg::apis::apiregistration::v1::APIService;
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/certs");
    let serving_ca = std::fs::read(examples.join("euw1-serving-ca.crt")).unwrap();
    let api_service = |cluster: &str| -> APIService {
        serde_norway::from_str(
            &std::fs::read_to_string(out.join(cluster).join("external-metrics/apiservice.yaml"))
                .unwrap(),
        )
        .unwrap()
    };
    let euw1 = api_service("euw1").spec.unwrap();
    assert_eq!(euw1.ca_bundle.map(|b| b.0), Some(serving_ca));
    assert_eq!(euw1.insecure_skip_tls_verify, None);
    for cluster in ["use1-a", "use1-b", "aps1"] {
        let spec = api_service(cluster).spec.unwrap();
        assert_eq!(spec.ca_bundle, None, "{cluster}");
        assert_eq!(spec.insecure_skip_tls_verify, Some(true), "{cluster}");
    }
    let deployment = std::fs::read_to_string(out.join("euw1/prescale/deployment.yaml")).unwrap();
    assert!(
        deployment.contains("secretName: prescale-serving-tls"),
        "{deployment}"
    );
    let front_proxy = |cluster: &str| {
        yaml(
            &out.join(cluster)
                .join("prescale/configmap-requestheader-ca.yaml"),
        )["data"]["requestheader-client-ca-file"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert_eq!(
        front_proxy("euw1"),
        std::fs::read_to_string(examples.join("euw1-front-proxy-ca.crt")).unwrap()
    );
    assert_eq!(front_proxy("use1-a"), std::fs::read_to_string(&ca).unwrap());

    let checked = Command::new(venv_tool("kubernetes-validate"))
        .arg("--strict")
        .args(&builtin)
        .output()
        .expect("run kubernetes-validate");
    let text = String::from_utf8_lossy(&checked.stdout).into_owned()
        + &String::from_utf8_lossy(&checked.stderr);
    assert!(checked.status.success(), "kubernetes-validate:\n{text}");
    assert_eq!(
        text.matches(" passed for resource ").count(),
        builtin.len(),
        "every object validated once:\n{text}"
    );
    let crd = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let checked = Command::new(venv_tool("python"))
        .arg(crd.join("validate_crd.py"))
        .arg(crd.join("keda.sh_scaledobjects.yaml"))
        .args(&keda)
        .output()
        .expect("run the CRD validator");
    let text = String::from_utf8_lossy(&checked.stdout);
    assert!(checked.status.success(), "ScaledObjects:\n{text}");
    // checkout ×4, accounts-eu ×1, search ×2.
    assert_eq!(keda.len(), 7);
    assert_eq!(
        text.matches("valid ScaledObject v1alpha1").count(),
        7,
        "{text}"
    );
}

#[test]
fn a_broken_clusters_file_lists_every_problem_and_writes_nothing() {
    let dir = tempfile::tempdir().expect("temp dir");
    let example = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/clusters.yaml"),
    )
    .unwrap();
    let broken = example
        .replace("name: use1-b\n", "name: use1-a\n")
        .replace("region: ap-south\n", "region: ap-east\n")
        .replace("    residency: [eu]\n", "    residency: [us]\n")
        .replace(
            "      - {cluster: use1-b, overrides: {maxReplicas: 40}}\n",
            "      - cluster: use9\n",
        )
        .replace(
            "    placements:\n      - cluster: use1-a\n      - cluster: use1-b\n",
            "    placements: []\n",
        );
    let file = dir.path().join("clusters.yaml");
    std::fs::write(&file, broken).unwrap();
    let out = dir.path().join("out");
    let run = render(&[
        "--clusters",
        file.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--image",
        "prescale:0.1.0",
    ]);
    assert!(!run.status.success());
    let stderr = String::from_utf8_lossy(&run.stderr);
    for needle in [
        "clusters[1].name: duplicate cluster \"use1-a\" (also clusters[0].name)",
        "clusters[3].region: unknown region \"ap-east\"",
        "workloads[0].placements[1].cluster: unknown cluster \"use9\"",
        "workloads[1].placements[0].cluster: euw1 is in region eu-west of residency zone eu, where accounts/accounts-eu may not run",
        "workloads[2].placements: workload search/search is placed on no cluster",
    ] {
        assert!(stderr.contains(needle), "{needle:?} not in:\n{stderr}");
    }
    assert!(!out.exists(), "nothing is written when rendering fails");
}

#[test]
fn a_cluster_certificate_the_file_cannot_give_is_refused_with_its_path() {
    // The example copied elsewhere: its certificate paths, relative to the file, now miss.
    let dir = tempfile::tempdir().expect("temp dir");
    let example = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/clusters.yaml"),
    )
    .unwrap();
    let file = dir.path().join("clusters.yaml");
    std::fs::write(
        &file,
        example.replace(
            "tls: {secret: prescale-serving-tls, caBundle: certs/euw1-serving-ca.crt}",
            "tls: {caBundle: certs/euw1-serving-ca.crt}",
        ),
    )
    .unwrap();
    let out = dir.path().join("out");
    let run = render(&[
        "--clusters",
        file.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--image",
        "prescale:0.1.0",
    ]);
    assert!(!run.status.success());
    let stderr = String::from_utf8_lossy(&run.stderr);
    let certs = dir.path().join("certs");
    for needle in [
        format!(
            "clusters[2].tls.caBundle: cannot read {}",
            certs.join("euw1-serving-ca.crt").display()
        ),
        "clusters[2].tls.caBundle: a CA bundle verifies the certificate of a TLS Secret, and clusters[2].tls.secret names none".to_string(),
        format!(
            "clusters[2].requestheaderClientCA: cannot read {}",
            certs.join("euw1-front-proxy-ca.crt").display()
        ),
    ] {
        assert!(stderr.contains(&needle), "{needle:?} not in:\n{stderr}");
    }
    assert!(!out.exists(), "nothing is written when rendering fails");
}

/// Validates the VirtualService at `path` against Istio's published CRD schema.
fn assert_valid_virtual_service(path: &Path) {
    let crd = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let checked = Command::new(venv_tool("python"))
        .arg(crd.join("validate_crd.py"))
        .arg(crd.join("networking.istio.io_virtualservices.yaml"))
        .arg(path)
        .output()
        .expect("run the CRD validator");
    let text = String::from_utf8_lossy(&checked.stdout);
    assert!(checked.status.success(), "VirtualService:\n{text}");
    assert!(text.contains("valid VirtualService v1"), "{text}");
}

#[test]
fn the_example_plan_takes_a_region_out_for_its_window_and_brings_it_back() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let plan: Value = serde_norway::from_str(
        &std::fs::read_to_string(root.join("examples/weights-plan.yaml")).unwrap(),
    )
    .unwrap();
    let regions = plan["regions"].as_sequence().unwrap();
    let (down, window) = regions
        .iter()
        .enumerate()
        .find_map(|(i, r)| r["down"].as_mapping().map(|w| (i, w.clone())))
        .expect("a region down for a window");
    let time = |key: &str| {
        chrono::DateTime::parse_from_rfc3339(window[key].as_str().unwrap())
            .unwrap()
            .timestamp_millis()
    };
    let (from, until) = (time("from"), time("until"));
    let max_change = plan["maxChange"].as_f64().unwrap();
    let capacity: Vec<f64> = regions
        .iter()
        .map(|r| r["capacity"].as_f64().unwrap())
        .collect();

    let dir = tempfile::tempdir().expect("temp dir");
    let (schedule, vs) = (dir.path().join("schedule.json"), dir.path().join("vs.yaml"));
    let run = prescale(
        &[
            "deploy",
            "weights",
            "--plan",
            "examples/weights-plan.yaml",
            "--output",
            schedule.to_str().unwrap(),
            "--virtual-service",
            vs.to_str().unwrap(),
        ],
        &[],
    );
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "{stderr}");
    let s: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&schedule).unwrap()).unwrap();
    let steps = s["steps"].as_array().unwrap();
    let weights = |step: &serde_json::Value| -> Vec<f64> {
        step["weights"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect()
    };
    let inside =
        |step: &serde_json::Value| (from..until).contains(&step["timestamp"].as_i64().unwrap());
    // The window lies mid-horizon: steps before, in and after it.
    assert!(!inside(&steps[0]) && !inside(steps.last().unwrap()));
    assert_eq!(
        steps.iter().filter(|s| inside(s)).count(),
        12,
        "an hour of 5-minute steps"
    );
    for (k, step) in steps.iter().enumerate() {
        let w = weights(step);
        assert!(w.iter().all(|x| *x >= 0.0), "{step}");
        assert!((w.iter().sum::<f64>() - 1.0).abs() < 1e-9, "{step}");
        let reasons = step["reasons"].to_string();
        if inside(step) {
            assert_eq!(w[down], 0.0, "step {k}: {step}");
            assert!(reasons.contains(" is down: 0"), "{reasons}");
        } else {
            assert!(w[down] > 0.0, "step {k}: {step}");
            assert!(!reasons.contains(" is down"), "{reasons}");
        }
        let demand = step["demand"].as_f64().unwrap();
        if step["shortage"].as_f64().unwrap() == 0.0 {
            for (i, c) in capacity.iter().enumerate() {
                assert!(
                    w[i] * demand <= c * (1.0 + 1e-9),
                    "region {i} over capacity: {step}"
                );
            }
        }
        // Back from the failure within the rate limit.
        if k > 0 && inside(&steps[k - 1]) && !inside(step) {
            assert!(w[down] <= max_change + 1e-9, "step {k}: {step}");
            assert!(reasons.contains("held"), "{reasons}");
        }
    }
    // The failure is a forced move: the limit is lifted as it starts.
    let first_down = steps.iter().position(inside).unwrap();
    assert!(
        steps[first_down]["reasons"].to_string().contains("lifted"),
        "{}",
        steps[first_down]
    );
    assert_valid_virtual_service(&vs);
    let v = yaml(&vs);
    let percents: Vec<i64> = v["spec"]["http"][0]["route"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|r| r["weight"].as_i64().unwrap())
        .collect();
    assert_eq!(percents.iter().sum::<i64>(), 100);
}

#[test]
fn weights_fail_a_region_over_to_the_others_and_route_it_with_a_valid_virtual_service() {
    let dir = tempfile::tempdir().expect("temp dir");
    // A real forecast of the bundled Twitter trace, scaled into three regions' demand.
    let base = dir.path().join("base.csv");
    let forecast = Command::cargo_bin("prescale")
        .unwrap()
        .args(["forecast", "--input", "datasets/Twitter_volume_AMZN.csv"])
        .args(["--horizon", "24", "--output", base.to_str().unwrap()])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    assert!(
        forecast.status.success(),
        "{}",
        String::from_utf8_lossy(&forecast.stderr)
    );
    let text = std::fs::read_to_string(&base).unwrap();
    let mut lines = text.lines();
    let header = lines.next().unwrap();
    let mean_col = header.split(',').position(|c| c == "mean").unwrap();
    let rows: Vec<(String, f64)> = lines
        .map(|l| {
            let cells: Vec<&str> = l.split(',').collect();
            (cells[0].to_string(), cells[mean_col].parse().unwrap())
        })
        .collect();
    for (region, factor) in [("us", 1.0), ("eu", 0.6), ("ap", 0.4)] {
        let mut csv = String::from("timestamp,mean\n");
        for (t, v) in &rows {
            csv.push_str(&format!("{t},{}\n", v * factor));
        }
        std::fs::write(dir.path().join(format!("{region}.csv")), csv).unwrap();
    }
    let mean: f64 = rows.iter().map(|(_, v)| v).sum::<f64>() / rows.len() as f64;
    // us is down (and has no forecast at all); eu and ap together just hold the total.
    let plan = format!(
        "maxChange: 0.05
current: {{us: 0.5, eu: 0.3, ap: 0.2}}
virtualService:
  name: checkout-global
  namespace: shop
  hosts: [checkout.example.com]
  gateways: [istio-system/public]
regions:
  - {{name: us, down: true, capacity: {cap_us}, forecast: missing.csv,
     destination: {{host: checkout.shop.svc.us.global}}}}
  - {{name: eu, forecast: eu.csv, capacity: {cap_eu},
     destination: {{host: checkout.shop.svc.eu.global, subset: v1}}}}
  - {{name: ap, forecast: ap.csv, capacity: {cap_ap},
     destination: {{host: checkout.shop.svc.ap.global}}}}
",
        cap_us = 3.0 * mean,
        cap_eu = 1.5 * mean,
        cap_ap = 0.9 * mean,
    );
    let plan_path = dir.path().join("plan.yaml");
    std::fs::write(&plan_path, plan).unwrap();
    let schedule = dir.path().join("schedule.json");
    let vs = dir.path().join("vs.yaml");
    let run = Command::cargo_bin("prescale")
        .unwrap()
        .args(["deploy", "weights", "--plan", plan_path.to_str().unwrap()])
        .args(["--output", schedule.to_str().unwrap()])
        .args(["--virtual-service", vs.to_str().unwrap()])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "{stderr}");
    let s: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&schedule).unwrap()).unwrap();
    let steps = s["steps"].as_array().unwrap();
    assert_eq!(steps.len(), 24);
    assert!(
        steps[0]["time"].as_str().is_some_and(|t| t.ends_with('Z')),
        "{}",
        steps[0]
    );
    let caps = [3.0 * mean, 1.5 * mean, 0.9 * mean];
    for step in steps {
        let w: Vec<f64> = step["weights"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect();
        assert_eq!(w[0], 0.0, "the region that is down gets nothing");
        assert!(w.iter().all(|x| *x >= 0.0));
        let demand = step["demand"].as_f64().unwrap();
        let shortage = step["shortage"].as_f64().unwrap();
        assert!((w.iter().sum::<f64>() - 1.0).abs() < 1e-9, "{step}");
        if shortage == 0.0 {
            for i in 1..3 {
                assert!(w[i] * demand <= caps[i] * (1.0 + 1e-9), "{step}");
            }
        } else {
            assert!((shortage - (demand - caps[1] - caps[2])).abs() < 1e-6 * demand);
        }
        let reasons = step["reasons"].to_string();
        assert!(reasons.contains("us is down: 0"), "{reasons}");
    }
    // The first step moves past the rate limit: us must drop from 0.5 to 0 at once.
    assert!(
        steps[0]["reasons"].to_string().contains("lifted"),
        "{}",
        steps[0]
    );

    // The VirtualService for now: whole percents summing to 100, none to the region down,
    // valid against Istio's own CRD schema.
    let v = yaml(&vs);
    let route = v["spec"]["http"][0]["route"].as_sequence().unwrap();
    let percents: Vec<i64> = route
        .iter()
        .map(|r| r["weight"].as_i64().unwrap())
        .collect();
    assert_eq!(percents.iter().sum::<i64>(), 100);
    assert_eq!(percents[0], 0);
    assert_eq!(route[1]["destination"]["subset"].as_str(), Some("v1"));
    assert_valid_virtual_service(&vs);
    let crd = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");

    // A misspelt field would be refused by the same check.
    let wrong = dir.path().join("wrong.yaml");
    std::fs::write(
        &wrong,
        std::fs::read_to_string(&vs)
            .unwrap()
            .replace("weight:", "wieght:"),
    )
    .unwrap();
    let checked = Command::new(venv_tool("python"))
        .arg(crd.join("validate_crd.py"))
        .arg(crd.join("networking.istio.io_virtualservices.yaml"))
        .arg(&wrong)
        .output()
        .unwrap();
    assert!(!checked.status.success());
}

fn prescale(args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    Command::cargo_bin("prescale")
        .expect("binary")
        .args(args)
        .envs(env.iter().copied())
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("run prescale")
}

fn sorted_lines(path: &Path) -> Vec<String> {
    let mut lines: Vec<String> = std::fs::read_to_string(path)
        .expect("results file")
        .lines()
        .map(str::to_string)
        .collect();
    lines.sort();
    lines
}

#[test]
fn sharded_backtests_merge_into_exactly_one_run_and_a_failed_shard_reruns_alone() {
    let dir = tempfile::tempdir().expect("temp dir");
    let backtest: Vec<&str> = vec![
        "backtest",
        "--input",
        "datasets/nyc_taxi.csv",
        "datasets/Twitter_volume_AMZN.csv",
        "datasets/m4-hourly/Hourly-train.csv",
        "--model",
        "seasonal-naive,naive",
        "--horizon",
        "24",
        "--windows",
        "2",
        "--level",
        "80,95",
    ];
    let one = dir.path().join("one.csv");
    let single = prescale(
        &[&backtest[..], &["--output", one.to_str().unwrap()]].concat(),
        &[],
    );
    assert!(
        single.status.success(),
        "{}",
        String::from_utf8_lossy(&single.stderr)
    );

    // Three shards as three processes at once; shard 1 first fails (its input is missing,
    // as when a volume did not mount), the others finish.
    let shards = dir.path().join("shards");
    let out = shards.to_str().unwrap();
    let spawn = |index: &str, args: Vec<&str>| {
        Command::cargo_bin("prescale")
            .unwrap()
            .args(args)
            .args(["--shards", "3", "--output", out])
            .env("JOB_COMPLETION_INDEX", index)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let broken: Vec<&str> = backtest
        .iter()
        .map(|a| {
            if *a == "datasets/nyc_taxi.csv" {
                "datasets/missing.csv"
            } else {
                a
            }
        })
        .collect();
    let running = [
        spawn("0", backtest.clone()),
        spawn("1", broken),
        spawn("2", backtest.clone()),
    ];
    let done: Vec<_> = running
        .into_iter()
        .map(|c| c.wait_with_output().unwrap())
        .collect();
    assert!(done[0].status.success() && done[2].status.success());
    assert!(!done[1].status.success(), "the broken shard failed");
    let merge = |output: &Path| {
        prescale(
            &[
                "backtest",
                "merge",
                out,
                "--output",
                output.to_str().unwrap(),
            ],
            &[],
        )
    };
    let early = merge(&dir.path().join("early.csv"));
    assert!(!early.status.success());
    assert!(
        String::from_utf8_lossy(&early.stderr).contains("shard(s) 1 of 3 have not finished"),
        "{}",
        String::from_utf8_lossy(&early.stderr)
    );
    // Shard 1 again, alone, with --shard instead of the index variable.
    let rerun = prescale(
        &[&backtest[..], &["--shard", "1/3", "--output", out]].concat(),
        &[],
    );
    assert!(
        rerun.status.success(),
        "{}",
        String::from_utf8_lossy(&rerun.stderr)
    );
    let merged = dir.path().join("merged.csv");
    let m = merge(&merged);
    assert!(m.status.success(), "{}", String::from_utf8_lossy(&m.stderr));
    assert_eq!(sorted_lines(&one), sorted_lines(&merged));
    assert_eq!(
        std::fs::read(&one).unwrap(),
        std::fs::read(&merged).unwrap(),
        "same order too"
    );
    assert_eq!(
        String::from_utf8_lossy(&single.stdout),
        String::from_utf8_lossy(&m.stdout),
        "the same summary"
    );
    // Every series went to exactly one shard, and they all did some.
    let rows = |i: usize| {
        let manifest: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(shards.join(format!("shard-0000{i}-of-00003.json"))).unwrap(),
        )
        .unwrap();
        manifest["series"].as_array().unwrap().len()
    };
    assert_eq!(rows(0) + rows(1) + rows(2), 416);
    assert!((0..3).all(|i| rows(i) > 100));

    // A shard run with other settings into the same folder is refused at merge.
    let other = prescale(
        &[
            &backtest[..7],
            &["--horizon", "12", "--shard", "2/3", "--output", out],
        ]
        .concat(),
        &[],
    );
    assert!(other.status.success());
    let refused = merge(&dir.path().join("refused.csv"));
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("other settings"));
}

#[test]
fn the_backtest_job_is_a_valid_indexed_job_whose_pods_run_a_valid_command() {
    let dir = tempfile::tempdir().expect("temp dir");
    let job = dir.path().join("job.yaml");
    let run = prescale(
        &[
            "deploy",
            "render-job",
            "--shards",
            "8",
            "--parallelism",
            "4",
            "--out",
            job.to_str().unwrap(),
            "--image",
            "registry.example.com/prescale:0.1.0",
            "--dataset-claim",
            "m4-data",
            "--results-claim",
            "backtests",
            "--",
            "--input",
            "m4-hourly/Hourly-train.csv",
            "--model",
            "auto",
            "--horizon",
            "48",
        ],
        &[],
    );
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let checked = Command::new(venv_tool("kubernetes-validate"))
        .arg("--strict")
        .arg(&job)
        .output()
        .expect("run kubernetes-validate");
    let text = String::from_utf8_lossy(&checked.stdout).into_owned()
        + &String::from_utf8_lossy(&checked.stderr);
    assert!(checked.status.success(), "{text}");
    assert!(
        text.contains("passed for resource job/prescale-backtest"),
        "{text}"
    );
    let j = yaml(&job);
    assert_eq!(j["spec"]["completionMode"].as_str(), Some("Indexed"));
    assert_eq!(j["spec"]["completions"].as_i64(), Some(8));
    assert_eq!(j["spec"]["parallelism"].as_i64(), Some(4));
    assert_eq!(j["spec"]["backoffLimitPerIndex"].as_i64(), Some(2));
    let container = &j["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(container["workingDir"].as_str(), Some("/data"));
    let args: Vec<&str> = container["args"]
        .as_sequence()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(args[0], "backtest");
    assert!(args.ends_with(&["--shards", "8", "--output", "/results/prescale-backtest"]));

    // Arguments the binary would refuse are refused before a Job is written.
    let bad = dir.path().join("bad.yaml");
    let run = prescale(
        &[
            "deploy",
            "render-job",
            "--shards",
            "2",
            "--out",
            bad.to_str().unwrap(),
            "--image",
            "prescale:0.1.0",
            "--dataset-claim",
            "d",
            "--results-claim",
            "r",
            "--",
            "--input",
            "a.csv",
            "--horizn",
            "3",
        ],
        &[],
    );
    assert!(!run.status.success());
    assert!(String::from_utf8_lossy(&run.stderr).contains("--horizn"));
    assert!(!bad.exists());
}

#[test]
fn the_weights_replay_counts_less_unserved_load_with_forecasts_than_by_locality() {
    // The bundled Twitter trace as three regions eight hours apart (their peaks at different
    // times of day), one of them down for an hour.
    let dir = tempfile::tempdir().expect("temp dir");
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("datasets/Twitter_volume_AMZN.csv"),
    )
    .unwrap();
    let mut traces = Vec::new();
    for (region, hours) in [("us", 0), ("eu", 8), ("ap", 16)] {
        let mut csv = String::from("timestamp,value\n");
        for line in text.lines().skip(1) {
            let (t, v) = line.split_once(',').unwrap();
            let t = chrono::NaiveDateTime::parse_from_str(t, "%Y-%m-%d %H:%M:%S").unwrap()
                + chrono::Duration::hours(hours);
            csv.push_str(&format!("{},{v}\n", t.format("%Y-%m-%d %H:%M:%S")));
        }
        let path = dir.path().join(format!("{region}.csv"));
        std::fs::write(&path, csv).unwrap();
        traces.push(path);
    }
    let mut args = vec!["deploy", "weights-replay", "--trace"];
    args.extend(traces.iter().map(|p| p.to_str().unwrap()));
    args.extend(["--down", "eu", "--down-at", "4d6h", "--down-for", "1h"]);
    let run = prescale(&args, &[]);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "{stderr}");
    assert!(stderr.contains("eu down for 12 steps"), "{stderr}");
    let stdout = String::from_utf8_lossy(&run.stdout);
    let unserved = |strategy: &str| -> f64 {
        stdout
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{strategy},")))
            .and_then(|rest| rest.split(',').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{strategy} missing from:\n{stdout}"))
    };
    assert!(unserved("locality") > 0.0, "{stdout}");
    assert!(unserved("forecast") < unserved("locality"), "{stdout}");
    assert!(unserved("oracle") <= unserved("forecast"), "{stdout}");
}
