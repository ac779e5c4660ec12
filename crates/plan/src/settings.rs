//! Every setting of the desired state, declared once: its profile key
//! (which is also its Ansible module argument and, with `-` for `_`, its
//! command-line flag), its type, how the command line takes it, its help
//! text and the default it shows. [`Settings`], the [`SETTINGS`] table the
//! CLI builds its flags from and the module its arguments, and
//! [`Settings::overlay`] all come from the one `settings!` list below.

use serde::{Deserialize, Serialize};

use crate::paths::well_known;

/// How a setting's value is written on the command line and in module
/// arguments (the profile takes its TOML type).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Text: a path or a name.
    Text,
    /// A boolean given as a value: `--no-cgroups false`.
    Bool,
    /// A boolean a bare flag turns on: `--follow-symlinks`.
    Switch,
    /// One of the named values, each with its help.
    Choice(&'static [(&'static str, &'static str)]),
    /// A number of things.
    Count,
}

/// One setting, as [`SETTINGS`] lists it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Setting {
    /// The profile key and module argument (`no_cgroups`).
    pub key: &'static str,
    /// How the value is written.
    pub kind: Kind,
    /// The placeholder in `--help` (`PATH`).
    pub value_name: &'static str,
    /// The default, as `--help` and the man page show it (`None`: unset
    /// leaves the file as it is).
    pub default: Option<&'static str>,
    /// Whether plan, apply, heal and doctor take it as a flag.
    pub flag: bool,
    /// Whether the Ansible module takes it as an argument.
    pub module: bool,
    /// What it does.
    pub help: &'static str,
}

impl Setting {
    /// The command-line flag, without the dashes (`no-cgroups`).
    pub fn flag_name(&self) -> String {
        self.key.replace('_', "-")
    }

    /// The values a [`Kind::Choice`] takes (empty for other kinds).
    pub fn choices(&self) -> Vec<&'static str> {
        match self.kind {
            Kind::Choice(values) => values.iter().map(|(v, _)| *v).collect(),
            _ => Vec::new(),
        }
    }

    /// The setting with `key`.
    pub fn get(key: &str) -> Option<&'static Setting> {
        SETTINGS.iter().find(|s| s.key == key)
    }
}

/// A setting's value type: how its text parses.
pub trait SettingValue: Sized {
    /// Parses the text the command line or a module argument gives (the
    /// message names the allowed values, not the setting).
    fn parse_text(text: &str) -> Result<Self, String>;
}

impl SettingValue for String {
    fn parse_text(text: &str) -> Result<Self, String> {
        Ok(text.to_owned())
    }
}

impl SettingValue for bool {
    fn parse_text(text: &str) -> Result<Self, String> {
        match text {
            "true" => Ok(true),
            "false" => Ok(false),
            _ => Err("must be true or false".to_owned()),
        }
    }
}

impl SettingValue for usize {
    fn parse_text(text: &str) -> Result<Self, String> {
        text.parse()
            .map_err(|_| "must be a whole number".to_owned())
    }
}

