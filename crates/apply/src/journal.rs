//! The journal: one directory per transaction under `<state-dir>/transactions`
//! holding `manifest.json` and copies of every file before and after. The
//! format is documented in `docs/journal.md`.
//!
//! The state dir is reached by the checked walk of [`crate::safe_path`]: it
//! and every directory above it, up to the root, must be owned by root (or
//! the user running gpu-setup) and not writable by others, and the state
//! dir itself must be private (0700). A manifest is still untrusted input:
//! [`Manifest::check`] refuses one that names a file gpu-setup does not
//! manage, or copies and temp files by names it never uses.

use std::cell::OnceCell;
use std::path::Path;

use gpu_setup_plan::{managed_path_problem, Action, TargetPath};
use serde::{Deserialize, Serialize};

use crate::error::{ApplyError, StepError};
use crate::fs::{self, Attrs, Fs};
use crate::safe_path::{Dir, Root, MAX_FILE_BYTES};
use crate::write;

/// The manifest format this build writes and reads.
pub const FORMAT: u32 = 1;

/// A transaction's manifest, in its directory.
const MANIFEST: &str = "manifest.json";
/// The largest manifest read (a manifest lists a handful of files).
const MANIFEST_LIMIT: u64 = 1 << 20;
/// The temp file a manifest is written through.
const MANIFEST_TEMP: &str = "manifest.json.tmp";

/// What a transaction did.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TxKind {
    /// `gpu-setup apply`.
    Apply,
    /// `gpu-setup rollback`.
    Rollback,
}

impl TxKind {
    /// `apply` or `rollback`, as `history` shows it.
    pub fn as_str(self) -> &'static str {
        match self {
            TxKind::Apply => "apply",
            TxKind::Rollback => "rollback",
        }
    }
}

/// Where a transaction stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    /// Started; targets may be changing. Found after a crash, it is undone.
    Pending,
    /// Every file was written.
    Applied,
    /// A step failed and every file was put back.
    Failed,
    /// Undone by a later rollback transaction.
    RolledBack,
    /// Interrupted (crash, kill) and undone by a later run.
    Recovered,
}

impl Status {
    /// The status as shown to users.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pending => "pending",
            Status::Applied => "applied",
            Status::Failed => "failed",
            Status::RolledBack => "rolled back",
            Status::Recovered => "recovered",
        }
    }
}

/// One version of a file kept in the transaction directory.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileState {
    /// SHA-256 of the content.
    pub sha256: String,
    /// Mode, owner and extended attributes.
    #[serde(flatten)]
    pub attrs: Attrs,
    /// The copy's file name in the transaction directory.
    pub copy: String,
}

/// One file of a transaction.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileRecord {
    /// The file, as the host sees it.
    pub path: TargetPath,
    /// Create, modify or delete.
    pub action: Action,
    /// The file before; `null` when it did not exist.
    pub before: Option<FileState>,
    /// The file after; `null` when the transaction deletes it.
    pub after: Option<FileState>,
    /// Name of the temp file, in the target's directory, that the write goes
    /// through (recovery removes it).
    pub temp: String,
}

/// Why `gpu-setup heal` ran a transaction: the drift it repaired.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealRecord {
    /// Each file that had drifted from the desired state, and how it was
    /// put back.
    pub drift: Vec<HealedFile>,
}

/// One file `heal` put back.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealedFile {
    /// The file.
    pub path: TargetPath,
    /// What was done to it.
    pub action: Action,
    /// Why (the plan's reasons: the settings that had drifted).
    pub reasons: Vec<String>,
}

/// A transaction's manifest.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// Always [`FORMAT`].
    pub format: u32,
    /// The transaction ID (1, 2, ...).
    pub id: u64,
    /// Apply or rollback.
    pub kind: TxKind,
    /// For a rollback: the transaction it undoes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rolls_back: Option<u64>,
    /// When it started (RFC 3339, UTC).
    pub time: String,
    /// Who ran it.
    pub user: String,
    /// Their user ID.
    pub uid: u32,
    /// The user who ran `sudo`, when run through it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sudo_user: Option<String>,
    /// The command line.
    pub command: Vec<String>,
    /// Where it stands.
    pub status: Status,
    /// The files, in the order they are changed.
    pub files: Vec<FileRecord>,
    /// Directories the transaction created, parents first.
    #[serde(default)]
    pub created_dirs: Vec<TargetPath>,
    /// Directories a rollback removed (ones the rolled-back transaction created).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub removed_dirs: Vec<TargetPath>,
    /// Why it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// What recovery or undo had to leave alone.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    /// Set when `gpu-setup heal` (the heal units) ran it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub heal: Option<HealRecord>,
}

