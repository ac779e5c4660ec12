//! `gpu-setup doctor`: checks of the whole host that explain why GPUs do or
//! don't work in Podman. Pure: every file is read through [`Observe`] (so
//! under `--root`), and what needs a process (versions, `nvidia-container-cli
//! -k list`) comes in as [`Probes`] gathered by the caller. Each check has a
//! stable id; `docs/doctor.md` lists them and their fixes.

use std::collections::BTreeMap;

use serde::Serialize;
use toml_edit::DocumentMut;

use crate::desired::DesiredState;
use crate::error::{decode, ObserveError, PlanError};
use crate::facts::HostFacts;
use crate::hook;
use crate::observe::{Kind, Meta, Observe, Observed};
use crate::paths::{well_known, TargetPath};
use crate::plan::plan_with;
use crate::podman::{self, ConfFile, Effective, PodmanVersion};
use crate::toml_doc::{self, Expect};
use crate::warnings::nvidia_cdi_specs;

/// How a check came out.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Fine.
    Ok,
    /// Could not be checked here.
    Skip,
    /// Probably a problem, or a trap worth knowing.
    Warn,
    /// GPUs will not work until this is fixed.
    Fail,
}

impl Status {
    /// `ok`, `skip`, `warn` or `fail`.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Skip => "skip",
            Status::Warn => "warn",
            Status::Fail => "fail",
        }
    }
}

/// One check's result.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Check {
    /// Stable identifier, e.g. `runtimes`.
    pub id: &'static str,
    /// The outcome.
    pub status: Status,
    /// One line saying what was found.
    pub message: String,
    /// The command or setting that fixes it (when not ok).
    pub hint: Option<String>,
    /// Supporting facts, one per line (shown with `--verbose`).
    pub details: Vec<String>,
}

impl Check {
    fn new(id: &'static str, status: Status, message: impl Into<String>) -> Self {
        Check {
            id,
            status,
            message: message.into(),
            hint: None,
            details: Vec::new(),
        }
    }

    /// A failed check for an error reading or parsing a file.
    fn error(id: &'static str, e: &dyn HasHint) -> Self {
        Check::new(id, Status::Fail, e.to_string()).hint(
            e.hint()
                .unwrap_or_else(|| "fix the file named above".to_owned()),
        )
    }

    fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    fn details(mut self, details: Vec<String>) -> Self {
        self.details = details;
        self
    }
}

/// An error with a hint.
trait HasHint: std::fmt::Display {
    fn hint(&self) -> Option<String>;
}

impl HasHint for PlanError {
    fn hint(&self) -> Option<String> {
        PlanError::hint(self)
    }
}

impl HasHint for ObserveError {
    fn hint(&self) -> Option<String> {
        ObserveError::hint(self)
    }
}

/// What the caller learned by running programs (only possible on the real
/// root) or was told on the command line.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Probes {
    /// `podman --version` output, or the version given with
    /// `--podman-version`.
    pub podman_version: Option<String>,
    /// Why Podman's version is unknown, when it is.
    pub podman_version_error: Option<String>,
    /// First line of `--version` of each NVIDIA tool that could be run.
    pub tool_versions: BTreeMap<String, String>,
    /// `nvidia-container-cli -k list`: the files, or why it failed; `None`
    /// when it was not run.
    pub cli_list: Option<Result<Vec<String>, String>>,
    /// Whether the caller is not root (rootless Podman).
    pub rootless: bool,
    /// Whether programs could be run (the root is `/`).
    pub real_root: bool,
}

/// Where executables are looked for under the root, in order.
const BIN_DIRS: [&str; 6] = [
    "/usr/local/sbin",
    "/usr/local/bin",
    "/usr/sbin",
    "/usr/bin",
    "/sbin",
    "/bin",
];

/// The NVIDIA Container Toolkit's programs.
pub const TOOLKIT_BINARIES: [&str; 5] = [
    "nvidia-container-runtime",
    "nvidia-container-runtime-hook",
    "nvidia-container-toolkit",
    "nvidia-container-cli",
    "nvidia-ctk",
];

