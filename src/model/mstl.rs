//! `mstl`: multiple seasonal-trend decomposition by LOESS with an AutoETS trend, through
//! `augurs-mstl` (Bandara, Hyndman & Bergmeir 2021).
//!
//! The series is decomposed into one seasonal component per period plus trend and remainder;
//! the seasonally adjusted series (trend + remainder) is forecast with non-seasonal AutoETS and
//! each seasonal component repeats its last cycle. Periods the series does not hold twice are
//! dropped (and the description says so); with none left, the model is the ETS trend alone.
//! The forecast's components are the trend and one `season_<m>` per period.
//!
//! Saving works as for `ets`: the periods and prepared values are stored, and loading refits
//! (the decomposition and the ETS search are deterministic).

use augurs::ets::{AutoETS, FittedAutoETS};
use augurs::mstl::{FittedMSTLModel, MSTLModel};
use augurs::Fit;
use serde::{Deserialize, Serialize};

use crate::forecast::{Component, Prediction};
use crate::series::Series;

use super::augurs_glue::{fitted_values, predict_levels};
use super::{Fitted, Model, ModelError, Prepared};

/// MSTL with an AutoETS trend.
#[derive(Debug, Clone, Copy, Default)]
pub struct Mstl;

#[derive(Debug, Clone, Serialize, Deserialize)]
struct MstlState {
    periods: Vec<usize>,
    dropped: Vec<usize>,
    prepared: Prepared,
}

impl Model for Mstl {
    fn name(&self) -> &'static str {
        "mstl"
    }

    fn fit(&self, series: &Series, seasons: &[usize]) -> Result<Box<dyn Fitted>, ModelError> {
        let prepared = Prepared::new(series, self.name(), 8)?;
        let n = prepared.values.len();
        let (periods, dropped): (Vec<usize>, Vec<usize>) =
            seasons.iter().partition(|&&m| m >= 2 && n >= 2 * m);
        let state = MstlState {
            periods,
            dropped,
            prepared,
        };
        let fitted = fit_state(&state).map_err(|message| ModelError::failed("mstl", message))?;
        Ok(Box::new(FittedMstl { fitted, state }))
    }
}

/// The decomposition, or the trend model alone when no period fits.
enum Inner {
    Decomposed(FittedMSTLModel),
    TrendOnly(FittedAutoETS),
}

fn fit_state(state: &MstlState) -> Result<Inner, Box<dyn std::error::Error + Send + Sync>> {
    let values = &state.prepared.values;
    if state.periods.is_empty() {
        return AutoETS::non_seasonal()
            .fit(values)
            .map(Inner::TrendOnly)
            .map_err(Into::into);
    }
    let trend = AutoETS::non_seasonal().into_trend_model();
    MSTLModel::new(state.periods.clone(), trend)
        .fit(values)
        .map(Inner::Decomposed)
        .map_err(Into::into)
}

struct FittedMstl {
    fitted: Inner,
    state: MstlState,
}

impl FittedMstl {
    /// Each seasonal component's contribution over the horizon: its last cycle, repeated.
    fn seasonal_components(&self, horizon: usize) -> Vec<Component> {
        let Inner::Decomposed(fitted) = &self.fitted else {
            return vec![];
        };
        let p = &self.state.prepared;
        let k = p.model_horizon(horizon);
        self.state
            .periods
            .iter()
            .zip(fitted.fit().seasonal())
            .map(|(&m, component)| {
                let cycle = &component[component.len() - m..];
                let path: Vec<f64> = (0..k).map(|i| f64::from(cycle[i % m])).collect();
                Component {
                    name: format!("season_{m}"),
                    values: p.restore(&path),
                }
            })
            .collect()
    }
}

impl Fitted for FittedMstl {
    fn predict(&self, horizon: usize, levels: &[f64]) -> Result<Prediction, ModelError> {
        let p = &self.state.prepared;
        let (mean, intervals) = match &self.fitted {
            Inner::Decomposed(f) => predict_levels(f, p, horizon, levels, "mstl", keep)?,
            Inner::TrendOnly(f) => predict_levels(f, p, horizon, levels, "mstl", keep)?,
        };
        let seasons = self.seasonal_components(horizon);
        let trend: Vec<f64> = (0..horizon)
            .map(|i| mean[i] - seasons.iter().map(|c| c.values[i]).sum::<f64>())
            .collect();
        let mut components = vec![Component {
            name: "trend".into(),
            values: trend,
        }];
        components.extend(seasons);
        Ok(Prediction {
            mean,
            intervals,
            components,
        })
    }

    fn fitted_values(&self) -> Vec<f64> {
        match &self.fitted {
            Inner::Decomposed(f) => fitted_values(f, &self.state.prepared, keep),
            Inner::TrendOnly(f) => fitted_values(f, &self.state.prepared, keep),
        }
    }

    fn describe(&self) -> String {
        let mut text = format!("MSTL, periods {:?}, AutoETS trend", self.state.periods);
        if !self.state.dropped.is_empty() {
            text.push_str(&format!(
                "; periods {:?} dropped (fewer than two cycles of data{})",
                self.state.dropped,
                if self.state.periods.is_empty() {
                    ": trend model only"
                } else {
                    ""
                }
            ));
        }
        text
    }

    fn to_state(&self) -> Result<serde_json::Value, serde_json::Error> {
        serde_json::to_value(&self.state)
    }
}

/// augurs' MSTL puts its seasons back itself.
fn keep(_: usize, v: f64) -> f64 {
    v
}

/// Refits the saved periods on the saved values.
pub(crate) fn load(state: serde_json::Value) -> Result<Box<dyn Fitted>, serde_json::Error> {
    use serde::de::Error;
    let state: MstlState = serde_json::from_value(state)?;
    let fitted = fit_state(&state).map_err(serde_json::Error::custom)?;
    Ok(Box::new(FittedMstl { fitted, state }))
}
