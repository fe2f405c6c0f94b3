//! The LSTM: training that learns and is reproducible, non-crossing quantiles, network
//! folders and model files that round-trip and fail loudly when damaged, and the bundled
//! networks on real data.

use crate::common;

use candle_core::Device;
use prescale::eval::m4;
use prescale::forecast::metrics;
use prescale::model::lstm::{self, Lstm, LstmError, Network, Shape, TrainSettings};
use prescale::model::{self, FittedModel, Model, ModelError};
use prescale::series::{Labels, Series};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const HOUR: i64 = 3_600_000;

/// Hourly series with a daily shape (a morning and an evening peak), each with its own level,
/// amplitude and noise: something an LSTM can learn and seasonal naive copies noise from.
fn synthetic(count: usize, len: usize, seed: u64) -> Vec<Series> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..count)
        .map(|i| {
            let level = rng.gen_range(10.0..1000.0);
            let amplitude = level * rng.gen_range(0.2..0.6);
            let values = (0..len)
                .map(|t| {
                    let day = std::f64::consts::TAU * (t % 24) as f64 / 24.0;
                    let shape = day.sin() + 0.5 * (2.0 * day).cos();
                    level + amplitude * shape + 0.08 * amplitude * rng.gen_range(-1.0..1.0)
                })
                .collect();
            Series::new(Labels::named(format!("s{i}")), 0, HOUR, values).unwrap()
        })
        .collect()
}

fn small() -> TrainSettings {
    TrainSettings {
        shape: Shape {
            input_steps: 96,
            patch: 24,
            horizon: 24,
            hidden: 16,
            ..TrainSettings::default().shape
        },
        validation_steps: 24,
        max_epochs: 40,
        patience: 40,
        batch: 64,
        windows_per_epoch: 1024,
        learning_rate: 1e-2,
        ..TrainSettings::default()
    }
}

fn trained(series: &[Series]) -> (Network, Vec<lstm::EpochReport>) {
    let mut epochs = Vec::new();
    let network = lstm::train(series, &small(), &Device::Cpu, &mut |e| {
        epochs.push(e.clone())
    })
    .expect("training runs");
    (network, epochs)
}

#[test]
fn training_learns_the_shape_and_is_reproducible() {
    let all = synthetic(12, 24 * 24, 1);
    // Train on all but the last day of each series; score on that day.
    let (train, test): (Vec<Series>, Vec<Series>) =
        all.iter().map(|s| s.split_at(s.len() - 24)).unzip();
    let (network, epochs) = trained(&train);
    assert_eq!(epochs.len(), 40);
    let first = epochs[0].validation_loss;
    let best = epochs
        .iter()
        .map(|e| e.validation_loss)
        .fold(f64::INFINITY, f64::min);
    assert!(best < 0.5 * first, "validation loss {first} -> best {best}");
    assert_eq!(network.config().training.validation_loss, best);

    let (again, _) = trained(&train);
    assert_eq!(
        network.weights_bytes().unwrap(),
        again.weights_bytes().unwrap(),
        "the same seed must give the same weights"
    );

    let lstm = Lstm::with_network(network);
    let naive = model::by_name("seasonal-naive").unwrap();
    let (mut ours, mut theirs) = (0.0, 0.0);
    for (history, future) in train.iter().zip(&test) {
        let f = model::fit(&lstm, history, &[24])
            .unwrap()
            .predict(24, &[80.0])
            .unwrap();
        let g = model::fit(naive.as_ref(), history, &[24])
            .unwrap()
            .predict(24, &[80.0])
            .unwrap();
        ours += metrics::mase(future.values(), &f.mean, history.values(), 24);
        theirs += metrics::mase(future.values(), &g.mean, history.values(), 24);
    }
    assert!(
        ours < 0.9 * theirs,
        "mean MASE: lstm {} vs seasonal naive {}",
        ours / 12.0,
        theirs / 12.0
    );
}

