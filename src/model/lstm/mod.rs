//! A global LSTM forecaster on candle: one network, trained once on windows from many series,
//! forecasts any series on the step it was trained for.
//!
//! - **Input.** The last `input_steps` values, scaled by the window's own mean and standard
//!   deviation (so series of any level share one network), cut into patches of `patch` steps
//!   (one season, e.g. a day of hourly data) that are the LSTM's time steps, each optionally
//!   with hour-of-day and day-of-week features.
//! - **Output.** All `horizon` steps at once (no feeding back of its own forecasts), as
//!   quantiles trained with the pinball loss. The median is the point forecast; the other
//!   quantiles are the median plus or minus cumulative positive gaps, so they never cross.
//!   Intervals at levels between the trained quantiles are interpolated in normal score.
//! - **Fit** on a series only reads its last window: the network's weights do not change.
//!   Longer horizons than the network's are forecast block by block, each block conditioned on
//!   the median of the ones before (their intervals are then too narrow; prefer a network
//!   trained for the horizon you need).
//!
//! [`train`] trains a network; [`Network::save`] and [`Network::load`] keep it in a folder
//! (`config.json` + `weights.safetensors`). The registry's `lstm` uses the networks shipped in
//! `models/` (compiled into the binary), choosing the one trained on the series' step.

mod features;
mod network;
mod train;

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use base64::Engine;
use candle_core::Device;
use serde::{Deserialize, Serialize};
use thiserror::Error;

pub use features::{quantile_at, Scaling};
pub use network::{limits, Config, Network, Shape, TrainingRecord, CONFIG_FILE, WEIGHTS_FILE};
pub use train::{train, EpochReport, TrainSettings, DEFAULT_QUANTILES};

use super::{Fitted, Model, ModelError};
use crate::forecast::{Interval, Prediction};
use crate::series::{format_step, Millis, Series};

/// Why an LSTM could not be built, trained, saved or loaded.
#[derive(Debug, Error)]
pub enum LstmError {
    /// A config that does not hold together.
    #[error("invalid LSTM config: {0}")]
    Config(String),
    /// Weights that do not match the config (missing, extra or misshapen tensors, or not a
    /// safetensors file at all).
    #[error("the weights do not match the config: {0}")]
    Mismatch(String),
    /// A network folder that does not load.
    #[error("{}: not a loadable LSTM model folder: {message}", path.display())]
    File {
        /// The folder.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A file could not be read or written.
    #[error("{}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// Nothing to train on.
    #[error("no series to train on")]
    NoSeries,
    /// Training series on different steps.
    #[error("all training series must share one step: the first is on {} steps, {series} on {}", format_step(*first), format_step(*other))]
    MixedSteps {
        /// The first series' step.
        first: Millis,
        /// The other step.
        other: Millis,
        /// The series on the other step.
        series: String,
    },
    /// The series are too short for one training and one validation window.
    #[error("no complete training and validation windows: each needs {needed} consecutive observed points (window + horizon + validation), the longest series has {longest}")]
    NoWindows {
        /// Points needed.
        needed: usize,
        /// Longest series.
        longest: usize,
    },
    /// candle failed.
    #[error("candle failed")]
    Candle(#[from] candle_core::Error),
}

/// The networks shipped in `models/`, compiled in so the `lstm` model works from any
/// directory: `(name, config.json, weights.safetensors)`.
const BUNDLED: &[(&str, &[u8], &[u8])] = &[
    (
        "lstm-m4-hourly",
        include_bytes!("../../../models/lstm-m4-hourly/config.json"),
        include_bytes!("../../../models/lstm-m4-hourly/weights.safetensors"),
    ),
    (
        "lstm-taxi-30m",
        include_bytes!("../../../models/lstm-taxi-30m/config.json"),
        include_bytes!("../../../models/lstm-taxi-30m/weights.safetensors"),
    ),
    (
        "lstm-nab-5m",
        include_bytes!("../../../models/lstm-nab-5m/config.json"),
        include_bytes!("../../../models/lstm-nab-5m/weights.safetensors"),
    ),
];

/// The bundled networks by name, or why one of them did not parse.
type Bundle = Result<Vec<(&'static str, Arc<Network>)>, String>;

/// The bundled networks, parsed once.
fn bundled() -> &'static Bundle {
    static NETWORKS: OnceLock<Bundle> = OnceLock::new();
    NETWORKS.get_or_init(|| {
        BUNDLED
            .iter()
            .map(|(name, config, weights)| {
                Network::from_bytes(config, weights)
                    .map(|n| (*name, Arc::new(n)))
                    .map_err(|e| format!("bundled network {name}: {e}"))
            })
            .collect()
    })
}

/// The LSTM model: a trained network (or the bundled ones) applied to a series.
#[derive(Debug, Clone, Default)]
pub struct Lstm {
    /// A specific network; `None` means the bundled one trained on the series' step.
    pub network: Option<Arc<Network>>,
}

/// `lstm`'s settings: which network forecasts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// A network folder written by `prescale train`; without it, the bundled network trained
    /// on the series' step.
    #[serde(default)]
    pub network: Option<PathBuf>,
}

impl Lstm {
    /// The model around one trained network.
    pub fn with_network(network: Network) -> Lstm {
        Lstm {
            network: Some(Arc::new(network)),
        }
    }

