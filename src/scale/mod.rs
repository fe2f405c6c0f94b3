//! From forecasts to replicas.
//!
//! - [`behavior`]: the HPA's stabilization windows and scaling policies, modelled on the
//!   Kubernetes controller so replays scale as a cluster would.
//! - [`hpa`]: the HPA's reactive replica calculation for an external metric, the baseline a
//!   predictive policy must beat.
//! - [`config`]: a workload's YAML configuration, validated with every problem listed.
//! - [`policy`]: the predictive policy, forecast quantiles to replicas with a reason.
//! - [`replay`]: replays a real trace under the reactive, predictive and hybrid policies.
//! - [`score`]: 0–100 scores and a grade for a replayed policy.

pub mod behavior;
pub mod config;
pub mod hpa;
pub mod policy;
pub mod replay;
pub mod score;
