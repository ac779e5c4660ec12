//! Facts about how Podman will be run on the host that change which files it
//! reads and which runtime it picks, gathered by the caller (the planner
//! does not read the environment or run programs).

use crate::paths::TargetPath;
use crate::upstream::{PodmanVersion, ToolkitVersion};

/// Where a version gpu-setup follows came from.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case", tag = "from", content = "detail")]
pub enum VersionSource {
    /// `--podman-version` on the command line.
    Flag,
    /// The root's dpkg database (`/var/lib/dpkg/status`): the package and
    /// its full version.
    Dpkg(String),
    /// The root's rpm database: the package and its full version.
    Rpm(String),
    /// The program itself (`podman --version`), on the running system.
    Program(String),
}

impl std::fmt::Display for VersionSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            VersionSource::Flag => f.write_str("--podman-version"),
            VersionSource::Dpkg(p) => write!(f, "dpkg: {p}"),
            VersionSource::Rpm(p) => write!(f, "rpm: {p}"),
            VersionSource::Program(p) => write!(f, "`{p}`"),
        }
    }
}

/// A version and where it came from.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Detected<V> {
    /// The version.
    pub version: V,
    /// Where it was read.
    pub source: VersionSource,
}

/// How Podman is run, as far as it changes what it reads and finds.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HostFacts {
    /// Podman's version, when known (`podman --version`, or
    /// `--podman-version`); unknown: the rules of any released Podman.
    pub podman_version: Option<PodmanVersion>,
    /// Where the Podman version came from (`None` with the version).
    pub podman_source: Option<VersionSource>,
    /// The NVIDIA Container Toolkit's version, when known (the root's
    /// package database, or `nvidia-ctk --version` on the running system).
    pub toolkit_version: Option<ToolkitVersion>,
    /// Where the toolkit version came from.
    pub toolkit_source: Option<VersionSource>,
    /// Why a version is unknown (no package database names it and no
    /// program could tell), for the note plan and doctor print.
    pub unknown_why: Option<String>,
    /// `$CONTAINERS_CONF`: when set, Podman reads this file and no other
    /// (no main files, no drop-ins, no user files).
    pub containers_conf_env: Option<TargetPath>,
    /// `$CONTAINERS_CONF_OVERRIDE`: read after everything else (4.5+), even
    /// with `$CONTAINERS_CONF`.
    pub containers_conf_override_env: Option<TargetPath>,
    /// The user's config directory (`$XDG_CONFIG_HOME/containers` or
    /// `~/.config/containers`): read by rootless Podman, and by root too
    /// from Podman 5.0.
    pub user_config_dir: Option<TargetPath>,
    /// The user Podman runs as (0: root); rootless users read more files.
    pub uid: u32,
    /// The user running gpu-setup (0 unless told): a managed file owned by
    /// anyone else but root is handed to root (or this user) by apply.
    pub caller_uid: u32,
    /// Where Podman looks runtimes up by name (`$PATH`); empty: the usual
    /// system directories.
    pub path_dirs: Vec<TargetPath>,
    /// The packages that own managed files (dpkg's lists under the root,
    /// `rpm -qf`), found by the caller.
    pub packages: Vec<crate::packages::Owner>,
}

impl HostFacts {
    /// Whether Podman runs rootless.
    pub fn rootless(&self) -> bool {
        self.uid != 0
    }

    /// The directories runtimes are looked up in by name.
    pub fn path_dirs(&self) -> Vec<TargetPath> {
        if !self.path_dirs.is_empty() {
            return self.path_dirs.clone();
        }
        crate::paths::well_known::DEFAULT_PATH_DIRS
            .iter()
            .filter_map(|d| TargetPath::new(d).ok())
            .collect()
    }
}
