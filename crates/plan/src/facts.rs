//! Facts about how Podman will be run on the host that change which files it
//! reads, gathered by the caller (the planner does not read the environment).

use crate::paths::TargetPath;

/// How Podman is run, as far as it changes which containers.conf files count.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HostFacts {
    /// `$CONTAINERS_CONF`: when set, Podman reads this file instead of the
    /// main containers.conf files (drop-ins still count).
    pub containers_conf_env: Option<TargetPath>,
    /// The rootless user's config directory (`$XDG_CONFIG_HOME/containers` or
    /// `~/.config/containers`): its containers.conf and drop-ins are read
    /// after the system's. `None` for root.
    pub user_config_dir: Option<TargetPath>,
}
