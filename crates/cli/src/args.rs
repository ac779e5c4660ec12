//! Command-line arguments. Parsing is pure: nothing here reads the host.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use gpu_setup_plan::{Presence, Settings};

/// Make a Linux host able to run NVIDIA GPU containers under Podman, and keep
/// it that way.
///
/// gpu-setup manages three things: the `nvidia` runtime entry in Podman's
/// containers.conf, `no-cgroups` (and optionally the debug logs) in the NVIDIA
/// Container Toolkit's config.toml, and the NVIDIA OCI prestart hook. Edits keep
/// every comment and line they are not about.
#[derive(Debug, Parser)]
#[command(
    name = "gpu-setup",
    version,
    about,
    long_about,
    max_term_width = 100,
    disable_help_subcommand = true,
    propagate_version = true,
    override_usage = "gpu-setup [OPTIONS] <COMMAND>"
)]
#[command(
    after_help = "Exit codes: 0 success, 1 error (a failed doctor check, or a warning with --strict), 2 changes pending (plan --detailed-exitcode).\n\nInstalled as `gpu_setup` (make ansible-module) and run by Ansible with one file of JSON arguments, gpu-setup acts as the Ansible module gpu_setup (docs/provisioning.md)."
)]
pub struct Cli {
    /// Global options.
    #[command(flatten)]
    pub global: GlobalArgs,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Options accepted before or after the subcommand.
#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// Treat DIR as `/` for every path gpu-setup reads or writes (image
    /// building, tests). Paths in output are shown as the host sees them.
    #[arg(long, global = true, value_name = "DIR", default_value = "/")]
    pub root: PathBuf,
    /// Output format.
    #[arg(long, global = true, value_enum, value_name = "FORMAT", default_value_t = Format::Text)]
    pub format: Format,
    /// When to colour text output (`NO_COLOR` turns colour off in `auto`).
    #[arg(long, global = true, value_enum, value_name = "WHEN", default_value_t = ColorChoice::Auto)]
    pub color: ColorChoice,
    /// Print errors only: no diffs, warnings, notes or summaries (the exit
    /// code tells the rest). Logs follow --log-level.
    #[arg(long, short, global = true)]
    pub quiet: bool,
    /// Verbosity of the internal log on stderr (for debugging gpu-setup
    /// itself); warnings about the host are not logs, see --quiet.
    #[arg(long, global = true, value_enum, value_name = "LEVEL", env = crate::env::GPU_SETUP_LOG, default_value_t = LogLevel::Warn)]
    pub log_level: LogLevel,
    /// Where transactions, backups and the lock live (under --root).
    #[arg(
        long,
        global = true,
        value_name = "DIR",
        default_value = "/var/lib/gpu-setup"
    )]
    pub state_dir: String,
    /// How long to wait for another gpu-setup run to finish before giving up.
    #[arg(long, global = true, value_name = "SECONDS", default_value_t = 30)]
    pub lock_timeout: u64,
}

/// Output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Human-readable text and unified diffs.
    Text,
    /// One JSON object on stdout.
    Json,
}

/// Colour choices.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ColorChoice {
    /// Colour when writing to a terminal and `NO_COLOR` is unset.
    Auto,
    /// Always colour.
    Always,
    /// Never colour.
    Never,
}

/// Log levels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
#[allow(missing_docs)]
pub enum LogLevel {
    Error,
    Warn,
    Info,
    Debug,
    Trace,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Show what would change, as unified diffs, and warn about what would
    /// still stop GPUs from working. Changes no managed file (it only
    /// finishes undoing a transaction a crash interrupted).
    #[command(override_usage = "gpu-setup plan [OPTIONS]")]
    Plan(PlanArgs),
    /// Carry out the plan as one transaction: every file changes or none
    /// does, with backups and a journal entry. Nothing to do: writes nothing.
    Apply(ApplyArgs),
    /// Undo the last applied transaction (or the one named), restoring each
    /// file's bytes, mode and owner.
    #[command(override_usage = "gpu-setup rollback [OPTIONS] [ID]")]
    Rollback(RollbackArgs),
    /// List transactions, newest first.
    #[command(override_usage = "gpu-setup history [OPTIONS]")]
    History,
    /// Explain why GPUs do or don't work in Podman on this host: Podman,
    /// its runtimes and hooks, the NVIDIA toolkit and its config, GPU
    /// devices, cgroups, CDI. Read-only. Exit 1 when a check fails.
    #[command(override_usage = "gpu-setup doctor [OPTIONS]")]
    Doctor(DoctorArgs),
}