    /// The model its settings describe; a named network folder is loaded (and checked) now.
    pub fn from_settings(settings: Settings) -> Result<Lstm, ModelError> {
        match settings.network {
            None => Ok(Lstm::default()),
            Some(dir) => {
                Network::load(&dir)
                    .map(Lstm::with_network)
                    .map_err(|e| ModelError::Settings {
                        model: "lstm".into(),
                        message: format!("the network folder {} does not load", dir.display()),
                        source: Some(std::sync::Arc::new(e)),
                    })
            }
        }
    }

    fn network_for(&self, series: &Series) -> Result<(String, Arc<Network>), ModelError> {
        self.network_for_step(series.step())
    }

    fn network_for_step(&self, step: Millis) -> Result<(String, Arc<Network>), ModelError> {
        let candidates: Vec<(String, Arc<Network>)> = match &self.network {
            Some(n) => vec![("given network".into(), n.clone())],
            None => bundled()
                .as_ref()
                .map_err(|e| failed(e.clone()))?
                .iter()
                .map(|(name, n)| (format!("bundled network {name}"), n.clone()))
                .collect(),
        };
        if let Some(found) = candidates.iter().find(|(_, n)| n.config().step == step) {
            return Ok(found.clone());
        }
        let steps: Vec<String> = candidates
            .iter()
            .map(|(name, n)| format!("{name} on {}", format_step(n.config().step)))
            .collect();
        Err(ModelError::settings(
            "lstm",
            format!(
                "no network trained on {} steps ({}); train one on series of this step and give its folder as the network",
                format_step(step),
                steps.join(", ")
            ),
        ))
    }
}

fn failed(cause: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> ModelError {
    ModelError::failed("lstm", cause)
}

impl From<LstmError> for ModelError {
    fn from(e: LstmError) -> Self {
        failed(e)
    }
}

impl Model for Lstm {
    fn name(&self) -> &'static str {
        "lstm"
    }

    /// Reads the last window of `series`: gaps are filled from the last observed value, and a
    /// history shorter than the window is padded in front with its first value; at most half
    /// the window may be missing or padding. `seasons` are not used: the network learned its
    /// own.
    fn check_step(&self, step: Millis) -> Result<(), ModelError> {
        self.network_for_step(step).map(|_| ())
    }

    fn fit(&self, series: &Series, _seasons: &[usize]) -> Result<Box<dyn Fitted>, ModelError> {
        let (name, network) = self.network_for(series)?;
        let l = network.config().shape.input_steps;
        let n = series.len();
        let observed = series.values().iter().filter(|v| v.is_finite()).count();
        if 2 * observed.min(l) < l {
            return Err(ModelError::TooShort {
                model: "lstm".into(),
                needed: l.div_ceil(2),
                got: observed,
            });
        }
        // A history shorter than the window is padded in front; `fill_window` carries its
        // first value back over the padding.
        let mut last = vec![f64::NAN; l.saturating_sub(n)];
        last.extend_from_slice(&series.values()[n.saturating_sub(l)..]);
        let window = features::fill_window(&last).ok_or_else(|| {
            ModelError::settings(
                "lstm",
                format!("more than half of the last {l} points are missing"),
            )
        })?;
        Ok(Box::new(FittedLstm {
            name,
            network,
            window,
            start: series.start() + (n as Millis - l as Millis) * series.step(),
            step: series.step(),
            history: series.values().to_vec(),
            fitted: OnceLock::new(),
        }))
    }
}

/// An LSTM conditioned on a series' last window.
#[derive(Debug)]
pub struct FittedLstm {
    name: String,
    network: Arc<Network>,
    window: Vec<f64>,
    /// Timestamp of `window[0]`.
    start: Millis,
    step: Millis,
    /// The whole series, for the in-sample one-step predictions.
    history: Vec<f64>,
    fitted: OnceLock<Vec<f64>>,
}

/// Quantile paths of one forward pass, in the series' units: `[step][quantile]`, calibrated
/// and rearranged.
fn quantile_paths(
    network: &Network,
    windows: &[(Vec<f64>, Millis)],
    step: Millis,
) -> Result<Vec<Vec<Vec<f64>>>, LstmError> {
    let config = network.config();
    let windows: Vec<(&[f64], Millis)> = windows.iter().map(|(w, t)| (w.as_slice(), *t)).collect();
    let encoded = features::encode(config, &windows, step, network.device())?;
    let out = network
        .forward(&encoded.input, &encoded.window)?
        .to_vec3::<f32>()?;
    let scalings = encoded.scalings;
    let m = config.median();
    Ok(out
        .into_iter()
        .zip(&scalings)
        .map(|(steps, scaling)| {
            steps
                .into_iter()
                .map(|qs| {
                    let median = qs[m];
                    let mut values: Vec<f64> = qs
                        .iter()
                        .zip(&config.calibration)
                        .map(|(&v, &c)| scaling.invert(median + (v - median) * c as f32))
                        .collect();
                    features::rearrange(&mut values);
                    values
                })
                .collect()
        })
        .collect())
}

impl FittedLstm {
    /// `horizon` steps of quantile paths, block by block.
    fn paths(&self, horizon: usize) -> Result<Vec<Vec<f64>>, LstmError> {
        let config = self.network.config();
        let m = config.median();
        let mut window = self.window.clone();
        let mut start = self.start;
        let mut out = Vec::with_capacity(horizon);
        while out.len() < horizon {
            let block = quantile_paths(&self.network, &[(window.clone(), start)], self.step)?
                .pop()
                .filter(|b| !b.is_empty())
                .ok_or_else(|| LstmError::Config("the network forecast no steps".into()))?;
            let take = block.len().min(horizon - out.len());
            window.drain(..take);
            window.extend(block[..take].iter().map(|qs| qs[m]));
            start += take as Millis * self.step;
            out.extend(block.into_iter().take(take));
        }
        Ok(out)
    }
}

impl Fitted for FittedLstm {
    fn predict(&self, horizon: usize, levels: &[f64]) -> Result<Prediction, ModelError> {
        let config = self.network.config();
        let paths = self.paths(horizon)?;
        let m = config.median();
        let mean = paths.iter().map(|qs| qs[m]).collect();
        let intervals = levels
            .iter()
            .map(|&level| {
                let tail = (1.0 - level / 100.0) / 2.0;
                let (lower, upper) = paths
                    .iter()
                    .map(|qs| {
                        (
                            quantile_at(tail, &config.shape.quantiles, qs),
                            quantile_at(1.0 - tail, &config.shape.quantiles, qs),
                        )
                    })
                    .unzip();
                Interval {
                    level,
                    lower,
                    upper,
                }
            })
            .collect();
        Ok(Prediction {
            mean,
            intervals,
            components: Vec::new(),
        })
    }

