//! The plan: which managed files change, how and why, plus warnings about
//! what would still keep GPUs from working.

use serde::{Deserialize, Serialize};

use crate::containers_conf::{self, is_dropin, DROPIN_TEMPLATE};
use crate::desired::{DesiredState, Presence, Strategy};
use crate::error::{decode, PlanError};
use crate::facts::HostFacts;
use crate::hook;
use crate::nvidia_config;
use crate::observe::{Observe, Observed};
use crate::paths::TargetPath;
use crate::roles::{After, Planned, Role};
use crate::warnings::{self, Warning};

/// What happens to one file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// The file does not exist yet and will be written.
    Create,
    /// The file exists and will be rewritten.
    Modify,
    /// The file will be removed.
    Delete,
}

impl Action {
    /// `create`, `modify` or `delete`.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Create => "create",
            Action::Modify => "modify",
            Action::Delete => "delete",
        }
    }
}

/// One file that will change. Unchanged files never appear as changes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    /// The file, as the host sees it.
    pub path: TargetPath,
    /// Create, modify or delete.
    pub action: Action,
    /// What is there now.
    pub before: Observed,
    /// The new content; `None` when the file is deleted.
    pub after: Option<Vec<u8>>,
    /// Why, one line per setting.
    pub reasons: Vec<String>,
}

/// Everything `apply` would do, and what would still be wrong afterwards.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Plan {
    /// Changed files, in the order they are planned.
    pub changes: Vec<Change>,
    /// Problems that changing these files does not fix.
    pub warnings: Vec<Warning>,
    /// The managed files a package owns.
    pub packages: Vec<crate::packages::Owner>,
}

impl Plan {
    /// Whether the host already matches the desired state.
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }
}

/// Computes the plan that takes the host seen through `host` to `desired`,
/// for Podman run as root with no `$CONTAINERS_CONF`. Reads only.
pub fn plan(desired: &DesiredState, host: &dyn Observe) -> Result<Plan, PlanError> {
    plan_with(desired, &HostFacts::default(), host)
}

