//! Every registered model on real and adversarial series: fits or fails with a typed error,
//! never panics, never forecasts NaN.

use crate::common;

use prescale::model::{self, ModelError};
use prescale::series::{Labels, Series};
use proptest::prelude::*;

fn hourly(values: Vec<f64>) -> Series {
    Series::new(Labels::named("t"), 0, 3_600_000, values).expect("valid series")
}

/// A daily-cycle pattern with pseudo-random noise, like hourly request rates. (Noise, not a
/// deterministic wobble: an exactly periodic remainder makes ARIMA's order search a near-tie
/// between very different models, decided by rounding.)
fn pattern(n: usize) -> Vec<f64> {
    let mut state: u64 = 42;
    (0..n)
        .map(|t| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let noise = (state >> 11) as f64 / (1u64 << 53) as f64;
            100.0 + 40.0 * (t as f64 * std::f64::consts::TAU / 24.0).sin() + 17.0 * noise
        })
        .collect()
}

fn assert_sane(name: &str, f: &prescale::forecast::Forecast, h: usize) {
    assert_eq!(f.mean.len(), h, "{name}");
    assert!(f.mean.iter().all(|v| v.is_finite()), "{name}: {:?}", f.mean);
    for i in &f.intervals {
        for k in 0..h {
            assert!(
                i.lower[k] <= f.mean[k] + 1e-9 && f.mean[k] <= i.upper[k] + 1e-9,
                "{name} step {k}"
            );
        }
    }
}

#[test]
fn every_model_forecasts_a_real_series() {
    let taxi = common::load_dataset("nyc_taxi.csv");
    let history = taxi.slice(taxi.len() - 2000..taxi.len() - 48);
    for name in model::names() {
        let m = model::by_name(name).unwrap();
        let fitted =
            model::fit(m.as_ref(), &history, &[48, 336]).unwrap_or_else(|e| panic!("{name}: {e}"));
        let f = fitted.predict(48, &[80.0, 95.0]).unwrap();
        assert_sane(name, &f, 48);
        assert_eq!(f.start, taxi.timestamp(taxi.len() - 48), "{name}");
        let mase = prescale::forecast::metrics::mase(
            &taxi.values()[taxi.len() - 48..],
            &f.mean,
            history.values(),
            48,
        );
        // Loose on purpose: `ets` models no season longer than 24 steps, so on this 30-minute
        // series it forecasts without the daily cycle; garbage would still fail it.
        assert!(mase < 5.0, "{name}: MASE {mase} on the taxi series");
    }
}

#[test]
fn saved_models_reload_to_identical_forecasts() {
    let dir = tempfile::tempdir().unwrap();
    let s = hourly(pattern(24 * 14));
    for name in model::names() {
        let fitted = model::fit(model::by_name(name).unwrap().as_ref(), &s, &[24, 168]).unwrap();
        let path = dir.path().join(format!("{name}.json"));
        fitted.save(&path).unwrap();
        let loaded = model::FittedModel::load(&path).unwrap();
        assert_eq!(
            fitted.predict(30, &[80.0]).unwrap(),
            loaded.predict(30, &[80.0]).unwrap(),
            "{name}"
        );
        assert_eq!(loaded.model(), name);
    }
}

#[test]
fn too_short_series_are_a_typed_error() {
    // A single observation (the rest missing): nothing any model can extrapolate from.
    let s = hourly(vec![f64::NAN, 1.0, f64::NAN]);
    for name in model::names() {
        let err = model::fit(model::by_name(name).unwrap().as_ref(), &s, &[24]).err();
        assert!(
            matches!(err, Some(ModelError::TooShort { .. })),
            "{name}: {err:?}"
        );
    }
}

#[test]
fn a_season_longer_than_the_history_is_dropped_not_fatal() {
    // 40 points: under two daily cycles. Models that need two cycles fall back to no season.
    let s = hourly(pattern(40));
    for name in ["ets", "mstl", "theta"] {
        let fitted = model::fit(model::by_name(name).unwrap().as_ref(), &s, &[24, 168]).unwrap();
        assert_sane(name, &fitted.predict(12, &[95.0]).unwrap(), 12);
    }
}

