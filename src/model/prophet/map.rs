//! Prophet's MAP fit in pure Rust: the negative log posterior of Prophet's Stan model, its
//! analytic gradient, and an L-BFGS minimiser (argmin), which the model hands to
//! augurs-prophet through its `Optimizer` trait.
//!
//! augurs-prophet ports Prophet's data preparation, features and prediction, and leaves the
//! optimiser to a trait; the implementations it ships call Stan (a cmdstan binary or a WASM
//! module). This one needs neither.
//!
//! The objective is Stan's `lp__` for `prophet.stan` with constants dropped, as Stan's
//! `optimize` maximises it (parameters `k, m, δ, σ, β`):
//!
//! ```text
//! −log p = k²/50 + m²/50 + Σ|δ_j|/τ + 2σ² + Σ β_j²/(2 s_j²)
//!        + (T − J)·ln σ + Σ_i (y_i − μ_i)² / (2σ²)
//! μ_i    = trend_i · (1 + (X_m β)_i) + (X_a β)_i
//! ```
//!
//! with `J = 1` when the Jacobian of σ's log transform is included (`jacobian = true`) and 0
//! otherwise (Prophet 1.x passes no `jacobian`, so cmdstan leaves it out; that is the default
//! here too). The trend is linear, logistic or flat as in the Stan model's functions.
//!
//! The minimiser works on `θ = (k, m, ln σ, δ, β)` as Stan does on its unconstrained scale,
//! with the analytic gradient, in up to three stages:
//!
//! 1. **Start.** When the mean is linear in the parameters (linear or flat trend, additive
//!    features: Prophet's defaults) the exact optimum is computed directly (the `lasso` module:
//!    a lasso at fixed σ, alternated with σ's closed form), on cross products `ZᵀZ` that make
//!    each evaluation independent of the series' length (`Gram`). Otherwise L-BFGS runs on
//!    the objective with `|δ|` smoothed to `√(δ² + ε²) − ε` (ε = 1e-4), because the Laplace
//!    prior's kink at zero stalls quasi-Newton line searches.
//! 2. **Finish.** L-BFGS on the Hadamard form `δ = u·v` with `|δ|` replaced by
//!    `(u² + v²)/2` (`Hadamard`): smooth, with exactly the original minima.
//! 3. The exact, unsmoothed objective ([`Posterior::value`]) picks the point returned.
//!
//! Objective and gradient are scaled by `1/T` inside the minimiser so that L-BFGS's first
//! unit step stays in range on long series.

use argmin::core::{CostFunction, Executor, Gradient, State};
use argmin::solver::linesearch::MoreThuenteLineSearch;
use argmin::solver::quasinewton::LBFGS;
use augurs::prophet::optimizer::{
    Data, Error as OptimizerError, InitialParams, OptimizedParams, TrendIndicator,
};

/// Index of each parameter block in `θ`.
const K: usize = 0;
const M: usize = 1;
const LOG_SIGMA: usize = 2;
const DELTA: usize = 3;

/// The negative log posterior of Prophet's model on one prepared data set.
#[derive(Debug)]
pub struct Posterior<'a> {
    data: &'a Data,
    /// Regressor columns.
    columns: usize,
    /// For each observation, how many changepoints lie at or before it (its trend segment).
    segment: Vec<usize>,
    /// `s_a` and `s_m` as reals.
    additive: Vec<f64>,
    multiplicative: Vec<f64>,
    any_multiplicative: bool,
    /// `J` in the objective: 1 with the Jacobian of σ's log transform, else 0.
    jacobian: f64,
    /// The least-squares cross products, when the mean is linear in the parameters.
    gram: Option<Gram>,
}

/// Values the gradient needs from a forward pass.
struct Forward {
    trend: Vec<f64>,
    /// `(X_m β)_i`.
    xm: Vec<f64>,
    residual: Vec<f64>,
    rss: f64,
}

impl<'a> Posterior<'a> {
    /// The objective for `data`, ready to be minimised (with the cross products where the
    /// mean is linear); `jacobian` adds σ's log-transform Jacobian as Stan does with
    /// `jacobian=true`.
    pub fn new(data: &'a Data, jacobian: bool) -> Self {
        let mut posterior = Self::for_evaluation(data, jacobian);
        let linear = matches!(
            data.trend_indicator,
            TrendIndicator::Linear | TrendIndicator::Flat
        );
        if linear && !posterior.any_multiplicative {
            posterior.gram = Some(Gram::new(data, &posterior.segment, &posterior.additive));
        }
        posterior
    }

    /// The objective for `data` without the cross products: enough to evaluate it, the trend
    /// and the parameters at a few points, at O(T) set-up instead of O(T·p²).
    pub fn for_evaluation(data: &'a Data, jacobian: bool) -> Self {
        let columns = data.K.max(0) as usize;
        let segment: Vec<usize> = data
            .t
            .iter()
            .map(|&t| data.t_change.partition_point(|&c| c <= t))
            .collect();
        let additive: Vec<f64> = data.s_a.iter().map(|&v| f64::from(v)).collect();
        let multiplicative: Vec<f64> = data.s_m.iter().map(|&v| f64::from(v)).collect();
        Self {
            gram: None,
            data,
            columns,
            segment,
            any_multiplicative: multiplicative.iter().any(|&v| v != 0.0),
            additive,
            multiplicative,
            jacobian: if jacobian { 1.0 } else { 0.0 },
        }
    }

    /// Number of parameters: `k, m, ln σ`, one per changepoint and one per regressor column.
    pub fn dimension(&self) -> usize {
        DELTA + self.changepoints() + self.columns
    }

    /// The factor the minimiser multiplies the objective by: one over the number of points,
    /// so that gradients are of order one whatever the series' length and L-BFGS's first
    /// unit step stays in range (unscaled, it overflows σ on long series).
    fn unit(&self) -> f64 {
        1.0 / self.data.y.len().max(1) as f64
    }