/// Like [`plan`], with facts about how Podman is run (they change which
/// containers.conf files the warnings consider). Reads only; never writes.
pub fn plan_with(
    desired: &DesiredState,
    facts: &HostFacts,
    host: &dyn Observe,
) -> Result<Plan, PlanError> {
    check_supported(desired, facts, desired.cdi_generated.as_deref())?;
    let mut changes = Vec::new();
    // The files are read and written at their resolved paths; warnings
    // look at the paths Podman uses.
    let (resolved, followed) = resolve_managed(desired, host)?;
    let warn_about = desired;
    let desired = &resolved;

    // The owner of each managed file as read (R16 looks at them).
    let mut owners: Vec<(TargetPath, u32)> = Vec::new();
    // NVIDIA's refresh units, looked up once for the spec and the warnings.
    let refresh = crate::cdi::refresh_units(host);
    let mut file_warnings = Vec::new();
    // The containers.conf as read, for the warnings when the plan keeps it.
    let mut conf_read = None;
    for role in Role::ALL {
        let path = role.path(desired);
        let before = host.file(path)?;
        if let Observed::File { uid, .. } = before {
            owners.push((path.clone(), uid));
        }
        if role == Role::ContainersConf {
            conf_read = before.bytes().map(<[u8]>::to_vec);
        }
        let planned = match role {
            Role::ContainersConf => plan_containers_conf(desired, host, &before)?,
            Role::NvidiaConfig => plan_nvidia_config(desired, facts, host, &before)?,
            Role::HookFile => plan_hook(desired, &before, host)?,
            Role::CdiSpec => plan_cdi_spec(desired, &before, &refresh)?,
        };
        file_warnings.extend(planned.warnings);
        let after = match planned.after {
            After::Keep => continue,
            After::Write(bytes) => Some(bytes),
            After::Remove => None,
        };
        changes.extend(change(path, before, after, planned.reasons));
    }
    // The containers.conf Podman reads after the plan, for the warnings.
    let conf_path = &desired.containers_conf;
    let conf_after = match changes.iter().find(|c| c.path == *conf_path) {
        Some(c) => c.after.clone(),
        None => conf_read,
    };
    let conf_text = conf_after
        .as_deref()
        .map(|b| decode(conf_path, b).map(str::to_owned))
        .transpose()?;

    let kept_hook = remembered(desired, facts, host, &mut changes)?;
    let ownership = hand_to_root(&owners, facts, host, &mut changes)?;
    // Notes about a setting appear only when a change to it is planned.
    let changing = |path: &TargetPath| changes.iter().any(|c: &Change| c.path == *path);
    let no_cgroups_changes = changes.iter().any(|c| {
        c.path == desired.nvidia_config && c.reasons.iter().any(|r| r.contains("no-cgroups"))
    });
    let removed: Vec<TargetPath> = changes
        .iter()
        .filter(|c| c.after.is_none())
        .map(|c| c.path.clone())
        .collect();
    let (mut warnings, cdi_dirs) = warnings::collect(
        warn_about,
        facts,
        host,
        conf_text.as_deref(),
        &removed,
        &refresh,
    )?;
    warnings.retain(|w| w.code != "no-cgroups-rootful" || no_cgroups_changes);
    // An unknown version matters to what is about to be written.
    warnings.retain(|w| w.code != "version-unknown" || !changes.is_empty());
    warnings.extend(
        followed
            .into_iter()
            .filter(|(real, _)| changing(real))
            .map(|(_, w)| w),
    );
    warnings.extend(file_warnings);
    warnings.extend(ownership);
    warnings.extend(kept_hook);
    let after: std::collections::BTreeMap<TargetPath, Option<Vec<u8>>> = changes
        .iter()
        .map(|c| (c.path.clone(), c.after.clone()))
        .collect();
    warnings.extend(warnings::cdi_conflicts_after(
        warn_about,
        &cdi_dirs,
        &crate::observe::Overlay::new(host, after),
    )?);
    let packages: Vec<crate::packages::Owner> = facts
        .packages
        .iter()
        .filter(|o| Role::ALL.iter().any(|r| *r.path(desired) == o.path))
        .cloned()
        .collect();
    // Said when a change to the file is planned: the next upgrade of the
    // package may undo it.
    for owner in packages
        .iter()
        .filter(|o| changes.iter().any(|c| c.path == o.path))
    {
        warnings.push(Warning {
            code: crate::warnings::Code::PackageOwned,
            level: crate::Level::Info,
            message: format!(
                "`{}` belongs to package {} ({}): {}",
                owner.path,
                owner.package,
                match owner.manager {
                    crate::packages::Manager::Dpkg => "dpkg",
                    crate::packages::Manager::Rpm => "rpm",
                },
                owner.behaviour()
            ),
            hint: Some("the gpu-setup-heal units put gpu-setup's settings back after a package changes the file (docs/heal.md)".to_owned()),
        });
    }
    Ok(Plan {
        changes,
        warnings,
        packages,
    })
}

/// Refuses a desired state this host's Podman cannot use: the CDI strategy
/// where Podman cannot read NVIDIA's specs (before 4.3), or a spec (`spec`:
/// what nvidia-ctk generated) whose `cdiVersion` is newer than this
/// Podman's CDI library accepts ([`crate::upstream::Podman::max_cdi_version`]).
/// Nothing is planned then, so nothing changes. An unknown Podman version
/// refuses nothing.
pub fn check_supported(
    d: &DesiredState,
    facts: &HostFacts,
    spec: Option<&[u8]>,
) -> Result<(), PlanError> {
    if d.presence != Presence::Present || d.strategy != Strategy::Cdi {
        return Ok(());
    }
    let rules = crate::upstream::Podman::new(facts.podman_version);
    let (Some(v), from) = (facts.podman_version, facts.podman_source.as_ref()) else {
        return Ok(());
    };
    let from = from.map(|f| format!(" ({f})")).unwrap_or_default();
    if !rules.reads_nvidia_cdi_specs() {
        let why = if rules.reads_cdi_specs() {
            "it reads only CDI specs older than the 0.5.0 that NVIDIA's device names (`0`, `1`) need"
        } else {
            "it does not read CDI specs at all (3.2 and later do)"
        };
        return Err(PlanError::Unsupported {
            message: format!(
                "--strategy cdi needs Podman 4.3 or later, and this host has Podman {v}{from}: {why}, so `--device nvidia.com/gpu=all` would fail and the working hook would be gone"
            ),
            hint: "keep the hook (gpu-setup apply --strategy hook), or upgrade Podman to 4.3 or later first".to_owned(),
        });
    }
    let (Some(max), Some(spec)) = (rules.max_cdi_version(), spec) else {
        return Ok(());
    };
    let Ok(summary) = crate::cdi::check_spec(spec) else {
        // An invalid spec has its own, more precise error.
        return Ok(());
    };
    match crate::upstream::Version::parse(&summary.cdi_version) {
        Some(declared) if declared > max => Err(PlanError::Unsupported {
            message: format!(
                "the CDI spec nvidia-ctk generated declares cdiVersion {declared}, and Podman {v}{from} accepts at most {max}: Podman would refuse the spec"
            ),
            hint: format!(
                "upgrade Podman, or keep the hook (gpu-setup apply --strategy hook); an older nvidia-ctk may generate cdiVersion {max}"
            ),
        }),
        _ => Ok(()),
    }
}

