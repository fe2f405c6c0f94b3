//! The network: stacked LSTM layers over patches of the scaled window, a linear head that
//! emits every horizon step's quantiles at once, and a linear skip from the window to the
//! median. Saved as `config.json` plus `weights.safetensors` in one folder.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor, Var, D};
use candle_nn::{Linear, Module, VarBuilder, VarMap, LSTM, RNN};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

use super::features::CALENDAR_FEATURES;
use super::LstmError;
use crate::series::Millis;

/// The format tag of a network's `config.json`.
pub(super) const FORMAT: &str = "prescale-lstm";
/// The config version this build writes and reads.
pub(super) const VERSION: u32 = 1;
/// The config file inside a network folder.
pub const CONFIG_FILE: &str = "config.json";
/// The weights file inside a network folder.
pub const WEIGHTS_FILE: &str = "weights.safetensors";

/// What a network looks like and what it predicts: the part of its config that training
/// settings choose.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Shape {
    /// Steps of history the network reads.
    pub input_steps: usize,
    /// Steps per LSTM time step; `input_steps` is a whole number of patches (one season is a
    /// good choice: 24 for hourly data).
    pub patch: usize,
    /// Steps predicted at once.
    pub horizon: usize,
    /// LSTM hidden units per layer.
    pub hidden: usize,
    /// Stacked LSTM layers.
    pub layers: usize,
    /// Quantile levels of the outputs, ascending, with 0.5 among them.
    pub quantiles: Vec<f64>,
    /// Whether each patch carries hour-of-day and day-of-week features (only meaningful when
    /// the timestamps are real).
    pub calendar: bool,
}

/// The largest network built or read: bounds on each dimension and on the weights in all.
/// The bundled networks are far below them; a typo (`--hidden 100000000`) or a hostile model
/// file is refused before any weight is allocated.
pub mod limits {
    /// Hidden units per layer.
    pub const HIDDEN: usize = 4096;
    /// Stacked layers.
    pub const LAYERS: usize = 8;
    /// Steps read or predicted.
    pub const STEPS: usize = 100_000;
    /// Quantile outputs.
    pub const QUANTILES: usize = 99;
    /// Weights in all (200 MB of f32).
    pub const PARAMETERS: usize = 50_000_000;
}

impl Shape {
    /// Checks that the numbers fit together and stay within [`limits`]; the quantiles must
    /// ascend inside (0, 1) (a network's config also needs 0.5 among them).
    pub fn check(&self) -> Result<(), String> {
        if self.patch == 0 || self.input_steps == 0 || !self.input_steps.is_multiple_of(self.patch)
        {
            return Err(format!(
                "input_steps {} is not a positive multiple of patch {}",
                self.input_steps, self.patch
            ));
        }
        if self.horizon == 0 || self.hidden == 0 || self.layers == 0 {
            return Err("horizon, hidden and layers must be positive".into());
        }
        for (what, value, most) in [
            ("hidden units", self.hidden, limits::HIDDEN),
            ("layers", self.layers, limits::LAYERS),
            ("input steps", self.input_steps, limits::STEPS),
            ("horizon", self.horizon, limits::STEPS),
            ("quantiles", self.quantiles.len(), limits::QUANTILES),
        ] {
            if value > most {
                return Err(format!("{what} {value} is over the limit of {most}"));
            }
        }
        let ascending = self.quantiles.windows(2).all(|w| w[0] < w[1]);
        let inside = self.quantiles.iter().all(|q| *q > 0.0 && *q < 1.0);
        if !ascending || !inside {
            return Err(format!(
                "quantiles {:?} must ascend strictly inside (0, 1)",
                self.quantiles
            ));
        }
        // Within the bounds above the count fits in a usize; the total is what is allocated.
        let (h, q, features) = (
            self.hidden,
            self.quantiles.len() + 1,
            self.patch + CALENDAR_FEATURES,
        );
        let parameters = self.layers * (4 * h * (features.max(h) + h + 2))
            + (self.horizon * q) * (h + 1)
            + self.horizon * (self.input_steps + 1);
        if parameters > limits::PARAMETERS {
            return Err(format!(
                "about {parameters} weights, over the limit of {}: make the network smaller",
                limits::PARAMETERS
            ));
        }
        Ok(())
    }
}

