//! `gpu-setup doctor`: checks of the whole host that explain why GPUs do or
//! don't work in Podman. Pure: every file is read through [`Observe`] (so
//! under `--root`), and what needs a process (versions, `nvidia-container-cli
//! -k list`) comes in as [`Probes`] gathered by the caller. Each check has a
//! stable id; `docs/doctor.md` lists them and their fixes.
//!
//! One file per subject, each check next to its tests: [`podman`] (Podman,
//! its configuration and runtimes), [`hooks`] (OCI hooks and CDI),
//! [`toolkit`] (the NVIDIA toolkit and its config.toml), [`devices`] (GPU
//! device nodes, cgroups, the driver's files).

use std::collections::BTreeMap;

use serde::Serialize;

use crate::desired::DesiredState;
use crate::error::{ObserveError, PlanError};
use crate::facts::HostFacts;
use crate::observe::{Kind, Observe};
use crate::paths::TargetPath;
use crate::plan::plan_with;
use crate::podman::{self, ConfFile, DefaultRuntime, Effective};
use crate::upstream::{Podman, PodmanVersion, Toolkit, ToolkitVersion};

pub mod devices;
pub mod field;
pub mod hooks;
pub mod podman_checks;
pub mod toolkit;

pub use hooks::strategy_in_use;

/// How a check came out.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Nothing in this check keeps GPUs from working.
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
    pub(crate) fn new(id: &'static str, status: Status, message: impl Into<String>) -> Self {
        Check {
            id,
            status,
            message: message.into(),
            hint: None,
            details: Vec::new(),
        }
    }

    /// A failed check for an error reading or parsing a file.
    pub(crate) fn error(id: &'static str, e: &dyn HasHint) -> Self {
        Check::new(id, Status::Fail, e.text()).hint(
            e.hint()
                .unwrap_or_else(|| "fix the file named above".to_owned()),
        )
    }

    pub(crate) fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    pub(crate) fn details(mut self, details: Vec<String>) -> Self {
        self.details = details;
        self
    }
}

/// An error with a hint.
pub(crate) trait HasHint {
    fn hint(&self) -> Option<String>;
    /// The error with its causes, on one line.
    fn text(&self) -> String;
}

impl HasHint for PlanError {
    fn hint(&self) -> Option<String> {
        PlanError::hint(self)
    }
    fn text(&self) -> String {
        crate::error::error_text(self)
    }
}

impl HasHint for ObserveError {
    fn hint(&self) -> Option<String> {
        ObserveError::hint(self)
    }
    fn text(&self) -> String {
        crate::error::error_text(self)
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
    /// What `nvidia-ctk cdi generate` prints now (to see whether a spec is
    /// stale), or why it failed; `None` when it was not run.
    pub cdi_generated: Option<Result<Vec<u8>, String>>,
}

impl Probes {
    /// The toolkit's version, from the first NVIDIA tool that printed one.
    pub fn toolkit_version(&self) -> Option<ToolkitVersion> {
        [
            "nvidia-container-runtime",
            "nvidia-ctk",
            "nvidia-container-runtime-hook",
            "nvidia-container-toolkit",
        ]
        .iter()
        .filter_map(|t| self.tool_versions.get(*t))
        .find_map(|v| ToolkitVersion::parse(v))
    }
}

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
    crate::paths::well_known::DEFAULT_PATH_DIRS
        .iter()
        .filter_map(|d| TargetPath::new(&format!("{d}/{name}")).ok())
        .find(|p| is_executable(host, p))
}

pub(crate) fn is_executable(host: &dyn Observe, p: &TargetPath) -> bool {
    matches!(host.meta(p), Ok(Some(m)) if m.kind == Kind::File && m.mode & 0o111 != 0)
}

/// What doctor learned about Podman, for scripts (`doctor --format json`,
/// key `podman`) and for the cross-check against `podman info`.
#[derive(Clone, Debug, Default, Serialize)]
pub struct PodmanView {
    /// Podman's version, when known.
    pub version: Option<PodmanVersion>,
    /// Which rules were followed: `"5.x"`-style for a known version,
    /// `"any released"` when unknown, and `provisional` for 6.x.
    pub rules: String,
    /// The containers.conf files Podman reads that exist, in order.
    pub config_files: Vec<TargetPath>,
    /// The default OCI runtime, when one resolves or is set.
    pub default_runtime: Option<DefaultRuntime>,
    /// Each runtime entry and the executable it resolves to (`null`: Podman
    /// drops the entry).
    pub runtimes: BTreeMap<String, Option<TargetPath>>,
    /// The hooks dirs, lowest priority first.
    pub hooks_dirs: Vec<String>,
    /// The CDI spec dirs, lowest priority first.
    pub cdi_spec_dirs: Vec<String>,
}

