//! Replays global traffic weights over real traces: each trace is one region's own demand,
//! each region has a fixed planned capacity, one region fails for a while, and the load left
//! unserved is counted for four ways of setting the weights:
//!
//! | strategy | weights |
//! |---|---|
//! | `locality` | users go to their own region; a region that is down has its users spread over the others in proportion to capacity (health-check failover, no forecast) |
//! | `reactive` | [`super::weights::plan_step`] on the demand last observed (one step old) |
//! | `forecast` | [`super::weights::plan_step`] on each region's forecast, refitted every `refit_every` steps |
//! | `oracle` | [`super::weights::plan_step`] on the actual demand (a bound, not a strategy) |
//!
//! All four know the failure from the moment it starts (as a health check does); they differ in
//! what they know of demand. Served load: a region serves at most its capacity (0 while down);
//! the rest of what is routed to it is unserved.

use serde::Serialize;

use super::weights::{plan_step, unserved, RegionStep, WeightsError};
use crate::model::{self, Model};
use crate::series::Series;

/// How to replay.
#[derive(Debug, Clone, PartialEq)]
pub struct ReplaySettings {
    /// Steps replayed (the last ones of the traces); the steps before are history only.
    pub steps: usize,
    /// Each region's capacity: this factor times the 90th percentile of its own demand over
    /// the history before the replay.
    pub headroom: f64,
    /// The region that fails, by index.
    pub down_region: usize,
    /// The first failed step, counted from the replay's start.
    pub down_at: usize,
    /// Steps it stays down.
    pub down_for: usize,
    /// The most a weight moves per step.
    pub max_change: f64,
    /// Steps between refits of the forecasts (each forecasts that many steps ahead).
    pub refit_every: usize,
    /// History each fit sees, in steps.
    pub fit_window: usize,
    /// Seasons given to the model.
    pub seasons: Vec<usize>,
}

/// Load left unserved by one strategy.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Outcome {
    /// `locality`, `reactive`, `forecast` or `oracle`.
    pub strategy: String,
    /// Sum over steps of the load not served (demand units × steps).
    pub unserved: f64,
    /// The same, as a share of all demand replayed.
    pub unserved_share: f64,
    /// Of it, during the failure.
    pub unserved_during_failure: f64,
}

/// The replay's result.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReplayResult {
    /// Each region's capacity.
    pub capacity: Vec<f64>,
    /// All demand replayed.
    pub demand: f64,
    /// One row per strategy.
    pub outcomes: Vec<Outcome>,
}

/// Replays `traces` (one per region, on the same grid) with `model` for the forecasts.
pub fn replay(
    traces: &[Series],
    model: &dyn Model,
    s: &ReplaySettings,
) -> Result<ReplayResult, WeightsError> {
    let n = traces.len();
    let bad = |m: String| Err(WeightsError::Input(m));
    if n < 2 {
        return bad("a replay needs at least two regions".into());
    }
    let len = traces[0].len();
    if traces
        .iter()
        .any(|t| t.len() != len || t.start() != traces[0].start() || t.step() != traces[0].step())
    {
        return bad("the traces must share one grid (start, step and length)".into());
    }
    if s.steps == 0 || s.steps + s.fit_window > len || s.refit_every == 0 {
        return bad(format!(
            "the traces hold {len} steps: too few for {} replayed after {} of history (or no refit interval)",
            s.steps, s.fit_window
        ));
    }
    if s.down_region >= n || s.down_at + s.down_for > s.steps {
        return bad("the failure lies outside the regions or the replay".into());
    }
    let start = len - s.steps;
    let value = |r: usize, t: usize| {
        let v = traces[r].values()[t];
        if v.is_finite() {
            v.max(0.0)
        } else {
            0.0
        }
    };
    let capacity: Vec<f64> = (0..n)
        .map(|r| {
            let mut h: Vec<f64> = (0..start).map(|t| value(r, t)).collect();
            h.sort_by(f64::total_cmp);
            s.headroom * h[(h.len() * 9 / 10).min(h.len() - 1)]
        })
        .collect();
    let down = |t: usize| (s.down_at..s.down_at + s.down_for).contains(&(t - start));
    let actual: Vec<Vec<f64>> = (start..len)
        .map(|t| (0..n).map(|r| value(r, t)).collect())
        .collect();
    let cap_at: Vec<Vec<f64>> = (start..len)
        .map(|t| {
            (0..n)
                .map(|r| {
                    if r == s.down_region && down(t) {
                        0.0
                    } else {
                        capacity[r]
                    }
                })
                .collect()
        })
        .collect();
    // Forecasts, one block of `refit_every` steps per fit.
    let mut forecast = vec![vec![0.0; n]; s.steps];
    for r in 0..n {
        let mut k = 0;
        while k < s.steps {
            let at = start + k;
            let history = traces[r].slice(at - s.fit_window..at);
            let ahead = s.refit_every.min(s.steps - k);
            let fitted = model::fit_for(model, &history, &s.seasons, ahead).map_err(|e| {
                WeightsError::Input(format!("region {r}: forecast at step {at}: {e}"))
            })?;
            let f = fitted.predict(ahead, &[]).map_err(|e| {
                WeightsError::Input(format!("region {r}: forecast at step {at}: {e}"))
            })?;
            for (j, v) in f.mean.iter().enumerate() {
                forecast[k + j][r] = v.max(0.0);
            }
            k += ahead;
        }
    }
    let names: Vec<String> = (0..n).map(|r| format!("region{r}")).collect();
    let planned = |estimate: &dyn Fn(usize) -> Vec<f64>| -> Vec<Vec<f64>> {
        let mut prev: Option<Vec<f64>> = None;
        (0..s.steps)
            .map(|k| {
                let e = estimate(k);
                let inputs: Vec<RegionStep> = (0..n)
                    .map(|r| RegionStep {
                        demand: Some(e[r]),
                        capacity: capacity[r],
                        down: r == s.down_region && down(start + k),
                    })
                    .collect();
                let step = plan_step(&names, &inputs, prev.as_deref(), s.max_change);
                prev = Some(step.weights.clone());
                step.weights
            })
            .collect()
    };
    let locality: Vec<Vec<f64>> = (0..s.steps)
        .map(|k| {
            let d = &actual[k];
            let total: f64 = d.iter().sum();
            if total <= 0.0 {
                return vec![1.0 / n as f64; n];
            }
            let mut w: Vec<f64> = d.iter().map(|x| x / total).collect();
            if down(start + k) {
                let moved = w[s.down_region];
                w[s.down_region] = 0.0;
                let up: f64 = (0..n)
                    .filter(|&r| r != s.down_region)
                    .map(|r| capacity[r])
                    .sum();
                for r in (0..n).filter(|&r| r != s.down_region) {
                    w[r] += moved * capacity[r] / up;
                }
            }
            w
        })
        .collect();
    let reactive = planned(&|k| {
        let t = start + k;
        (0..n).map(|r| value(r, t - 1)).collect()
    });
    let forecast_weights = planned(&|k| forecast[k].clone());
    let oracle = planned(&|k| actual[k].clone());
    let demand: f64 = actual.iter().flatten().sum();
    let window = s.down_at..s.down_at + s.down_for;
    let outcomes = [
        ("locality", locality),
        ("reactive", reactive),
        ("forecast", forecast_weights),
        ("oracle", oracle),
    ]
    .into_iter()
    .map(|(name, w)| {
        let lost = unserved(&actual, &w, &cap_at);
        let during = unserved(
            &actual[window.clone()],
            &w[window.clone()],
            &cap_at[window.clone()],
        );
        Outcome {
            strategy: name.into(),
            unserved: lost,
            unserved_share: if demand > 0.0 { lost / demand } else { 0.0 },
            unserved_during_failure: during,
        }
    })
    .collect();
    Ok(ReplayResult {
        capacity,
        demand,
        outcomes,
    })
}

