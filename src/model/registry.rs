//! Models by name, each built from its own settings: the one place that lists them.
//!
//! Every model has a serde settings type (an empty [`NoSettings`] for those with none), and
//! [`build`] turns a name and a settings value into a model. The CLI's flags, the YAML of
//! `prescale serve` and `auto`'s candidate list all go through it. A new model is one file
//! (its `Model`, `Fitted`, settings type and loader) plus one [`Entry`] here.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::arima::{self, Arima};
use super::auto::{self, Auto};
use super::ets::{self, Ets};
use super::lstm::{self, Lstm};
use super::mstl::{self, Mstl};
use super::naive::{self, SeasonalNaive};
use super::prophet::{self, Prophet};
use super::theta::{self, Theta};
use super::{Fitted, Model, ModelError};

/// Builds a model from its settings (JSON `null` or `{}` for the defaults).
type Builder = fn(&serde_json::Value) -> Result<Box<dyn Model>, ModelError>;

/// Rebuilds a fitted model from the state it saved ([`Fitted::to_state`]).
pub(crate) type Loader = fn(serde_json::Value) -> Result<Box<dyn Fitted>, serde_json::Error>;

/// One registered model.
struct Entry {
    name: &'static str,
    build: Builder,
    load: Loader,
}

/// Every model, by registry name. Add a model here and nowhere else.
const MODELS: &[Entry] = &[
    Entry {
        name: "naive",
        build: |v| {
            parse_settings::<NoSettings>("naive", v)?;
            Ok(Box::new(SeasonalNaive::naive()))
        },
        load: naive::load,
    },
    Entry {
        name: "seasonal-naive",
        build: |v| {
            parse_settings::<NoSettings>("seasonal-naive", v)?;
            Ok(Box::new(SeasonalNaive::seasonal()))
        },
        load: naive::load,
    },
    Entry {
        name: "ets",
        build: |v| {
            parse_settings::<NoSettings>("ets", v)?;
            Ok(Box::new(Ets::default()))
        },
        load: ets::load,
    },
    Entry {
        name: "ets-nonseasonal",
        build: |v| {
            parse_settings::<NoSettings>("ets-nonseasonal", v)?;
            Ok(Box::new(Ets::nonseasonal()))
        },
        load: ets::load,
    },
    Entry {
        name: "mstl",
        build: |v| {
            parse_settings::<NoSettings>("mstl", v)?;
            Ok(Box::new(Mstl))
        },
        load: mstl::load,
    },
    Entry {
        name: "theta",
        build: |v| {
            parse_settings::<NoSettings>("theta", v)?;
            Ok(Box::new(Theta::default()))
        },
        load: theta::load,
    },
    Entry {
        name: "theta-nonseasonal",
        build: |v| {
            parse_settings::<NoSettings>("theta-nonseasonal", v)?;
            Ok(Box::new(Theta::nonseasonal()))
        },
        load: theta::load,
    },
    Entry {
        name: "arima",
        build: |v| Ok(Box::new(Arima::from_settings(parse_settings("arima", v)?)?)),
        load: arima::load,
    },
    Entry {
        name: "prophet",
        build: |v| {
            Ok(Box::new(Prophet::from_settings(parse_settings(
                "prophet", v,
            )?)?))
        },
        load: prophet::load,
    },
    Entry {
        name: "lstm",
        build: |v| Ok(Box::new(Lstm::from_settings(parse_settings("lstm", v)?)?)),
        load: lstm::load,
    },
    Entry {
        name: "auto",
        build: |v| Ok(Box::new(Auto::from_settings(parse_settings("auto", v)?)?)),
        load: auto::load,
    },
];

/// The settings of a model that has none: only `{}` (or nothing) is accepted, so a setting
/// meant for another model is an error rather than silently ignored.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoSettings {}

/// A model as configurations name it: its registry name and its settings.
///
/// In YAML or JSON it is either the bare name (`model: ets`, default settings) or a mapping
/// of the name and the model's settings (`model: {name: arima, order: [1, 1, 1]}`).
///
/// ```
/// use prescale::model::ModelSpec;
///
/// let spec: ModelSpec = serde_json::from_str(r#"{"name": "arima", "order": [1, 1, 1]}"#).unwrap();
/// assert_eq!(spec.name, "arima");
/// let model = spec.build().unwrap();
/// assert_eq!(model.name(), "arima");
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct ModelSpec {
    /// The registry name.
    pub name: String,
    /// The model's settings as given (a JSON object; `null` for the defaults).
    pub settings: serde_json::Value,
}

impl ModelSpec {
    /// A model with its default settings.
    pub fn named(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            settings: serde_json::Value::Null,
        }
    }

    /// The model with these settings, checked.
    pub fn build(&self) -> Result<Box<dyn Model>, ModelError> {
        build(&self.name, &self.settings)
    }
}

