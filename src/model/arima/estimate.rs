//! Estimating a fixed-order seasonal ARIMA as R's `arima(method = "CSS-ML")` does.
//!
//! 1. Difference the series by `(1 − B)^d (1 − B^m)^D`. The exact likelihood of the
//!    differenced series equals R's diffuse-prior likelihood of the original, and uses the
//!    same `n − d − m·D` observations.
//! 2. Minimise the conditional sum of squares from zero (and the sample mean, when a mean is
//!    fitted) for starting values.
//! 3. Maximise the exact likelihood ([`super::kalman`]) over the AR parts reparametrised as
//!    partial autocorrelations through `tanh` (Jones 1980, R's `partrans`), so every step
//!    of the optimiser is stationary; the MA parts get the same map (applied to `−θ`), so
//!    every step is invertible too. R leaves MA unconstrained and inverts afterwards; where
//!    its optimiser stops short of the boundary this one can reach a higher likelihood.
//!    L-BFGS (argmin) with central-difference gradients.

use argmin::core::{CostFunction, Executor, Gradient};
use argmin::solver::linesearch::MoreThuenteLineSearch;
use argmin::solver::quasinewton::LBFGS;

use super::kalman::{arma_likelihood, css_objective, Likelihood};
use super::polynomial::{difference, expand_ar, expand_ma};

/// An ARIMA order: `(p, d, q)(P, D, Q)m`, plus whether a constant is fitted: the mean of
/// the differenced series, which is a mean without differencing and a drift with one
/// difference (as `auto.arima`'s `include.constant`); never with more differencing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Spec {
    /// AR order.
    pub p: usize,
    /// Differences.
    pub d: usize,
    /// MA order.
    pub q: usize,
    /// Seasonal AR order.
    pub sp: usize,
    /// Seasonal differences.
    pub sd: usize,
    /// Seasonal MA order.
    pub sq: usize,
    /// Seasonal period (1 when non-seasonal).
    pub m: usize,
    /// Fit a mean (ignored when there is any differencing).
    pub mean: bool,
}

impl Spec {
    fn has_mean(&self) -> bool {
        self.mean && self.d + self.sd <= 1
    }

    fn n_arma(&self) -> usize {
        self.p + self.q + self.sp + self.sq
    }

    /// Number of estimated coefficients (σ² not included).
    pub fn n_coef(&self) -> usize {
        self.n_arma() + usize::from(self.has_mean())
    }

    /// Every way this order is outside what is estimated here, checked before anything is
    /// allocated: `auto.arima`'s bounds (p, q ≤ 5, d ≤ 2, P, Q ≤ 2, D ≤ 1), a period of at
    /// least 2 when there is a seasonal part, and a state of at most [`MAX_STATE`] dimensions
    /// (the filter's covariance is that squared; a period of 100,000 would ask for 80 GB).
    pub fn problems(&self) -> Vec<String> {
        let Spec {
            p,
            d,
            q,
            sp,
            sd,
            sq,
            m,
            ..
        } = *self;
        let mut problems = Vec::new();
        if p > 5 || q > 5 || d > 2 {
            problems.push(format!(
                "order [{p}, {d}, {q}]: p and q go up to 5 and d up to 2"
            ));
        }
        if sp > 2 || sq > 2 || sd > 1 {
            problems.push(format!(
                "seasonal_order [{sp}, {sd}, {sq}, {m}]: P and Q go up to 2 and D up to 1"
            ));
        }
        if m < 1 || (m < 2 && sp + sd + sq > 0) {
            problems.push(format!(
                "seasonal_order [{sp}, {sd}, {sq}, {m}]: the period m must be at least 2 steps"
            ));
        }
        let state = (p.saturating_add(sp.saturating_mul(m)))
            .max(q.saturating_add(sq.saturating_mul(m)).saturating_add(1));
        if state > MAX_STATE {
            problems.push(format!(
                "order [{p}, {d}, {q}] with seasonal_order [{sp}, {sd}, {sq}, {m}] has a state of {state} dimensions, over the limit of {MAX_STATE}: use a shorter period (a long season is better removed first, as the search does)"
            ));
        }
        problems
    }
}

/// The most dimensions an ARIMA state may have (max(p + P·m, q + Q·m + 1)): two seasonal AR
/// terms of a weekly period at an hourly step (2 × 168) fit, with room.
pub const MAX_STATE: usize = 400;

/// Coefficients split by role.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Coefficients {
    /// Non-seasonal AR.
    pub ar: Vec<f64>,
    /// Non-seasonal MA.
    pub ma: Vec<f64>,
    /// Seasonal AR.
    pub sar: Vec<f64>,
    /// Seasonal MA.
    pub sma: Vec<f64>,
    /// The mean (0 when not fitted).
    pub mean: f64,
}