impl Manifest {
    /// Reads the manifest of transaction `id` from its JSON: an error (with
    /// line and column where there is one) for malformed JSON, another
    /// format, or another ID.
    pub fn parse(bytes: &[u8], id: u64) -> Result<Manifest, ManifestError> {
        let manifest: Manifest =
            serde_json::from_slice(bytes).map_err(|source| ManifestError::Json { source })?;
        if manifest.format != FORMAT || manifest.id != id {
            return Err(ManifestError::Other {
                format: manifest.format,
                id: manifest.id,
                want_id: id,
            });
        }
        Ok(manifest)
    }

    /// Refuses a manifest that asks for more than gpu-setup ever does: a
    /// file that is not a managed path (see `managed_path_problem`) or lies
    /// in the state dir, a copy or temp file by another name than the ones
    /// gpu-setup gives them, a directory that is not above one of its
    /// files. Modes and owners are made safe where they are used.
    pub fn check(&self, state_dir: &TargetPath) -> Result<(), ManifestError> {
        for (i, f) in self.files.iter().enumerate() {
            if let Some(problem) = managed_path_problem(&f.path) {
                return Err(ManifestError::NotManaged {
                    path: f.path.clone(),
                    problem,
                });
            }
            if f.path.starts_with(state_dir) {
                return Err(ManifestError::InStateDir {
                    path: f.path.clone(),
                });
            }
            let temp = temp_name(&f.path, self.id);
            if f.temp != temp {
                return Err(ManifestError::Name {
                    what: "temp file",
                    path: f.path.clone(),
                    found: f.temp.clone(),
                    want: temp,
                });
            }
            for (state, what) in [(&f.before, "before copy"), (&f.after, "after copy")] {
                if let Some(state) = state {
                    let want = format!("{i}.{}", &what[..what.len() - " copy".len()]);
                    if state.copy != want {
                        return Err(ManifestError::Name {
                            what,
                            path: f.path.clone(),
                            found: state.copy.clone(),
                            want,
                        });
                    }
                }
            }
        }
        for dir in self.created_dirs.iter().chain(&self.removed_dirs) {
            let above_a_file = self
                .files
                .iter()
                .any(|f| f.path != *dir && f.path.starts_with(dir));
            if !above_a_file || dir.starts_with(state_dir) {
                return Err(ManifestError::Dir { dir: dir.clone() });
            }
        }
        Ok(())
    }
}

/// A manifest gpu-setup would not have written: malformed, of another
/// format or transaction, or asking for more than gpu-setup ever does.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ManifestError {
    /// Not the JSON of a manifest.
    #[error("line {}, column {}: {source}", source.line(), source.column())]
    Json {
        /// serde_json's error (with its line and column).
        #[source]
        source: serde_json::Error,
    },
    /// Another format or another transaction's.
    #[error("expected format {FORMAT} and id {want_id}, found format {format} and id {id}")]
    Other {
        /// The format found.
        format: u32,
        /// The ID found.
        id: u64,
        /// The ID of the directory it is in.
        want_id: u64,
    },
    /// A file gpu-setup does not manage.
    #[error("`{path}` is not a file gpu-setup manages: {problem}")]
    NotManaged {
        /// The file.
        path: TargetPath,
        /// Why it is not one (`managed_path_problem`).
        problem: String,
    },
    /// A file inside the state dir.
    #[error("`{path}` is inside the state dir")]
    InStateDir {
        /// The file.
        path: TargetPath,
    },
    /// A temp file or copy under another name than gpu-setup gives it.
    #[error("the {what} of `{path}` is `{found}`, not `{want}`")]
    Name {
        /// `temp file`, `before copy` or `after copy`.
        what: &'static str,
        /// The managed file.
        path: TargetPath,
        /// The name found.
        found: String,
        /// The name gpu-setup gives it.
        want: String,
    },
    /// A directory no file of the transaction needs.
    #[error("directory `{dir}` is not one a file of this transaction needs")]
    Dir {
        /// The directory.
        dir: TargetPath,
    },
    /// A backup copy whose bytes are not the ones the manifest recorded.
    #[error("the copy does not match the hash recorded in the manifest")]
    CopyHash,
}

