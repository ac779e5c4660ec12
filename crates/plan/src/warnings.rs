//! Warnings: what would still keep GPUs from working after the plan, found by
//! reading the same files Podman reads (docs/plan.md lists them and every
//! warning code).

use serde::{Deserialize, Serialize};

use crate::cdi::RefreshUnits;
use crate::desired::{DesiredState, Presence, Strategy};
use crate::error::PlanError;
use crate::facts::HostFacts;
use crate::observe::{Kind, Observe, Observed};
use crate::paths::{well_known, TargetPath};
use crate::podman::{self, ConfFile};
use crate::upstream::Podman;

/// How serious a warning is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// GPUs will probably not work until this is fixed.
    Warning,
    /// Worth knowing; may be intended.
    Info,
}

/// A warning's stable identifier, for scripts (`--format json`'s `code`).
/// Each is declared once, here; docs/plan.md's table lists every one (a
/// test holds the two together).
macro_rules! codes {
    ($( $variant:ident = $text:literal, )+) => {
        /// A warning code.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        pub enum Code {
            $( #[doc = concat!("`", $text, "`")] #[serde(rename = $text)] $variant, )+
        }

        impl Code {
            /// Every code, in the order declared.
            pub const ALL: &'static [Code] = &[$( Code::$variant, )+];

            /// The code as scripts see it (`runtime-missing`).
            pub fn as_str(self) -> &'static str {
                match self { $( Code::$variant => $text, )+ }
            }
        }
    };
}

codes! {
    AppendAttributeRefused = "append-attribute-refused",
    CdiConflict = "cdi-conflict",
    CdiDeviceConflict = "cdi-device-conflict",
    CdiRefreshDisabled = "cdi-refresh-disabled",
    CdiRefreshEnabled = "cdi-refresh-enabled",
    CdiRefreshManaged = "cdi-refresh-managed",
    CdiSpecFromThisMachine = "cdi-spec-from-this-machine",
    CdiSpecNotRead = "cdi-spec-not-read",
    CdiUnsupported = "cdi-unsupported",
    ConfOverrideIgnored = "conf-override-ignored",
    ContainersConfInvalid = "containers-conf-invalid",
    ContainersConfNotRead = "containers-conf-not-read",
    DefaultRuntimeMissing = "default-runtime-missing",
    DefaultRuntimeRemoved = "default-runtime-removed",
    GpusFlagIsCdi = "gpus-flag-is-cdi",
    HookDirNotRead = "hook-dir-not-read",
    HookExecutableMissing = "hook-executable-missing",
    HookFileCorrupt = "hook-file-corrupt",
    HookMasked = "hook-masked",
    JournalUnreadable = "journal-unreadable",
    LogNotWritableRootless = "log-not-writable-rootless",
    MainConfShadowed = "main-conf-shadowed",
    ManagedFileOwner = "managed-file-owner",
    NoCgroupsRootful = "no-cgroups-rootful",
    NvidiaHookRemains = "nvidia-hook-remains",
    PackageOwned = "package-owned",
    RuntimeFlagsOrphaned = "runtime-flags-orphaned",
    RuntimeMissing = "runtime-missing",
    RuntimeOverridden = "runtime-overridden",
    SelinuxBlocksDevices = "selinux-blocks-devices",
    SymlinkFollowed = "symlink-followed",
    ToolkitConfigNotCreated = "toolkit-config-not-created",
    UnsafeLogPath = "unsafe-log-path",
    UserConfigIgnored = "user-config-ignored",
    UvmDevicesMissing = "uvm-devices-missing",
    VersionUnknown = "version-unknown",
}

