//! Errors as the user sees them: [`Hinted`], a CLI-level error carrying its
//! own hint, and the lookup of the hint and extra lines of any error chain.

use gpu_setup_apply::local::LocalFileError;
use gpu_setup_apply::ApplyError;
use gpu_setup_plan::{ObserveError, PlanError, ProfileError, SavedPlanError};

/// A CLI-level error that carries its own hint.
#[derive(Debug)]
pub(crate) struct Hinted {
    message: String,
    hint: String,
}

impl Hinted {
    pub(crate) fn new(message: impl Into<String>, hint: impl Into<String>) -> Self {
        Hinted {
            message: message.into(),
            hint: hint.into(),
        }
    }
}

impl std::fmt::Display for Hinted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Hinted {}

/// The hint for the first error in the chain that has one. `sudo`: whether
/// the command accepts `--sudo` (a hint only names flags the command has).
pub(crate) fn hint_of(err: &anyhow::Error, sudo: bool) -> Option<String> {
    // A `Hinted` used as context is only reachable through anyhow's downcast.
    if let Some(h) = err.downcast_ref::<Hinted>() {
        return Some(h.hint.clone());
    }
    err.chain().find_map(|e| {
        if let Some(e) = e.downcast_ref::<Hinted>() {
            Some(e.hint.clone())
        } else if let Some(e) = e.downcast_ref::<PlanError>() {
            e.hint()
        } else if let Some(e) = e.downcast_ref::<ObserveError>() {
            e.hint()
        } else if let Some(e) = e.downcast_ref::<ApplyError>() {
            if sudo && e.needs_root() {
                Some(
                    "run as root, or add --sudo: the managed files and the journal belong to root"
                        .to_owned(),
                )
            } else {
                e.hint()
            }
        } else if let Some(e) = e.downcast_ref::<LocalFileError>() {
            e.hint()
        } else if e.downcast_ref::<SavedPlanError>().is_some() {
            Some("make a new plan with `gpu-setup plan --out FILE`".to_owned())
        } else if e.downcast_ref::<ProfileError>().is_some() {
            Some(format!(
                "the keys are listed in `gpu-setup plan --help` and in the example profile {}",
                gpu_setup_plan::well_known::EXAMPLE_PROFILE
            ))
        } else {
            None
        }
    })
}

/// Extra lines an error shows after its message: the diffs of drifted files.
pub(crate) fn details_of(err: &anyhow::Error) -> Vec<String> {
    match err.downcast_ref::<ApplyError>() {
        Some(ApplyError::Drifted { files, .. }) => files.iter().map(|d| d.diff.clone()).collect(),
        _ => Vec::new(),
    }
}
