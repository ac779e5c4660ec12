//! The desired state of a host: built-in defaults, then a profile file, then
//! command-line flags (later layers win).

use serde::Serialize;

use crate::error::{line_col, PlanError};
use crate::paths::{well_known, TargetPath};
use crate::roles::Role;

pub use crate::settings::{HealMode, Presence, Settings, Strategy};

impl Settings {
    /// Parses a profile file (TOML). `path` is only used in messages.
    pub fn from_profile(path: &str, text: &str) -> Result<Self, ProfileError> {
        toml_edit::de::from_str(text).map_err(|e| {
            let (line, column) = e.span().map_or((1, 1), |s| line_col(text, s.start));
            ProfileError {
                path: path.to_owned(),
                line,
                column,
                message: e.message().trim().to_owned(),
            }
        })
    }
}

/// A profile file that does not parse or holds unknown keys.
#[derive(Debug, thiserror::Error)]
#[error("`{path}` line {line}, column {column}: {message}")]
pub struct ProfileError {
    /// The profile's path as given.
    pub path: String,
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
    /// What is wrong.
    pub message: String,
}

/// What gpu-setup's journal remembers of the files it managed (filled by
/// the caller, which reads the journal).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Memory {
    /// The files whose content is what gpu-setup last wrote to them.
    pub ours: std::collections::BTreeSet<TargetPath>,
    /// For each of those, what was there before gpu-setup first changed it
    /// (`None`: nothing, gpu-setup created it).
    pub originals: std::collections::BTreeMap<TargetPath, Option<Vec<u8>>>,
    /// The directories gpu-setup's standing transactions created, parents
    /// first (`--state absent` removes them when empty).
    pub created_dirs: Vec<TargetPath>,
}

/// What the host should look like.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DesiredState {
    /// Present or absent.
    pub presence: Presence,
    /// File that receives the runtime entry.
    pub containers_conf: TargetPath,
    /// Name of the runtime entry under `[engine.runtimes]`.
    pub runtime_name: String,
    /// The runtime executable.
    pub runtime_path: TargetPath,
    /// NVIDIA toolkit configuration file.
    pub nvidia_config: TargetPath,
    /// `[nvidia-container-cli] no-cgroups`.
    pub no_cgroups: bool,
    /// The OCI hook file.
    pub hook_file: TargetPath,
    /// The hook executable.
    pub hook_path: TargetPath,
    /// `[nvidia-container-cli] debug`, when managed.
    pub cli_debug_log: Option<TargetPath>,
    /// `[nvidia-container-runtime] debug`, when managed.
    pub runtime_debug_log: Option<TargetPath>,
    /// Debug logs in unsafe directories become a warning instead of an error.
    pub allow_unsafe_log_path: bool,
    /// A managed file that is a symbolic link is written through (its
    /// target must stay inside the root) instead of refused.
    pub follow_symlinks: bool,
    /// How GPUs reach containers.
    pub strategy: Strategy,
    /// The CDI spec gpu-setup manages for `--strategy cdi`.
    pub cdi_spec: TargetPath,
    /// The `nvidia-ctk` on the running system (not under `--root`).
    pub nvidia_ctk: TargetPath,
    /// Whether the runtime entry is managed: always with the hook; with CDI
    /// only when a runtime setting is given (CDI does not use it).
    pub manage_runtime: bool,
    /// Whether `no-cgroups` is managed: always with the hook; with CDI only
    /// when given (CDI does not use nvidia-container-cli).
    pub manage_no_cgroups: bool,
    /// What `nvidia-ctk cdi generate` printed (filled by the caller, which
    /// runs it): the content of `cdi_spec`. `None`: not generated (NVIDIA's
    /// refresh units own the spec, or the strategy is the hook).
    #[serde(skip)]
    pub cdi_generated: Option<Vec<u8>>,
    /// Whether the spec at `cdi_spec` is one gpu-setup wrote, as its
    /// journal shows (filled by the caller; a YAML spec also says so with
    /// its marker line, which a JSON spec cannot carry).
    #[serde(skip)]
    pub cdi_spec_written: bool,
    /// Whether the hook executable was given (`--hook-path`, profile): then
    /// it means exactly that path. Otherwise a hook whose executable is the
    /// same file (a package's, through the toolkit's symlinks) will do.
    pub hook_path_explicit: bool,
    /// Whether the runtime path was given: then it means exactly that path.
    pub runtime_path_explicit: bool,
    /// Whether the strategy was given (flag or profile). Otherwise `doctor`
    /// judges the host by the GPU path it finds set up.
    pub strategy_explicit: bool,
    /// What the journal remembers (see [`Memory`]).
    #[serde(skip)]
    pub memory: Memory,
    /// The profile's `history_keep`: prune the journal after a transaction.
    #[serde(skip)]
    pub history_keep: Option<usize>,
}