/// Everything doctor found: the checks, and Podman's view.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// Each check, in a fixed order.
    pub checks: Vec<Check>,
    /// What Podman reads and runs on this host.
    pub podman: PodmanView,
}

impl Report {
    /// Whether any check failed.
    pub fn failed(&self) -> bool {
        self.checks.iter().any(|c| c.status == Status::Fail)
    }
}

/// What every check may use, computed once.
pub(crate) struct Context<'a> {
    pub desired: &'a DesiredState,
    pub facts: HostFacts,
    pub host: &'a dyn Observe,
    pub probes: &'a Probes,
    pub rules: Podman,
    pub toolkit: Toolkit,
    /// The containers.conf files, or why Podman cannot read them.
    pub conf: Result<Vec<ConfFile>, PlanError>,
    pub effective: Option<Effective>,
    pub default_runtime: Option<DefaultRuntime>,
    /// NVIDIA's refresh units under the root.
    pub refresh: crate::cdi::RefreshUnits,
}

impl Context<'_> {
    pub(crate) fn path_dirs(&self) -> Vec<TargetPath> {
        self.facts.path_dirs()
    }
}

/// Runs every check. Podman's version comes from `facts`, else from the
/// probes (unknown: the rules of any released Podman).
pub fn run(
    desired: &DesiredState,
    facts: &HostFacts,
    host: &dyn Observe,
    probes: &Probes,
) -> Report {
    let mut facts = facts.clone();
    if facts.podman_version.is_none() {
        facts.podman_version = probes
            .podman_version
            .as_deref()
            .and_then(PodmanVersion::parse);
    }
    let rules = Podman::new(facts.podman_version);
    let conf = podman::conf_files(&facts, host, None).map(|(files, _)| files);
    let effective = conf.as_ref().ok().map(|f| podman::effective(f));
    let default_runtime = effective
        .as_ref()
        .and_then(|e| podman::default_runtime(e, rules, host, &facts.path_dirs()));
    let cx = Context {
        desired,
        host,
        probes,
        rules,
        toolkit: Toolkit::new(probes.toolkit_version().or(facts.toolkit_version)),
        conf,
        effective,
        default_runtime,
        facts,
        refresh: crate::cdi::refresh_units(host),
    };
    let config = toolkit::read_nvidia_config(desired, host);
    let scan = hooks::HookScan::read(&cx);
    let specs = hooks::nvidia_specs(&cx);
    let mut checks = vec![
        podman_checks::podman_check(&cx),
        podman_checks::runtimes_check(&cx),
        hooks::hooks_check(&cx, &scan),
        toolkit::toolkit_check(&cx),
        toolkit::nvidia_config_check(&cx, &config),
        toolkit::runtime_mode_check(&cx, &config),
        toolkit::debug_logs_check(&cx, &config),
        field::ldconfig_check(&cx, &config),
        devices::gpu_devices_check(&cx, &config),
        field::uvm_check(&cx),
        devices::cgroups_check(&cx),
        field::selinux_check(&cx),
        hooks::cdi_check(&cx, &specs),
        field::cdi_devices_check(&cx, &specs),
        hooks::strategy_check(&cx, &scan, &specs),
        devices::mounts_check(&cx),
        desired_state_check(&cx),
    ];
    for c in &mut checks {
        if c.status == Status::Ok {
            c.hint = None;
        }
    }
    Report {
        podman: podman_checks::view(&cx),
        checks,
    }
}

