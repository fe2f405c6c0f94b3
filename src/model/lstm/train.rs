//! Training one global network on windows drawn from many series.
//!
//! Each series' last `validation_steps` are held out by time: training windows only ever
//! predict values before them, validation windows predict them. Every epoch samples a fresh
//! set of training windows (seeded), takes AdamW steps on the pinball loss of all quantiles,
//! then scores the validation windows; the weights of the best epoch are kept, and training
//! stops after `patience` epochs without improvement. Finally each quantile's distance from
//! the median is rescaled so that, on the validation windows, it covers what it claims.

use std::time::Instant;

use candle_core::{Device, Tensor};
use candle_nn::{AdamW, Optimizer, ParamsAdamW};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::SeedableRng;

use super::features::encode;
use super::network::{Config, Network, Shape, TrainingRecord, FORMAT, VERSION};
use super::LstmError;
use crate::series::{Millis, Series};

/// The quantile levels trained by default: the medians and the bounds of the 50, 80, 90 and
/// 95% intervals.
pub const DEFAULT_QUANTILES: [f64; 9] = [0.025, 0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.975];

/// How to train.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainSettings {
    /// The network to train (0.5 is added to the quantiles when missing).
    pub shape: Shape,
    /// The last steps of each series held out for validation.
    pub validation_steps: usize,
    /// Upper bound on epochs.
    pub max_epochs: usize,
    /// Epochs without a better validation loss before stopping.
    pub patience: usize,
    /// Windows per mini-batch.
    pub batch: usize,
    /// Training windows sampled per epoch (all of them when there are fewer).
    pub windows_per_epoch: usize,
    /// AdamW learning rate.
    pub learning_rate: f64,
    /// AdamW weight decay.
    pub weight_decay: f64,
    /// Seed of the initial weights and of the sampling.
    pub seed: u64,
}

impl Default for TrainSettings {
    /// Two weeks of hourly history in daily patches, two days ahead (the M4 hourly setting).
    fn default() -> Self {
        TrainSettings {
            shape: Shape {
                input_steps: 336,
                patch: 24,
                horizon: 48,
                hidden: 128,
                layers: 1,
                quantiles: DEFAULT_QUANTILES.to_vec(),
                calendar: false,
            },
            validation_steps: 96,
            max_epochs: 60,
            patience: 10,
            batch: 256,
            windows_per_epoch: 16_384,
            learning_rate: 1e-3,
            weight_decay: 1e-4,
            seed: 0,
        }
    }
}

/// One epoch's outcome, for progress reporting.
#[derive(Debug, Clone, PartialEq)]
pub struct EpochReport {
    /// 1-based epoch.
    pub epoch: usize,
    /// The epoch limit.
    pub max_epochs: usize,
    /// Mean training pinball loss over the epoch's batches.
    pub train_loss: f64,
    /// Mean pinball loss on the validation windows.
    pub validation_loss: f64,
    /// The best validation loss so far (this epoch's when it improved).
    pub best_loss: f64,
}

/// A window: which series, and the index where its target starts.
#[derive(Debug, Clone, Copy)]
struct Window {
    series: usize,
    end: usize,
}