impl DesiredState {
    /// Resolves settings over the built-in defaults for any released
    /// Podman, validating every value (see [`DesiredState::resolve`]).
    pub fn from_settings(s: &Settings) -> Result<Self, PlanError> {
        Self::resolve(s, &crate::facts::HostFacts::default())
    }

    /// Resolves settings over the built-in defaults for the host `facts`
    /// describe, validating every value. The defaults follow the facts:
    /// Podman before 3.3 reads no drop-ins, so there the runtime entry goes
    /// into `/etc/containers/containers.conf` (edited in place, created
    /// when absent) unless `containers_conf` names a file.
    pub fn resolve(s: &Settings, facts: &crate::facts::HostFacts) -> Result<Self, PlanError> {
        let default_conf = if crate::upstream::Podman::new(facts.podman_version).reads_dropins() {
            well_known::DEFAULT_DROPIN
        } else {
            well_known::ETC_CONTAINERS_CONF
        };
        let file = |setting: &'static str, value: &Option<String>, default: &str| {
            TargetPath::file(value.as_deref().unwrap_or(default))
                .map_err(|source| PlanError::Path { setting, source })
        };
        let optional = |setting: &'static str, value: &Option<String>| {
            value
                .as_deref()
                .map(|v| TargetPath::file(v).map_err(|source| PlanError::Path { setting, source }))
                .transpose()
        };
        let runtime_name = s
            .runtime_name
            .clone()
            .unwrap_or_else(|| well_known::DEFAULT_RUNTIME_NAME.to_owned());
        let valid_name = !runtime_name.is_empty()
            && runtime_name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
        if !valid_name {
            return Err(PlanError::Setting {
                setting: "runtime name",
                message: format!("`{runtime_name}`: use letters, digits, `-`, `_` and `.` only"),
            });
        }
        let strategy = s.strategy.unwrap_or_default();
        let hook = strategy == Strategy::Hook;
        let desired = DesiredState {
            strategy,
            cdi_spec: file("CDI spec path", &s.cdi_spec, well_known::DEFAULT_CDI_SPEC)?,
            nvidia_ctk: file(
                "nvidia-ctk path",
                &s.nvidia_ctk,
                well_known::DEFAULT_NVIDIA_CTK,
            )?,
            manage_runtime: hook
                || s.containers_conf.is_some()
                || s.runtime_name.is_some()
                || s.runtime_path.is_some(),
            manage_no_cgroups: hook || s.no_cgroups.is_some(),
            cdi_generated: None,
            cdi_spec_written: false,
            hook_path_explicit: s.hook_path.is_some(),
            strategy_explicit: s.strategy.is_some(),
            memory: Memory::default(),
            history_keep: s.history_keep,
            runtime_path_explicit: s.runtime_path.is_some(),
            presence: s.state.unwrap_or_default(),
            containers_conf: file("containers.conf path", &s.containers_conf, default_conf)?,
            runtime_name,
            runtime_path: file(
                "runtime path",
                &s.runtime_path,
                well_known::DEFAULT_RUNTIME_PATH,
            )?,
            nvidia_config: file(
                "NVIDIA config path",
                &s.nvidia_config,
                well_known::DEFAULT_NVIDIA_CONFIG,
            )?,
            no_cgroups: s.no_cgroups.unwrap_or(true),
            hook_file: file("hook file", &s.hook_file, well_known::DEFAULT_HOOK_FILE)?,
            hook_path: file("hook path", &s.hook_path, well_known::DEFAULT_HOOK_PATH)?,
            cli_debug_log: optional("CLI debug log", &s.cli_debug_log)?,
            runtime_debug_log: optional("runtime debug log", &s.runtime_debug_log)?,
            allow_unsafe_log_path: s.allow_unsafe_log_path.unwrap_or(false),
            follow_symlinks: s.follow_symlinks.unwrap_or(false),
        };
        // Each managed file has a path of its own, with the name its
        // reader looks for (and the journal only ever restores such files:
        // `managed_path_problem`).
        for (i, a) in Role::ALL.iter().enumerate() {
            let path = a.path(&desired);
            if let Some(b) = Role::ALL[i + 1..].iter().find(|b| b.path(&desired) == path) {
                return Err(PlanError::Setting {
                    setting: "file paths",
                    message: format!(
                        "`{path}` is given for both the {} and the {}: each managed file needs its own",
                        a.setting(),
                        b.setting()
                    ),
                });
            }
        }
        for role in Role::ALL {
            let (path, setting) = (role.path(&desired), role.setting());
            let (suffixes, why) = role.suffixes();
            let name = path.file_name();
            if !suffixes.iter().any(|s| name.ends_with(s)) {
                return Err(PlanError::Setting {
                    setting,
                    message: format!("`{path}` does not end in `{}`: {why}", suffixes[0]),
                });
            }
            if let Some(problem) = crate::paths::managed_path_problem(path) {
                return Err(PlanError::Setting {
                    setting,
                    message: format!("`{path}`: {problem}"),
                });
            }
        }
        Ok(desired)
    }
}

