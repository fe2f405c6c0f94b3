//! Criterion benchmarks of the hot paths: loading, series preparation, and fit / predict of
//! every model (the LSTM's inference: `lstm fit` reads the last window, `lstm predict` runs
//! the network).
//!
//! Run with `cargo bench --bench core`. Numbers are machine-dependent: compare runs on one
//! machine, never against figures in prose.

use std::hint::black_box;
use std::path::Path;

use criterion::{criterion_group, criterion_main, Criterion};
use prescale::model;
use prescale::model::arima::{Arima, Spec};
use prescale::series::{Aggregation, Labels, Samples, Series};
use prescale::source::{self, LoadOptions};

fn dataset(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("datasets")
        .join(name)
}

fn taxi() -> Series {
    source::load(&dataset("nyc_taxi.csv"), &LoadOptions::default())
        .expect("bundled data")
        .remove(0)
}

fn loading(c: &mut Criterion) {
    c.bench_function("load nyc_taxi.csv (10,320 rows)", |b| {
        b.iter(|| source::load(black_box(&dataset("nyc_taxi.csv")), &LoadOptions::default()))
    });
    c.bench_function("load M4 hourly train (414 series)", |b| {
        b.iter(|| {
            source::load(
                black_box(&dataset("m4-hourly/Hourly-train.csv")),
                &LoadOptions::default(),
            )
        })
    });
}

fn preparation(c: &mut Criterion) {
    let s = taxi();
    // Irregular samples: the taxi series with every timestamp jittered by up to ±7 minutes.
    let ts: Vec<i64> = s
        .timestamps()
        .enumerate()
        .map(|(i, t)| t + ((i as i64 * 7919) % 840 - 420) * 1000)
        .collect();
    let samples =
        Samples::new(Labels::named("jittered"), ts, s.values().to_vec()).expect("increasing");
    c.bench_function("regularize 10,320 irregular samples (mean)", |b| {
        b.iter(|| samples.regularize(black_box(1_800_000), Aggregation::Mean))
    });
    let holes: Vec<f64> = s
        .values()
        .iter()
        .enumerate()
        .map(|(i, &v)| if i % 17 < 3 { f64::NAN } else { v })
        .collect();
    let gappy = Series::new(Labels::default(), 0, 1_800_000, holes).expect("valid");
    c.bench_function("fill_gaps on 10,320 points, 18% missing", |b| {
        b.iter(|| black_box(&gappy).fill_gaps(3))
    });
    let mut total = 0.0;
    let counter: Vec<f64> = s
        .values()
        .iter()
        .map(|v| {
            total += v;
            total
        })
        .collect();
    let counter = Series::new(Labels::default(), 0, 1_800_000, counter).expect("valid");
    c.bench_function("counter_to_rate on 10,320 points", |b| {
        b.iter(|| black_box(&counter).counter_to_rate())
    });
}

/// The last `n` hourly means of the taxi data.
fn taxi_hourly(n: usize) -> Series {
    let s = taxi();
    let samples = Samples::new(
        Labels::named("taxi_hourly"),
        s.timestamps().collect(),
        s.values().to_vec(),
    )
    .expect("valid");
    let hourly = samples
        .regularize(3_600_000, Aggregation::Mean)
        .expect("regularizes");
    hourly.slice(hourly.len() - n..hourly.len())
}

/// Fit and predict of every registered model on a 1,000-point hourly series (the taxi data
/// averaged to hours), with daily and weekly seasons.
fn models(c: &mut Criterion) {
    let hourly = taxi_hourly(1000);
    let mut group = c.benchmark_group("models, 1,000 hourly points");
    group.sample_size(10);
    for name in model::names() {
        let m = model::by_name(name).expect("registered");
        group.bench_function(format!("{name} fit"), |b| {
            b.iter(|| model::fit(m.as_ref(), black_box(&hourly), &[24, 168]))
        });
        let fitted = model::fit(m.as_ref(), &hourly, &[24, 168]).expect("fits");
        group.bench_function(format!("{name} predict 48 + 80/95%"), |b| {
            b.iter(|| fitted.predict(black_box(48), &[80.0, 95.0]))
        });
    }
    // `arima` above is the automatic search; this is one fixed seasonal order (CSS + ML).
    let fixed = Arima::new(Spec {
        p: 2,
        d: 0,
        q: 1,
        sp: 1,
        sd: 1,
        sq: 1,
        m: 24,
        mean: false,
    });
    group.bench_function("arima (2,0,1)(1,1,1)[24] fit, fixed order", |b| {
        b.iter(|| model::fit(&fixed, black_box(&hourly), &[24]))
    });
    group.finish();
}