/// Arguments of `doctor`.
#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// Also show each check's details (files read, runtimes, hooks,
    /// device nodes, the files nvidia-container-cli would mount).
    #[arg(long, short)]
    pub verbose: bool,
    /// Check against this Podman version instead of running `podman
    /// --version` (for --root trees and images).
    #[arg(long, value_name = "VERSION")]
    pub podman_version: Option<String>,
    /// The desired state the checks compare with.
    #[command(flatten)]
    pub settings: SettingsArgs,
}

/// Arguments of `plan`.
#[derive(Debug, Args)]
pub struct PlanArgs {
    /// Exit 0 when nothing would change, 2 when changes are pending, 1 on
    /// error (Terraform's convention).
    #[arg(long)]
    pub detailed_exitcode: bool,
    /// Exit 1 when the plan has a warning-level finding (something that
    /// would still keep GPUs from working), even when no file changes.
    #[arg(long)]
    pub strict: bool,
    /// Also save the plan to FILE (JSON) for `gpu-setup apply FILE`.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Follow this Podman version's rules for which containers.conf files
    /// it reads (the warnings) [default: any released version]
    #[arg(long, value_name = "VERSION")]
    pub podman_version: Option<String>,
    /// The desired state.
    #[command(flatten)]
    pub settings: SettingsArgs,
}

/// Arguments of `apply`.
#[derive(Debug, Args)]
pub struct ApplyArgs {
    /// A plan saved by `gpu-setup plan --out FILE`: apply exactly that plan,
    /// refusing if any file changed since. Without it, plan from the flags
    /// (which a saved plan does not take: it carries its own settings).
    #[arg(value_name = "PLAN_FILE")]
    pub plan_file: Option<PathBuf>,
    /// Exit 1 when a warning-level finding remains after applying
    /// (something that would still keep GPUs from working).
    #[arg(long)]
    pub strict: bool,
    /// The desired state.
    #[command(flatten)]
    pub settings: SettingsArgs,
    /// When not root, re-run this command as root through `sudo` (with
    /// `-n` when standard input is not a terminal). Refused when this binary
    /// or a directory above it is not root's alone.
    #[arg(long)]
    pub sudo: bool,
    /// Follow this Podman version's rules for which containers.conf files
    /// it reads (the warnings) [default: any released version]
    #[arg(long, value_name = "VERSION")]
    pub podman_version: Option<String>,
}

/// Arguments of `rollback`.
#[derive(Debug, Args)]
pub struct RollbackArgs {
    /// The transaction to undo (see `gpu-setup history`) [default: the last
    /// applied one]
    #[arg(value_name = "ID")]
    pub id: Option<u64>,
    /// Roll back even when a file was changed since the transaction (the
    /// current content is kept in the journal; the output says where).
    #[arg(long)]
    pub force: bool,
    /// When not root, re-run this command as root through `sudo` (see
    /// `apply --sudo`).
    #[arg(long)]
    pub sudo: bool,
}

/// The desired state: built-in defaults, then `--profile`, then these flags.
#[derive(Debug, Args, Default)]
#[command(next_help_heading = "Desired state")]
pub struct SettingsArgs {
    /// A TOML profile with the settings below (example:
    /// /usr/share/doc/gpu-setup/examples/gpu-setup.toml), read from the
    /// running system, not under --root; flags given on the command line
    /// win over it.
    #[arg(long, value_name = "FILE")]
    pub profile: Option<PathBuf>,
    /// File that receives the runtime entry. The default is a drop-in that
    /// gpu-setup owns; any other file is edited in place.
    /// [default: /etc/containers/containers.conf.d/99-nvidia.conf]
    #[arg(long, value_name = "PATH")]
    pub containers_conf: Option<String>,
    /// Name of the runtime entry under `[engine.runtimes]` [default: nvidia]
    #[arg(long, value_name = "NAME")]
    pub runtime_name: Option<String>,
    /// The NVIDIA runtime executable [default: /usr/bin/nvidia-container-runtime]
    #[arg(long, value_name = "PATH")]
    pub runtime_path: Option<String>,
    /// The NVIDIA Container Toolkit configuration
    /// [default: /etc/nvidia-container-runtime/config.toml]
    #[arg(long, value_name = "PATH")]
    pub nvidia_config: Option<String>,
    /// `[nvidia-container-cli] no-cgroups`: true for rootless Podman, false
    /// for rootful GPU containers [default: true]
    #[arg(long, value_name = "BOOL", value_parser = clap::value_parser!(bool))]
    pub no_cgroups: Option<bool>,
    /// The OCI hook file
    /// [default: /usr/share/containers/oci/hooks.d/oci-nvidia-hook.json]
    #[arg(long, value_name = "PATH")]
    pub hook_file: Option<String>,
    /// The executable the hook runs [default: /usr/bin/nvidia-container-toolkit]
    #[arg(long, value_name = "PATH")]
    pub hook_path: Option<String>,
    /// Set `[nvidia-container-cli] debug` (unset: leave whatever is there)
    #[arg(long, value_name = "PATH")]
    pub cli_debug_log: Option<String>,
    /// Set `[nvidia-container-runtime] debug` (unset: leave whatever is there)
    #[arg(long, value_name = "PATH")]
    pub runtime_debug_log: Option<String>,
    /// `present` configures the host; `absent` removes everything gpu-setup
    /// manages [default: present]
    #[arg(long, value_enum, value_name = "STATE")]
    pub state: Option<StateArg>,
    /// Accept debug log paths in group- or world-writable directories (a
    /// symlink attack on a root process): warn instead of refusing
    #[arg(long)]
    pub allow_unsafe_log_path: bool,
    /// Write through a managed file that is a symbolic link, when the link
    /// stays inside the root (default: refuse such a file)
    #[arg(long)]
    pub follow_symlinks: bool,
}