/// Name of the temp file a write of `path` in transaction `id` goes through:
/// hidden, and ending in `~` so that Podman, which reads only `*.json` hooks
/// and `*.conf` drop-ins, never loads it.
pub fn temp_name(path: &TargetPath, id: u64) -> String {
    format!(".{}.gpu-setup-{id}~", path.file_name())
}

/// Name of the temp file undoing a write of `path` goes through.
pub fn undo_temp_name(path: &TargetPath, id: u64) -> String {
    format!(".{}.gpu-setup-{id}-undo~", path.file_name())
}

/// Who runs a transaction, recorded in its manifest.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Actor {
    /// User name (or the numeric ID when it has none).
    pub user: String,
    /// Effective user ID.
    pub uid: u32,
    /// Effective group ID.
    pub gid: u32,
    /// `$SUDO_USER`, when set.
    pub sudo_user: Option<String>,
    /// The command line.
    pub command: Vec<String>,
}

/// What an interrupted run left in the journal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Leftover {
    /// A transaction directory without a manifest (the run died before its
    /// entry was complete; no target was touched).
    Entry(u64),
    /// A manifest's temp file (the run died while rewriting it).
    ManifestTemp(u64),
}

/// The state directory under a root. Opened (and checked) on first use;
/// the descriptors are kept for the rest of the run.
#[derive(Debug)]
pub struct StateDir {
    root: Root,
    shown: TargetPath,
    dir: OnceCell<Dir>,
    transactions: OnceCell<Dir>,
}

impl StateDir {
    /// The state directory `dir` (as the host sees it) under `root`.
    pub fn new(root: &Root, dir: &TargetPath) -> Self {
        StateDir {
            root: root.clone(),
            shown: dir.clone(),
            dir: OnceCell::new(),
            transactions: OnceCell::new(),
        }
    }

    /// The directory, as the host sees it.
    pub fn shown(&self) -> &TargetPath {
        &self.shown
    }

    /// How a path on the machine is shown to users: as the host sees it.
    pub fn show(&self, real: &Path) -> String {
        self.root.show(real)
    }

    fn step_err(&self, step: &'static str, real: &Path, source: std::io::Error) -> StepError {
        StepError {
            step,
            path: self.show(real),
            source,
        }
    }

    /// The state dir, when it exists: reached by the checked walk (every
    /// directory from the root owned by root or the caller, none writable
    /// by others) and private.
    pub fn open(&self) -> Result<Option<&Dir>, ApplyError> {
        if let Some(d) = self.dir.get() {
            return Ok(Some(d));
        }
        let walked = self.resolve()?;
        let Some(parent) = walked.parent() else {
            return Ok(None);
        };
        let dir = match parent.open_dir(&walked.name) {
            Ok(d) => d,
            Err(e) if e.raw_os_error() == Some(nix::libc::ENOENT) => return Ok(None),
            Err(e) => return Err(self.unusable(e.to_string()).into()),
        };
        self.check_private(&dir)?;
        Ok(Some(self.dir.get_or_init(|| dir)))
    }

    /// The checked walk to the state dir; a link at the state dir itself is
    /// refused as such.
    fn resolve(&self) -> Result<crate::safe_path::Walked, ApplyError> {
        match self.root.resolve(&self.shown, false) {
            Err(gpu_setup_plan::ObserveError::Unsafe { path, .. }) if path == self.shown => {
                Err(self
                    .unusable("it is not a directory (a symbolic link?)".to_owned())
                    .into())
            }
            other => Ok(other?),
        }
    }

    /// Creates the state directory (0700) and its `transactions` directory
    /// when missing (missing parents get 0755), and returns it.
    pub fn ensure(&self, fs: &dyn Fs) -> Result<&Dir, ApplyError> {
        if let Some(d) = self.open()? {
            self.ensure_transactions(fs, d)?;
            return Ok(d);
        }
        let walked = self.resolve()?;
        let mut cur = walked.dir;
        let names: Vec<&str> = walked
            .missing
            .iter()
            .map(String::as_str)
            .chain([walked.name.as_str()])
            .collect();
        let last = names.len() - 1;
        for (i, name) in names.into_iter().enumerate() {
            let mode = if i == last { 0o700 } else { 0o755 };
            cur = self.make_dir(fs, &cur, name, mode)?;
        }
        self.check_private(&cur)?;
        let d = self.dir.get_or_init(|| cur);
        self.ensure_transactions(fs, d)?;
        Ok(d)
    }

