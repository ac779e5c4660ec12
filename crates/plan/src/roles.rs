//! The files gpu-setup manages, each by its role: the one list that the
//! planner loops over and that the path checks (names, duplicates, the
//! journal's restore rule), symlink resolution, package owners and the
//! saved-plan size limit iterate. Adding a managed file is a new [`Role`]
//! and the match arms the compiler then asks for.

use crate::desired::DesiredState;
use crate::paths::TargetPath;
use crate::warnings::Warning;

/// A managed file's role.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Role {
    /// The containers.conf (a drop-in by default) with the runtime entry.
    ContainersConf,
    /// The NVIDIA Container Toolkit's config.toml.
    NvidiaConfig,
    /// The OCI hook file (gpu-setup owns it whole).
    HookFile,
    /// The CDI spec of the cdi strategy.
    CdiSpec,
}

impl Role {
    /// Every role, in the order plans list their files.
    pub const ALL: [Role; 4] = [
        Role::ContainersConf,
        Role::NvidiaConfig,
        Role::HookFile,
        Role::CdiSpec,
    ];

    /// The file's path in a desired state.
    pub fn path(self, d: &DesiredState) -> &TargetPath {
        match self {
            Role::ContainersConf => &d.containers_conf,
            Role::NvidiaConfig => &d.nvidia_config,
            Role::HookFile => &d.hook_file,
            Role::CdiSpec => &d.cdi_spec,
        }
    }

    /// The same, to change (symlink resolution).
    pub fn path_mut(self, d: &mut DesiredState) -> &mut TargetPath {
        match self {
            Role::ContainersConf => &mut d.containers_conf,
            Role::NvidiaConfig => &mut d.nvidia_config,
            Role::HookFile => &mut d.hook_file,
            Role::CdiSpec => &mut d.cdi_spec,
        }
    }

    /// The setting's name in messages (`invalid hook file: ...`).
    pub fn setting(self) -> &'static str {
        match self {
            Role::ContainersConf => "containers.conf path",
            Role::NvidiaConfig => "NVIDIA config path",
            Role::HookFile => "hook file",
            Role::CdiSpec => "CDI spec path",
        }
    }

    /// The name endings its reader accepts, and why.
    pub fn suffixes(self) -> (&'static [&'static str], &'static str) {
        match self {
            Role::ContainersConf => (
                &[".conf"],
                "Podman reads only `*.conf` drop-ins and containers.conf files",
            ),
            Role::NvidiaConfig => (&[".toml"], "the NVIDIA toolkit reads a TOML file"),
            Role::HookFile => (&[".json"], "Podman reads only `*.json` hook files"),
            Role::CdiSpec => (
                &[".yaml", ".json"],
                "Podman reads only `*.yaml` and `*.json` CDI specs",
            ),
        }
    }

    /// Every name ending some role accepts (the journal restores only such
    /// files: [`crate::paths::managed_path_problem`]).
    pub fn all_suffixes() -> Vec<&'static str> {
        let mut out: Vec<&'static str> = Vec::new();
        for role in Role::ALL {
            for s in role.suffixes().0 {
                if !out.contains(s) {
                    out.push(s);
                }
            }
        }
        out
    }
}

/// What planning one managed file gives: what becomes of it, why, and what
/// to warn about.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Planned {
    /// What becomes of the file.
    pub after: After,
    /// Why, one line each (shown with the diff).
    pub reasons: Vec<String>,
    /// Findings about this file.
    pub warnings: Vec<Warning>,
}

/// What becomes of a managed file.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) enum After {
    /// Left as it is.
    #[default]
    Keep,
    /// Written with these bytes (no change when they are the file's own).
    Write(Vec<u8>),
    /// Removed (no change when it is absent).
    Remove,
}

impl Planned {
    /// Left as it is.
    pub fn keep() -> Self {
        Planned::default()
    }

    /// Written with `bytes`, for `reasons`.
    pub fn write(bytes: Vec<u8>, reasons: Vec<String>) -> Self {
        Planned {
            after: After::Write(bytes),
            reasons,
            warnings: Vec::new(),
        }
    }

    /// Removed, for `reason`.
    pub fn remove(reason: String) -> Self {
        Planned {
            after: After::Remove,
            reasons: vec![reason],
            warnings: Vec::new(),
        }
    }

    /// With a warning too.
    pub fn warning(mut self, w: Option<Warning>) -> Self {
        self.warnings.extend(w);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_role_has_its_own_path_and_a_suffix() {
        let d = DesiredState::default();
        let mut paths: Vec<&TargetPath> = Role::ALL.iter().map(|r| r.path(&d)).collect();
        paths.dedup();
        assert_eq!(paths.len(), Role::ALL.len());
        for role in Role::ALL {
            let name = role.path(&d).file_name();
            assert!(
                role.suffixes().0.iter().any(|s| name.ends_with(s)),
                "{role:?}"
            );
        }
        assert_eq!(Role::all_suffixes(), [".conf", ".toml", ".json", ".yaml"]);
    }
}