/// `--state` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum StateArg {
    /// Configure the host.
    Present,
    /// Remove everything gpu-setup manages.
    Absent,
}

impl SettingsArgs {
    /// The settings flags given on the command line, as typed.
    pub fn given(&self) -> Vec<&'static str> {
        let s = self.to_settings();
        [
            (self.profile.is_some(), "--profile"),
            (s.containers_conf.is_some(), "--containers-conf"),
            (s.runtime_name.is_some(), "--runtime-name"),
            (s.runtime_path.is_some(), "--runtime-path"),
            (s.nvidia_config.is_some(), "--nvidia-config"),
            (s.no_cgroups.is_some(), "--no-cgroups"),
            (s.hook_file.is_some(), "--hook-file"),
            (s.hook_path.is_some(), "--hook-path"),
            (s.cli_debug_log.is_some(), "--cli-debug-log"),
            (s.runtime_debug_log.is_some(), "--runtime-debug-log"),
            (s.state.is_some(), "--state"),
            (s.allow_unsafe_log_path.is_some(), "--allow-unsafe-log-path"),
            (s.follow_symlinks.is_some(), "--follow-symlinks"),
        ]
        .into_iter()
        .filter_map(|(given, flag)| given.then_some(flag))
        .collect()
    }

    /// The settings the flags give (the top layer).
    pub fn to_settings(&self) -> Settings {
        Settings {
            containers_conf: self.containers_conf.clone(),
            runtime_name: self.runtime_name.clone(),
            runtime_path: self.runtime_path.clone(),
            nvidia_config: self.nvidia_config.clone(),
            no_cgroups: self.no_cgroups,
            hook_file: self.hook_file.clone(),
            hook_path: self.hook_path.clone(),
            cli_debug_log: self.cli_debug_log.clone(),
            runtime_debug_log: self.runtime_debug_log.clone(),
            state: self.state.map(|s| match s {
                StateArg::Present => Presence::Present,
                StateArg::Absent => Presence::Absent,
            }),
            allow_unsafe_log_path: self.allow_unsafe_log_path.then_some(true),
            follow_symlinks: self.follow_symlinks.then_some(true),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn global_options_go_before_or_after_the_subcommand() {
        let a =
            Cli::try_parse_from(["gpu-setup", "--root", "/r", "plan", "--format", "json"]).unwrap();
        let b =
            Cli::try_parse_from(["gpu-setup", "plan", "--root", "/r", "--format", "json"]).unwrap();
        assert_eq!(a.global.root, b.global.root);
        assert_eq!(a.global.format, Format::Json);
        assert_eq!(b.global.format, Format::Json);
    }

    #[test]
    fn flags_become_the_top_settings_layer() {
        let cli = Cli::try_parse_from([
            "gpu-setup",
            "plan",
            "--no-cgroups",
            "false",
            "--state",
            "absent",
        ])
        .unwrap();
        let Command::Plan(args) = cli.command else {
            panic!("not plan")
        };
        let s = args.settings.to_settings();
        assert_eq!(s.no_cgroups, Some(false));
        assert_eq!(s.state, Some(Presence::Absent));
        assert_eq!(s.runtime_name, None);
        assert!(Cli::try_parse_from(["gpu-setup", "plan", "--no-cgroups", "yes"]).is_err());
    }

    #[test]
    fn the_settings_flags_given_are_named() {
        let cli =
            Cli::try_parse_from(["gpu-setup", "apply", "p.json", "--no-cgroups", "false"]).unwrap();
        let Command::Apply(args) = cli.command else {
            panic!("not apply")
        };
        assert_eq!(args.settings.given(), ["--no-cgroups"]);
    }
}