/// The first executable file named `name` in the usual bin directories.
pub fn find_executable(host: &dyn Observe, name: &str) -> Option<TargetPath> {
    BIN_DIRS
        .iter()
        .filter_map(|d| TargetPath::new(&format!("{d}/{name}")).ok())
        .find(|p| is_executable(host, p))
}

fn is_executable(host: &dyn Observe, p: &TargetPath) -> bool {
    matches!(host.meta(p), Ok(Some(m)) if m.kind == Kind::File && m.mode & 0o111 != 0)
}

/// Runs every check.
pub fn run(
    desired: &DesiredState,
    facts: &HostFacts,
    host: &dyn Observe,
    probes: &Probes,
) -> Vec<Check> {
    let version = probes
        .podman_version
        .as_deref()
        .and_then(PodmanVersion::parse);
    let conf = podman::conf_files(version, facts, host, None).map(|(files, _)| files);
    let merged = conf.as_ref().map(|f| podman::effective(f));
    let effective = merged.as_ref().ok();
    let config = read_nvidia_config(desired, host);
    let hooks = HookScan::read(host, effective);
    let mut checks = vec![
        podman_check(host, probes, version, conf.as_ref().ok()),
        runtimes_check(desired, host, merged.as_ref().map_err(|e| *e)),
        hooks_check(desired, host, &hooks),
        toolkit_check(host, probes),
        nvidia_config_check(desired, probes, &config),
        runtime_mode_check(&config),
        debug_logs_check(host, &config),
        gpu_devices_check(host, effective),
        cgroups_check(host, probes, effective),
        cdi_check(host, &hooks),
        mounts_check(probes),
        desired_state_check(desired, facts, host),
    ];
    for c in &mut checks {
        if c.status == Status::Ok {
            c.hint = None;
        }
    }
    checks
}

fn podman_check(
    host: &dyn Observe,
    probes: &Probes,
    version: Option<PodmanVersion>,
    files: Option<&Vec<ConfFile>>,
) -> Check {
    let binary = find_executable(host, "podman");
    let read: Vec<String> = files
        .map(|f| f.iter().map(|f| format!("reads {}", f.path)).collect())
        .unwrap_or_default();
    let Some(v) = version else {
        return match (&binary, &probes.podman_version_error) {
            (None, _) => Check::new("podman", Status::Fail, "Podman is not installed")
                .hint("install Podman: `apt-get install podman` (Debian, Ubuntu) or `dnf install podman` (Fedora, RHEL)"),
            (Some(b), Some(e)) => Check::new(
                "podman",
                Status::Warn,
                format!("`{b}` is installed but its version is unknown: {e}"),
            )
            .hint("pass --podman-version VERSION so the checks follow that version's rules")
            .details(read),
            (Some(b), None) => Check::new(
                "podman",
                Status::Skip,
                format!("`{b}` is installed; its version is unknown under --root, so the checks assume any version"),
            )
            .hint("pass --podman-version VERSION to check against one version's rules")
            .details(read),
        };
    };
    let model = if v.single_main_file() {
        "reads one main containers.conf plus drop-ins (6.0 and later)"
    } else {
        "merges every containers.conf it finds (up to 5.x)"
    };
    let mut details = vec![format!("config model: {model}")];
    details.extend(read);
    if !v.reads_dropins() {
        return Check::new(
            "podman",
            Status::Warn,
            format!("Podman {v} does not read containers.conf.d drop-ins (3.3 and later do)"),
        )
        .hint(format!(
            "upgrade Podman, or edit the main file: gpu-setup apply --containers-conf {}",
            well_known::ETC_CONTAINERS_CONF
        ))
        .details(details);
    }
    Check::new(
        "podman",
        Status::Ok,
        format!("Podman {v}: {model}, drop-ins read"),
    )
    .details(details)
}

/// The first candidate path of a runtime entry that exists, as Podman picks.
fn resolve(host: &dyn Observe, paths: &[String]) -> Option<String> {
    paths
        .iter()
        .find(|p| TargetPath::new(p).is_ok_and(|t| is_executable(host, &t)))
        .cloned()
}

