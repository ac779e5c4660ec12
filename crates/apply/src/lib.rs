//! gpu-setup-apply: the only crate that changes the host. [`RootFs`] observes
//! files under a root for the planner; [`transaction`] carries out a plan as
//! one all-or-nothing transaction through the [`fs::Fs`] seam, recorded in
//! the [`journal`], undone by rollback, serialised by the [`lock`].

mod error;
pub mod fs;
pub mod journal;
pub mod local;
pub mod lock;
mod observe;
pub mod safe_path;
pub mod transaction;
pub mod trust;
mod write;

pub use error::{ApplyError, Drift, StepError};
pub use observe::RootFs;
pub use safe_path::{Root, MAX_FILE_BYTES};

#[cfg(test)]
mod transaction_tests;
