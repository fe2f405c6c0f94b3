//! The `prophet` model against PyPI Prophet itself, and on bad input.
//!
//! The fixtures in `tests/fixtures/prophet/` were made by `benches/peers/run_prophet.sh
//! fixtures` (Prophet 1.5.0, default settings): Prophet's fitted parameters, its in-sample fit
//! at up to 1,000 evenly spaced points and its 48-step forecast, for three real series.

use crate::common;

use std::path::Path;

use prescale::model::prophet::{
    objectives_at, CustomSeasonality, ForeignFit, Growth, Prophet, Settings,
};
use prescale::model::{self, Model, ModelError};
use prescale::series::{Labels, Series};
use prescale::source::m4;
use serde::Deserialize;

#[derive(Deserialize)]
struct Fixture {
    prophet_version: String,
    params: ForeignFit,
    in_sample: InSample,
    forecast: Forecast,
}

#[derive(Deserialize)]
struct InSample {
    index: Vec<usize>,
    yhat: Vec<f64>,
}

#[derive(Deserialize)]
struct Forecast {
    yhat: Vec<f64>,
}

fn fixture(name: &str) -> Fixture {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/prophet")
        .join(format!("{name}.json"));
    let text = std::fs::read_to_string(&path).expect("fixture exists");
    serde_json::from_str(&text).expect("fixture parses")
}

fn m4_h1() -> Series {
    m4::read_wide(&common::dataset("m4-hourly/Hourly-train.csv"), 3_600_000)
        .expect("M4 hourly loads")
        .remove(0)
}

/// The largest absolute difference between `ours` and `theirs`, relative to the series'
/// largest absolute value (Prophet's own scale).
fn worst_gap(ours: &[f64], theirs: &[f64], scale: f64) -> f64 {
    assert_eq!(ours.len(), theirs.len());
    ours.iter()
        .zip(theirs)
        .map(|(a, b)| (a - b).abs() / scale)
        .fold(0.0, f64::max)
}

fn parity(name: &str, series: Series) {
    let fx = fixture(name);
    let scale = series
        .values()
        .iter()
        .filter(|v| v.is_finite())
        .fold(0.0f64, |m, v| m.max(v.abs()));
    let fitted = Prophet::default().fit(&series, &[]).expect("prophet fits");

    let in_sample = fitted.fitted_values();
    let ours: Vec<f64> = fx.in_sample.index.iter().map(|&i| in_sample[i]).collect();
    let fit_gap = worst_gap(&ours, &fx.in_sample.yhat, scale);

    let forecast = fitted.predict(48, &[80.0]).expect("prophet predicts");
    let forecast_gap = worst_gap(&forecast.mean, &fx.forecast.yhat, scale);

    let (theirs, mine) =
        objectives_at(&Settings::default(), &series, &fx.params).expect("objectives evaluate");
    eprintln!(
        "{name} (Prophet {}): in-sample gap {:.5}%, forecast gap {:.5}%, objective ours {mine:.4} \
         vs Prophet's {theirs:.4}",
        fx.prophet_version,
        100.0 * fit_gap,
        100.0 * forecast_gap
    );
    assert!(fit_gap < 0.01, "{name}: in-sample fit differs by {fit_gap}");
    assert!(
        forecast_gap < 0.01,
        "{name}: forecast differs by {forecast_gap}"
    );
    // The MAP objective is minimised: ours is no worse than where Prophet's optimiser stopped.
    assert!(
        mine <= theirs + 1e-9 * theirs.abs(),
        "{name}: objective {mine} is worse than Prophet's {theirs}"
    );
}

#[test]
fn matches_prophet_on_nyc_taxi() {
    parity("nyc_taxi", common::load_dataset("nyc_taxi.csv"));
}

#[test]
fn matches_prophet_on_twitter_amzn() {
    parity(
        "Twitter_volume_AMZN",
        common::load_dataset("Twitter_volume_AMZN.csv"),
    );
}

#[test]
fn matches_prophet_on_m4_h1() {
    parity("m4_H1", m4_h1());
}

/// `n` hourly points of a daily pattern on a gentle trend, with `NaN`s where `gap` says.
fn hourly(n: usize, gap: impl Fn(usize) -> bool) -> Series {
    let values = (0..n)
        .map(|i| {
            if gap(i) {
                f64::NAN
            } else {
                let day = (i % 24) as f64 / 24.0 * std::f64::consts::TAU;
                100.0 + 0.05 * i as f64 + 20.0 * day.sin() + ((i * 7919) % 13) as f64
            }
        })
        .collect();
    Series::new(
        Labels::named("hourly"),
        1_700_000_000_000,
        3_600_000,
        values,
    )
    .unwrap()
}