    fn changepoints(&self) -> usize {
        self.data.t_change.len()
    }

    /// The exact optimum when the mean is linear (see [`super::lasso`]), from `theta`;
    /// `None` otherwise or when a system could not be solved.
    fn linear_optimum(&self, theta: &[f64]) -> Option<Vec<f64>> {
        let gram = self.gram.as_ref()?;
        let s = self.changepoints();
        let p = gram.p;
        let mut precision = vec![1.0 / 25.0, 1.0 / 25.0];
        precision.extend(std::iter::repeat_n(0.0, s));
        precision.extend(self.data.sigmas.iter().map(|sd| 1.0 / (**sd * **sd)));
        let l1: Vec<bool> = (0..p).map(|j| (2..2 + s).contains(&j)).collect();
        let n = self.data.y.len() as f64 - self.jacobian;
        let mut x = linear_part(theta);
        let mut sigma2 = (gram.rss(&x) / n.max(1.0)).max(1e-12);
        for _ in 0..100 {
            let a: Vec<f64> = (0..p * p)
                .map(|i| {
                    let diagonal = if i / p == i % p {
                        precision[i / p]
                    } else {
                        0.0
                    };
                    gram.g[i] / sigma2 + diagonal
                })
                .collect();
            let c: Vec<f64> = gram.b.iter().map(|b| b / sigma2).collect();
            x = super::lasso::Lasso {
                a: &a,
                c: &c,
                l1: &l1,
                lambda: 1.0 / *self.data.tau,
            }
            .solve(x)?;
            // The σ minimising (T − J)·ln σ + RSS/(2σ²) + 2σ².
            let rss = gram.rss(&x);
            let next = (-n + (n * n + 16.0 * rss).sqrt()) / 8.0;
            let done = (next - sigma2).abs() <= 1e-12 * sigma2;
            sigma2 = next.max(1e-300);
            if done {
                break;
            }
        }
        let mut theta = x[..2].to_vec();
        theta.push(0.5 * sigma2.ln());
        theta.extend_from_slice(&x[2..]);
        theta.iter().all(|v| v.is_finite()).then_some(theta)
    }

    /// Packs parameters into `θ`.
    pub fn pack(&self, k: f64, m: f64, sigma: f64, delta: &[f64], beta: &[f64]) -> Vec<f64> {
        let mut theta = vec![k, m, sigma.ln()];
        theta.extend_from_slice(delta);
        theta.extend_from_slice(beta);
        theta
    }

