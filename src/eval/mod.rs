//! Measuring forecasts against what happened: metrics, rolling-origin backtests and the M4
//! competition's protocol.

pub mod backtest;
pub mod m4;
pub mod metrics;
mod score;

pub use score::{score, IntervalScore, Scores};