#[test]
fn same_seed_same_intervals_and_components_add_up() {
    let series = hourly(24 * 21, |_| false);
    let fit = |seed| {
        let settings = Settings {
            seed,
            ..Settings::default()
        };
        model::fit(&Prophet::new(settings), &series, &[]).unwrap()
    };
    let one = fit(1);
    let a = one.predict(48, &[80.0, 95.0]).unwrap();
    // The same fitted model: bit for bit.
    assert_eq!(a, one.predict(48, &[80.0, 95.0]).unwrap());
    // A separate fit with the same seed: the same, although augurs arranges the features in
    // a different order each time (the fit and the totals use a canonical order).
    let b = fit(1).predict(48, &[80.0, 95.0]).unwrap();
    assert_eq!(a, b);
    let c = fit(2).predict(48, &[80.0, 95.0]).unwrap();
    let close = |x: &[f64], y: &[f64]| {
        x.iter()
            .zip(y)
            .all(|(x, y)| (x - y).abs() <= 1e-12 * x.abs())
    };
    assert!(close(&a.mean, &c.mean));
    assert!(
        !close(&a.intervals[0].lower, &c.intervals[0].lower),
        "another seed, other paths"
    );
    for (i, mean) in a.mean.iter().enumerate() {
        let (i80, i95) = (&a.intervals[0], &a.intervals[1]);
        assert!(i95.lower[i] <= i80.lower[i] && i80.lower[i] < *mean && *mean < i80.upper[i]);
        assert!(i80.upper[i] <= i95.upper[i]);
    }
    // Additive model: trend plus each seasonality is the forecast.
    let names: Vec<&str> = a.components.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["trend", "daily", "weekly"]);
    for i in 0..48 {
        let sum: f64 = a.components.iter().map(|c| c.values[i]).sum();
        assert!((sum - a.mean[i]).abs() < 1e-9 * a.mean[i].abs(), "step {i}");
    }
}

