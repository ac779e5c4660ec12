//! Paths as the host sees them (`TargetPath`) and the well-known system paths
//! gpu-setup reads. Resolving a host path under `--root` happens only in
//! [`TargetPath::under`].

use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// An absolute, normalised path as the host sees it, such as
/// `/etc/containers/containers.conf`. Never contains `.`, `..` or empty
/// components, so it cannot climb out of a `--root`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct TargetPath(String);

impl TryFrom<String> for TargetPath {
    type Error = PathError;
    fn try_from(raw: String) -> Result<Self, PathError> {
        TargetPath::new(&raw)
    }
}

impl From<TargetPath> for String {
    fn from(p: TargetPath) -> String {
        p.0
    }
}

/// Why a string is not a valid [`TargetPath`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PathError {
    /// The path does not start with `/`.
    #[error("`{0}` is not an absolute path")]
    NotAbsolute(String),
    /// The path has a `..` component.
    #[error("`{0}` contains `..`")]
    ParentComponent(String),
    /// The path is `/` or ends in `/` where a file is needed.
    #[error("`{0}` does not name a file")]
    NoFileName(String),
    /// The path holds a NUL byte or a newline.
    #[error("`{0}` contains a NUL byte or a line break")]
    BadCharacter(String),
}

impl TargetPath {
    /// Parses and normalises an absolute path (`//` and `.` are folded away).
    pub fn new(raw: &str) -> Result<Self, PathError> {
        if !raw.starts_with('/') {
            return Err(PathError::NotAbsolute(raw.to_owned()));
        }
        if raw.contains(['\0', '\n', '\r']) {
            return Err(PathError::BadCharacter(raw.escape_debug().to_string()));
        }
        let mut out = String::with_capacity(raw.len());
        for part in raw.split('/') {
            match part {
                "" | "." => {}
                ".." => return Err(PathError::ParentComponent(raw.to_owned())),
                p => {
                    out.push('/');
                    out.push_str(p);
                }
            }
        }
        if out.is_empty() {
            out.push('/');
        }
        Ok(Self(out))
    }

    /// Parses a path that must name a file (not `/`, no trailing `/`).
    pub fn file(raw: &str) -> Result<Self, PathError> {
        let p = Self::new(raw)?;
        if p.0 == "/" || raw.ends_with('/') {
            return Err(PathError::NoFileName(raw.to_owned()));
        }
        Ok(p)
    }

    /// The path as text, e.g. `/etc/containers/containers.conf`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The last component (`containers.conf`); empty for `/`.
    pub fn file_name(&self) -> &str {
        self.0.rsplit('/').next().unwrap_or("")
    }

    /// The parent directory; `None` for `/`.
    pub fn parent(&self) -> Option<TargetPath> {
        if self.0 == "/" {
            return None;
        }
        match self.0.rfind('/') {
            Some(0) => Some(Self("/".to_owned())),
            Some(i) => Some(Self(self.0[..i].to_owned())),
            None => None,
        }
    }

    /// This directory, its parent, and so on up to `/`, outermost first.
    pub fn ancestors(&self) -> Vec<TargetPath> {
        let mut out = Vec::new();
        let mut cur = self.parent();
        while let Some(p) = cur {
            cur = p.parent();
            out.push(p);
        }
        out.reverse();
        out
    }

    /// A child of this directory. `name` must be a single component.
    pub fn join(&self, name: &str) -> Result<TargetPath, PathError> {
        if name.contains('/') || name == ".." || name == "." || name.is_empty() {
            return Err(PathError::NoFileName(format!("{}/{name}", self.0)));
        }
        Self::new(&format!("{}/{name}", self.0))
    }

    /// Whether `self` is `dir` or lies below it.
    pub fn starts_with(&self, dir: &TargetPath) -> bool {
        dir.0 == "/"
            || self.0 == dir.0
            || (self.0.starts_with(&dir.0) && self.0.as_bytes().get(dir.0.len()) == Some(&b'/'))
    }

    /// The real location of this path when `root` is treated as `/`.
    /// This is the only place a host path is joined to the root.
    pub fn under(&self, root: &Path) -> PathBuf {
        root.join(self.0.trim_start_matches('/'))
    }
}

impl fmt::Display for TargetPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Kernel filesystems: nothing there is a configuration file.
const KERNEL_DIRS: [&str; 3] = ["/proc", "/sys", "/dev"];

