//! Lag polynomials: multiplying the seasonal and non-seasonal parts, and differencing.
//!
//! Coefficients follow the sign conventions of R's `arima`:
//! AR: `φ(B) = 1 − φ₁B − … − φ_pB^p`, stored as `[φ₁, …, φ_p]`;
//! MA: `θ(B) = 1 + θ₁B + … + θ_qB^q`, stored as `[θ₁, …, θ_q]`.

/// The AR coefficients of `φ(B)·Φ(B^m)` (both in AR sign convention).
pub(super) fn expand_ar(phi: &[f64], seasonal: &[f64], m: usize) -> Vec<f64> {
    // Work with the full polynomials 1 − Σ a_i B^i, multiply, convert back.
    let a = full(phi, -1.0, 1);
    let b = full(seasonal, -1.0, m);
    multiply(&a, &b)[1..].iter().map(|c| -c).collect()
}

/// The MA coefficients of `θ(B)·Θ(B^m)`.
pub(super) fn expand_ma(theta: &[f64], seasonal: &[f64], m: usize) -> Vec<f64> {
    let a = full(theta, 1.0, 1);
    let b = full(seasonal, 1.0, m);
    multiply(&a, &b)[1..].to_vec()
}

/// The coefficients `δ_k` (k ≥ 1) of `(1 − B)^d (1 − B^m)^D = 1 + Σ δ_k B^k`.
pub(super) fn differencing(d: usize, seasonal_d: usize, m: usize) -> Vec<f64> {
    let mut poly = vec![1.0];
    for _ in 0..d {
        poly = multiply(&poly, &[1.0, -1.0]);
    }
    for _ in 0..seasonal_d {
        let mut s = vec![0.0; m + 1];
        s[0] = 1.0;
        s[m] = -1.0;
        poly = multiply(&poly, &s);
    }
    poly[1..].to_vec()
}

/// Applies `(1 − B)^d (1 − B^m)^D` to `y`: the result is `len(y) − d − m·D` long.
pub(super) fn difference(y: &[f64], d: usize, seasonal_d: usize, m: usize) -> Vec<f64> {
    let mut w = y.to_vec();
    for _ in 0..d {
        w = w.windows(2).map(|p| p[1] - p[0]).collect();
    }
    for _ in 0..seasonal_d {
        w = (m..w.len()).map(|t| w[t] - w[t - m]).collect();
    }
    w
}

/// `1 + sign·(c₁B^s + c₂B^{2s} + …)` as dense coefficients.
fn full(coefficients: &[f64], sign: f64, spacing: usize) -> Vec<f64> {
    let mut p = vec![0.0; coefficients.len() * spacing + 1];
    p[0] = 1.0;
    for (i, c) in coefficients.iter().enumerate() {
        p[(i + 1) * spacing] = sign * c;
    }
    p
}

fn multiply(a: &[f64], b: &[f64]) -> Vec<f64> {
    let mut out = vec![0.0; a.len() + b.len() - 1];
    for (i, x) in a.iter().enumerate() {
        for (j, y) in b.iter().enumerate() {
            out[i + j] += x * y;
        }
    }
    out
}

/// ψ-weights `ψ₀ = 1, ψ₁, …, ψ_{h−1}` of `θ(B)/φ(B)` where `φ` here includes differencing
/// (AR sign convention, so `ar` may describe a non-stationary operator).
pub(super) fn psi_weights(ar: &[f64], ma: &[f64], h: usize) -> Vec<f64> {
    let mut psi = vec![0.0; h];
    if h == 0 {
        return psi;
    }
    psi[0] = 1.0;
    for j in 1..h {
        let mut v = ma.get(j - 1).copied().unwrap_or(0.0);
        for (i, a) in ar.iter().enumerate().take(j) {
            v += a * psi[j - 1 - i];
        }
        psi[j] = v;
    }
    psi
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seasonal_ar_multiplies_out() {
        // (1 − 0.5B)(1 − 0.3B²) = 1 − 0.5B − 0.3B² + 0.15B³.
        let ar = expand_ar(&[0.5], &[0.3], 2);
        assert_eq!(ar.len(), 3);
        assert!(
            (ar[0] - 0.5).abs() < 1e-12
                && (ar[1] - 0.3).abs() < 1e-12
                && (ar[2] + 0.15).abs() < 1e-12
        );
        // (1 + 0.4B)(1 + 0.2B²) = 1 + 0.4B + 0.2B² + 0.08B³.
        let ma = expand_ma(&[0.4], &[0.2], 2);
        assert!((ma[2] - 0.08).abs() < 1e-12);
    }

    #[test]
    fn differencing_matches_its_polynomial() {
        let y: Vec<f64> = (0..30).map(|t| (t * t) as f64 + (t % 4) as f64).collect();
        let w = difference(&y, 1, 1, 4);
        let delta = differencing(1, 1, 4);
        // w_t = y_t + Σ δ_k y_{t−k}.
        for (i, &v) in w.iter().enumerate() {
            let t = i + 5;
            let direct = y[t]
                + delta
                    .iter()
                    .enumerate()
                    .map(|(k, c)| c * y[t - k - 1])
                    .sum::<f64>();
            assert!((v - direct).abs() < 1e-9);
        }
    }

    #[test]
    fn psi_weights_of_a_random_walk_are_ones() {
        assert_eq!(psi_weights(&[1.0], &[], 4), [1.0, 1.0, 1.0, 1.0]);
        // AR(1) 0.5: 1, 0.5, 0.25.
        assert_eq!(psi_weights(&[0.5], &[], 3), [1.0, 0.5, 0.25]);
    }
}