    fn delta<'t>(&self, theta: &'t [f64]) -> &'t [f64] {
        &theta[DELTA..DELTA + self.changepoints()]
    }

    fn beta<'t>(&self, theta: &'t [f64]) -> &'t [f64] {
        &theta[DELTA + self.changepoints()..]
    }

    /// The exact negative log posterior at `θ` (constants dropped, as in Stan's `lp__`).
    pub fn value(&self, theta: &[f64]) -> f64 {
        self.objective_with_rss(theta, Laplace::Exact, self.forward(theta).rss)
    }

    /// The trend at `θ` on the data's time points (scaled units).
    pub fn trend(&self, theta: &[f64]) -> Vec<f64> {
        self.trend_with_segments(theta).0
    }

    /// The objective, with the residual sum of squares from the cross products where the
    /// mean is linear (exact up to rounding, and independent of the series' length).
    fn objective(&self, theta: &[f64], laplace: Laplace) -> f64 {
        let rss = match &self.gram {
            Some(gram) => gram.rss(&linear_part(theta)),
            None => self.forward(theta).rss,
        };
        self.objective_with_rss(theta, laplace, rss)
    }

    fn objective_with_rss(&self, theta: &[f64], laplace: Laplace, rss: f64) -> f64 {
        let sigma = theta[LOG_SIGMA].exp();
        let (k, m) = (theta[K], theta[M]);
        let laplace: f64 = self
            .delta(theta)
            .iter()
            .map(|d| laplace.value(*d))
            .sum::<f64>()
            / *self.data.tau;
        let ridge: f64 = self
            .beta(theta)
            .iter()
            .zip(&self.data.sigmas)
            .map(|(b, s)| b * b / (2.0 * **s * **s))
            .sum();
        let n = self.data.y.len() as f64;
        let value = (k * k + m * m) / 50.0
            + laplace
            + 2.0 * sigma * sigma
            + ridge
            + (n - self.jacobian) * theta[LOG_SIGMA]
            + rss / (2.0 * sigma * sigma);
        if value.is_finite() {
            value
        } else {
            f64::INFINITY
        }
    }

    /// Trend, `X_m β`, residuals and their sum of squares at `θ`.
    fn forward(&self, theta: &[f64]) -> Forward {
        let (trend, _) = self.trend_with_segments(theta);
        let beta = self.beta(theta);
        let p = self.columns;
        let mut xm = vec![0.0; trend.len()];
        let mut residual = Vec::with_capacity(trend.len());
        let mut rss = 0.0;
        for (i, (y, tr)) in self.data.y.iter().zip(&trend).enumerate() {
            let row = &self.data.X[i * p..(i + 1) * p];
            let (mut a, mut mult) = (0.0, 0.0);
            for ((x, b), (sa, sm)) in row
                .iter()
                .zip(beta)
                .zip(self.additive.iter().zip(&self.multiplicative))
            {
                let xb = x * b;
                a += xb * sa;
                mult += xb * sm;
            }
            xm[i] = mult;
            let r = y - (tr * (1.0 + mult) + a);
            rss += r * r;
            residual.push(r);
        }
        Forward {
            trend,
            xm,
            residual,
            rss,
        }
    }

    /// The trend and, for the logistic trend, each segment's rate and offset.
    fn trend_with_segments(&self, theta: &[f64]) -> (Vec<f64>, Segments) {
        let (k, m) = (theta[K], theta[M]);
        let delta = self.delta(theta);
        let t = &self.data.t;
        match self.data.trend_indicator {
            TrendIndicator::Linear => {
                // Rate and offset per segment: k + Σ_{j<s} δ_j and m − Σ_{j<s} δ_j·c_j.
                let mut rate = vec![k];
                let mut offset = vec![m];
                for (d, c) in delta.iter().zip(&self.data.t_change) {
                    rate.push(rate[rate.len() - 1] + d);
                    offset.push(offset[offset.len() - 1] - d * c);
                }
                let trend = t
                    .iter()
                    .zip(&self.segment)
                    .map(|(t, &s)| rate[s] * t + offset[s])
                    .collect();
                (trend, Segments { rate, offset })
            }
            TrendIndicator::Logistic => {
                let segments = Segments::logistic(k, m, delta, &self.data.t_change);
                let trend = t
                    .iter()
                    .zip(&self.segment)
                    .zip(&self.data.cap)
                    .map(|((t, &s), cap)| {
                        cap * sigmoid(segments.rate[s] * (t - segments.offset[s]))
                    })
                    .collect();
                (trend, segments)
            }
            TrendIndicator::Flat => (
                vec![m; t.len()],
                Segments {
                    rate: vec![],
                    offset: vec![],
                },
            ),
        }
    }

    /// The gradient of the objective at `θ`, with the Laplace term as `laplace` says.
    fn gradient_at(&self, theta: &[f64], laplace: Laplace) -> Vec<f64> {
        let sigma2 = (2.0 * theta[LOG_SIGMA]).exp();
        let n = self.data.y.len() as f64;
        let (rss, dk, dm, d_delta, mut g_beta) = match &self.gram {
            Some(gram) => self.fit_gradient_gram(gram, theta, sigma2),
            None => self.fit_gradient_direct(theta, sigma2),
        };
        for ((g, b), sd) in g_beta
            .iter_mut()
            .zip(self.beta(theta))
            .zip(&self.data.sigmas)
        {
            *g += b / (**sd * **sd);
        }
        let tau = *self.data.tau;
        let mut grad = Vec::with_capacity(theta.len());
        grad.push(dk + theta[K] / 25.0);
        grad.push(dm + theta[M] / 25.0);
        grad.push(n - self.jacobian + 4.0 * sigma2 - rss / sigma2);
        grad.extend(
            d_delta
                .iter()
                .zip(self.delta(theta))
                .map(|(g, d)| g + laplace.derivative(*d) / tau),
        );
        grad.extend(g_beta);
        grad
    }

    /// `RSS` and the gradient of `RSS/(2σ²)` in `k, m, δ, β`, from the cross products:
    /// `(Gθ − b)/σ²`.
    #[allow(clippy::type_complexity)]
    fn fit_gradient_gram(
        &self,
        gram: &Gram,
        theta: &[f64],
        sigma2: f64,
    ) -> (f64, f64, f64, Vec<f64>, Vec<f64>) {
        let x = linear_part(theta);
        let gx = gram.times(&x);
        let rss = gram.rss_with(&x, &gx);
        let d: Vec<f64> = gx
            .iter()
            .zip(&gram.b)
            .map(|(g, b)| (g - b) / sigma2)
            .collect();
        let s = self.changepoints();
        (rss, d[0], d[1], d[2..2 + s].to_vec(), d[2 + s..].to_vec())
    }

    /// `RSS` and the gradient of `RSS/(2σ²)` in `k, m, δ, β`, point by point.
    #[allow(clippy::type_complexity)]
    fn fit_gradient_direct(
        &self,
        theta: &[f64],
        sigma2: f64,
    ) -> (f64, f64, f64, Vec<f64>, Vec<f64>) {
        let forward = self.forward(theta);
        let (_, segments) = self.trend_with_segments(theta);
        let p = self.columns;
        // ∂f/∂μ_i = −r_i/σ², passed on to the trend and to β.
        let mut d_trend = Vec::with_capacity(forward.trend.len());
        let mut g_beta = vec![0.0; p];
        for (i, r) in forward.residual.iter().enumerate() {
            let w = -r / sigma2;
            d_trend.push(w * (1.0 + forward.xm[i]));
            let row = &self.data.X[i * p..(i + 1) * p];
            if self.any_multiplicative {
                let tr = forward.trend[i];
                for (j, x) in row.iter().enumerate() {
                    g_beta[j] += w * x * (self.additive[j] + tr * self.multiplicative[j]);
                }
            } else {
                for ((g, x), sa) in g_beta.iter_mut().zip(row).zip(&self.additive) {
                    *g += w * x * sa;
                }
            }
        }
        let (dk, dm, d_delta) = self.trend_gradient(&segments, &d_trend);
        (forward.rss, dk, dm, d_delta, g_beta)
    }

    /// Gradient of `Σ_i d_trend_i · trend_i` with respect to `k`, `m` and `δ`.
    fn trend_gradient(&self, segments: &Segments, d_trend: &[f64]) -> (f64, f64, Vec<f64>) {
        let s = self.changepoints();
        let t = &self.data.t;
        let c = &self.data.t_change;
        match self.data.trend_indicator {
            TrendIndicator::Linear => {
                // trend_i = (k + Σ_{j<s_i} δ_j)·t_i + m − Σ_{j<s_i} δ_j·c_j, so
                // ∂/∂δ_j = Σ over points past changepoint j of d_i·(t_i − c_j): sums per
                // segment, then suffix sums over segments.
                let mut per = vec![0.0; s + 1];
                let mut per_t = vec![0.0; s + 1];
                for ((d, t), &seg) in d_trend.iter().zip(t).zip(&self.segment) {
                    per[seg] += d;
                    per_t[seg] += d * t;
                }
                let (mut tail, mut tail_t) = (0.0, 0.0);
                let mut d_delta = vec![0.0; s];
                for j in (0..s).rev() {
                    tail += per[j + 1];
                    tail_t += per_t[j + 1];
                    d_delta[j] = tail_t - c[j] * tail;
                }
                (per_t.iter().sum(), per.iter().sum(), d_delta)
            }
            TrendIndicator::Logistic => {
                let (rate, offset) = (&segments.rate, &segments.offset);
                let mut g_rate = vec![0.0; s + 1];
                let mut g_offset = vec![0.0; s + 1];
                for (((d, t), &seg), cap) in
                    d_trend.iter().zip(t).zip(&self.segment).zip(&self.data.cap)
                {
                    let z = sigmoid(rate[seg] * (t - offset[seg]));
                    let h = d * cap * z * (1.0 - z);
                    g_rate[seg] += h * (t - offset[seg]);
                    g_offset[seg] -= h * rate[seg];
                }
                // Offsets chain: M_{j+1} = c_j + (M_j − c_j)·K_j/K_{j+1}.
                for j in (0..s).rev() {
                    let adj = g_offset[j + 1];
                    let ratio = rate[j] / rate[j + 1];
                    let lever = offset[j] - c[j];
                    g_offset[j] += adj * ratio;
                    g_rate[j] += adj * lever / rate[j + 1];
                    g_rate[j + 1] -= adj * lever * ratio / rate[j + 1];
                }
                // K_s = k + Σ_{j<s} δ_j.
                let mut d_delta = vec![0.0; s];
                let mut tail = 0.0;
                for j in (0..s).rev() {
                    tail += g_rate[j + 1];
                    d_delta[j] = tail;
                }
                (g_rate.iter().sum(), g_offset[0], d_delta)
            }
            TrendIndicator::Flat => (0.0, d_trend.iter().sum(), vec![0.0; s]),
        }
    }
}