/// The shape of a network and what it was trained on: everything needed to rebuild it
/// around its weights.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Config {
    /// Always `prescale-lstm`, the folder format tag.
    pub format: String,
    /// The folder format version this build writes.
    pub version: u32,
    /// Window, patch, horizon, layers, quantiles, calendar features.
    #[serde(flatten)]
    pub shape: Shape,
    /// The step of the training series, ms: the network only forecasts series on this step.
    pub step: Millis,
    /// Per-quantile factors on the distance from the median, fitted on the validation
    /// windows so the intervals cover what they claim (1 for the median).
    pub calibration: Vec<f64>,
    /// How it was trained.
    pub training: TrainingRecord,
}

/// What a training run did, kept in the config for the record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct TrainingRecord {
    /// Series trained on.
    pub series: usize,
    /// Epochs run (including the ones after the best, before early stopping).
    pub epochs: usize,
    /// The epoch whose weights were kept (1-based).
    pub best_epoch: usize,
    /// Mean pinball loss on the validation windows at the best epoch (scaled units).
    pub validation_loss: f64,
    /// Validation windows.
    pub validation_windows: usize,
    /// Seed of the initial weights and of the window sampling.
    pub seed: u64,
    /// Wall-clock seconds of training.
    pub seconds: f64,
    /// The command line that produced it, when known.
    #[serde(default)]
    pub command: String,
}

impl Config {
    /// Features per LSTM time step.
    pub fn features(&self) -> usize {
        self.shape.patch
            + if self.shape.calendar {
                CALENDAR_FEATURES
            } else {
                0
            }
    }

    /// Index of the median among the quantiles.
    pub fn median(&self) -> usize {
        self.shape
            .quantiles
            .iter()
            .position(|&q| q == 0.5)
            .unwrap_or(self.shape.quantiles.len() / 2)
    }

    /// Checks that the numbers fit together.
    pub fn check(&self) -> Result<(), String> {
        if self.format != FORMAT {
            return Err(format!("format tag {:?}, expected {FORMAT:?}", self.format));
        }
        if self.version != VERSION {
            return Err(format!(
                "config version {}, this build reads version {VERSION}; retrain with this build",
                self.version
            ));
        }
        self.shape.check()?;
        if self.step <= 0 {
            return Err(format!("step must be positive, got {} ms", self.step));
        }
        if !self.shape.quantiles.contains(&0.5) {
            return Err(format!(
                "quantiles {:?} must include 0.5",
                self.shape.quantiles
            ));
        }
        if self.calibration.len() != self.shape.quantiles.len()
            || self
                .calibration
                .iter()
                .any(|c| !(c.is_finite() && *c > 0.0))
        {
            return Err("calibration needs one positive factor per quantile".into());
        }
        Ok(())
    }
}

/// A network with its weights.
pub struct Network {
    config: Config,
    varmap: VarMap,
    layers: Vec<LSTM>,
    head: Linear,
    skip: Linear,
    /// `(Q, Q)`: turns the positive gaps between neighbouring quantiles into offsets from the
    /// median (+ above it, - below), so outputs can never cross.
    offsets: Tensor,
    /// `(Q,)` quantile levels, for the loss.
    taus: Tensor,
    device: Device,
}

impl std::fmt::Debug for Network {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Network")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Network {
    /// A new network with weights drawn from `seed` (PyTorch's LSTM and linear initialisation:
    /// uniform in +-1/sqrt(fan-in)). candle's CPU generator cannot be seeded, so the weights
    /// are drawn here and handed to candle.
    pub fn init(config: Config, seed: u64, device: &Device) -> Result<Network, LstmError> {
        config.check().map_err(LstmError::Config)?;
        let mut rng = StdRng::seed_from_u64(seed);
        let mut tensors = HashMap::new();
        for (name, shape) in parameter_shapes(&config) {
            let fan_in = if name.starts_with("lstm") || name.starts_with("head") {
                config.shape.hidden
            } else {
                config.shape.input_steps
            };
            let bound = 1.0 / (fan_in.max(1) as f32).sqrt();
            let count: usize = shape.iter().product();
            let values: Vec<f32> = (0..count).map(|_| rng.gen_range(-bound..bound)).collect();
            tensors.insert(name, Tensor::from_vec(values, shape, device)?);
        }
        Network::from_tensors(config, tensors, device)
    }