impl std::fmt::Display for ModelSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.settings {
            serde_json::Value::Null => f.write_str(&self.name),
            serde_json::Value::Object(m) if m.is_empty() => f.write_str(&self.name),
            other => write!(f, "{} {other}", self.name),
        }
    }
}

/// The two spellings of a [`ModelSpec`].
#[derive(Serialize, Deserialize)]
#[serde(untagged)]
enum SpecForm {
    Name(String),
    Full {
        name: String,
        #[serde(flatten)]
        settings: serde_json::Map<String, serde_json::Value>,
    },
}

impl Serialize for ModelSpec {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match &self.settings {
            serde_json::Value::Object(m) if !m.is_empty() => SpecForm::Full {
                name: self.name.clone(),
                settings: m.clone(),
            }
            .serialize(s),
            _ => SpecForm::Name(self.name.clone()).serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for ModelSpec {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(match SpecForm::deserialize(d)? {
            SpecForm::Name(name) => Self::named(name),
            SpecForm::Full { name, settings } => Self {
                name,
                settings: serde_json::Value::Object(settings),
            },
        })
    }
}

/// Reads a model's settings: `null` (or an empty mapping) gives the defaults; an unknown key
/// or a wrong type is a [`ModelError::Settings`] naming the model.
pub fn parse_settings<S: DeserializeOwned + Default>(
    model: &str,
    value: &serde_json::Value,
) -> Result<S, ModelError> {
    if value.is_null() {
        return Ok(S::default());
    }
    serde_json::from_value(value.clone()).map_err(|e| ModelError::Settings {
        model: model.to_string(),
        message: "invalid settings".into(),
        source: Some(std::sync::Arc::new(e)),
    })
}

/// The registry's model names, in listing order.
pub fn names() -> Vec<&'static str> {
    MODELS.iter().map(|e| e.name).collect()
}

/// The registered name and loader of the model called `name`.
pub(crate) fn loader(name: &str) -> Option<(&'static str, Loader)> {
    MODELS
        .iter()
        .find(|e| e.name == name)
        .map(|e| (e.name, e.load))
}

/// The model called `name` built from `settings` (`null` for its defaults).
///
/// ```
/// use prescale::model::build;
///
/// let prophet = build("prophet", &serde_json::json!({"changepoints": 10})).unwrap();
/// assert_eq!(prophet.name(), "prophet");
/// // A setting the model does not have is an error, not ignored.
/// assert!(build("ets", &serde_json::json!({"order": [1, 0, 0]})).is_err());
/// ```
pub fn build(name: &str, settings: &serde_json::Value) -> Result<Box<dyn Model>, ModelError> {
    let entry = MODELS
        .iter()
        .find(|e| e.name == name)
        .ok_or_else(|| ModelError::Unknown {
            name: name.to_string(),
            available: names(),
        })?;
    (entry.build)(settings)
}

/// The model called `name`, with default settings.
pub fn by_name(name: &str) -> Result<Box<dyn Model>, ModelError> {
    build(name, &serde_json::Value::Null)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_name_builds_a_model_of_that_name() {
        for name in names() {
            assert_eq!(by_name(name).unwrap().name(), name);
            assert_eq!(build(name, &json!({})).unwrap().name(), name);
        }
        assert!(matches!(
            by_name("prophet-2"),
            Err(ModelError::Unknown { .. })
        ));
    }

    #[test]
    fn settings_meant_for_another_model_are_refused_with_the_model_named() {
        for (name, bad) in [
            ("ets", json!({"order": [1, 1, 1]})),
            ("arima", json!({"growth": "flat"})),
            ("prophet", json!({"changepoints": "many"})),
            ("auto", json!({"candidates": ["auto"]})),
            ("lstm", json!({"hidden": 3})),
        ] {
            let err = build(name, &bad)
                .err()
                .unwrap_or_else(|| panic!("{name} {bad}"));
            assert!(
                matches!(&err, ModelError::Settings { model, .. } if model == name),
                "{name}: {err}"
            );
        }
    }

    #[test]
    fn specs_read_as_a_bare_name_or_a_mapping_and_round_trip() {
        let bare: ModelSpec = serde_json::from_str("\"ets\"").unwrap();
        assert_eq!(bare, ModelSpec::named("ets"));
        let full: ModelSpec =
            serde_json::from_value(json!({"name": "arima", "order": [2, 1, 0]})).unwrap();
        assert_eq!(full.settings, json!({"order": [2, 1, 0]}));
        for spec in [bare, full] {
            let text = serde_json::to_string(&spec).unwrap();
            assert_eq!(serde_json::from_str::<ModelSpec>(&text).unwrap(), spec);
        }
        assert_eq!(ModelSpec::named("ets").to_string(), "ets");
    }
}
