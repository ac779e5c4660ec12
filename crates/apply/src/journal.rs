//! The journal: one directory per transaction under `<state-dir>/transactions`
//! holding `manifest.json` and copies of every file before and after. The
//! format is documented in `docs/journal.md`.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use gpu_setup_plan::{Action, TargetPath};
use serde::{Deserialize, Serialize};

use crate::error::{ApplyError, StepError};
use crate::fs::{self, Attrs, Fs};
use crate::write;

/// The manifest format this build writes and reads.
pub const FORMAT: u32 = 1;

/// A transaction's manifest, in its directory.
const MANIFEST: &str = "manifest.json";
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
}

impl Manifest {
    /// Reads the manifest of transaction `id` from its JSON: an error (with
    /// line and column where there is one) for malformed JSON, another
    /// format, or another ID.
    pub fn parse(bytes: &[u8], id: u64) -> Result<Manifest, String> {
        let manifest: Manifest = serde_json::from_slice(bytes).map_err(|e| {
            if e.line() > 0 {
                format!("line {}, column {}: {e}", e.line(), e.column())
            } else {
                e.to_string()
            }
        })?;
        if manifest.format != FORMAT || manifest.id != id {
            return Err(format!(
                "expected format {FORMAT} and id {id}, found format {} and id {}",
                manifest.format, manifest.id
            ));
        }
        Ok(manifest)
    }
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

/// The state directory under a root.
#[derive(Clone, Debug)]
pub struct StateDir {
    root: PathBuf,
    shown: TargetPath,
    real: PathBuf,
}

impl StateDir {
    /// The state directory `dir` (as the host sees it) under `root`.
    pub fn new(root: &Path, dir: &TargetPath) -> Self {
        StateDir {
            root: root.to_path_buf(),
            shown: dir.clone(),
            real: dir.under(root),
        }
    }

    /// The directory, as the host sees it.
    pub fn shown(&self) -> &TargetPath {
        &self.shown
    }

    /// The real path of the directory.
    pub fn real(&self) -> &Path {
        &self.real
    }

    /// The lock file.
    pub fn lock_path(&self) -> PathBuf {
        self.real.join("lock")
    }

    fn transactions(&self) -> PathBuf {
        self.real.join("transactions")
    }

    /// The directory of transaction `id`.
    pub fn tx_dir(&self, id: u64) -> PathBuf {
        self.transactions().join(id.to_string())
    }

    /// How a path under the root is shown to users: as the host sees it.
    pub fn show(&self, real: &Path) -> String {
        match real.strip_prefix(&self.root) {
            Ok(rest) => format!("/{}", rest.display()),
            Err(_) => real.display().to_string(),
        }
    }

    fn step_err(&self, step: &'static str, real: &Path, source: std::io::Error) -> StepError {
        StepError {
            step,
            path: self.show(real),
            source,
        }
    }

    /// Creates the state directory (0700) and its `transactions` directory
    /// when missing. Missing parents get 0755.
    pub fn ensure(&self, fs: &dyn Fs) -> Result<(), StepError> {
        if fs::exists(&self.real).map_err(|e| self.step_err("inspect", &self.real, e))? {
            self.check_private()?;
        }
        let mut missing = Vec::new();
        let mut dir = self.transactions();
        loop {
            match fs::exists(&dir) {
                Ok(true) => break,
                Ok(false) => missing.push(dir.clone()),
                Err(e) => return Err(self.step_err("inspect", &dir, e)),
            }
            if !dir.pop() {
                break;
            }
        }
        for dir in missing.iter().rev() {
            let mode = if dir.starts_with(&self.real) {
                0o700
            } else {
                0o755
            };
            match fs.create_dir(dir) {
                Ok(()) => {}
                // Another run (this happens before the lock is held) made
                // it first.
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && dir.is_dir() => continue,
                Err(e) => return Err(self.step_err("create directory", dir, e)),
            }
            fs.set_mode(dir, mode)
                .map_err(|e| self.step_err("chmod", dir, e))?;
        }
        self.check_private()
    }

    /// The state dir holds copies of whatever the managed files held: it
    /// must be a real directory, not readable by group or others.
    fn check_private(&self) -> Result<(), StepError> {
        let meta = std::fs::symlink_metadata(&self.real)
            .map_err(|e| self.step_err("inspect", &self.real, e))?;
        let mode = meta.permissions().mode() & 0o7777;
        let problem = if !meta.is_dir() {
            Some("it is not a directory (a symbolic link?)".to_owned())
        } else if mode & 0o077 != 0 {
            Some(format!(
                "it is open to group or others (mode {mode:04o}), and it holds copies of the managed files; run `chmod 700` on it"
            ))
        } else {
            None
        };
        match problem {
            Some(p) => Err(self.step_err(
                "use state directory",
                &self.real,
                std::io::Error::new(std::io::ErrorKind::PermissionDenied, p),
            )),
            None => Ok(()),
        }
    }