    /// Rebuilds a network from named weights, checking every name and shape.
    fn from_tensors(
        config: Config,
        mut tensors: HashMap<String, Tensor>,
        device: &Device,
    ) -> Result<Network, LstmError> {
        config.check().map_err(LstmError::Config)?;
        let varmap = VarMap::new();
        {
            let mut data = varmap
                .data()
                .lock()
                .map_err(|_| LstmError::Config("weight map lock poisoned".into()))?;
            for (name, shape) in parameter_shapes(&config) {
                let tensor = tensors
                    .remove(&name)
                    .ok_or_else(|| LstmError::Mismatch(format!("weight {name} is missing")))?;
                if tensor.dims() != shape.as_slice() {
                    return Err(LstmError::Mismatch(format!(
                        "weight {name} has shape {:?}, the config implies {shape:?}",
                        tensor.dims()
                    )));
                }
                let tensor = tensor.to_dtype(DType::F32)?.to_device(device)?;
                data.insert(name, Var::from_tensor(&tensor)?);
            }
            if let Some(extra) = tensors.keys().next() {
                return Err(LstmError::Mismatch(format!(
                    "weight {extra} is not part of this network"
                )));
            }
        }
        let vb = VarBuilder::from_varmap(&varmap, DType::F32, device);
        let mut layers = Vec::with_capacity(config.shape.layers);
        for l in 0..config.shape.layers {
            let input = if l == 0 {
                config.features()
            } else {
                config.shape.hidden
            };
            layers.push(candle_nn::lstm(
                input,
                config.shape.hidden,
                candle_nn::LSTMConfig::default(),
                vb.pp(format!("lstm{l}")),
            )?);
        }
        let q = config.shape.quantiles.len();
        let head = candle_nn::linear(config.shape.hidden, config.shape.horizon * q, vb.pp("head"))?;
        let skip = candle_nn::linear(
            config.shape.input_steps,
            config.shape.horizon,
            vb.pp("skip"),
        )?;
        let m = config.median();
        let mut offsets = vec![0f32; q * q];
        for j in 0..q {
            for k in 0..q {
                offsets[j * q + k] = if m < j && j <= k {
                    1.0
                } else if k <= j && j < m {
                    -1.0
                } else {
                    0.0
                };
            }
        }
        let offsets = Tensor::from_vec(offsets, (q, q), device)?;
        let taus: Vec<f32> = config.shape.quantiles.iter().map(|&t| t as f32).collect();
        let taus = Tensor::from_vec(taus, q, device)?;
        Ok(Network {
            config,
            varmap,
            layers,
            head,
            skip,
            offsets,
            taus,
            device: device.clone(),
        })
    }

    /// The network's config.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Mutable access to the config, for the trainer's record and calibration.
    pub(super) fn config_mut(&mut self) -> &mut Config {
        &mut self.config
    }

    /// Notes the command line that trained the network, for the saved config.
    pub fn record_command(&mut self, command: String) {
        self.config.training.command = command;
    }

    /// The device the weights live on.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// The trainable variables.
    pub(super) fn vars(&self) -> Vec<Var> {
        self.varmap.all_vars()
    }

    /// Copies of the current weights, by name.
    pub(super) fn snapshot(&self) -> Result<HashMap<String, Tensor>, LstmError> {
        let data = self
            .varmap
            .data()
            .lock()
            .map_err(|_| LstmError::Config("weight map lock poisoned".into()))?;
        data.iter()
            .map(|(k, v)| Ok((k.clone(), v.as_tensor().copy()?)))
            .collect()
    }

    /// Puts back weights taken with [`Network::snapshot`].
    pub(super) fn restore(&self, weights: &HashMap<String, Tensor>) -> Result<(), LstmError> {
        let data = self
            .varmap
            .data()
            .lock()
            .map_err(|_| LstmError::Config("weight map lock poisoned".into()))?;
        for (name, var) in data.iter() {
            if let Some(t) = weights.get(name) {
                var.set(t)?;
            }
        }
        Ok(())
    }