/// Trains a network on `series` (all on one step). `progress` hears about every epoch.
pub fn train(
    series: &[Series],
    settings: &TrainSettings,
    device: &Device,
    progress: &mut dyn FnMut(&EpochReport),
) -> Result<Network, LstmError> {
    let started = Instant::now();
    let step = check_inputs(series, settings)?;
    let mut quantiles = settings.shape.quantiles.clone();
    if !quantiles.contains(&0.5) {
        quantiles.push(0.5);
    }
    quantiles.sort_by(f64::total_cmp);
    quantiles.dedup();
    let config = Config {
        format: FORMAT.into(),
        version: VERSION,
        calibration: vec![1.0; quantiles.len()],
        shape: Shape {
            quantiles,
            ..settings.shape.clone()
        },
        step,
        training: TrainingRecord::default(),
    };
    let (training, validation) = windows(series, settings);
    if training.is_empty() || validation.is_empty() {
        return Err(LstmError::NoWindows {
            needed: settings.shape.input_steps + settings.shape.horizon + settings.validation_steps,
            longest: series.iter().map(Series::len).max().unwrap_or(0),
        });
    }
    let mut network = Network::init(config, settings.seed, device)?;
    let mut optimizer = AdamW::new(
        network.vars(),
        ParamsAdamW {
            lr: settings.learning_rate,
            weight_decay: settings.weight_decay,
            ..ParamsAdamW::default()
        },
    )?;
    let validation_batches = batches(series, &validation, network.config(), settings.batch)?;
    let mut rng = StdRng::seed_from_u64(settings.seed ^ 0x9e37_79b9_7f4a_7c15);
    let mut best = (f64::INFINITY, 0, network.snapshot()?);
    let mut epoch = 0;
    while epoch < settings.max_epochs && epoch - best.1 < settings.patience.max(1) {
        epoch += 1;
        let mut sample = training.clone();
        sample.shuffle(&mut rng);
        sample.truncate(settings.windows_per_epoch.max(settings.batch));
        let (mut total, mut count) = (0.0, 0usize);
        for chunk in sample.chunks(settings.batch.max(1)) {
            let batch = Batch::of(series, chunk, network.config(), device)?;
            let loss = network.pinball(
                &network.forward(&batch.input, &batch.window)?,
                &batch.target,
            )?;
            optimizer.backward_step(&loss)?;
            total += f64::from(loss.to_scalar::<f32>()?) * chunk.len() as f64;
            count += chunk.len();
        }
        let validation_loss = mean_loss(&network, &validation_batches)?;
        if !(validation_loss.is_finite() && total.is_finite()) {
            // A diverged step (too high a learning rate, extreme values) makes every later
            // weight NaN; the best network so far would be saved as if it were the result.
            return Err(LstmError::Config(format!(
                "training diverged at epoch {}: the loss is not finite (lower the learning rate, or check the series for extreme values)",
                epoch + 1
            )));
        }
        if validation_loss < best.0 {
            best = (validation_loss, epoch, network.snapshot()?);
        }
        progress(&EpochReport {
            epoch,
            max_epochs: settings.max_epochs,
            train_loss: total / count.max(1) as f64,
            validation_loss,
            best_loss: best.0,
        });
    }
    network.restore(&best.2)?;
    let calibration = calibrate(&network, &validation_batches)?;
    let config = network.config_mut();
    config.calibration = calibration;
    config.training = TrainingRecord {
        series: series.len(),
        epochs: epoch,
        best_epoch: best.1,
        validation_loss: best.0,
        validation_windows: validation.len(),
        seed: settings.seed,
        seconds: started.elapsed().as_secs_f64(),
        command: String::new(),
    };
    Ok(network)
}

/// Checks the settings against the series; returns their common step.
fn check_inputs(series: &[Series], settings: &TrainSettings) -> Result<Millis, LstmError> {
    let first = series.first().ok_or(LstmError::NoSeries)?;
    if let Some(other) = series.iter().find(|s| s.step() != first.step()) {
        return Err(LstmError::MixedSteps {
            first: first.step(),
            other: other.step(),
            series: other.labels().to_string(),
        });
    }
    // Before any window is cut: a zero patch made the window search loop forever.
    settings.shape.check().map_err(LstmError::Config)?;
    if settings.batch == 0
        || settings.max_epochs == 0
        || settings.validation_steps < settings.shape.horizon
    {
        return Err(LstmError::Config(format!(
            "batch and epochs must be positive and the validation steps ({}) at least the horizon ({})",
            settings.validation_steps, settings.shape.horizon
        )));
    }
    for (name, value) in [
        ("learning rate", settings.learning_rate),
        ("weight decay", settings.weight_decay),
    ] {
        // Zero decay is fine; a zero or negative learning rate never learns, and a NaN one
        // turns every weight into NaN at the first step.
        let least = if name == "learning rate" {
            f64::MIN_POSITIVE
        } else {
            0.0
        };
        if !(value.is_finite() && value >= least && value < 1.0) {
            return Err(LstmError::Config(format!(
                "the {name} must be a finite number in [{}, 1), got {value}",
                if least > 0.0 { "above 0" } else { "0" }
            )));
        }
    }
    Ok(first.step())
}

/// Training windows (targets end before each series' validation steps) and validation
/// windows (non-overlapping targets inside them), skipping any that touch a missing value.
fn windows(series: &[Series], settings: &TrainSettings) -> (Vec<Window>, Vec<Window>) {
    let (l, h, v) = (
        settings.shape.input_steps,
        settings.shape.horizon,
        settings.validation_steps,
    );
    let mut training = Vec::new();
    let mut validation = Vec::new();
    for (i, s) in series.iter().enumerate() {
        let values = s.values();
        let n = values.len();
        // missing[k] = missing values among the first k.
        let mut missing = Vec::with_capacity(n + 1);
        missing.push(0usize);
        for v in values {
            missing.push(missing.last().copied().unwrap_or(0) + usize::from(!v.is_finite()));
        }
        let complete =
            |end: usize| end >= l && end + h <= n && missing[end + h] == missing[end - l];
        if n < v + l {
            continue;
        }
        for end in l..=(n - v).saturating_sub(h) {
            if complete(end) {
                training.push(Window { series: i, end });
            }
        }
        let mut end = n - h;
        while end + v >= n && end >= l {
            if complete(end) {
                validation.push(Window { series: i, end });
            }
            match end.checked_sub(h) {
                Some(e) => end = e,
                None => break,
            }
        }
    }
    (training, validation)
}

