//! The exact Gaussian likelihood of a stationary ARMA process by the Kalman filter, and the
//! conditional sum of squares used for starting values.
//!
//! The state-space form is Harvey's (1989), as R's `arima` uses it (`makeARIMA`): with
//! `r = max(p, q + 1)`, transition `T` holding the AR coefficients in its first column and an
//! identity above the diagonal, disturbance loading `R = (1, θ₁, …, θ_{r−1})'` and observation
//! `Z = (1, 0, …, 0)`. The initial state covariance `P₀` solves `P = T·P·T' + R·R'` (the
//! stationary covariance Gardner, Harvey & Phillips (1980) compute); here by the doubling
//! algorithm `P ← P + A·P·A'`, `A ← A²`, which converges quadratically.
//!
//! The concentrated objective is R's: `½·(log(s²) + Σ log F_t / ν)` with `s² = Σ v_t²/F_t / ν`,
//! where `v_t` are the innovations, `F_t` their variances and `ν` the number of observations.

/// What one pass of the filter gives.
#[derive(Debug, Clone)]
pub struct Likelihood {
    /// Σ v²/F.
    pub ssq: f64,
    /// Σ log F.
    pub sumlog: f64,
    /// Observations used.
    pub nu: usize,
    /// The predicted state for the step after the last observation.
    pub state: Vec<f64>,
    /// One-step innovations `v_t` (residuals), one per observation.
    pub residuals: Vec<f64>,
}

impl Likelihood {
    /// The concentrated objective R's `arima` minimises.
    pub fn objective(&self) -> f64 {
        let s2 = self.ssq / self.nu as f64;
        0.5 * (s2.ln() + self.sumlog / self.nu as f64)
    }

    /// The maximised Gaussian log-likelihood.
    pub fn loglik(&self) -> f64 {
        let n = self.nu as f64;
        let s2 = self.ssq / n;
        -0.5 * (n * s2.ln() + self.sumlog + n + n * (2.0 * std::f64::consts::PI).ln())
    }

    /// The innovation variance estimate `s²`.
    pub fn sigma2(&self) -> f64 {
        self.ssq / self.nu as f64
    }
}

/// Runs the Kalman filter over `w` (a zero-mean stationary series) for the ARMA with AR
/// coefficients `phi` and MA coefficients `theta` (R's sign conventions).
pub fn arma_likelihood(w: &[f64], phi: &[f64], theta: &[f64]) -> Likelihood {
    let p = phi.len();
    let q = theta.len();
    let r = p.max(q + 1);
    let t_coef = |i: usize| if i < p { phi[i] } else { 0.0 };
    let rvec: Vec<f64> = (0..r)
        .map(|i| {
            if i == 0 {
                1.0
            } else {
                theta.get(i - 1).copied().unwrap_or(0.0)
            }
        })
        .collect();
    let mut pmat = stationary_covariance(phi, &rvec, r);
    let mut a = vec![0.0; r];
    let (mut ssq, mut sumlog, mut nu) = (0.0, 0.0, 0usize);
    let mut residuals = Vec::with_capacity(w.len());
    let mut converged = false;
    let mut anew = vec![0.0; r];
    let mut m = vec![0.0; r * r];
    for &obs in w {
        // Innovation and its variance.
        let f = pmat[0];
        let v = obs - a[0];
        if f > 0.0 && f.is_finite() {
            ssq += v * v / f;
            sumlog += f.ln();
            nu += 1;
            residuals.push(v);
        } else {
            residuals.push(f64::NAN);
        }
        // Update then predict: a ← T(a + P Z' v/F); P ← T(P − P Z'Z P/F)T' + R R'.
        let k: Vec<f64> = (0..r).map(|i| pmat[i * r] / f).collect();
        let upd: Vec<f64> = (0..r).map(|i| a[i] + k[i] * v).collect();
        for i in 0..r {
            anew[i] = t_coef(i) * upd[0] + if i + 1 < r { upd[i + 1] } else { 0.0 };
        }
        a.copy_from_slice(&anew);
        if converged {
            continue;
        }
        // M = P − k·(P row 0) (the updated covariance).
        for i in 0..r {
            for j in 0..r {
                m[i * r + j] = pmat[i * r + j] - k[i] * pmat[j];
            }
        }
        let next = transition_sandwich(&m, phi, r, &rvec);
        // Once the covariance stops changing, the filter is in its steady state.
        let change = next
            .iter()
            .zip(&pmat)
            .map(|(x, y)| (x - y).abs())
            .fold(0.0, f64::max);
        pmat = next;
        if change < 1e-12 * pmat[0].abs().max(1.0) {
            converged = true;
        }
    }
    Likelihood {
        ssq,
        sumlog,
        nu,
        state: a,
        residuals,
    }
}