impl Coefficients {
    fn from_vec(spec: &Spec, x: &[f64]) -> Self {
        let mut it = x.iter().copied();
        let mut take = |n: usize| (0..n).map(|_| it.next().unwrap_or(0.0)).collect::<Vec<_>>();
        let ar = take(spec.p);
        let ma = take(spec.q);
        let sar = take(spec.sp);
        let sma = take(spec.sq);
        let mean = if spec.has_mean() { take(1)[0] } else { 0.0 };
        Self {
            ar,
            ma,
            sar,
            sma,
            mean,
        }
    }

    fn to_vec(&self, spec: &Spec) -> Vec<f64> {
        let mut v = [&self.ar[..], &self.ma, &self.sar, &self.sma].concat();
        if spec.has_mean() {
            v.push(self.mean);
        }
        v
    }

    /// The expanded AR and MA polynomials of the ARMA part.
    pub fn expanded(&self, m: usize) -> (Vec<f64>, Vec<f64>) {
        (
            expand_ar(&self.ar, &self.sar, m),
            expand_ma(&self.ma, &self.sma, m),
        )
    }
}

/// A fitted model's numbers.
#[derive(Debug, Clone)]
pub struct Estimate {
    /// The coefficients.
    pub coef: Coefficients,
    /// Innovation variance.
    pub sigma2: f64,
    /// Maximised log-likelihood.
    pub loglik: f64,
    /// Observations used (after differencing).
    pub nobs: usize,
    /// The final filter pass (state for forecasting, residuals).
    pub filter: Likelihood,
    /// What went wrong in estimation and what was kept instead, if anything.
    pub note: Option<String>,
}

impl Estimate {
    /// Akaike's criterion with σ² counted as a parameter, as R does.
    pub fn aic(&self, spec: &Spec) -> f64 {
        -2.0 * self.loglik + 2.0 * (spec.n_coef() + 1) as f64
    }

    /// AIC with the small-sample correction.
    pub fn aicc(&self, spec: &Spec) -> f64 {
        let k = (spec.n_coef() + 1) as f64;
        let n = self.nobs as f64;
        self.aic(spec) + 2.0 * k * (k + 1.0) / (n - k - 1.0)
    }
}

/// Why an order could not be estimated.
#[derive(Debug, Clone, PartialEq)]
pub enum EstimateError {
    /// Fewer observations than the order needs.
    TooShort {
        /// Needed.
        needed: usize,
        /// Available.
        got: usize,
    },
    /// The optimiser or the likelihood failed.
    Failed(String),
}

/// Maps unconstrained values to the AR coefficients of a stationary process (R's
/// `partrans`): `tanh` gives partial autocorrelations in (−1, 1), Durbin–Levinson turns them
/// into AR coefficients.
pub fn partrans(raw: &[f64]) -> Vec<f64> {
    let mut new: Vec<f64> = raw.iter().map(|x| x.tanh()).collect();
    let mut work = new.clone();
    for j in 1..new.len() {
        let a = new[j];
        for k in 0..j {
            work[k] -= a * new[j - k - 1];
        }
        new[..j].copy_from_slice(&work[..j]);
    }
    new
}

/// The inverse of [`partrans`], or `None` when `phi` is not stationary.
pub fn inverse_partrans(phi: &[f64]) -> Option<Vec<f64>> {
    let mut new = phi.to_vec();
    let mut work = new.clone();
    for j in (1..new.len()).rev() {
        let a = new[j];
        if a.abs() >= 1.0 {
            return None;
        }
        for k in 0..j {
            work[k] = (new[k] + a * new[j - k - 1]) / (1.0 - a * a);
        }
        new[..j].copy_from_slice(&work[..j]);
    }
    if new.iter().any(|a| a.abs() >= 1.0) {
        return None;
    }
    Some(new.iter().map(|a| a.atanh()).collect())
}

/// True when the AR polynomial is stationary (all roots outside the unit circle).
pub fn is_stationary(phi: &[f64]) -> bool {
    inverse_partrans(phi).is_some()
}

/// The exact likelihood of `y` under `spec` with the given coefficients (no estimation):
/// for checking the likelihood itself against a reference implementation.
pub fn likelihood_at(y: &[f64], spec: &Spec, coef: &Coefficients) -> Likelihood {
    let w = difference(y, spec.d, spec.sd, spec.m);
    let centred: Vec<f64> = w.iter().map(|v| v - coef.mean).collect();
    let (phi, theta) = coef.expanded(spec.m);
    arma_likelihood(&centred, &phi, &theta)
}

