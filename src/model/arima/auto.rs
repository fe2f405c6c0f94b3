//! Automatic order selection: the stepwise search of Hyndman & Khandakar (2008), as R's
//! `forecast::auto.arima` runs it by default.
//!
//! - **Seasonal differencing** `D ∈ {0, 1}`: one difference when the STL seasonal strength
//!   `max(0, 1 − Var(R)/Var(S + R))` exceeds 0.64 (Wang, Smith & Hyndman 2006; auto.arima's
//!   `seasonal.test = "seas"`).
//! - **Differencing** `d ∈ {0, 1, 2}`: difference while the KPSS test (level stationarity,
//!   Bartlett long-run variance with `⌊4·(n/100)^¼⌋` lags) rejects at 5% (statistic > 0.463).
//! - **Search** (ranked by the AICc of conditional-sum-of-squares fits, auto.arima's
//!   `approximation`; the winner is then fitted by exact ML): start from (2,d,2)(1,D,1), (0,d,0)(0,D,0), (1,d,0)(1,D,0) and (0,d,1)(0,D,1),
//!   with a constant where `d + D ≤ 1`; then move to any neighbour (p, q, P or Q ± 1, p and q
//!   together ± 1, P and Q together ± 1, the constant toggled) with a lower AICc, until none
//!   improves. Bounds as auto.arima's: p, q ≤ 5; P, Q ≤ 2; at most 94 models.

use std::collections::HashSet;

use super::estimate::{css_aicc, estimate, Estimate, Spec};
use super::polynomial::difference;

/// Bounds on the search, as `auto.arima`'s defaults.
const MAX_P: usize = 5;
const MAX_Q: usize = 5;
const MAX_SP: usize = 2;
const MAX_SQ: usize = 2;
const MAX_MODELS: usize = 94;

/// The chosen order, its fit, and how many models were tried.
#[derive(Debug, Clone)]
pub struct Selection {
    /// The order.
    pub spec: Spec,
    /// Its fit.
    pub estimate: Estimate,
    /// Models fitted during the search.
    pub tried: usize,
}

/// Searches orders for `y` with seasonal period `m` (1 for none).
pub fn select(y: &[f64], m: usize) -> Option<Selection> {
    let sd = if m > 1 && y.len() >= 2 * m && seasonal_strength(y, m) > 0.64 {
        1
    } else {
        0
    };
    let seasonal_diffed = difference(y, 0, sd, m);
    let mut d = 0;
    let mut x = seasonal_diffed;
    while d < 2 && x.len() > 10 && kpss(&x) > 0.463 {
        x = difference(&x, 1, 0, 1);
        d += 1;
    }
    let seasonal = m > 1;
    let constant = d + sd <= 1;
    let base = Spec {
        p: 0,
        d,
        q: 0,
        sp: 0,
        sd,
        sq: 0,
        m: if seasonal { m } else { 1 },
        mean: constant,
    };
    let with = |p, q, sp, sq, mean| Spec {
        p,
        q,
        sp: if seasonal { sp } else { 0 },
        sq: if seasonal { sq } else { 0 },
        mean,
        ..base
    };
    let mut search = Search {
        y,
        seen: HashSet::new(),
        tried: 0,
        best: None,
        scored: Vec::new(),
    };
    for spec in [
        with(2, 2, 1, 1, constant),
        with(0, 0, 0, 0, constant),
        with(1, 0, 1, 0, constant),
        with(0, 1, 0, 1, constant),
        with(0, 0, 0, 0, false),
    ] {
        search.consider(spec);
    }
    while let Some(current) = search.best.as_ref().map(|(_, s)| *s) {
        let improved = neighbours(&current, seasonal, constant)
            .into_iter()
            .any(|n| search.consider(n));
        if !improved || search.tried >= MAX_MODELS {
            break;
        }
    }
    // The winner of the approximate search is fitted by exact ML; when that fit fails, the
    // next best is, and so on (as auto.arima does).
    let tried = search.tried;
    let mut ranked = search.scored;
    ranked.sort_by(|a, b| a.0.total_cmp(&b.0));
    ranked.into_iter().find_map(|(_, spec)| {
        let estimate = estimate(y, &spec).ok()?;
        Some(Selection {
            spec,
            estimate,
            tried,
        })
    })
}

/// The state of a stepwise search.
struct Search<'a> {
    y: &'a [f64],
    seen: HashSet<(usize, usize, usize, usize, bool)>,
    tried: usize,
    best: Option<(f64, Spec)>,
    /// Every order that could be scored, with its approximate AICc.
    scored: Vec<(f64, Spec)>,
}

impl Search<'_> {
    /// Fits `spec` unless already tried; true when it becomes the best so far.
    fn consider(&mut self, spec: Spec) -> bool {
        if self.tried >= MAX_MODELS
            || !self
                .seen
                .insert((spec.p, spec.q, spec.sp, spec.sq, spec.mean))
        {
            return false;
        }
        self.tried += 1;
        let Some(aicc) = css_aicc(self.y, &spec) else {
            return false;
        };
        self.scored.push((aicc, spec));
        if self.best.as_ref().is_none_or(|(b, _)| aicc < *b) {
            self.best = Some((aicc, spec));
            return true;
        }
        false
    }
}

