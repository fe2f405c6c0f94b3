//! From forecasts to replicas.
//!
//! - [`behavior`]: the HPA's stabilization windows and scaling policies, modelled on the
//!   Kubernetes controller so replays scale as a cluster would.
//! - [`hpa`]: the HPA's reactive replica calculation for an external metric, the baseline a
//!   predictive policy must beat.
//! - [`config`]: a workload's YAML configuration, validated with every problem listed.
//! - [`policy`]: the predictive policy, forecast quantiles to replicas with a reason.
//! - [`planner`]: the decision path the replay and the server share: forecasts kept current
//!   between refits, calibrated headroom, the value served at each HPA sync.
//! - [`refit`]: one refit (fit for the horizon, forecast, error autocorrelation), made the
//!   same way by the replay and the server.
//! - [`replay`]: replays a real trace under the reactive, predictive and hybrid policies.
//! - [`frontier`]: cost against shortfall: each policy replayed along a sweep of its knob,
//!   compared with the HPA at each of its targets.
//! - [`replay_config`]: a replay's settings in time units, turned into a trace's steps.
//! - [`score`]: 0–100 scores and a grade for a replayed policy.
//! - [`advice`]: headroom advice, measured by replaying again.
//! - [`output`]: a replay's summary records and step-by-step table.

pub mod advice;
pub mod behavior;
pub mod config;
pub mod frontier;
pub mod hpa;
pub mod output;
pub mod planner;
pub mod policy;
pub mod refit;
pub mod replay;
pub mod replay_config;
pub mod score;
