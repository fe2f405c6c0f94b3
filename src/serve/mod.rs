//! `prescale serve`: the engine in front of Kubernetes.
//!
//! A long-running server that keeps fitted models fresh on live Prometheus history (or files,
//! for trials) and hands its scaling decisions to Kubernetes two ways, both reading the same
//! published decisions and neither waiting on a fit:
//!
//! - the external metrics API (`external.metrics.k8s.io/v1beta1`, [`api`]) behind the
//!   aggregation layer, for clusters whose HPAs read External metrics directly;
//! - a KEDA external scaler ([`keda`], gRPC), for clusters that already run KEDA (a cluster
//!   has one `v1beta1.external.metrics.k8s.io` APIService, and KEDA holds it).
//!
//! [`engine`] runs the refresh loop's work with the planner `simulate` replays
//! ([`crate::scale::planner`]), [`snapshot`] holds what is published and persisted,
//! [`config`] reads the YAML, [`tls`] and [`listener`] serve it securely and bounded, and
//! [`telemetry`] is `/metrics`.

pub mod api;
pub mod audit_trail;
pub mod check;
pub mod config;
pub mod engine;
pub mod keda;
pub mod listener;
pub mod quantity;
pub mod selector;
pub mod server;
pub mod snapshot;
pub mod telemetry;
pub mod tls;

pub use check::ConfigCheck;
pub use config::{FilesAt, Overrides, ServeConfig};
pub use server::{run, ServeError, Started};
