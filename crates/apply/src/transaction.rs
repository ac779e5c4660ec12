//! Transactions: every file of one `apply` or `rollback` changes, or none
//! does. The journal entry (manifest plus copies of every file before and
//! after) is fsynced before the first target is touched; a failure undoes
//! what was done, and a run that finds a pending entry (a crash) undoes it
//! before anything else. Guarantees are documented in `docs/journal.md`.
//!
//! Every file is reached once per run through the checked walk
//! ([`crate::safe_path`]); its directory's descriptor is kept for every
//! later step, so a directory swapped mid-transaction cannot redirect a
//! write. What a journal entry says is untrusted: modes lose their set-ID
//! and sticky bits, and an owner is restored only when it is root or the
//! file's current owner ([`safe_attrs`]).

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::SystemTime;

use gpu_setup_plan::saved::SavedBefore;
use gpu_setup_plan::{sha256, Action, Change, Observed, Plan, TargetPath};

use crate::error::{ApplyError, Drift, StepError};
use crate::fs::{self, Attrs, DiskFile, Fs};
use crate::journal::{
    temp_name, undo_temp_name, Actor, FileRecord, FileState, HealRecord, Manifest, StateDir,
    Status, TxKind,
};
use crate::safe_path::{Dir, Root};
use crate::write::{self, Failure};

/// Mode of a file gpu-setup creates.
pub const NEW_FILE_MODE: u32 = 0o644;
/// Mode of a directory gpu-setup creates for a file.
pub const NEW_DIR_MODE: u32 = 0o755;

/// `(mode, uid, gid)`.
type ModeOwner = (u32, u32, u32);

/// What a file must be before a transaction touches it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Expect {
    /// Nothing there.
    Absent,
    /// A file with this hash (and, when given, mode and owner).
    File {
        /// SHA-256 of the content.
        sha256: String,
        /// `(mode, uid, gid)`, when they must match too.
        meta: Option<(u32, u32, u32)>,
    },
    /// Whatever is there (`rollback --force`).
    Any,
}

impl Expect {
    /// What the planner saw, content and metadata.
    pub fn observed(o: &Observed) -> Self {
        match o {
            Observed::Absent => Expect::Absent,
            Observed::File {
                bytes,
                mode,
                uid,
                gid,
            } => Expect::File {
                sha256: sha256(bytes),
                meta: Some((*mode, *uid, *gid)),
            },
        }
    }

    /// What a saved plan recorded (`None`: the file did not exist).
    pub fn saved(before: Option<&SavedBefore>) -> Self {
        match before {
            None => Expect::Absent,
            Some(b) => Expect::File {
                sha256: b.sha256.clone(),
                meta: Some((b.mode, b.uid, b.gid)),
            },
        }
    }

    /// Why the file as observed does not match, or `None` when it does.
    pub fn mismatch_observed(&self, current: &Observed) -> Option<String> {
        match current {
            Observed::Absent => self.mismatch_parts(None),
            Observed::File {
                bytes,
                mode,
                uid,
                gid,
            } => self.mismatch_parts(Some((bytes, (*mode, *uid, *gid)))),
        }
    }

    /// Why `current` does not match, or `None` when it does.
    fn mismatch(&self, current: Option<&DiskFile>) -> Option<String> {
        self.mismatch_parts(
            current.map(|f| (&f.bytes[..], (f.attrs.mode, f.attrs.uid, f.attrs.gid))),
        )
    }

    fn mismatch_parts(&self, current: Option<(&[u8], ModeOwner)>) -> Option<String> {
        match (self, current) {
            (Expect::Any, _) | (Expect::Absent, None) => None,
            (Expect::Absent, Some(_)) => Some("it exists now".to_owned()),
            (Expect::File { .. }, None) => Some("it was removed".to_owned()),
            (Expect::File { sha256: want, meta }, Some((bytes, found))) => {
                if sha256(bytes) != *want {
                    return Some("its content differs".to_owned());
                }
                match meta {
                    Some(expected) if *expected != found => {
                        let (mode, uid, gid) = expected;
                        Some(format!(
                            "its mode or owner differs (expected {mode:04o} {uid}:{gid}, found {:04o} {}:{})",
                            found.0, found.1, found.2
                        ))
                    }
                    _ => None,
                }
            }
        }
    }
}

/// One file a transaction changes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Op {
    /// The file, as the host sees it.
    pub path: TargetPath,
    /// What must be there first.
    pub expect: Expect,
    /// The new content, `None` to delete.
    pub after: Option<Vec<u8>>,
    /// Mode, owner and xattrs of the new file. `None`: keep the current
    /// file's, or [`NEW_FILE_MODE`] owned by the caller for a new file.
    pub attrs: Option<Attrs>,
    /// With `attrs` `None`: a current owner other than root and the caller
    /// is replaced by the caller (a planned change: docs/security.md R16).
    pub owner_to_caller: bool,
}