    /// Quantile forecasts in scaled units, `(batch, horizon, quantiles)`, from inputs of shape
    /// `(batch, patches, features)`; `window` is the scaled window flattened,
    /// `(batch, input_steps)`, for the linear skip to the median.
    pub fn forward(&self, input: &Tensor, window: &Tensor) -> Result<Tensor, LstmError> {
        let mut x = input.clone();
        let mut last = None;
        for (i, layer) in self.layers.iter().enumerate() {
            let states = layer.seq(&x)?;
            last = states.last().map(|s| s.h().clone());
            // Only a layer that feeds another needs its whole output sequence.
            if i + 1 < self.layers.len() {
                x = layer.states_to_tensor(&states)?;
            }
        }
        let h = last.ok_or_else(|| LstmError::Config("the window has no patches".into()))?;
        let batch = h.dim(0)?;
        let (horizon, q) = (self.config.shape.horizon, self.config.shape.quantiles.len());
        let raw = self.head.forward(&h)?.reshape((batch, horizon, q))?;
        let m = self.config.median();
        let median = (raw.narrow(D::Minus1, m, 1)? + self.skip.forward(window)?.unsqueeze(2)?)?;
        let gaps = softplus(&raw)?;
        Ok(median.broadcast_add(&gaps.broadcast_matmul(&self.offsets)?)?)
    }

    /// Mean pinball loss of quantile forecasts `(batch, horizon, Q)` against `target`
    /// `(batch, horizon)`.
    pub fn pinball(&self, forecast: &Tensor, target: &Tensor) -> Result<Tensor, LstmError> {
        let diff = target.unsqueeze(2)?.broadcast_sub(forecast)?;
        let above = diff.relu()?.broadcast_mul(&self.taus)?;
        let below = diff.neg()?.relu()?.broadcast_mul(&(1.0 - &self.taus)?)?;
        Ok((above + below)?.mean_all()?)
    }

    /// Writes `config.json` and `weights.safetensors` into `dir` (created if needed).
    pub fn save(&self, dir: &Path) -> Result<(), LstmError> {
        let io = |path: PathBuf| move |source| LstmError::Io { path, source };
        std::fs::create_dir_all(dir).map_err(io(dir.to_path_buf()))?;
        let config = serde_json::to_string_pretty(&self.config)
            .map_err(|e| LstmError::Config(e.to_string()))?;
        let config_path = dir.join(CONFIG_FILE);
        // Weights first, then the config that names their shape: a reader that finds the new
        // config finds the new weights beside it (each file is replaced whole).
        let weights_path = dir.join(WEIGHTS_FILE);
        crate::files::write_atomic(&weights_path, &self.weights_bytes()?)
            .map_err(io(weights_path.clone()))?;
        crate::files::write_atomic(&config_path, config.as_bytes()).map_err(io(config_path.clone()))
    }

    /// The weights in safetensors format.
    pub fn weights_bytes(&self) -> Result<Vec<u8>, LstmError> {
        let weights = self.snapshot()?;
        let mut named: Vec<(&String, &Tensor)> = weights.iter().collect();
        named.sort_by(|a, b| a.0.cmp(b.0));
        safetensors::tensor::serialize(named, None)
            .map_err(|e| LstmError::Config(format!("serialising the weights: {e}")))
    }

    /// Reads a network folder written by [`Network::save`].
    pub fn load(dir: &Path) -> Result<Network, LstmError> {
        let read = |name: &str| {
            let path = dir.join(name);
            crate::files::read_limited(&path, crate::files::MAX_MODEL_BYTES)
                .map_err(|source| LstmError::Io { path, source })
        };
        let config = read(CONFIG_FILE)?;
        let weights = read(WEIGHTS_FILE)?;
        Network::from_bytes(&config, &weights).map_err(|e| LstmError::File {
            path: dir.to_path_buf(),
            message: e.to_string(),
        })
    }

