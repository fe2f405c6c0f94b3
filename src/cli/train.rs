//! `prescale train`: train a global model on many series and save it to a folder.

use std::path::PathBuf;

use anyhow::{bail, Context};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};

use crate::model::calendar_periods;
use crate::model::lstm::{self, Shape, TrainSettings};

use super::args::InputArgs;

/// Flags of `prescale train`.
#[derive(Debug, Args)]
pub(super) struct TrainArgs {
    #[command(flatten)]
    input: InputArgs,

    /// The model to train; `lstm` is the only trained (global) model.
    #[arg(long, default_value = "lstm")]
    model: String,

    /// Folder to write `config.json` and `weights.safetensors` to, e.g. models/my-lstm.
    #[arg(long, value_name = "DIR")]
    output: PathBuf,

    /// Drop the last N points of every series before training, so a test period (e.g. the
    /// day `demo` forecasts) is never seen.
    #[arg(long, value_name = "N", default_value_t = 0)]
    holdout: usize,

    /// Steps of history the network reads [default: 14 patches].
    #[arg(long, value_name = "STEPS")]
    window: Option<usize>,

    /// Steps per LSTM time step [default: one day of steps, else 24].
    #[arg(long, value_name = "STEPS")]
    patch: Option<usize>,

    /// Steps forecast at once [default: two patches].
    #[arg(long, value_name = "STEPS")]
    horizon: Option<usize>,

    /// LSTM hidden units.
    #[arg(long, value_name = "N", default_value_t = TrainSettings::default().shape.hidden)]
    hidden: usize,

    /// Stacked LSTM layers.
    #[arg(long, value_name = "N", default_value_t = TrainSettings::default().shape.layers)]
    layers: usize,

    /// Quantile levels to predict, comma-separated (0.5 is always added).
    #[arg(long, value_name = "Q,...", value_delimiter = ',', default_values_t = lstm::DEFAULT_QUANTILES)]
    quantiles: Vec<f64>,

    /// Give each patch hour-of-day and day-of-week features (needs real timestamps; M4's are
    /// not).
    #[arg(long)]
    calendar: bool,

    /// The last steps of each series held out for validation and early stopping
    /// [default: two horizons; more validation windows made early stopping and the
    /// calibration steadier on M4 and on the taxi series].
    #[arg(long, value_name = "STEPS")]
    validation_steps: Option<usize>,

    /// Upper bound on epochs.
    #[arg(long, value_name = "N", default_value_t = TrainSettings::default().max_epochs)]
    epochs: usize,

    /// Stop after this many epochs without a better validation loss.
    #[arg(long, value_name = "N", default_value_t = TrainSettings::default().patience)]
    patience: usize,

    /// Windows per mini-batch.
    #[arg(long, value_name = "N", default_value_t = TrainSettings::default().batch)]
    batch: usize,

    /// Training windows sampled per epoch.
    #[arg(long, value_name = "N", default_value_t = TrainSettings::default().windows_per_epoch)]
    windows_per_epoch: usize,

    /// AdamW learning rate.
    #[arg(long, value_name = "RATE", default_value_t = TrainSettings::default().learning_rate)]
    learning_rate: f64,

    /// Seed of the initial weights and of the window sampling: the same seed, data and
    /// flags give the same weights on the CPU.
    #[arg(long, value_name = "N", default_value_t = 0)]
    seed: u64,
}

/// Runs `prescale train`.
pub(super) fn run(args: TrainArgs) -> anyhow::Result<()> {
    if args.model != "lstm" {
        bail!(
            "only the lstm model is trained ahead of time; {:?} fits per series (use `prescale forecast --model {}`)",
            args.model,
            args.model
        );
    }
    for file in [
        crate::model::lstm::CONFIG_FILE,
        crate::model::lstm::WEIGHTS_FILE,
    ] {
        args.input.refuse_as_output(&args.output.join(file), &[])?;
    }
    let mut series = args.input.load()?;
    if args.holdout > 0 {
        series = series
            .into_iter()
            .filter(|s| s.len() > args.holdout)
            .map(|s| s.split_at(s.len() - args.holdout).0)
            .collect();
    }
    let step = series.first().context("no series to train on")?.step();
    let season = calendar_periods(step).first().copied().unwrap_or(24);
    let patch = args.patch.unwrap_or(season);
    let horizon = args.horizon.unwrap_or(2 * patch);
    let settings = TrainSettings {
        shape: Shape {
            input_steps: args.window.unwrap_or(14 * patch),
            patch,
            horizon,
            hidden: args.hidden,
            layers: args.layers,
            quantiles: args.quantiles.clone(),
            calendar: args.calendar,
        },
        validation_steps: args.validation_steps.unwrap_or(2 * horizon),
        max_epochs: args.epochs,
        patience: args.patience,
        batch: args.batch,
        windows_per_epoch: args.windows_per_epoch,
        learning_rate: args.learning_rate,
        weight_decay: TrainSettings::default().weight_decay,
        seed: args.seed,
    };
    let device = lstm::best_device();
    note!(
        "training lstm on {} series ({} points) on {:?}: window {}, patch {}, horizon {}, hidden {}x{}",
        series.len(),
        series.iter().map(|s| s.len()).sum::<usize>(),
        device,
        settings.shape.input_steps,
        settings.shape.patch,
        settings.shape.horizon,
        settings.shape.layers,
        settings.shape.hidden
    );
    let bar = ProgressBar::new(settings.max_epochs as u64);
    bar.set_style(
        ProgressStyle::with_template("epoch {pos}/{len} {bar:30} {elapsed_precise} {msg}")
            .context("progress bar template")?,
    );
    let mut network = lstm::train(&series, &settings, &device, &mut |e| {
        bar.set_position(e.epoch as u64);
        bar.set_message(format!(
            "train loss {:.4}, validation loss {:.4} (best {:.4})",
            e.train_loss, e.validation_loss, e.best_loss
        ));
        if bar.is_hidden() {
            note!(
                "epoch {}/{}: train loss {:.4}, validation loss {:.4} (best {:.4})",
                e.epoch,
                e.max_epochs,
                e.train_loss,
                e.validation_loss,
                e.best_loss
            );
        }
    })?;
    bar.finish_and_clear();
    let mut command: Vec<String> = std::env::args().collect();
    if let Some(first) = command.first_mut() {
        *first = "prescale".into();
    }
    network = network.to_device(&candle_core::Device::Cpu)?;
    network.record_command(command.join(" "));
    network.save(&args.output)?;
    let t = &network.config().training;
    note!(
        "kept epoch {} of {} (validation pinball loss {:.4} on {} windows) in {:.1} s; calibration {:?}",
        t.best_epoch,
        t.epochs,
        t.validation_loss,
        t.validation_windows,
        t.seconds,
        network
            .config()
            .calibration
            .iter()
            .map(|c| (c * 1000.0).round() / 1000.0)
            .collect::<Vec<_>>()
    );
    note!("saved to {}", args.output.display());
    Ok(())
}