impl Op {
    /// The operation that carries out one planned change.
    pub fn from_change(c: &Change) -> Self {
        Op {
            path: c.path.clone(),
            expect: Expect::observed(&c.before),
            after: c.after.clone(),
            attrs: None,
            owner_to_caller: true,
        }
    }
}

/// Everything a transaction needs besides its operations.
pub struct Ctx<'a> {
    /// Where every step goes.
    pub fs: &'a dyn Fs,
    /// The directory treated as `/`, opened once.
    pub root: &'a Root,
    /// The journal.
    pub state: &'a StateDir,
    /// Who runs it.
    pub actor: &'a Actor,
}

impl Ctx<'_> {
    fn step_error(&self, (step, path, source): Failure) -> StepError {
        StepError {
            step,
            path: self.root.show(&path),
            source,
        }
    }
}

/// The directories a run works in, each reached once by the checked walk
/// and then kept open: the parents of the files it touches and the
/// directories it creates.
struct Places<'c> {
    root: &'c Root,
    dirs: RefCell<BTreeMap<TargetPath, Rc<Dir>>>,
}

/// Where a file is: its directory when that exists, and its name.
struct Place {
    parent: Option<Rc<Dir>>,
    name: String,
}

impl<'c> Places<'c> {
    fn new(root: &'c Root) -> Self {
        Places {
            root,
            dirs: RefCell::new(BTreeMap::new()),
        }
    }

    /// Resolves a managed file (a link there is refused: the plan named the
    /// real file) and remembers its directory.
    fn file(&self, path: &TargetPath) -> Result<Place, ApplyError> {
        let parent_path = path.parent();
        if let Some(dir) = parent_path
            .as_ref()
            .and_then(|p| self.dirs.borrow().get(p).cloned())
        {
            return Ok(Place {
                parent: Some(dir),
                name: path.file_name().to_owned(),
            });
        }
        let walked = self.root.resolve(path, false)?;
        if walked.path != *path {
            return Err(ApplyError::Stale {
                path: path.clone(),
                detail: format!("it now leads to `{}` through a symbolic link", walked.path),
            });
        }
        let parent = if walked.missing.is_empty() {
            let dir = Rc::new(walked.dir);
            self.dirs
                .borrow_mut()
                .insert(dir.shown().clone(), Rc::clone(&dir));
            Some(dir)
        } else {
            None
        };
        Ok(Place {
            parent,
            name: walked.name,
        })
    }

    /// A directory, when it exists.
    fn dir(&self, path: &TargetPath) -> Result<Option<Rc<Dir>>, ApplyError> {
        if let Some(d) = self.dirs.borrow().get(path) {
            return Ok(Some(Rc::clone(d)));
        }
        let walked = self.root.resolve(path, false)?;
        let Some(parent) = walked.parent() else {
            return Ok(None);
        };
        let dir = match parent.open_dir(&walked.name) {
            Ok(d) => Rc::new(d),
            Err(e) if e.raw_os_error() == Some(nix::libc::ENOENT) => return Ok(None),
            Err(e) => {
                return Err(StepError {
                    step: "open",
                    path: path.to_string(),
                    source: e,
                }
                .into())
            }
        };
        self.dirs.borrow_mut().insert(path.clone(), Rc::clone(&dir));
        Ok(Some(dir))
    }

    fn remember(&self, path: &TargetPath, dir: Dir) -> Rc<Dir> {
        let dir = Rc::new(dir);
        self.dirs.borrow_mut().insert(path.clone(), Rc::clone(&dir));
        dir
    }

    fn forget(&self, path: &TargetPath) {
        self.dirs.borrow_mut().remove(path);
    }
}

fn now() -> String {
    humantime::format_rfc3339_seconds(SystemTime::now()).to_string()
}

/// Carries out a plan as one transaction; returns its manifest. The caller
/// holds the lock.
pub fn apply_plan(
    ctx: &Ctx<'_>,
    plan: &Plan,
    heal: Option<HealRecord>,
) -> Result<Manifest, ApplyError> {
    apply_plan_removing(ctx, plan, heal, &[])
}

/// [`apply_plan`], also removing `dirs` (parents first) when they are
/// empty after it: the directories earlier transactions created, for an
/// exact undo (`--state absent`). Rollback makes them again.
pub fn apply_plan_removing(
    ctx: &Ctx<'_>,
    plan: &Plan,
    heal: Option<HealRecord>,
    dirs: &[TargetPath],
) -> Result<Manifest, ApplyError> {
    let ops: Vec<Op> = plan.changes.iter().map(Op::from_change).collect();
    execute_as(ctx, TxKind::Apply, None, &ops, dirs, heal)
}