fn runtimes_check(
    desired: &DesiredState,
    host: &dyn Observe,
    merged: Result<&Effective, &PlanError>,
) -> Check {
    let eff = match merged {
        Ok(eff) => eff,
        Err(e) => {
            return Check::new(
                "runtimes",
                Status::Fail,
                format!("Podman cannot read its configuration: {e}"),
            )
            .hint(format!(
                "every podman command fails until this is fixed; {}",
                e.hint().unwrap_or_else(|| "fix the file".to_owned())
            ))
        }
    };
    let mut details: Vec<String> = eff
        .runtimes
        .iter()
        .map(|(name, (paths, from))| format!("{name} = {paths:?} (from {from})"))
        .collect();
    let (default, default_from) = match &eff.default_runtime {
        Some((r, from)) => (r.clone(), format!("set in {from}")),
        None => ("crun".to_owned(), "built-in default".to_owned()),
    };
    details.push(format!("default runtime: {default} ({default_from})"));
    let default_found = match eff.runtimes.get(&default) {
        Some((paths, _)) => resolve(host, paths).is_some(),
        None => find_executable(host, &default).is_some(),
    };
    if !default_found {
        return Check::new(
            "runtimes",
            Status::Fail,
            format!("the default runtime `{default}` ({default_from}) is not installed: every podman command fails"),
        )
        .hint(format!("install {default}, or set `[engine] runtime` to an installed runtime such as \"runc\""))
        .details(details);
    }
    let name = &desired.runtime_name;
    let Some((paths, from)) = eff.runtimes.get(name) else {
        return Check::new(
            "runtimes",
            Status::Fail,
            format!("no `{name}` runtime in any containers.conf Podman reads: `--runtime {name}` fails with \"not found\""),
        )
        .hint("gpu-setup apply")
        .details(details);
    };
    match resolve(host, paths) {
        Some(p) => Check::new(
            "runtimes",
            Status::Ok,
            format!("`{name}` runs `{p}` (from {from}); default runtime {default}"),
        )
        .details(details),
        None => Check::new(
            "runtimes",
            Status::Fail,
            format!("`{name}` lists {paths:?} (in {from}) but none is an executable file: Podman drops the entry"),
        )
        .hint("install the NVIDIA Container Toolkit (package nvidia-container-toolkit)")
        .details(details),
    }
}

/// A hook file Podman would load.
struct HookFile {
    path: TargetPath,
    result: Result<hook::HookInfo, String>,
}

fn is_nvidia_executable(path: &str) -> bool {
    let name = path.rsplit('/').next().unwrap_or("");
    name == "nvidia-container-toolkit" || name == "nvidia-container-runtime-hook"
}

/// The hook files Podman would load from its hooks dirs.
struct HookScan {
    dirs: Vec<String>,
    /// Name -> file, a later dir's file masking an earlier one's.
    by_name: BTreeMap<String, HookFile>,
    /// Files masked by a same-named file in a higher-priority dir.
    masked: Vec<TargetPath>,
}

impl HookScan {
    fn read(host: &dyn Observe, eff: Option<&Effective>) -> Result<Self, ObserveError> {
        let dirs = eff
            .map(Effective::hooks_dirs)
            .unwrap_or_else(|| vec![well_known::DEFAULT_HOOKS_DIR.to_owned()]);
        let mut by_name: BTreeMap<String, HookFile> = BTreeMap::new();
        let mut masked = Vec::new();
        for dir in dirs.iter().filter_map(|d| TargetPath::new(d).ok()) {
            let names = host.list(&dir)?.unwrap_or_default();
            for name in names.into_iter().filter(|n| n.ends_with(".json")) {
                let Ok(path) = dir.join(&name) else { continue };
                let result = match host.file(&path) {
                    Ok(Observed::File { bytes, .. }) => decode(&path, &bytes)
                        .map_err(|e| e.to_string())
                        .and_then(|text| hook::validate(&path, text)),
                    Ok(Observed::Absent) => continue,
                    Err(e) => Err(e.to_string()),
                };
                if let Some(old) = by_name.insert(name, HookFile { path, result }) {
                    masked.push(old.path);
                }
            }
        }
        Ok(HookScan {
            dirs,
            by_name,
            masked,
        })
    }

