//! Environment variables gpu-setup reads, declared in one place, and the host
//! facts derived from them.

use std::ffi::OsString;
use std::path::Path;

use gpu_setup_apply::journal::Actor;
use gpu_setup_plan::{HostFacts, TargetPath};

/// Log level when `--log-level` is not given (read by clap).
pub const GPU_SETUP_LOG: &str = "GPU_SETUP_LOG";
/// Any non-empty value turns colour off in `--color auto`.
pub const NO_COLOR: &str = "NO_COLOR";
/// Podman reads this file and no other containers.conf.
pub const CONTAINERS_CONF: &str = "CONTAINERS_CONF";
/// Podman (4.5+) reads this file after every other containers.conf.
pub const CONTAINERS_CONF_OVERRIDE: &str = "CONTAINERS_CONF_OVERRIDE";
/// Where Podman looks runtimes up by name.
pub const PATH: &str = "PATH";
/// A rootless user's config home (default `$HOME/.config`).
pub const XDG_CONFIG_HOME: &str = "XDG_CONFIG_HOME";
/// A rootless user's home.
pub const HOME: &str = "HOME";
/// Set by sudo to the user who ran it; recorded in the journal.
pub const SUDO_USER: &str = "SUDO_USER";
// The test-only GPU_SETUP_TEST_* variables exist only in the test build:
// see `gpu_setup_apply::fs::test_hooks`.

/// Whether `NO_COLOR` asks for no colour.
pub fn no_color() -> bool {
    std::env::var_os(NO_COLOR).is_some_and(|v| !v.is_empty())
}

/// Facts about how Podman will be run from this environment: the files
/// `$CONTAINERS_CONF` and `$CONTAINERS_CONF_OVERRIDE` name, the user's
/// config directory (read by rootless Podman, and by root from 5.0), the
/// user, and `$PATH`. Paths are host paths, read under `--root` like all
/// others.
pub fn host_facts() -> HostFacts {
    host_facts_from(nix::unistd::geteuid().as_raw(), |name| {
        std::env::var_os(name)
    })
}

fn host_facts_from(uid: u32, var: impl Fn(&str) -> Option<OsString>) -> HostFacts {
    let path = |value: Option<OsString>| {
        value
            .and_then(|v| v.into_string().ok())
            .filter(|s| !s.is_empty())
            .and_then(|s| TargetPath::new(&s).ok())
    };
    // containers/storage pkg/homedir GetConfigHome: $XDG_CONFIG_HOME, else
    // $HOME/.config.
    let config_home = path(var(XDG_CONFIG_HOME))
        .or_else(|| path(var(HOME)).and_then(|h| TargetPath::new(&format!("{h}/.config")).ok()));
    let path_dirs = var(PATH)
        .map(|p| {
            std::env::split_paths(&p)
                .filter_map(|d| d.to_str().and_then(|s| TargetPath::new(s).ok()))
                .collect()
        })
        .unwrap_or_default();
    HostFacts {
        containers_conf_env: path(var(CONTAINERS_CONF)),
        containers_conf_override_env: path(var(CONTAINERS_CONF_OVERRIDE)),
        user_config_dir: config_home.and_then(|c| c.join("containers").ok()),
        uid,
        path_dirs,
        ..HostFacts::default()
    }
}

/// Who runs this process, for the journal.
pub fn actor() -> Actor {
    let uid = nix::unistd::geteuid();
    let user = nix::unistd::User::from_uid(uid)
        .ok()
        .flatten()
        .map(|u| u.name)
        .unwrap_or_else(|| uid.to_string());
    Actor {
        user,
        uid: uid.as_raw(),
        gid: nix::unistd::getegid().as_raw(),
        sudo_user: std::env::var(SUDO_USER).ok().filter(|s| !s.is_empty()),
        command: std::env::args_os()
            .map(|a| a.to_string_lossy().into_owned())
            .collect(),
    }
}

/// Whether a path names the real root (facts from the environment describe
/// the running system; for other roots they are still read under the root).
pub fn is_real_root(root: &Path) -> bool {
    root == Path::new("/")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<OsString> {
        move |name| {
            pairs
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| OsString::from(v))
        }
    }

    #[test]
    fn root_has_a_user_config_too() {
        // Podman 5.0+ reads root's ~/.config/containers (the rules decide).
        let f = host_facts_from(
            0,
            vars(&[
                ("HOME", "/root"),
                ("CONTAINERS_CONF", "/etc/c.conf"),
                ("CONTAINERS_CONF_OVERRIDE", "/etc/o.conf"),
            ]),
        );
        assert_eq!(
            f.user_config_dir.unwrap().as_str(),
            "/root/.config/containers"
        );
        assert_eq!(f.containers_conf_env.unwrap().as_str(), "/etc/c.conf");
        assert_eq!(
            f.containers_conf_override_env.unwrap().as_str(),
            "/etc/o.conf"
        );
        // No $PATH given: the planner falls back to the usual directories.
        assert!(f.path_dirs.is_empty());
    }

    #[test]
    fn rootless_user_config_follows_xdg_then_home() {
        let f = host_facts_from(
            1000,
            vars(&[("HOME", "/home/u"), ("PATH", "/usr/bin:relative:/bin")]),
        );
        assert_eq!(
            f.user_config_dir.unwrap().as_str(),
            "/home/u/.config/containers"
        );
        assert_eq!(f.uid, 1000);
        let dirs: Vec<&str> = f.path_dirs.iter().map(|d| d.as_str()).collect();
        assert_eq!(dirs, ["/usr/bin", "/bin"]);
        let f = host_facts_from(
            1000,
            vars(&[("HOME", "/home/u"), ("XDG_CONFIG_HOME", "/cfg")]),
        );
        assert_eq!(f.user_config_dir.unwrap().as_str(), "/cfg/containers");
        let f = host_facts_from(1000, vars(&[("CONTAINERS_CONF", "relative.conf")]));
        assert_eq!(f.containers_conf_env, None);
    }
}