/// `T·M·T' + R·R'` for the Harvey transition matrix, in O(r²).
fn transition_sandwich(m: &[f64], phi: &[f64], r: usize, rvec: &[f64]) -> Vec<f64> {
    let t = |i: usize| phi.get(i).copied().unwrap_or(0.0);
    // (T M)[i][j] = t_i M[0][j] + M[i+1][j].
    let mut tm = vec![0.0; r * r];
    for i in 0..r {
        for j in 0..r {
            tm[i * r + j] = t(i) * m[j] + if i + 1 < r { m[(i + 1) * r + j] } else { 0.0 };
        }
    }
    // (T M T')[i][j] = (TM)[i][0] t_j + (TM)[i][j+1].
    let mut out = vec![0.0; r * r];
    for i in 0..r {
        for j in 0..r {
            out[i * r + j] = tm[i * r] * t(j)
                + if j + 1 < r { tm[i * r + j + 1] } else { 0.0 }
                + rvec[i] * rvec[j];
        }
    }
    out
}

/// The stationary state covariance, solving `P = T·P·T' + R·R'` by doubling.
fn stationary_covariance(phi: &[f64], rvec: &[f64], r: usize) -> Vec<f64> {
    let mut a = vec![0.0; r * r];
    for i in 0..r {
        a[i * r] = phi.get(i).copied().unwrap_or(0.0);
        if i + 1 < r {
            a[i * r + i + 1] = 1.0;
        }
    }
    let mut p: Vec<f64> = (0..r * r).map(|k| rvec[k / r] * rvec[k % r]).collect();
    for _ in 0..64 {
        // P ← P + A P A'; A ← A A.
        let ap = matmul(&a, &p, r);
        let apat = matmul_transposed(&ap, &a, r);
        let delta = apat.iter().map(|x| x.abs()).fold(0.0, f64::max);
        for (x, d) in p.iter_mut().zip(&apat) {
            *x += d;
        }
        a = matmul(&a, &a, r);
        if delta <= 1e-14 * p[0].abs().max(1.0) {
            break;
        }
    }
    p
}

fn matmul(a: &[f64], b: &[f64], r: usize) -> Vec<f64> {
    let mut out = vec![0.0; r * r];
    for i in 0..r {
        for k in 0..r {
            let x = a[i * r + k];
            if x == 0.0 {
                continue;
            }
            for j in 0..r {
                out[i * r + j] += x * b[k * r + j];
            }
        }
    }
    out
}

/// `a · bᵀ`.
fn matmul_transposed(a: &[f64], b: &[f64], r: usize) -> Vec<f64> {
    let mut out = vec![0.0; r * r];
    for i in 0..r {
        for j in 0..r {
            out[i * r + j] = (0..r).map(|k| a[i * r + k] * b[j * r + k]).sum();
        }
    }
    out
}

/// The conditional sum of squares objective `½·log(Σe²/ν)`, with the first `max(p, ·)`
/// residuals conditioned away (R's `armaCSS`, on the differenced series).
pub fn css_objective(w: &[f64], phi: &[f64], theta: &[f64]) -> f64 {
    let p = phi.len();
    let q = theta.len();
    let mut e = vec![0.0; w.len()];
    let (mut ssq, mut nu) = (0.0, 0usize);
    for t in p..w.len() {
        let mut v = w[t];
        for i in 0..p {
            v -= phi[i] * w[t - 1 - i];
        }
        for j in 0..q.min(t) {
            v -= theta[j] * e[t - 1 - j];
        }
        e[t] = v;
        ssq += v * v;
        nu += 1;
    }
    if nu == 0 {
        return f64::INFINITY;
    }
    0.5 * (ssq / nu as f64).ln()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ar1_stationary_variance() {
        // AR(1) with φ: Var = 1 / (1 − φ²).
        let p = stationary_covariance(&[0.6], &[1.0], 1);
        assert!((p[0] - 1.0 / (1.0 - 0.36)).abs() < 1e-12);
    }

    #[test]
    fn white_noise_likelihood_is_the_sample_variance() {
        let w = [1.0, -2.0, 0.5, 1.5];
        let l = arma_likelihood(&w, &[], &[]);
        assert_eq!(l.nu, 4);
        assert!((l.sigma2() - (1.0 + 4.0 + 0.25 + 2.25) / 4.0).abs() < 1e-12);
        assert!(l.sumlog.abs() < 1e-12);
    }
}
