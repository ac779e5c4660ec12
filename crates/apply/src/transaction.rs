//! Transactions: every file of one `apply` or `rollback` changes, or none
//! does. The journal entry (manifest plus copies of every file before and
//! after) is fsynced before the first target is touched; a failure undoes
//! what was done, and a run that finds a pending entry (a crash) undoes it
//! before anything else. Guarantees are documented in `docs/journal.md`.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use gpu_setup_plan::saved::SavedBefore;
use gpu_setup_plan::{sha256, Action, Change, Observed, Plan, TargetPath};

use crate::error::{ApplyError, Drift, StepError};
use crate::fs::{self, Attrs, DiskFile, Fs};
use crate::journal::{Actor, FileRecord, FileState, Manifest, StateDir, Status, TxKind};
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
}

impl Op {
    /// The operation that carries out one planned change.
    pub fn from_change(c: &Change) -> Self {
        Op {
            path: c.path.clone(),
            expect: Expect::observed(&c.before),
            after: c.after.clone(),
            attrs: None,
        }
    }
}

/// Everything a transaction needs besides its operations.
pub struct Ctx<'a> {
    /// Where every step goes.
    pub fs: &'a dyn Fs,
    /// The directory treated as `/`.
    pub root: &'a Path,
    /// The journal.
    pub state: &'a StateDir,
    /// Who runs it.
    pub actor: &'a Actor,
}

impl Ctx<'_> {
    fn real(&self, p: &TargetPath) -> PathBuf {
        p.under(self.root)
    }

    /// Shows a real path as the host sees it (paths outside the root as is).
    fn show(&self, real: &Path) -> String {
        if let Ok(rest) = real.strip_prefix(self.root) {
            return format!("/{}", rest.display());
        }
        real.display().to_string()
    }

    fn step_error(&self, (step, path, source): Failure) -> StepError {
        let path = if path.starts_with(self.state.real()) {
            self.state.show(&path)
        } else {
            self.show(&path)
        };
        StepError { step, path, source }
    }

    fn read(&self, p: &TargetPath) -> Result<Option<DiskFile>, StepError> {
        fs::read_file(&self.real(p)).map_err(|source| StepError {
            step: "read",
            path: p.to_string(),
            source,
        })
    }
}

/// Name of the temp file a write of `path` in transaction `id` goes through:
/// hidden, and ending in `~` so that Podman, which reads only `*.json` hooks
/// and `*.conf` drop-ins, never loads it.
fn temp_name(path: &TargetPath, id: u64) -> String {
    format!(".{}.gpu-setup-{id}~", path.file_name())
}

fn undo_temp_name(path: &TargetPath, id: u64) -> String {
    format!(".{}.gpu-setup-{id}-undo~", path.file_name())
}

fn now() -> String {
    humantime::format_rfc3339_seconds(SystemTime::now()).to_string()
}

/// Carries out a plan as one transaction; returns its manifest. The caller
/// holds the lock.
pub fn apply_plan(ctx: &Ctx<'_>, plan: &Plan) -> Result<Manifest, ApplyError> {
    let ops: Vec<Op> = plan.changes.iter().map(Op::from_change).collect();
    execute(ctx, TxKind::Apply, None, &ops, &[])
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
    // Re-read every file: it must still be what the plan was made from.
    let mut current = Vec::with_capacity(ops.len());
    for op in ops {
        let file = ctx.read(&op.path)?;
        if let Some(detail) = op.expect.mismatch(file.as_ref()) {
            return Err(ApplyError::Stale {
                path: op.path.clone(),
                detail,
            });
        }
        current.push(file);
    }

    ctx.state.ensure(ctx.fs)?;
    let id = ctx.state.ids()?.last().copied().unwrap_or(0) + 1;
    let tx_dir = ctx.state.tx_dir(id);
    ctx.fs
        .create_dir(&tx_dir)
        .map_err(|e| ctx.step_error(("create directory", tx_dir.clone(), e)))?;

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
        created_dirs: missing_dirs(ctx, ops)?,
        // Recorded before they are removed, so that undoing an interrupted
        // rollback can recreate them.
        removed_dirs: remove_dirs
            .iter()
            .filter(|d| ctx.real(d).is_dir())
            .cloned()
            .collect(),
        error: None,
        notes: Vec::new(),
    };

    // Copies of every file before and after, then the manifest: all durable
    // before the first target changes. If that fails, no target was touched:
    // the half-written entry is removed.
    if let Err(e) = write_entry(ctx, &mut manifest, ops, &current) {
        if let Err(cleanup) = std::fs::remove_dir_all(&tx_dir) {
            tracing::warn!(id, error = %cleanup, "cannot remove an unused journal entry");
        }
        return Err(e);
    }

    let planned_removals = manifest.removed_dirs.clone();
    let result = carry_out(ctx, &manifest, &planned_removals).and_then(|removed| {
        manifest.removed_dirs = removed;
        manifest.status = Status::Applied;
        ctx.state.save(ctx.fs, &manifest)
    });
    match result {
        Ok(()) => {
            tracing::info!(id, "transaction applied");
            Ok(manifest)
        }
        Err(source) => {
            tracing::info!(id, error = %source, "transaction failed, undoing");
            match undo(ctx, &manifest) {
                Ok(notes) => {
                    manifest.status = Status::Failed;
                    manifest.error = Some(error_chain(&source));
                    manifest.notes = notes;
                    // Best effort: the targets are back as they were; an
                    // entry still marked pending is undone again, harmlessly.
                    if let Err(e) = ctx.state.save(ctx.fs, &manifest) {
                        tracing::warn!(id, error = %e, "cannot mark the transaction failed");
                    }
                    Err(ApplyError::Failed { id, source })
                }
                Err(undo) => Err(ApplyError::UndoFailed { id, source, undo }),
            }
        }
    }
}

