//! The `auto` model: validation on the series' own last windows, combination, conformal
//! intervals, model files.

use crate::common;

use prescale::forecast::metrics;
use prescale::model::auto::{self, Auto, Combine};
use prescale::model::{self, FittedModel, Model, ModelError, ModelSpec};
use prescale::series::{Aggregation, Labels, Samples, Series};

/// The bundled taxi series averaged to hours: about 5,000 real points with daily and weekly
/// cycles.
fn taxi_hourly() -> Series {
    let s = common::load_dataset("nyc_taxi.csv");
    Samples::new(
        Labels::named("taxi_hourly"),
        s.timestamps().collect(),
        s.values().to_vec(),
    )
    .unwrap()
    .regularize(3_600_000, Aggregation::Mean)
    .unwrap()
}

/// `auto` over the fast candidates (the slow AutoARIMA search would dominate the test time).
fn fast(combine: Combine) -> Auto {
    Auto::from_settings(auto::Settings {
        candidates: ["ets", "theta", "prophet", "seasonal-naive"]
            .into_iter()
            .map(ModelSpec::named)
            .collect(),
        windows: 3,
        horizon: Some(24),
        stride: None,
        combine,
    })
    .unwrap()
}

#[test]
fn best_picks_the_lowest_validation_error_and_says_so() {
    let series = taxi_hourly();
    let fitted = model::fit(&fast(Combine::Best), &series, &[24, 168]).unwrap();
    let text = fitted.describe();
    // "auto: chose NAME; validation MASE a x, b y, ..." with the chosen one first (lowest).
    let chosen = text
        .strip_prefix("auto: chose ")
        .and_then(|t| t.split(';').next())
        .unwrap_or_else(|| panic!("{text}"));
    let ranking = text.split("validation MASE ").nth(1).unwrap();
    assert!(ranking.starts_with(chosen), "{text}");
    let errors: Vec<f64> = ranking
        .split(';')
        .next()
        .unwrap()
        .split(", ")
        .map(|part| part.rsplit(' ').next().unwrap().parse().unwrap())
        .collect();
    assert_eq!(errors.len(), 4, "{text}");
    assert!(errors.windows(2).all(|w| w[0] <= w[1]), "{text}");
}

#[test]
fn conformal_intervals_cover_held_out_days_as_they_say() {
    // Forecast each of the last 14 days from the history before it; the 80% and 95%
    // intervals, calibrated on the windows before each origin, should cover about that share.
    let series = taxi_hourly();
    let n = series.len();
    let mut covered = [0usize; 2];
    let mut total = 0usize;
    for day in (1..=14).rev() {
        let origin = n - day * 24;
        let history = series.slice(0..origin);
        let forecast = model::fit(&fast(Combine::Median), &history, &[24, 168])
            .unwrap()
            .predict(24, &[80.0, 95.0])
            .unwrap();
        let actual = &series.values()[origin..origin + 24];
        for (k, interval) in forecast.intervals.iter().enumerate() {
            covered[k] += actual
                .iter()
                .zip(interval.lower.iter().zip(&interval.upper))
                .filter(|(a, (l, u))| l <= a && a <= u)
                .count();
        }
        total += actual.len();
    }
    let share = |k: usize| 100.0 * covered[k] as f64 / total as f64;
    eprintln!(
        "held-out coverage: 80% → {:.1}%, 95% → {:.1}%",
        share(0),
        share(1)
    );
    // 336 held-out hours: a binomial 95% band is about ±2.5 points at 95%, ±4.3 at 80%.
    assert!(
        (share(1) - 95.0).abs() <= 6.0,
        "95%: covered {:.1}%",
        share(1)
    );
    assert!(
        (share(0) - 80.0).abs() <= 10.0,
        "80%: covered {:.1}%",
        share(0)
    );
}