fn neighbours(s: &Spec, seasonal: bool, constant_allowed: bool) -> Vec<Spec> {
    let mut out = Vec::new();
    let mut push = |p: isize, q: isize, sp: isize, sq: isize, mean: bool| {
        let ok = (0..=MAX_P as isize).contains(&p)
            && (0..=MAX_Q as isize).contains(&q)
            && (0..=MAX_SP as isize).contains(&sp)
            && (0..=MAX_SQ as isize).contains(&sq)
            && (seasonal || (sp == 0 && sq == 0));
        if ok {
            out.push(Spec {
                p: p as usize,
                q: q as usize,
                sp: sp as usize,
                sq: sq as usize,
                mean,
                ..*s
            });
        }
    };
    let (p, q, sp, sq) = (s.p as isize, s.q as isize, s.sp as isize, s.sq as isize);
    for (dp, dq, dsp, dsq) in [
        (0, 0, -1, 0),
        (0, 0, 1, 0),
        (0, 0, 0, -1),
        (0, 0, 0, 1),
        (0, 0, -1, -1),
        (0, 0, 1, 1),
        (-1, 0, 0, 0),
        (1, 0, 0, 0),
        (0, -1, 0, 0),
        (0, 1, 0, 0),
        (-1, -1, 0, 0),
        (1, 1, 0, 0),
        (-1, 1, 0, 0),
        (1, -1, 0, 0),
    ] {
        push(p + dp, q + dq, sp + dsp, sq + dsq, s.mean);
    }
    if constant_allowed {
        push(p, q, sp, sq, !s.mean);
    }
    out
}

/// The KPSS level-stationarity statistic (Kwiatkowski, Phillips, Schmidt & Shin 1992).
pub fn kpss(x: &[f64]) -> f64 {
    let n = x.len();
    let mean = x.iter().sum::<f64>() / n as f64;
    let e: Vec<f64> = x.iter().map(|v| v - mean).collect();
    let lags = (4.0 * (n as f64 / 100.0).powf(0.25)).floor() as usize;
    let mut s2 = e.iter().map(|v| v * v).sum::<f64>() / n as f64;
    for s in 1..=lags.min(n.saturating_sub(1)) {
        let w = 1.0 - s as f64 / (lags as f64 + 1.0);
        let cov: f64 = (s..n).map(|t| e[t] * e[t - s]).sum::<f64>() / n as f64;
        s2 += 2.0 * w * cov;
    }
    if s2 <= 0.0 {
        return 0.0;
    }
    let mut cum = 0.0;
    let eta: f64 = e
        .iter()
        .map(|v| {
            cum += v;
            cum * cum
        })
        .sum::<f64>()
        / (n as f64 * n as f64);
    eta / s2
}

/// The STL seasonal strength `max(0, 1 − Var(R)/Var(S + R))`.
pub fn seasonal_strength(y: &[f64], m: usize) -> f64 {
    let Ok(stl) = augurs::mstl::stlrs::params().fit(y, m) else {
        return 0.0;
    };
    let r = stl.remainder();
    let sr: Vec<f64> = stl.seasonal().iter().zip(r).map(|(s, r)| s + r).collect();
    let var = |v: &[f64]| {
        let mean = v.iter().sum::<f64>() / v.len() as f64;
        v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / v.len() as f64
    };
    let total = var(&sr);
    if total <= 0.0 {
        return 0.0;
    }
    (1.0 - var(r) / total).max(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seasonal_strength_sees_a_daily_profile() {
        let daily: Vec<f64> = (0..24 * 10)
            .map(|t| {
                50.0 + 10.0 * (t as f64 * std::f64::consts::TAU / 24.0).sin()
                    + ((t * 7919) % 5) as f64 * 0.2
            })
            .collect();
        assert!(seasonal_strength(&daily, 24) > 0.64);
        let line: Vec<f64> = (0..240)
            .map(|t| t as f64 + ((t * 7919) % 5) as f64)
            .collect();
        assert!(seasonal_strength(&line, 24) < 0.64);
    }

    #[test]
    fn kpss_separates_noise_from_a_random_walk() {
        let mut state: u64 = 7;
        let mut noise = || {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (state >> 11) as f64 / (1u64 << 53) as f64 - 0.5
        };
        let white: Vec<f64> = (0..400).map(|_| noise()).collect();
        let mut level = 0.0;
        let walk: Vec<f64> = (0..400)
            .map(|_| {
                level += noise();
                level
            })
            .collect();
        assert!(kpss(&white) < 0.463, "{}", kpss(&white));
        assert!(kpss(&walk) > 0.463, "{}", kpss(&walk));
    }
}