/// `θ` without `ln σ`: the coefficients `(k, m, δ, β)` of a linear mean.
fn linear_part(theta: &[f64]) -> Vec<f64> {
    let mut x = Vec::with_capacity(theta.len() - 1);
    x.extend_from_slice(&theta[..LOG_SIGMA]);
    x.extend_from_slice(&theta[DELTA..]);
    x
}

/// Cross products of the design of a linear mean, `μ = Z·(k, m, δ, β)` with rows
/// `z_i = (t_i, 1, (t_i − c_1)⁺, …, (t_i − c_S)⁺, x_i)` (for the flat trend only the `1`
/// and `x_i`): `G = ZᵀZ`, `b = Zᵀy`, `yᵀy`.
///
/// With them the residual sum of squares, `yᵀy − 2bᵀθ + θᵀGθ`, and its gradient cost
/// O(p²) per evaluation instead of O(T·p), so an L-BFGS iteration no longer depends on the
/// series' length (p ≈ 40 for Prophet's defaults, T in the thousands).
#[derive(Debug)]
struct Gram {
    p: usize,
    g: Vec<f64>,
    b: Vec<f64>,
    yy: f64,
}

impl Gram {
    fn new(data: &Data, segment: &[usize], additive: &[f64]) -> Self {
        let s = data.t_change.len();
        let k = data.K.max(0) as usize;
        let p = 2 + s + k;
        let linear = data.trend_indicator == TrendIndicator::Linear;
        let mut g = vec![0.0; p * p];
        let mut b = vec![0.0; p];
        let mut yy = 0.0;
        let mut z = vec![0.0; p];
        for (i, (&t, &y)) in data.t.iter().zip(&data.y).enumerate() {
            z.iter_mut().for_each(|v| *v = 0.0);
            if linear {
                z[0] = t;
                for (j, c) in data.t_change[..segment[i]].iter().enumerate() {
                    z[2 + j] = t - c;
                }
            }
            z[1] = 1.0;
            for (j, (x, a)) in data.X[i * k..(i + 1) * k].iter().zip(additive).enumerate() {
                z[2 + s + j] = x * a;
            }
            for a in 0..p {
                if z[a] == 0.0 {
                    continue;
                }
                b[a] += z[a] * y;
                let row = &mut g[a * p..(a + 1) * p];
                for (gab, zb) in row[a..].iter_mut().zip(&z[a..]) {
                    *gab += z[a] * zb;
                }
            }
            yy += y * y;
        }
        for a in 0..p {
            for c in 0..a {
                g[a * p + c] = g[c * p + a];
            }
        }
        Self { p, g, b, yy }
    }

    fn times(&self, x: &[f64]) -> Vec<f64> {
        self.g
            .chunks(self.p)
            .map(|row| row.iter().zip(x).map(|(g, x)| g * x).sum())
            .collect()
    }

    fn rss_with(&self, x: &[f64], gx: &[f64]) -> f64 {
        let bx: f64 = self.b.iter().zip(x).map(|(b, x)| b * x).sum();
        let xgx: f64 = x.iter().zip(gx).map(|(x, g)| x * g).sum();
        (self.yy - 2.0 * bx + xgx).max(0.0)
    }

    fn rss(&self, x: &[f64]) -> f64 {
        self.rss_with(x, &self.times(x))
    }
}

/// Each trend segment's rate and offset (segment `s` lies after `s` changepoints).
struct Segments {
    rate: Vec<f64>,
    offset: Vec<f64>,
}