/// What the journal's memory changes in a plan (see
/// [`crate::desired::Memory`]):
/// - `--state absent` restores each file gpu-setup still holds to what was
///   there before it first changed it (exact undo; a file it created is
///   removed), and never removes a hook file gpu-setup did not write that a
///   package owns;
/// - the CDI strategy leaves a package's hook file (removing it would fight
///   the package manager: its next upgrade puts it back) and warns;
/// - a file gpu-setup created at a path it no longer manages (the setting
///   now names another file) is removed.
fn remembered(
    d: &DesiredState,
    facts: &HostFacts,
    host: &dyn Observe,
    changes: &mut Vec<Change>,
) -> Result<Option<Warning>, PlanError> {
    let memory = &d.memory;
    let managed: Vec<&TargetPath> = Role::ALL.iter().map(|r| r.path(d)).collect();
    let package_owned = |p: &TargetPath| facts.packages.iter().any(|o| o.path == *p);
    let set = |changes: &mut Vec<Change>,
               path: &TargetPath,
               after: Option<Vec<u8>>,
               reason: String|
     -> Result<(), PlanError> {
        changes.retain(|c| c.path != *path);
        changes.extend(change(path, host.file(path)?, after, vec![reason]));
        Ok(())
    };
    if d.presence == Presence::Absent {
        for &path in &managed {
            match memory.originals.get(path) {
                Some(original) => set(
                    changes,
                    path,
                    original.clone(),
                    match original {
                        Some(_) => "restore what was there before gpu-setup changed it".to_owned(),
                        None => "remove it: gpu-setup created it".to_owned(),
                    },
                )?,
                None if *path == d.hook_file && package_owned(path) => {
                    changes.retain(|c| c.path != *path);
                }
                None => {}
            }
        }
    }
    for (path, original) in &memory.originals {
        if original.is_none() && !managed.contains(&path) {
            set(
                changes,
                path,
                None,
                "remove it: gpu-setup created it for a setting that now names another file"
                    .to_owned(),
            )?;
        }
    }
    let hook = &d.hook_file;
    let cdi_removes_package_hook = d.presence == Presence::Present
        && d.strategy == Strategy::Cdi
        && package_owned(hook)
        && !memory.ours.contains(hook)
        && changes.iter().any(|c| c.path == *hook && c.after.is_none());
    if cdi_removes_package_hook {
        changes.retain(|c| c.path != *hook);
        let owner = facts.packages.iter().find(|o| o.path == *hook);
        return Ok(Some(Warning {
            code: crate::warnings::Code::NvidiaHookRemains,
            level: crate::Level::Warning,
            message: format!(
                "`{hook}` belongs to package {}: gpu-setup leaves it (its next upgrade would put it back), and it runs NVIDIA's hook beside CDI, which NVIDIA documents as conflicting",
                owner.map_or("?", |o| o.package.as_str())
            ),
            hint: Some("NVIDIA's toolkit 1.14 and later no longer ship that file: upgrade the toolkit, or keep --strategy hook".to_owned()),
        }));
    }
    Ok(None)
}

/// Whether the NVIDIA Container Toolkit is installed: a package database
/// names it, or one of its programs is in the usual bin directories.
fn toolkit_installed(facts: &HostFacts, host: &dyn Observe) -> bool {
    facts.toolkit_version.is_some()
        || [
            "nvidia-ctk",
            "nvidia-container-runtime",
            "nvidia-container-runtime-hook",
            "nvidia-container-toolkit",
        ]
        .iter()
        .any(|name| crate::doctor::find_executable(host, name).is_some())
}

