//! Which package owns a file gpu-setup manages, and what that package
//! manager does to the file on upgrade and removal.
//!
//! dpkg records each package's files in `/var/lib/dpkg/info/PKG.list` and
//! its conffiles in `PKG.conffiles` (read here, under the root); rpm keeps
//! a database only `rpm` itself reads (the CLI runs `rpm --root R -qf`).
//! What each does to a file, by kind (dpkg(1) "conffiles", the RPM
//! packaging guide's `%config`):
//!
//! - a plain package file is overwritten by every upgrade of the package and
//!   deleted with it (`rpm -V` and `dpkg --verify` report local changes);
//! - a dpkg conffile keeps local changes on upgrade unless the package ships
//!   a new version of it, and then dpkg asks; without a terminal it fails
//!   to configure the package (`--force-confold` keeps the local one);
//!   `remove` keeps it, `purge` deletes it;
//! - an rpm `%config` file: when the new package version changes it, rpm
//!   installs the package's and saves the local one as `FILE.rpmsave`;
//!   erasing the package saves a modified one as `.rpmsave` too;
//! - an rpm `%config(noreplace)` file keeps local changes and gets the
//!   package's new version as `FILE.rpmnew`.

use serde::{Deserialize, Serialize};

use crate::observe::{Observe, Observed};
use crate::paths::TargetPath;

/// The package manager that owns a file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Manager {
    /// Debian, Ubuntu.
    Dpkg,
    /// RHEL, Fedora, SUSE.
    Rpm,
}

/// How the package holds the file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FileKind {
    /// A plain package file.
    Plain,
    /// A dpkg conffile.
    Conffile,
    /// An rpm `%config` file.
    Config,
    /// An rpm `%config(noreplace)` file.
    ConfigNoreplace,
}

/// A managed file that a package owns.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Owner {
    /// The file.
    pub path: TargetPath,
    /// The package's name.
    pub package: String,
    /// Its package manager.
    pub manager: Manager,
    /// How the package holds the file.
    pub kind: FileKind,
}

impl Owner {
    /// What the package manager does to the file on upgrade and removal.
    pub fn behaviour(&self) -> String {
        let p = &self.package;
        match (self.manager, self.kind) {
            (Manager::Dpkg, FileKind::Conffile) => format!(
                "a dpkg conffile: an upgrade of {p} that ships a new version of it asks whether to keep this one, and without a terminal dpkg fails to configure {p} (--force-confold keeps this one); `dpkg --remove` keeps it, `dpkg --purge` deletes it"
            ),
            (Manager::Dpkg, _) => format!(
                "a plain dpkg file: every upgrade of {p} overwrites it and removing {p} deletes it"
            ),
            (Manager::Rpm, FileKind::Config) => format!(
                "an rpm %config file: an upgrade of {p} that changes it installs the package's copy and keeps this one as {}.rpmsave; erasing {p} saves it as .rpmsave",
                self.path
            ),
            (Manager::Rpm, FileKind::ConfigNoreplace) => format!(
                "an rpm %config(noreplace) file: upgrades of {p} keep it and put the package's copy in {}.rpmnew",
                self.path
            ),
            (Manager::Rpm, _) => format!(
                "a plain rpm file: every upgrade of {p} overwrites it (`rpm -V` reports it modified) and erasing {p} deletes it"
            ),
        }
    }
}

/// The largest dpkg status file read (a desktop's is a few MiB).
pub const DPKG_STATUS_LIMIT: u64 = 64 << 20;

/// The packages that carry Podman, by package manager name.
pub const PODMAN_PACKAGES: [&str; 1] = ["podman"];

/// The packages that carry the NVIDIA Container Toolkit, preferred first:
/// from v1.11 `nvidia-container-toolkit-base` holds nvidia-ctk and the
/// runtime, and `nvidia-container-toolkit` the hook; both carry the same
/// version.
pub const TOOLKIT_PACKAGES: [&str; 2] =
    ["nvidia-container-toolkit-base", "nvidia-container-toolkit"];

/// The installed version of `package` in a dpkg status file: the
/// `Version` of its paragraph whose `Status` is `install ok installed`
/// (or any `... installed` state). `None` when it is not installed.
pub fn dpkg_installed_version(status: &str, package: &str) -> Option<String> {
    status.split("\n\n").find_map(|para| {
        let mut name = None;
        let mut state = None;
        let mut version = None;
        for line in para.lines() {
            if let Some(v) = line.strip_prefix("Package:") {
                name = Some(v.trim());
            } else if let Some(v) = line.strip_prefix("Status:") {
                state = Some(v.trim());
            } else if let Some(v) = line.strip_prefix("Version:") {
                version = Some(v.trim());
            }
        }
        let installed = state.is_some_and(|s| s.split_whitespace().nth(2) == Some("installed"));
        (name == Some(package) && installed)
            .then(|| version.map(str::to_owned))
            .flatten()
    })
}