/// Reads a file at its place; `None` when nothing is there.
fn read_at(place: &Place, path: &TargetPath) -> Result<Option<DiskFile>, StepError> {
    let Some(dir) = &place.parent else {
        return Ok(None);
    };
    fs::read_file(dir, &place.name).map_err(|source| StepError {
        step: "read",
        path: path.to_string(),
        source,
    })
}

/// Runs `ops` as one transaction of `kind`; `remove_dirs` are removed (when
/// empty) after every file is done. The caller holds the lock.
pub fn execute(
    ctx: &Ctx<'_>,
    kind: TxKind,
    rolls_back: Option<u64>,
    ops: &[Op],
    remove_dirs: &[TargetPath],
) -> Result<Manifest, ApplyError> {
    execute_as(ctx, kind, rolls_back, ops, remove_dirs, None)
}

/// [`execute`], recording `heal` (what `gpu-setup heal` repaired) in the
/// manifest.
fn execute_as(
    ctx: &Ctx<'_>,
    kind: TxKind,
    rolls_back: Option<u64>,
    ops: &[Op],
    remove_dirs: &[TargetPath],
    heal: Option<HealRecord>,
) -> Result<Manifest, ApplyError> {
    let places = Places::new(ctx.root);
    // Resolve every file once and re-read it: it must still be what the
    // plan was made from.
    let mut current = Vec::with_capacity(ops.len());
    for op in ops {
        if op.path.starts_with(ctx.state.shown()) {
            return Err(ApplyError::Stale {
                path: op.path.clone(),
                detail: "it is inside the state dir".to_owned(),
            });
        }
        let place = places.file(&op.path)?;
        let file = read_at(&place, &op.path)?;
        if let Some(detail) = op.expect.mismatch(file.as_ref()) {
            return Err(ApplyError::Stale {
                path: op.path.clone(),
                detail,
            });
        }
        current.push(file);
    }
    let mut removed_dirs = Vec::new();
    for d in remove_dirs {
        if places.dir(d)?.is_some() {
            removed_dirs.push(d.clone());
        }
    }

    ctx.state.ensure(ctx.fs)?;
    let id = ctx.state.next_id()?;
    let tx_dir = ctx.state.create_tx_dir(ctx.fs, id)?;

    let mut manifest = Manifest {
        format: crate::journal::FORMAT,
        id,
        kind,
        rolls_back,
        time: now(),
        user: ctx.actor.user.clone(),
        uid: ctx.actor.uid,
        sudo_user: ctx.actor.sudo_user.clone(),
        command: ctx.actor.command.clone(),
        status: Status::Pending,
        files: Vec::with_capacity(ops.len()),
        created_dirs: missing_dirs(&places, ops)?,
        // Recorded before they are removed, so that undoing an interrupted
        // rollback can recreate them.
        removed_dirs,
        error: None,
        notes: Vec::new(),
        heal,
    };

    // Copies of every file before and after, then the manifest: all durable
    // before the first target changes. If that fails, no target was touched:
    // the half-written entry is removed.
    if let Err(e) = write_entry(ctx, &tx_dir, &mut manifest, ops, &current) {
        if let Err(cleanup) = ctx.state.remove_tx_dir(id) {
            tracing::warn!(id, error = %cleanup, "cannot remove an unused journal entry");
        }
        return Err(e);
    }

    let planned_removals = manifest.removed_dirs.clone();
    let result = carry_out(ctx, &places, &manifest, &planned_removals)
        .map_err(ApplyError::from)
        .and_then(|removed| {
            manifest.removed_dirs = removed;
            manifest.status = Status::Applied;
            ctx.state.save(ctx.fs, &manifest)
        });
    match result {
        Ok(()) => {
            tracing::info!(id, "transaction applied");
            Ok(manifest)
        }
        Err(error) => {
            let source = match error {
                ApplyError::Step(e) => e,
                other => StepError {
                    step: "finish",
                    path: ctx.state.shown().to_string(),
                    source: std::io::Error::other(other),
                },
            };
            tracing::info!(id, error = %source, "transaction failed, undoing");
            let mut undone = undo(ctx, &places, &manifest);
            manifest.notes = std::mem::take(&mut undone.notes);
            if undone.failed.is_empty() {
                manifest.status = Status::Failed;
                manifest.error = Some(error_chain(&source));
                // Best effort: the targets are back as they were; an
                // entry still marked pending is undone again, harmlessly.
                if let Err(e) = ctx.state.save(ctx.fs, &manifest) {
                    tracing::warn!(id, error = %e, "cannot mark the transaction failed");
                }
                Err(ApplyError::Failed { id, source })
            } else {
                // Still pending: the next run undoes what is left (files
                // already put back are skipped).
                manifest.error = Some(format!(
                    "{}; undoing it failed for {}",
                    error_chain(&source),
                    undone.failures()
                ));
                if let Err(e) = ctx.state.save(ctx.fs, &manifest) {
                    tracing::warn!(id, error = %e, "cannot record the failed undo");
                }
                Err(ApplyError::UndoFailed {
                    id,
                    first: source,
                    undo: undone.failed,
                })
            }
        }
    }
}

