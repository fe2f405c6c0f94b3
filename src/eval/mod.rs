//! Measuring forecasts against what happened.

pub mod metrics;
