//! The commands. Each is thin: resolve settings, observe the host, call the
//! library, print.

use std::cell::RefCell;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};
use gpu_setup_apply::fs::{FaultyFs, OsFs};
use gpu_setup_apply::journal::{Actor, StateDir};
use gpu_setup_apply::lock::StateLock;
use gpu_setup_apply::transaction::{self, Ctx, Expect, Op};
use gpu_setup_apply::{ApplyError, RootFs};
use gpu_setup_plan::{
    plan_with, Change, DesiredState, HostFacts, Observe, ObserveError, Plan, PlanError,
    ProfileError, SavedPlan, SavedPlanError, Settings, TargetPath,
};

use crate::args::{ApplyArgs, Cli, Command, DoctorArgs, PlanArgs, RollbackArgs, SettingsArgs};
use crate::env;
use crate::exit;
use crate::printer::{Printer, Report};

/// Runs the command and returns the exit code.
pub fn run(cli: &Cli, printer: &Printer) -> Result<u8> {
    match &cli.command {
        Command::Plan(args) => plan(cli, args, printer),
        Command::Apply(args) => apply(cli, args, printer),
        Command::Rollback(args) => rollback(cli, args, printer),
        Command::Doctor(args) => doctor(cli, args, printer),
        Command::History => {
            let session = Session::new(cli)?;
            let history = session.state.history()?;
            ignore_broken_pipe(printer.history(&history))?;
            Ok(exit::OK)
        }
    }
}

fn plan(cli: &Cli, args: &PlanArgs, printer: &Printer) -> Result<u8> {
    let session = Session::new(cli)?;
    session.recover_if_pending(printer)?;
    let desired = desired_state(&args.settings)?;
    tracing::debug!(?desired, "desired state");
    let plan = plan_with(&desired, &facts(cli), &session.host)?;
    if let Some(out) = &args.out {
        save_plan(&plan, &session.root, out)?;
    }
    ignore_broken_pipe(printer.plan(&plan))?;
    Ok(if args.detailed_exitcode && !plan.is_empty() {
        exit::CHANGES
    } else {
        exit::OK
    })
}

fn doctor(cli: &Cli, args: &DoctorArgs, printer: &Printer) -> Result<u8> {
    let host = host(cli)?;
    let desired = desired_state(&args.settings)?;
    if let Some(v) = &args.podman_version {
        if gpu_setup_plan::PodmanVersion::parse(v).is_none() {
            return Err(Hinted::new(
                format!("invalid --podman-version `{v}`"),
                "give a version such as 4.9.3",
            )
            .into());
        }
    }
    let real_root = env::is_real_root(&cli.global.root);
    let probes = crate::probe::gather(&host, real_root, args.podman_version.clone());
    tracing::debug!(?probes, "probes");
    let checks = gpu_setup_plan::doctor::run(&desired, &facts(cli), &host, &probes);
    ignore_broken_pipe(printer.doctor(&checks, args.verbose))?;
    let failed = checks
        .iter()
        .any(|c| c.status == gpu_setup_plan::doctor::Status::Fail);
    Ok(if failed { exit::ERROR } else { exit::OK })
}

fn apply(cli: &Cli, args: &ApplyArgs, printer: &Printer) -> Result<u8> {
    crate::sudo::elevate_if_asked(args.sudo)?;
    let session = Session::new(cli)?;
    session.recover_if_pending(printer)?;
    let (plan, manifest) = match &args.plan_file {
        None => {
            let desired = desired_state(&args.settings)?;
            let make_plan = || plan_with(&desired, &facts(cli), &session.host);
            // Nothing to do: no lock, no journal, no write of any kind.
            let unlocked = make_plan()?;
            if unlocked.is_empty() {
                return finish(printer, &session, &unlocked, None);
            }
            let _lock = session.lock(printer)?;
            // Plan again under the lock: another run may have changed the
            // files while this one waited.
            let plan = make_plan()?;
            if plan.is_empty() {
                return finish(printer, &session, &plan, None);
            }
            printer.plan_preview(&plan)?;
            let manifest = transaction::apply_plan(&session.ctx(), &plan)?;
            (plan, manifest)
        }
        Some(file) => {
            let saved = load_plan(file, &session.root)?;
            let plan = saved_to_plan(&saved, &session.host)?;
            if plan.is_empty() {
                return finish(printer, &session, &plan, None);
            }
            let _lock = session.lock(printer)?;
            // Exactly the saved plan: each file must still be what it was
            // when the plan was made (checked again under the lock).
            let ops: Vec<Op> = saved
                .changes
                .iter()
                .map(|c| Op {
                    path: c.path.clone(),
                    expect: Expect::saved(c.before.as_ref()),
                    after: c.after.clone().map(String::into_bytes),
                    attrs: None,
                })
                .collect();
            printer.plan_preview(&plan)?;
            let manifest = transaction::execute(
                &session.ctx(),
                gpu_setup_apply::journal::TxKind::Apply,
                None,
                &ops,
                &[],
            )?;
            (plan, manifest)
        }
    };
    finish(printer, &session, &plan, Some(&manifest))
}