fn desired_state_check(cx: &Context<'_>) -> Check {
    let mut desired = cx.desired.clone();
    let generates = desired.strategy == crate::Strategy::Cdi
        && desired.presence == crate::Presence::Present
        && desired.cdi_generated.is_none()
        && !cx.refresh.installed();
    if generates {
        // `--strategy cdi`: the plan needs what nvidia-ctk prints now.
        match &cx.probes.cdi_generated {
            Some(Ok(spec)) => desired.cdi_generated = Some(spec.clone()),
            Some(Err(e)) => {
                return Check::new(
                    "desired-state",
                    Status::Fail,
                    format!("cannot generate the CDI spec: {e}"),
                )
                .hint("`gpu-setup plan --strategy cdi` says what to do")
            }
            None => {
                return Check::new(
                    "desired-state",
                    Status::Skip,
                    "--strategy cdi: nvidia-ctk is run only when the root is `/`",
                )
            }
        }
    }
    match plan_with(&desired, &cx.facts, cx.host) {
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
        Err(e) => Check::new(
            "desired-state",
            Status::Fail,
            format!("cannot plan: {}", crate::error::error_text(&e)),
        )
        .hint(
            e.hint()
                .unwrap_or_else(|| "fix the file named above".to_owned()),
        ),
    }
}

/// Shared by the tests of every subject: a configured in-memory host and
/// helpers to run one check on it.
#[cfg(test)]
pub(crate) mod test_support {
    pub use super::*;
    pub use crate::desired::Settings;
    pub use crate::observe::{MemHost, Meta};

    pub const DEBIAN_CONF: &str = include_str!(
        "../../../../tests/fixtures/containers.conf/debian-bookworm-0.50.1+ds1-4.conf"
    );
    pub const UBUNTU_NV: &str = include_str!(
        "../../../../tests/fixtures/nvidia-config.toml/nvidia-container-toolkit-v1.13.5-ubuntu.toml"
    );
    pub const NVIDIA_HOOK_1_13: &str = include_str!(
        "../../../../tests/fixtures/hooks/nvidia-container-toolkit-v1.13.5-oci-nvidia-hook.json"
    );
    pub const SECCOMP_HOOK: &str = include_str!(
        "../../../../tests/fixtures/hooks/oci-seccomp-bpf-hook-v1.3.0-oci-seccomp-bpf-hook.json"
    );
    pub const HOOK: &str = "/usr/share/containers/oci/hooks.d/oci-nvidia-hook.json";
    pub const DROPIN: &str = "/etc/containers/containers.conf.d/99-nvidia.conf";
    pub const NV: &str = "/etc/nvidia-container-runtime/config.toml";

    pub fn desired() -> DesiredState {
        DesiredState::from_settings(&Settings::default()).unwrap()
    }

    pub fn tp(s: &str) -> TargetPath {
        TargetPath::new(s).unwrap()
    }

    /// A host gpu-setup configured, with the whole toolkit, Podman 4.3.1's
    /// files, crun and runc, cgroup v2 and one GPU.
    pub fn configured() -> MemHost {
        let mut host = MemHost::new()
            .with_file("/usr/share/containers/containers.conf", DEBIAN_CONF)
            .with_file(NV, UBUNTU_NV)
            .with_exe("/usr/bin/podman")
            .with_exe("/usr/bin/crun")
            .with_exe("/usr/sbin/runc")
            .with_file("/sys/fs/cgroup/cgroup.controllers", "cpu memory pids\n")
            .with_file("/etc/group", "root:x:0:\nvideo:x:44:alice\n")
            .with_meta("/dev/nvidia0", device(0o660, 44))
            .with_meta("/dev/nvidiactl", device(0o666, 0))
            .with_meta("/dev/nvidia-uvm", device(0o666, 0))
            .with_meta("/dev/nvidia-uvm-tools", device(0o666, 0))
            // Ubuntu's config.toml names Ubuntu's ldconfig.
            .with_exe("/sbin/ldconfig.real");
        for bin in TOOLKIT_BINARIES {
            host = host.with_exe(&format!("/usr/bin/{bin}"));
        }
        let plan = crate::plan(&desired(), &host).unwrap();
        host.apply(&plan);
        host
    }

    pub fn device(mode: u32, gid: u32) -> Meta {
        Meta {
            kind: Kind::Other,
            mode,
            uid: 0,
            gid,
        }
    }

    pub fn probes() -> Probes {
        Probes {
            podman_version: Some("podman version 4.3.1".to_owned()),
            ..Probes::default()
        }
    }