/// Writes the journal entry of a transaction: copies of each file before
/// and after, the file records, then the manifest (status pending), fsynced.
fn write_entry(
    ctx: &Ctx<'_>,
    tx_dir: &Dir,
    manifest: &mut Manifest,
    ops: &[Op],
    current: &[Option<DiskFile>],
) -> Result<(), ApplyError> {
    let id = manifest.id;
    for (i, (op, cur)) in ops.iter().zip(current).enumerate() {
        let before = match cur {
            Some(f) => {
                let copy = format!("{i}.before");
                ctx.state.write_copy(ctx.fs, tx_dir, &copy, &f.bytes)?;
                Some(FileState {
                    sha256: sha256(&f.bytes),
                    attrs: f.attrs.clone(),
                    copy,
                })
            }
            None => None,
        };
        let after = match &op.after {
            Some(bytes) => {
                let copy = format!("{i}.after");
                ctx.state.write_copy(ctx.fs, tx_dir, &copy, bytes)?;
                let attrs = op
                    .attrs
                    .clone()
                    .or_else(|| {
                        before.as_ref().map(|b| {
                            never_writable_by_others(
                                &b.attrs,
                                op.owner_to_caller.then_some(ctx.actor),
                            )
                        })
                    })
                    .unwrap_or_else(|| new_file_attrs(ctx.actor));
                Some(FileState {
                    sha256: sha256(bytes),
                    attrs,
                    copy,
                })
            }
            None => None,
        };
        let action = match (&before, &after) {
            (None, _) => Action::Create,
            (Some(_), Some(_)) => Action::Modify,
            (Some(_), None) => Action::Delete,
        };
        manifest.files.push(FileRecord {
            path: op.path.clone(),
            action,
            before,
            after,
            temp: temp_name(&op.path, id),
        });
    }
    ctx.state.save(ctx.fs, manifest)?;
    ctx.fs
        .sync_dir(tx_dir)
        .map_err(|e| ctx.step_error(("fsync directory", tx_dir.real().to_owned(), e)))?;
    tracing::info!(id, "journal entry written");
    Ok(())
}

fn error_chain(e: &StepError) -> String {
    format!("{e}: {}", e.source)
}

/// A replaced file keeps its owner, mode and xattrs, except that it is never
/// left writable by group or others (root processes act on these files:
/// R7), nor, for a planned change (`to_caller`), owned by a user other than
/// root and the caller (R16); rollback restores the exact mode, and never
/// hands a file back to another user.
fn never_writable_by_others(attrs: &Attrs, to_caller: Option<&Actor>) -> Attrs {
    let uid = match to_caller {
        Some(actor) if attrs.uid != 0 && attrs.uid != actor.uid => actor.uid,
        _ => attrs.uid,
    };
    Attrs {
        mode: attrs.mode & !0o022,
        uid,
        ..attrs.clone()
    }
}

fn new_file_attrs(actor: &Actor) -> Attrs {
    Attrs {
        mode: NEW_FILE_MODE,
        uid: actor.uid,
        gid: actor.gid,
        xattrs: Vec::new(),
    }
}

/// The attributes a version from the journal is written with: never a
/// set-user-ID, set-group-ID or sticky bit, and an owner (and group) only
/// when it is root or the file's current one; otherwise the caller's. A
/// journal entry cannot make a set-ID file or hand a file to another user.
pub fn safe_attrs(recorded: &Attrs, current: Option<(u32, u32)>, actor: &Actor) -> Attrs {
    let uid = if recorded.uid == 0 || current.is_some_and(|(u, _)| u == recorded.uid) {
        recorded.uid
    } else {
        actor.uid
    };
    let gid = if recorded.gid == 0 || current.is_some_and(|(_, g)| g == recorded.gid) {
        recorded.gid
    } else {
        actor.gid
    };
    Attrs {
        mode: recorded.mode & 0o777,
        uid,
        gid,
        xattrs: recorded.xattrs.clone(),
    }
}