impl Segments {
    /// The logistic trend's segments, as the Stan model's `logistic_gamma`: offsets adjusted
    /// so the curve is continuous at each changepoint.
    fn logistic(k: f64, m: f64, delta: &[f64], changepoints: &[f64]) -> Self {
        let mut rate = vec![k];
        let mut offset = vec![m];
        for (d, c) in delta.iter().zip(changepoints) {
            let (k_prev, m_prev) = (rate[rate.len() - 1], offset[offset.len() - 1]);
            let k_next = k_prev + d;
            rate.push(k_next);
            offset.push(c + (m_prev - c) * k_prev / k_next);
        }
        Self { rate, offset }
    }
}

fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

/// How the objective treats the Laplace prior's `|δ|/τ`.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Laplace {
    /// As written; its derivative at zero is the subgradient 0, as Stan's `fabs`.
    Exact,
    /// `√(δ² + ε²) − ε`, smooth at zero.
    Smoothed(f64),
    /// Left out (the Hadamard stage adds its own equivalent, see [`Hadamard`]).
    Omitted,
}

impl Laplace {
    fn value(self, x: f64) -> f64 {
        match self {
            Self::Exact => x.abs(),
            Self::Smoothed(eps) => x.hypot(eps) - eps,
            Self::Omitted => 0.0,
        }
    }

    fn derivative(self, x: f64) -> f64 {
        match self {
            Self::Exact if x == 0.0 => 0.0,
            Self::Exact => x.signum(),
            Self::Smoothed(eps) => x / x.hypot(eps),
            Self::Omitted => 0.0,
        }
    }
}

/// The objective with a smoothed Laplace term, as argmin sees it.
struct Smoothed<'p, 'a> {
    posterior: &'p Posterior<'a>,
    epsilon: f64,
}

impl CostFunction for Smoothed<'_, '_> {
    type Param = Vec<f64>;
    type Output = f64;

    fn cost(&self, theta: &Self::Param) -> Result<f64, argmin::core::Error> {
        Ok(self
            .posterior
            .objective(theta, Laplace::Smoothed(self.epsilon))
            * self.posterior.unit())
    }
}

impl Gradient for Smoothed<'_, '_> {
    type Param = Vec<f64>;
    type Gradient = Vec<f64>;

    fn gradient(&self, theta: &Self::Param) -> Result<Vec<f64>, argmin::core::Error> {
        let unit = self.posterior.unit();
        let mut g = self
            .posterior
            .gradient_at(theta, Laplace::Smoothed(self.epsilon));
        g.iter_mut().for_each(|x| *x *= unit);
        Ok(g)
    }
}

/// The objective with each `δ_j` written as `u_j·v_j` and `|δ_j|/τ` replaced by
/// `(u_j² + v_j²)/(2τ)`.
///
/// For a fixed product `u·v = δ` the smallest `(u² + v²)/2` is `|δ|`, so the minima of this
/// smooth function are exactly the minima of the objective with its kink (the Hadamard
/// parametrisation of the lasso, Hoff 2017), and L-BFGS converges on it without stalling
/// at `δ = 0`. Parameters: `(k, m, ln σ, u, v, β)`.
struct Hadamard<'p, 'a> {
    posterior: &'p Posterior<'a>,
}

impl Hadamard<'_, '_> {
    /// `θ` for the parameters `phi`.
    fn theta(&self, phi: &[f64]) -> Vec<f64> {
        let s = self.posterior.changepoints();
        let (u, v) = (&phi[DELTA..DELTA + s], &phi[DELTA + s..DELTA + 2 * s]);
        let mut theta = phi[..DELTA].to_vec();
        theta.extend(u.iter().zip(v).map(|(u, v)| u * v));
        theta.extend_from_slice(&phi[DELTA + 2 * s..]);
        theta
    }

    /// Balanced factors of `θ`'s deltas; a zero delta gets small factors with the sign that
    /// `direction` (the smooth part's gradient) says would lower the objective, so that the
    /// search does not start on the saddle at `u = v = 0`.
    fn phi(&self, theta: &[f64], direction: &[f64]) -> Vec<f64> {
        let s = self.posterior.changepoints();
        let delta = self.posterior.delta(theta);
        let mut phi = theta[..DELTA].to_vec();
        let root = |d: f64| d.abs().max(1e-8).sqrt();
        phi.extend(
            delta
                .iter()
                .zip(&direction[DELTA..DELTA + s])
                .map(|(d, g)| {
                    let sign = if *d != 0.0 { d.signum() } else { -g.signum() };
                    sign * root(*d)
                }),
        );
        phi.extend(delta.iter().map(|d| root(*d)));
        phi.extend_from_slice(&theta[DELTA + s..]);
        phi
    }

    fn penalty(&self, phi: &[f64]) -> f64 {
        let s = self.posterior.changepoints();
        phi[DELTA..DELTA + 2 * s].iter().map(|x| x * x).sum::<f64>()
            / (2.0 * *self.posterior.data.tau)
    }
}

impl CostFunction for Hadamard<'_, '_> {
    type Param = Vec<f64>;
    type Output = f64;

    fn cost(&self, phi: &Self::Param) -> Result<f64, argmin::core::Error> {
        let value =
            self.posterior.objective(&self.theta(phi), Laplace::Omitted) + self.penalty(phi);
        Ok(value * self.posterior.unit())
    }
}

impl Gradient for Hadamard<'_, '_> {
    type Param = Vec<f64>;
    type Gradient = Vec<f64>;

    fn gradient(&self, phi: &Self::Param) -> Result<Vec<f64>, argmin::core::Error> {
        let s = self.posterior.changepoints();
        let tau = *self.posterior.data.tau;
        let g = self
            .posterior
            .gradient_at(&self.theta(phi), Laplace::Omitted);
        let (u, v) = (&phi[DELTA..DELTA + s], &phi[DELTA + s..DELTA + 2 * s]);
        let g_delta = &g[DELTA..DELTA + s];
        let mut out = g[..DELTA].to_vec();
        out.extend((0..s).map(|j| g_delta[j] * v[j] + u[j] / tau));
        out.extend((0..s).map(|j| g_delta[j] * u[j] + v[j] / tau));
        out.extend_from_slice(&g[DELTA + s..]);
        let unit = self.posterior.unit();
        out.iter_mut().for_each(|x| *x *= unit);
        Ok(out)
    }
}

