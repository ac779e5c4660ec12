//! Which Podman and NVIDIA Container Toolkit version does what: every
//! version rule gpu-setup follows, in one place, each with the upstream
//! source it comes from (`../shared/docs/podman-nvidia-facts.md` has the
//! longer story). Podman 6.0.0-rc1 is tagged (2026-06-12) but 6.0 is not
//! released: its rules (from Podman main, 2026-05) are provisional and
//! apply only when a 6.x version is given.

use std::cmp::Ordering;
use std::fmt;

/// A version, `major.minor.patch`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
pub struct Version {
    /// The first number (`5` in 5.4.2).
    pub major: u32,
    /// The second (`4`): most rules start at a minor release.
    pub minor: u32,
    /// The third (`2`): a few rules need it (5.5.0 to 5.5.2 read only
    /// /etc/cdi).
    pub patch: u32,
}

impl Version {
    /// Parses the first word that starts with a digit: `4.3.1`, `podman
    /// version 4.3.1`, `5.0.0-rc1`, `NVIDIA Container Runtime version
    /// 1.13.5`. `None` when there is none.
    pub fn parse(text: &str) -> Option<Self> {
        let word = text
            .split_whitespace()
            .find(|w| w.starts_with(|c: char| c.is_ascii_digit()))?;
        let mut nums = word
            .split(['.', '-', '+', '~'])
            .map(|p| p.parse::<u32>().ok());
        let major = nums.next()??;
        let minor = nums.next().flatten().unwrap_or(0);
        let patch = nums.next().flatten().unwrap_or(0);
        Some(Version {
            major,
            minor,
            patch,
        })
    }