#[test]
fn a_constant_series_forecasts_the_constant() {
    let s = hourly(vec![7.5; 100]);
    for name in model::names() {
        let fitted = model::fit(model::by_name(name).unwrap().as_ref(), &s, &[24]).unwrap();
        assert_eq!(
            fitted.model(),
            "naive",
            "{name} stands aside for the constant"
        );
        let f = fitted.predict(5, &[95.0]).unwrap();
        assert!(f.mean.iter().all(|&v| v == 7.5));
        assert_eq!(f.intervals[0].lower, f.intervals[0].upper);
    }
}

#[test]
fn gaps_and_a_missing_tail_still_forecast_from_the_series_end() {
    let mut v = pattern(24 * 10);
    for i in [30, 31, 32, 100, 150, 151] {
        v[i] = f64::NAN;
    }
    let n = v.len();
    v[n - 3..].iter_mut().for_each(|x| *x = f64::NAN);
    let s = hourly(v);
    for name in model::names() {
        let fitted = model::fit(model::by_name(name).unwrap().as_ref(), &s, &[24]).unwrap();
        let f = fitted.predict(24, &[80.0]).unwrap();
        assert_sane(name, &f, 24);
        assert_eq!(f.start, s.next_timestamp(), "{name}");
    }
}

#[test]
fn forecasts_scale_with_the_data() {
    let base = pattern(24 * 10);
    let f_of = |name: &str, factor: f64| {
        let s = hourly(base.iter().map(|v| v * factor).collect());
        model::fit(model::by_name(name).unwrap().as_ref(), &s, &[24])
            .unwrap()
            .predict(24, &[])
            .unwrap()
            .mean
    };
    for name in model::names() {
        let one = f_of(name, 1.0);
        for factor in [1e-9, 1e12] {
            let scaled = f_of(name, factor);
            for (a, b) in one.iter().zip(&scaled) {
                assert!(
                    (a * factor - b).abs() <= 1e-6 * (a * factor).abs().max(1e-300),
                    "{name} x{factor}: {a} vs {b}"
                );
            }
        }
    }
}

#[test]
fn non_negative_histories_get_non_negative_forecasts() {
    // A series that plunges to zero at its end: a trend model would extrapolate below zero.
    let v: Vec<f64> = (0..200).map(|t| (200 - t) as f64 * 0.5).collect();
    let s = hourly(v);
    for name in model::names() {
        let fitted = model::fit(model::by_name(name).unwrap().as_ref(), &s, &[]).unwrap();
        assert!(fitted.non_negative());
        let f = fitted.predict(48, &[95.0]).unwrap();
        assert!(
            f.mean
                .iter()
                .chain(&f.intervals[0].lower)
                .all(|&v| v >= 0.0),
            "{name}"
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn random_series_never_panic_or_forecast_nan(
        raw in prop::collection::vec(prop::option::weighted(0.9, -1e3f64..1e3), 0..300),
        exponent in -6i32..9,
        season in prop::sample::select(vec![1usize, 7, 24]),
    ) {
        let scale = 10f64.powi(exponent);
        let values: Vec<f64> = raw.iter().map(|v| v.map_or(f64::NAN, |x| x * scale)).collect();
        let s = Series::new(Labels::default(), 0, 60_000, values).unwrap();
        for name in model::names() {
            let m = model::by_name(name).unwrap();
            match model::fit(m.as_ref(), &s, &[season]) {
                Ok(fitted) => {
                    let f = fitted.predict(10, &[80.0, 95.0]);
                    match f {
                        Ok(f) => prop_assert!(f.mean.iter().all(|v| v.is_finite()), "{} gave {:?}", name, f.mean),
                        Err(e) => prop_assert!(matches!(e, ModelError::Failed { .. }), "{}: {}", name, e),
                    }
                }
                // `lstm` has no network for 1-minute steps: a settings error that says so.
                Err(e) => prop_assert!(
                    matches!(e, ModelError::TooShort { .. } | ModelError::Failed { .. })
                        || (name == "lstm" && matches!(e, ModelError::Settings { .. })),
                    "{}: unexpected {}", name, e
                ),
            }
        }
    }
}