/// Parent directories that writing the ops' files needs, parents first.
fn missing_dirs(places: &Places<'_>, ops: &[Op]) -> Result<Vec<TargetPath>, ApplyError> {
    let mut out: Vec<TargetPath> = Vec::new();
    for op in ops.iter().filter(|op| op.after.is_some()) {
        let walked = places.root.resolve(&op.path, false)?;
        let mut dir = walked.dir.shown().clone();
        for name in &walked.missing {
            dir = dir.join(name).map_err(|e| StepError {
                step: "create directory",
                path: op.path.to_string(),
                source: std::io::Error::other(e),
            })?;
            if !out.contains(&dir) {
                out.push(dir.clone());
            }
        }
    }
    Ok(out)
}

/// The forward steps: directories, then each file in order, then the
/// directories to remove. Returns the directories actually removed.
fn carry_out(
    ctx: &Ctx<'_>,
    places: &Places<'_>,
    m: &Manifest,
    remove_dirs: &[TargetPath],
) -> Result<Vec<TargetPath>, StepError> {
    let op_err = |path: &TargetPath, e: ApplyError| StepError {
        step: "resolve",
        path: path.to_string(),
        source: std::io::Error::other(e),
    };
    for dir in &m.created_dirs {
        make_dir(ctx, places, dir)?;
    }
    for rec in &m.files {
        let place = places.file(&rec.path).map_err(|e| op_err(&rec.path, e))?;
        put_version(ctx, &place, m.id, rec, rec.after.as_ref(), &rec.temp)?;
        tracing::debug!(path = %rec.path, action = rec.action.as_str(), "done");
    }
    let mut removed = Vec::new();
    for dir in remove_dirs.iter().rev() {
        let (Some(parent), name) = (
            dir.parent()
                .map(|p| places.dir(&p))
                .transpose()
                .map_err(|e| op_err(dir, e))?
                .flatten(),
            dir.file_name(),
        ) else {
            continue;
        };
        match ctx.fs.remove_dir(&parent, name) {
            Ok(()) => {
                // Gone: a descriptor of it must not be used again (undoing
                // this rollback recreates it).
                places.forget(dir);
                write::sync(ctx.fs, &parent).map_err(|f| ctx.step_error(f))?;
                removed.push(dir.clone());
            }
            // Not empty (someone put a file there) or already gone: keep it.
            Err(e) if is_not_empty_or_gone(&e) => {}
            Err(e) => return Err(ctx.step_error(("remove directory", parent.child_real(name), e))),
        }
    }
    // Parents first, like `created_dirs`.
    removed.reverse();
    Ok(removed)
}

/// Puts one recorded version of a file in place (its copy from the journal,
/// with safe attributes, written through `temp`), or removes the file when
/// that version is `None` (it did not exist).
fn put_version(
    ctx: &Ctx<'_>,
    place: &Place,
    id: u64,
    rec: &FileRecord,
    version: Option<&FileState>,
    temp: &str,
) -> Result<(), StepError> {
    let Some(dir) = &place.parent else {
        return match version {
            // Nothing there, and nothing wanted: done.
            None => Ok(()),
            Some(_) => Err(StepError {
                step: "write",
                path: rec.path.to_string(),
                source: std::io::Error::from(std::io::ErrorKind::NotFound),
            }),
        };
    };
    let Some(version) = version else {
        return write::remove(ctx.fs, dir, &place.name).map_err(|f| ctx.step_error(f));
    };
    let bytes = ctx.state.read_copy(id, version).map_err(|e| StepError {
        step: "read the journal's copy of",
        path: rec.path.to_string(),
        source: std::io::Error::other(e),
    })?;
    let current = dir
        .stat(&place.name)
        .ok()
        .flatten()
        .map(|st| (st.st_uid, st.st_gid));
    let attrs = safe_attrs(&version.attrs, current, ctx.actor);
    write::atomic(
        ctx.fs,
        dir,
        &place.name,
        temp,
        &bytes,
        &attrs,
        needs_chown(ctx, &attrs),
    )
    .map_err(|f| ctx.step_error(f))
}

