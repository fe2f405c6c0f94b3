//! Measuring forecasts against what happened: scores (from [`crate::forecast::metrics`]),
//! rolling-origin backtests, their summaries and the M4 competition's protocol.

pub mod backtest;
pub mod m4;
mod score;
pub mod summary;

pub use score::{score, IntervalScore, Scores};
pub use summary::{mean_finite, Summary};