    /// Whether this is `major.minor` or later.
    pub fn at_least(self, major: u32, minor: u32) -> bool {
        (self.major, self.minor).cmp(&(major, minor)) != Ordering::Less
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

/// A version of one program: its own type, so a Podman version cannot be
/// given where a toolkit version is meant. It derefs to [`Version`].
macro_rules! program_version {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
        #[serde(transparent)]
        pub struct $name(pub Version);

        impl $name {
            /// Parses as [`Version::parse`] does.
            pub fn parse(text: &str) -> Option<Self> {
                Version::parse(text).map($name)
            }
        }

        impl std::ops::Deref for $name {
            type Target = Version;
            fn deref(&self) -> &Version {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}

program_version! {
    /// A Podman version.
    PodmanVersion
}

program_version! {
    /// An NVIDIA Container Toolkit version.
    ToolkitVersion
}

/// The newest released Podman (tag v5.8.3, 2026-06-12, the day v6.0.0-rc1
/// was tagged in podman-container-tools/podman); 6.x rules are provisional.
pub const NEWEST_RELEASED_PODMAN: Version = Version {
    major: 5,
    minor: 8,
    patch: 3,
};

/// The newest Podman pre-release whose rules gpu-setup has (v6.0.0-rc1).
pub const NEWEST_PODMAN_PRERELEASE: &str = "6.0.0-rc1";

/// Podman's rules, for a known version or, when the version is unknown,
/// for any released Podman: a rule that makes Podman read more (a file, an
/// attribute) holds, so nothing any released Podman reads is missed; 6.x
/// rules do not.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Podman {
    /// The version, when known.
    pub version: Option<PodmanVersion>,
}

impl Podman {
    /// The rules of `version` (unknown: any released Podman).
    pub fn new(version: Option<PodmanVersion>) -> Self {
        Podman { version }
    }

    fn since(self, major: u32, minor: u32) -> bool {
        self.version.is_none_or(|v| v.at_least(major, minor))
    }

    /// Reads `containers.conf.d` drop-ins: Podman 3.3 (containers/common
    /// v0.40, `pkg/config/config.go` `systemConfigs`).
    pub fn reads_dropins(self) -> bool {
        self.since(3, 3)
    }

    /// Reads `$CONTAINERS_CONF_OVERRIDE` last, even with `$CONTAINERS_CONF`:
    /// Podman 4.5 (containers/common v0.53.0, `pkg/config/config.go`).
    pub fn reads_conf_override(self) -> bool {
        self.since(4, 5)
    }

    /// Accepts `["...", {append=true}]` in string arrays such as `hooks_dir`
    /// (the array extends earlier files' instead of replacing it): Podman
    /// 4.8 (containers/common v0.57.0, `internal/attributedstring`).
    /// Before, such a table makes every podman command fail.
    pub fn accepts_append_attribute(self) -> bool {
        self.since(4, 8)
    }

    /// Root reads `~/.config/containers/containers.conf{,.d}` too (before,
    /// only rootless users did): Podman 5.0 (containers/common v0.58.0,
    /// `pkg/config/new.go` `systemConfigs`).
    pub fn root_reads_user_config(self) -> bool {
        self.since(5, 0)
    }

    /// Passes hooks.d prestart hooks to the OCI runtime as `createRuntime`
    /// hooks, which the NVIDIA runtime never strips: Podman 5.0.
    pub fn hooks_as_create_runtime(self) -> bool {
        self.version.is_some_and(|v| v.at_least(5, 0))
    }

    /// Honours `[engine] cdi_spec_dirs`: Podman 5.5.
    pub fn honours_cdi_spec_dirs(self) -> bool {
        self.since(5, 5)
    }

    /// Rootless users also read `/etc/containers/containers.rootless.conf`,
    /// `.../containers.rootless.conf.d/` and its `<UID>/`: Podman 5.7
    /// (container-libs common v0.65.0, `pkg/config/new.go`). 6.x drops the
    /// main rootless file and keeps the directories.
    pub fn reads_rootless_system_files(self) -> bool {
        self.since(5, 7) && !self.single_main_file()
    }

    /// Has `[engine.runtimes_flags]`, where a key without a matching
    /// `[engine.runtimes]` entry fails validation: Podman 5.7.
    pub fn has_runtimes_flags(self) -> bool {
        self.since(5, 7)
    }

    /// Reads ONE main containers.conf (the first of the user's, /etc's,
    /// /usr/share's that exists) plus every drop-in directory as one
    /// name→file map: Podman 6.0, unreleased, provisional
    /// (containers/podman `contrib/design-docs/config-file-parsing.md`).
    pub fn single_main_file(self) -> bool {
        self.version.is_some_and(|v| v.major >= 6)
    }

    /// The runtimes Podman tries, in order, when no file sets `[engine]
    /// runtime`: the first installed wins (containers/common
    /// `pkg/config/config.go` `findRuntime()`: crun, runc, kata up to
    /// v0.43; runsc from v0.44; runj from v0.49 (Podman 4.2); ocijail from
    /// v0.51 (Podman 4.4)). Unknown: the newest list.
    pub fn default_runtime_candidates(self) -> &'static [&'static str] {
        match self.version {
            Some(v) if !v.at_least(3, 4) => &["crun", "runc", "kata"],
            Some(v) if !v.at_least(4, 2) => &["crun", "runc", "kata", "runsc"],
            Some(v) if !v.at_least(4, 4) => &["crun", "runc", "runj", "kata", "runsc"],
            _ => &["crun", "runc", "runj", "kata", "runsc", "ocijail"],
        }
    }

    /// Resolves `--device nvidia.com/gpu=all` from CDI specs: Podman 3.2
    /// (containers/podman RELEASE_NOTES.md, 3.2.0: "Podman now supports the
    /// Container Device Interface (CDI) standard"; v3.1.0's go.mod has no
    /// container-device-interface), checked here with 4.3.1. Unknown: yes.
    pub fn reads_cdi_specs(self) -> bool {
        self.since(3, 2)
    }

    /// The newest `cdiVersion` this Podman's vendored CDI library accepts
    /// (tags.cncf.io/container-device-interface `specs-go/version.go`, as
    /// vendored by each Podman tag): 0.2.0 up to 4.0 (3.2-3.4 read only
    /// `/etc/cdi/*.json`), 0.4.0 in 4.1-4.2, 0.5.0 in 4.3-4.6, 0.6.0 in
    /// 4.7-5.0, 0.7.0 from 5.1. `None`: no CDI at all (before 3.2).
    /// Unknown version: the newest.
    pub fn max_cdi_version(self) -> Option<Version> {
        let v = |minor| Version {
            major: 0,
            minor,
            patch: 0,
        };
        match self.version {
            Some(_) if !self.reads_cdi_specs() => None,
            Some(p) if !p.at_least(4, 1) => Some(v(2)),
            Some(p) if !p.at_least(4, 3) => Some(v(4)),
            Some(p) if !p.at_least(4, 7) => Some(v(5)),
            Some(p) if !p.at_least(5, 1) => Some(v(6)),
            _ => Some(v(7)),
        }
    }

    /// Can use the specs NVIDIA generates: their device names (`0`, `1`)
    /// need `cdiVersion` 0.5.0, so Podman 4.3 and later (seen here: 3.0.1
    /// fails `stat nvidia.com/gpu=all`; 4.3.1, 5.4.2, 5.8.6 resolve it).
    /// Unknown: yes.
    pub fn reads_nvidia_cdi_specs(self) -> bool {
        self.since(4, 3)
    }

    /// The CDI spec dirs this Podman reads when `cdi_spec_dirs` is not
    /// set: `/etc/cdi` and `/var/run/cdi`, except 3.2-3.4 (the pre-0.3
    /// library: `/etc/cdi` only) and 5.5.0-5.5.2 (containers/common
    /// v0.63.x `pkg/config/default.go` lists `/etc/cdi` only; fixed in
    /// v0.64.0, containers/podman#26569).
    pub fn default_cdi_dirs(self) -> &'static [&'static str] {
        const BOTH: &[&str] = &["/etc/cdi", "/var/run/cdi"];
        const ETC: &[&str] = &["/etc/cdi"];
        match self.version {
            Some(v) if v.at_least(3, 2) && !v.at_least(4, 0) => ETC,
            Some(v) if v.at_least(5, 5) && !v.at_least(5, 6) && v.patch <= 2 => ETC,
            _ => BOTH,
        }
    }

    /// Turns `--gpus all` into the CDI request `nvidia.com/gpu=all`:
    /// Podman 5.0 (containers/podman `pkg/specgenutil/specgen.go`), so on
    /// a host with only the hook `--gpus` fails with `unresolvable CDI
    /// devices`. Unknown: no (only a known 5.x says so).
    pub fn gpus_flag_means_cdi(self) -> bool {
        self.version.is_some_and(|v| v.at_least(5, 0))
    }

    /// Runs on cgroup v1 hosts: every version before 6.0 (6.0 drops cgroup
    /// v1: podman-container-tools/podman v6.0.0-rc1 release notes;
    /// provisional).
    pub fn supports_cgroup_v1(self) -> bool {
        !self.single_main_file()
    }

    /// The rules followed, for messages: `Podman 4.3.1`, or `any released
    /// Podman` when the version is unknown.
    pub fn describe(self) -> String {
        match self.version {
            Some(v) => format!("Podman {v}"),
            None => "any released Podman".to_owned(),
        }
    }
}

/// The NVIDIA Container Toolkit's rules for one version (unknown: the
/// rules of the newest toolkit).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Toolkit {
    /// The version, when known.
    pub version: Option<ToolkitVersion>,
}