    /// [`probes`] with `nvidia-ctk --version` saying `version`.
    pub fn toolkit(version: &str) -> Probes {
        Probes {
            tool_versions: [(
                "nvidia-ctk".to_owned(),
                format!("NVIDIA Container Toolkit CLI version {version}"),
            )]
            .into_iter()
            .collect(),
            ..probes()
        }
    }

    pub fn report(host: &MemHost, probes: &Probes) -> Report {
        run(&desired(), &HostFacts::default(), host, probes)
    }

    pub fn check(host: &MemHost, probes: &Probes, id: &str) -> Check {
        report(host, probes)
            .checks
            .into_iter()
            .find(|c| c.id == id)
            .unwrap()
    }

    #[track_caller]
    pub fn assert_check(c: &Check, status: Status, message_start: &str) {
        assert_eq!(c.status, status, "{c:#?}");
        assert!(c.message.starts_with(message_start), "{c:#?}");
        match status {
            Status::Ok => assert!(c.hint.is_none(), "{c:#?}"),
            Status::Warn | Status::Fail => assert!(c.hint.is_some(), "{c:#?}"),
            Status::Skip => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::test_support::*;

    #[test]
    fn a_configured_host_passes_every_check() {
        let r = report(&configured(), &probes());
        let ids: Vec<&str> = r.checks.iter().map(|c| c.id).collect();
        assert_eq!(
            ids,
            [
                "podman",
                "runtimes",
                "hooks",
                "toolkit",
                "nvidia-config",
                "runtime-mode",
                "debug-logs",
                "ldconfig",
                "gpu-devices",
                "uvm",
                "cgroups",
                "selinux",
                "cdi",
                "cdi-devices",
                "strategy",
                "mounts",
                "desired-state"
            ]
        );
        for c in &r.checks {
            let expected = if ["mounts", "cdi-devices"].contains(&c.id) {
                Status::Skip
            } else {
                Status::Ok
            };
            assert_eq!(c.status, expected, "{c:#?}");
        }
        let hooks = r.checks.iter().find(|c| c.id == "hooks").unwrap();
        assert_eq!(
            hooks.message,
            format!("NVIDIA hook `{HOOK}` runs `/usr/bin/nvidia-container-toolkit` (prestart)")
        );
        let runtimes = r.checks.iter().find(|c| c.id == "runtimes").unwrap();
        assert_eq!(
            runtimes.message,
            format!("`nvidia` runs `/usr/bin/nvidia-container-runtime` (from {DROPIN}); default runtime crun (`/usr/bin/crun`, the first installed)")
        );
        assert_eq!(r.podman.default_runtime.as_ref().unwrap().name, "crun");
        assert_eq!(
            r.podman.config_files,
            [tp("/usr/share/containers/containers.conf"), tp(DROPIN)]
        );
        assert_eq!(r.podman.hooks_dirs, ["/usr/share/containers/oci/hooks.d"]);
    }

    #[test]
    fn field_failures_are_named_with_a_fix() {
        // SELinux enforcing, container_use_devices off (NVIDIA's guide).
        let host = configured()
            .with_file("/sys/fs/selinux/enforce", "1")
            .with_file("/sys/fs/selinux/booleans/container_use_devices", "0 0");
        assert_check(
            &check(&host, &probes(), "selinux"),
            Status::Fail,
            "SELinux is enforcing and container_use_devices is off: GPU containers fail with `Failed to initialize NVML: Insufficient Permissions`",
        );
        let on = host.with_file("/sys/fs/selinux/booleans/container_use_devices", "1 1");
        assert_check(
            &check(&on, &probes(), "selinux"),
            Status::Ok,
            "SELinux is enforcing and container_use_devices is on",
        );
        let permissive = configured().with_file("/sys/fs/selinux/enforce", "0");
        assert_check(
            &check(&permissive, &probes(), "selinux"),
            Status::Ok,
            "SELinux is permissive",
        );
        // The driver's nodes without the UVM ones (toolkit issue 50).
        let mut no_uvm = configured();
        no_uvm.remove(&tp("/dev/nvidia-uvm"));
        let c = check(&no_uvm, &probes(), "uvm");
        assert_check(
            &c,
            Status::Warn,
            "/dev/nvidia-uvm missing while the driver's nodes exist",
        );
        assert!(c
            .hint
            .unwrap()
            .contains("nvidia-ctk system create-device-nodes"));
        // A CDI spec naming a node that is gone (toolkit issue 885).
        let spec = "cdiVersion: 0.5.0\nkind: nvidia.com/gpu\ndevices:\n- name: all\n  containerEdits:\n    deviceNodes:\n    - path: /dev/nvidia0\n    - path: /dev/dri/renderD129\n";
        let stale = configured().with_file("/etc/cdi/nvidia.yaml", spec);
        assert_check(
            &check(&stale, &probes(), "cdi-devices"),
            Status::Fail,
            "`/dev/dri/renderD129` (in `/etc/cdi/nvidia.yaml`) do not exist",
        );
        let fine = stale.with_meta("/dev/dri/renderD129", device(0o666, 0));
        assert_check(
            &check(&fine, &probes(), "cdi-devices"),
            Status::Ok,
            "the 2 device node(s)",
        );
        // Ubuntu's ldconfig.real on a host that has only /sbin/ldconfig.
        let mut debian = configured().with_exe("/sbin/ldconfig");
        debian.remove(&tp("/sbin/ldconfig.real"));
        let c = check(&debian, &toolkit("1.13.5"), "ldconfig");
        assert_check(
            &c,
            Status::Warn,
            "config.toml's ldconfig = \"@/sbin/ldconfig.real\" does not exist on this host",
        );
        // Unknown toolkit: a warning; 1.17.9's and 1.20.0's hooks fall back
        // (seen in the matrix).
        assert_eq!(check(&debian, &probes(), "ldconfig").status, Status::Warn);
        for v in ["1.17.9", "1.20.0"] {
            assert_check(
                &check(&debian, &toolkit(v), "ldconfig"),
                Status::Ok,
                "config.toml's ldconfig = \"@/sbin/ldconfig.real\" does not exist, and this toolkit's hook uses /sbin/ldconfig instead",
            );
        }
        // A program that is nowhere: a failure whatever the version.
        let mut none = debian.clone();
        none.remove(&tp("/sbin/ldconfig"));
        assert_eq!(
            check(&none, &toolkit("1.20.0"), "ldconfig").status,
            Status::Fail
        );
        assert_eq!(
            c.hint.as_deref(),
            Some("set `ldconfig = \"@/sbin/ldconfig\"` under [nvidia-container-cli] in `/etc/nvidia-container-runtime/config.toml` (this host has /sbin/ldconfig)")
        );
    }

    #[test]
    fn desired_state_matches_plan() {
        assert_check(
            &check(&configured(), &probes(), "desired-state"),
            Status::Ok,
            "the host matches",
        );
        let mut host = configured();
        host.remove(&tp(HOOK));
        assert_check(
            &check(&host, &probes(), "desired-state"),
            Status::Warn,
            &format!("1 file(s) differ from gpu-setup's desired state: create {HOOK}"),
        );
    }

    #[test]
    fn desired_state_with_cdi_uses_what_nvidia_ctk_printed() {
        let cdi = DesiredState::from_settings(&Settings {
            strategy: Some(crate::Strategy::Cdi),
            ..Settings::default()
        })
        .unwrap();
        let host = configured();
        let state = |p: &Probes| {
            run(&cdi, &HostFacts::default(), &host, p)
                .checks
                .into_iter()
                .find(|c| c.id == "desired-state")
                .unwrap()
        };
        // Under another root nvidia-ctk is not run.
        assert_check(
            &state(&probes()),
            Status::Skip,
            "--strategy cdi: nvidia-ctk is run only when the root is `/`",
        );
        let failed = Probes {
            cdi_generated: Some(Err(
                "`/usr/bin/nvidia-ctk cdi generate` failed: NVML: Driver Not Loaded".into(),
            )),
            ..probes()
        };
        assert_check(&state(&failed), Status::Fail, "cannot generate the CDI spec: `/usr/bin/nvidia-ctk cdi generate` failed: NVML: Driver Not Loaded");
        let spec = "cdiVersion: 0.5.0\nkind: nvidia.com/gpu\ndevices: [{name: all}]\n";
        let ok = Probes {
            cdi_generated: Some(Ok(spec.as_bytes().to_vec())),
            ..probes()
        };
        assert_check(&state(&ok), Status::Warn, &format!("2 file(s) differ from gpu-setup's desired state: delete {HOOK}, create /etc/cdi/nvidia.yaml"));
    }
}