/// `prophet` on 2,000 hourly points (the taxi data averaged to hours): fit (augurs'
/// preparation, the MAP fit, the in-sample fit) and a 48-step forecast with 80/95% intervals
/// from 1,000 simulated paths. PyPI Prophet's times on the same kind of series are measured by
/// `benches/peers/run_prophet.sh`.
fn prophet(c: &mut Criterion) {
    let s = taxi();
    let hourly = taxi_hourly(2000);
    let m = model::by_name("prophet").expect("registered");
    let mut group = c.benchmark_group("prophet, 2,000 hourly points");
    group.sample_size(20);
    group.bench_function("fit", |b| {
        b.iter(|| model::fit(m.as_ref(), black_box(&hourly), &[]))
    });
    let fitted = model::fit(m.as_ref(), &hourly, &[]).expect("fits");
    group.bench_function("predict 48 + 80/95% (1,000 paths)", |b| {
        b.iter(|| fitted.predict(black_box(48), &[80.0, 95.0]))
    });
    group.finish();
    let mut group = c.benchmark_group("prophet, whole series");
    group.sample_size(10);
    group.bench_function("fit nyc_taxi (10,320 points)", |b| {
        b.iter(|| model::fit(m.as_ref(), black_box(&s), &[]))
    });
    let amzn = source::load(&dataset("Twitter_volume_AMZN.csv"), &LoadOptions::default())
        .expect("bundled data loads")
        .remove(0);
    group.bench_function("fit Twitter_volume_AMZN (15,831 points)", |b| {
        b.iter(|| model::fit(m.as_ref(), black_box(&amzn), &[]))
    });
    group.finish();
}

/// The replay of `prescale simulate` on the 55-day, 5-minute AMZN trace with its defaults
/// (`--capacity auto --startup 2m --max-replicas 100`): `ets` refitted every hour on 14 days,
/// all three policies. The whole run is the model's refits plus the replay; the second
/// benchmark is the replay alone (15 s HPA syncs, 3 × 11,799 scored steps) on forecasts made
/// once.
fn replay(c: &mut Criterion) {
    use prescale::scale::policy::PolicySettings;
    use prescale::scale::replay::{self, Forecasts, Strategy};
    use prescale::scale::replay_config::{Capacity, ReplayConfig};

    let amzn = source::load(&dataset("Twitter_volume_AMZN.csv"), &LoadOptions::default())
        .expect("bundled data loads")
        .remove(0);
    let settings = ReplayConfig {
        capacity: Capacity::Auto,
        policy: PolicySettings {
            quantile: 0.9,
            startup: 120,
            min_replicas: 1,
            max_replicas: 100,
        },
        ..ReplayConfig::default()
    }
    .for_trace(&amzn);
    let ets = model::by_name("ets").expect("registered");
    let policies = Strategy::ALL;
    let mut group = c.benchmark_group("replay Twitter_volume_AMZN (55 days at 5 min)");
    group.sample_size(10);
    group.bench_function("ets refitted hourly, 3 policies", |b| {
        b.iter(|| replay::replay(black_box(&amzn), ets.as_ref(), &settings, &policies))
    });
    let forecasts = Forecasts::make(&amzn, ets.as_ref(), &settings, &[0.9]);
    group.bench_function("3 policies on forecasts made once", |b| {
        b.iter(|| replay::replay_with(black_box(&amzn), &forecasts, &settings, &policies))
    });
    group.finish();
}

criterion_group!(benches, loading, preparation, models, prophet, replay);
criterion_main!(benches);