/// Writes the journal entry of a transaction: copies of each file before
/// and after, the file records, then the manifest (status pending), fsynced.
fn write_entry(
    ctx: &Ctx<'_>,
    manifest: &mut Manifest,
    ops: &[Op],
    current: &[Option<DiskFile>],
) -> Result<(), ApplyError> {
    let id = manifest.id;
    for (i, (op, cur)) in ops.iter().zip(current).enumerate() {
        let before = match cur {
            Some(f) => {
                let copy = format!("{i}.before");
                ctx.state.write_copy(ctx.fs, id, &copy, &f.bytes)?;
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
                ctx.state.write_copy(ctx.fs, id, &copy, bytes)?;
                let attrs = op
                    .attrs
                    .clone()
                    .or_else(|| before.as_ref().map(|b| never_writable_by_others(&b.attrs)))
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
    write::sync_parent(ctx.fs, &ctx.state.tx_dir(id)).map_err(|f| ctx.step_error(f))?;
    tracing::info!(id, "journal entry written");
    Ok(())
}

fn error_chain(e: &StepError) -> String {
    format!("{e}: {}", e.source)
}

/// A replaced file keeps its owner, mode and xattrs, except that it is never
/// left writable by group or others (root processes act on these files);
/// rollback restores the exact mode.
fn never_writable_by_others(attrs: &Attrs) -> Attrs {
    Attrs {
        mode: attrs.mode & !0o022,
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

/// Parent directories that writing the ops' files needs, parents first.
fn missing_dirs(ctx: &Ctx<'_>, ops: &[Op]) -> Result<Vec<TargetPath>, StepError> {
    let mut out: Vec<TargetPath> = Vec::new();
    for op in ops.iter().filter(|op| op.after.is_some()) {
        let mut missing = Vec::new();
        // Innermost first, up to the first directory that exists.
        for dir in op.path.ancestors().into_iter().rev() {
            let real = ctx.real(&dir);
            match fs::exists(&real) {
                Ok(true) => break,
                Ok(false) => missing.push(dir),
                Err(e) => return Err(ctx.step_error(("inspect", real, e))),
            }
        }
        for dir in missing.into_iter().rev() {
            if !out.contains(&dir) {
                out.push(dir);
            }
        }
    }
    Ok(out)
}

/// The forward steps: directories, then each file in order, then the
/// directories to remove. Returns the directories actually removed.
fn carry_out(
    ctx: &Ctx<'_>,
    m: &Manifest,
    remove_dirs: &[TargetPath],
) -> Result<Vec<TargetPath>, StepError> {
    for dir in &m.created_dirs {
        make_dir(ctx, dir)?;
    }
    for rec in &m.files {
        put_version(ctx, m.id, rec, rec.after.as_ref(), &rec.temp)?;
        tracing::debug!(path = %rec.path, action = rec.action.as_str(), "done");
    }
    let mut removed = Vec::new();
    for dir in remove_dirs.iter().rev() {
        let real = ctx.real(dir);
        match ctx.fs.remove_dir(&real) {
            Ok(()) => {
                write::sync_parent(ctx.fs, &real).map_err(|f| ctx.step_error(f))?;
                removed.push(dir.clone());
            }
            // Not empty (someone put a file there) or already gone: keep it.
            Err(e) if is_not_empty_or_gone(&e) => {}
            Err(e) => return Err(ctx.step_error(("remove directory", real, e))),
        }
    }
    // Parents first, like `created_dirs`.
    removed.reverse();
    Ok(removed)
}

/// Puts one recorded version of a file in place (its copy from the journal,
/// with its mode, owner and xattrs, written through `temp`), or removes the
/// file when that version is `None` (it did not exist).
fn put_version(
    ctx: &Ctx<'_>,
    id: u64,
    rec: &FileRecord,
    version: Option<&FileState>,
    temp: &str,
) -> Result<(), StepError> {
    let target = ctx.real(&rec.path);
    let Some(version) = version else {
        return write::remove(ctx.fs, &target).map_err(|f| ctx.step_error(f));
    };
    let bytes = ctx.state.read_copy(id, version).map_err(|e| StepError {
        step: "read the journal's copy of",
        path: rec.path.to_string(),
        source: std::io::Error::other(e.to_string()),
    })?;
    let attrs = &version.attrs;
    write::atomic(
        ctx.fs,
        &target,
        &target.with_file_name(temp),
        &bytes,
        attrs,
        needs_chown(ctx, attrs),
    )
    .map_err(|f| ctx.step_error(f))
}

/// Creates one directory for a managed file: 0755, owned by root when run
/// as root, durable.
fn make_dir(ctx: &Ctx<'_>, dir: &TargetPath) -> Result<(), StepError> {
    let real = ctx.real(dir);
    let path = &real;
    let fail = |step: &'static str| move |e| ctx.step_error((step, path.clone(), e));
    ctx.fs.create_dir(&real).map_err(fail("create directory"))?;
    if ctx.actor.uid == 0 {
        ctx.fs.set_owner(&real, 0, 0).map_err(fail("chown"))?;
    }
    ctx.fs
        .set_mode(&real, NEW_DIR_MODE)
        .map_err(fail("chmod"))?;
    write::sync_parent(ctx.fs, &real).map_err(|f| ctx.step_error(f))
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

/// Puts every file of a pending or failed transaction back as it was before:
/// files that hold the recorded after-content get the before-content (or are
/// removed when they were created); files that hold neither were changed by
/// someone else and are left alone (returned as notes). Temp files are
/// removed, removed directories recreated, created directories removed when
/// empty.
pub fn undo(ctx: &Ctx<'_>, m: &Manifest) -> Result<Vec<String>, StepError> {
    let mut notes = Vec::new();
    // Directories a rollback removed come back first, parents first, so the
    // files can be restored into them.
    let mut recreate = m.removed_dirs.clone();
    recreate.sort_by_key(|d| d.as_str().len());
    for dir in &recreate {
        let real = ctx.real(dir);
        if !fs::exists(&real).map_err(|e| ctx.step_error(("inspect", real.clone(), e)))? {
            make_dir(ctx, dir)?;
        }
    }
    for rec in m.files.iter().rev() {
        let target = ctx.real(&rec.path);
        for temp in [&rec.temp, &undo_temp_name(&rec.path, m.id)] {
            let temp = target.with_file_name(temp);
            if fs::exists(&temp).map_err(|e| ctx.step_error(("inspect", temp.clone(), e)))? {
                ctx.fs
                    .remove_file(&temp)
                    .map_err(|e| ctx.step_error(("remove temp file", temp.clone(), e)))?;
            }
        }
        let current = match fs::read_file(&target) {
            Ok(c) => c,
            // The parent directory may not exist yet (a crash before it was
            // created): nothing of ours is there.
            Err(e) if e.raw_os_error() == Some(nix::libc::ENOTDIR) => None,
            Err(e) => return Err(ctx.step_error(("read", target, e))),
        };
        let hash = current.as_ref().map(|f| sha256(&f.bytes));
        let is = |state: &Option<FileState>| {
            hash.as_deref() == state.as_ref().map(|s| s.sha256.as_str())
        };
        if is(&rec.before) {
            continue;
        }
        if !is(&rec.after) {
            notes.push(format!(
                "`{}` was changed by someone else during the transaction; left as it is",
                rec.path
            ));
            continue;
        }
        put_version(
            ctx,
            m.id,
            rec,
            rec.before.as_ref(),
            &undo_temp_name(&rec.path, m.id),
        )?;
    }
    for dir in m.created_dirs.iter().rev() {
        let real = ctx.real(dir);
        match ctx.fs.remove_dir(&real) {
            Ok(()) => write::sync_parent(ctx.fs, &real).map_err(|f| ctx.step_error(f))?,
            Err(e) if is_not_empty_or_gone(&e) => {
                if e.raw_os_error() != Some(nix::libc::ENOENT) {
                    notes.push(format!("`{dir}` is not empty; left in place"));
                }
            }
            Err(e) => return Err(ctx.step_error(("remove directory", real, e))),
        }
    }
    Ok(notes)
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

/// Undoes every pending transaction (left by a crash) and marks it
/// recovered. The caller holds the lock, so no pending entry is live.
pub fn recover(ctx: &Ctx<'_>) -> Result<Vec<Recovered>, ApplyError> {
    ctx.state.remove_leftovers(ctx.fs)?;
    let mut out = Vec::new();
    for mut m in ctx.state.history()?.into_iter().rev() {
        if m.status != Status::Pending {
            continue;
        }
        tracing::info!(id = m.id, "undoing an interrupted transaction");
        let notes = undo(ctx, &m)?;
        m.status = Status::Recovered;
        m.notes = notes.clone();
        ctx.state.save(ctx.fs, &m)?;
        out.push(Recovered { id: m.id, notes });
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
    let mut out = Vec::new();
    for rec in &target.files {
        let current = ctx.read(&rec.path)?;
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
/// before-content, mode, owner and xattrs back (or is removed when the
/// transaction created it), then the directories it created are removed when
/// empty. Refuses when a file drifted, unless `force`. The caller holds the
/// lock.
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
        if after.is_none() && expect == Expect::Any && ctx.read(&rec.path)?.is_none() {
            // Forced, and the file it created is already gone.
            continue;
        }
        ops.push(Op {
            path: rec.path.clone(),
            expect,
            after,
            attrs,
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