    /// The first valid hook that runs NVIDIA's hook executable.
    fn nvidia(&self) -> Option<(&TargetPath, &hook::HookInfo)> {
        self.by_name.values().find_map(|f| match &f.result {
            Ok(info) if is_nvidia_executable(&info.executable) => Some((&f.path, info)),
            _ => None,
        })
    }
}

fn hooks_check(
    desired: &DesiredState,
    host: &dyn Observe,
    scan: &Result<HookScan, ObserveError>,
) -> Check {
    let scan = match scan {
        Ok(s) => s,
        Err(e) => return Check::error("hooks", e),
    };
    let HookScan {
        dirs,
        by_name,
        masked,
    } = scan;
    let mut details = vec![format!("hooks dirs (lowest priority first): {dirs:?}")];
    let mut invalid = Vec::new();
    for f in by_name.values() {
        match &f.result {
            Ok(info) => {
                details.push(format!(
                    "{}: runs {} in {:?} (schema {})",
                    f.path, info.executable, info.stages, info.schema
                ));
            }
            Err(e) => {
                details.push(format!("{}: INVALID: {e}", f.path));
                invalid.push(format!("`{}`: {e}", f.path));
            }
        }
    }
    for m in masked {
        details.push(format!(
            "{m}: masked by a same-named file in a higher-priority dir"
        ));
    }
    if !invalid.is_empty() {
        return Check::new(
            "hooks",
            Status::Fail,
            format!(
                "invalid hook file {}: Podman refuses to create any container while it exists",
                invalid.join("; ")
            ),
        )
        .hint("fix or remove the invalid file (gpu-setup never leaves a partial hook; another tool did)")
        .details(details);
    }
    if let Some(m) = masked.iter().find(|m| **m == desired.hook_file) {
        return Check::new(
            "hooks",
            Status::Fail,
            format!("`{m}` is masked by a file of the same name in a higher-priority hooks dir"),
        )
        .hint(format!(
            "remove the masking file, or install the hook there with gpu-setup apply --hook-file DIR/{}",
            m.file_name()
        ))
        .details(details);
    }
    let Some((path, info)) = scan.nvidia() else {
        return Check::new(
            "hooks",
            Status::Fail,
            "no NVIDIA OCI hook in Podman's hooks dirs: containers get no GPU unless they use CDI or --runtime nvidia",
        )
        .hint("gpu-setup apply")
        .details(details);
    };
    let exe_ok = TargetPath::new(&info.executable).is_ok_and(|t| is_executable(host, &t));
    if !exe_ok {
        return Check::new(
            "hooks",
            Status::Fail,
            format!("the NVIDIA hook `{path}` runs `{}`, which is not an executable file: Podman skips the hook quietly", info.executable),
        )
        .hint("install the NVIDIA Container Toolkit, or gpu-setup apply --hook-path /usr/bin/nvidia-container-runtime-hook")
        .details(details);
    }
    Check::new(
        "hooks",
        Status::Ok,
        format!(
            "NVIDIA hook `{path}` runs `{}` ({})",
            info.executable,
            info.stages.join(", ")
        ),
    )
    .details(details)
}

fn toolkit_check(host: &dyn Observe, probes: &Probes) -> Check {
    let mut details = Vec::new();
    let mut found = BTreeMap::new();
    for name in TOOLKIT_BINARIES {
        match find_executable(host, name) {
            Some(p) => {
                let version = probes
                    .tool_versions
                    .get(name)
                    .map(|v| format!(": {v}"))
                    .unwrap_or_default();
                details.push(format!("{p}{version}"));
                found.insert(name, p);
            }
            None => details.push(format!("{name}: not found")),
        }
    }
    let has = |n: &str| found.contains_key(n);
    let hint = "install the NVIDIA Container Toolkit (package nvidia-container-toolkit, from NVIDIA's repository)";
    if !has("nvidia-container-runtime")
        && !has("nvidia-container-runtime-hook")
        && !has("nvidia-container-toolkit")
    {
        return Check::new(
            "toolkit",
            Status::Fail,
            "the NVIDIA Container Toolkit is not installed",
        )
        .hint(hint)
        .details(details);
    }
    let missing: Vec<&str> = ["nvidia-container-runtime", "nvidia-container-cli"]
        .into_iter()
        .filter(|n| !has(n))
        .chain(
            (!has("nvidia-container-runtime-hook") && !has("nvidia-container-toolkit"))
                .then_some("nvidia-container-runtime-hook"),
        )
        .collect();
    if !missing.is_empty() {
        return Check::new(
            "toolkit",
            Status::Fail,
            format!(
                "the NVIDIA Container Toolkit is incomplete: {} missing",
                missing.join(", ")
            ),
        )
        .hint(format!(
            "{hint}; nvidia-container-cli comes with libnvidia-container-tools"
        ))
        .details(details);
    }
    let version = probes
        .tool_versions
        .get("nvidia-container-runtime")
        .map(|v| format!(" ({v})"))
        .unwrap_or_default();
    Check::new(
        "toolkit",
        Status::Ok,
        format!("NVIDIA Container Toolkit installed{version}"),
    )
    .details(details)
}