/// Creates one directory for a managed file: 0755, owned by root when run
/// as root, durable.
fn make_dir(ctx: &Ctx<'_>, places: &Places<'_>, dir: &TargetPath) -> Result<(), StepError> {
    let fail = |step: &'static str, e: std::io::Error| StepError {
        step,
        path: dir.to_string(),
        source: e,
    };
    let parent = dir
        .parent()
        .map(|p| places.dir(&p))
        .transpose()
        .map_err(|e| fail("create directory", std::io::Error::other(e)))?
        .flatten()
        .ok_or_else(|| fail("create directory", std::io::ErrorKind::NotFound.into()))?;
    let name = dir.file_name();
    let real = parent.child_real(name);
    ctx.fs
        .create_dir(&parent, name)
        .map_err(|e| fail("create directory", e))?;
    let made = parent.open_dir(name).map_err(|e| fail("open", e))?;
    let file = made.reopen().map_err(|e| fail("open", e))?;
    if ctx.actor.uid == 0 {
        ctx.fs
            .set_owner(&file, &real, 0, 0)
            .map_err(|e| fail("chown", e))?;
    }
    ctx.fs
        .set_mode(&file, &real, NEW_DIR_MODE)
        .map_err(|e| fail("chmod", e))?;
    write::sync(ctx.fs, &parent).map_err(|f| ctx.step_error(f))?;
    places.remember(dir, made);
    Ok(())
}

fn is_not_empty_or_gone(e: &std::io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(nix::libc::ENOTEMPTY) | Some(nix::libc::EEXIST) | Some(nix::libc::ENOENT)
    )
}

/// Whether writing a file with `attrs` needs a chown: always as root, and
/// otherwise only when the owner differs from the caller.
fn needs_chown(ctx: &Ctx<'_>, attrs: &Attrs) -> bool {
    ctx.actor.uid == 0 || (attrs.uid, attrs.gid) != (ctx.actor.uid, ctx.actor.gid)
}

/// What undoing a transaction did: what it had to leave alone, and what it
/// could not do.
#[derive(Debug, Default)]
pub struct Undone {
    /// Files and directories left as they were, and why.
    pub notes: Vec<String>,
    /// Steps that failed (every other file was still undone).
    pub failed: Vec<StepError>,
}