/// A mini-batch as tensors, with each window's scaling.
struct Batch {
    input: Tensor,
    window: Tensor,
    target: Tensor,
}

impl Batch {
    fn of(
        series: &[Series],
        windows: &[Window],
        config: &Config,
        device: &Device,
    ) -> Result<Batch, LstmError> {
        let (l, h) = (config.shape.input_steps, config.shape.horizon);
        let step = series.first().map_or(1, Series::step);
        let histories: Vec<(&[f64], Millis)> = windows
            .iter()
            .map(|w| {
                let s = &series[w.series];
                (&s.values()[w.end - l..w.end], s.timestamp(w.end - l))
            })
            .collect();
        let encoded = encode(config, &histories, step, device)?;
        let mut target = Vec::with_capacity(windows.len() * h);
        for (w, scaling) in windows.iter().zip(&encoded.scalings) {
            let future = &series[w.series].values()[w.end..w.end + h];
            target.extend(future.iter().map(|&v| scaling.apply(v)));
        }
        Ok(Batch {
            input: encoded.input,
            window: encoded.window,
            target: Tensor::from_vec(target, (windows.len(), h), device)?,
        })
    }
}

fn batches(
    series: &[Series],
    windows: &[Window],
    config: &Config,
    size: usize,
) -> Result<Vec<(Batch, usize)>, LstmError> {
    windows
        .chunks(size.max(1))
        .map(|c| Ok((Batch::of(series, c, config, &Device::Cpu)?, c.len())))
        .collect()
}

fn mean_loss(network: &Network, batches: &[(Batch, usize)]) -> Result<f64, LstmError> {
    let (mut total, mut count) = (0.0, 0);
    for (batch, n) in batches {
        let batch = batch.on(network.device())?;
        let forecast = network.forward(&batch.input, &batch.window)?;
        total += f64::from(
            network
                .pinball(&forecast, &batch.target)?
                .to_scalar::<f32>()?,
        ) * *n as f64;
        count += n;
    }
    Ok(total / count.max(1) as f64)
}

impl Batch {
    fn on(&self, device: &Device) -> Result<Batch, LstmError> {
        Ok(Batch {
            input: self.input.to_device(device)?,
            window: self.window.to_device(device)?,
            target: self.target.to_device(device)?,
        })
    }
}

/// Per-quantile factors on the distance from the median such that, on the validation
/// windows, the share of values below each quantile equals its level (split-conformal
/// style). A quantile the validation data cannot calibrate keeps factor 1.
fn calibrate(network: &Network, batches: &[(Batch, usize)]) -> Result<Vec<f64>, LstmError> {
    let config = network.config();
    let q = config.shape.quantiles.len();
    let m = config.median();
    let mut ratios: Vec<Vec<f64>> = vec![Vec::new(); q];
    for (batch, _) in batches {
        let batch = batch.on(network.device())?;
        let forecast = network
            .forward(&batch.input, &batch.window)?
            .to_vec3::<f32>()?;
        let target = batch.target.to_vec2::<f32>()?;
        for (rows, actual) in forecast.iter().zip(&target) {
            for (quantiles, &y) in rows.iter().zip(actual) {
                let median = f64::from(quantiles[m]);
                for (k, ratio) in ratios.iter_mut().enumerate() {
                    let distance = (f64::from(quantiles[k]) - median).abs();
                    if k != m && distance > 1e-6 {
                        // Signed so that "covered" is ratio <= factor on both sides.
                        let excess = if k > m {
                            f64::from(y) - median
                        } else {
                            median - f64::from(y)
                        };
                        ratio.push(excess / distance);
                    }
                }
            }
        }
    }
    Ok(ratios
        .iter_mut()
        .enumerate()
        .map(|(k, r)| {
            if k == m || r.len() < 20 {
                return 1.0;
            }
            let tau = config.shape.quantiles[k];
            let share = if k > m { tau } else { 1.0 - tau };
            r.sort_by(f64::total_cmp);
            let index = ((share * r.len() as f64).ceil() as usize).clamp(1, r.len()) - 1;
            r[index].clamp(0.25, 4.0)
        })
        .collect())
}