/// Why gpu-setup would never manage (write, restore or delete) a file at
/// `path`, if so. Settings, saved plans and journal manifests are all held
/// to this rule, so a forged manifest cannot name a program, a sudoers
/// drop-in or a kernel interface.
pub fn managed_path_problem(path: &TargetPath) -> Option<String> {
    let name = path.file_name();
    // The name endings of the files gpu-setup manages: every role's.
    let suffixes = crate::roles::Role::all_suffixes();
    if !suffixes
        .iter()
        .any(|s| name.len() > s.len() && name.ends_with(s))
    {
        return Some(format!("its name does not end in {}", suffixes.join(", ")));
    }
    if let Some(dir) = KERNEL_DIRS
        .iter()
        .find(|d| path.starts_with(&TargetPath(d.to_string())))
    {
        return Some(format!("it is under {dir}, a kernel filesystem"));
    }
    None
}

/// Well-known system paths and names, declared once.
pub mod well_known {
    /// The drop-in gpu-setup owns by default.
    pub const DEFAULT_DROPIN: &str = "/etc/containers/containers.conf.d/99-nvidia.conf";
    /// The vendor's main containers.conf.
    pub const USR_CONTAINERS_CONF: &str = "/usr/share/containers/containers.conf";
    /// The admin's main containers.conf.
    pub const ETC_CONTAINERS_CONF: &str = "/etc/containers/containers.conf";
    /// The vendor's containers directory (Podman 6 reads drop-in dirs
    /// under it and under [`ETC_CONTAINERS_DIR`]).
    pub const USR_CONTAINERS_DIR: &str = "/usr/share/containers";
    /// The admin's containers directory.
    pub const ETC_CONTAINERS_DIR: &str = "/etc/containers";
    /// The rootless users' main file (Podman 5.7 to 5.x).
    pub const ROOTLESS_MAIN: &str = "/etc/containers/containers.rootless.conf";
    /// Its drop-in directory (with a `<UID>/` below).
    pub const ROOTLESS_DROPIN_DIR: &str = "/etc/containers/containers.rootless.conf.d";
    /// Vendor drop-ins (read by Podman 6 and later).
    pub const USR_DROPIN_DIR: &str = "/usr/share/containers/containers.conf.d";
    /// Admin drop-ins (read since Podman 3.3).
    pub const ETC_DROPIN_DIR: &str = "/etc/containers/containers.conf.d";
    /// Podman's only default hooks directory.
    pub const DEFAULT_HOOKS_DIR: &str = "/usr/share/containers/oci/hooks.d";
    /// The NVIDIA hook file.
    pub const DEFAULT_HOOK_FILE: &str = "/usr/share/containers/oci/hooks.d/oci-nvidia-hook.json";
    /// The NVIDIA Container Toolkit configuration.
    pub const DEFAULT_NVIDIA_CONFIG: &str = "/etc/nvidia-container-runtime/config.toml";
    /// The NVIDIA OCI runtime.
    pub const DEFAULT_RUNTIME_PATH: &str = "/usr/bin/nvidia-container-runtime";
    /// The hook binary's pre-v1.11 name (kept as a symlink by newer packages).
    pub const DEFAULT_HOOK_PATH: &str = "/usr/bin/nvidia-container-toolkit";
    /// The hook binary's name since toolkit v1.11.
    pub const MODERN_HOOK_PATH: &str = "/usr/bin/nvidia-container-runtime-hook";
    /// The runtime name Podman's `--runtime` selects.
    pub const DEFAULT_RUNTIME_NAME: &str = "nvidia";
    /// Directories holding CDI specs.
    pub const CDI_DIRS: [&str; 2] = ["/etc/cdi", "/var/run/cdi"];
    /// The CDI spec `--strategy cdi` writes by default.
    pub const DEFAULT_CDI_SPEC: &str = "/etc/cdi/nvidia.yaml";
    /// The NVIDIA CLI that generates CDI specs.
    pub const DEFAULT_NVIDIA_CTK: &str = "/usr/bin/nvidia-ctk";
    /// The spec NVIDIA's `nvidia-cdi-refresh.service` writes by default
    /// (its `Environment=NVIDIA_CTK_CDI_OUTPUT_FILE_PATH=`, toolkit
    /// v1.18.0 to v1.20.0).
    pub const REFRESH_SPEC: &str = "/var/run/cdi/nvidia.yaml";
    /// The environment file NVIDIA's `nvidia-cdi-refresh.service` reads
    /// (`EnvironmentFile=-/etc/nvidia-container-toolkit/nvidia-cdi-refresh.env`,
    /// deployments/systemd/nvidia-cdi-refresh.service, toolkit v1.18.0 to
    /// v1.20.0). A package upgrade keeps it (a conffile), so moving the
    /// output there lasts where `systemctl disable` does not.
    pub const REFRESH_ENV: &str = "/etc/nvidia-container-toolkit/nvidia-cdi-refresh.env";
    /// Where systemd unit files live, in the order systemd prefers them;
    /// the first is the admin's, where `systemctl enable` links units.
    pub const UNIT_DIRS: [&str; 4] = [
        "/etc/systemd/system",
        "/usr/local/lib/systemd/system",
        "/usr/lib/systemd/system",
        "/lib/systemd/system",
    ];
    /// Where dpkg keeps its per-package file lists.
    pub const DPKG_INFO: &str = "/var/lib/dpkg/info";
    /// dpkg's database of installed packages and their versions (dpkg(1),
    /// "FILES"; deb822 paragraphs).
    pub const DPKG_STATUS: &str = "/var/lib/dpkg/status";
    /// Where rpm keeps its database (RHEL 9 and Fedora moved it to
    /// /usr/lib/sysimage/rpm and keep a link at the old place).
    pub const RPM_DBS: [&str; 2] = ["/usr/lib/sysimage/rpm", "/var/lib/rpm"];
    /// The running system's rpm, where distributions install it.
    pub const RPM_PROGRAMS: [&str; 2] = ["/usr/bin/rpm", "/bin/rpm"];
    /// The usual `$PATH` of a root shell, for hosts whose `$PATH` is unknown.
    pub const DEFAULT_PATH_DIRS: [&str; 6] = [
        "/usr/local/sbin",
        "/usr/local/bin",
        "/usr/sbin",
        "/usr/bin",
        "/sbin",
        "/bin",
    ];
    /// Where transactions, backups and the lock live by default.
    pub const DEFAULT_STATE_DIR: &str = "/var/lib/gpu-setup";
    /// The host's own profile: its desired state (gpu-setup.toml(5)).
    pub const HOST_PROFILE: &str = "/etc/gpu-setup.toml";
    /// The example profile the packages install.
    pub const EXAMPLE_PROFILE: &str = "/usr/share/doc/gpu-setup/examples/gpu-setup.toml";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_and_rejects() {
        assert_eq!(
            TargetPath::new("//etc/./x//y").unwrap().as_str(),
            "/etc/x/y"
        );
        assert_eq!(TargetPath::new("/").unwrap().as_str(), "/");
        assert!(matches!(
            TargetPath::new("etc/x"),
            Err(PathError::NotAbsolute(_))
        ));
        assert!(matches!(
            TargetPath::new("/etc/../x"),
            Err(PathError::ParentComponent(_))
        ));
        assert!(matches!(
            TargetPath::file("/etc/"),
            Err(PathError::NoFileName(_))
        ));
        assert!(matches!(
            TargetPath::file("/"),
            Err(PathError::NoFileName(_))
        ));
    }