impl DesiredState {
    /// Every setting spelled out: a layer that gives back this desired
    /// state (a saved plan records it). Settings CDI leaves alone stay
    /// unset, so they stay left alone.
    pub fn to_settings(&self) -> Settings {
        let runtime = |v: String| self.manage_runtime.then_some(v);
        Settings {
            containers_conf: runtime(self.containers_conf.to_string()),
            runtime_name: runtime(self.runtime_name.clone()),
            runtime_path: self
                .runtime_path_explicit
                .then(|| self.runtime_path.to_string())
                .and_then(runtime),
            nvidia_config: Some(self.nvidia_config.to_string()),
            no_cgroups: self.manage_no_cgroups.then_some(self.no_cgroups),
            hook_file: Some(self.hook_file.to_string()),
            hook_path: self.hook_path_explicit.then(|| self.hook_path.to_string()),
            cli_debug_log: self.cli_debug_log.as_ref().map(ToString::to_string),
            runtime_debug_log: self.runtime_debug_log.as_ref().map(ToString::to_string),
            state: Some(self.presence),
            allow_unsafe_log_path: Some(self.allow_unsafe_log_path),
            follow_symlinks: Some(self.follow_symlinks),
            strategy: Some(self.strategy),
            cdi_spec: Some(self.cdi_spec.to_string()),
            nvidia_ctk: Some(self.nvidia_ctk.to_string()),
            heal: None,
            history_keep: None,
        }
    }
}