/// Managed files that stay on the host but belong to a user other than
/// root and the caller: that user could later change what root runs (a
/// `path = ...` in config.toml is a program NVIDIA's hook runs as root).
/// Each gets a change (the same bytes when nothing else changes) that
/// `apply` writes as root's (docs/security.md, R16), and a warning.
fn hand_to_root(
    owners: &[(TargetPath, u32)],
    facts: &HostFacts,
    host: &dyn Observe,
    changes: &mut Vec<Change>,
) -> Result<Vec<Warning>, PlanError> {
    let mut out = Vec::new();
    for (path, uid) in owners {
        let (path, uid) = (path, *uid);
        if uid == 0 || uid == facts.caller_uid {
            continue;
        }
        let reason = format!(
            "give `{path}` to root: it is owned by user {uid}, who could change what root runs"
        );
        match changes.iter_mut().find(|c| c.path == *path) {
            Some(c) if c.after.is_none() => continue,
            Some(c) => c.reasons.push(reason),
            None => {
                let before = host.file(path)?;
                let Some(bytes) = before.bytes().map(<[u8]>::to_vec) else {
                    continue;
                };
                changes.push(Change {
                    path: path.clone(),
                    action: Action::Modify,
                    before,
                    after: Some(bytes),
                    reasons: vec![reason],
                });
            }
        }
        out.push(Warning {
            code: crate::warnings::Code::ManagedFileOwner,
            level: crate::Level::Warning,
            message: format!("`{path}` is owned by user {uid}, not root: that user can change what root runs through it"),
            hint: Some("apply writes it as root's (the old owner is kept in the journal)".to_owned()),
        });
    }
    Ok(out)
}

/// The desired state with each managed file's path resolved on the host
/// (symbolic links inside the root followed, or refused: see
/// [`Observe::resolve`]), and an info warning for each link followed.
fn resolve_managed(
    desired: &DesiredState,
    host: &dyn Observe,
) -> Result<(DesiredState, Vec<(TargetPath, crate::Warning)>), PlanError> {
    let mut resolved = desired.clone();
    let mut followed = Vec::new();
    for role in Role::ALL {
        let path = role.path_mut(&mut resolved);
        let real = host.resolve(path, desired.follow_symlinks)?;
        if real != *path {
            followed.push((
                real.clone(),
                crate::Warning {
                    code: crate::warnings::Code::SymlinkFollowed,
                    level: crate::Level::Info,
                    message: format!(
                    "`{path}` leads to `{real}` through a symbolic link; gpu-setup edits `{real}`"
                ),
                    hint: None,
                },
            ));
            *path = real;
        }
    }
    Ok((resolved, followed))
}

/// The change from `before` to `after`, or `None` when nothing differs.
fn change(
    path: &TargetPath,
    before: Observed,
    after: Option<Vec<u8>>,
    reasons: Vec<String>,
) -> Option<Change> {
    let action = match (&before, &after) {
        (Observed::Absent, Some(_)) => Action::Create,
        (Observed::File { bytes, .. }, Some(new)) if bytes != new => Action::Modify,
        (Observed::File { .. }, None) => Action::Delete,
        _ => return None,
    };
    Some(Change {
        path: path.clone(),
        action,
        before,
        after,
        reasons,
    })
}

/// Whether two absolute paths lead to the same existing file inside the
/// root (symbolic links followed).
fn same_file(host: &dyn Observe, a: &str, b: &str) -> bool {
    let real = |p: &str| {
        TargetPath::new(p)
            .ok()
            .and_then(|t| host.real_path(&t).ok().flatten())
    };
    matches!((real(a), real(b)), (Some(x), Some(y)) if x == y)
}

