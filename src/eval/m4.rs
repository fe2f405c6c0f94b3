//! The M4 competition's hourly protocol (Makridakis, Spiliotis & Assimakopoulos, 2018).
//!
//! Each of the 414 hourly series is forecast 48 steps from its training part and scored
//! against the 48 values that followed: sMAPE and MASE (scaled by the in-sample seasonal naive
//! error with period 24) per series, averaged over series, and the overall weighted average
//! (OWA) relative to the Naive2 benchmark's published hourly figures.

use std::path::Path;
use std::time::Instant;

use rayon::prelude::*;
use serde::Serialize;

use crate::human::chain;
use crate::model::naive::SeasonalNaive;
use crate::model::{self, Floor, Model, ModelError};
use crate::series::Series;
use crate::source::{self, LoadOptions, SourceError};

use super::{score, Scores};

/// Forecast horizon of the hourly set.
pub const HORIZON: usize = 48;
/// Seasonal period M4 uses for hourly MASE.
pub const PERIOD: usize = 24;
/// Seasonal periods given to the models: one day and one week.
pub const SEASONS: [usize; 2] = [24, 168];
/// Naive2's published hourly sMAPE, the OWA reference.
pub const NAIVE2_SMAPE: f64 = 18.383;
/// Naive2's published hourly MASE, the OWA reference.
pub const NAIVE2_MASE: f64 = 2.395;
/// Interval level M4 scored (MSIS and coverage).
pub const LEVEL: f64 = 95.0;

/// Training and test parts, paired by position (and checked by id).
#[derive(Debug, Clone)]
pub struct Dataset {
    /// Training series.
    pub train: Vec<Series>,
    /// The values that followed each training series.
    pub test: Vec<Series>,
}

/// Loads `Hourly-train.csv` and `Hourly-test.csv` from `dir`.
pub fn load(dir: &Path) -> Result<Dataset, SourceError> {
    let options = LoadOptions::default();
    let train = source::load(&dir.join("Hourly-train.csv"), &options)?;
    let test = source::load(&dir.join("Hourly-test.csv"), &options)?;
    let mismatch = train.len() != test.len()
        || train
            .iter()
            .zip(&test)
            .any(|(a, b)| a.labels().name != b.labels().name);
    if mismatch {
        return Err(SourceError::Csv {
            path: dir.join("Hourly-test.csv"),
            line: None,
            message: "test series do not pair with the training series by id".into(),
        });
    }
    Ok(Dataset { train, test })
}

/// One model's result on the set: the CSV row of `prescale bench m4`.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    /// Model name.
    pub model: String,
    /// Mean sMAPE over series, percent.
    pub smape: f64,
    /// Mean MASE over series.
    pub mase: f64,
    /// Overall weighted average against Naive2.
    pub owa: f64,
    /// Wall-clock seconds for fitting and forecasting every series.
    pub seconds: f64,
    /// Series scored.
    pub n_series: usize,
    /// Mean coverage of the 95% interval, percent.
    pub coverage_95: f64,
    /// Mean MSIS of the 95% interval.
    pub msis_95: f64,
    /// Series where the model failed and seasonal naive stood in (M4 needs every forecast).
    pub fallbacks: usize,
}

/// Fits `model` on each training series (in parallel), forecasts 48 steps, and scores them,
/// with forecasts floored at zero for non-negative histories ([`Floor::Auto`]).
///
/// A series on which the model fails is forecast by seasonal naive instead and counted in
/// [`Summary::fallbacks`], so the averages always cover the same series; only when seasonal
/// naive fails too (a series shorter than a day) is it an error.
pub fn evaluate(
    model: &dyn Model,
    data: &Dataset,
    limit: Option<usize>,
) -> Result<Summary, ModelError> {
    evaluate_floored(model, data, limit, Floor::Auto)
}

/// [`evaluate`] with forecasts floored as `floor` says.
pub fn evaluate_floored(
    model: &dyn Model,
    data: &Dataset,
    limit: Option<usize>,
    floor: Floor,
) -> Result<Summary, ModelError> {
    let n = limit.map_or(data.train.len(), |l| l.min(data.train.len()));
    let started = Instant::now();
    let baseline = SeasonalNaive::seasonal();
    let results: Vec<(Scores, bool)> = data.train[..n]
        .par_iter()
        .zip(&data.test[..n])
        .map(|(train, test)| {
            let forecast = |m: &dyn Model| {
                model::fit_floored_for(m, train, &SEASONS, floor, Some(HORIZON))
                    .and_then(|f| f.predict(HORIZON, &[LEVEL]))
            };
            let (forecast, fell_back) = match forecast(model) {
                Ok(f) => (f, false),
                Err(e) => {
                    tracing::debug!(series = %train.labels(), model = model.name(), reason = %chain(&e), "seasonal naive stands in");
                    (forecast(&baseline)?, true)
                }
            };
            Ok((
                score(test.values(), &forecast, train.values(), PERIOD),
                fell_back,
            ))
        })
        .collect::<Result<_, ModelError>>()?;
    let seconds = started.elapsed().as_secs_f64();
    let mean =
        |f: &dyn Fn(&Scores) -> f64| results.iter().map(|(s, _)| f(s)).sum::<f64>() / n as f64;
    let interval = |s: &Scores, pick: fn(&super::IntervalScore) -> f64| {
        s.intervals.first().map_or(f64::NAN, pick)
    };
    let smape = mean(&|s| s.smape);
    let mase = mean(&|s| s.mase);
    Ok(Summary {
        model: model.name().to_string(),
        smape,
        mase,
        owa: owa(smape, mase),
        seconds,
        n_series: n,
        coverage_95: mean(&|s| interval(s, |i| i.coverage)),
        msis_95: mean(&|s| interval(s, |i| i.msis)),
        fallbacks: results.iter().filter(|(_, f)| *f).count(),
    })
}

/// M4's overall weighted average: the mean of sMAPE and MASE relative to Naive2's.
pub fn owa(smape: f64, mase: f64) -> f64 {
    0.5 * (smape / NAIVE2_SMAPE + mase / NAIVE2_MASE)
}