impl Default for DesiredState {
    fn default() -> Self {
        #[allow(clippy::unwrap_used)] // the built-in defaults are valid by construction
        Self::from_settings(&Settings::default()).unwrap()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_the_documented_table() {
        let d = DesiredState::default();
        assert_eq!(
            d.containers_conf.as_str(),
            "/etc/containers/containers.conf.d/99-nvidia.conf"
        );
        assert_eq!(d.runtime_name, "nvidia");
        assert_eq!(d.runtime_path.as_str(), "/usr/bin/nvidia-container-runtime");
        assert_eq!(
            d.nvidia_config.as_str(),
            "/etc/nvidia-container-runtime/config.toml"
        );
        assert!(d.no_cgroups);
        assert_eq!(
            d.hook_file.as_str(),
            "/usr/share/containers/oci/hooks.d/oci-nvidia-hook.json"
        );
        assert_eq!(d.hook_path.as_str(), "/usr/bin/nvidia-container-toolkit");
        assert_eq!(d.cli_debug_log, None);
        assert_eq!(d.presence, Presence::Present);
    }

    #[test]
    fn flags_win_over_profile() {
        let profile =
            Settings::from_profile("p.toml", "runtime_name = \"gpu\"\nno_cgroups = false\n")
                .unwrap();
        let flags = Settings {
            no_cgroups: Some(true),
            ..Settings::default()
        };
        let d = DesiredState::from_settings(&profile.overlay(flags)).unwrap();
        assert_eq!(d.runtime_name, "gpu");
        assert!(d.no_cgroups);
    }

    #[test]
    fn profile_errors_are_located() {
        let e =
            Settings::from_profile("p.toml", "runtime_name = \"gpu\"\nbogus = 1\n").unwrap_err();
        assert_eq!((e.line, e.column), (2, 1));
        assert!(e.message.contains("unknown field `bogus`"), "{}", e.message);
        let e = Settings::from_profile("p.toml", "no_cgroups = \"yes\"\n").unwrap_err();
        assert_eq!((e.line, e.column), (1, 14));
    }

    #[test]
    fn settings_spelled_out_give_back_the_desired_state() {
        for strategy in [Strategy::Hook, Strategy::Cdi] {
            let d = DesiredState::from_settings(&Settings {
                cli_debug_log: Some("/var/log/cli.log".into()),
                state: Some(Presence::Absent),
                strategy: Some(strategy),
                ..Settings::default()
            })
            .unwrap();
            assert_eq!(DesiredState::from_settings(&d.to_settings()).unwrap(), d);
        }
    }

    #[test]
    fn cdi_leaves_the_runtime_and_no_cgroups_alone_unless_given() {
        let cdi = |s: Settings| {
            DesiredState::from_settings(&Settings {
                strategy: Some(Strategy::Cdi),
                ..s
            })
            .unwrap()
        };
        let d = cdi(Settings::default());
        assert!(!d.manage_runtime && !d.manage_no_cgroups);
        assert_eq!(d.cdi_spec.as_str(), "/etc/cdi/nvidia.yaml");
        let d = cdi(Settings {
            no_cgroups: Some(false),
            runtime_path: Some("/opt/rt".into()),
            ..Settings::default()
        });
        assert!(d.manage_runtime && d.manage_no_cgroups);
        let hook = DesiredState::default();
        assert!(hook.manage_runtime && hook.manage_no_cgroups);
        let e = DesiredState::from_settings(&Settings {
            cdi_spec: Some("/etc/cdi/nvidia.yml".into()),
            ..Settings::default()
        })
        .unwrap_err();
        assert_eq!(crate::error::error_text(&e), "invalid CDI spec path: `/etc/cdi/nvidia.yml` does not end in `.yaml`: Podman reads only `*.yaml` and `*.json` CDI specs");
    }

    #[test]
    fn bad_settings_are_rejected() {
        let bad = Settings {
            runtime_name: Some("nv idia".into()),
            ..Settings::default()
        };
        assert!(DesiredState::from_settings(&bad)
            .unwrap_err()
            .to_string()
            .contains("runtime name"));
        let same = Settings {
            hook_file: Some("/etc/nvidia-container-runtime/config.toml".into()),
            ..Settings::default()
        };
        assert_eq!(
            DesiredState::from_settings(&same).unwrap_err().to_string(),
            "invalid file paths: `/etc/nvidia-container-runtime/config.toml` is given for both the NVIDIA config path and the hook file: each managed file needs its own"
        );
        let bad = Settings {
            hook_path: Some("nvidia-container-toolkit".into()),
            ..Settings::default()
        };
        assert_eq!(
            crate::error::error_text(&DesiredState::from_settings(&bad).unwrap_err()),
            "invalid hook path: `nvidia-container-toolkit` is not an absolute path"
        );
    }
}