#[test]
fn intervals_nest_around_the_median_at_any_level_and_horizon() {
    let series = synthetic(6, 24 * 16, 2);
    let (network, _) = trained(&series);
    let lstm = Lstm::with_network(network);
    let fitted = model::fit(&lstm, &series[0], &[24]).unwrap();
    // Beyond the network's own horizon (24): block by block.
    let f = fitted.predict(60, &[50.0, 80.0, 95.0, 99.0]).unwrap();
    assert_eq!(f.mean.len(), 60);
    for t in 0..60 {
        assert!(f.mean[t].is_finite());
        let mut previous = (f.mean[t], f.mean[t]);
        for interval in &f.intervals {
            let (lo, hi) = (interval.lower[t], interval.upper[t]);
            assert!(
                lo <= previous.0 + 1e-9 && hi >= previous.1 - 1e-9,
                "step {t}: the {}% interval [{lo}, {hi}] does not contain the narrower one {previous:?}",
                interval.level
            );
            previous = (lo, hi);
        }
    }
}

#[test]
fn network_folders_round_trip_and_damage_is_reported() {
    let series = synthetic(4, 24 * 12, 3);
    let (network, _) = trained(&series);
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("models/tiny");
    network.save(&folder).unwrap();
    let loaded = Network::load(&folder).unwrap();
    assert_eq!(loaded.config(), network.config());
    let predict = |n: Network| {
        model::fit(&Lstm::with_network(n), &series[1], &[24])
            .unwrap()
            .predict(24, &[80.0])
            .unwrap()
    };
    let original = predict(network);
    assert_eq!(predict(loaded), original);

    let weights = folder.join(lstm::WEIGHTS_FILE);
    let config = folder.join(lstm::CONFIG_FILE);
    let good_weights = std::fs::read(&weights).unwrap();
    let good_config = std::fs::read_to_string(&config).unwrap();
    let error = || Network::load(&folder).unwrap_err().to_string();

    std::fs::write(&weights, &good_weights[..good_weights.len() / 2]).unwrap();
    let e = error();
    assert!(
        e.contains("not a loadable LSTM model folder") && e.contains("safetensors"),
        "{e}"
    );
    std::fs::write(&weights, &good_weights).unwrap();

    std::fs::write(
        &config,
        good_config.replace("\"hidden\": 16", "\"hidden\": 32"),
    )
    .unwrap();
    let e = error();
    assert!(e.contains("shape") && e.contains("config implies"), "{e}");

    std::fs::write(
        &config,
        good_config.replace("\"version\": 1", "\"version\": 7"),
    )
    .unwrap();
    assert!(error().contains("config version 7"), "{}", error());

    std::fs::write(&config, &good_config[..good_config.len() / 3]).unwrap();
    assert!(error().contains("does not parse"), "{}", error());

    std::fs::remove_file(&config).unwrap();
    assert!(matches!(Network::load(&folder), Err(LstmError::Io { .. })));
}

