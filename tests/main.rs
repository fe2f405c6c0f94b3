//! prescale's integration tests: real files, a real Prometheus, the built binary.
//!
//! One test binary with a module per area (`autotests = false` in Cargo.toml), so the heavy
//! dependencies are linked once rather than once per file.

mod arima;
mod audit;
mod auto;
mod cli;
mod common;
mod compliance;
mod deploy;
mod hostile;
mod layers;
mod lstm;
mod m4;
mod models;
mod notebook;
mod otlp;
mod prometheus;
mod prophet;
mod serve;
mod simulate;
mod sources;