    /// The first step's median from every complete window of the history, computed on first
    /// use (one batched pass).
    fn fitted_values(&self) -> Vec<f64> {
        self.fitted
            .get_or_init(|| {
                let l = self.network.config().shape.input_steps;
                let n = self.history.len();
                let mut out = vec![f64::NAN; n];
                let ends: Vec<usize> = (l..n).collect();
                let first = self.start - (n as Millis - l as Millis) * self.step;
                let m = self.network.config().median();
                for chunk in ends.chunks(512) {
                    let (kept, windows): (Vec<usize>, Vec<(Vec<f64>, Millis)>) = chunk
                        .iter()
                        .filter_map(|&end| {
                            let w = features::fill_window(&self.history[end - l..end])?;
                            Some((end, (w, first + (end - l) as Millis * self.step)))
                        })
                        .unzip();
                    if windows.is_empty() {
                        continue;
                    }
                    if let Ok(paths) = quantile_paths(&self.network, &windows, self.step) {
                        for (end, p) in kept.into_iter().zip(paths) {
                            out[end] = p[0][m];
                        }
                    }
                }
                out
            })
            .clone()
    }

    fn describe(&self) -> String {
        let c = self.network.config();
        let scaling = Scaling::of(&self.window);
        format!(
            "lstm, {} (global, trained on {} series at {} steps; window {} in patches of {}, horizon {}, {}x{} hidden, calendar {}), last window mean {:.4} sd {:.4}",
            self.name,
            c.training.series,
            format_step(c.step),
            c.shape.input_steps,
            c.shape.patch,
            c.shape.horizon,
            c.shape.layers,
            c.shape.hidden,
            if c.shape.calendar { "on" } else { "off" },
            scaling.center,
            scaling.scale
        )
    }