    /// Leftovers of runs that died before their journal entry was complete
    /// (a transaction directory without a manifest: no target was touched)
    /// or while rewriting a manifest (its temp file).
    pub fn leftovers(&self) -> Result<Vec<PathBuf>, StepError> {
        let mut out = Vec::new();
        for id in self.ids()? {
            out.extend(self.leftover_of(id)?);
        }
        Ok(out)
    }

    /// What an interrupted run left of transaction `id`, if anything.
    pub fn leftover_of(&self, id: u64) -> Result<Option<PathBuf>, StepError> {
        let dir = self.tx_dir(id);
        let exists = |p: &Path| fs::exists(p).map_err(|e| self.step_err("inspect", p, e));
        Ok(if !exists(&dir.join(MANIFEST))? {
            Some(dir)
        } else if exists(&dir.join(MANIFEST_TEMP))? {
            Some(dir.join(MANIFEST_TEMP))
        } else {
            None
        })
    }

    /// Removes what [`StateDir::leftovers`] found. The caller holds the lock.
    pub fn remove_leftovers(&self, fs: &dyn Fs) -> Result<(), StepError> {
        for path in self.leftovers()? {
            tracing::info!(path = %path.display(), "removing a leftover of an interrupted run");
            if path.is_dir() {
                let entries = fs::read_dir(&path).map_err(|e| self.step_err("list", &path, e))?;
                for entry in entries.unwrap_or_default() {
                    fs.remove_file(&entry)
                        .map_err(|e| self.step_err("remove", &entry, e))?;
                }
                fs.remove_dir(&path)
                    .map_err(|e| self.step_err("remove directory", &path, e))?;
            } else {
                fs.remove_file(&path)
                    .map_err(|e| self.step_err("remove", &path, e))?;
            }
        }
        Ok(())
    }

    /// IDs of every transaction directory, ascending.
    pub fn ids(&self) -> Result<Vec<u64>, StepError> {
        let dir = self.transactions();
        let entries = fs::read_dir(&dir).map_err(|e| self.step_err("list", &dir, e))?;
        let mut ids: Vec<u64> = entries
            .unwrap_or_default()
            .iter()
            .filter_map(|p| p.file_name()?.to_str()?.parse().ok())
            .collect();
        ids.sort_unstable();
        Ok(ids)
    }

    /// The manifest of `id`; `None` when its directory holds none (a run that
    /// died before writing it, having changed nothing).
    pub fn load(&self, id: u64) -> Result<Option<Manifest>, ApplyError> {
        let path = self.tx_dir(id).join(MANIFEST);
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(self.step_err("read", &path, e).into()),
        };
        let manifest = Manifest::parse(&bytes, id).map_err(|message| ApplyError::Journal {
            path: self.show(&path),
            message,
        })?;
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
    pub fn save(&self, fs: &dyn Fs, manifest: &Manifest) -> Result<(), StepError> {
        let dir = self.tx_dir(manifest.id);
        let target = dir.join(MANIFEST);
        let mut bytes = serde_json::to_vec_pretty(manifest)
            .map_err(|e| self.step_err("serialize", &target, std::io::Error::other(e)))?;
        bytes.push(b'\n');
        let attrs = Attrs {
            mode: 0o600,
            uid: 0,
            gid: 0,
            xattrs: Vec::new(),
        };
        write::atomic(fs, &target, &dir.join(MANIFEST_TEMP), &bytes, &attrs, false)
            .map_err(|(step, path, e)| self.step_err(step, &path, e))
    }

    /// Writes a copy (backup) into a transaction directory, fsynced.
    pub fn write_copy(
        &self,
        fs: &dyn Fs,
        id: u64,
        name: &str,
        bytes: &[u8],
    ) -> Result<(), StepError> {
        let path = self.tx_dir(id).join(name);
        fs.write_new(&path, bytes)
            .map_err(|e| self.step_err("write", &path, e))?;
        fs.sync_file(&path)
            .map_err(|e| self.step_err("fsync", &path, e))
    }

    /// Reads a copy back, checking its hash.
    pub fn read_copy(&self, id: u64, state: &FileState) -> Result<Vec<u8>, ApplyError> {
        let path = self.tx_dir(id).join(&state.copy);
        let bytes = std::fs::read(&path).map_err(|e| self.step_err("read", &path, e))?;
        if gpu_setup_plan::sha256(&bytes) != state.sha256 {
            return Err(ApplyError::Journal {
                path: self.show(&path),
                message: "the copy does not match the hash recorded in the manifest".to_owned(),
            });
        }
        Ok(bytes)
    }
}
