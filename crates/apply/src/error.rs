//! Errors of the apply crate. Every I/O error carries the path (as the host
//! sees it) and the step that failed.

use std::io;

use gpu_setup_plan::{ObserveError, TargetPath};

/// One step that failed on one path.
#[derive(Debug, thiserror::Error)]
#[error("cannot {step} `{path}`")]
pub struct StepError {
    /// What was being done: `write`, `fsync`, `rename`, ...
    pub step: &'static str,
    /// The path, as the host sees it.
    pub path: String,
    /// The operating system's error.
    #[source]
    pub source: io::Error,
}

impl StepError {
    /// The kernel's error number, if any.
    pub fn errno(&self) -> Option<i32> {
        self.source.raw_os_error()
    }
}

/// A file that differs from what a transaction recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Drift {
    /// The file, as the host sees it.
    pub path: String,
    /// What changed, as a unified diff from the recorded to the current
    /// content (empty when only presence differs).
    pub diff: String,
}

/// Everything that can go wrong while changing the host.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ApplyError {
    /// A step failed outside a transaction (state dir, lock, reading).
    #[error(transparent)]
    Step(#[from] StepError),
    /// Observing the host failed.
    #[error(transparent)]
    Observe(#[from] ObserveError),
    /// A file differs from what the plan expects.
    #[error("`{path}` changed since it was planned: {detail}")]
    Stale {
        /// The file.
        path: TargetPath,
        /// What differs.
        detail: String,
    },
    /// The transaction failed and every file was put back.
    #[error("transaction {id} failed and was undone: every file is as it was before")]
    Failed {
        /// The transaction.
        id: u64,
        /// The step that failed.
        #[source]
        source: StepError,
    },
    /// The transaction failed and undoing it failed for some files (every
    /// other file was put back); the journal entry stays pending so the
    /// next run finishes the recovery.
    #[error("transaction {id} failed, and undoing it failed too: {}", list(.undo))]
    UndoFailed {
        /// The transaction.
        id: u64,
        /// The step that failed first.
        #[source]
        first: StepError,
        /// The steps that failed while undoing, one per file at most.
        undo: Vec<StepError>,
    },
    /// Finishing an interrupted transaction failed for some files; the
    /// entry stays pending.
    #[error("cannot finish undoing interrupted transaction {id}: {}", list(.failed))]
    RecoveryFailed {
        /// The transaction.
        id: u64,
        /// The steps that failed.
        failed: Vec<StepError>,
    },
    /// The next transaction ID would not fit.
    #[error("no transaction ID is left after {last} in `{state_dir}`")]
    IdsExhausted {
        /// The state directory.
        state_dir: String,
        /// The highest ID in use.
        last: u64,
    },
    /// Another gpu-setup holds the lock.
    #[error(
        "another gpu-setup is changing this host: lock `{path}` still held after {waited_secs} s"
    )]
    LockTimeout {
        /// The lock file.
        path: String,
        /// How long we waited.
        waited_secs: u64,
    },
    /// A journal file cannot be read or parsed.
    #[error("corrupt journal entry `{path}`: {problem}")]
    Journal {
        /// The manifest or backup.
        path: String,
        /// What is wrong (with line and column for JSON). Shown in the
        /// message itself, so not a `source` the cause chain repeats.
        problem: crate::journal::ManifestError,
    },
    /// `rollback` with no applied transaction.
    #[error("nothing to roll back: no applied transaction in `{state_dir}`")]
    NothingToRollBack {
        /// The state directory.
        state_dir: String,
    },
    /// `rollback ID` with an unknown ID.
    #[error("no transaction {id} in `{state_dir}`")]
    NoSuchTransaction {
        /// The ID asked for.
        id: u64,
        /// The state directory.
        state_dir: String,
    },
    /// `rollback ID` of a transaction that is not applied.
    #[error("transaction {id} is {status}: only an applied transaction can be rolled back")]
    NotApplied {
        /// The ID.
        id: u64,
        /// Its status.
        status: String,
    },
    /// `rollback ID` of a rollback.
    #[error(
        "transaction {id} is itself a rollback: to redo what it undid, run `gpu-setup apply` again"
    )]
    IsRollback {
        /// The ID.
        id: u64,
    },
    /// Files changed after the transaction being rolled back.
    #[error("cannot roll back transaction {id}: {} changed since it was applied: {}", plural(.files.len()), .files.iter().map(|d| format!("`{}`", d.path)).collect::<Vec<_>>().join(", "))]
    Drifted {
        /// The transaction.
        id: u64,
        /// The drifted files.
        files: Vec<Drift>,
    },
}