impl std::fmt::Display for Code {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl AsRef<str> for Code {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl PartialEq<&str> for Code {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

/// One problem that the plan does not fix. `code` is stable for scripts.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Warning {
    /// Stable identifier, e.g. `runtime-missing`.
    pub code: Code,
    /// Warning or info.
    pub level: Level,
    /// One line saying what is wrong.
    pub message: String,
    /// What to do about it.
    pub hint: Option<String>,
}

fn warn(code: Code, message: String, hint: Option<String>) -> Warning {
    Warning {
        code,
        level: Level::Warning,
        message,
        hint,
    }
}

/// Collects the warnings. `our_conf` is the planned content of the managed
/// containers.conf (`None` when it will not exist).
pub(crate) fn collect(
    d: &DesiredState,
    facts: &HostFacts,
    host: &dyn Observe,
    our_conf: Option<&str>,
    removed: &[TargetPath],
    refresh: &RefreshUnits,
) -> Result<(Vec<Warning>, Vec<TargetPath>), PlanError> {
    let mut out = Vec::new();
    let ours = (&d.containers_conf, our_conf);
    let (files, ours_read) = podman::conf_files(facts, host, Some(ours))?;
    let rules = Podman::new(facts.podman_version);
    let present = d.presence == Presence::Present;
    // The CDI dirs Podman reads after the plan (for the conflict check).
    let cdi_dirs: Vec<TargetPath> = podman::effective(&files)
        .cdi_dirs(rules)
        .iter()
        .filter_map(|s| TargetPath::new(s).ok())
        .collect();

    if present && d.manage_runtime && !ours_read {
        let hint = match &facts.containers_conf_env {
            Some(env) => format!(
                "$CONTAINERS_CONF is set to `{env}`: Podman then reads that file alone (no drop-ins); unset it, or pass --containers-conf {env}"
            ),
            None if !rules.reads_dropins() => format!(
                "{} reads no drop-ins (3.3 and later do): pass --containers-conf {} (the default for this version), or upgrade Podman",
                rules.describe(),
                well_known::ETC_CONTAINERS_CONF
            ),
            None => format!(
                "use a `.conf` file in {} (the default) or one of the main files {} and {}",
                well_known::ETC_DROPIN_DIR,
                well_known::USR_CONTAINERS_CONF,
                well_known::ETC_CONTAINERS_CONF
            ),
        };
        out.push(warn(
            Code::ContainersConfNotRead,
            format!("Podman does not read `{}`", d.containers_conf),
            Some(hint),
        ));
    }
    version_notes(facts, rules, host, &mut out)?;
    if present {
        let dirs = &cdi_dirs;
        if d.manage_runtime {
            runtime_warnings(d, &files, &mut out);
            runtime_missing(d, facts, host, &mut out);
        }
        match d.strategy {
            Strategy::Hook => {
                hook_warnings(d, host, &files, &mut out)?;
                hook_executable_warnings(d, host, &mut out)?;
                cdi_conflicts(host, dirs, removed, refresh, &mut out)?;
                refresh_would_conflict(host, dirs, refresh, &mut out)?;
                if rules.gpus_flag_means_cdi() {
                    out.push(Warning {
                        code: Code::GpusFlagIsCdi,
                        level: Level::Info,
                        message: format!(
                            "{} turns `--gpus all` into the CDI request nvidia.com/gpu=all (5.0 and later do): with the hook alone it fails with `unresolvable CDI devices`",
                            rules.describe()
                        ),
                        hint: Some("the hook gives every container the GPUs: run them without --gpus; or use CDI: gpu-setup apply --strategy cdi".to_owned()),
                    });
                }
            }
            Strategy::Cdi => {
                cdi_strategy_warnings(d, rules, host, &files, dirs, refresh, &mut out)?
            }
        }
        if d.no_cgroups {
            out.push(Warning {
                code: Code::NoCgroupsRootful,
                level: Level::Info,
                message: "`no-cgroups = true` is for rootless Podman; it breaks GPU access in rootful containers".to_owned(),
                hint: Some("use --no-cgroups false on hosts that run GPU containers as root".to_owned()),
            });
        }
        log_path_checks(d, host, &mut out)?;
        field_warnings(host, &mut out);
    } else if d.manage_runtime {
        let eff = podman::effective(&files);
        if eff
            .default_runtime
            .is_some_and(|(name, _)| name == d.runtime_name)
        {
            out.push(warn(
                Code::DefaultRuntimeRemoved,
                format!(
                    "`[engine] runtime = \"{}\"` is the default runtime: every podman command fails once its entry is gone",
                    d.runtime_name
                ),
                Some("set `[engine] runtime` to another runtime (for example \"runc\") first".to_owned()),
            ));
        }
        // Podman 5.7+ refuses flags for a runtime without an entry; ours
        // are removed with the entry, another file's are not.
        if rules.has_runtimes_flags() && !eff.runtimes.contains_key(&d.runtime_name) {
            if let Some(from) = eff.runtimes_flags.get(&d.runtime_name) {
                out.push(warn(
                    Code::RuntimeFlagsOrphaned,
                    format!(
                        "`{from}` sets [engine.runtimes_flags] {} while no file defines that runtime any more: Podman 5.7 and later then fail every command",
                        d.runtime_name
                    ),
                    Some(format!("remove `{}` from [engine.runtimes_flags] in `{from}`", d.runtime_name)),
                ));
            }
        }
    }
    Ok((out, cdi_dirs))
}

/// What would make every podman command fail on `host` as it is (or will
/// be: see [`crate::observe::Overlay`]), whatever gpu-setup manages: a
/// containers.conf Podman cannot read, `{append=...}` before 4.8, flags for
/// a runtime without an entry (5.7+), a default runtime that resolves to
/// nothing. The same checks a plan makes, for what `rollback` leaves.
pub fn breakage(facts: &HostFacts, host: &dyn Observe) -> Vec<Warning> {
    let rules = Podman::new(facts.podman_version);
    let files = match podman::conf_files(facts, host, None) {
        Ok((files, _)) => files,
        Err(e) => {
            return vec![warn(
                Code::ContainersConfInvalid,
                format!(
                    "Podman cannot read its configuration: {}: every podman command fails",
                    crate::error::error_text(&e)
                ),
                e.hint(),
            )]
        }
    };
    let eff = podman::effective(&files);
    let mut out = Vec::new();
    if !rules.accepts_append_attribute() && !eff.attributed.is_empty() {
        out.push(warn(
            Code::AppendAttributeRefused,
            format!(
                "{} does not accept `{{append=true}}` (4.8 and later do), which {} use: every podman command fails",
                rules.describe(),
                eff.attributed.iter().map(|p| format!("`{p}`")).collect::<Vec<_>>().join(", ")
            ),
            Some("remove the `{append=...}` tables from those arrays".to_owned()),
        ));
    }
    if rules.has_runtimes_flags() {
        for (name, from) in &eff.runtimes_flags {
            if !eff.runtimes.contains_key(name) {
                out.push(warn(
                    Code::RuntimeFlagsOrphaned,
                    format!(
                        "`{from}` sets [engine.runtimes_flags] {name} while no file defines that runtime: Podman 5.7 and later then fail every command"
                    ),
                    Some(format!("remove `{name}` from [engine.runtimes_flags] in `{from}`")),
                ));
            }
        }
    }
    if let Some((name, from)) = &eff.default_runtime {
        let resolves = podman::default_runtime(&eff, rules, host, &facts.path_dirs())
            .is_some_and(|d| d.path.is_some());
        if !resolves {
            out.push(warn(
                Code::DefaultRuntimeMissing,
                format!("`[engine] runtime = \"{name}\"` (in `{from}`) resolves to no installed runtime: every podman command fails"),
                Some("set `[engine] runtime` to an installed runtime such as \"runc\"".to_owned()),
            ));
        }
    }
    out
}

/// NVIDIA CDI specs that define the same device in one directory, on the
/// host as the plan leaves it (`after`): the CDI library drops both, so
/// `--device nvidia.com/gpu=...` fails (`pkg/cdi/cache.go`; seen here with
/// Podman 4.3.1 and the real `nvidia-ctk cdi list`: `conflicting device`).
pub(crate) fn cdi_conflicts_after(
    d: &DesiredState,
    dirs: &[TargetPath],
    after: &dyn Observe,
) -> Result<Vec<Warning>, PlanError> {
    if d.presence != Presence::Present {
        return Ok(Vec::new());
    }
    let specs = nvidia_cdi_specs(after, dirs)?;
    Ok(crate::cdi::conflicts(&specs)
        .into_iter()
        .map(|c| {
            let shown: Vec<String> = c.specs.iter().map(|p| format!("`{p}`")).collect();
            let others: Vec<String> = c
                .specs
                .iter()
                .filter(|p| **p != d.cdi_spec)
                .map(|p| format!("`{p}`"))
                .collect();
            warn(
                Code::CdiDeviceConflict,
                format!(
                    "{} define {} in one directory: the CDI library drops both, and `--device {}` fails with `unresolvable CDI devices`",
                    shown.join(" and "),
                    c.device,
                    c.device
                ),
                Some(format!("remove {} (keep one spec per device and directory)", others.join(", "))),
            )
        })
        .collect())
}

/// The field failures doctor checks that would leave a "configured" host
/// without GPUs, as plan warnings (docs/doctor.md cites each source): SELinux
/// enforcing with `container_use_devices` off, and the driver's device nodes
/// without the UVM ones. Read under the root like everything else.
fn field_warnings(host: &dyn Observe, out: &mut Vec<Warning>) {
    let small = |p: &str| {
        TargetPath::new(p)
            .ok()
            .and_then(|t| host.kernel_file(&t, 64).ok().flatten())
            .map(|b| String::from_utf8_lossy(&b).trim().to_owned())
    };
    let enforcing = small("/sys/fs/selinux/enforce").as_deref() == Some("1");
    let boolean = small("/sys/fs/selinux/booleans/container_use_devices");
    if enforcing && boolean.as_deref().and_then(|b| b.split_whitespace().next()) == Some("0") {
        out.push(warn(
            Code::SelinuxBlocksDevices,
            "SELinux is enforcing and container_use_devices is off: GPU containers fail with `Failed to initialize NVML: Insufficient Permissions`".to_owned(),
            Some("setsebool -P container_use_devices true (or run GPU containers with --security-opt label=disable)".to_owned()),
        ));
    }
    let exists = |p: &str| {
        TargetPath::new(p)
            .ok()
            .is_some_and(|t| matches!(host.meta(&t), Ok(Some(_))))
    };
    if exists("/dev/nvidia0") && !exists("/dev/nvidia-uvm") {
        out.push(warn(
            Code::UvmDevicesMissing,
            "/dev/nvidia0 exists but /dev/nvidia-uvm does not: CUDA in containers reports no device although nvidia-smi works".to_owned(),
            Some("nvidia-ctk system create-device-nodes --control-devices --load-kernel-modules (or nvidia-modprobe -u -c=0)".to_owned()),
        ));
    }
}

/// What the Podman version on the host means for every command: files and
/// variables it does not read, and a version gpu-setup could not learn.
fn version_notes(
    facts: &HostFacts,
    rules: Podman,
    host: &dyn Observe,
    out: &mut Vec<Warning>,
) -> Result<(), PlanError> {
    if let Some(why) = &facts.unknown_why {
        out.push(Warning {
            code: Code::VersionUnknown,
            level: Level::Info,
            message: format!("{why}: gpu-setup follows the rules of any released Podman"),
            hint: Some("pass --podman-version VERSION to plan for one Podman".to_owned()),
        });
    }
    if let (Some(o), false) = (
        &facts.containers_conf_override_env,
        rules.reads_conf_override(),
    ) {
        out.push(Warning {
            code: Code::ConfOverrideIgnored,
            level: Level::Info,
            message: format!(
                "$CONTAINERS_CONF_OVERRIDE names `{o}`, which {} does not read (4.5 and later do)",
                rules.describe()
            ),
            hint: None,
        });
    }
    if let Some(dir) = &facts.user_config_dir {
        if !facts.rootless() && !rules.root_reads_user_config() {
            for name in ["containers.conf", "containers.conf.d"] {
                let Ok(p) = dir.join(name) else { continue };
                if host.meta(&p)?.is_some() {
                    out.push(Warning {
                        code: Code::UserConfigIgnored,
                        level: Level::Info,
                        message: format!(
                            "`{p}` exists, but {} run as root does not read it (5.0 and later do)",
                            rules.describe()
                        ),
                        hint: None,
                    });
                }
            }
        }
    }
    Ok(())
}

fn runtime_warnings(d: &DesiredState, files: &[ConfFile], out: &mut Vec<Warning>) {
    let ours = &d.containers_conf;
    let Some(pos) = files.iter().position(|f| f.path == *ours) else {
        return;
    };
    for later in &files[pos + 1..] {
        if let Some(paths) = later.view.runtimes.get(&d.runtime_name) {
            if paths.first().map(String::as_str) != Some(d.runtime_path.as_str()) {
                out.push(warn(
                    Code::RuntimeOverridden,
                    format!(
                        "`{}` is read after `{ours}` and sets runtime `{}` to {paths:?}, so ours does not take effect",
                        later.path, d.runtime_name
                    ),
                    Some(format!(
                        "remove `{}` from `{}`, or pass --containers-conf {}",
                        d.runtime_name, later.path, later.path
                    )),
                ));
            }
        }
    }
    let etc_main = files
        .iter()
        .any(|f| f.path.as_str() == well_known::ETC_CONTAINERS_CONF);
    if ours.as_str() == well_known::USR_CONTAINERS_CONF && etc_main {
        out.push(Warning {
            code: Code::MainConfShadowed,
            level: Level::Info,
            message: format!(
                "Podman 6 (unreleased; provisional) reads only the first main containers.conf that exists: `{}` hides `{ours}`",
                well_known::ETC_CONTAINERS_CONF
            ),
            hint: Some(format!("use the default drop-in {}", well_known::DEFAULT_DROPIN)),
        });
    }
}

fn hook_warnings(
    d: &DesiredState,
    host: &dyn Observe,
    files: &[ConfFile],
    out: &mut Vec<Warning>,
) -> Result<(), PlanError> {
    let hook = &d.hook_file;
    let dirs: Vec<TargetPath> = podman::effective(files)
        .hooks_dirs()
        .iter()
        .filter_map(|s| TargetPath::new(s).ok())
        .collect();
    let Some(hook_dir) = hook.parent() else {
        return Ok(());
    };
    let Some(pos) = dirs.iter().position(|d| *d == hook_dir) else {
        let shown: Vec<&str> = dirs.iter().map(TargetPath::as_str).collect();
        out.push(warn(
            Code::HookDirNotRead,
            format!("Podman's hooks_dir is {shown:?}, which does not include `{hook_dir}`"),
            Some(format!(
                "add \"{hook_dir}\" to `[engine] hooks_dir`, or pass --hook-file with a directory in that list"
            )),
        ));
        return Ok(());
    };
    // Later hooks dirs take priority: a same-named file there masks ours.
    for dir in &dirs[pos + 1..] {
        let masking = dir.join(hook.file_name()).ok();
        if let Some(masking) = masking {
            if host.meta(&masking)?.is_some() {
                out.push(warn(
                    Code::HookMasked,
                    format!("`{masking}` has the same name in a higher-priority hooks dir and masks `{hook}`"),
                    Some(format!("remove `{masking}` or install the hook there with --hook-file {masking}")),
                ));
            }
        }
    }
    Ok(())
}

fn is_executable(host: &dyn Observe, path: &TargetPath) -> Result<bool, PlanError> {
    Ok(host
        .meta(path)?
        .is_some_and(|m| m.kind == Kind::File && m.mode & 0o111 != 0))
}

fn runtime_missing(
    d: &DesiredState,
    facts: &HostFacts,
    host: &dyn Observe,
    out: &mut Vec<Warning>,
) {
    // As Podman resolves the entry gpu-setup writes: the path, if it is a
    // regular file, else the runtime's name on $PATH.
    let paths = [d.runtime_path.to_string()];
    if podman::resolve_runtime(host, &d.runtime_name, &paths, &facts.path_dirs()).is_none() {
        out.push(warn(
            Code::RuntimeMissing,
            format!(
                "runtime `{}` is not a file: Podman silently drops the `{}` entry and `--runtime {}` fails with \"not found\"",
                d.runtime_path, d.runtime_name, d.runtime_name
            ),
            Some("install the NVIDIA Container Toolkit (package nvidia-container-toolkit), or pass --runtime-path".to_owned()),
        ));
    }
}

fn hook_executable_warnings(
    d: &DesiredState,
    host: &dyn Observe,
    out: &mut Vec<Warning>,
) -> Result<(), PlanError> {
    // Podman checks only that the hook's executable exists (symlinks
    // followed); running it needs the executable bit.
    if !is_executable(host, &d.hook_path)? {
        let modern = podman::known(well_known::MODERN_HOOK_PATH)?;
        let hint = if d.hook_path != modern && is_executable(host, &modern)? {
            format!("this toolkit ships the hook as {modern}: pass --hook-path {modern}")
        } else {
            "install the NVIDIA Container Toolkit, or pass --hook-path".to_owned()
        };
        out.push(warn(
            Code::HookExecutableMissing,
            format!(
                "hook executable `{}` is not an executable file: Podman skips the hook quietly",
                d.hook_path
            ),
            Some(hint),
        ));
    }
    Ok(())
}

/// `--strategy cdi`: what would still keep GPUs from reaching containers
/// through the spec.
fn cdi_strategy_warnings(
    d: &DesiredState,
    rules: Podman,
    host: &dyn Observe,
    files: &[ConfFile],
    dirs: &[TargetPath],
    refresh: &RefreshUnits,
    out: &mut Vec<Warning>,
) -> Result<(), PlanError> {
    if !rules.reads_cdi_specs() {
        let v = rules.version.map(|v| v.to_string()).unwrap_or_default();
        out.push(warn(
            Code::CdiUnsupported,
            format!("Podman {v} does not read CDI specs (3.2 and later do): `--device nvidia.com/gpu=all` fails"),
            Some("upgrade Podman, or use the hook: gpu-setup apply --strategy hook".to_owned()),
        ));
    }
    if let Some(unit) = &refresh.path_unit {
        out.push(Warning {
            code: Code::CdiRefreshManaged,
            level: Level::Info,
            message: format!(
                "NVIDIA's refresh units (`{unit}`) generate {} at boot and when the driver changes: gpu-setup writes no spec of its own",
                refresh.spec()
            ),
            hint: None,
        });
        let refresh_dir = refresh.spec().parent();
        if let Some(dir) = refresh_dir.filter(|d| !dirs.contains(d)) {
            let shown: Vec<&str> = dirs.iter().map(TargetPath::as_str).collect();
            out.push(warn(
                Code::CdiSpecNotRead,
                format!(
                    "{} reads CDI specs from {shown:?}, which does not include `{dir}` where NVIDIA's refresh units write theirs: `--device nvidia.com/gpu=all` fails",
                    rules.describe()
                ),
                Some(format!(
                    "upgrade Podman (5.5.0-5.5.2 read only /etc/cdi by default; containers/podman#26569), or add \"{dir}\" to `[engine] cdi_spec_dirs`, or set {}={} in {}",
                    crate::cdi::REFRESH_OUTPUT_VAR,
                    well_known::DEFAULT_CDI_SPEC,
                    well_known::REFRESH_ENV
                )),
            ));
        }
        if !refresh.enabled {
            out.push(warn(
                Code::CdiRefreshDisabled,
                "nvidia-cdi-refresh.path is not enabled: the CDI spec is not regenerated at boot or when the driver changes".to_owned(),
                Some("systemctl enable --now nvidia-cdi-refresh.path".to_owned()),
            ));
        }
    } else if let Some(dir) = d.cdi_spec.parent() {
        if !dirs.contains(&dir) {
            let shown: Vec<&str> = dirs.iter().map(TargetPath::as_str).collect();
            out.push(warn(
                Code::CdiSpecNotRead,
                format!("Podman reads CDI specs from {shown:?}, which does not include `{dir}`"),
                Some(format!("pass --cdi-spec {}", well_known::DEFAULT_CDI_SPEC)),
            ));
        }
    }
    // Another NVIDIA hook (the package's, say) still runs beside CDI.
    for dir in podman::effective(files).hooks_dirs() {
        let Ok(dir) = TargetPath::new(&dir) else {
            continue;
        };
        for name in host.list(&dir)?.unwrap_or_default() {
            let Ok(path) = dir.join(&name) else { continue };
            if !name.ends_with(".json") || path == d.hook_file {
                continue;
            }
            let Ok(Observed::File { bytes, .. }) = host.file(&path) else {
                continue;
            };
            let nvidia = std::str::from_utf8(&bytes)
                .ok()
                .and_then(|t| crate::hook::read(&path, t).ok())
                .is_some_and(|(h, _)| is_nvidia_hook(&h.executable));
            if nvidia {
                out.push(warn(
                    Code::NvidiaHookRemains,
                    format!("`{path}` runs NVIDIA's hook for every container: NVIDIA documents it as conflicting with CDI"),
                    Some(format!("remove `{path}` (a package may own it: see `dpkg -S` or `rpm -qf`)")),
                ));
            }
        }
    }
    Ok(())
}

/// Whether an executable is NVIDIA's hook (either of its names).
pub(crate) fn is_nvidia_hook(path: &str) -> bool {
    let name = path.rsplit('/').next().unwrap_or("");
    name == "nvidia-container-toolkit" || name == "nvidia-container-runtime-hook"
}

/// The hook strategy with NVIDIA CDI specs present (not the ones the plan
/// removes): a hint that works, naming NVIDIA's refresh units when they
/// would bring a deleted spec back at the next boot.
fn cdi_conflicts(
    host: &dyn Observe,
    dirs: &[TargetPath],
    removed: &[TargetPath],
    refresh: &RefreshUnits,
    out: &mut Vec<Warning>,
) -> Result<(), PlanError> {
    for (path, _) in nvidia_cdi_specs(host, dirs)? {
        if removed.contains(&path) {
            continue;
        }
        let hint = if refresh.installed() {
            format!(
                "NVIDIA's refresh units regenerate it at every boot, and their package turns them back on at every upgrade (docs/heal.md): point them elsewhere with {} in {}, then remove `{path}`; or use CDI instead: gpu-setup apply --strategy cdi",
                crate::cdi::REFRESH_OUTPUT_VAR,
                well_known::REFRESH_ENV
            )
        } else {
            format!(
                "remove `{path}`, or use CDI instead of the hook: gpu-setup apply --strategy cdi"
            )
        };
        out.push(warn(
            Code::CdiConflict,
            format!("NVIDIA CDI spec `{path}` exists: NVIDIA documents the OCI hook as conflicting with CDI"),
            Some(hint),
        ));
    }
    Ok(())
}

/// The hook strategy with NVIDIA's refresh units enabled and writing into
/// a directory Podman reads: no spec yet (else [`cdi_conflicts`] says so),
/// but the next boot or driver change brings one. A toolkit upgrade turns
/// the units back on (1.18-1.19's postinst runs `systemctl enable --now`,
/// 1.20's `%systemd_post`/dh start them), so this is how doctor and heal
/// notice that an upgrade undid `systemctl disable`.
fn refresh_would_conflict(
    host: &dyn Observe,
    dirs: &[TargetPath],
    refresh: &RefreshUnits,
    out: &mut Vec<Warning>,
) -> Result<(), PlanError> {
    let Some(problem) = refresh_conflict(host, dirs, refresh)? else {
        return Ok(());
    };
    out.push(warn(
        Code::CdiRefreshEnabled,
        problem,
        Some(refresh_redirect_hint()),
    ));
    Ok(())
}

/// What [`refresh_would_conflict`] warns of, shared with doctor: `None`
/// when the units are off, write where Podman does not look, or their spec
/// already exists.
pub(crate) fn refresh_conflict(
    host: &dyn Observe,
    dirs: &[TargetPath],
    refresh: &RefreshUnits,
) -> Result<Option<String>, PlanError> {
    let spec = refresh.spec();
    let read = spec.parent().is_some_and(|d| dirs.contains(&d));
    if !refresh.enabled || !read || host.file(&spec)?.bytes().is_some() {
        return Ok(None);
    }
    Ok(Some(format!(
        "nvidia-cdi-refresh.path is enabled (a toolkit upgrade turns it back on): at the next boot or driver change it writes `{spec}`, which Podman reads, and NVIDIA documents CDI as conflicting with the OCI hook"
    )))
}

/// The way to keep NVIDIA's refresh units from writing where Podman reads
/// that lasts across toolkit upgrades.
pub(crate) fn refresh_redirect_hint() -> String {
    format!(
        "set {}=/var/lib/nvidia-cdi/nvidia.yaml (a directory Podman does not read) in {}: a package upgrade keeps that file, while `systemctl disable` lasts only until the next upgrade; or use CDI instead: gpu-setup apply --strategy cdi",
        crate::cdi::REFRESH_OUTPUT_VAR,
        well_known::REFRESH_ENV
    )
}

/// NVIDIA's CDI specs (`*.json` and `*.yaml` declaring an `nvidia.com/`
/// kind; a `*.yml` is not read: tags.cncf.io/container-device-interface
/// `pkg/cdi/spec-dirs.go`) in `dirs`, with their content.
pub(crate) fn nvidia_cdi_specs(
    host: &dyn Observe,
    dirs: &[TargetPath],
) -> Result<Vec<(TargetPath, Vec<u8>)>, PlanError> {
    let mut out = Vec::new();
    for dir in dirs {
        let Some(names) = host.list(dir)? else {
            continue;
        };
        for name in names {
            if !(name.ends_with(".json") || name.ends_with(".yaml")) {
                continue;
            }
            let Ok(path) = dir.join(&name) else { continue };
            if let Ok(Observed::File { bytes, .. }) = host.file(&path) {
                if bytes
                    .windows(b"nvidia.com/".len())
                    .any(|w| w == b"nvidia.com/")
                {
                    out.push((path, bytes));
                }
            }
        }
    }
    Ok(out)
}

/// Why a debug log path is unsafe, if it is: the first existing directory
/// on its path that is not root's alone (the NVIDIA runtime opens the log
/// as root, following links). Shared by `plan` and `doctor`.
pub(crate) fn unsafe_log_path(
    host: &dyn Observe,
    log: &TargetPath,
) -> Result<Option<PlanError>, PlanError> {
    for dir in log.ancestors() {
        match host.meta(&dir)? {
            Some(meta) if meta.kind == Kind::Dir && (meta.mode & 0o022 != 0 || meta.uid != 0) => {
                return Ok(Some(PlanError::UnsafeLogPath {
                    log: log.clone(),
                    dir,
                    mode: meta.mode,
                    uid: meta.uid,
                }))
            }
            _ => {}
        }
    }
    Ok(None)
}

fn log_path_checks(
    d: &DesiredState,
    host: &dyn Observe,
    out: &mut Vec<Warning>,
) -> Result<(), PlanError> {
    for log in [&d.cli_debug_log, &d.runtime_debug_log]
        .into_iter()
        .flatten()
    {
        match unsafe_log_path(host, log)? {
            Some(err) => {
                if !d.allow_unsafe_log_path {
                    return Err(err);
                }
                out.push(warn(Code::UnsafeLogPath, err.to_string(), err.hint()));
            }
            None if d.no_cgroups => out.push(warn(
                Code::LogNotWritableRootless,
                format!("debug log `{log}` is in a root-only directory: with `no-cgroups = true` (rootless Podman) the NVIDIA hook runs as the user and cannot write it"),
                Some("for rootless use, pick a log path the user can write (and pass --allow-unsafe-log-path), or leave debug logging off".to_owned()),
            )),
            None => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod code_tests {
    use super::Code;

    #[test]
    fn docs_plan_md_lists_every_warning_code_once() {
        let doc = include_str!("../../../docs/plan.md");
        let mut listed: Vec<&str> = doc
            .lines()
            .filter_map(|l| {
                let rest = l.strip_prefix("| `")?;
                let (code, rest) = rest.split_once("` | ")?;
                (rest.starts_with("warning |") || rest.starts_with("info |")).then_some(code)
            })
            .collect();
        listed.sort_unstable();
        let mut declared: Vec<&str> = Code::ALL.iter().map(|c| c.as_str()).collect();
        declared.sort_unstable();
        assert_eq!(listed, declared);
        let json = serde_json::to_string(&Code::CdiRefreshEnabled).unwrap();
        assert_eq!(json, "\"cdi-refresh-enabled\"");
        assert_eq!(
            serde_json::from_str::<Code>(&json).unwrap(),
            Code::CdiRefreshEnabled
        );
    }
}
