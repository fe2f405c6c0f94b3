//! Models by name: the one place that lists them.

use super::arima::{self, Arima};
use super::auto::{self, Auto};
use super::ets::{self, Ets};
use super::lstm::{self, Lstm};
use super::mstl::{self, Mstl};
use super::naive::{self, SeasonalNaive};
use super::prophet::{self, Prophet};
use super::theta::{self, Theta};
use super::{Fitted, Model, ModelError};

/// Builds a model with its default settings.
type Constructor = fn() -> Box<dyn Model>;

/// Rebuilds a fitted model from the state it saved ([`Fitted::to_state`]).
pub(crate) type Loader = fn(serde_json::Value) -> Result<Box<dyn Fitted>, serde_json::Error>;

/// One registered model.
struct Entry {
    name: &'static str,
    make: Constructor,
    load: Loader,
}

/// Every model, by registry name. Add a model here and nowhere else.
const MODELS: &[Entry] = &[
    Entry {
        name: "naive",
        make: || Box::new(SeasonalNaive::naive()),
        load: naive::load,
    },
    Entry {
        name: "seasonal-naive",
        make: || Box::new(SeasonalNaive::seasonal()),
        load: naive::load,
    },
    Entry {
        name: "ets",
        make: || Box::new(Ets),
        load: ets::load,
    },
    Entry {
        name: "mstl",
        make: || Box::new(Mstl),
        load: mstl::load,
    },
    Entry {
        name: "theta",
        make: || Box::new(Theta),
        load: theta::load,
    },
    Entry {
        name: "arima",
        make: || Box::new(Arima::auto()),
        load: arima::load,
    },
    Entry {
        name: "prophet",
        make: || Box::new(Prophet::default()),
        load: prophet::load,
    },
    Entry {
        name: "lstm",
        make: || Box::new(Lstm::default()),
        load: lstm::load,
    },
    Entry {
        name: "auto",
        make: || Box::new(Auto::default()),
        load: auto::load,
    },
];

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

/// The model called `name`, with default settings.
pub fn by_name(name: &str) -> Result<Box<dyn Model>, ModelError> {
    MODELS
        .iter()
        .find(|e| e.name == name)
        .map(|e| (e.make)())
        .ok_or_else(|| ModelError::Unknown {
            name: name.to_string(),
            available: names(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_builds_a_model_of_that_name() {
        for name in names() {
            assert_eq!(by_name(name).unwrap().name(), name);
        }
        assert!(matches!(
            by_name("prophet-2"),
            Err(ModelError::Unknown { .. })
        ));
    }
}