/// The containers.conf after the edit: the runtime entry set (state
/// present) or removed (absent; a drop-in left with no settings is
/// removed). Left as it is when the runtime is not managed (`--strategy
/// cdi` does not use it).
fn plan_containers_conf(
    d: &DesiredState,
    host: &dyn Observe,
    before: &Observed,
) -> Result<Planned, PlanError> {
    if !d.manage_runtime {
        return Ok(Planned::keep());
    }
    let path = &d.containers_conf;
    let current = before.bytes().map(|b| decode(path, b)).transpose()?;
    match d.presence {
        Presence::Present => {
            if let Some(current) = current {
                if !d.runtime_path_explicit && runtime_equivalent(d, host, path, current)? {
                    return Ok(Planned::keep());
                }
            }
            let base = current.unwrap_or(if is_dropin(path) { DROPIN_TEMPLATE } else { "" });
            let text = containers_conf::set_runtime(path, base, &d.runtime_name, &d.runtime_path)?;
            let reason = format!(
                "set [engine.runtimes] {} = [\"{}\"]",
                d.runtime_name, d.runtime_path
            );
            Ok(Planned::write(text.into_bytes(), vec![reason]))
        }
        Presence::Absent => {
            let Some(current) = current else {
                return Ok(Planned::keep());
            };
            let text = containers_conf::remove_runtime(path, current, &d.runtime_name)?;
            if is_dropin(path) && !containers_conf::has_settings(path, &text)? {
                return Ok(Planned::remove(
                    "no settings left in the drop-in".to_owned(),
                ));
            }
            Ok(Planned::write(
                text.into_bytes(),
                vec![format!("remove [engine.runtimes] {}", d.runtime_name)],
            ))
        }
    }
}

/// Whether the managed file's runtime entry already runs the desired
/// runtime: the first of its paths that is a regular file (the one Podman
/// picks) is the same file as the desired runtime path.
fn runtime_equivalent(
    d: &DesiredState,
    host: &dyn Observe,
    path: &TargetPath,
    text: &str,
) -> Result<bool, PlanError> {
    let view = containers_conf::view(path, text)?;
    let Some(paths) = view.runtimes.get(&d.runtime_name) else {
        return Ok(false);
    };
    let picked = crate::podman::resolve_runtime(host, &d.runtime_name, paths, &[]);
    Ok(picked.is_some_and(|(p, _)| same_file(host, p.as_str(), d.runtime_path.as_str())))
}

/// config.toml after the edit. Left as it is when no toolkit setting is
/// managed; not created when the toolkit is not installed: a config.toml
/// gpu-setup created would be a stub the toolkit's package then stops at
/// (dpkg's conffile prompt, with no terminal: the package left
/// half-configured), so heal or a later apply fills it in once the package
/// has installed its own.
fn plan_nvidia_config(
    d: &DesiredState,
    facts: &HostFacts,
    host: &dyn Observe,
    before: &Observed,
) -> Result<Planned, PlanError> {
    let path = &d.nvidia_config;
    let manages_something =
        d.manage_no_cgroups || d.cli_debug_log.is_some() || d.runtime_debug_log.is_some();
    if *before == Observed::Absent && !toolkit_installed(facts, host) {
        let warning = (d.presence == Presence::Present && manages_something).then(|| Warning {
            code: crate::warnings::Code::ToolkitConfigNotCreated,
            level: crate::Level::Warning,
            message: format!(
                "`{path}` does not exist and the NVIDIA Container Toolkit is not installed: gpu-setup does not create it (the toolkit's package would stop at dpkg's conffile prompt over a stub)"
            ),
            hint: Some("install the toolkit first (nvidia-container-toolkit), then run gpu-setup apply again; the heal units do it after the package is installed".to_owned()),
        });
        return Ok(Planned::keep().warning(warning));
    }
    if !manages_something {
        // `--strategy cdi` with no toolkit setting given: left as it is.
        return Ok(Planned::keep());
    }
    let current = before.bytes().map(|b| decode(path, b)).transpose()?;
    match (d.presence, current) {
        (Presence::Absent, None) => Ok(Planned::keep()),
        (_, current) => {
            let (text, reasons) = nvidia_config::edit(path, current.unwrap_or(""), d)?;
            Ok(Planned::write(text.into_bytes(), reasons))
        }
    }
}

