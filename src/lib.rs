//! # prescale
//!
//! Forecasts service load from its history and turns the forecast into scaling decisions
//! before the load arrives.
//!
//! Data flows one way through the modules:
//!
//! ```text
//! source ──► series ──► model::fit ──► FittedModel::predict ──► forecast ──► eval (scores)
//! (csv, parquet,  (validated,   (one file per model,     (mean, intervals,
//!  m4, prometheus) regular grid)  chosen in the registry)  components)
//! ```
//!
//! - [`series`]: the regular [`series::Series`] every module works on; validation,
//!   regularization, gap filling, counters to rates.
//! - [`source`]: CSV, Parquet and M4 files, Prometheus range queries.
//! - [`model`]: the [`model::Model`] / [`model::Fitted`] traits and the registry.
//! - [`forecast`]: the [`forecast::Forecast`] a model returns, and its table form.
//! - [`eval`]: accuracy metrics, rolling-origin backtests, the M4 protocol.
//! - [`scale`]: the HPA's `behavior` rules and its reactive replica calculation (the
//!   baseline the scaling policy is measured against).
//! - [`cli`]: the `prescale` command line, one file per subcommand.
//!
//! Nothing downstream reaches back upstream: a model does not know where its series came
//! from, and the metrics do not know which model made a forecast.

#![warn(missing_docs)]

pub mod cli;
pub mod eval;
pub mod forecast;
pub mod model;
pub mod report;
pub mod scale;
pub mod series;
pub mod source;