/// Prints the result of `apply`.
fn finish(
    printer: &Printer,
    session: &Session,
    plan: &Plan,
    manifest: Option<&gpu_setup_apply::journal::Manifest>,
) -> Result<u8> {
    let report = Report {
        plan,
        manifest,
        recovered: &session.recovered.borrow(),
    };
    ignore_broken_pipe(printer.applied(&report))?;
    Ok(exit::OK)
}

fn rollback(cli: &Cli, args: &RollbackArgs, printer: &Printer) -> Result<u8> {
    crate::sudo::elevate_if_asked(args.sudo)?;
    let session = Session::new(cli)?;
    let _lock = session.lock(printer)?;
    let target = transaction::rollback_target(&session.state, args.id)?;
    let manifest = transaction::rollback(&session.ctx(), &target, args.force)?;
    let changes = transaction::changes(&session.state, &manifest)?;
    let plan = Plan {
        changes,
        warnings: Vec::new(),
    };
    let report = Report {
        plan: &plan,
        manifest: Some(&manifest),
        recovered: &session.recovered.borrow(),
    };
    ignore_broken_pipe(printer.rolled_back(&report))?;
    Ok(exit::OK)
}

/// Everything a command that may change the host needs.
struct Session {
    root: PathBuf,
    host: RootFs,
    state: StateDir,
    fs: FaultyFs<OsFs>,
    /// Looked up only by commands that write (it reads the user database).
    actor: std::cell::OnceCell<Actor>,
    lock_timeout: Duration,
    /// Interrupted transactions this run undid.
    recovered: RefCell<Vec<u64>>,
}

impl Session {
    fn new(cli: &Cli) -> Result<Self> {
        let host = host(cli)?;
        let state_dir = TargetPath::new(&cli.global.state_dir).map_err(|e| {
            anyhow::Error::new(e).context(Hinted::new(
                "invalid --state-dir".to_owned(),
                "--state-dir takes an absolute path, resolved under --root",
            ))
        })?;
        let root = host.root().to_path_buf();
        Ok(Session {
            state: StateDir::new(&root, &state_dir),
            root,
            host,
            fs: env::filesystem(),
            actor: std::cell::OnceCell::new(),
            lock_timeout: Duration::from_secs(cli.global.lock_timeout),
            recovered: RefCell::new(Vec::new()),
        })
    }

    fn ctx(&self) -> Ctx<'_> {
        Ctx {
            fs: &self.fs,
            root: &self.root,
            state: &self.state,
            actor: self.actor.get_or_init(env::actor),
        }
    }

    /// Takes the state lock, then undoes any transaction a crash left.
    fn lock(&self, printer: &Printer) -> Result<StateLock> {
        let lock = StateLock::acquire(&self.fs, &self.state, self.lock_timeout)?;
        self.recover(printer)?;
        Ok(lock)
    }

    /// Undoes a transaction a crash left, if the journal holds one. Takes the
    /// lock only then, so a clean host sees no write at all.
    fn recover_if_pending(&self, printer: &Printer) -> Result<()> {
        match transaction::needs_recovery(&self.state) {
            Ok(false) => Ok(()),
            Ok(true) => self.lock(printer).map(drop),
            // A user who cannot read the journal cannot recover it either;
            // planning still works.
            Err(ApplyError::Step(e)) if e.errno() == Some(nix::libc::EACCES) => {
                tracing::warn!("cannot check the journal for an interrupted transaction: {e}");
                Ok(())
            }
            Err(e) => Err(e.into()),
        }
    }

    fn recover(&self, printer: &Printer) -> Result<()> {
        for r in transaction::recover(&self.ctx())? {
            printer.recovered(r.id, &r.notes);
            self.recovered.borrow_mut().push(r.id);
        }
        Ok(())
    }
}