    #[test]
    fn only_configuration_files_are_managed() {
        let problem = |p: &str| managed_path_problem(&TargetPath::new(p).unwrap());
        for ok in [
            "/etc/containers/containers.conf.d/99-nvidia.conf",
            "/etc/nvidia-container-runtime/config.toml",
            "/usr/share/containers/oci/hooks.d/oci-nvidia-hook.json",
            "/etc/cdi/nvidia.yaml",
        ] {
            assert_eq!(problem(ok), None, "{ok}");
        }
        assert_eq!(
            problem("/usr/local/bin/rootsh").unwrap(),
            "its name does not end in .conf, .toml, .json, .yaml"
        );
        assert_eq!(
            problem("/etc/sudoers.d/x").unwrap(),
            "its name does not end in .conf, .toml, .json, .yaml"
        );
        assert_eq!(
            problem("/etc/.conf").unwrap(),
            "its name does not end in .conf, .toml, .json, .yaml"
        );
        assert_eq!(
            problem("/proc/sys/kernel/x.conf").unwrap(),
            "it is under /proc, a kernel filesystem"
        );
    }

    #[test]
    fn parents_and_prefixes() {
        let p = TargetPath::new("/etc/containers/x.conf").unwrap();
        assert_eq!(p.parent().unwrap().as_str(), "/etc/containers");
        assert_eq!(p.file_name(), "x.conf");
        let names: Vec<_> = p.ancestors().iter().map(|a| a.to_string()).collect();
        assert_eq!(names, ["/", "/etc", "/etc/containers"]);
        assert!(p.starts_with(&TargetPath::new("/etc").unwrap()));
        assert!(!p.starts_with(&TargetPath::new("/et").unwrap()));
        assert_eq!(
            p.under(Path::new("/tmp/r")),
            PathBuf::from("/tmp/r/etc/containers/x.conf")
        );
    }
}