/// The NVIDIA config as far as doctor needs it.
struct NvidiaConfig {
    path: TargetPath,
    text: String,
    doc: DocumentMut,
}

fn read_nvidia_config(
    desired: &DesiredState,
    host: &dyn Observe,
) -> Result<Option<NvidiaConfig>, PlanError> {
    let path = desired.nvidia_config.clone();
    let bytes = match host.file(&path)? {
        Observed::Absent => return Ok(None),
        Observed::File { bytes, .. } => bytes,
    };
    let text = decode(&path, &bytes)?.to_owned();
    let doc = toml_doc::parse_mut(&path, &text)?;
    Ok(Some(NvidiaConfig { path, text, doc }))
}

impl NvidiaConfig {
    fn get(
        &self,
        table: &str,
        key: &str,
        expect: Expect,
    ) -> Result<Option<&toml_edit::Value>, PlanError> {
        toml_doc::get(
            &self.path,
            &self.text,
            self.doc.as_item(),
            &[table],
            key,
            expect,
        )
    }
}

fn nvidia_config_check(
    desired: &DesiredState,
    probes: &Probes,
    config: &Result<Option<NvidiaConfig>, PlanError>,
) -> Check {
    let cfg = match config {
        Err(e) => return Check::error("nvidia-config", e),
        Ok(None) => {
            return Check::new(
                "nvidia-config",
                Status::Fail,
                format!("`{}` does not exist", desired.nvidia_config),
            )
            .hint("install the NVIDIA Container Toolkit, then gpu-setup apply")
        }
        Ok(Some(c)) => c,
    };
    let no_cgroups = match cfg.get("nvidia-container-cli", "no-cgroups", Expect::Bool) {
        Ok(v) => v.and_then(toml_edit::Value::as_bool).unwrap_or(false),
        Err(e) => return Check::error("nvidia-config", &e),
    };
    let path = &cfg.path;
    match (probes.rootless, no_cgroups) {
        (true, false) => Check::new(
            "nvidia-config",
            Status::Fail,
            format!("`{path}` has no-cgroups = false: rootless Podman cannot set up the GPU's device cgroup"),
        )
        .hint("gpu-setup apply --no-cgroups true"),
        (true, true) => Check::new(
            "nvidia-config",
            Status::Ok,
            format!("`{path}` has no-cgroups = true, as rootless Podman needs"),
        ),
        (false, true) => Check::new(
            "nvidia-config",
            Status::Ok,
            format!("`{path}` has no-cgroups = true: right for rootless Podman; rootful GPU containers need false"),
        ),
        (false, false) => Check::new(
            "nvidia-config",
            Status::Ok,
            format!("`{path}` has no-cgroups = false: right for rootful Podman; rootless GPU containers need true"),
        ),
    }
}