/// How a MAP fit went.
#[derive(Debug, Clone, PartialEq)]
pub struct MapReport {
    /// The exact objective at the returned parameters.
    pub objective: f64,
    /// L-BFGS iterations over all smoothing stages.
    pub iterations: u64,
    /// True when the last stage stopped on a tolerance rather than the iteration limit.
    pub converged: bool,
}

/// Prophet's MAP fit by L-BFGS on the analytic gradient: augurs-prophet's [`Optimizer`](augurs::prophet::optimizer::Optimizer)
/// without Stan.
#[derive(Debug, Clone)]
pub struct Lbfgs {
    /// Iterations allowed over all stages (Prophet asks Stan for 10,000).
    pub max_iterations: u64,
    /// Pairs of updates L-BFGS keeps (Stan's default is 5).
    pub memory: usize,
}

impl Default for Lbfgs {
    fn default() -> Self {
        Self {
            max_iterations: 10_000,
            memory: 30,
        }
    }
}

/// The smoothing of `|δ|` in the first stage (see the module documentation).
const SMOOTHING: f64 = 1e-4;

/// Stan's relative objective tolerance (1e4 machine epsilons), judged per chunk. (Tighter
/// tolerances cost iterations and change the forecasts by less than 1e-6 relative: the
/// posterior is nearly flat along combinations of changepoint deltas.)
const STAN_TOLERANCE: f64 = 1e4 * f64::EPSILON;

/// Iterations per L-BFGS run in [`descend`].
const CHUNK: u64 = 100;

/// Minimises `problem` from `x0` within `budget` iterations: the best point, the iterations
/// used, and whether it converged rather than ran out of budget.
///
/// L-BFGS runs in chunks of [`CHUNK`] iterations, each started from the last one's best
/// point, until a chunk gains less than [`STAN_TOLERANCE`] (relative) or a run stops by
/// itself (the gradient vanished, or the line search can improve no further at the limit of
/// rounding). Convergence is judged over a chunk rather than per iteration because argmin's
/// per-iteration test stops the very first iteration when its unscaled steepest-descent step
/// happens to gain little.
fn descend<P>(problem: &P, x0: Vec<f64>, memory: usize, budget: u64) -> (Vec<f64>, u64, bool)
where
    P: CostFunction<Param = Vec<f64>, Output = f64>
        + Gradient<Param = Vec<f64>, Gradient = Vec<f64>>,
{
    let cost = |x: &Vec<f64>| problem.cost(x).unwrap_or(f64::INFINITY);
    let (mut best, mut best_cost) = (x0.clone(), cost(&x0));
    let mut used = 0;
    while used < budget {
        let chunk = CHUNK.min(budget - used);
        let Some((x, iterations)) = run_lbfgs(problem, best.clone(), memory, chunk) else {
            return (best, used, true);
        };
        used += iterations.max(1);
        let c = cost(&x);
        let gain = best_cost - c;
        if c < best_cost {
            (best, best_cost) = (x, c);
        }
        if iterations < chunk || gain <= STAN_TOLERANCE * best_cost.abs().max(1.0) {
            return (best, used, true);
        }
    }
    (best, used, false)
}

/// One L-BFGS run of at most `iterations`: its best point and the iterations it took, or
/// `None` when it failed before evaluating anything.
fn run_lbfgs<P>(
    problem: &P,
    x0: Vec<f64>,
    memory: usize,
    iterations: u64,
) -> Option<(Vec<f64>, u64)>
where
    P: CostFunction<Param = Vec<f64>, Output = f64>
        + Gradient<Param = Vec<f64>, Gradient = Vec<f64>>,
{
    let solver = LBFGS::new(MoreThuenteLineSearch::new(), memory)
        .with_tolerance_grad(1e-10)
        .and_then(|s| s.with_tolerance_cost(0.0))
        .ok()?;
    // A line search that cannot improve any further (at the optimum to rounding, or where
    // the objective overflows) ends the run early; its best point is kept.
    let result = Executor::new(Problem(problem), solver)
        .configure(|s| s.param(x0).max_iters(iterations))
        .run()
        .ok()?;
    let used = result.state.get_iter();
    Some((result.state.best_param?, used))
}

/// A borrowed problem, so that [`descend`] can hand argmin the same one run after run.
struct Problem<'p, P>(&'p P);

impl<P: CostFunction<Param = Vec<f64>, Output = f64>> CostFunction for Problem<'_, P> {
    type Param = Vec<f64>;
    type Output = f64;

    fn cost(&self, x: &Vec<f64>) -> Result<f64, argmin::core::Error> {
        self.0.cost(x)
    }
}

impl<P: Gradient<Param = Vec<f64>, Gradient = Vec<f64>>> Gradient for Problem<'_, P> {
    type Param = Vec<f64>;
    type Gradient = Vec<f64>;

    fn gradient(&self, x: &Vec<f64>) -> Result<Vec<f64>, argmin::core::Error> {
        self.0.gradient(x)
    }
}