/// The upstream part of a package version: `1:5.4.2+ds1-2` is 5.4.2
/// (Debian's epoch and revision, rpm's release dropped).
pub fn upstream_version(package_version: &str) -> Option<crate::upstream::Version> {
    let no_epoch = package_version
        .split_once(':')
        .map_or(package_version, |(_, v)| v);
    crate::upstream::Version::parse(no_epoch)
}

/// The first of `packages` dpkg has installed under the root, with its
/// upstream version: `(package version, version)`.
pub fn dpkg_version(
    host: &dyn Observe,
    packages: &[&str],
) -> Option<(String, crate::upstream::Version)> {
    let path = TargetPath::new(crate::paths::well_known::DPKG_STATUS).ok()?;
    let Ok(Observed::File { bytes, .. }) = host.large_file(&path, DPKG_STATUS_LIMIT) else {
        return None;
    };
    let status = std::str::from_utf8(&bytes).ok()?;
    packages.iter().find_map(|p| {
        let full = dpkg_installed_version(status, p)?;
        let v = upstream_version(&full)?;
        Some((format!("{p} {full}"), v))
    })
}

/// The dpkg packages that own `paths`, from the `*.list` files under the
/// root (the files `dpkg -S` reads). A list that cannot be read is skipped.
pub fn dpkg_owners(host: &dyn Observe, paths: &[TargetPath]) -> Vec<Owner> {
    let Ok(info) = TargetPath::new(crate::paths::well_known::DPKG_INFO) else {
        return Vec::new();
    };
    let names = host.list(&info).ok().flatten().unwrap_or_default();
    let read = |name: &str| -> Option<String> {
        let p = info.join(name).ok()?;
        match host.file(&p) {
            Ok(Observed::File { bytes, .. }) => String::from_utf8(bytes).ok(),
            _ => None,
        }
    };
    let mut out = Vec::new();
    for name in &names {
        let Some(package) = name.strip_suffix(".list") else {
            continue;
        };
        let Some(list) = read(name) else {
            continue;
        };
        let owned: Vec<&TargetPath> = paths
            .iter()
            .filter(|p| list.lines().any(|l| l == p.as_str()))
            .collect();
        if owned.is_empty() {
            continue;
        }
        let conffiles = read(&format!("{package}.conffiles")).unwrap_or_default();
        for path in owned {
            let conffile = conffiles
                .lines()
                .any(|l| l.split_whitespace().next() == Some(path.as_str()));
            out.push(Owner {
                path: path.clone(),
                package: package.split(':').next().unwrap_or(package).to_owned(),
                manager: Manager::Dpkg,
                kind: if conffile {
                    FileKind::Conffile
                } else {
                    FileKind::Plain
                },
            });
        }
    }
    out
}

