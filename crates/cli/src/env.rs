//! Environment variables gpu-setup reads, declared in one place, and the host
//! facts derived from them.

use std::ffi::OsString;
use std::path::Path;
use std::time::Duration;

use gpu_setup_apply::fs::{Fault, FaultyFs, OsFs};
use gpu_setup_apply::journal::Actor;
use gpu_setup_plan::{HostFacts, TargetPath};

/// Log level when `--log-level` is not given (read by clap).
pub const GPU_SETUP_LOG: &str = "GPU_SETUP_LOG";
/// Any non-empty value turns colour off in `--color auto`.
pub const NO_COLOR: &str = "NO_COLOR";
/// Podman reads this file instead of the main containers.conf files.
pub const CONTAINERS_CONF: &str = "CONTAINERS_CONF";
/// A rootless user's config home (default `$HOME/.config`).
pub const XDG_CONFIG_HOME: &str = "XDG_CONFIG_HOME";
/// A rootless user's home.
pub const HOME: &str = "HOME";
/// Set by sudo to the user who ran it; recorded in the journal.
pub const SUDO_USER: &str = "SUDO_USER";
/// Test only: abort the process (like `kill -9`) before filesystem step N of
/// a transaction, counting from 0.
pub const GPU_SETUP_TEST_CRASH_AT: &str = "GPU_SETUP_TEST_CRASH_AT";
/// Test only: make filesystem step N fail with an I/O error.
pub const GPU_SETUP_TEST_FAIL_AT: &str = "GPU_SETUP_TEST_FAIL_AT";
/// Test only: sleep this many milliseconds before every filesystem step.
pub const GPU_SETUP_TEST_STEP_DELAY_MS: &str = "GPU_SETUP_TEST_STEP_DELAY_MS";

/// Whether `NO_COLOR` asks for no colour.
pub fn no_color() -> bool {
    std::env::var_os(NO_COLOR).is_some_and(|v| !v.is_empty())
}

/// Facts about how Podman will be run from this environment: which main
/// containers.conf `$CONTAINERS_CONF` names, and, when not root, the user's
/// config directory. Paths are host paths, read under `--root` like all others.
pub fn host_facts() -> HostFacts {
    host_facts_from(nix::unistd::geteuid().is_root(), |name| {
        std::env::var_os(name)
    })
}

fn host_facts_from(is_root: bool, var: impl Fn(&str) -> Option<OsString>) -> HostFacts {
    let path = |value: Option<OsString>| {
        value
            .and_then(|v| v.into_string().ok())
            .and_then(|s| TargetPath::new(&s).ok())
    };
    let user_config_dir = if is_root {
        None
    } else {
        let config_home = path(var(XDG_CONFIG_HOME)).or_else(|| {
            path(var(HOME)).and_then(|h| TargetPath::new(&format!("{h}/.config")).ok())
        });
        config_home.and_then(|c| c.join("containers").ok())
    };
    HostFacts {
        containers_conf_env: path(var(CONTAINERS_CONF)),
        user_config_dir,
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

/// The filesystem every change goes through, with the test-only faults the
/// `GPU_SETUP_TEST_*` variables ask for (none in normal use).
pub fn filesystem() -> FaultyFs<OsFs> {
    let number = |name: &str| std::env::var(name).ok().and_then(|v| v.parse::<u64>().ok());
    let step = |name: &str| number(name).and_then(|n| usize::try_from(n).ok());
    let fault = step(GPU_SETUP_TEST_CRASH_AT)
        .map(Fault::CrashAt)
        .or_else(|| step(GPU_SETUP_TEST_FAIL_AT).map(Fault::FailAt));
    let delay = number(GPU_SETUP_TEST_STEP_DELAY_MS).map(Duration::from_millis);
    FaultyFs::new(OsFs, fault, delay)
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
    fn root_has_no_user_config() {
        let f = host_facts_from(
            true,
            vars(&[("HOME", "/root"), ("CONTAINERS_CONF", "/etc/c.conf")]),
        );
        assert_eq!(f.user_config_dir, None);
        assert_eq!(f.containers_conf_env.unwrap().as_str(), "/etc/c.conf");
    }

    #[test]
    fn rootless_user_config_follows_xdg_then_home() {
        let f = host_facts_from(false, vars(&[("HOME", "/home/u")]));
        assert_eq!(
            f.user_config_dir.unwrap().as_str(),
            "/home/u/.config/containers"
        );
        let f = host_facts_from(
            false,
            vars(&[("HOME", "/home/u"), ("XDG_CONFIG_HOME", "/cfg")]),
        );
        assert_eq!(f.user_config_dir.unwrap().as_str(), "/cfg/containers");
        let f = host_facts_from(false, vars(&[("CONTAINERS_CONF", "relative.conf")]));
        assert_eq!(f, HostFacts::default());
    }
}