/// Writes `plan --out FILE`.
fn save_plan(plan: &Plan, root: &Path, out: &Path) -> Result<()> {
    let saved = SavedPlan::new(plan, &canonical(root))?;
    fs::write(out, saved.to_json()).with_context(|| {
        Hinted::new(
            format!("cannot write the plan to `{}`", out.display()),
            "--out takes a file path in a writable directory",
        )
    })
}

fn canonical(root: &Path) -> String {
    fs::canonicalize(root)
        .unwrap_or_else(|_| root.to_path_buf())
        .display()
        .to_string()
}

/// Reads `apply PLAN_FILE`, which must be for this root.
fn load_plan(file: &Path, root: &Path) -> Result<SavedPlan> {
    let text = fs::read_to_string(file).with_context(|| {
        Hinted::new(
            format!("cannot read plan `{}`", file.display()),
            "make one with `gpu-setup plan --out FILE`",
        )
    })?;
    let saved = SavedPlan::from_json(&file.display().to_string(), &text)?;
    let here = canonical(root);
    if saved.root != here {
        return Err(Hinted::new(
            format!(
                "plan `{}` was made for root `{}`, not `{here}`",
                file.display(),
                saved.root
            ),
            "apply it with the same --root it was planned with",
        )
        .into());
    }
    Ok(saved)
}

/// The saved plan against the host now: a file that changed since makes the
/// plan stale.
fn saved_to_plan(saved: &SavedPlan, host: &dyn Observe) -> Result<Plan> {
    let mut changes = Vec::with_capacity(saved.changes.len());
    for c in &saved.changes {
        // The plan names real files; one that became (or sits behind) a
        // symbolic link since is refused.
        let real = host.resolve(&c.path, false)?;
        if real != c.path {
            return Err(ApplyError::Stale {
                path: c.path.clone(),
                detail: format!("it now leads to `{real}` through a symbolic link"),
            }
            .into());
        }
        let now = host.file(&c.path)?;
        if let Some(detail) = Expect::saved(c.before.as_ref()).mismatch_observed(&now) {
            return Err(ApplyError::Stale {
                path: c.path.clone(),
                detail,
            }
            .into());
        }
        changes.push(Change {
            path: c.path.clone(),
            action: c.action,
            before: now,
            after: c.after.clone().map(String::into_bytes),
            reasons: c.reasons.clone(),
        });
    }
    Ok(Plan {
        changes,
        warnings: saved.warnings.clone(),
    })
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
        } else if let Some(e) = e.downcast_ref::<ApplyError>() {
            e.hint()
        } else if e.downcast_ref::<SavedPlanError>().is_some() {
            Some("make a new plan with `gpu-setup plan --out FILE`".to_owned())
        } else if e.downcast_ref::<ProfileError>().is_some() {
            Some("see templates/gpu-setup.toml for the profile's keys".to_owned())
        } else {
            None
        }
    })
}

/// Extra lines an error shows after its message: the diffs of drifted files.
pub(crate) fn details_of(err: &anyhow::Error) -> Vec<String> {
    match err.downcast_ref::<ApplyError>() {
        Some(ApplyError::Drifted { files, .. }) => files.iter().map(|d| d.diff.clone()).collect(),
        _ => Vec::new(),
    }
}

/// A CLI-level error that carries its own hint.
#[derive(Debug)]
pub(crate) struct Hinted {
    message: String,
    hint: &'static str,
}

impl Hinted {
    pub(crate) fn new(message: impl Into<String>, hint: &'static str) -> Self {
        Hinted {
            message: message.into(),
            hint,
        }
    }
}

impl std::fmt::Display for Hinted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Hinted {}