impl Lbfgs {
    /// Minimises the posterior from `theta`: the best point found and how it went.
    ///
    /// The stages are those of the module documentation: an exact start where the mean is
    /// linear (else L-BFGS with `|δ|` smoothed), then L-BFGS on the Hadamard form; the exact
    /// objective decides which point is returned.
    pub fn minimise(
        &self,
        posterior: &Posterior,
        theta: Vec<f64>,
    ) -> Result<(Vec<f64>, MapReport), String> {
        let start = posterior.value(&theta);
        if !start.is_finite() {
            return Err(format!(
                "the objective is not finite at the start ({start})"
            ));
        }
        let mut best = theta;
        let mut iterations = 0;
        match posterior.linear_optimum(&best) {
            Some(theta) if posterior.value(&theta) <= posterior.value(&best) => best = theta,
            _ => {
                let smoothed = Smoothed {
                    posterior,
                    epsilon: SMOOTHING,
                };
                let (theta, used, _) =
                    descend(&smoothed, best.clone(), self.memory, self.max_iterations);
                iterations += used;
                if posterior.value(&theta) <= posterior.value(&best) {
                    best = theta;
                }
            }
        }
        let hadamard = Hadamard { posterior };
        let direction = posterior.gradient_at(&best, Laplace::Omitted);
        let phi = hadamard.phi(&best, &direction);
        let budget = self.max_iterations.saturating_sub(iterations);
        let (phi, used, converged) = descend(&hadamard, phi, self.memory, budget);
        iterations += used;
        let theta = hadamard.theta(&phi);
        if posterior.value(&theta) <= posterior.value(&best) {
            best = theta;
        }
        let objective = posterior.value(&best);
        Ok((
            best,
            MapReport {
                objective,
                iterations,
                converged,
            },
        ))
    }
}

impl Lbfgs {
    /// Prophet's MAP estimate from augurs' initial values: `θ` in `data`'s column order and
    /// how the fit went.
    ///
    /// The minimiser works on the columns in a canonical order ([`canonical_order`]): augurs'
    /// order changes from one fit to the next, and the same data should always take the same
    /// path to the same bits.
    pub fn fit(
        &self,
        data: &Data,
        jacobian: bool,
        init: &InitialParams,
    ) -> Result<(Vec<f64>, MapReport), String> {
        let order = canonical_order(data);
        let canonical = permute_columns(data, &order);
        let posterior = Posterior::new(&canonical, jacobian);
        let beta = order
            .iter()
            .map(|&j| init.beta.get(j).copied())
            .collect::<Option<Vec<f64>>>()
            .ok_or("the initial values have fewer coefficients than the data has columns")?;
        let start = posterior.pack(init.k, init.m, *init.sigma_obs, &init.delta, &beta);
        if start.len() != posterior.dimension() {
            return Err(format!(
                "initial values have {} parameters, the data needs {}",
                start.len(),
                posterior.dimension()
            ));
        }
        let (canonical_theta, report) = self.minimise(&posterior, start)?;
        let split = canonical_theta.len() - order.len();
        let mut theta = canonical_theta[..split].to_vec();
        let mut beta = vec![0.0; order.len()];
        for (position, &j) in order.iter().enumerate() {
            beta[j] = canonical_theta[split + position];
        }
        theta.extend(beta);
        Ok((theta, report))
    }
}

/// The parameters in augurs' form, with the trend at the data's time points.
pub fn unpack(posterior: &Posterior, theta: &[f64]) -> Result<OptimizedParams, OptimizerError> {
    let sigma = theta[LOG_SIGMA].exp();
    Ok(OptimizedParams {
        k: theta[K],
        m: theta[M],
        sigma_obs: sigma
            .try_into()
            .map_err(|_| OptimizerError::string(format!("σ = {sigma} is not positive")))?,
        delta: posterior.delta(theta).to_vec(),
        beta: posterior.beta(theta).to_vec(),
        trend: posterior.trend(theta),
    })
}

/// The logistic trend (scaled units) at times `t` with rate changes `delta` at
/// `changepoints`, capacity `cap`: the Stan model's `logistic_trend`.
pub fn logistic_trend(
    k: f64,
    m: f64,
    delta: &[f64],
    changepoints: &[f64],
    cap: f64,
    t: &[f64],
) -> Vec<f64> {
    let segments = Segments::logistic(k, m, delta, changepoints);
    t.iter()
        .map(|t| {
            let s = changepoints.partition_point(|&c| c <= *t);
            cap * sigmoid(segments.rate[s] * (t - segments.offset[s]))
        })
        .collect()
}

impl Posterior<'_> {
    /// `(k, m, σ, δ)` from `θ`.
    pub fn trend_parameters<'t>(&self, theta: &'t [f64]) -> (f64, f64, f64, &'t [f64]) {
        (
            theta[K],
            theta[M],
            theta[LOG_SIGMA].exp(),
            self.delta(theta),
        )
    }
}

/// A fingerprint of each regressor column of `data` (FNV-1a over the bits of its values).
///
/// augurs keeps seasonalities in a `HashMap`, so the order of the columns (and of `β`)
/// differs from one process to the next; a saved `β` is matched to the columns of a new
/// preparation by these fingerprints. FNV-1a is written out because std's hasher is not
/// specified to stay the same across Rust releases, and model files must.
pub fn column_fingerprints(data: &Data) -> Vec<u64> {
    let k = data.K.max(0) as usize;
    let mut hashes = vec![0xcbf2_9ce4_8422_2325u64; k];
    for row in data.X.chunks(k.max(1)) {
        for (h, x) in hashes.iter_mut().zip(row) {
            for byte in x.to_bits().to_le_bytes() {
                *h ^= u64::from(byte);
                *h = h.wrapping_mul(0x0100_0000_01b3);
            }
        }
    }
    hashes
}

/// The columns of `data` sorted by their fingerprints: an order that does not depend on how
/// augurs happened to arrange them.
pub fn canonical_order(data: &Data) -> Vec<usize> {
    let prints = column_fingerprints(data);
    let mut order: Vec<usize> = (0..prints.len()).collect();
    order.sort_by_key(|&j| (prints[j], j));
    order
}