fn runtime_mode_check(config: &Result<Option<NvidiaConfig>, PlanError>) -> Check {
    let Ok(Some(cfg)) = config else {
        return Check::new(
            "runtime-mode",
            Status::Skip,
            "no readable config.toml (see nvidia-config)",
        );
    };
    let mode = match cfg.get("nvidia-container-runtime", "mode", Expect::Str) {
        Ok(v) => v.and_then(toml_edit::Value::as_str).map(str::to_owned),
        Err(e) => return Check::error("runtime-mode", &e),
    };
    let shown = mode
        .clone()
        .unwrap_or_else(|| "auto (the default)".to_owned());
    if mode.as_deref() == Some("legacy") {
        return Check::new(
            "runtime-mode",
            Status::Ok,
            "runtime mode is legacy: the NVIDIA hook runs",
        );
    }
    Check::new(
        "runtime-mode",
        Status::Warn,
        format!("runtime mode is {shown}: in non-legacy modes (auto resolves to CDI on recent toolkits) the NVIDIA runtime strips the NVIDIA hook from containers run with --runtime nvidia"),
    )
    .hint(format!(
        "set `mode = \"legacy\"` under [nvidia-container-runtime] in {}, or use CDI instead of the hook",
        cfg.path
    ))
}

fn debug_logs_check(host: &dyn Observe, config: &Result<Option<NvidiaConfig>, PlanError>) -> Check {
    let Ok(Some(cfg)) = config else {
        return Check::new(
            "debug-logs",
            Status::Skip,
            "no readable config.toml (see nvidia-config)",
        );
    };
    let rootless_use = matches!(
        cfg.get("nvidia-container-cli", "no-cgroups", Expect::Bool),
        Ok(Some(v)) if v.as_bool() == Some(true)
    );
    let mut logs = Vec::new();
    for table in ["nvidia-container-cli", "nvidia-container-runtime"] {
        match cfg.get(table, "debug", Expect::Str) {
            Ok(Some(v)) => {
                if let Some(s) = v.as_str() {
                    logs.push((table, s.to_owned()));
                }
            }
            Ok(None) => {}
            Err(e) => return Check::error("debug-logs", &e),
        }
    }
    if logs.is_empty() {
        return Check::new("debug-logs", Status::Ok, "no debug log is set");
    }
    let details: Vec<String> = logs
        .iter()
        .map(|(t, l)| format!("[{t}] debug = {l:?}"))
        .collect();
    for (table, log) in &logs {
        let Ok(log_path) = TargetPath::file(log) else {
            return Check::new(
                "debug-logs",
                Status::Fail,
                format!("[{table}] debug = {log:?} is not an absolute file path"),
            )
            .hint("set an absolute path such as /var/log/nvidia-container-toolkit.log")
            .details(details);
        };
        match crate::warnings::unsafe_log_path(host, &log_path) {
            Ok(None) => {}
            Ok(Some(unsafe_path)) => {
                return Check::new(
                    "debug-logs",
                    Status::Fail,
                    format!("{unsafe_path}; the runtime opens the log as root, following symlinks"),
                )
                .hint("use a log path under a root-owned directory such as /var/log")
                .details(details)
            }
            Err(e) => return Check::error("debug-logs", &e),
        }
        let metas: Vec<(TargetPath, Meta)> = log_path
            .ancestors()
            .into_iter()
            .filter_map(|d| host.meta(&d).ok().flatten().map(|m| (d, m)))
            .collect();
        if rootless_use {
            if let Some((dir, m)) = metas.last() {
                if m.uid == 0 && m.mode & 0o002 == 0 {
                    return Check::new(
                        "debug-logs",
                        Status::Warn,
                        format!("no-cgroups = true (rootless use), but debug log `{log_path}` is in `{dir}`, which an unprivileged hook cannot write"),
                    )
                    .hint(format!("unset [{table}] debug, or point it at a directory the container user owns"))
                    .details(details);
                }
            }
        }
    }
    Check::new(
        "debug-logs",
        Status::Ok,
        format!("{} debug log(s) set, in safe directories", logs.len()),
    )
    .details(details)
}

/// Group ID -> name, from the root's /etc/group.
fn group_names(host: &dyn Observe) -> BTreeMap<u32, String> {
    let Ok(path) = TargetPath::new("/etc/group") else {
        return BTreeMap::new();
    };
    let Ok(Observed::File { bytes, .. }) = host.file(&path) else {
        return BTreeMap::new();
    };
    String::from_utf8_lossy(&bytes)
        .lines()
        .filter_map(|l| {
            let mut f = l.split(':');
            let name = f.next()?;
            let gid = f.nth(1)?.parse().ok()?;
            Some((gid, name.to_owned()))
        })
        .collect()
}

