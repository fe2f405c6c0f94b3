//! Saving fitted models to files and loading them back.
//!
//! A model file is JSON: a format tag, a format version, the model's registry name, the grid
//! of the series it was fitted on, a one-line description, and the model's own fitted state.
//! Floats are written in their shortest exact form and read back exactly (serde_json's
//! `float_roundtrip`), so a loaded model forecasts bit-for-bit as the saved one did.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::series::Millis;

use super::{registry, FittedModel};

/// The format tag every model file starts with.
pub const FORMAT: &str = "prescale-model";
/// The format version this build writes and reads.
pub const VERSION: u32 = 1;

#[derive(Serialize, Deserialize)]
struct ModelFile {
    format: String,
    version: u32,
    model: String,
    description: String,
    next: Millis,
    step: Millis,
    #[serde(default)]
    non_negative: bool,
    state: serde_json::Value,
}

/// Why a model file could not be written or read.
#[derive(Debug, Error)]
pub enum ModelFileError {
    /// The file could not be read or written.
    #[error("{}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The file is not valid JSON of the expected shape (corrupt or truncated).
    #[error("{}: not a readable model file ({message}); refit and save it again", path.display())]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// The parser's message.
        message: String,
    },
    /// The JSON is not a prescale model file.
    #[error("{}: not a prescale model file (format tag {found:?})", path.display())]
    NotAModel {
        /// The file.
        path: PathBuf,
        /// The format tag found.
        found: String,
    },
    /// The file was written by another format version.
    #[error("{}: model file format version {found}, this build reads version {supported}; refit with this build", path.display())]
    Version {
        /// The file.
        path: PathBuf,
        /// Version in the file.
        found: u32,
        /// Version this build reads.
        supported: u32,
    },
    /// The file names a model this build does not have.
    #[error("{}: model {name:?} is not in this build's registry", path.display())]
    UnknownModel {
        /// The file.
        path: PathBuf,
        /// The model name in the file.
        name: String,
    },
    /// The model's state does not match what the model expects.
    #[error("{}: the {model} state does not load: {message}", path.display())]
    BadState {
        /// The file.
        path: PathBuf,
        /// The model.
        model: String,
        /// What is wrong.
        message: String,
    },
}

impl FittedModel {
    /// Writes the fitted model to `path` (parent folders are created).
    pub fn save(&self, path: &Path) -> Result<(), ModelFileError> {
        let io = |source| ModelFileError::Io {
            path: path.to_path_buf(),
            source,
        };
        let bad_state = |e: serde_json::Error| ModelFileError::BadState {
            path: path.to_path_buf(),
            model: self.model.to_string(),
            message: e.to_string(),
        };
        let file = ModelFile {
            format: FORMAT.into(),
            version: VERSION,
            model: self.model.into(),
            description: self.describe(),
            next: self.next,
            step: self.step,
            non_negative: self.non_negative,
            state: self.inner.to_state().map_err(bad_state)?,
        };
        let text = serde_json::to_string_pretty(&file).map_err(bad_state)?;
        crate::files::write_atomic(path, text.as_bytes()).map_err(io)
    }

    /// Reads a fitted model written by [`FittedModel::save`].
    pub fn load(path: &Path) -> Result<FittedModel, ModelFileError> {
        let text = crate::files::read_limited_text(path, crate::files::MAX_MODEL_BYTES).map_err(
            |source| ModelFileError::Io {
                path: path.to_path_buf(),
                source,
            },
        )?;
        Self::from_json(&text, path)
    }

