//! Compliance: what prescale's own data and deployment show to an auditor.
//!
//! Today this holds the data classifier ([`classify`](mod@classify)): which label keys and values of the
//! series prescale reads carry personal, health or payment data, reported by metric and label
//! key, never by value. The Rego controls and their scoring are still to come (issue 19).

pub mod classify;

pub use classify::{classify, DataKind, Sighting};
