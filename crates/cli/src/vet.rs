//! Vetting a program gpu-setup runs as root (`sudo` re-running this binary,
//! `nvidia-ctk`): it, and every directory from `/` down to it, must be owned
//! by a trusted user and not writable by group or others (a directory may
//! be sticky, like /tmp: others cannot rename or remove what is not
//! theirs), or whoever can change it gets root.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

pub use gpu_setup_apply::trust::trusted_uids;

/// Why a program cannot be trusted: the path at fault and what is wrong.
#[derive(Debug)]
pub struct Untrusted {
    /// `binary` or `directory`.
    pub what: &'static str,
    /// The path at fault.
    pub path: PathBuf,
    /// What is wrong with it.
    pub problem: String,
}

/// Checks `program` (links resolved) and every directory above it; returns
/// the program's real path. `trusted` are the owners allowed.
pub fn program(program: &Path, trusted: &[u32]) -> Result<PathBuf, Untrusted> {
    let real = std::fs::canonicalize(program).map_err(|e| Untrusted {
        what: "binary",
        path: program.to_owned(),
        problem: e.to_string(),
    })?;
    let mut chain: Vec<(&'static str, &Path)> = vec![("binary", &real)];
    chain.extend(real.ancestors().skip(1).map(|d| ("directory", d)));
    for (what, path) in chain {
        let meta = std::fs::symlink_metadata(path).map_err(|e| Untrusted {
            what,
            path: path.to_owned(),
            problem: e.to_string(),
        })?;
        // A directory may be sticky and writable by others (/tmp): no one
        // else can rename or remove what root or the caller owns there. The
        // program itself may not.
        if let Some(problem) = problem_with(&meta, trusted, what == "directory") {
            return Err(Untrusted {
                what,
                path: path.to_owned(),
                problem,
            });
        }
    }
    Ok(real)
}

/// What makes a node unsafe to trust: an owner not in `trusted`, or
/// write access for group or others (unless `sticky_ok` and the sticky bit
/// keeps others from renaming what is not theirs).
fn problem_with(meta: &std::fs::Metadata, trusted: &[u32], sticky_ok: bool) -> Option<String> {
    if !trusted.contains(&meta.uid()) {
        // A narrower list than the rule's (sudo's re-run trusts root alone).
        return Some(format!("is owned by user {}, not root", meta.uid()));
    }
    gpu_setup_apply::trust::problem(meta.uid(), meta.mode(), sticky_ok)
}

/// A new private directory for a program's output, in the temporary
/// directory (`$TMPDIR` or `/tmp`) when that and every directory above it
/// are owned by root or the caller and either not writable by others or
/// sticky (so no one else can rename what gpu-setup creates there).
pub fn scratch_dir(prefix: &str) -> Result<tempfile::TempDir, String> {
    let tmp = std::env::temp_dir();
    let trusted = trusted_uids();
    let real = std::fs::canonicalize(&tmp).map_err(|e| {
        format!(
            "cannot use the temporary directory `{}`: {e}",
            tmp.display()
        )
    })?;
    for dir in real.ancestors() {
        let meta = std::fs::symlink_metadata(dir)
            .map_err(|e| format!("cannot inspect `{}`: {e}", dir.display()))?;
        if problem_with(&meta, &trusted, true).is_some() {
            let mode = meta.mode() & 0o7777;
            return Err(format!(
                "the temporary directory `{}` is not safe: `{}` (owner {}, mode {mode:04o}) lets another user replace what gpu-setup creates there",
                tmp.display(),
                dir.display(),
                meta.uid()
            ));
        }
    }
    tempfile::Builder::new()
        .prefix(prefix)
        .tempdir_in(&real)
        .map_err(|e| format!("cannot create a directory in `{}`: {e}", real.display()))
}