/// The AICc of `spec` on `y` from a conditional-sum-of-squares fit alone: the cheap
/// approximation `auto.arima` ranks candidates by on long or seasonal series. `None` when the
/// fit fails or leaves the AR part non-stationary or the MA part non-invertible.
pub(super) fn css_aicc(y: &[f64], spec: &Spec) -> Option<f64> {
    let (w, init) = differenced_with_start(y, spec).ok()?;
    let n = init.len();
    let css = Objective {
        w: &w,
        spec: *spec,
        kind: Kind::Css,
    };
    let best = minimise(&css, init)?;
    let c = Coefficients::from_vec(spec, &best);
    let negated = |v: &[f64]| v.iter().map(|x| -x).collect::<Vec<_>>();
    let admissible = is_stationary(&c.ar)
        && is_stationary(&c.sar)
        && is_stationary(&negated(&c.ma))
        && is_stationary(&negated(&c.sma));
    if !admissible {
        return None;
    }
    let (phi, _) = c.expanded(spec.m);
    let nu = (w.len() - phi.len()) as f64;
    let sigma2 = (2.0 * css.value(&best)).exp();
    let loglik = -0.5 * nu * ((2.0 * std::f64::consts::PI * sigma2).ln() + 1.0);
    let k = (n + 1) as f64;
    let aicc = -2.0 * loglik + 2.0 * k + 2.0 * k * (k + 1.0) / (nu - k - 1.0);
    aicc.is_finite().then_some(aicc)
}

/// The differenced series and the optimisers' starting point (zero coefficients, the sample
/// mean for a constant), or `TooShort` when the order leaves too few observations.
fn differenced_with_start(y: &[f64], spec: &Spec) -> Result<(Vec<f64>, Vec<f64>), EstimateError> {
    let w = difference(y, spec.d, spec.sd, spec.m);
    let needed = spec.p + spec.sp * spec.m + spec.n_coef() + 2;
    if w.len() < needed {
        return Err(EstimateError::TooShort {
            needed: needed + spec.d + spec.sd * spec.m,
            got: y.len(),
        });
    }
    let n = spec.n_coef();
    let mut init = vec![0.0; n];
    if spec.has_mean() {
        init[n - 1] = w.iter().sum::<f64>() / w.len() as f64;
    }
    Ok((w, init))
}

/// Fits `spec` to `y` (no missing values) by CSS for starting values, then exact ML.
pub fn estimate(y: &[f64], spec: &Spec) -> Result<Estimate, EstimateError> {
    let (w, init) = differenced_with_start(y, spec)?;
    // Stage 1: conditional sum of squares, coefficients unconstrained.
    let css = Objective {
        w: &w,
        spec: *spec,
        kind: Kind::Css,
    };
    let start = minimise(&css, init.clone()).unwrap_or(init.clone());
    let start_coef = Coefficients::from_vec(spec, &start);
    // Stage 2: exact ML over transformed AR parts; from CSS if stationary, else from zero.
    // Parts the CSS left non-stationary (AR) or non-invertible (MA) start from zero.
    let raw_ma = |theta: &[f64]| {
        let negated: Vec<f64> = theta.iter().map(|t| -t).collect();
        inverse_partrans(&negated).unwrap_or_else(|| vec![0.0; theta.len()])
    };
    let raw_start = Coefficients {
        ar: inverse_partrans(&start_coef.ar).unwrap_or_else(|| vec![0.0; spec.p]),
        ma: raw_ma(&start_coef.ma),
        sar: inverse_partrans(&start_coef.sar).unwrap_or_else(|| vec![0.0; spec.sp]),
        sma: raw_ma(&start_coef.sma),
        mean: start_coef.mean,
    }
    .to_vec(spec);
    let ml = Objective {
        w: &w,
        spec: *spec,
        kind: Kind::Ml,
    };
    let (best, note) = match minimise_reporting(&ml, raw_start.clone()) {
        Ok((x, true)) => (x, None),
        Ok((x, false)) => (
            x,
            Some("the ML optimiser stopped at its iteration limit; its best point is kept".into()),
        ),
        Err(why) => (
            raw_start,
            Some(format!(
                "the ML optimiser failed ({why}); the CSS estimates are kept"
            )),
        ),
    };
    let coef = ml.coefficients(&best);
    let filter = ml.filter(&coef);
    if !filter.ssq.is_finite() || filter.nu == 0 {
        return Err(EstimateError::Failed("the likelihood is not finite".into()));
    }
    Ok(Estimate {
        sigma2: filter.sigma2(),
        loglik: filter.loglik(),
        nobs: filter.nu,
        coef,
        filter,
        note,
    })
}

#[derive(Clone, Copy)]
enum Kind {
    Css,
    Ml,
}

#[derive(Clone)]
struct Objective<'a> {
    w: &'a [f64],
    spec: Spec,
    kind: Kind,
}