#[test]
fn the_median_is_no_worse_than_its_typical_member_here() {
    // On the last day of the taxi series, the median of the candidates beats the median
    // candidate's own error: the point of combining.
    let series = taxi_hourly();
    let (history, actual) = series.split_at(series.len() - 24);
    let mase = |m: &dyn Model| {
        let f = model::fit(m, &history, &[24, 168])
            .unwrap()
            .predict(24, &[])
            .unwrap();
        metrics::mase(actual.values(), &f.mean, history.values(), 24)
    };
    let combined = mase(&fast(Combine::Median));
    let mut members: Vec<f64> = fast(Combine::Median)
        .settings()
        .candidates
        .iter()
        .map(|spec| mase(spec.build().unwrap().as_ref()))
        .collect();
    members.sort_by(f64::total_cmp);
    assert!(
        combined <= members[members.len() / 2],
        "{combined} vs {members:?}"
    );
}

#[test]
fn a_saved_auto_model_forecasts_the_same() {
    let series = taxi_hourly();
    let fitted = model::fit(&fast(Combine::InverseError), &series, &[24, 168]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("auto.json");
    fitted.save(&path).unwrap();
    let loaded = FittedModel::load(&path).unwrap();
    assert_eq!(
        loaded.predict(48, &[90.0]).unwrap(),
        fitted.predict(48, &[90.0]).unwrap()
    );
    assert_eq!(loaded.describe(), fitted.describe());
}

/// `auto` over `candidates` with its default windows.
fn over(candidates: &[&str]) -> Auto {
    Auto::from_settings(auto::Settings {
        candidates: candidates.iter().copied().map(ModelSpec::named).collect(),
        ..auto::Settings::default()
    })
    .unwrap()
}

#[test]
fn validation_windows_have_the_length_of_the_horizon_asked_for() {
    // Five-minute data, one hour ahead: windows of 12 steps, spread over the last day
    // (⌈288 / 8⌉ = 36 steps apart), whatever the season's length; 16 fits in validation and
    // both candidates refitted on the whole history for the weighted mean.
    let amzn = common::load_dataset("Twitter_volume_AMZN.csv").slice(0..288 * 20);
    let auto = over(&["seasonal-naive", "naive"]);
    let text = auto.fit_for(&amzn, &[288], 12).unwrap().describe();
    assert!(
        text.contains("validated on 8 windows of 12 steps, 36 apart (18 fits"),
        "{text}"
    );
    assert!(
        text.contains("calibrated per lead time on 96 window steps"),
        "{text}"
    );
    // ARIMA's later windows update its first fit (the order and coefficients kept, the filter
    // run over the longer history) instead of searching again: 8 + 1 fits and 7 updates in
    // validation, and the final fit of the best one.
    let with_arima = Auto::from_settings(auto::Settings {
        combine: Combine::Best,
        ..over(&["seasonal-naive", "arima"]).settings().clone()
    })
    .unwrap();
    let text = with_arima.fit_for(&amzn, &[288], 12).unwrap().describe();
    assert!(
        text.contains("(10 fits, 7 updates without refitting"),
        "{text}"
    );
    // One step ahead: 8 windows scored on one step each, but forecast 8 steps ahead so that
    // the intervals have 64 scores to calibrate on, not 8.
    let text = auto.fit_for(&amzn, &[288], 1).unwrap().describe();
    assert!(text.contains("on 8 windows of 1 steps, 36 apart"), "{text}");
    assert!(
        text.contains("calibrated per lead time on 64 window steps (8 leads)"),
        "{text}"
    );
    // A day ahead: back to back.
    let text = auto.fit_for(&amzn, &[288], 288).unwrap().describe();
    assert!(
        text.contains("on 8 windows of 288 steps, 288 apart"),
        "{text}"
    );
    // Without a horizon, one hour of steps on sub-hourly data.
    let text = auto.fit(&amzn, &[288]).unwrap().describe();
    assert!(text.contains("windows of 12 steps"), "{text}");
}

#[test]
fn a_short_history_uses_the_candidates_that_can_fit_and_says_so() {
    // A season of 72 steps, 8 steps ahead, windows 9 apart in the second half of the
    // history. Seasonal naive needs 73 points of history: on 100 points it fits the three
    // latest of five windows, and the candidates are compared on those three.
    let auto = over(&["seasonal-naive", "ets"]);
    let text = auto
        .fit_for(&taxi_hourly().slice(0..100), &[72], 8)
        .unwrap()
        .describe();
    assert!(
        text.contains("validated on 3 windows of 8 steps, 9 apart"),
        "{text}"
    );
    assert!(!text.contains("failed validation"), "{text}");
    // On 90 points it fits two of five: too few to compare on, so it is dropped, says why,
    // and ets, which fits them all, is used.
    let fitted = auto.fit_for(&taxi_hourly().slice(0..90), &[72], 8).unwrap();
    let text = fitted.describe();
    assert!(text.starts_with("auto: chose ets;"), "{text}");
    assert!(text.contains("validated on 5 windows"), "{text}");
    assert!(
        text.contains("failed validation: seasonal-naive (fitted 2 of 5 validation windows"),
        "{text}"
    );
    let forecast = fitted.predict(8, &[95.0]).unwrap();
    assert!(forecast.mean.iter().all(|v| v.is_finite()));
}

#[test]
fn a_history_too_short_for_one_window_takes_the_first_candidate_that_fits() {
    // 30 hourly points, a day ahead: no window of 24 steps fits in the second half, so no
    // validation; seasonal naive (period 48) cannot fit at all, theta can.
    let short = taxi_hourly().slice(0..30);
    let fitted = model::fit_floored_for(
        &over(&["seasonal-naive", "theta", "ets"]),
        &short,
        &[48],
        model::Floor::Auto,
        Some(24),
    )
    .unwrap();
    let text = fitted.describe();
    assert!(text.starts_with("auto: theta without validation: the history (30 points) is too short for a validation window of 24 steps"), "{text}");
    assert!(
        text.contains("seasonal-naive (seasonal-naive needs"),
        "{text}"
    );
    let forecast = fitted.predict(24, &[80.0, 95.0]).unwrap();
    // Its own intervals, nested.
    assert!(forecast.intervals[1].upper[0] > forecast.intervals[0].upper[0]);
    // Nothing that fits because every candidate is too short: `auto` is too short, needing
    // what the least demanding candidate needs (the typed error every model gives).
    match over(&["seasonal-naive"]).fit_for(&short, &[48], 24) {
        Err(ModelError::TooShort { model, needed, got }) => {
            assert_eq!(model, "auto");
            assert!(needed > got, "{needed} {got}");
        }
        Err(e) => panic!("expected TooShort, got {e}"),
        Ok(_) => panic!("expected an error, got a fit"),
    }
}

#[test]
fn a_dropped_candidate_keeps_its_reason_and_bad_candidates_are_refused_when_built() {
    // One-minute data: no bundled lstm network for that step, so lstm is dropped, and says
    // why; the saved model keeps the reason.
    let five = crate::common::load_dataset("Twitter_volume_AMZN.csv").slice(0..288 * 6);
    let amzn = prescale::series::Series::new(
        five.labels().clone(),
        five.start(),
        60_000,
        five.values().to_vec(),
    )
    .unwrap();
    let settings = serde_json::json!({
        "candidates": ["seasonal-naive", "lstm"],
        "windows": 2,
        "horizon": 12,
    });
    let auto = model::build("auto", &settings).unwrap();
    let fitted = model::fit(auto.as_ref(), &amzn, &[288]).unwrap();
    let text = fitted.describe();
    assert!(
        text.contains("failed validation: lstm (lstm: no network trained on 1m steps"),
        "{text}"
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("auto.json");
    fitted.save(&path).unwrap();
    assert_eq!(FittedModel::load(&path).unwrap().describe(), text);
    // A candidate with settings it does not have, or auto itself, is refused at once.
    for bad in [
        serde_json::json!({"candidates": [{"name": "ets", "order": [1, 0, 0]}]}),
        serde_json::json!({"candidates": ["auto"]}),
        serde_json::json!({"candidates": []}),
    ] {
        let err = model::build("auto", &bad).unwrap_err();
        assert!(matches!(err, ModelError::Settings { .. }), "{bad}: {err}");
    }
}
