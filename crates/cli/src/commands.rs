//! The commands. Each is thin: resolve settings, observe the host, call the
//! library, print.

use std::fs;
use std::io;

use anyhow::{Context, Result};
use gpu_setup_apply::RootFs;
use gpu_setup_plan::{
    plan_with, DesiredState, HostFacts, ObserveError, PlanError, ProfileError, Settings,
};

use crate::args::{Cli, Command, SettingsArgs};
use crate::env;
use crate::exit;
use crate::printer::Printer;

/// Runs the command and returns the exit code.
pub fn run(cli: &Cli, printer: &Printer) -> Result<u8> {
    match &cli.command {
        Command::Plan(args) => {
            let host = host(cli)?;
            let desired = desired_state(&args.settings)?;
            tracing::debug!(?desired, "desired state");
            let plan = plan_with(&desired, &facts(cli), &host)?;
            ignore_broken_pipe(printer.plan(&plan))?;
            Ok(if args.detailed_exitcode && !plan.is_empty() {
                exit::CHANGES
            } else {
                exit::OK
            })
        }
    }
}

/// The host under `--root`, which must be a directory.
fn host(cli: &Cli) -> Result<RootFs> {
    let root = &cli.global.root;
    let hint = "--root takes the directory to treat as `/` (an image or a test tree)";
    match fs::metadata(root) {
        Ok(m) if m.is_dir() => Ok(RootFs::new(root.clone())),
        Ok(_) => Err(Hinted::new(
            format!("root `{}` is not a directory", root.display()),
            hint,
        )
        .into()),
        Err(e) => Err(e).context(Hinted::new(
            format!("cannot use root `{}`", root.display()),
            hint,
        )),
    }
}

/// How Podman runs here. The environment describes the running system, so it
/// only counts when `--root` is `/` (not for an image under another root).
fn facts(cli: &Cli) -> HostFacts {
    if env::is_real_root(&cli.global.root) {
        env::host_facts()
    } else {
        HostFacts::default()
    }
}

/// Built-in defaults, then the profile, then the flags.
fn desired_state(args: &SettingsArgs) -> Result<DesiredState> {
    let mut settings = Settings::default();
    if let Some(profile) = &args.profile {
        let text = fs::read_to_string(profile).with_context(|| {
            Hinted::new(
                format!("cannot read profile `{}`", profile.display()),
                "--profile takes a TOML file such as templates/gpu-setup.toml",
            )
        })?;
        settings = Settings::from_profile(&profile.display().to_string(), &text)
            .context("invalid profile")?;
    }
    Ok(DesiredState::from_settings(
        &settings.overlay(args.to_settings()),
    )?)
}

/// A closed stdout (`gpu-setup plan | head`) is not an error.
fn ignore_broken_pipe(r: io::Result<()>) -> Result<()> {
    match r {
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        other => Ok(other?),
    }
}

/// The hint for the first error in the chain that has one.
pub(crate) fn hint_of(err: &anyhow::Error) -> Option<String> {
    // A `Hinted` used as context is only reachable through anyhow's downcast.
    if let Some(h) = err.downcast_ref::<Hinted>() {
        return Some(h.hint.to_owned());
    }
    err.chain().find_map(|e| {
        if let Some(e) = e.downcast_ref::<PlanError>() {
            e.hint()
        } else if let Some(e) = e.downcast_ref::<ObserveError>() {
            e.hint()
        } else if e.downcast_ref::<ProfileError>().is_some() {
            Some("see templates/gpu-setup.toml for the profile's keys".to_owned())
        } else {
            None
        }
    })
}

/// A CLI-level error that carries its own hint.
#[derive(Debug)]
struct Hinted {
    message: String,
    hint: &'static str,
}

impl Hinted {
    fn new(message: String, hint: &'static str) -> Self {
        Hinted { message, hint }
    }
}

impl std::fmt::Display for Hinted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Hinted {}
