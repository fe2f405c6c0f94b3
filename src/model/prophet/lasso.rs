//! An exact start for the L-BFGS fit when Prophet's mean is linear in its parameters (linear
//! or flat trend, additive features: Prophet's default).
//!
//! At a fixed σ the objective is then a lasso: `½xᵀAx − cᵀx + λ·Σ|δ_j|` with `A = G/σ² + D`
//! (`G = ZᵀZ`, `D` the Normal priors' precisions on `k, m, β`), `c = Zᵀy/σ²` and `λ = 1/τ`.
//! The feature-sign search of Lee, Battle, Raina & Ng (2007) solves it exactly: guess which
//! deltas are non-zero and their signs, solve the linear system for that guess, and move to
//! the best point on the segment towards its solution, stopping where a delta changes sign;
//! each step lowers the objective and there are finitely many sign patterns. For fixed `x`
//! the best σ solves `4σ⁴ + (T − J)σ² − RSS = 0`. Alternating the two converges to the joint
//! optimum in a few rounds, from which L-BFGS has nothing or almost nothing left to do.
//!
//! Written here because no maintained crate solves a lasso with unpenalised and
//! ridge-penalised coordinates on a precomputed Gram matrix; the dense solves use nalgebra.

use nalgebra::{DMatrix, DVector};

/// A lasso on a Gram matrix: `½xᵀAx − cᵀx + λ·Σ_{j∈L1}|x_j|`.
pub(super) struct Lasso<'a> {
    /// `A`, row-major `p × p`, symmetric positive semi-definite.
    pub a: &'a [f64],
    /// `c`.
    pub c: &'a [f64],
    /// Which coordinates carry the L1 penalty.
    pub l1: &'a [bool],
    /// `λ`.
    pub lambda: f64,
}

/// Relative tolerance on the optimality conditions.
const TOLERANCE: f64 = 1e-10;

impl Lasso<'_> {
    fn p(&self) -> usize {
        self.c.len()
    }

    fn gradient(&self, x: &[f64]) -> Vec<f64> {
        let p = self.p();
        (0..p)
            .map(|i| {
                self.a[i * p..(i + 1) * p]
                    .iter()
                    .zip(x)
                    .map(|(a, x)| a * x)
                    .sum::<f64>()
                    - self.c[i]
            })
            .collect()
    }

    /// The objective at `x`.
    pub(super) fn value(&self, x: &[f64]) -> f64 {
        let g = self.gradient(x);
        // ½xᵀAx − cᵀx = ½xᵀ(Ax − c) − ½cᵀx.
        let quad: f64 = x
            .iter()
            .zip(&g)
            .zip(self.c)
            .map(|((x, g), c)| 0.5 * x * g - 0.5 * c * x)
            .sum();
        let l1: f64 = x
            .iter()
            .zip(self.l1)
            .filter(|(_, &pen)| pen)
            .map(|(x, _)| x.abs())
            .sum();
        quad + self.lambda * l1
    }

    /// The minimiser, from `x`; `None` if a linear system cannot be solved.
    pub(super) fn solve(&self, mut x: Vec<f64>) -> Option<Vec<f64>> {
        let p = self.p();
        let scale = self.c.iter().fold(self.lambda, |m, c| m.max(c.abs()));
        let tol = TOLERANCE * scale.max(1.0);
        // Signs of the penalised coordinates in the current guess (0: held at zero).
        let mut sign: Vec<f64> = x
            .iter()
            .zip(self.l1)
            .map(|(v, &pen)| if pen { sign_of(*v) } else { 0.0 })
            .collect();
        for _ in 0..10 * p + 100 {
            let g = self.gradient(&x);
            // Optimal on the non-zero coordinates? Then add the worst zero that should not be.
            let settled = (0..p).all(|j| {
                if !self.l1[j] {
                    g[j].abs() <= tol
                } else if sign[j] != 0.0 {
                    (g[j] + self.lambda * sign[j]).abs() <= tol
                } else {
                    true
                }
            });
            if settled {
                let worst = (0..p)
                    .filter(|&j| self.l1[j] && sign[j] == 0.0)
                    .max_by(|&i, &j| g[i].abs().total_cmp(&g[j].abs()));
                match worst {
                    Some(j) if g[j].abs() > self.lambda + tol => sign[j] = -sign_of(g[j]),
                    _ => return Some(x),
                }
            }
            let target = self.signed_solution(&sign)?;
            x = self.best_on_segment(&x, &target);
            for j in 0..p {
                if self.l1[j] {
                    sign[j] = sign_of(x[j]);
                }
            }
        }
        Some(x)
    }

    /// The minimiser of the smooth quadratic with the penalised coordinates fixed at zero
    /// where `sign` is 0 and their `|x|` replaced by `sign·x` elsewhere.
    fn signed_solution(&self, sign: &[f64]) -> Option<Vec<f64>> {
        let p = self.p();
        let free: Vec<usize> = (0..p).filter(|&j| !self.l1[j] || sign[j] != 0.0).collect();
        let n = free.len();
        let mut a = DMatrix::from_fn(n, n, |r, c| self.a[free[r] * p + free[c]]);
        // A whisker of ridge keeps the system solvable when two changepoints share their
        // data (equal columns); it moves the solution by far less than the tolerance.
        let ridge = 1e-12 * (0..n).map(|i| a[(i, i)]).fold(0.0, f64::max).max(1e-300);
        for i in 0..n {
            a[(i, i)] += ridge;
        }
        let b = DVector::from_fn(n, |r, _| self.c[free[r]] - self.lambda * sign[free[r]]);
        let solved = a.cholesky()?.solve(&b);
        let mut x = vec![0.0; p];
        for (r, &j) in free.iter().enumerate() {
            x[j] = solved[r];
        }
        x.iter().all(|v| v.is_finite()).then_some(x)
    }

    /// The best point on the segment from `from` to `to`: `to`, or the first point where a
    /// penalised coordinate would change sign (set to exactly zero there), whichever is
    /// lower. The objective is convex along the segment, so checking the breakpoints suffices.
    fn best_on_segment(&self, from: &[f64], to: &[f64]) -> Vec<f64> {
        let point =
            |t: f64| -> Vec<f64> { from.iter().zip(to).map(|(a, b)| a + t * (b - a)).collect() };
        let mut best = to.to_vec();
        let mut best_value = self.value(&best);
        for j in 0..self.p() {
            if !self.l1[j] || from[j] == 0.0 || sign_of(to[j]) == sign_of(from[j]) {
                continue;
            }
            let t = from[j] / (from[j] - to[j]);
            if !(t > 0.0 && t < 1.0) {
                continue;
            }
            let mut x = point(t);
            x[j] = 0.0;
            let v = self.value(&x);
            if v < best_value {
                (best, best_value) = (x, v);
            }
        }
        best
    }
}