/// `cannot write `a`: why; cannot rename `b`: why`.
fn list(errors: &[StepError]) -> String {
    errors
        .iter()
        .map(|e| format!("{e}: {}", e.source))
        .collect::<Vec<_>>()
        .join("; ")
}

fn plural(n: usize) -> String {
    if n == 1 {
        "1 file".to_owned()
    } else {
        format!("{n} files")
    }
}

impl ApplyError {
    /// What the user can do about it.
    pub fn hint(&self) -> Option<String> {
        match self {
            ApplyError::Step(e) | ApplyError::Failed { source: e, .. } => e.hint(),
            ApplyError::Observe(e) => e.hint(),
            ApplyError::Stale { .. } => Some(
                "run `gpu-setup plan --out FILE` again and review the new plan".to_owned(),
            ),
            ApplyError::UndoFailed { undo: failed, .. } | ApplyError::RecoveryFailed { failed, .. } => {
                let cause = failed.iter().find_map(StepError::hint);
                Some(match cause {
                    Some(cause) => format!(
                        "{cause}; then run `gpu-setup plan`: it finishes the recovery first"
                    ),
                    None => "fix the cause, then run `gpu-setup plan`: it finishes the recovery first".to_owned(),
                })
            }
            ApplyError::IdsExhausted { state_dir, .. } => Some(format!(
                "a transaction directory with an absurd number was put in `{state_dir}/transactions`: look at it, then move it out"
            )),
            ApplyError::LockTimeout { .. } => Some(
                "wait for the other run to finish, or give more time with --lock-timeout SECONDS"
                    .to_owned(),
            ),
            ApplyError::Journal { .. } => Some(
                "inspect the file; move the broken transaction directory out of the state dir to continue"
                    .to_owned(),
            ),
            ApplyError::NothingToRollBack { .. } | ApplyError::NoSuchTransaction { .. } => {
                Some("`gpu-setup history` lists the transactions".to_owned())
            }
            ApplyError::NotApplied { .. } | ApplyError::IsRollback { .. } => {
                Some("`gpu-setup history` lists the transactions and their status".to_owned())
            }
            ApplyError::Drifted { .. } => Some(
                "review the changes above; `--force` rolls back anyway (the current content is kept in the journal)"
                    .to_owned(),
            ),
        }
    }

    /// Whether the error comes from a lack of permission for a user who is
    /// not root (then `--sudo` or root helps).
    pub fn needs_root(&self) -> bool {
        let step = match self {
            ApplyError::Step(e) | ApplyError::Failed { source: e, .. } => Some(e),
            _ => None,
        };
        step.is_some_and(StepError::needs_root)
    }
}

impl StepError {
    /// What the user can do about a failed step, from its error number and
    /// who runs gpu-setup: a permission error means something else for
    /// root (an immutable or append-only file, a security module) than for
    /// another user.
    pub fn hint(&self) -> Option<String> {
        match self.errno() {
            Some(nix::libc::EACCES) | Some(nix::libc::EPERM) if nix::unistd::geteuid().is_root() => Some(format!(
                "root was refused: `{}` or its directory may be immutable or append-only (see `lsattr -d`; `chattr -i -a` clears it), or a security module (SELinux, AppArmor) denies it",
                self.path
            )),
            Some(nix::libc::EACCES) | Some(nix::libc::EPERM) => Some(
                "run as root: the managed files and the journal belong to root".to_owned(),
            ),
            Some(nix::libc::EROFS) => Some("the filesystem is mounted read-only".to_owned()),
            Some(nix::libc::ENOSPC) | Some(nix::libc::EDQUOT) => {
                Some("free some space on that filesystem and run again".to_owned())
            }
            _ => None,
        }
    }

    /// Whether this is a permission error for a user who is not root.
    pub fn needs_root(&self) -> bool {
        matches!(
            self.errno(),
            Some(nix::libc::EACCES) | Some(nix::libc::EPERM)
        ) && !nix::unistd::geteuid().is_root()
    }
}