#[test]
fn saved_model_forecasts_the_same() {
    let series = hourly(24 * 21, |i| i % 50 == 7);
    let fitted = model::fit(&Prophet::default(), &series, &[]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("prophet.json");
    fitted.save(&path).unwrap();
    let loaded = model::FittedModel::load(&path).unwrap();
    assert_eq!(
        loaded.predict(24, &[90.0]).unwrap(),
        fitted.predict(24, &[90.0]).unwrap()
    );
}

#[test]
fn nan_gaps_are_dropped_as_prophet_drops_them() {
    let series = hourly(24 * 21, |i| (100..160).contains(&i) || i % 17 == 3);
    let fitted = model::fit(&Prophet::default(), &series, &[]).unwrap();
    let forecast = fitted.predict(48, &[95.0]).unwrap();
    assert!(forecast.mean.iter().all(|v| v.is_finite()));
    // A gap at the end: the forecast still starts one step after the series.
    let trailing = hourly(24 * 21, |i| i >= 24 * 21 - 5);
    let fitted = model::fit(&Prophet::default(), &trailing, &[]).unwrap();
    let forecast = fitted.predict(10, &[]).unwrap();
    assert_eq!(forecast.start, trailing.next_timestamp());
    assert!(forecast.mean.iter().all(|v| v.is_finite()));
}

#[test]
fn too_few_points_for_a_requested_seasonality_is_an_error() {
    let series = hourly(24 * 5, |_| false);
    let weekly_custom = Settings {
        seasonalities: vec![CustomSeasonality {
            name: "fortnight".into(),
            period_seconds: 14.0 * 86_400.0,
            fourier_order: 3,
        }],
        ..Settings::default()
    };
    match Prophet::new(weekly_custom).fit(&series, &[]) {
        Err(ModelError::TooShort { needed, got, .. }) => {
            assert_eq!(got, 120);
            assert!(needed > 24 * 28, "{needed}");
        }
        Err(e) => panic!("expected TooShort, got {e}"),
        Ok(_) => panic!("expected TooShort, got a fit"),
    }
    let two = Series::new(Labels::named("two"), 0, 3_600_000, vec![1.0, 2.0]).unwrap();
    assert!(matches!(
        Prophet::default().fit(&two, &[]),
        Err(ModelError::TooShort { needed: 3, .. })
    ));
}

#[test]
fn logistic_growth_needs_a_capacity_above_the_data() {
    let series = hourly(24 * 21, |_| false);
    for cap in [f64::NAN, 50.0, 0.0] {
        let settings = Settings {
            growth: Growth::Logistic { cap },
            ..Settings::default()
        };
        match Prophet::new(settings).fit(&series, &[]) {
            Err(ModelError::Settings { message, .. }) => assert!(message.contains("capacity")),
            Err(e) => panic!("cap {cap}: expected a settings error, got {e}"),
            Ok(_) => panic!("cap {cap}: expected a settings error, got a fit"),
        }
    }
    let settings = Settings {
        growth: Growth::Logistic { cap: 400.0 },
        ..Settings::default()
    };
    let forecast = model::fit(&Prophet::new(settings), &series, &[])
        .unwrap()
        .predict(24 * 30, &[95.0])
        .unwrap();
    let trend = &forecast.components[0];
    assert!(trend.values.iter().all(|v| *v > 0.0 && *v < 400.0));
    assert!(forecast.intervals[0].upper.iter().all(|v| v.is_finite()));
}

#[test]
fn constant_and_zero_led_series_give_finite_forecasts() {
    // A constant: the documented stand-in for every model (see `model::fit`).
    let constant = Series::new(Labels::named("c"), 0, 3_600_000, vec![5.0; 200]).unwrap();
    let fitted = model::fit(&Prophet::default(), &constant, &[]).unwrap();
    assert_eq!(fitted.predict(5, &[]).unwrap().mean, vec![5.0; 5]);
    // Prophet itself on a constant (and on all zeros) fits a flat line.
    for level in [5.0, 0.0] {
        let flat = Series::new(Labels::named("c"), 0, 3_600_000, vec![level; 200]).unwrap();
        let forecast = Prophet::default()
            .fit(&flat, &[])
            .unwrap()
            .predict(5, &[95.0])
            .unwrap();
        assert!(
            forecast
                .mean
                .iter()
                .all(|v| (v - level).abs() < 1e-6 * level.max(1.0)),
            "{level}: {:?}",
            forecast.mean
        );
    }
    // Two weeks of zeros, then traffic starts.
    let series = hourly(24 * 28, |_| false);
    let values: Vec<f64> = series
        .values()
        .iter()
        .enumerate()
        .map(|(i, v)| if i < 24 * 14 { 0.0 } else { *v })
        .collect();
    let late = Series::new(Labels::named("late"), 0, 3_600_000, values).unwrap();
    let fitted = model::fit(&Prophet::default(), &late, &[]).unwrap();
    let forecast = fitted.predict(48, &[95.0]).unwrap();
    assert!(forecast.mean.iter().all(|v| v.is_finite() && *v >= 0.0));
    assert!(forecast.intervals[0].lower.iter().all(|v| *v >= 0.0));
}

#[test]
fn extra_regressors_are_fitted_and_forecast() {
    use prescale::model::prophet::ExtraRegressor;
    let n = 24 * 21;
    // A promotion on every third day adds 60 to the load; the forecast days have it on day 1.
    let on = |i: usize| (i / 24).is_multiple_of(3) as u8 as f64;
    let base = hourly(n, |_| false);
    let values: Vec<f64> = base
        .values()
        .iter()
        .enumerate()
        .map(|(i, v)| v + 60.0 * on(i))
        .collect();
    let series = Series::new(Labels::named("promo"), base.start(), base.step(), values).unwrap();
    let promo: Vec<f64> = (0..n + 48).map(on).collect();
    let settings = Settings {
        regressors: vec![ExtraRegressor {
            name: "promo".into(),
            values: promo.clone(),
        }],
        ..Settings::default()
    };
    let forecast = model::fit(&Prophet::new(settings.clone()), &series, &[])
        .unwrap()
        .predict(48, &[])
        .unwrap();
    let effect = forecast
        .components
        .iter()
        .find(|c| c.name == "promo")
        .expect("a promo component");
    for (i, v) in effect.values.iter().enumerate() {
        let expected = 60.0 * promo[n + i];
        assert!((v - expected).abs() < 3.0, "step {i}: {v} vs {expected}");
    }
    // Asking past the regressor's known values is a clear error, not a guess.
    let err = model::fit(&Prophet::new(settings), &series, &[])
        .unwrap()
        .predict(49, &[])
        .unwrap_err();
    assert!(matches!(err, ModelError::Settings { .. }), "{err}");
}
