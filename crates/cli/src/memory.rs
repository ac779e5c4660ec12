//! What gpu-setup remembers of the files it managed, from its journal: for
//! each file whose content is still what gpu-setup last wrote ("ours"),
//! what was there before gpu-setup first changed it (nothing: gpu-setup
//! created it). `--state absent` restores that exactly, a file gpu-setup
//! never wrote is left alone, and a file it created at a path it no longer
//! manages is removed (gpu_setup_plan::desired::Memory).

use std::collections::BTreeMap;

use gpu_setup_apply::journal::{StateDir, Status};
use gpu_setup_plan::desired::Memory;
use gpu_setup_plan::{sha256, Observe, TargetPath};

/// One file's writes so far: the state gpu-setup first found (with the
/// transaction holding its copy; `None`: no file) and the hash of what it
/// last wrote (`None`: it removed the file).
type Chain = (
    Option<(u64, gpu_setup_apply::journal::FileState)>,
    Option<String>,
);

/// The memory of the journal in `state`, against the host now. A journal
/// this user cannot read remembers nothing.
pub(crate) fn recall(state: &StateDir, host: &dyn Observe) -> Memory {
    let Ok(history) = state.history() else {
        return Memory::default();
    };
    // Oldest first; only writes that stood (an applied transaction, or one
    // a later rollback undid: the rollback's own record follows it).
    let mut chain: BTreeMap<TargetPath, Chain> = BTreeMap::new();
    for m in history.iter().rev() {
        if !matches!(m.status, Status::Applied | Status::RolledBack) {
            continue;
        }
        for f in &m.files {
            let before_sha = f.before.as_ref().map(|b| b.sha256.clone());
            let after_sha = f.after.as_ref().map(|a| a.sha256.clone());
            match chain.get_mut(&f.path) {
                // Continuous with gpu-setup's last write: the baseline stays.
                Some((_, last)) if *last == before_sha => *last = after_sha,
                // Changed by someone else in between (a package upgrade):
                // the baseline is what gpu-setup found this time.
                _ => {
                    chain.insert(
                        f.path.clone(),
                        (f.before.clone().map(|b| (m.id, b)), after_sha),
                    );
                }
            }
        }
    }
    let mut memory = Memory::default();
    for m in history.iter().rev() {
        if m.kind == gpu_setup_apply::journal::TxKind::Apply && m.status == Status::Applied {
            for d in &m.created_dirs {
                if !memory.created_dirs.contains(d) {
                    memory.created_dirs.push(d.clone());
                }
            }
        }
    }
    // Parents first.
    memory
        .created_dirs
        .sort_by_key(|d| d.as_str().matches('/').count());
    for (path, (baseline, last)) in chain {
        let now = host.file(&path).ok().and_then(|o| o.bytes().map(sha256));
        if now != last {
            continue;
        }
        let original = match baseline {
            None => None,
            Some((id, state_rec)) => match state.read_copy(id, &state_rec) {
                Ok(bytes) => Some(bytes),
                // Its copy is gone: nothing exact to restore.
                Err(_) => continue,
            },
        };
        memory.ours.insert(path.clone());
        memory.originals.insert(path, original);
    }
    memory
}