fn gpu_devices_check(host: &dyn Observe, eff: Option<&Effective>) -> Check {
    let Ok(dev) = TargetPath::new("/dev") else {
        return Check::new("gpu-devices", Status::Skip, "no /dev");
    };
    let names: Vec<String> = match host.list(&dev) {
        Ok(Some(n)) => n.into_iter().filter(|n| n.starts_with("nvidia")).collect(),
        Ok(None) => return Check::new("gpu-devices", Status::Skip, "no /dev under the root"),
        Err(e) => return Check::error("gpu-devices", &e),
    };
    if names.is_empty() {
        return Check::new(
            "gpu-devices",
            Status::Warn,
            "no /dev/nvidia* device nodes: no NVIDIA GPU here, or its driver is not loaded",
        )
        .hint("check the driver with `nvidia-smi`; load it with `modprobe nvidia`");
    }
    let groups = group_names(host);
    let mut details = Vec::new();
    let mut non_root_group = Vec::new();
    for name in &names {
        let Ok(path) = dev.join(name) else { continue };
        let Ok(Some(m)) = host.meta(&path) else {
            continue;
        };
        let group = groups
            .get(&m.gid)
            .cloned()
            .unwrap_or_else(|| m.gid.to_string());
        details.push(format!(
            "{path}: mode {:04o}, owner {}, group {group}",
            m.mode, m.uid
        ));
        if m.gid != 0 && m.kind == Kind::Other {
            non_root_group.push(format!("{path} ({group})"));
        }
    }
    if !non_root_group.is_empty() && default_runtime(eff) == "runc" {
        // crun refuses hybrid cgroups (see the cgroups check): say so here.
        let hybrid = cgroup_version(host).is_some_and(|v| v.starts_with("hybrid"));
        let hint = if hybrid {
            "use crun with `--group-add keep-groups`; crun needs cgroup v2 on this hybrid-cgroup host: boot with systemd.unified_cgroup_hierarchy=1, then set `[engine] runtime = \"crun\"`"
        } else {
            "use crun (`[engine] runtime = \"crun\"` in containers.conf) and run containers with `--group-add keep-groups`"
        };
        return Check::new(
            "gpu-devices",
            Status::Warn,
            format!(
                "{} owned by a non-root group while the default runtime is runc: rootless containers see them as nobody:nogroup",
                non_root_group.join(", ")
            ),
        )
        .hint(hint)
        .details(details);
    }
    Check::new(
        "gpu-devices",
        Status::Ok,
        format!("{} NVIDIA device node(s)", names.len()),
    )
    .details(details)
}

/// The default OCI runtime: `[engine] runtime`, else Podman's built-in crun.
fn default_runtime(eff: Option<&Effective>) -> String {
    eff.and_then(|e| e.default_runtime.as_ref().map(|(r, _)| r.clone()))
        .unwrap_or_else(|| "crun".to_owned())
}

/// The cgroup version from /sys/fs/cgroup under the root, if mounted.
fn cgroup_version(host: &dyn Observe) -> Option<&'static str> {
    let meta = |p: &str| {
        TargetPath::new(p)
            .ok()
            .and_then(|t| host.meta(&t).ok().flatten())
    };
    match (
        meta("/sys/fs/cgroup/cgroup.controllers"),
        meta("/sys/fs/cgroup/unified"),
        meta("/sys/fs/cgroup"),
    ) {
        (Some(_), _, _) => Some("v2 (unified)"),
        (None, Some(m), _) if m.kind == Kind::Dir => Some("hybrid (v1 with a v2 mount)"),
        (None, _, Some(m)) if m.kind == Kind::Dir => Some("v1"),
        _ => None,
    }
}

