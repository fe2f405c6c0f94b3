//! From forecasts to replicas.
//!
//! - [`behavior`]: the HPA's stabilization windows and scaling policies, modelled on the
//!   Kubernetes controller so replays scale as a cluster would.
//! - [`hpa`]: the HPA's reactive replica calculation for an external metric, the baseline a
//!   predictive policy must beat.

pub mod behavior;
pub mod hpa;