/// An enum of named values: the enum, its serde names, [`SettingValue`],
/// `as_str` and the `VALUES` a [`Kind::Choice`] lists, from one list.
macro_rules! choice {
    (
        $(#[$meta:meta])*
        pub enum $name:ident {
            $( $(#[doc = $doc:literal])+ $(#[$vmeta:meta])* $variant:ident = $text:literal, )+
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Deserialize, Serialize)]
        #[serde(rename_all = "lowercase")]
        pub enum $name {
            $( $(#[doc = $doc])+ $(#[$vmeta])* $variant, )+
        }

        impl $name {
            /// Each value's name and help.
            pub const VALUES: &'static [(&'static str, &'static str)] =
                &[$( ($text, concat!($($doc),+)), )+];

            /// The value's name.
            pub fn as_str(self) -> &'static str {
                match self { $( $name::$variant => $text, )+ }
            }
        }

        impl SettingValue for $name {
            fn parse_text(text: &str) -> Result<Self, String> {
                match text {
                    $( $text => Ok($name::$variant), )+
                    _ => Err(format!("must be {}", [$($text),+].join(" or "))),
                }
            }
        }
    };
}

choice! {
    /// Whether gpu-setup's configuration should be on the host or removed.
    pub enum Presence {
        /// Configure the host.
        #[default]
        Present = "present",
        /// Remove what gpu-setup manages.
        Absent = "absent",
    }
}

choice! {
    /// How GPUs reach containers.
    pub enum Strategy {
        /// The NVIDIA OCI prestart hook.
        #[default]
        Hook = "hook",
        /// A CDI spec (`--device nvidia.com/gpu=all`).
        Cdi = "cdi",
    }
}

choice! {
    /// What `gpu-setup heal` does when the host drifted.
    pub enum HealMode {
        /// Repair the drift (one transaction).
        #[default]
        Apply = "apply",
        /// Change nothing; exit 2 when changes are pending.
        Report = "report",
    }
}

/// Declares the settings: each entry is `key: Type, Kind, "VALUE",
/// default, flag?, module?, "help"`.
macro_rules! settings {
    ( $( $key:ident : $ty:ty, $kind:expr, $value_name:literal, $default:expr,
         flag: $flag:literal, module: $module:literal, $help:literal; )+ ) => {
        /// One layer of settings (a profile file, module arguments or the
        /// command line). Unset fields leave the layer below in force.
        /// Field names are the profile's keys.
        #[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
        #[serde(deny_unknown_fields)]
        pub struct Settings {
            $( #[doc = $help] pub $key: Option<$ty>, )+
        }

        /// Every setting, in the order `--help` lists them.
        pub const SETTINGS: &[Setting] = &[
            $( Setting {
                key: stringify!($key),
                kind: $kind,
                value_name: $value_name,
                default: $default,
                flag: $flag,
                module: $module,
                help: $help,
            }, )+
        ];

        impl Settings {
            /// `self` with every field that `top` sets replaced by `top`'s
            /// value.
            pub fn overlay(self, top: Settings) -> Settings {
                Settings { $( $key: top.$key.or(self.$key), )+ }
            }

            /// Sets the setting `key` from its text (a flag's or a module
            /// argument's value). The error says what the value must be.
            pub fn set(&mut self, key: &str, text: &str) -> Result<(), SetError> {
                match key {
                    $( stringify!($key) => {
                        self.$key = Some(<$ty as SettingValue>::parse_text(text).map_err(|must| SetError {
                            key: stringify!($key),
                            value: text.to_owned(),
                            must,
                        })?);
                    } )+
                    _ => return Err(SetError { key: "", value: key.to_owned(), must: "is not a setting".to_owned() }),
                }
                Ok(())
            }

            /// Whether the setting `key` is set in this layer.
            pub fn is_set(&self, key: &str) -> bool {
                match key {
                    $( stringify!($key) => self.$key.is_some(), )+
                    _ => false,
                }
            }
        }
    };
}

/// A setting's text that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key} {must}, not {value:?}")]
pub struct SetError {
    /// The setting.
    pub key: &'static str,
    /// The text given.
    pub value: String,
    /// What it must be (`must be hook or cdi`).
    pub must: String,
}

/// The containers.conf default as help shows it: it follows Podman's
/// version ([`crate::DesiredState::resolve`]).
const CONTAINERS_CONF_DEFAULT: &str = "/etc/containers/containers.conf.d/99-nvidia.conf; /etc/containers/containers.conf on Podman before 3.3, which reads no drop-ins";

settings! {
    containers_conf: String, Kind::Text, "PATH", Some(CONTAINERS_CONF_DEFAULT),
        flag: true, module: true,
        "File that receives the runtime entry. The default is a drop-in that gpu-setup owns; any other file is edited in place.";
    runtime_name: String, Kind::Text, "NAME", Some(well_known::DEFAULT_RUNTIME_NAME),
        flag: true, module: true,
        "Name of the runtime entry under `[engine.runtimes]`.";
    runtime_path: String, Kind::Text, "PATH", Some(well_known::DEFAULT_RUNTIME_PATH),
        flag: true, module: true,
        "The NVIDIA runtime executable.";
    nvidia_config: String, Kind::Text, "PATH", Some(well_known::DEFAULT_NVIDIA_CONFIG),
        flag: true, module: true,
        "The NVIDIA Container Toolkit configuration.";
    no_cgroups: bool, Kind::Bool, "BOOL", Some("true"),
        flag: true, module: true,
        "`[nvidia-container-cli] no-cgroups`: true for rootless Podman, false for rootful GPU containers.";
    hook_file: String, Kind::Text, "PATH", Some(well_known::DEFAULT_HOOK_FILE),
        flag: true, module: true,
        "The OCI hook file.";
    hook_path: String, Kind::Text, "PATH", Some(well_known::DEFAULT_HOOK_PATH),
        flag: true, module: true,
        "The executable the hook runs.";
    cli_debug_log: String, Kind::Text, "PATH", None,
        flag: true, module: true,
        "Set `[nvidia-container-cli] debug` (unset: leave whatever is there).";
    runtime_debug_log: String, Kind::Text, "PATH", None,
        flag: true, module: true,
        "Set `[nvidia-container-runtime] debug` (unset: leave whatever is there).";
    state: Presence, Kind::Choice(Presence::VALUES), "STATE", Some("present"),
        flag: true, module: true,
        "`present` configures the host; `absent` undoes what gpu-setup did: removes the files it created, restores the ones it changed, and leaves files it never touched.";
    allow_unsafe_log_path: bool, Kind::Switch, "BOOL", Some("false"),
        flag: true, module: true,
        "Accept debug log paths in group- or world-writable directories (a symlink attack on a root process): warn instead of refusing.";
    follow_symlinks: bool, Kind::Switch, "BOOL", Some("false"),
        flag: true, module: true,
        "Write through a managed file that is a symbolic link, when the link stays inside the root (default: refuse such a file).";
    strategy: Strategy, Kind::Choice(Strategy::VALUES), "STRATEGY", Some("hook"),
        flag: true, module: true,
        "How GPUs reach containers: `hook` (the NVIDIA OCI prestart hook, the runtime entry and no-cgroups) or `cdi` (a CDI spec from `nvidia-ctk cdi generate`, for `podman run --device nvidia.com/gpu=all`, Podman 4.3 or later; the hook is removed unless a package owns it). CDI leaves the runtime entry and no-cgroups as they are unless one of their settings is given: CDI uses neither (Podman applies the spec itself, without nvidia-container-cli). With toolkit 1.18+ and NVIDIA's nvidia-cdi-refresh units installed, the units own the spec in /var/run/cdi and gpu-setup writes none.";
    cdi_spec: String, Kind::Text, "PATH", Some(well_known::DEFAULT_CDI_SPEC),
        flag: true, module: true,
        "The CDI spec the cdi strategy writes (`*.yaml` or `*.json`).";
    nvidia_ctk: String, Kind::Text, "PATH", Some(well_known::DEFAULT_NVIDIA_CTK),
        flag: true, module: true,
        "The `nvidia-ctk` that generates the CDI spec, on the running system (not under --root); run as the caller, so it and the directories above it must be root's (or the caller's) and not writable by others.";
    heal: HealMode, Kind::Choice(HealMode::VALUES), "MODE", Some("apply"),
        flag: false, module: false,
        "What `gpu-setup heal` does: `apply` repairs the drift, `report` only reports it (exit 2 when changes are pending). Not a part of the desired state (plan and apply ignore it); `heal --mode` overrides it.";
    history_keep: usize, Kind::Count, "N", None,
        flag: false, module: false,
        "After each apply and heal, prune the journal to the newest N transactions it can spare (`gpu-setup history --keep N`). Not a part of the desired state.";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_setting_is_a_profile_key_with_a_valid_shown_default() {
        let keys: Vec<String> = serde_json::to_value(Settings::default())
            .unwrap()
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect();
        let mut listed: Vec<String> = SETTINGS.iter().map(|s| s.key.to_owned()).collect();
        listed.sort();
        let mut keys = keys;
        keys.sort();
        assert_eq!(listed, keys);
        let conf = Setting::get("containers_conf").unwrap().default.unwrap();
        assert!(conf.starts_with(well_known::DEFAULT_DROPIN));
        for s in SETTINGS {
            let Some(default) = s.default else { continue };
            // A default shown is one the setting takes (the text before `;`).
            let value = default.split(';').next().unwrap();
            let mut layer = Settings::default();
            layer.set(s.key, value).unwrap();
            assert!(layer.is_set(s.key), "{}", s.key);
            assert!(s.help.ends_with('.'), "{}", s.key);
        }
    }

    #[test]
    fn bad_text_names_the_setting_and_what_it_must_be() {
        let mut s = Settings::default();
        assert_eq!(
            s.set("strategy", "magic").unwrap_err().to_string(),
            "strategy must be hook or cdi, not \"magic\""
        );
        assert_eq!(
            s.set("state", "gone").unwrap_err().to_string(),
            "state must be present or absent, not \"gone\""
        );
        assert_eq!(
            s.set("no_cgroups", "yes").unwrap_err().to_string(),
            "no_cgroups must be true or false, not \"yes\""
        );
        assert_eq!(
            s.set("history_keep", "-1").unwrap_err().to_string(),
            "history_keep must be a whole number, not \"-1\""
        );
        assert!(s.set("bogus", "1").is_err());
        assert_eq!(s, Settings::default());
        s.set("strategy", "cdi").unwrap();
        assert_eq!(s.strategy, Some(Strategy::Cdi));
        assert_eq!(Strategy::Cdi.as_str(), "cdi");
        assert_eq!(
            Presence::VALUES[1],
            ("absent", " Remove what gpu-setup manages.")
        );
    }
}