fn sign_of(v: f64) -> f64 {
    if v > 0.0 {
        1.0
    } else if v < 0.0 {
        -1.0
    } else {
        0.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Brute force: the lasso's minimiser by coordinate descent, run to exhaustion.
    fn coordinate_descent(l: &Lasso, mut x: Vec<f64>) -> Vec<f64> {
        let p = l.p();
        for _ in 0..200_000 {
            for j in 0..p {
                let ajj = l.a[j * p + j];
                let rest: f64 = (0..p)
                    .filter(|&k| k != j)
                    .map(|k| l.a[j * p + k] * x[k])
                    .sum();
                let z = l.c[j] - rest;
                x[j] = if l.l1[j] {
                    z.signum() * (z.abs() - l.lambda).max(0.0) / ajj
                } else {
                    z / ajj
                };
            }
        }
        x
    }

    #[test]
    fn agrees_with_coordinate_descent() {
        // A correlated 6-dimensional problem: two free, four penalised coordinates.
        let p = 6;
        let mut state = 11u64;
        let mut next = || {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (state >> 11) as f64 / (1u64 << 53) as f64 - 0.5
        };
        let rows: Vec<Vec<f64>> = (0..30).map(|_| (0..p).map(|_| next()).collect()).collect();
        let mut a = vec![0.0; p * p];
        for r in &rows {
            for i in 0..p {
                for j in 0..p {
                    a[i * p + j] += r[i] * r[j] + if i == j { 0.01 } else { 0.0 };
                }
            }
        }
        for (lambda, c) in [
            (0.3, [1.0, -2.0, 0.5, 3.0, -0.2, 0.1]),
            (2.0, [0.4, 0.2, -3.0, 0.1, 4.0, -1.0]),
        ] {
            let l1 = [false, false, true, true, true, true];
            let lasso = Lasso {
                a: &a,
                c: &c,
                l1: &l1,
                lambda,
            };
            let exact = lasso.solve(vec![0.0; p]).unwrap();
            let reference = coordinate_descent(&lasso, vec![0.0; p]);
            assert!(lasso.value(&exact) <= lasso.value(&reference) + 1e-12);
            for (e, r) in exact.iter().zip(&reference) {
                assert!((e - r).abs() < 1e-8, "{exact:?} vs {reference:?}");
            }
        }
    }
}
