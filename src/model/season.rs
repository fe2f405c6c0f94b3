//! Which seasonal periods the data supports.
//!
//! Candidates come from the step (one day and one week, see [`super::calendar_periods`]); a
//! candidate is kept when the series holds at least two full cycles of it and its
//! autocorrelation passes the 90% significance test the M4 competition's benchmarks use
//! (Assimakopoulos & Nikolopoulos' Theta code): `|r_m| > 1.645 · √((1 + 2·Σ_{k<m} r_k²) / n)`.
//!
//! A series with a daily cycle is also periodic over a week, so a longer candidate that is a
//! multiple of one already kept is tested on the series differenced at the shorter lag: a
//! week is kept only when weekdays differ from each other, not merely because days repeat.

use crate::series::Series;

use super::{calendar_periods, Prepared};

/// The seasonal periods to use for `series` when the user gave none: the calendar
/// candidates of its step (one day, one week) that its observed values support. Returns
/// (candidates, kept).
pub fn detect_for(series: &Series) -> (Vec<usize>, Vec<usize>) {
    let candidates = calendar_periods(series.step());
    let kept = match Prepared::new(series, "season detection", 2) {
        Ok(p) => detect(&p.values, &candidates),
        Err(_) => vec![],
    };
    (candidates, kept)
}

/// Autocorrelations `r_1..=r_max_lag` of `x` (missing values must be removed or filled first).
pub fn acf(x: &[f64], max_lag: usize) -> Vec<f64> {
    let n = x.len();
    let mean = x.iter().sum::<f64>() / n.max(1) as f64;
    let denom: f64 = x.iter().map(|v| (v - mean).powi(2)).sum();
    (1..=max_lag)
        .map(|k| {
            if k >= n || denom == 0.0 {
                return 0.0;
            }
            let num: f64 = (k..n).map(|t| (x[t] - mean) * (x[t - k] - mean)).sum();
            num / denom
        })
        .collect()
}

/// True when lag `m` autocorrelation of `x` is significant at 90% (M4's seasonality test).
pub fn is_seasonal(x: &[f64], m: usize) -> bool {
    if m < 2 || x.len() < 2 * m {
        return false;
    }
    let r = acf(x, m);
    let sum_sq: f64 = r[..m - 1].iter().map(|v| v * v).sum();
    let limit = 1.645 * ((1.0 + 2.0 * sum_sq) / x.len() as f64).sqrt();
    r[m - 1].abs() > limit
}

/// The candidates (in their order, shortest first) that `x` supports.
pub fn detect(x: &[f64], candidates: &[usize]) -> Vec<usize> {
    let mut kept: Vec<usize> = Vec::new();
    for &m in candidates {
        let base = kept.iter().copied().filter(|p| m % p == 0).max();
        let supported = match base {
            Some(p) => {
                let diff: Vec<f64> = (p..x.len()).map(|t| x[t] - x[t - p]).collect();
                is_seasonal(&diff, m)
            }
            None => is_seasonal(x, m),
        };
        if supported {
            kept.push(m);
        }
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_a_daily_cycle_and_rejects_noise() {
        let daily: Vec<f64> = (0..24 * 30)
            .map(|t| {
                10.0 + (t as f64 * std::f64::consts::TAU / 24.0).sin()
                    + ((t * 7919 % 13) as f64) * 0.05
            })
            .collect();
        assert_eq!(detect(&daily, &[24, 168]), [24]);
        // Weekends at half the weekday level: the week is a season of its own.
        let weekly: Vec<f64> = daily
            .iter()
            .enumerate()
            .map(|(t, v)| if (t / 24) % 7 >= 5 { v * 0.5 } else { *v })
            .collect();
        assert_eq!(detect(&weekly, &[24, 168]), [24, 168]);
        // White noise from a 64-bit LCG (Knuth's MMIX constants).
        let mut state: u64 = 42;
        let noise: Vec<f64> = (0..24 * 30)
            .map(|_| {
                state = state
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                (state >> 11) as f64 / (1u64 << 53) as f64
            })
            .collect();
        assert!(detect(&noise, &[24]).is_empty());
        // Too short for two cycles.
        assert!(!is_seasonal(&daily[..40], 24));
    }
}