impl Objective<'_> {
    /// Coefficients from the optimiser's vector (undoing the AR transform for ML).
    fn coefficients(&self, x: &[f64]) -> Coefficients {
        let mut c = Coefficients::from_vec(&self.spec, x);
        if let Kind::Ml = self.kind {
            c.ar = partrans(&c.ar);
            c.sar = partrans(&c.sar);
            // θ(B) = 1 + Σθ_i B^i is invertible when −θ is a stationary AR.
            let invertible = |raw: &[f64]| partrans(raw).iter().map(|v| -v).collect::<Vec<_>>();
            c.ma = invertible(&c.ma);
            c.sma = invertible(&c.sma);
        }
        c
    }

    fn centred(&self, mean: f64) -> Vec<f64> {
        self.w.iter().map(|v| v - mean).collect()
    }

    fn filter(&self, c: &Coefficients) -> Likelihood {
        let (phi, theta) = c.expanded(self.spec.m);
        arma_likelihood(&self.centred(c.mean), &phi, &theta)
    }

    fn value(&self, x: &[f64]) -> f64 {
        let c = self.coefficients(x);
        let v = match self.kind {
            Kind::Css => {
                let (phi, theta) = c.expanded(self.spec.m);
                css_objective(&self.centred(c.mean), &phi, &theta)
            }
            Kind::Ml => self.filter(&c).objective(),
        };
        if v.is_finite() {
            v
        } else {
            1e10
        }
    }
}

impl CostFunction for Objective<'_> {
    type Param = Vec<f64>;
    type Output = f64;

    fn cost(&self, x: &Self::Param) -> Result<f64, argmin::core::Error> {
        Ok(self.value(x))
    }
}

impl Gradient for Objective<'_> {
    type Param = Vec<f64>;
    type Gradient = Vec<f64>;

    /// Central differences: the likelihood has no cheap analytic gradient (R and statsforecast
    /// also differentiate numerically).
    fn gradient(&self, x: &Self::Param) -> Result<Vec<f64>, argmin::core::Error> {
        let mut g = vec![0.0; x.len()];
        let mut probe = x.clone();
        for i in 0..x.len() {
            let h = 1e-6 * x[i].abs().max(1.0);
            probe[i] = x[i] + h;
            let up = self.value(&probe);
            probe[i] = x[i] - h;
            let down = self.value(&probe);
            probe[i] = x[i];
            g[i] = (up - down) / (2.0 * h);
        }
        Ok(g)
    }
}

fn minimise(objective: &Objective, x0: Vec<f64>) -> Option<Vec<f64>> {
    minimise_reporting(objective, x0).ok().map(|(x, _)| x)
}

/// L-BFGS from `x0`: the best point and whether the solver converged (rather than running
/// out of iterations), or why it failed.
fn minimise_reporting(objective: &Objective, x0: Vec<f64>) -> Result<(Vec<f64>, bool), String> {
    use argmin::core::{State, TerminationReason};
    if x0.is_empty() {
        return Ok((x0, true));
    }
    let linesearch = MoreThuenteLineSearch::new();
    let solver = LBFGS::new(linesearch, 7)
        .with_tolerance_grad(1e-8)
        .and_then(|s| s.with_tolerance_cost(1e-12))
        .map_err(|e| e.to_string())?;
    let result = Executor::new(objective.clone(), solver)
        .configure(|s| s.param(x0).max_iters(200))
        .run()
        .map_err(|e| e.to_string())?;
    let converged = !matches!(
        result.state.get_termination_reason(),
        Some(TerminationReason::MaxItersReached)
    );
    let best = result
        .state
        .best_param
        .ok_or_else(|| "no point was evaluated".to_string())?;
    Ok((best, converged))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn css_aicc_prefers_the_true_order() {
        // An AR(1) with φ = 0.8 driven by LCG noise.
        let mut state: u64 = 3;
        let mut level = 0.0;
        let y: Vec<f64> = (0..400)
            .map(|_| {
                state = state
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                level = 0.8 * level + ((state >> 11) as f64 / (1u64 << 53) as f64 - 0.5);
                level
            })
            .collect();
        let spec = |p| Spec {
            p,
            d: 0,
            q: 0,
            sp: 0,
            sd: 0,
            sq: 0,
            m: 1,
            mean: true,
        };
        let ar1 = css_aicc(&y, &spec(1)).unwrap();
        let white = css_aicc(&y, &spec(0)).unwrap();
        assert!(ar1 < white - 100.0, "{ar1} vs {white}");
    }

    #[test]
    fn partrans_round_trips_and_stays_stationary() {
        let raw = [0.3, -1.2, 2.0];
        let phi = partrans(&raw);
        assert!(is_stationary(&phi));
        let back = inverse_partrans(&phi).unwrap();
        for (a, b) in raw.iter().zip(&back) {
            assert!((a - b).abs() < 1e-9);
        }
        assert!(!is_stationary(&[1.2]));
        assert!(!is_stationary(&[0.5, 0.6]));
    }
}
