//! Series identity: a metric name plus key/value labels, as Prometheus gives them.

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use serde::{Deserialize, Serialize};

/// The identity of a series: metric name and sorted labels.
///
/// Prometheus returns the name as the `__name__` label; [`Labels::from_prometheus`] splits it out.
/// A file source uses the file stem as the name.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Labels {
    /// Metric name (may be empty for an expression result such as `sum(rate(x[5m]))`).
    pub name: String,
    /// Label pairs, sorted by key so equal label sets compare and print the same.
    pub pairs: BTreeMap<String, String>,
}

impl Labels {
    /// Labels with a name and no pairs.
    pub fn named(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            pairs: BTreeMap::new(),
        }
    }

    /// Adds one label pair (builder style).
    pub fn with(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.pairs.insert(key.into(), value.into());
        self
    }

    /// Builds labels from a Prometheus metric map, taking `__name__` as the name.
    pub fn from_prometheus(metric: &HashMap<String, String>) -> Self {
        let mut pairs: BTreeMap<String, String> =
            metric.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        let name = pairs.remove("__name__").unwrap_or_default();
        Self { name, pairs }
    }
}

impl fmt::Display for Labels {
    /// Prints in PromQL selector style: `name{a="1",b="2"}`, or `{}` for an empty set.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)?;
        if self.pairs.is_empty() {
            return if self.name.is_empty() {
                f.write_str("{}")
            } else {
                Ok(())
            };
        }
        f.write_str("{")?;
        for (i, (k, v)) in self.pairs.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{k}={v:?}")?;
        }
        f.write_str("}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prometheus_name_is_split_out_and_pairs_sorted() {
        let mut m = HashMap::new();
        m.insert("__name__".to_string(), "http_requests_total".to_string());
        m.insert("job".to_string(), "api".to_string());
        m.insert("code".to_string(), "200".to_string());
        let l = Labels::from_prometheus(&m);
        assert_eq!(l.name, "http_requests_total");
        assert_eq!(
            l.to_string(),
            r#"http_requests_total{code="200",job="api"}"#
        );
    }

    #[test]
    fn empty_labels_print_as_empty_selector() {
        assert_eq!(Labels::default().to_string(), "{}");
        assert_eq!(Labels::named("x").to_string(), "x");
    }
}
