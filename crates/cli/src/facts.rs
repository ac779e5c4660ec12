//! Host facts, observed once per run, before planning: how Podman is run
//! (the environment, on the real root), which Podman and NVIDIA Container
//! Toolkit versions are installed, and which packages own the managed
//! files. plan, apply, heal, doctor and module mode all plan with these
//! same facts.
//!
//! Versions come from the root's package database first (dpkg's status
//! file, read under `--root` like every other file; then rpm's database),
//! so an image under `--root` gets the same answer as the booted host and
//! a plan costs no program start. Only on the real root, and only when no
//! database names the package, is the program itself asked (`podman
//! --version`, `nvidia-ctk --version`), vetted like every program
//! gpu-setup runs. `--podman-version` wins over all of them.

use std::time::Duration;

use anyhow::Result;
use gpu_setup_apply::RootFs;
use gpu_setup_plan::facts::VersionSource;
use gpu_setup_plan::packages::{dpkg_version, PODMAN_PACKAGES, TOOLKIT_PACKAGES};
use gpu_setup_plan::{HostFacts, PodmanVersion, ToolkitVersion, Version};

use crate::error::Hinted;

/// How long `podman --version` or `nvidia-ctk --version` may take.
const PROGRAM_TIMEOUT: Duration = Duration::from_secs(10);

/// Podman's and the toolkit's versions, and (on the real root) how Podman
/// is run, before the desired state is known (its defaults follow them);
/// the caller adds the package owners of the managed files.
pub(crate) fn versions(
    host: &RootFs,
    real_root: bool,
    podman_flag: Option<&str>,
) -> Result<HostFacts> {
    let mut facts = if real_root {
        crate::env::host_facts()
    } else {
        HostFacts::default()
    };
    facts.caller_uid = nix::unistd::geteuid().as_raw();
    let flag = podman_flag
        .map(|v| {
            PodmanVersion::parse(v).ok_or_else(|| {
                Hinted::new(
                    format!("invalid --podman-version `{v}`"),
                    "give a version such as 4.9.3",
                )
            })
        })
        .transpose()?;
    let rpm = RpmVersions::query(host);
    let podman = match flag {
        Some(v) => Some((v, VersionSource::Flag)),
        None => detect(host, real_root, &PODMAN_PACKAGES, &rpm, "podman")
            .map(|(v, s)| (PodmanVersion(v), s)),
    };
    let toolkit = detect(host, real_root, &TOOLKIT_PACKAGES, &rpm, "nvidia-ctk")
        .map(|(v, s)| (ToolkitVersion(v), s));
    // The toolkit's version matters to doctor's advice, not to what a
    // plan writes: only an unknown Podman is worth a note.
    if podman.is_none() {
        facts.unknown_why = Some(format!(
            "Podman's version is unknown: no package database under the root names it{}",
            if real_root {
                ", and no `podman --version` could be run"
            } else {
                " (programs are run only when --root is `/`)"
            }
        ));
    }
    (facts.podman_version, facts.podman_source) =
        podman.map(|(v, s)| (Some(v), Some(s))).unwrap_or_default();
    (facts.toolkit_version, facts.toolkit_source) =
        toolkit.map(|(v, s)| (Some(v), Some(s))).unwrap_or_default();
    tracing::debug!(podman = ?facts.podman_version, source = ?facts.podman_source, toolkit = ?facts.toolkit_version, "versions");
    Ok(facts)
}

/// A version from dpkg, then rpm, then (on the real root) the program.
fn detect(
    host: &RootFs,
    real_root: bool,
    packages: &[&str],
    rpm: &RpmVersions,
    program: &str,
) -> Option<(Version, VersionSource)> {
    if let Some((full, v)) = dpkg_version(host, packages) {
        return Some((v, VersionSource::Dpkg(full)));
    }
    if let Some((full, v)) = rpm.first_of(packages) {
        return Some((v, VersionSource::Rpm(full)));
    }
    if !real_root {
        return None;
    }
    let path = gpu_setup_plan::doctor::find_executable(host, program)?;
    let trusted = crate::vet::trusted_uids();
    let real = match crate::vet::program(std::path::Path::new(path.as_str()), &trusted) {
        Ok(p) => p,
        Err(u) => {
            tracing::warn!(path = %u.path.display(), problem = %u.problem, "not running {program}");
            return None;
        }
    };
    let mut cmd = std::process::Command::new(&real);
    crate::process::clean_env(&mut cmd);
    cmd.arg("--version");
    let out = crate::process::run_command(cmd, path.as_str(), PROGRAM_TIMEOUT).ok()?;
    let line = crate::process::first_line(&out)?;
    let v = Version::parse(&line)?;
    Some((v, VersionSource::Program(format!("{path} --version"))))
}

/// The versions rpm's database under the root gives for the packages
/// gpu-setup asks about (one query for all of them).
struct RpmVersions {
    /// `(package, full version)`.
    installed: Vec<(String, String)>,
}

impl RpmVersions {
    fn query(host: &RootFs) -> Self {
        let names: Vec<&str> = PODMAN_PACKAGES
            .iter()
            .chain(&TOOLKIT_PACKAGES)
            .copied()
            .collect();
        let installed = crate::packages::rpm_versions(host, &names);
        RpmVersions { installed }
    }

    fn first_of(&self, packages: &[&str]) -> Option<(String, Version)> {
        packages.iter().find_map(|p| {
            let (_, full) = self.installed.iter().find(|(n, _)| n == p)?;
            let v = gpu_setup_plan::packages::upstream_version(full)?;
            Some((format!("{p} {full}"), v))
        })
    }
}