    /// Reads a fitted model from the text of a model file; `path` only names it in errors.
    /// Every field is checked as [`FittedModel::load`] checks a file's.
    pub fn from_json(text: &str, path: &Path) -> Result<FittedModel, ModelFileError> {
        let corrupt = |e: serde_json::Error| ModelFileError::Corrupt {
            path: path.to_path_buf(),
            message: e.to_string(),
        };
        // Check the tag and version before the full shape, so an old or foreign file gets the
        // error that says so rather than a missing-field message.
        let raw: serde_json::Value = serde_json::from_str(text).map_err(corrupt)?;
        let found = raw.get("format").and_then(|f| f.as_str()).unwrap_or("");
        if found != FORMAT {
            return Err(ModelFileError::NotAModel {
                path: path.to_path_buf(),
                found: found.to_string(),
            });
        }
        let version = raw.get("version").and_then(|v| v.as_u64()).unwrap_or(0) as u32;
        if version != VERSION {
            return Err(ModelFileError::Version {
                path: path.to_path_buf(),
                found: version,
                supported: VERSION,
            });
        }
        let file: ModelFile = serde_json::from_value(raw).map_err(corrupt)?;
        let (model, load) =
            registry::loader(&file.model).ok_or_else(|| ModelFileError::UnknownModel {
                path: path.to_path_buf(),
                name: file.model.clone(),
            })?;
        let inner = load(file.state).map_err(|e| ModelFileError::BadState {
            path: path.to_path_buf(),
            model: file.model.clone(),
            message: e.to_string(),
        })?;
        if file.step <= 0 {
            return Err(ModelFileError::BadState {
                path: path.to_path_buf(),
                model: file.model,
                message: format!("step {} is not positive", file.step),
            });
        }
        Ok(FittedModel {
            model,
            next: file.next,
            step: file.step,
            non_negative: file.non_negative,
            inner,
        })
    }
}

/// Serde helpers for `Vec<f64>` that may hold `NaN` (JSON has no NaN: it is written as null).
pub(crate) mod nan_as_null {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    /// Writes `NaN` as `null`.
    pub(crate) fn serialize<S: Serializer>(values: &[f64], s: S) -> Result<S::Ok, S::Error> {
        let opt: Vec<Option<f64>> = values.iter().map(|v| (!v.is_nan()).then_some(*v)).collect();
        opt.serialize(s)
    }

    /// Reads `null` as `NaN`.
    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<f64>, D::Error> {
        let opt: Vec<Option<f64>> = Vec::deserialize(d)?;
        Ok(opt.into_iter().map(|v| v.unwrap_or(f64::NAN)).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{by_name, fit};
    use crate::series::{Labels, Series};

    fn fitted() -> FittedModel {
        let values: Vec<f64> = (0..200)
            .map(|i| ((i * 37) % 23) as f64 * 1.1 + 0.1)
            .collect();
        let s = Series::new(Labels::default(), 1_000_000, 60_000, values).unwrap();
        fit(by_name("seasonal-naive").unwrap().as_ref(), &s, &[24]).unwrap()
    }

    #[test]
    fn a_saved_model_forecasts_identically_after_loading() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("models/naive.json");
        let original = fitted();
        original.save(&path).unwrap();
        let loaded = FittedModel::load(&path).unwrap();
        assert_eq!(loaded.model(), "seasonal-naive");
        let (a, b) = (
            original.predict(100, &[80.0, 95.0]).unwrap(),
            loaded.predict(100, &[80.0, 95.0]).unwrap(),
        );
        assert_eq!(a, b);
        let (fa, fb) = (original.fitted_values(), loaded.fitted_values());
        assert!(fa
            .iter()
            .zip(&fb)
            .all(|(x, y)| x == y || (x.is_nan() && y.is_nan())));
    }

    #[test]
    fn bad_files_say_what_is_wrong() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.json");
        fitted().save(&path).unwrap();
        let good = std::fs::read_to_string(&path).unwrap();
        let write = |text: &str| std::fs::write(&path, text).unwrap();

        write(&good[..good.len() / 2]);
        assert!(matches!(
            FittedModel::load(&path),
            Err(ModelFileError::Corrupt { .. })
        ));
        write(&good.replace("\"version\": 1", "\"version\": 99"));
        assert!(matches!(
            FittedModel::load(&path),
            Err(ModelFileError::Version { found: 99, .. })
        ));
        write(&good.replace(FORMAT, "something-else"));
        assert!(matches!(
            FittedModel::load(&path),
            Err(ModelFileError::NotAModel { .. })
        ));
        write(&good.replace("\"model\": \"seasonal-naive\"", "\"model\": \"oracle\""));
        assert!(matches!(
            FittedModel::load(&path),
            Err(ModelFileError::UnknownModel { .. })
        ));
        write(&good.replace("\"period\"", "\"periodo\""));
        assert!(matches!(
            FittedModel::load(&path),
            Err(ModelFileError::BadState { .. })
        ));
        assert!(matches!(
            FittedModel::load(&dir.path().join("absent.json")),
            Err(ModelFileError::Io { .. })
        ));
    }
}
