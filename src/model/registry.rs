//! Models by name: the one place that lists them.

use super::naive::SeasonalNaive;
use super::{Model, ModelError};

/// Builds a model with its default settings.
type Constructor = fn() -> Box<dyn Model>;

/// Every model, by registry name. Add a model here and nowhere else.
const MODELS: &[(&str, Constructor)] = &[
    ("naive", || Box::new(SeasonalNaive::naive())),
    ("seasonal-naive", || Box::new(SeasonalNaive::seasonal())),
];

/// The registry's model names, in listing order.
pub fn names() -> Vec<&'static str> {
    MODELS.iter().map(|(n, _)| *n).collect()
}

/// The model called `name`, with default settings.
pub fn by_name(name: &str) -> Result<Box<dyn Model>, ModelError> {
    MODELS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, make)| make())
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
            by_name("prophet2"),
            Err(ModelError::Unknown { .. })
        ));
    }
}
