//! `ets`: automatic exponential smoothing (augurs-ets) on the STL-adjusted series.
//!
//! AutoETS (Hyndman, Koehler, Snyder & Grose 2002; Hyndman & Khandakar 2008) fits every
//! admissible error/trend combination (R's restricted set, damped and not) and keeps the one
//! with the lowest AICc. augurs-ets 0.10 implements no seasonal ETS (its seasonal
//! initialisation is `unimplemented!()`, and every seasonal candidate is refused), so the
//! season is handled as R's `forecast::stlf` handles it (see [`SeasonalAdjustment`]): STL
//! removes the seasonal component of the first period, ETS forecasts the adjusted series, and
//! the last seasonal cycle is added back to the forecast and its intervals. Multiplicative
//! error and trend are only tried on strictly positive data (augurs enforces it).
//!
//! Data handling: see [`Prepared`] (missing values, scale).
//!
//! Saving: augurs' fitted ETS types are not serialisable, so a model file stores the chosen
//! specification (e.g. `AAdN`), the seasonal indices and the prepared training values; loading
//! refits exactly that one specification with augurs' `Unfit` (the same call, with the same
//! settings, that the automatic search made), which is deterministic and gives identical
//! forecasts. (Refitting through `AutoETS::new(1, "ANN")` is not possible: augurs 0.10 yields
//! no candidate for a fixed `N` trend.)

use augurs::ets::model::{
    ErrorComponent, Model as EtsModel, ModelType, SeasonalComponent, TrendComponent, Unfit,
};
use augurs::ets::AutoETS;
use augurs::Fit;
use serde::{Deserialize, Serialize};

use crate::forecast::Prediction;
use crate::series::Series;

use super::augurs_glue::{fitted_values, predict_levels};
use super::decompose::SeasonalAdjustment;
use super::{Fitted, Model, ModelError, Prepared};

/// Automatic ETS on the seasonally adjusted series, or, built by [`Ets::nonseasonal`]
/// (`ets-nonseasonal`), on the series as it is.
#[derive(Debug, Clone, Copy)]
pub struct Ets {
    adjust: bool,
}

impl Default for Ets {
    fn default() -> Self {
        Self { adjust: true }
    }
}

impl Ets {
    /// ETS without the seasonal adjustment, whatever the seasons: R's `ets` on a season
    /// longer than 24 steps. Minutes to an hour ahead on bursty five-minute series, the last
    /// STL cycle added back brings more noise than season; see [`SeasonalAdjustment::none`].
    pub fn nonseasonal() -> Self {
        Self { adjust: false }
    }
}

/// What a saved ETS model needs to be refitted exactly.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct EtsState {
    /// Error and trend letters plus `N` for the (absent) ETS season, e.g. `AAN`.
    spec: String,
    damped: bool,
    adjustment: SeasonalAdjustment,
    prepared: Prepared,
}

impl EtsState {
    fn adjusted(&self) -> Vec<f64> {
        let a = &self.adjustment;
        self.prepared
            .values
            .iter()
            .enumerate()
            .map(|(t, &v)| a.adjust(t, v))
            .collect()
    }
}

impl Model for Ets {
    fn name(&self) -> &'static str {
        if self.adjust {
            "ets"
        } else {
            "ets-nonseasonal"
        }
    }

    fn fit(&self, series: &Series, seasons: &[usize]) -> Result<Box<dyn Fitted>, ModelError> {
        let prepared = Prepared::new(series, self.name(), 8)?;
        let adjustment = if self.adjust {
            SeasonalAdjustment::estimate(&prepared.values, seasons.first().copied().unwrap_or(1))
                .map_err(failed)?
        } else {
            SeasonalAdjustment::none()
        };
        let mut state = EtsState {
            spec: String::new(),
            damped: false,
            adjustment,
            prepared,
        };
        let fitted = AutoETS::non_seasonal()
            .fit(&state.adjusted())
            .map_err(failed)?
            .model()
            .clone();
        state.spec = fitted.model_type().to_string();
        state.damped = fitted.damped();
        Ok(Box::new(FittedEts { fitted, state }))
    }
}

fn failed(cause: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> ModelError {
    ModelError::failed("ets", cause)
}

struct FittedEts {
    fitted: EtsModel,
    state: EtsState,
}

impl Fitted for FittedEts {
    fn predict(&self, horizon: usize, levels: &[f64]) -> Result<Prediction, ModelError> {
        let n = self.state.prepared.values.len();
        let a = &self.state.adjustment;
        let (mean, intervals) = predict_levels(
            &self.fitted,
            &self.state.prepared,
            horizon,
            levels,
            "ets",
            |i, v| a.restore(n + i, v),
        )?;
        Ok(Prediction {
            mean,
            intervals,
            components: vec![],
        })
    }

    fn fitted_values(&self) -> Vec<f64> {
        let a = &self.state.adjustment;
        fitted_values(&self.fitted, &self.state.prepared, |t, v| a.restore(t, v))
    }

    fn describe(&self) -> String {
        let s = &self.state;
        let letters = &s.spec[..2];
        let trend = if s.damped {
            format!("{}d", letters)
        } else {
            letters.to_string()
        };
        format!(
            "ETS({trend}N) chosen by AICc ({:.1}), {}",
            self.fitted.aicc(),
            s.adjustment.describe()
        )
    }

    fn to_state(&self) -> Result<serde_json::Value, serde_json::Error> {
        serde_json::to_value(&self.state)
    }
}

/// Refits the saved specification on the saved values.
pub(crate) fn load(state: serde_json::Value) -> Result<Box<dyn Fitted>, serde_json::Error> {
    use serde::de::Error;
    let state: EtsState = serde_json::from_value(state)?;
    if !state.adjustment.is_valid(state.prepared.values.len()) {
        return Err(serde_json::Error::custom(
            "the seasonal component does not match the data",
        ));
    }
    let model_type = parse_spec(&state.spec)
        .ok_or_else(|| serde_json::Error::custom(format!("unknown ETS spec {:?}", state.spec)))?;
    let fitted = Unfit::new(model_type)
        .damped(state.damped)
        .fit(&state.adjusted())
        .map_err(|e| serde_json::Error::custom(format!("refitting ETS({}): {e}", state.spec)))?;
    Ok(Box::new(FittedEts { fitted, state }))
}

/// A non-seasonal `ModelType` from its letters (error, trend, `N`), as `ModelType`'s
/// `Display` writes them.
fn parse_spec(spec: &str) -> Option<ModelType> {
    let mut letters = spec.chars();
    let error = match letters.next()? {
        'A' => ErrorComponent::Additive,
        'M' => ErrorComponent::Multiplicative,
        _ => return None,
    };
    let trend = match letters.next()? {
        'N' => TrendComponent::None,
        'A' => TrendComponent::Additive,
        'M' => TrendComponent::Multiplicative,
        _ => return None,
    };
    (letters.next()? == 'N' && letters.next().is_none()).then_some(ModelType {
        error,
        trend,
        season: SeasonalComponent::None,
    })
}