/// `data` with its regressor columns (and their priors and modes) taken in `order`.
pub fn permute_columns(data: &Data, order: &[usize]) -> Data {
    let k = order.len();
    let mut x = Vec::with_capacity(data.X.len());
    for row in data.X.chunks(k.max(1)) {
        x.extend(order.iter().map(|&j| row[j]));
    }
    Data {
        X: x,
        sigmas: order.iter().map(|&j| data.sigmas[j]).collect(),
        s_a: order.iter().map(|&j| data.s_a[j]).collect(),
        s_m: order.iter().map(|&j| data.s_m[j]).collect(),
        ..data.clone()
    }
}

/// Reorders `β` saved for columns `saved` into the order of columns `now`: `None` when the
/// two sets of columns differ.
pub fn reorder(beta: &[f64], saved: &[u64], now: &[u64]) -> Option<Vec<f64>> {
    if saved.len() != now.len() || beta.len() != now.len() {
        return None;
    }
    let mut used = vec![false; saved.len()];
    now.iter()
        .map(|h| {
            let j = (0..saved.len()).find(|&j| !used[j] && saved[j] == *h)?;
            used[j] = true;
            Some(beta[j])
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small data set: 60 points, 3 changepoints, 4 columns (two additive, two
    /// multiplicative when `mixed`).
    fn data(trend: TrendIndicator, mixed: bool) -> Data {
        let n = 60;
        let t: Vec<f64> = (0..n).map(|i| i as f64 / (n - 1) as f64).collect();
        let mut x = Vec::new();
        for &ti in &t {
            let a = 2.0 * std::f64::consts::PI * ti * 7.0;
            x.extend([a.sin(), a.cos(), (2.0 * a).sin(), (2.0 * a).cos()]);
        }
        let y = t
            .iter()
            .enumerate()
            .map(|(i, ti)| 0.4 + 0.3 * ti + 0.1 * (i as f64 * 0.7).sin())
            .collect();
        Data {
            T: n as i32,
            y,
            t,
            cap: vec![1.5; n],
            S: 3,
            t_change: vec![0.2, 0.45, 0.7],
            trend_indicator: trend,
            K: 4,
            s_a: if mixed { vec![1, 1, 0, 0] } else { vec![1; 4] },
            s_m: if mixed { vec![0, 0, 1, 1] } else { vec![0; 4] },
            X: x,
            sigmas: vec![10.0.try_into().unwrap(); 4],
            tau: 0.05.try_into().unwrap(),
        }
    }

    fn theta() -> Vec<f64> {
        vec![
            0.8,
            0.3,
            (0.2f64).ln(),
            0.05,
            -0.1,
            0.02,
            0.01,
            -0.02,
            0.03,
            0.04,
        ]
    }

    #[test]
    fn gradient_matches_central_differences() {
        for trend in [
            TrendIndicator::Linear,
            TrendIndicator::Logistic,
            TrendIndicator::Flat,
        ] {
            for mixed in [false, true] {
                for jacobian in [false, true] {
                    let d = data(trend, mixed);
                    let p = Posterior::new(&d, jacobian);
                    let x = theta();
                    let eps = 1e-3;
                    let g = p.gradient_at(&x, Laplace::Smoothed(eps));
                    for i in 0..x.len() {
                        let h = 1e-6;
                        let (mut up, mut down) = (x.clone(), x.clone());
                        up[i] += h;
                        down[i] -= h;
                        let numeric = (p.objective(&up, Laplace::Smoothed(eps))
                            - p.objective(&down, Laplace::Smoothed(eps)))
                            / (2.0 * h);
                        assert!(
                            (g[i] - numeric).abs() < 1e-5 * numeric.abs().max(1.0),
                            "{trend:?} mixed={mixed} jacobian={jacobian} θ{i}: {} vs {numeric}",
                            g[i]
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn cross_products_give_the_direct_sum_of_squares() {
        for trend in [TrendIndicator::Linear, TrendIndicator::Flat] {
            let d = data(trend, false);
            let p = Posterior::new(&d, false);
            let gram = p.gram.as_ref().expect("a linear mean has cross products");
            let x = theta();
            let direct = p.forward(&x).rss;
            let fast = gram.rss(&linear_part(&x));
            assert!((direct - fast).abs() < 1e-10 * direct, "{direct} vs {fast}");
        }
        assert!(Posterior::new(&data(TrendIndicator::Linear, true), false)
            .gram
            .is_none());
        assert!(
            Posterior::new(&data(TrendIndicator::Logistic, false), false)
                .gram
                .is_none()
        );
    }

    #[test]
    fn minimiser_reaches_a_stationary_point() {
        for trend in [
            TrendIndicator::Linear,
            TrendIndicator::Logistic,
            TrendIndicator::Flat,
        ] {
            let d = data(trend, true);
            let p = Posterior::new(&d, false);
            let start = p.pack(0.3, 0.4, 1.0, &[0.0; 3], &[0.0; 4]);
            let (theta, report) = Lbfgs::default().minimise(&p, start.clone()).unwrap();
            assert!(
                report.objective < p.value(&start) - 10.0,
                "{trend:?} {report:?}"
            );
            // Every smooth direction (all but the δ at the kink) is flat at the optimum...
            let g = p.gradient_at(&theta, Laplace::Exact);
            for i in (0..3).chain(DELTA + 3..theta.len()) {
                assert!(g[i].abs() < 1e-2, "{trend:?} θ{i}: gradient {}", g[i]);
            }
            // ...and starting again from it gains nothing.
            let (_, again) = Lbfgs::default().minimise(&p, theta).unwrap();
            assert!(
                again.objective >= report.objective - 1e-9 * report.objective.abs(),
                "{trend:?}: {} then {}",
                report.objective,
                again.objective
            );
        }
    }
}