    fn ensure_transactions(&self, fs: &dyn Fs, state: &Dir) -> Result<(), ApplyError> {
        if self.transactions.get().is_some() {
            return Ok(());
        }
        let dir = self.make_dir(fs, state, TRANSACTIONS, 0o700)?;
        let _ = self.transactions.set(dir);
        Ok(())
    }

    /// Opens directory `name` in `parent`, creating it with `mode` first
    /// when missing.
    fn make_dir(
        &self,
        fs: &dyn Fs,
        parent: &Dir,
        name: &str,
        mode: u32,
    ) -> Result<Dir, ApplyError> {
        let real = parent.child_real(name);
        match fs.create_dir(parent, name) {
            Ok(()) => {
                let dir = parent
                    .open_dir(name)
                    .map_err(|e| self.step_err("open", &real, e))?;
                let file = dir.reopen().map_err(|e| self.step_err("open", &real, e))?;
                fs.set_mode(&file, &real, mode)
                    .map_err(|e| self.step_err("chmod", &real, e))?;
                Ok(dir)
            }
            // Already there, or made by another run first (this happens
            // before the lock is held).
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                let dir = parent.open_dir(name).map_err(|e| {
                    self.unusable(format!("`{}` is not a directory ({e})", self.show(&real)))
                })?;
                Ok(dir)
            }
            Err(e) => Err(self.step_err("create directory", &real, e).into()),
        }
    }

    fn unusable(&self, problem: String) -> StepError {
        StepError {
            step: "use state directory",
            path: self.shown.to_string(),
            source: std::io::Error::new(std::io::ErrorKind::PermissionDenied, problem),
        }
    }

    /// The state dir holds copies of whatever the managed files held, and
    /// decides what recovery and rollback write: it must be owned by root
    /// (or the caller) and not open to group or others.
    fn check_private(&self, dir: &Dir) -> Result<(), StepError> {
        let st = dir
            .stat_self()
            .map_err(|e| self.step_err("inspect", dir.real(), e))?;
        let mode = st.st_mode & 0o7777;
        let problem = if !self.root.trusted().contains(&st.st_uid) {
            Some(format!(
                "it is owned by user {}, not root: that user could forge the journal that recovery and rollback follow; remove it (after a look) or `chown -R root:root` it",
                st.st_uid
            ))
        } else if mode & 0o077 != 0 {
            Some(format!(
                "it is open to group or others (mode {mode:04o}), and it holds copies of the managed files; run `chmod 700` on it"
            ))
        } else {
            None
        };
        match problem {
            Some(p) => Err(self.unusable(p)),
            None => Ok(()),
        }
    }

    /// The transactions directory, when the state dir has one.
    fn transactions(&self) -> Result<Option<&Dir>, ApplyError> {
        if let Some(d) = self.transactions.get() {
            return Ok(Some(d));
        }
        let Some(state) = self.open()? else {
            return Ok(None);
        };
        let real = state.child_real(TRANSACTIONS);
        match state.open_dir(TRANSACTIONS) {
            Ok(d) => Ok(Some(self.transactions.get_or_init(|| d))),
            Err(e) if e.raw_os_error() == Some(nix::libc::ENOENT) => Ok(None),
            Err(e) => Err(self.step_err("open", &real, e).into()),
        }
    }

    /// The directory of transaction `id`.
    pub fn tx_dir(&self, id: u64) -> Result<Dir, ApplyError> {
        let txs = self.transactions()?.ok_or_else(|| {
            self.step_err(
                "open",
                &self.shown.under(self.root.path()).join(TRANSACTIONS),
                std::io::Error::from(std::io::ErrorKind::NotFound),
            )
        })?;
        let name = id.to_string();
        txs.open_dir(&name)
            .map_err(|e| self.step_err("open", &txs.child_real(&name), e).into())
    }

    /// Creates the directory of a new transaction `id`.
    pub fn create_tx_dir(&self, fs: &dyn Fs, id: u64) -> Result<Dir, ApplyError> {
        let txs = self.transactions()?.ok_or_else(|| {
            self.step_err(
                "create directory",
                &self.shown.under(self.root.path()).join(TRANSACTIONS),
                std::io::Error::from(std::io::ErrorKind::NotFound),
            )
        })?;
        let name = id.to_string();
        fs.create_dir(txs, &name)
            .map_err(|e| self.step_err("create directory", &txs.child_real(&name), e))?;
        self.tx_dir(id)
    }

    /// Removes a transaction directory and what it holds (an entry that was
    /// never completed). Not a step of the transaction: cleanup after one
    /// failed.
    pub fn remove_tx_dir(&self, id: u64) -> Result<(), ApplyError> {
        let Some(txs) = self.transactions()? else {
            return Ok(());
        };
        let name = id.to_string();
        let dir = txs
            .open_dir(&name)
            .map_err(|e| self.step_err("open", &txs.child_real(&name), e))?;
        let names = dir
            .names()
            .map_err(|e| self.step_err("list", dir.real(), e))?;
        for entry in names {
            fs::OsFs
                .remove_file(&dir, &entry)
                .map_err(|e| self.step_err("remove", &dir.child_real(&entry), e))?;
        }
        fs::OsFs
            .remove_dir(txs, &name)
            .map_err(|e| self.step_err("remove directory", &txs.child_real(&name), e))?;
        Ok(())
    }

    /// The lock file, opened (created 0600 when missing, never through a
    /// link) in the state dir.
    pub fn open_lock(&self, fs: &dyn Fs) -> Result<(std::fs::File, String), ApplyError> {
        use std::os::fd::AsFd;
        let state = self.ensure(fs)?;
        let real = state.child_real(LOCK);
        let fd = nix::fcntl::openat(
            state.as_fd(),
            LOCK,
            nix::fcntl::OFlag::O_RDWR
                | nix::fcntl::OFlag::O_CREAT
                | nix::fcntl::OFlag::O_NOFOLLOW
                | nix::fcntl::OFlag::O_CLOEXEC,
            nix::sys::stat::Mode::from_bits_truncate(0o600),
        )
        .map_err(|e| self.step_err("open", &real, e.into()))?;
        Ok((std::fs::File::from(fd), self.show(&real)))
    }

    /// Leftovers of runs that died before their journal entry was complete
    /// or while rewriting a manifest.
    pub fn leftovers(&self) -> Result<Vec<Leftover>, ApplyError> {
        let mut out = Vec::new();
        for id in self.ids()? {
            out.extend(self.leftover_of(id)?);
        }
        Ok(out)
    }

    /// What an interrupted run left of transaction `id`, if anything.
    pub fn leftover_of(&self, id: u64) -> Result<Option<Leftover>, ApplyError> {
        let dir = self.tx_dir(id)?;
        let exists = |name: &str| {
            fs::exists(&dir, name).map_err(|e| self.step_err("inspect", &dir.child_real(name), e))
        };
        Ok(if !exists(MANIFEST)? {
            Some(Leftover::Entry(id))
        } else if exists(MANIFEST_TEMP)? {
            Some(Leftover::ManifestTemp(id))
        } else {
            None
        })
    }

    /// Removes what [`StateDir::leftovers`] found. The caller holds the lock.
    pub fn remove_leftovers(&self, fs: &dyn Fs) -> Result<(), ApplyError> {
        for leftover in self.leftovers()? {
            tracing::info!(?leftover, "removing a leftover of an interrupted run");
            match leftover {
                Leftover::Entry(id) => {
                    let txs = self.transactions()?.ok_or_else(|| {
                        self.unusable("the transactions directory vanished".to_owned())
                    })?;
                    let dir = self.tx_dir(id)?;
                    let names = dir
                        .names()
                        .map_err(|e| self.step_err("list", dir.real(), e))?;
                    for name in names {
                        fs.remove_file(&dir, &name)
                            .map_err(|e| self.step_err("remove", &dir.child_real(&name), e))?;
                    }
                    let name = id.to_string();
                    fs.remove_dir(txs, &name).map_err(|e| {
                        self.step_err("remove directory", &txs.child_real(&name), e)
                    })?;
                }
                Leftover::ManifestTemp(id) => {
                    let dir = self.tx_dir(id)?;
                    fs.remove_file(&dir, MANIFEST_TEMP)
                        .map_err(|e| self.step_err("remove", &dir.child_real(MANIFEST_TEMP), e))?;
                }
            }
        }
        Ok(())
    }

    /// IDs of every transaction directory, ascending.
    pub fn ids(&self) -> Result<Vec<u64>, ApplyError> {
        let Some(txs) = self.transactions()? else {
            return Ok(Vec::new());
        };
        let names = txs
            .names()
            .map_err(|e| self.step_err("list", txs.real(), e))?;
        let mut ids: Vec<u64> = names.iter().filter_map(|n| n.parse().ok()).collect();
        ids.sort_unstable();
        Ok(ids)
    }

    /// The ID the next transaction gets; refused once IDs run out (a
    /// directory named 18446744073709551615 would wrap to 0).
    pub fn next_id(&self) -> Result<u64, ApplyError> {
        let last = self.ids()?.last().copied().unwrap_or(0);
        last.checked_add(1).ok_or_else(|| ApplyError::IdsExhausted {
            state_dir: self.shown.to_string(),
            last,
        })
    }

    /// The manifest of `id`; `None` when its directory holds none (a run that
    /// died before writing it, having changed nothing).
    pub fn load(&self, id: u64) -> Result<Option<Manifest>, ApplyError> {
        let dir = self.tx_dir(id)?;
        let real = dir.child_real(MANIFEST);
        let bytes = match dir.read(MANIFEST, MANIFEST_LIMIT) {
            Ok(Some(f)) => f.bytes,
            Ok(None) => return Ok(None),
            Err(e) => return Err(self.step_err("read", &real, e.into_io()).into()),
        };
        let journal_err = |problem: ManifestError| ApplyError::Journal {
            path: self.show(&real),
            problem,
        };
        let manifest = Manifest::parse(&bytes, id).map_err(journal_err)?;
        manifest.check(&self.shown).map_err(journal_err)?;
        Ok(Some(manifest))
    }

    /// Every manifest, newest first, with the status a later rollback gives.
    pub fn history(&self) -> Result<Vec<Manifest>, ApplyError> {
        let mut all = Vec::new();
        for id in self.ids()?.into_iter().rev() {
            if let Some(m) = self.load(id)? {
                all.push(m);
            }
        }
        // The rollback's own manifest is the record; the target's status is
        // updated after it and may be missing after a crash.
        let undone: Vec<u64> = all
            .iter()
            .filter(|m| m.kind == TxKind::Rollback && m.status == Status::Applied)
            .filter_map(|m| m.rolls_back)
            .collect();
        for m in &mut all {
            if m.status == Status::Applied && undone.contains(&m.id) {
                m.status = Status::RolledBack;
            }
        }
        Ok(all)
    }

    /// Writes a manifest atomically into its transaction directory.
    pub fn save(&self, fs: &dyn Fs, manifest: &Manifest) -> Result<(), ApplyError> {
        let dir = self.tx_dir(manifest.id)?;
        let mut bytes = serde_json::to_vec_pretty(manifest).map_err(|e| {
            self.step_err(
                "serialize",
                &dir.child_real(MANIFEST),
                std::io::Error::other(e),
            )
        })?;
        bytes.push(b'\n');
        let attrs = Attrs {
            mode: 0o600,
            uid: 0,
            gid: 0,
            xattrs: Vec::new(),
        };
        write::atomic(fs, &dir, MANIFEST, MANIFEST_TEMP, &bytes, &attrs, false)
            .map_err(|(step, path, e)| self.step_err(step, &path, e).into())
    }

    /// Writes a copy (backup) into a transaction directory, fsynced.
    pub fn write_copy(
        &self,
        fs: &dyn Fs,
        dir: &Dir,
        name: &str,
        bytes: &[u8],
    ) -> Result<(), StepError> {
        let real = dir.child_real(name);
        let file = fs
            .write_new(dir, name, bytes)
            .map_err(|e| self.step_err("write", &real, e))?;
        fs.sync_file(&file, &real)
            .map_err(|e| self.step_err("fsync", &real, e))
    }

    /// Reads a copy back, checking its hash.
    pub fn read_copy(&self, id: u64, state: &FileState) -> Result<Vec<u8>, ApplyError> {
        let dir = self.tx_dir(id)?;
        let real = dir.child_real(&state.copy);
        let bytes = match dir.read(&state.copy, MAX_FILE_BYTES) {
            Ok(Some(f)) => f.bytes,
            Ok(None) => {
                return Err(self
                    .step_err("read", &real, std::io::ErrorKind::NotFound.into())
                    .into())
            }
            Err(e) => return Err(self.step_err("read", &real, e.into_io()).into()),
        };
        if gpu_setup_plan::sha256(&bytes) != state.sha256 {
            return Err(ApplyError::Journal {
                path: self.show(&real),
                problem: ManifestError::CopyHash,
            });
        }
        Ok(bytes)
    }
}

/// The transactions directory in the state dir.
const TRANSACTIONS: &str = "transactions";
/// The lock file in the state dir.
const LOCK: &str = "lock";