    /// Rebuilds a network from the bytes of its config and weights files, on the CPU.
    pub fn from_bytes(config: &[u8], weights: &[u8]) -> Result<Network, LstmError> {
        let config: Config = serde_json::from_slice(config)
            .map_err(|e| LstmError::Config(format!("config.json does not parse: {e}")))?;
        config.check().map_err(LstmError::Config)?;
        let device = Device::Cpu;
        let tensors = candle_core::safetensors::load_buffer(weights, &device).map_err(|e| {
            LstmError::Mismatch(format!(
                "the weights are not a readable safetensors file: {e}"
            ))
        })?;
        Network::from_tensors(config, tensors, &device)
    }

    /// The same network on another device (to train on a GPU and save from the CPU).
    pub fn to_device(&self, device: &Device) -> Result<Network, LstmError> {
        Network::from_tensors(self.config.clone(), self.snapshot()?, device)
    }
}

/// `log(1 + e^x)`, written to stay finite for large `x`: `max(x, 0) + log(1 + e^-|x|)`.
fn softplus(x: &Tensor) -> candle_core::Result<Tensor> {
    x.relu()? + (x.abs()?.neg()?.exp()? + 1.0)?.log()?
}

/// Every weight's name and shape, as candle's layers name them.
fn parameter_shapes(config: &Config) -> Vec<(String, Vec<usize>)> {
    let (h, q) = (config.shape.hidden, config.shape.quantiles.len());
    let mut shapes = Vec::new();
    for l in 0..config.shape.layers {
        let input = if l == 0 { config.features() } else { h };
        shapes.push((format!("lstm{l}.weight_ih_l0"), vec![4 * h, input]));
        shapes.push((format!("lstm{l}.weight_hh_l0"), vec![4 * h, h]));
        shapes.push((format!("lstm{l}.bias_ih_l0"), vec![4 * h]));
        shapes.push((format!("lstm{l}.bias_hh_l0"), vec![4 * h]));
    }
    shapes.push(("head.weight".into(), vec![config.shape.horizon * q, h]));
    shapes.push(("head.bias".into(), vec![config.shape.horizon * q]));
    shapes.push((
        "skip.weight".into(),
        vec![config.shape.horizon, config.shape.input_steps],
    ));
    shapes.push(("skip.bias".into(), vec![config.shape.horizon]));
    shapes
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn config(calendar: bool) -> Config {
        Config {
            format: FORMAT.into(),
            version: VERSION,
            shape: Shape {
                input_steps: 12,
                patch: 4,
                horizon: 5,
                hidden: 6,
                layers: 2,
                quantiles: vec![0.05, 0.25, 0.5, 0.75, 0.95],
                calendar,
            },
            step: 3_600_000,
            calibration: vec![1.0; 5],
            training: TrainingRecord::default(),
        }
    }

    #[test]
    fn bad_configs_say_what_is_wrong() {
        let mut c = config(false);
        c.shape.input_steps = 10;
        assert!(c.check().unwrap_err().contains("multiple of patch"));
        let mut c = config(false);
        c.shape.quantiles = vec![0.1, 0.9, 0.95, 0.99, 0.999];
        assert!(c.check().unwrap_err().contains("include 0.5"));
        let mut c = config(false);
        c.calibration = vec![1.0; 4];
        assert!(c.check().unwrap_err().contains("one positive factor"));
        assert!(Network::init(c, 0, &Device::Cpu).is_err());
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 16, ..ProptestConfig::default() })]

        /// Whatever the weights and the input, the quantile outputs ascend.
        #[test]
        fn quantiles_never_cross(
            seed in 0u64..1_000,
            calendar in any::<bool>(),
            values in prop::collection::vec(-50.0f32..50.0, 2 * 12),
        ) {
            let c = config(calendar);
            let features = c.features();
            let network = Network::init(c, seed, &Device::Cpu).unwrap();
            let mut input = Vec::new();
            for row in values.chunks(4) {
                input.extend_from_slice(row);
                input.extend(std::iter::repeat_n(0.5f32, features - 4));
            }
            let input = Tensor::from_vec(input, (2, 3, features), &Device::Cpu).unwrap();
            let window = Tensor::from_vec(values, (2, 12), &Device::Cpu).unwrap();
            let out = network.forward(&input, &window).unwrap().to_vec3::<f32>().unwrap();
            for step in out.iter().flatten() {
                prop_assert!(step.windows(2).all(|q| q[0] <= q[1]), "{:?}", step);
            }
        }
    }
}