/// The CDI spec after the plan (`None`: removed) and why, or `None` when it
/// stays as it is. With `--strategy cdi` it holds what `nvidia-ctk cdi
/// generate` printed, unless NVIDIA's refresh units own the spec (toolkit
/// 1.18+: they write `/var/run/cdi/nvidia.yaml` at boot, and Podman would
/// prefer it anyway); a spec gpu-setup wrote is removed when the strategy
/// is the hook, the state absent, or the refresh units took over.
fn plan_cdi_spec(
    d: &DesiredState,
    before: &Observed,
    refresh: &crate::cdi::RefreshUnits,
) -> Result<Planned, PlanError> {
    let ours = d.cdi_spec_written || before.bytes().is_some_and(crate::cdi::is_ours);
    let remove = |why: &str| {
        Ok(if ours {
            Planned::remove(format!("remove the CDI spec gpu-setup generated: {why}"))
        } else {
            Planned::keep()
        })
    };
    if d.presence == Presence::Absent {
        return remove("the state is absent");
    }
    if d.strategy == Strategy::Hook {
        return remove("the strategy is the hook, and NVIDIA documents the two as conflicting");
    }
    if refresh.installed() {
        if refresh.spec() == d.cdi_spec {
            // Their env file points them at this very file: it is theirs now.
            return Ok(Planned::keep());
        }
        return remove(&format!(
            "NVIDIA's nvidia-cdi-refresh units generate {} at boot",
            refresh.spec()
        ));
    }
    let generated = d
        .cdi_generated
        .as_deref()
        .ok_or_else(|| PlanError::Setting {
            setting: "CDI spec",
            message: "it was not generated (run nvidia-ctk before planning)".to_owned(),
        })?;
    let after = crate::cdi::with_marker(&d.cdi_spec, generated);
    Ok(Planned::write(
        after,
        vec![format!(
            "the CDI spec `{} cdi generate` prints now",
            d.nvidia_ctk
        )],
    ))
}

/// The hook file after the plan, the reason, and a warning when the file
/// there is corrupt. gpu-setup owns the hook file whole: a file that is not
/// UTF-8 JSON is replaced (its bytes are kept in the journal and come back
/// with rollback), unlike the files it edits in part, which are refused.
fn plan_hook(
    d: &DesiredState,
    before: &Observed,
    host: &dyn Observe,
) -> Result<Planned, PlanError> {
    let path = &d.hook_file;
    if d.presence == Presence::Absent {
        return Ok(Planned::remove("remove the NVIDIA OCI hook".to_owned()));
    }
    if d.strategy == Strategy::Cdi {
        return Ok(Planned::remove(
            "remove the legacy NVIDIA OCI hook: with --strategy cdi the CDI spec gives containers their GPUs, and NVIDIA documents the two as conflicting".to_owned(),
        ));
    }
    let want = hook::desired(&d.hook_path);
    let mut reason = format!("install the NVIDIA OCI hook running `{}`", d.hook_path);
    let mut corrupt = None;
    if let Some(bytes) = before.bytes() {
        match decode(path, bytes).and_then(|text| hook::parse(path, text)) {
            Ok(have) if have == want => {
                // Same meaning: keep the file as it is, whatever its layout.
                return Ok(Planned::keep());
            }
            Ok(have) => {
                // A package's hook file running the same binary under its
                // other name (NVIDIA's v1.11-v1.13 RPMs ship one pointing at
                // nvidia-container-runtime-hook, which nvidia-container-toolkit
                // links to): already as desired, unless --hook-path named an
                // exact path. Rewriting it would fight the package manager.
                let equivalent = !d.hook_path_explicit
                    && hook::same_but_executable(&have, &want).is_some_and(|exe| {
                        let valid =
                            std::str::from_utf8(bytes).is_ok_and(|t| hook::read(path, t).is_ok());
                        valid && same_file(host, &exe, d.hook_path.as_str())
                    });
                if equivalent {
                    return Ok(Planned::keep());
                }
            }
            Err(e) => {
                reason = format!(
                    "replace the corrupt NVIDIA OCI hook with one running `{}`",
                    d.hook_path
                );
                corrupt = Some(Warning {
                    code: crate::warnings::Code::HookFileCorrupt,
                    level: crate::Level::Warning,
                    message: format!(
                        "{e}: Podman refuses every container while this file is in its hooks dir; gpu-setup owns the file whole and replaces it"
                    ),
                    hint: Some("apply replaces it (the old bytes are kept in the journal; rollback restores them)".to_owned()),
                });
            }
        }
    }
    Ok(Planned::write(
        hook::render_desired(&d.hook_path).into_bytes(),
        vec![reason],
    )
    .warning(corrupt))
}
