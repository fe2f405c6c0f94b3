//! # prescale
//!
//! Forecasts service load from its history and turns the forecast into scaling decisions
//! before the load arrives.
//!
//! ```
//! use prescale::model::{self, ModelSpec};
//! use prescale::series::{Labels, Series};
//!
//! // Two weeks of an hourly load with a daily cycle.
//! let values = (0..24 * 14)
//!     .map(|h| 100.0 + 50.0 * ((h % 24) as f64 / 24.0 * std::f64::consts::TAU).sin())
//!     .collect();
//! let series = Series::new(Labels::named("rps"), 0, 3_600_000, values).unwrap();
//! let model = ModelSpec::named("ets").build().unwrap();
//! let fitted = model::fit(model.as_ref(), &series, &[24]).unwrap();
//! let forecast = fitted.predict(12, &[80.0, 95.0]).unwrap();
//! assert_eq!(forecast.horizon(), 12);
//! assert!(forecast.interval(95.0).is_some());
//! ```
//!
//! ## The data path runs one way
//!
//! ```text
//! source ──► series ──► model::fit ──► Fitted::predict ──► forecast ──► scale::plan ──► Decision
//! (csv, parquet,  (validated,   (one file per model,   (mean, intervals,  (capacity,     ├─► replay (simulate)
//!  m4, prometheus) regular grid)  registry: build)       components)        headroom,     └─► report / scores
//!                                                                            lead time)
//! ```
//!
//! Nothing downstream reaches back upstream: the policy does not know which model made a
//! forecast, a model does not know where its series came from, and the metrics do not know
//! which model they score.
//!
//! ## Modules, lowest layer first
//!
//! A module may use only modules of lower layers (a test, `tests/layers.rs`, reads this table
//! and every `crate::` path in `src/`, and fails on an import of the same layer or above).
//!
//! | layer | module | owns |
//! |---|---|---|
//! | 0 | [`series`] | the regular [`series::Series`], labels, validation, regularize, gaps, counters to rates |
//! | 0 | [`human`] | numbers and errors printed for people |
//! | 0 | [`files`] | atomic writes: a temporary file in the same folder, synced, renamed |
//! | 1 | [`forecast`] | [`forecast::Forecast`]: mean, intervals, components; accuracy metrics (plain data, no I/O) |
//! | 1 | [`source`] | reading series (CSV, Parquet, M4, Prometheus), the loading pipeline ([`source::load_inputs`]), writing tables |
//! | 2 | [`model`] | the [`model::Model`] / [`model::Fitted`] traits, settings and the registry ([`model::build`]), model files |
//! | 3 | [`eval`] | scores, rolling-origin backtests and their summaries, the M4 protocol |
//! | 4 | [`scale`] | the HPA's rules, the predictive policy, workload configs, the replay, frontiers of cost against shortfall, scores and advice |
//! | 5 | [`audit`] | the hash-chained JSONL audit log: append durably, rotate, verify |
//! | 5 | [`report`] | the HTML report: its sections (backtests, replay) and charts |
//! | 6 | [`serve`] | `prescale serve`: configuration, the refresh loop, published decisions, the external metrics API, the KEDA scaler, TLS and front-proxy auth, `/metrics`, state on disk |
//! | 7 | [`compliance`] | what an auditor checks: the data classifier over label keys and values, Rego controls (regorus) for GDPR, HIPAA, SOX and PCI DSS, severity-weighted scores, remediation as a diff |
//! | 7 | [`deploy`] | `prescale deploy render`: the typed Kubernetes manifests that run `serve` in a cluster (Deployment, Service, APIService, RBAC, HPAs, KEDA ScaledObjects) or in many (`clusters`); global traffic weights, failures over windows of the horizon and Istio VirtualServices (`weights`, `downtime`); backtest shards and the Indexed Job that runs them (`shard`, `job`) |
//! | 8 | [`cli`] | the `prescale` command line: parse flags, call the library, print |

pub mod audit;
pub mod cli;
pub mod compliance;
pub mod deploy;
pub mod eval;
pub mod files;
pub mod forecast;
pub mod human;
pub mod model;
pub mod report;
pub mod scale;
pub mod series;
pub mod serve;
pub mod source;
