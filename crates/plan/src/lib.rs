//! gpu-setup-plan: pure planning. A [`DesiredState`] and a read-only view of
//! the host ([`Observe`]) give a [`Plan`]: format-preserving edits of
//! containers.conf and the NVIDIA toolkit's config.toml, the OCI hook file,
//! unified diffs and warnings. Nothing here writes, spawns or reads the clock.

pub mod cdi;
pub mod containers_conf;
pub mod desired;
pub mod doctor;
pub mod error;
pub mod facts;
pub mod hook;
mod nvidia_config;
pub mod observe;
pub mod packages;
pub mod paths;
pub mod plan;
pub mod podman;
pub mod render;
pub mod roles;
pub mod saved;
pub mod settings;
mod toml_doc;
pub mod upstream;
pub mod warnings;

pub use desired::{DesiredState, HealMode, Presence, ProfileError, Settings, Strategy};
pub use error::{error_text, ObserveError, PlanError};
pub use facts::HostFacts;
pub use observe::{Kind, MemHost, Meta, Observe, Observed, Overlay};
pub use paths::{managed_path_problem, well_known, PathError, TargetPath};
pub use plan::{plan, plan_with, Action, Change, Plan};
pub use render::{sha256, text_diff, unified_diff, PlanReport};
pub use saved::{SavedPlan, SavedPlanError};
pub use upstream::{PodmanVersion, ToolkitVersion, Version};
pub use warnings::{Level, Warning};
#[cfg(test)]
mod plan_tests;
#[cfg(test)]
mod prop_tests;