impl Undone {
    /// The failed steps, for a manifest's `error`.
    fn failures(&self) -> String {
        self.failed
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Puts every file of a pending or failed transaction back as it was before:
/// files that hold the recorded after-content get the before-content (or are
/// removed when they were created); files that hold neither were changed by
/// someone else and are left alone (returned as notes). Temp files are
/// removed, removed directories recreated, created directories removed when
/// empty. A file that cannot be put back does not stop the others: each
/// failure is returned.
fn undo(ctx: &Ctx<'_>, places: &Places<'_>, m: &Manifest) -> Undone {
    let mut out = Undone::default();
    // Directories a rollback removed come back first, parents first, so the
    // files can be restored into them.
    let mut recreate = m.removed_dirs.clone();
    recreate.sort_by_key(|d| d.as_str().len());
    for dir in &recreate {
        match places.dir(dir) {
            Ok(Some(_)) => {}
            Ok(None) => {
                if let Err(e) = make_dir(ctx, places, dir) {
                    out.failed.push(e);
                }
            }
            Err(e) => out.failed.push(as_step(dir, "inspect", e)),
        }
    }
    for rec in m.files.iter().rev() {
        if let Err(e) = undo_file(ctx, places, m, rec, &mut out.notes) {
            out.failed.push(e);
        }
    }
    for dir in m.created_dirs.iter().rev() {
        let parent = match dir.parent().map(|p| places.dir(&p)).transpose() {
            Ok(p) => p.flatten(),
            Err(e) => {
                out.failed.push(as_step(dir, "inspect", e));
                continue;
            }
        };
        let Some(parent) = parent else { continue };
        match ctx.fs.remove_dir(&parent, dir.file_name()) {
            Ok(()) => {
                places.forget(dir);
                if let Err(f) = write::sync(ctx.fs, &parent) {
                    out.failed.push(ctx.step_error(f));
                }
            }
            Err(e) if is_not_empty_or_gone(&e) => {
                if e.raw_os_error() != Some(nix::libc::ENOENT) {
                    out.notes
                        .push(format!("`{dir}` is not empty; left in place"));
                }
            }
            Err(e) => out.failed.push(ctx.step_error((
                "remove directory",
                parent.child_real(dir.file_name()),
                e,
            ))),
        }
    }
    out
}

fn as_step(path: &TargetPath, step: &'static str, e: ApplyError) -> StepError {
    match e {
        ApplyError::Step(s) => s,
        other => StepError {
            step,
            path: path.to_string(),
            source: std::io::Error::other(other),
        },
    }
}

/// Puts one file of `m` back as it was before.
fn undo_file(
    ctx: &Ctx<'_>,
    places: &Places<'_>,
    m: &Manifest,
    rec: &FileRecord,
    notes: &mut Vec<String>,
) -> Result<(), StepError> {
    let place = match places.file(&rec.path) {
        Ok(p) => p,
        // The file became a link (or is behind one) since: not ours.
        Err(ApplyError::Observe(_)) | Err(ApplyError::Stale { .. }) => {
            notes.push(format!(
                "`{}` now is or sits behind a symbolic link; left as it is",
                rec.path
            ));
            return Ok(());
        }
        Err(e) => return Err(as_step(&rec.path, "resolve", e)),
    };
    let Some(dir) = &place.parent else {
        // The parent directory does not exist (a crash before it was
        // created): nothing of ours is there.
        return Ok(());
    };
    for temp in [&rec.temp, &undo_temp_name(&rec.path, m.id)] {
        if fs::exists(dir, temp)
            .map_err(|e| ctx.step_error(("inspect", dir.child_real(temp), e)))?
        {
            ctx.fs
                .remove_file(dir, temp)
                .map_err(|e| ctx.step_error(("remove temp file", dir.child_real(temp), e)))?;
        }
    }
    let current = match fs::read_file(dir, &place.name) {
        Ok(c) => c,
        Err(e) if e.raw_os_error() == Some(nix::libc::ENOTDIR) => None,
        Err(_) => {
            notes.push(format!(
                "`{}` is no longer a regular file; left as it is",
                rec.path
            ));
            return Ok(());
        }
    };
    let hash = current.as_ref().map(|f| sha256(&f.bytes));
    let is =
        |state: &Option<FileState>| hash.as_deref() == state.as_ref().map(|s| s.sha256.as_str());
    if is(&rec.before) {
        return Ok(());
    }
    if !is(&rec.after) {
        notes.push(format!(
            "`{}` was changed by someone else during the transaction; left as it is",
            rec.path
        ));
        return Ok(());
    }
    put_version(
        ctx,
        &place,
        m.id,
        rec,
        rec.before.as_ref(),
        &undo_temp_name(&rec.path, m.id),
    )
}

/// The changes a recorded transaction made, with the content before and
/// after read back from the journal (for showing diffs).
pub fn changes(state: &StateDir, m: &Manifest) -> Result<Vec<Change>, ApplyError> {
    let mut out = Vec::with_capacity(m.files.len());
    for rec in &m.files {
        let before = match &rec.before {
            Some(b) => Observed::File {
                bytes: state.read_copy(m.id, b)?,
                mode: b.attrs.mode,
                uid: b.attrs.uid,
                gid: b.attrs.gid,
            },
            None => Observed::Absent,
        };
        let after = match &rec.after {
            Some(a) => Some(state.read_copy(m.id, a)?),
            None => None,
        };
        out.push(Change {
            path: rec.path.clone(),
            action: rec.action,
            before,
            after,
            reasons: Vec::new(),
        });
    }
    Ok(out)
}

/// A transaction found pending and undone.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Recovered {
    /// The transaction.
    pub id: u64,
    /// What undoing it had to leave alone.
    pub notes: Vec<String>,
}

/// Whether the journal holds a pending transaction or the leftovers of a
/// run that died. Reads only; takes no lock.
pub fn needs_recovery(state: &StateDir) -> Result<bool, ApplyError> {
    // Transactions run one at a time under the lock, and each run finishes
    // recovery before it starts one of its own: only the newest can be
    // pending or half-written. The one manifest an older transaction can
    // have half-rewritten is the one the newest rolled back (a rollback
    // marks its target last). Reading just these keeps a plan's cost from
    // growing with the journal; [`recover`] still scans every entry.
    let Some(&newest) = state.ids()?.last() else {
        return Ok(false);
    };
    if state.leftover_of(newest)?.is_some() {
        return Ok(true);
    }
    let Some(m) = state.load(newest)? else {
        return Ok(true);
    };
    if m.status == Status::Pending {
        return Ok(true);
    }
    Ok(match m.rolls_back {
        Some(target) => state.leftover_of(target)?.is_some(),
        None => false,
    })
}

/// Undoes every pending transaction (left by a crash, or by an undo that
/// failed) and marks it recovered. The caller holds the lock, so no pending
/// entry is live. A transaction whose undo fails again stays pending, and
/// the error names every file that could not be put back.
pub fn recover(ctx: &Ctx<'_>) -> Result<Vec<Recovered>, ApplyError> {
    ctx.state.remove_leftovers(ctx.fs)?;
    let mut out = Vec::new();
    for mut m in ctx.state.history()?.into_iter().rev() {
        if m.status != Status::Pending {
            continue;
        }
        tracing::info!(id = m.id, "undoing an interrupted transaction");
        let places = Places::new(ctx.root);
        let undone = undo(ctx, &places, &m);
        m.notes = undone.notes.clone();
        if !undone.failed.is_empty() {
            m.error = Some(format!("recovery failed for {}", undone.failures()));
            if let Err(e) = ctx.state.save(ctx.fs, &m) {
                tracing::warn!(id = m.id, error = %e, "cannot record the failed recovery");
            }
            return Err(ApplyError::RecoveryFailed {
                id: m.id,
                failed: undone.failed,
            });
        }
        m.status = Status::Recovered;
        ctx.state.save(ctx.fs, &m)?;
        out.push(Recovered {
            id: m.id,
            notes: undone.notes,
        });
    }
    Ok(out)
}

/// The transaction `rollback` undoes: `id`, or the newest applied `apply`.
pub fn rollback_target(state: &StateDir, id: Option<u64>) -> Result<Manifest, ApplyError> {
    let history = state.history()?;
    let found = match id {
        Some(id) => history.into_iter().find(|m| m.id == id).ok_or_else(|| {
            ApplyError::NoSuchTransaction {
                id,
                state_dir: state.shown().to_string(),
            }
        })?,
        None => history
            .into_iter()
            .find(|m| m.kind == TxKind::Apply && m.status == Status::Applied)
            .ok_or_else(|| ApplyError::NothingToRollBack {
                state_dir: state.shown().to_string(),
            })?,
    };
    if found.kind == TxKind::Rollback {
        return Err(ApplyError::IsRollback { id: found.id });
    }
    if found.status != Status::Applied {
        return Err(ApplyError::NotApplied {
            id: found.id,
            status: found.status.as_str().to_owned(),
        });
    }
    Ok(found)
}

/// Files of `target` that no longer hold what it wrote, with diffs.
pub fn drift(ctx: &Ctx<'_>, target: &Manifest) -> Result<Vec<Drift>, ApplyError> {
    let places = Places::new(ctx.root);
    let mut out = Vec::new();
    for rec in &target.files {
        let place = places.file(&rec.path)?;
        let current = read_at(&place, &rec.path)?;
        let now = current.as_ref().map(|f| sha256(&f.bytes));
        if now.as_deref() == rec.after.as_ref().map(|a| a.sha256.as_str()) {
            continue;
        }
        let recorded = match &rec.after {
            Some(a) => ctx.state.read_copy(target.id, a)?,
            None => Vec::new(),
        };
        let after = current.map(|f| f.bytes).unwrap_or_default();
        out.push(Drift {
            path: rec.path.to_string(),
            diff: gpu_setup_plan::text_diff(
                &recorded,
                &after,
                &format!("{} (written by transaction {})", rec.path, target.id),
                &format!("{} (now)", rec.path),
            ),
        });
    }
    Ok(out)
}

/// Undoes transaction `target` as a new transaction: each file gets its
/// before-content, mode, owner and xattrs back (made safe: [`safe_attrs`]),
/// or is removed when the transaction created it, then the directories it
/// created are removed when empty. Refuses when a file drifted, unless
/// `force`. The caller holds the lock.
pub fn rollback(ctx: &Ctx<'_>, target: &Manifest, force: bool) -> Result<Manifest, ApplyError> {
    if !force {
        let drifted = drift(ctx, target)?;
        if !drifted.is_empty() {
            return Err(ApplyError::Drifted {
                id: target.id,
                files: drifted,
            });
        }
    }
    let places = Places::new(ctx.root);
    let mut ops = Vec::with_capacity(target.files.len());
    for rec in target.files.iter().rev() {
        let expect = match (&rec.after, force) {
            (_, true) => Expect::Any,
            (Some(a), false) => Expect::File {
                sha256: a.sha256.clone(),
                meta: None,
            },
            (None, false) => Expect::Absent,
        };
        let (after, attrs) = match &rec.before {
            Some(b) => (
                Some(ctx.state.read_copy(target.id, b)?),
                Some(b.attrs.clone()),
            ),
            None => (None, None),
        };
        if after.is_none() && expect == Expect::Any {
            let place = places.file(&rec.path)?;
            if read_at(&place, &rec.path)?.is_none() {
                // Forced, and the file it created is already gone.
                continue;
            }
        }
        ops.push(Op {
            path: rec.path.clone(),
            expect,
            after,
            attrs,
            owner_to_caller: false,
        });
    }
    let outcome = execute(
        ctx,
        TxKind::Rollback,
        Some(target.id),
        &ops,
        &target.created_dirs,
    )?;
    // The rollback's manifest is the record; this is for readers of the
    // target's manifest alone.
    let mut target = target.clone();
    target.status = Status::RolledBack;
    if let Err(e) = ctx.state.save(ctx.fs, &target) {
        tracing::warn!(id = target.id, error = %e, "cannot mark the transaction rolled back");
    }
    Ok(outcome)
}