/// Reads `rpm -q --queryformat '[%{FILENAMES}\t%{FILEFLAGS:fflags}\t%{=NAME}\n]'`
/// output: the owners of `paths` (`c` in the flags: `%config`, `n`:
/// `noreplace`).
pub fn rpm_owners(output: &str, paths: &[TargetPath]) -> Vec<Owner> {
    let mut out: Vec<Owner> = Vec::new();
    for line in output.lines() {
        let mut fields = line.split('\t');
        let (Some(file), Some(flags), Some(package)) =
            (fields.next(), fields.next(), fields.next())
        else {
            continue;
        };
        let Some(path) = paths.iter().find(|p| p.as_str() == file) else {
            continue;
        };
        if out.iter().any(|o| o.path == *path && o.package == package) {
            continue;
        }
        let kind = match (flags.contains('c'), flags.contains('n')) {
            (true, true) => FileKind::ConfigNoreplace,
            (true, false) => FileKind::Config,
            _ => FileKind::Plain,
        };
        out.push(Owner {
            path: path.clone(),
            package: package.to_owned(),
            manager: Manager::Rpm,
            kind,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::observe::MemHost;

    fn tp(s: &str) -> TargetPath {
        TargetPath::new(s).unwrap()
    }

    #[test]
    fn dpkg_lists_name_the_owner_and_conffiles_the_kind() {
        let host = MemHost::new()
            .with_file(
                "/var/lib/dpkg/info/nvidia-container-toolkit-base.list",
                "/.\n/etc\n/etc/nvidia-container-runtime\n/etc/nvidia-container-runtime/config.toml\n/usr/bin/nvidia-ctk\n",
            )
            .with_file(
                "/var/lib/dpkg/info/nvidia-container-toolkit-base.conffiles",
                "/etc/nvidia-container-runtime/config.toml\n",
            )
            .with_file(
                "/var/lib/dpkg/info/golang-github-containers-common:amd64.list",
                "/usr/share/containers/containers.conf\n",
            )
            .with_file("/var/lib/dpkg/info/other.list", "/etc/other\n");
        let paths = [
            tp("/etc/nvidia-container-runtime/config.toml"),
            tp("/usr/share/containers/containers.conf"),
            tp("/etc/cdi/nvidia.yaml"),
        ];
        let owners = dpkg_owners(&host, &paths);
        assert_eq!(owners.len(), 2, "{owners:?}");
        let base = owners.iter().find(|o| o.path == paths[1]).unwrap();
        assert_eq!(
            (base.package.as_str(), base.kind),
            ("golang-github-containers-common", FileKind::Plain)
        );
        let nv = owners.iter().find(|o| o.path == paths[0]).unwrap();
        assert_eq!(
            (nv.package.as_str(), nv.manager, nv.kind),
            (
                "nvidia-container-toolkit-base",
                Manager::Dpkg,
                FileKind::Conffile
            )
        );
        assert!(nv.behaviour().starts_with("a dpkg conffile: "));
        assert!(dpkg_owners(&MemHost::new(), &paths).is_empty());
    }

    #[test]
    fn dpkg_status_gives_the_installed_version() {
        // Paragraphs as dpkg writes them (Debian 12 and 13).
        let status = "Package: podman\nStatus: install ok installed\nPriority: optional\nVersion: 4.3.1+ds1-8+deb12u1+b3\nDescription: tool\n long text\n\nPackage: crun\nStatus: deinstall ok config-files\nVersion: 1.8.1-1\n\nPackage: nvidia-container-toolkit-base\nStatus: install ok installed\nVersion: 1.17.9-1\n";
        assert_eq!(
            dpkg_installed_version(status, "podman").as_deref(),
            Some("4.3.1+ds1-8+deb12u1+b3")
        );
        // Removed but its conffiles kept: not installed.
        assert_eq!(dpkg_installed_version(status, "crun"), None);
        assert_eq!(dpkg_installed_version(status, "runc"), None);
        assert_eq!(
            upstream_version("1:5.4.2+ds1-2").unwrap().to_string(),
            "5.4.2"
        );
        assert_eq!(
            upstream_version("4.9.4-12.el9").unwrap().to_string(),
            "4.9.4"
        );
        let host = MemHost::new().with_file(crate::paths::well_known::DPKG_STATUS, status);
        let (full, v) = dpkg_version(&host, &TOOLKIT_PACKAGES).unwrap();
        assert_eq!(
            (full.as_str(), v.to_string().as_str()),
            ("nvidia-container-toolkit-base 1.17.9-1", "1.17.9")
        );
        assert_eq!(dpkg_version(&MemHost::new(), &PODMAN_PACKAGES), None);
    }

    #[test]
    fn rpm_query_output_names_the_owner_and_config_flags() {
        let paths = [
            tp("/usr/share/containers/oci/hooks.d/oci-nvidia-hook.json"),
            tp("/etc/nvidia-container-runtime/config.toml"),
        ];
        let out = "/usr/bin/nvidia-container-runtime-hook\t\tnvidia-container-toolkit\n/usr/share/containers/oci/hooks.d/oci-nvidia-hook.json\t\tnvidia-container-toolkit\n/etc/nvidia-container-runtime/config.toml\tc\tnvidia-container-toolkit-base\n/usr/share/doc/x\td\tx\n";
        let owners = rpm_owners(out, &paths);
        assert_eq!(owners.len(), 2);
        assert_eq!(owners[0].kind, FileKind::Plain);
        assert_eq!(owners[1].kind, FileKind::Config);
        assert!(owners[1]
            .behaviour()
            .contains("/etc/nvidia-container-runtime/config.toml.rpmsave"));
        assert_eq!(rpm_owners("garbage", &paths), []);
        assert_eq!(
            rpm_owners("/etc/nvidia-container-runtime/config.toml\tcn\tp\n", &paths)[0].kind,
            FileKind::ConfigNoreplace
        );
    }
}
