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
use gpu_setup_apply::local;
use gpu_setup_apply::lock::StateLock;
use gpu_setup_apply::transaction::{self, Ctx, Expect, Op};
use gpu_setup_apply::{ApplyError, RootFs, MAX_FILE_BYTES};
use gpu_setup_plan::{
    plan_with, Change, DesiredState, HealMode, HostFacts, Observe, Plan, SavedPlan, Settings,
    TargetPath,
};

use crate::args::{
    ApplyArgs, Cli, Command, DoctorArgs, GlobalArgs, HealArgs, PlanArgs, RollbackArgs, SettingsArgs,
};
use crate::env;
use crate::error::Hinted;
use crate::exit;
use crate::printer::{Printer, TxReport};

/// The largest saved plan read: it holds each managed file whole, before
/// and after.
const SAVED_PLAN_LIMIT: u64 = 2 * gpu_setup_plan::roles::Role::ALL.len() as u64 * MAX_FILE_BYTES;

/// Runs the command and returns the exit code.
pub fn run(cli: &Cli, printer: &Printer) -> Result<u8> {
    match &cli.command {
        Command::Plan(args) => plan(&cli.global, args, printer),
        Command::Apply(args) => apply(&cli.global, args, printer),
        Command::Rollback(args) => rollback(&cli.global, args, printer),
        Command::Doctor(args) => doctor(&cli.global, args, printer),
        Command::Heal(args) => heal(&cli.global, args, printer),
        Command::Completions(args) => {
            use clap::CommandFactory;
            let mut out = Vec::new();
            clap_complete::generate(args.shell, &mut Cli::command(), "gpu-setup", &mut out);
            if args.shell == clap_complete::Shell::Bash {
                out = bash_completion_fixed(&out);
            }
            ignore_broken_pipe(io::Write::write_all(&mut io::stdout().lock(), &out))?;
            Ok(exit::OK)
        }
        Command::History(args) => {
            if let Some(keep) = args.keep {
                let session = Session::new(&cli.global)?;
                let _lock = session.lock(printer)?;
                let pruned = prune(&session, keep)?;
                printer.note(&match pruned.len() {
                    0 => "nothing to prune".to_owned(),
                    n => format!(
                        "pruned {n} transaction{} from the journal: {}",
                        if n == 1 { "" } else { "s" },
                        pruned
                            .iter()
                            .map(u64::to_string)
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                });
            }
            let history = history(&cli.global)?;
            ignore_broken_pipe(printer.history(&history))?;
            Ok(exit::OK)
        }
    }
}

fn plan(g: &GlobalArgs, args: &PlanArgs, printer: &Printer) -> Result<u8> {
    let wanted = Wanted::of(&args.settings);
    let planned = planned(g, &wanted, args.podman_version.as_deref(), printer)?;
    if let Some(out) = &args.out {
        save_plan(&planned.plan, &planned.desired, &planned.root, out)?;
    }
    ignore_broken_pipe(printer.plan(&planned.plan))?;
    strict(args.strict, &planned.plan)?;
    Ok(if args.detailed_exitcode && !planned.plan.is_empty() {
        exit::CHANGES
    } else {
        exit::OK
    })
}

/// A plan and the desired state it was made for.
pub(crate) struct Planned {
    /// The plan.
    pub plan: Plan,
    /// The desired state.
    pub desired: DesiredState,
    /// The root it was planned under.
    pub root: PathBuf,
}

/// What plan and apply start from: the session (an interrupted
/// transaction undone first, with its note), host facts observed once, the
/// desired state they and the wanted settings give, and the CDI spec
/// generated when needed (once: the plan under the lock uses the same).
struct Prepared {
    session: Session,
    note: Option<gpu_setup_plan::Warning>,
    desired: DesiredState,
    facts: HostFacts,
}

fn prepared(
    g: &GlobalArgs,
    wanted: &Wanted,
    podman_version: Option<&str>,
    printer: &Printer,
) -> Result<Prepared> {
    let session = Session::new(g)?;
    let note = session.recover_if_pending(printer)?;
    let settings = settings_of(&session.host, wanted)?;
    let (mut desired, facts) = observe_settings(&session, podman_version, &settings)?;
    tracing::debug!(?desired, "desired state");
    generate_cdi(&mut desired, &facts, &session)?;
    Ok(Prepared {
        session,
        note,
        desired,
        facts,
    })
}

/// The engine's plan: [`prepared`], then the plan. Changes no managed file
/// (it finishes undoing a transaction a crash interrupted).
pub(crate) fn planned(
    g: &GlobalArgs,
    wanted: &Wanted,
    podman_version: Option<&str>,
    printer: &Printer,
) -> Result<Planned> {
    let p = prepared(g, wanted, podman_version, printer)?;
    let mut plan = plan_with(&p.desired, &p.facts, &p.session.host)?;
    plan.warnings
        .extend(cdi_note(p.session.host.is_real_root(), &plan, &p.desired));
    plan.warnings.extend(p.note);
    Ok(Planned {
        plan,
        desired: p.desired,
        root: p.session.root,
    })
}

/// What an `apply` did: the plan it carried out, its transaction (`None`:
/// nothing to do), and the interrupted transactions it undid first.
pub(crate) struct Applied {
    /// The plan.
    pub plan: Plan,
    /// The transaction, when anything changed.
    pub manifest: Option<gpu_setup_apply::journal::Manifest>,
    /// Interrupted transactions undone first.
    pub recovered: Vec<u64>,
}

/// The engine's apply: [`prepared`], then, when anything is to change, one
/// transaction under the lock (planned again there).
pub(crate) fn applied(
    g: &GlobalArgs,
    wanted: &Wanted,
    podman_version: Option<&str>,
    printer: &Printer,
) -> Result<Applied> {
    let p = prepared(g, wanted, podman_version, printer)?;
    let session = p.session;
    let (plan, manifest) = converge(&session, printer, &p.desired, &p.facts, p.note, false)?;
    let recovered = session.recovered.borrow().clone();
    Ok(Applied {
        plan,
        manifest,
        recovered,
    })
}

/// clap_complete's bash script for a hyphenated program name dispatches to
/// `gpu__setup__subcmd__plan` while its case arms read
/// `gpu__subcmd__setup__subcmd__plan` (clap_complete issue 6421, seen with
/// 4.6.12), so nothing completes after a subcommand; the arms are renamed
/// to what the dispatch sets.
fn bash_completion_fixed(script: &[u8]) -> Vec<u8> {
    String::from_utf8_lossy(script)
        .replace("gpu__subcmd__setup__subcmd__", "gpu__setup__subcmd__")
        .into_bytes()
}

/// `--strict`: a warning-level finding is an error (after the plan or the
/// transaction was shown).
fn strict(on: bool, plan: &Plan) -> Result<()> {
    let codes: Vec<&str> = plan
        .warnings
        .iter()
        .filter(|w| w.level == gpu_setup_plan::Level::Warning)
        .map(|w| w.code.as_ref())
        .collect();
    if on && !codes.is_empty() {
        return Err(Hinted::new(
            format!(
                "{} warning-level finding{} ({}), and --strict makes {} an error",
                codes.len(),
                if codes.len() == 1 { "" } else { "s" },
                codes.join(", "),
                if codes.len() == 1 { "it" } else { "them" }
            ),
            "each warning above says what to fix (`gpu-setup doctor` explains more)",
        )
        .into());
    }
    Ok(())
}

fn doctor(g: &GlobalArgs, args: &DoctorArgs, printer: &Printer) -> Result<u8> {
    let session = Session::new(g)?;
    let host = &session.host;
    let settings = settings_of(host, &Wanted::of(&args.settings))?;
    let (mut desired, mut facts) =
        observe_settings(&session, args.podman_version.as_deref(), &settings)?;
    // No strategy given: judge the host by the GPU path it has, so a
    // correct CDI host passes and no hint undoes it.
    if !desired.strategy_explicit {
        if let Some(used) = gpu_setup_plan::doctor::strategy_in_use(&desired, &facts, host) {
            if used != desired.strategy {
                let s = Settings {
                    strategy: Some(used),
                    ..settings.clone()
                };
                let memory = std::mem::take(&mut desired.memory);
                desired = DesiredState::resolve(&s, &facts)?;
                desired.memory = memory;
            }
        }
    }
    desired.cdi_spec_written =
        crate::cdi::written_by_gpu_setup(&session.state, host, &desired.cdi_spec);
    let real_root = session.host.is_real_root();
    let probes = crate::probe::gather(host, &desired, &facts, real_root);
    tracing::debug!(?probes, "probes");
    if facts.podman_version.is_none() {
        facts.podman_version = probes
            .podman_version
            .as_deref()
            .and_then(gpu_setup_plan::PodmanVersion::parse);
    }
    let report = gpu_setup_plan::doctor::run(&desired, &facts, host, &probes);
    ignore_broken_pipe(printer.doctor(&report, args.verbose))?;
    Ok(if report.failed() {
        exit::ERROR
    } else {
        exit::OK
    })
}

fn apply(g: &GlobalArgs, args: &ApplyArgs, printer: &Printer) -> Result<u8> {
    crate::sudo::elevate_if_asked(args.sudo)?;
    if args.plan_file.is_some() {
        let given = args.settings.given();
        if !given.is_empty() {
            return Err(Hinted::new(
                format!(
                    "{} cannot be used with a saved plan: it carries its own settings",
                    given
                        .iter()
                        .map(|f| format!("`{f}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                format!(
                    "apply the plan alone, or make a new one: gpu-setup plan {} --out FILE",
                    given.join(" ... ")
                ),
            )
            .into());
        }
    }
    let Some(file) = &args.plan_file else {
        let a = applied(
            g,
            &Wanted::of(&args.settings),
            args.podman_version.as_deref(),
            printer,
        )?;
        let report = TxReport {
            plan: &a.plan,
            manifest: a.manifest.as_ref(),
            recovered: &a.recovered,
            kept: &[],
        };
        ignore_broken_pipe(printer.applied(&report))?;
        strict(args.strict, &a.plan)?;
        return Ok(exit::OK);
    };
    let session = Session::new(g)?;
    let note = session.recover_if_pending(printer)?;
    let (plan, manifest) = {
        {
            let saved = load_plan(file, &session.root)?;
            let mut plan = saved_to_plan(&saved, &session.host)?;
            plan.warnings.extend(note);
            // Exactly what its settings give now: an edited plan, or one
            // naming files gpu-setup does not manage, is refused.
            let facts = crate::facts::versions(
                &session.host,
                session.host.is_real_root(),
                args.podman_version.as_deref(),
            )?;
            check_saved_matches(file, &saved, &facts, &session)?;
            if plan.is_empty() {
                finish(printer, &session, &plan, None)?;
                strict(args.strict, &plan)?;
                return Ok(exit::OK);
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
                    owner_to_caller: true,
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
    finish(printer, &session, &plan, Some(&manifest))?;
    strict(args.strict, &plan)?;
    Ok(exit::OK)
}

/// Plans and, when anything is to change, applies under the lock (planning
/// again there: another run may have changed the files while this one
/// waited). Nothing to do: no lock, no journal, no write of any kind.
/// `heal`: record the drift repaired in the manifest.
fn converge(
    session: &Session,
    printer: &Printer,
    desired: &DesiredState,
    facts: &HostFacts,
    note: Option<gpu_setup_plan::Warning>,
    heal: bool,
) -> Result<(Plan, Option<gpu_setup_apply::journal::Manifest>)> {
    let make_plan = || {
        plan_with(desired, facts, &session.host).map(|mut p| {
            p.warnings
                .extend(cdi_note(session.host.is_real_root(), &p, desired));
            p.warnings.extend(note.clone());
            p
        })
    };
    let unlocked = make_plan()?;
    if unlocked.is_empty() {
        return Ok((unlocked, None));
    }
    let _lock = session.lock(printer)?;
    let plan = make_plan()?;
    if plan.is_empty() {
        return Ok((plan, None));
    }
    printer.plan_preview(&plan)?;
    let record = heal.then(|| gpu_setup_apply::journal::HealRecord {
        drift: plan
            .changes
            .iter()
            .map(|c| gpu_setup_apply::journal::HealedFile {
                path: c.path.clone(),
                action: c.action,
                reasons: c.reasons.clone(),
            })
            .collect(),
    });
    // Exact undo: the directories gpu-setup made go too, when empty.
    let dirs: &[TargetPath] = if desired.presence == gpu_setup_plan::Presence::Absent {
        &desired.memory.created_dirs
    } else {
        &[]
    };
    let manifest = transaction::apply_plan_removing(&session.ctx(), &plan, record, dirs)?;
    if let Some(keep) = desired.history_keep {
        prune(session, keep)?;
    }
    Ok((plan, Some(manifest)))
}

/// `heal`: put the desired state back (or, in report mode, only say that it
/// drifted), for the heal units. Settings come from the profile (the units
/// pass /etc/gpu-setup.toml) and flags; the profile's `heal` key, or
/// `--mode`, says whether to repair or report.
fn heal(g: &GlobalArgs, args: &HealArgs, printer: &Printer) -> Result<u8> {
    let session = Session::new(g)?;
    let note = session.recover_if_pending(printer)?;
    let settings = settings_of(&session.host, &Wanted::of(&args.settings))?;
    // `--mode` takes only the values clap offered (the setting's choices).
    use gpu_setup_plan::settings::SettingValue;
    let flag = args.mode.as_deref().map(HealMode::parse_text).transpose();
    let mode = flag
        .map_err(|must| anyhow::anyhow!("--mode {must}"))?
        .or(settings.heal)
        .unwrap_or_default();
    let (mut desired, facts) = observe_settings(&session, None, &settings)?;
    if let Some(why) = crate::heal::toolkit_absent(&desired, &session.host) {
        printer.healed(&Plan::default(), None, mode, Some(&why))?;
        return Ok(exit::OK);
    }
    generate_cdi(&mut desired, &facts, &session)?;
    match mode {
        HealMode::Report => {
            let mut plan = plan_with(&desired, &facts, &session.host)?;
            plan.warnings.extend(note);
            printer.healed(&plan, None, mode, None)?;
            Ok(if plan.is_empty() {
                exit::OK
            } else {
                exit::CHANGES
            })
        }
        HealMode::Apply => {
            let (plan, manifest) = converge(&session, printer, &desired, &facts, note, true)?;
            printer.healed(&plan, manifest.as_ref(), mode, None)?;
            Ok(exit::OK)
        }
    }
}

/// Prints the result of `apply`.
fn finish(
    printer: &Printer,
    session: &Session,
    plan: &Plan,
    manifest: Option<&gpu_setup_apply::journal::Manifest>,
) -> Result<()> {
    let report = TxReport {
        plan,
        manifest,
        recovered: &session.recovered.borrow(),
        kept: &[],
    };
    ignore_broken_pipe(printer.applied(&report))
}

fn rollback(g: &GlobalArgs, args: &RollbackArgs, printer: &Printer) -> Result<u8> {
    crate::sudo::elevate_if_asked(args.sudo)?;
    let r = rolled_back(g, args.id, args.force, printer)?;
    let report = TxReport {
        plan: &r.plan,
        manifest: Some(&r.manifest),
        recovered: &r.recovered,
        kept: &r.kept,
    };
    ignore_broken_pipe(printer.rolled_back(&report))?;
    Ok(exit::OK)
}

/// What a rollback did.
pub(crate) struct RolledBack {
    /// What it restored, as changes (and what it found would break Podman,
    /// with --force, as warnings).
    pub plan: Plan,
    /// The rollback's own transaction.
    pub manifest: gpu_setup_apply::journal::Manifest,
    /// Files overwritten with --force: (path, where their content is kept).
    pub kept: Vec<(String, String)>,
    /// Interrupted transactions undone first.
    pub recovered: Vec<u64>,
}

/// The engine's rollback of transaction `id` (default: the last applied).
pub(crate) fn rolled_back(
    g: &GlobalArgs,
    id: Option<u64>,
    force: bool,
    printer: &Printer,
) -> Result<RolledBack> {
    let session = Session::new(g)?;
    let _lock = session.lock(printer)?;
    let target = transaction::rollback_target(&session.state, id)?;
    // What the rollback leaves goes through the same checks as a plan:
    // refused (unless --force) when it would break every podman command.
    let breaks = rollback_breakage(&session, &target)?;
    if !breaks.is_empty() && !force {
        let lines: Vec<String> = breaks
            .iter()
            .map(|w| format!("{}: {}", w.code, w.message))
            .collect();
        return Err(Hinted::new(
            format!(
                "rolling back transaction {} would break Podman: {}",
                target.id,
                lines.join("; ")
            ),
            format!(
                "{}; or roll back anyway with `gpu-setup rollback {} --force`",
                breaks
                    .iter()
                    .filter_map(|w| w.hint.clone())
                    .collect::<Vec<_>>()
                    .join("; "),
                target.id
            ),
        )
        .into());
    }
    // With --force, the files that changed since are overwritten; say where
    // their content is kept.
    let drifted: Vec<String> = if force {
        transaction::drift(&session.ctx(), &target)?
            .into_iter()
            .map(|d| d.path)
            .collect()
    } else {
        Vec::new()
    };
    let manifest = transaction::rollback(&session.ctx(), &target, force)?;
    let kept: Vec<(String, String)> = manifest
        .files
        .iter()
        .filter(|f| drifted.contains(&f.path.to_string()))
        .filter_map(|f| {
            f.before.as_ref().map(|b| {
                (
                    f.path.to_string(),
                    format!(
                        "{}/transactions/{}/{}",
                        session.state.shown(),
                        manifest.id,
                        b.copy
                    ),
                )
            })
        })
        .collect();
    let changes = transaction::changes(&session.state, &manifest)?;
    let plan = Plan {
        changes,
        warnings: breaks,
        ..Plan::default()
    };
    let recovered = session.recovered.borrow().clone();
    Ok(RolledBack {
        plan,
        manifest,
        kept,
        recovered,
    })
}

/// Removes from the journal, beyond its newest `keep` transactions, the
/// ones no rollback and no exact undo can need: failed and recovered
/// transactions (they changed nothing that stands), and a rolled-back
/// apply together with the rollback that undid it (the file is back as it
/// was; keeping one without the other would break the chain `--state
/// absent` restores from). An applied apply stays, whatever its age: it can
/// still be rolled back, and it holds the original content. Returns the
/// IDs removed. The caller holds the lock.
fn prune(session: &Session, keep: usize) -> Result<Vec<u64>> {
    use gpu_setup_apply::journal::{Status, TxKind};
    let history = session.state.history()?;
    let old = history.iter().skip(keep);
    let old_ids: Vec<u64> = old.clone().map(|m| m.id).collect();
    let mut out = Vec::new();
    for m in old {
        let prunable = match (m.kind, m.status) {
            (_, Status::Failed | Status::Recovered) => true,
            // With its rollback, when that one is old too.
            (TxKind::Apply, Status::RolledBack) => history
                .iter()
                .find(|r| r.rolls_back == Some(m.id))
                .is_some_and(|r| old_ids.contains(&r.id)),
            (TxKind::Rollback, _) => m.rolls_back.is_some_and(|t| {
                old_ids.contains(&t)
                    && history
                        .iter()
                        .any(|a| a.id == t && a.status == Status::RolledBack)
            }),
            _ => false,
        };
        if prunable {
            out.push(m.id);
        }
    }
    for id in &out {
        session.state.remove_tx_dir(*id)?;
    }
    out.sort_unstable();
    Ok(out)
}

/// The journal's transactions, newest first.
pub(crate) fn history(g: &GlobalArgs) -> Result<Vec<gpu_setup_apply::journal::Manifest>> {
    Ok(Session::new(g)?.state.history()?)
}

/// What would make every podman command fail after undoing `target` that
/// does not already now (a user's `[engine.runtimes_flags]` naming the
/// runtime entry the rollback removes, say).
fn rollback_breakage(
    session: &Session,
    target: &gpu_setup_apply::journal::Manifest,
) -> Result<Vec<gpu_setup_plan::Warning>> {
    let facts = crate::facts::versions(&session.host, session.host.is_real_root(), None)?;
    let restored = transaction::changes(&session.state, target)?
        .into_iter()
        .map(|c| (c.path, c.before.bytes().map(<[u8]>::to_vec)))
        .collect();
    let after = gpu_setup_plan::Overlay::new(&session.host, restored);
    let now = gpu_setup_plan::warnings::breakage(&facts, &session.host);
    Ok(gpu_setup_plan::warnings::breakage(&facts, &after)
        .into_iter()
        .filter(|w| !now.contains(w))
        .collect())
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
    fn new(g: &GlobalArgs) -> Result<Self> {
        let host = host(g)?;
        let state_dir = TargetPath::new(&g.state_dir).map_err(|e| {
            anyhow::Error::new(e).context(Hinted::new(
                "invalid --state-dir".to_owned(),
                "--state-dir takes an absolute path, resolved under --root",
            ))
        })?;
        let root = host.root().to_path_buf();
        Ok(Session {
            state: StateDir::new(host.opened(), &state_dir),
            root,
            host,
            fs: gpu_setup_apply::fs::for_run(),
            actor: std::cell::OnceCell::new(),
            lock_timeout: Duration::from_secs(g.lock_timeout),
            recovered: RefCell::new(Vec::new()),
        })
    }

    fn ctx(&self) -> Ctx<'_> {
        Ctx {
            fs: &self.fs,
            root: self.host.opened(),
            state: &self.state,
            actor: self.actor.get_or_init(env::actor),
        }
    }

    /// Takes the state lock, then undoes any transaction a crash left.
    fn lock(&self, printer: &Printer) -> Result<StateLock> {
        let lock = StateLock::acquire(&self.fs, &self.state, self.lock_timeout, &|m: &str| {
            printer.note(m)
        })?;
        self.recover(printer)?;
        Ok(lock)
    }

    /// Undoes a transaction a crash left, if the journal holds one. Takes the
    /// lock only then, so a clean host sees no write at all. A user who
    /// cannot read the journal gets a note (as a plan warning) instead.
    fn recover_if_pending(&self, printer: &Printer) -> Result<Option<gpu_setup_plan::Warning>> {
        match transaction::needs_recovery(&self.state) {
            Ok(false) => Ok(None),
            Ok(true) => self.lock(printer).map(|_| None),
            // A user who cannot read the journal cannot recover it either;
            // planning still works.
            Err(ApplyError::Step(e)) if e.errno() == Some(nix::libc::EACCES) => {
                Ok(Some(gpu_setup_plan::Warning {
                    code: gpu_setup_plan::warnings::Code::JournalUnreadable,
                    level: gpu_setup_plan::Level::Info,
                    message: format!(
                        "cannot check the journal for an interrupted transaction: `{}` is root's",
                        self.state.shown()
                    ),
                    hint: None,
                }))
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

/// Writes `plan --out FILE`: a new private file, never through a link.
fn save_plan(plan: &Plan, desired: &DesiredState, root: &Path, out: &Path) -> Result<()> {
    let saved = SavedPlan::new(plan, &canonical(root), desired.to_settings())?;
    local::write_private(out, saved.to_json().as_bytes()).with_context(|| {
        Hinted::new(
            format!("cannot save the plan to `{}`", out.display()),
            "--out takes a file path in a directory only you (or root) can write",
        )
    })
}

fn canonical(root: &Path) -> String {
    fs::canonicalize(root)
        .unwrap_or_else(|_| root.to_path_buf())
        .display()
        .to_string()
}

/// Reads `apply PLAN_FILE`, which must be trusted and for this root.
fn load_plan(file: &Path, root: &Path) -> Result<SavedPlan> {
    let bytes = local::read_trusted(file, SAVED_PLAN_LIMIT).with_context(|| {
        Hinted::new(
            format!("cannot use plan `{}`", file.display()),
            "make one with `gpu-setup plan --out FILE` in a directory only you (or root) can write",
        )
    })?;
    let text = String::from_utf8(bytes).map_err(|_| {
        Hinted::new(
            format!("plan `{}` is not UTF-8 text", file.display()),
            "make a new plan with `gpu-setup plan --out FILE`",
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

/// Refuses a saved plan whose changes are not what its own settings give
/// on this host now (the files are unchanged: [`saved_to_plan`] checked).
fn check_saved_matches(
    file: &Path,
    saved: &SavedPlan,
    facts: &HostFacts,
    session: &Session,
) -> Result<()> {
    let mut desired = DesiredState::resolve(&saved.settings, facts)
        .with_context(|| format!("plan `{}` holds invalid settings", file.display()))?;
    generate_cdi(&mut desired, facts, session)?;
    let mut facts = facts.clone();
    facts.packages = crate::packages::owners(&session.host, &desired);
    let now = plan_with(&desired, &facts, &session.host)?;
    let same = now.changes.len() == saved.changes.len()
        && now.changes.iter().zip(&saved.changes).all(|(n, s)| {
            n.path == s.path
                && n.action == s.action
                && n.after.as_deref() == s.after.as_deref().map(str::as_bytes)
        });
    if !same {
        let named: Vec<String> = saved
            .changes
            .iter()
            .filter(|s| {
                !now.changes.iter().any(|n| {
                    n.path == s.path && n.after.as_deref() == s.after.as_deref().map(str::as_bytes)
                })
            })
            .map(|s| format!("`{}`", s.path))
            .collect();
        return Err(Hinted::new(
            format!(
                "plan `{}` does not match what its settings give on this host: {} differ (the plan was edited, or names files gpu-setup does not manage)",
                file.display(),
                if named.is_empty() { "the changes".to_owned() } else { named.join(", ") }
            ),
            "make a new plan with `gpu-setup plan --out FILE` and review it",
        )
        .into());
    }
    Ok(())
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
        packages: Vec::new(),
    })
}

/// The host under `--root`, which must be a directory: reached once by the
/// trusted walk from `/` (every directory on the way root's or the
/// caller's and not writable by others, docs/security.md R14), then used
/// by its descriptor. A root that is the machine's `/` is the real root,
/// whatever path (or link) named it.
fn host(g: &GlobalArgs) -> Result<RootFs> {
    let root = &g.root;
    let hint = "--root takes the directory to treat as `/` (an image or a test tree)";
    match fs::metadata(root) {
        Ok(m) if m.is_dir() => RootFs::open_checked(root).map_err(|e| {
            let untrusted = matches!(e, gpu_setup_apply::trust::TrustError::Untrusted { .. });
            anyhow::Error::new(e).context(Hinted::new(
                format!("cannot use root `{}`", root.display()),
                if untrusted {
                    "every directory from `/` down to --root must belong to root (or you) and be writable by no one else: another user could swap the tree for a link to the real `/`"
                } else {
                    hint
                },
            ))
        }),
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

/// The host facts (observed once: [`crate::facts`]) and the desired state
/// they and the settings give. `podman_version`: `--podman-version`.
fn observe_settings(
    session: &Session,
    podman_version: Option<&str>,
    settings: &Settings,
) -> Result<(DesiredState, HostFacts)> {
    let real_root = session.host.is_real_root();
    let mut facts = crate::facts::versions(&session.host, real_root, podman_version)?;
    let mut desired = DesiredState::resolve(settings, &facts)?;
    desired.memory = crate::memory::recall(&session.state, &session.host);
    facts.packages = crate::packages::owners(&session.host, &desired);
    Ok((desired, facts))
}

/// `--strategy cdi`: what `nvidia-ctk cdi generate` prints now, for the
/// plan (see [`crate::cdi::prepare`]).
/// Refused first, before nvidia-ctk runs, when this Podman cannot use
/// NVIDIA's specs.
fn generate_cdi(desired: &mut DesiredState, facts: &HostFacts, session: &Session) -> Result<()> {
    gpu_setup_plan::plan::check_supported(desired, facts, None)?;
    crate::cdi::prepare(
        desired,
        &session.host,
        &session.state,
        session.host.is_real_root(),
    )
}

fn cdi_note(
    real_root: bool,
    plan: &Plan,
    desired: &DesiredState,
) -> Option<gpu_setup_plan::Warning> {
    crate::cdi::note(plan, desired, real_root)
}

/// Which profile gives the settings below the flags.
#[derive(Clone, Debug)]
pub(crate) enum Profile {
    /// The host's own, [`HOST_PROFILE`](gpu_setup_plan::well_known::HOST_PROFILE) under `--root`, when it exists.
    Host,
    /// A file on the running system (`--profile FILE`).
    File(PathBuf),
    /// None (`--no-profile`): the built-in defaults.
    None,
}

/// The desired state as asked for: a profile and the flags over it.
#[derive(Clone, Debug)]
pub(crate) struct Wanted {
    /// Where the profile comes from.
    pub profile: Profile,
    /// The settings given on the command line (or as module arguments).
    pub flags: Settings,
}

impl Wanted {
    fn of(args: &SettingsArgs) -> Self {
        let profile = match (&args.profile, args.no_profile) {
            (Some(f), _) => Profile::File(f.clone()),
            (None, true) => Profile::None,
            (None, false) => Profile::Host,
        };
        Wanted {
            profile,
            flags: args.to_settings(),
        }
    }
}

/// The settings layers merged: built-in defaults, the profile, the flags.
fn settings_of(host: &RootFs, wanted: &Wanted) -> Result<Settings> {
    let profile = match &wanted.profile {
        Profile::None => Settings::default(),
        Profile::File(file) => file_profile(file)?,
        Profile::Host => host_profile(host)?,
    };
    Ok(profile.overlay(wanted.flags.clone()))
}

fn file_profile(profile: &Path) -> Result<Settings> {
    // A path on the running system (not under --root), as trusted as a
    // saved plan must be: it decides what root writes.
    let bytes = local::read_trusted(profile, MAX_FILE_BYTES).with_context(|| {
        Hinted::new(
            format!("cannot use profile `{}`", profile.display()),
            format!(
                "--profile takes a TOML file (example: {}) that only you or root can write",
                gpu_setup_plan::well_known::EXAMPLE_PROFILE
            ),
        )
    })?;
    parse_profile(&profile.display().to_string(), bytes)
}

fn parse_profile(shown: &str, bytes: Vec<u8>) -> Result<Settings> {
    let text = String::from_utf8(bytes).map_err(|_| {
        Hinted::new(
            format!("profile `{shown}` is not UTF-8 text"),
            "convert it to UTF-8",
        )
    })?;
    Settings::from_profile(shown, &text).context("invalid profile")
}

/// The host's profile under the root, when it exists. It decides what root
/// writes, so it and /etc must be root's (or the caller's) and writable by
/// no one else (docs/security.md R6).
fn host_profile(host: &RootFs) -> Result<Settings> {
    let path =
        TargetPath::new(gpu_setup_plan::well_known::HOST_PROFILE).map_err(anyhow::Error::new)?;
    let bytes = match host.file(&path)? {
        gpu_setup_plan::Observed::Absent => return Ok(Settings::default()),
        gpu_setup_plan::Observed::File { bytes, .. } => bytes,
    };
    let trusted = host.opened().trusted();
    for p in [path.parent(), Some(path.clone())].into_iter().flatten() {
        let Some(meta) = host.meta(&p)? else { continue };
        let problem = if !trusted.contains(&meta.uid) {
            format!("is owned by user {}, not root or you", meta.uid)
        } else if meta.mode & 0o022 != 0 {
            format!("is writable by group or others (mode {:04o})", meta.mode)
        } else {
            continue;
        };
        return Err(Hinted::new(
            format!("refusing the host's profile `{path}`: `{p}` {problem}, so another user could change what root does"),
            "make it root's and not writable by others (chmod 0644), or pass --no-profile",
        )
        .into());
    }
    parse_profile(gpu_setup_plan::well_known::HOST_PROFILE, bytes)
}
/// A closed stdout (`gpu-setup plan | head`) is not an error.
fn ignore_broken_pipe(r: io::Result<()>) -> Result<()> {
    match r {
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        other => Ok(other?),
    }
}