fn cgroups_check(host: &dyn Observe, probes: &Probes, eff: Option<&Effective>) -> Check {
    let Some(version) = cgroup_version(host) else {
        return Check::new("cgroups", Status::Skip, "no /sys/fs/cgroup under the root");
    };
    let who = if !probes.real_root {
        "user unknown under --root"
    } else if probes.rootless {
        "running rootless"
    } else {
        "running as root"
    };
    if version.starts_with("hybrid") && default_runtime(eff) == "crun" {
        return Check::new(
            "cgroups",
            Status::Warn,
            format!("cgroup {version}, {who}: crun, the default runtime, refuses hybrid cgroups, so containers may not start"),
        )
        .hint("set `[engine] runtime = \"runc\"` in containers.conf, or boot with cgroup v2 (systemd.unified_cgroup_hierarchy=1)");
    }
    if probes.rootless && version != "v2 (unified)" {
        return Check::new(
            "cgroups",
            Status::Warn,
            format!("cgroup {version}, {who}: rootless Podman cannot use cgroups here"),
        )
        .hint("keep no-cgroups = true for rootless GPU containers, or boot with cgroup v2 (systemd.unified_cgroup_hierarchy=1)");
    }
    Check::new("cgroups", Status::Ok, format!("cgroup {version}, {who}"))
}

fn cdi_check(host: &dyn Observe, hooks: &Result<HookScan, ObserveError>) -> Check {
    let specs = match nvidia_cdi_specs(host) {
        Ok(s) => s,
        Err(e) => return Check::error("cdi", &e),
    };
    let details: Vec<String> = specs.iter().map(ToString::to_string).collect();
    if specs.is_empty() {
        return Check::new(
            "cdi",
            Status::Ok,
            "no NVIDIA CDI spec: the hook is the only GPU path",
        );
    }
    let hook = hooks
        .as_ref()
        .ok()
        .and_then(HookScan::nvidia)
        .map(|(p, _)| p);
    match hook {
        Some(h) => Check::new(
            "cdi",
            Status::Warn,
            format!("NVIDIA CDI specs exist and so does the NVIDIA hook `{h}`: NVIDIA documents them as conflicting"),
        )
        .hint("use one: CDI (`podman run --device nvidia.com/gpu=all`, then `gpu-setup apply --state absent`) or the hook (remove the CDI specs)")
        .details(details),
        None => Check::new("cdi", Status::Ok, "NVIDIA CDI specs present (use `--device nvidia.com/gpu=all`); no NVIDIA hook").details(details),
    }
}

fn mounts_check(probes: &Probes) -> Check {
    match &probes.cli_list {
        None if !probes.real_root => Check::new(
            "mounts",
            Status::Skip,
            "nvidia-container-cli is not run under --root",
        ),
        None => Check::new("mounts", Status::Skip, "nvidia-container-cli is not installed"),
        Some(Ok(files)) => Check::new(
            "mounts",
            Status::Ok,
            format!("nvidia-container-cli would mount {} file(s) into GPU containers (--verbose lists them)", files.len()),
        )
        .details(files.clone()),
        Some(Err(e)) => Check::new(
            "mounts",
            Status::Warn,
            format!("`nvidia-container-cli -k list` failed: {e}"),
        )
        .hint("check the driver with `nvidia-smi`; run `nvidia-container-cli -k -d /dev/tty info` for details"),
    }
}

fn desired_state_check(desired: &DesiredState, facts: &HostFacts, host: &dyn Observe) -> Check {
    match plan_with(desired, facts, host) {
        Ok(plan) if plan.is_empty() => Check::new(
            "desired-state",
            Status::Ok,
            "the host matches gpu-setup's desired state",
        ),
        Ok(plan) => Check::new(
            "desired-state",
            Status::Warn,
            format!(
                "{} file(s) differ from gpu-setup's desired state: {}",
                plan.changes.len(),
                plan.changes
                    .iter()
                    .map(|c| format!("{} {}", c.action.as_str(), c.path))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )
        .hint("`gpu-setup plan` shows the changes; `gpu-setup apply` makes them"),
        Err(e) => Check::new("desired-state", Status::Fail, format!("cannot plan: {e}")).hint(
            e.hint()
                .unwrap_or_else(|| "fix the file named above".to_owned()),
        ),
    }
}

#[cfg(test)]
#[path = "doctor_tests.rs"]
mod tests;
