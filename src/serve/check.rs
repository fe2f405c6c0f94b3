//! A check the server runs on each configuration it loads, whose scores it exports in
//! `/metrics` (`prescale_compliance_score{framework}`). The compliance check is handed in by
//! the caller, so that the server does not depend on the layer above it.

use std::path::Path;
use std::sync::Arc;

use super::telemetry::{FrameworkLabels, Telemetry};

/// Scores a configuration file.
pub trait ConfigCheck: Send + Sync + std::fmt::Debug {
    /// Scores (0–100) by framework, with `all` for the overall score, or why the check could
    /// not run.
    fn scores(&self, path: &Path) -> Result<Vec<(String, f64)>, String>;
}

/// Runs `check` on the configuration at `path` off the async threads and publishes its scores;
/// a check that cannot run clears the scores (a stale score would vouch for a configuration
/// no longer in effect), counts the error and logs it.
pub async fn run(check: &Arc<dyn ConfigCheck>, path: &Path, telemetry: &Telemetry) {
    let (c, p) = (check.clone(), path.to_path_buf());
    let result = tokio::task::spawn_blocking(move || c.scores(&p))
        .await
        .unwrap_or_else(|e| Err(format!("the check stopped: {e}")));
    telemetry.compliance_score.clear();
    match result {
        Ok(scores) => {
            for (framework, score) in &scores {
                telemetry
                    .compliance_score
                    .get_or_create(&FrameworkLabels {
                        framework: framework.clone(),
                    })
                    .set(*score);
            }
            let overall = scores.iter().find(|(f, _)| f == "all").map(|(_, s)| *s);
            tracing::info!(path = %path.display(), score = ?overall, "compliance checked");
        }
        Err(e) => {
            telemetry.compliance_check_errors.inc();
            tracing::error!(path = %path.display(), error = %e, "the compliance check could not run; no score is exported");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Fixed(Result<Vec<(String, f64)>, String>);

    impl ConfigCheck for Fixed {
        fn scores(&self, _: &Path) -> Result<Vec<(String, f64)>, String> {
            self.0.clone()
        }
    }

    #[tokio::test]
    async fn scores_are_exported_and_a_failed_check_clears_them() {
        let telemetry = Telemetry::default();
        let good: Arc<dyn ConfigCheck> =
            Arc::new(Fixed(Ok(vec![("GDPR".into(), 80.0), ("all".into(), 91.5)])));
        run(&good, Path::new("c.yaml"), &telemetry).await;
        let text = telemetry.encode();
        assert!(
            text.contains("prescale_compliance_score{framework=\"all\"} 91.5"),
            "{text}"
        );
        let bad: Arc<dyn ConfigCheck> = Arc::new(Fixed(Err("no".into())));
        run(&bad, Path::new("c.yaml"), &telemetry).await;
        let text = telemetry.encode();
        assert!(!text.contains("framework=\"all\""), "{text}");
        assert!(
            text.contains("prescale_compliance_check_errors_total 1"),
            "{text}"
        );
    }
}