/// The runtime modes the toolkit accepts; anything else is an error
/// (`internal/info/auto.go`; `jit-cdi` since v1.18).
pub const RUNTIME_MODES: [&str; 5] = ["auto", "legacy", "csv", "cdi", "jit-cdi"];

impl Toolkit {
    /// The rules of `version`.
    pub fn new(version: Option<ToolkitVersion>) -> Self {
        Toolkit { version }
    }

    fn since(self, major: u32, minor: u32) -> bool {
        self.version.is_none_or(|v| v.at_least(major, minor))
    }

    /// What `mode = "auto"` resolves to for the runtime (not the hook) on
    /// a host with NVML: legacy up to v1.17, jit-cdi from v1.18.0
    /// (`internal/info/auto.go`, `NewRuntimeModeResolver` default).
    pub fn runtime_auto_mode(self) -> &'static str {
        if self.since(1, 18) {
            "jit-cdi"
        } else {
            "legacy"
        }
    }

    /// Whether the runtime removes NVIDIA prestart hooks from the OCI spec
    /// in `mode` (resolved): csv before v1.18; cdi, jit-cdi and csv from
    /// v1.18 (`internal/modifier/hook_remover.go`, `mode.go`).
    pub fn runtime_strips_hooks(self, mode: &str) -> bool {
        if self.since(1, 18) {
            matches!(mode, "cdi" | "jit-cdi" | "csv")
        } else {
            mode == "csv"
        }
    }

    /// Whether the hook binary refuses (panics) for GPU containers when its
    /// own mode is not legacy: v1.11 and later
    /// (`cmd/nvidia-container-runtime-hook/hook_config.go`
    /// `assertModeIsLegacy`). It resolves `auto` with legacy as its default
    /// on NVML and WSL hosts, so only an explicit cdi, jit-cdi or csv mode
    /// breaks it.
    pub fn hook_requires_legacy(self) -> bool {
        self.since(1, 11)
    }

    /// Whether `[nvidia-container-runtime-hook] skip-mode-detection`
    /// exists (it turns the check above off): v1.13 and later.
    pub fn has_skip_mode_detection(self) -> bool {
        self.since(1, 13)
    }

    /// The hook binary: `/usr/bin/nvidia-container-toolkit` up to v1.10,
    /// `/usr/bin/nvidia-container-runtime-hook` from v1.11 (with the old
    /// name kept as a symlink by the packages).
    pub fn hook_binary(self) -> &'static str {
        if self.since(1, 11) {
            "/usr/bin/nvidia-container-runtime-hook"
        } else {
            "/usr/bin/nvidia-container-toolkit"
        }
    }

    /// Generates `/var/run/cdi/nvidia.yaml` at boot and on driver changes
    /// with `nvidia-cdi-refresh.{service,path}`: v1.18 and later.
    pub fn refreshes_cdi_spec(self) -> bool {
        self.version.is_some_and(|v| v.at_least(1, 18))
    }

    /// Has `nvidia-ctk cdi generate`: v1.12 and later.
    pub fn generates_cdi(self) -> bool {
        self.since(1, 12)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> Option<Version> {
        Version::parse(s)
    }

    #[test]
    fn versions_parse_from_program_output() {
        assert_eq!(v("podman version 4.3.1").unwrap().to_string(), "4.3.1");
        assert_eq!(v("5.0.0-rc1").unwrap().to_string(), "5.0.0");
        assert_eq!(v("3.3").unwrap().to_string(), "3.3.0");
        assert_eq!(
            v("NVIDIA Container Runtime version 1.13.5")
                .unwrap()
                .to_string(),
            "1.13.5"
        );
        assert_eq!(v("podman"), None);
    }

    #[test]
    fn podman_rules_follow_the_release_that_brought_them() {
        let p = |s: &str| Podman::new(v(s).map(PodmanVersion));
        assert!(!p("3.2.3").reads_dropins() && p("3.3.0").reads_dropins());
        assert!(!p("4.4.0").reads_conf_override() && p("4.5.0").reads_conf_override());
        assert!(!p("4.7.2").accepts_append_attribute() && p("4.8.0").accepts_append_attribute());
        assert!(!p("4.9.3").root_reads_user_config() && p("5.0.0").root_reads_user_config());
        assert!(!p("5.4.2").honours_cdi_spec_dirs() && p("5.5.0").honours_cdi_spec_dirs());
        assert!(
            !p("5.6.2").reads_rootless_system_files() && p("5.7.0").reads_rootless_system_files()
        );
        assert!(!p("6.0.0").reads_rootless_system_files());
        assert!(!p("5.8.2").single_main_file() && p("6.0.0").single_main_file());
        // Unknown: every released rule that reads more, no 6.x rule.
        let any = Podman::new(None);
        assert!(any.reads_dropins() && any.root_reads_user_config() && any.has_runtimes_flags());
        assert!(!any.single_main_file() && !any.hooks_as_create_runtime());
        assert_eq!(
            p("4.3.1").default_runtime_candidates(),
            ["crun", "runc", "runj", "kata", "runsc"]
        );
        assert_eq!(
            p("3.0.1").default_runtime_candidates(),
            ["crun", "runc", "kata"]
        );
        assert_eq!(any.default_runtime_candidates().last(), Some(&"ocijail"));
    }

    #[test]
    fn cdi_rules_follow_the_cdi_library_each_podman_vendors() {
        let p = |s: &str| Podman::new(v(s).map(PodmanVersion));
        let max = |s: &str| p(s).max_cdi_version().map(|v| v.to_string());
        // Podman's vendored tags.cncf.io/container-device-interface per tag
        // (specs-go/version.go): the newest cdiVersion each accepts.
        assert_eq!(max("3.0.1"), None);
        assert_eq!(max("3.4.4").as_deref(), Some("0.2.0"));
        assert_eq!(max("4.0.2").as_deref(), Some("0.2.0"));
        assert_eq!(max("4.2.0").as_deref(), Some("0.4.0"));
        assert_eq!(max("4.3.1").as_deref(), Some("0.5.0"));
        assert_eq!(max("4.6.2").as_deref(), Some("0.5.0"));
        assert_eq!(max("4.7.0").as_deref(), Some("0.6.0"));
        assert_eq!(max("5.0.3").as_deref(), Some("0.6.0"));
        assert_eq!(max("5.1.0").as_deref(), Some("0.7.0"));
        assert_eq!(
            Podman::new(None)
                .max_cdi_version()
                .map(|v| v.to_string())
                .as_deref(),
            Some("0.7.0")
        );
        // NVIDIA's device names need 0.5.0: Podman 4.3 (seen here: 3.0.1
        // fails, 4.3.1 / 5.4.2 / 5.8.6 resolve nvidia.com/gpu=all).
        assert!(!p("4.2.0").reads_nvidia_cdi_specs() && p("4.3.0").reads_nvidia_cdi_specs());
        assert!(Podman::new(None).reads_nvidia_cdi_specs());
        // containers/common v0.63.x lists only /etc/cdi (podman#26569).
        assert_eq!(p("5.5.2").default_cdi_dirs(), ["/etc/cdi"]);
        assert_eq!(p("5.5.3").default_cdi_dirs(), ["/etc/cdi", "/var/run/cdi"]);
        assert_eq!(p("5.4.2").default_cdi_dirs(), ["/etc/cdi", "/var/run/cdi"]);
        assert_eq!(p("3.4.4").default_cdi_dirs(), ["/etc/cdi"]);
        // --gpus means CDI from 5.0 (pkg/specgenutil/specgen.go).
        assert!(!p("4.9.4").gpus_flag_means_cdi() && p("5.0.0").gpus_flag_means_cdi());
        assert!(!Podman::new(None).gpus_flag_means_cdi());
        // 6.0 drops cgroup v1.
        assert!(p("5.8.6").supports_cgroup_v1() && !p("6.0.0").supports_cgroup_v1());
        assert_eq!(p("3.0.1").describe(), "Podman 3.0.1");
        assert_eq!(Podman::new(None).describe(), "any released Podman");
    }

    #[test]
    fn toolkit_rules_follow_the_release_that_brought_them() {
        let t = |s: &str| Toolkit::new(v(s).map(ToolkitVersion));
        assert_eq!(t("1.17.8").runtime_auto_mode(), "legacy");
        assert_eq!(t("1.18.0").runtime_auto_mode(), "jit-cdi");
        assert!(
            t("1.17.0").runtime_strips_hooks("csv") && !t("1.17.0").runtime_strips_hooks("cdi")
        );
        assert!(
            t("1.18.0").runtime_strips_hooks("cdi") && !t("1.18.0").runtime_strips_hooks("legacy")
        );
        assert!(!t("1.10.0").hook_requires_legacy() && t("1.11.0").hook_requires_legacy());
        assert_eq!(
            t("1.10.0").hook_binary(),
            "/usr/bin/nvidia-container-toolkit"
        );
        assert_eq!(
            t("1.13.5").hook_binary(),
            "/usr/bin/nvidia-container-runtime-hook"
        );
        assert!(!t("1.17.0").refreshes_cdi_spec() && t("1.18.0").refreshes_cdi_spec());
        assert!(!t("1.11.0").generates_cdi() && t("1.12.0").generates_cdi());
        let p = |s: &str| Podman::new(v(s).map(PodmanVersion));
        assert!(!p("3.1.2").reads_cdi_specs() && p("3.2.0").reads_cdi_specs());
    }
}