/// `traces` cut to the time range they all cover; they must share a step and a phase.
pub fn align(traces: Vec<Series>) -> Result<Vec<Series>, WeightsError> {
    let Some(first) = traces.first() else {
        return Ok(traces);
    };
    let step = first.step();
    let start = traces.iter().map(Series::start).max().unwrap_or(0);
    let end = traces
        .iter()
        .map(|t| t.start() + step * t.len() as i64)
        .min()
        .unwrap_or(0);
    if traces
        .iter()
        .any(|t| t.step() != step || (t.start() - start).rem_euclid(step) != 0)
    {
        return Err(WeightsError::Input(
            "the traces do not share one grid (step and phase)".into(),
        ));
    }
    if end <= start {
        return Err(WeightsError::Input("the traces share no time range".into()));
    }
    let n = ((end - start) / step) as usize;
    Ok(traces
        .into_iter()
        .map(|t| {
            let from = ((start - t.start()) / step) as usize;
            t.slice(from..from + n)
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::series::Labels;

    fn trace(phase: usize, len: usize) -> Series {
        // A daily cycle (288 steps of 5 minutes), shifted by `phase` steps.
        let values = (0..len)
            .map(|t| {
                100.0
                    + 80.0 * (2.0 * std::f64::consts::PI * ((t + phase) % 288) as f64 / 288.0).sin()
            })
            .collect();
        Series::new(Labels::default(), 0, 300_000, values).unwrap()
    }

    #[test]
    fn forecast_weights_serve_more_than_locality_when_peaks_differ() {
        let traces = vec![trace(0, 288 * 6), trace(96, 288 * 6), trace(192, 288 * 6)];
        let model = crate::model::build("seasonal-naive", &serde_json::Value::Null).unwrap();
        let settings = ReplaySettings {
            steps: 288 * 2,
            headroom: 1.0,
            down_region: 1,
            down_at: 100,
            down_for: 12,
            max_change: 0.1,
            refit_every: 12,
            fit_window: 288 * 3,
            seasons: vec![288],
        };
        let r = replay(&traces, model.as_ref(), &settings).unwrap();
        let get = |name: &str| r.outcomes.iter().find(|o| o.strategy == name).unwrap();
        // Each region alone is short at its peak (capacity is its own 90th percentile), but
        // together they have room: routing by forecast loses far less.
        assert!(get("locality").unserved > 0.0);
        assert!(
            get("forecast").unserved < 0.5 * get("locality").unserved,
            "{r:?}"
        );
        assert!(
            get("oracle").unserved <= get("forecast").unserved + 1e-6,
            "{r:?}"
        );
        assert!(get("forecast").unserved_during_failure <= get("forecast").unserved);
    }

    #[test]
    fn traces_are_cut_to_their_common_range() {
        let a = trace(0, 100);
        let b = Series::new(Labels::default(), 600_000, 300_000, vec![1.0; 100]).unwrap();
        let out = align(vec![a, b]).unwrap();
        assert_eq!(out[0].start(), 600_000);
        assert_eq!(out[0].len(), 98);
        assert_eq!(out[1].len(), 98);
        let c = Series::new(Labels::default(), 1, 300_000, vec![1.0; 10]).unwrap();
        assert!(align(vec![trace(0, 10), c]).is_err());
    }
}
