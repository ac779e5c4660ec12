//! Which packages own the managed files: dpkg's lists under the root, and
//! `rpm --root R -qf` when the root has an rpm database and `rpm` is
//! installed here (vetted like `nvidia-ctk`: it runs as the caller).

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use gpu_setup_apply::RootFs;
use gpu_setup_plan::packages::{dpkg_owners, rpm_owners, Owner};
use gpu_setup_plan::{DesiredState, Kind, Observe, TargetPath};

/// How long one `rpm` query may take.
const TIMEOUT: Duration = Duration::from_secs(20);

/// Where rpm keeps its database (RHEL 9 and Fedora moved it to
/// /usr/lib/sysimage/rpm and keep a link at the old place). Given to rpm
/// with `--dbpath`: the running system's rpm may have another default
/// (Debian's is ~/.rpmdb).
const RPM_DBS: [&str; 2] = ["/usr/lib/sysimage/rpm", "/var/lib/rpm"];

/// The owners of the files `desired` manages.
pub(crate) fn owners(host: &RootFs, desired: &DesiredState) -> Vec<Owner> {
    let paths = [
        desired.containers_conf.clone(),
        desired.nvidia_config.clone(),
        desired.hook_file.clone(),
        desired.cdi_spec.clone(),
    ];
    let mut out = dpkg_owners(host, &paths);
    out.extend(rpm(host, &paths));
    out
}

/// A query of the rpm database under the root: `rpm --root R --dbpath DB`
/// with the vetted rpm of the running system, in a clean environment;
/// `None` when the root has no rpm database or `rpm` is not installed (or
/// not trusted) here.
fn rpm_command(host: &RootFs) -> Option<Command> {
    // A database directory that holds something (Debian's rpm package
    // leaves an empty /var/lib/rpm).
    let db = RPM_DBS.iter().find(|d| {
        TargetPath::new(d).ok().is_some_and(|p| {
            matches!(host.meta(&p), Ok(Some(m)) if m.kind == Kind::Dir)
                && host.list(&p).ok().flatten().is_some_and(|l| !l.is_empty())
        })
    })?;
    let rpm = ["/usr/bin/rpm", "/bin/rpm"]
        .iter()
        .map(Path::new)
        .find(|p| p.is_file())?;
    let rpm = match crate::vet::program(rpm, &crate::vet::trusted_uids()) {
        Ok(p) => p,
        Err(u) => {
            tracing::warn!(path = %u.path.display(), problem = %u.problem, "not running rpm");
            return None;
        }
    };
    let mut cmd = Command::new(&rpm);
    crate::process::clean_env(&mut cmd);
    cmd.arg("--root").arg(host.root()).args(["--dbpath", db]);
    Some(cmd)
}

/// The rpm owners of `paths`; none when there is no rpm database to ask.
fn rpm(host: &RootFs, paths: &[TargetPath]) -> Vec<Owner> {
    // Only the files that exist: rpm refuses a query for a missing one.
    let existing: Vec<&TargetPath> = paths
        .iter()
        .filter(|p| host.meta(p).ok().flatten().is_some())
        .collect();
    if existing.is_empty() {
        return Vec::new();
    }
    let Some(mut cmd) = rpm_command(host) else {
        return Vec::new();
    };
    cmd.args([
        "-qf",
        "--queryformat",
        "[%{FILENAMES}\\t%{FILEFLAGS:fflags}\\t%{=NAME}\\n]",
    ])
    .args(existing.iter().map(|p| p.as_str()));
    // A file no package owns makes rpm exit 1 after printing the others.
    match crate::process::run_output(cmd, "rpm", TIMEOUT) {
        Ok((_, out, _)) => rpm_owners(&out, paths),
        Err(e) => {
            tracing::warn!(error = %e, "rpm query failed");
            Vec::new()
        }
    }
}

/// The installed versions of `names` in the rpm database under the root:
/// `(name, [epoch:]version-release)`; none when there is no database.
pub(crate) fn rpm_versions(host: &RootFs, names: &[&str]) -> Vec<(String, String)> {
    let Some(mut cmd) = rpm_command(host) else {
        return Vec::new();
    };
    cmd.args([
        "-q",
        "--queryformat",
        "%{NAME}\\t%{EPOCHNUM}:%{VERSION}-%{RELEASE}\\n",
    ])
    .args(names);
    // A package not installed is a line "package X is not installed" and
    // exit 1; the others are still printed.
    match crate::process::run_output(cmd, "rpm", TIMEOUT) {
        Ok((_, out, _)) => out
            .lines()
            .filter_map(|l| l.split_once('\t'))
            .filter(|(n, _)| names.contains(n))
            .map(|(n, v)| (n.to_owned(), v.to_owned()))
            .collect(),
        Err(e) => {
            tracing::warn!(error = %e, "rpm query failed");
            Vec::new()
        }
    }
}