#[test]
fn a_fitted_lstm_saves_its_network_in_the_model_file() {
    let series = synthetic(4, 24 * 12, 4);
    let (network, _) = trained(&series);
    let fitted = model::fit(&Lstm::with_network(network), &series[2], &[24]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("lstm.json");
    fitted.save(&path).unwrap();
    let loaded = FittedModel::load(&path).unwrap();
    assert_eq!(loaded.model(), "lstm");
    assert_eq!(
        loaded.predict(30, &[95.0]).unwrap(),
        fitted.predict(30, &[95.0]).unwrap()
    );
    let (a, b) = (loaded.fitted_values(), fitted.fitted_values());
    assert_eq!(a.len(), series[2].len());
    assert!(a[..96].iter().all(|v| v.is_nan()) && a[96..].iter().all(|v| v.is_finite()));
    assert!(a
        .iter()
        .zip(&b)
        .all(|(x, y)| x == y || (x.is_nan() && y.is_nan())));
}

#[test]
fn bad_training_input_is_refused_clearly() {
    let device = Device::Cpu;
    let mut none = |_: &lstm::EpochReport| {};
    assert!(matches!(
        lstm::train(&[], &small(), &device, &mut none),
        Err(LstmError::NoSeries)
    ));
    let short = synthetic(2, 100, 5);
    let e = lstm::train(&short, &small(), &device, &mut none).unwrap_err();
    assert!(
        matches!(
            e,
            LstmError::NoWindows {
                needed: 144,
                longest: 100
            }
        ),
        "{e}"
    );
    let narrow = TrainSettings {
        validation_steps: 10,
        ..small()
    };
    let e = lstm::train(&synthetic(2, 400, 6), &narrow, &device, &mut none).unwrap_err();
    assert!(e.to_string().contains("at least the horizon"), "{e}");
    let odd = TrainSettings {
        shape: Shape {
            input_steps: 50,
            ..small().shape
        },
        ..small()
    };
    let e = lstm::train(&synthetic(2, 400, 6), &odd, &device, &mut none).unwrap_err();
    assert!(e.to_string().contains("multiple of patch"), "{e}");
    let mut mixed = synthetic(2, 400, 6);
    mixed.push(Series::new(Labels::named("fast"), 0, HOUR / 2, vec![1.0; 400]).unwrap());
    let e = lstm::train(&mixed, &small(), &device, &mut none).unwrap_err();
    assert!(
        e.to_string().contains("share one step") && e.to_string().contains("30m"),
        "{e}"
    );
}

#[test]
fn the_bundled_hourly_network_beats_seasonal_naive_on_m4() {
    let data = m4::load(&common::dataset("m4-hourly")).unwrap();
    let lstm = m4::evaluate(&Lstm::default(), &data, Some(100)).unwrap();
    let naive = m4::evaluate(
        model::by_name("seasonal-naive").unwrap().as_ref(),
        &data,
        Some(100),
    )
    .unwrap();
    assert_eq!(lstm.fallbacks, 0);
    assert!(
        lstm.owa < naive.owa,
        "OWA lstm {} vs seasonal naive {}",
        lstm.owa,
        naive.owa
    );
    assert!(
        (lstm.coverage_95 - 95.0).abs() < 5.0,
        "95% coverage {}",
        lstm.coverage_95
    );
}

#[test]
fn the_bundled_networks_pick_by_step_and_refuse_other_steps() {
    let taxi = common::load_dataset("nyc_taxi.csv");
    let fitted = model::fit(&Lstm::default(), &taxi, &[48]).unwrap();
    assert!(
        fitted.describe().contains("lstm-taxi-30m"),
        "{}",
        fitted.describe()
    );
    let f = fitted.predict(48, &[95.0]).unwrap();
    assert!(f.mean.iter().all(|v| v.is_finite() && *v >= 0.0));

    // Five-minute data takes the network trained on the NAB series; the last 3,456 steps
    // of each were held out of its training, so forecast from before them.
    let amzn = common::load_dataset("Twitter_volume_AMZN.csv");
    let seen = amzn.slice(0..amzn.len() - 3456);
    let fitted = model::fit(&Lstm::default(), &seen, &[288]).unwrap();
    assert!(
        fitted.describe().contains("lstm-nab-5m"),
        "{}",
        fitted.describe()
    );
    let f = fitted.predict(12, &[95.0]).unwrap();
    assert!(f.mean.iter().all(|v| v.is_finite() && *v >= 0.0));

    // The same values every minute: no network was trained on 1-minute steps.
    let per_minute = Series::new(
        Labels::named("per-minute"),
        amzn.start(),
        60_000,
        amzn.values().to_vec(),
    )
    .unwrap();
    let err = Lstm::default()
        .fit(&per_minute, &[1440])
        .err()
        .expect("no 1-minute network");
    match err {
        ModelError::Settings { message, .. } => {
            assert!(
                message.contains("1m") && message.contains("train one"),
                "{message}"
            )
        }
        other => panic!("expected a settings error, got {other}"),
    }

    let mut gappy = taxi.values().to_vec();
    let n = gappy.len();
    gappy[n - 300..].iter_mut().for_each(|v| *v = f64::NAN);
    let gappy = Series::new(Labels::named("gappy"), taxi.start(), taxi.step(), gappy).unwrap();
    assert!(matches!(
        Lstm::default().fit(&gappy, &[48]),
        Err(ModelError::Settings { .. })
    ));
}

#[test]
fn short_histories_are_padded_up_to_half_a_window() {
    let data = m4::load(&common::dataset("m4-hourly")).unwrap();
    let full = &data.train[0];
    let n = full.len();
    // The bundled hourly network reads 336 steps: 200 are enough, 100 are not.
    let short = full.slice(n - 200..n);
    let fitted = model::fit(&Lstm::default(), &short, &[24]).unwrap();
    let f = fitted.predict(48, &[95.0]).unwrap();
    assert!(f.mean.iter().all(|v| v.is_finite()));
    assert!(fitted.fitted_values().iter().all(|v| v.is_nan()));
    let too_short = full.slice(n - 100..n);
    assert!(matches!(
        Lstm::default().fit(&too_short, &[24]),
        Err(ModelError::TooShort {
            needed: 168,
            got: 100,
            ..
        })
    ));
}
