//! Which packages own the managed files: dpkg's lists under the root, and
//! `rpm --root R -qf` when the root has an rpm database and `rpm` is
//! installed here (vetted like `nvidia-ctk`: it runs as the caller).

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use gpu_setup_apply::RootFs;
use gpu_setup_plan::packages::{dpkg_owners, rpm_owners, Owner};
use gpu_setup_plan::roles::Role;
use gpu_setup_plan::{DesiredState, Kind, Observe, TargetPath};

/// How long one `rpm` query may take.
const TIMEOUT: Duration = Duration::from_secs(20);

/// The owners of the files `desired` manages.
pub(crate) fn owners(host: &RootFs, desired: &DesiredState) -> Vec<Owner> {
    let paths: Vec<TargetPath> = Role::ALL.iter().map(|r| r.path(desired).clone()).collect();
    let mut out = dpkg_owners(host, &paths);
    out.extend(rpm(host, &paths));
    out
}

/// The most of an rpm database gpu-setup copies to query it (a RHEL
/// host's rpmdb.sqlite is tens of MiB).
const RPM_DB_LIMIT: u64 = 512 << 20;

/// A query of the rpm database under the root, with the vetted rpm of the
/// running system in a clean environment; `None` when the root has no rpm
/// database, or `rpm` is not installed (or not trusted) here.
///
/// On the machine's own `/` rpm reads its database as every rpm command
/// does (`--root /`). Under another root the database is copied, through
/// the root's checked descriptors, into a private directory, and rpm reads
/// the copy: a read-only plan leaves the image's database untouched (rpm's
/// sqlite backend would add `-wal` and `-shm` files), and rpm never
/// reaches the image by a path string (docs/security.md, R18). The guard
/// keeps the copy alive while the command runs.
fn rpm_command(host: &RootFs) -> Option<(Command, Option<tempfile::TempDir>)> {
    // A database directory that holds something (Debian's rpm package
    // leaves an empty /var/lib/rpm).
    let (db, names) = gpu_setup_plan::well_known::RPM_DBS.iter().find_map(|d| {
        let p = TargetPath::new(d).ok()?;
        if !matches!(host.meta(&p), Ok(Some(m)) if m.kind == Kind::Dir) {
            return None;
        }
        let names = host.list(&p).ok().flatten().filter(|l| !l.is_empty())?;
        Some((p, names))
    })?;
    let rpm = gpu_setup_plan::well_known::RPM_PROGRAMS
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
    if host.is_real_root() {
        cmd.args(["--root", "/", "--dbpath", db.as_str()]);
        return Some((cmd, None));
    }
    let copy = match copy_db(host, &db, &names) {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(error = %e, "not querying rpm: cannot copy its database");
            return None;
        }
    };
    cmd.arg("--root")
        .arg(copy.path())
        .args(["--dbpath", db.as_str()]);
    Some((cmd, Some(copy)))
}

/// The regular files of the rpm database dir `db` under the root, copied
/// into a new private directory at the same path below it.
fn copy_db(host: &RootFs, db: &TargetPath, names: &[String]) -> Result<tempfile::TempDir, String> {
    let scratch = crate::vet::scratch_dir("gpu-setup-rpmdb.")?;
    let dest = scratch.path().join(db.as_str().trim_start_matches('/'));
    std::fs::create_dir_all(&dest).map_err(|e| e.to_string())?;
    let mut total = 0u64;
    for name in names {
        let path = db.join(name).map_err(|e| e.to_string())?;
        if !matches!(host.link_meta(&path), Ok(Some(m)) if m.kind == Kind::File) {
            continue;
        }
        let left = RPM_DB_LIMIT.saturating_sub(total);
        let bytes = match host.large_file(&path, left) {
            Ok(gpu_setup_plan::Observed::File { bytes, .. }) => bytes,
            Ok(gpu_setup_plan::Observed::Absent) => continue,
            Err(e) => return Err(gpu_setup_plan::error_text(&e)),
        };
        total += bytes.len() as u64;
        std::fs::write(dest.join(name), bytes).map_err(|e| e.to_string())?;
    }
    Ok(scratch)
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
    let Some((mut cmd, _copy)) = rpm_command(host) else {
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
    let Some((mut cmd, _copy)) = rpm_command(host) else {
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