    fn to_state(&self) -> Result<serde_json::Value, serde_json::Error> {
        let weights = self
            .network
            .weights_bytes()
            .map_err(|e| serde::ser::Error::custom(e.to_string()))?;
        serde_json::to_value(State {
            name: self.name.clone(),
            config: self.network.config().clone(),
            weights: base64::engine::general_purpose::STANDARD.encode(weights),
            window: self.window.clone(),
            start: self.start,
            step: self.step,
            history: self.history.clone(),
        })
    }
}

/// What a fitted LSTM saves: the network itself (weights as base64 safetensors) and the
/// series it was applied to.
#[derive(Serialize, Deserialize)]
struct State {
    name: String,
    config: Config,
    weights: String,
    window: Vec<f64>,
    start: Millis,
    step: Millis,
    #[serde(with = "super::file::nan_as_null")]
    history: Vec<f64>,
}

/// Rebuilds a fitted LSTM from its saved state.
pub(crate) fn load(state: serde_json::Value) -> Result<Box<dyn Fitted>, serde_json::Error> {
    use serde::de::Error;
    let state: State = serde_json::from_value(state)?;
    let weights = base64::engine::general_purpose::STANDARD
        .decode(&state.weights)
        .map_err(|e| serde_json::Error::custom(format!("weights: {e}")))?;
    let config = serde_json::to_vec(&state.config)?;
    let network = Network::from_bytes(&config, &weights)
        .map_err(|e| serde_json::Error::custom(e.to_string()))?;
    if state.window.len() != network.config().shape.input_steps
        || state.window.iter().any(|v| !v.is_finite())
    {
        return Err(serde_json::Error::custom(
            "the saved window does not match the network's input",
        ));
    }
    Ok(Box::new(FittedLstm {
        name: state.name,
        network: Arc::new(network),
        window: state.window,
        start: state.start,
        step: state.step,
        history: state.history,
        fitted: OnceLock::new(),
    }))
}

/// The device to train on: the first CUDA GPU when built with `cuda` and one is present,
/// else the CPU.
pub fn best_device() -> Device {
    #[cfg(feature = "cuda")]
    if let Ok(d) = Device::new_cuda(0) {
        return d;
    }
    Device::Cpu
}
