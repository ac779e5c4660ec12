//! Transactions through the `Fs` seam: a three-file transaction (modify,
//! create in new directories, delete) failed at every single step, failed
//! from every step on (a disk that goes away, or a crash) and then
//! recovered, and rolled back.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use gpu_setup_plan::TargetPath;

use crate::error::ApplyError;
use crate::fs::{Fault, FaultyFs, OsFs};
use crate::journal::{Actor, Manifest, StateDir, Status, TxKind};
use crate::safe_path::Root;
use crate::transaction::{self, Ctx, Expect, Op};

const MODIFIED: &str = "/etc/containers/containers.conf";
const CREATED: &str = "/etc/nvidia-container-runtime/sub/config.toml";
const DELETED: &str = "/usr/share/containers/oci/hooks.d/old.json";
const STATE: &str = "/var/lib/gpu-setup";

fn tp(s: &str) -> TargetPath {
    TargetPath::new(s).unwrap()
}

fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// A root holding the files the transaction changes. As root, the modified
/// file belongs to another user and group, to check they are kept.
struct Host {
    dir: tempfile::TempDir,
    xattrs: bool,
}

impl Host {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let host = Host { dir, xattrs: false };
        host.put(MODIFIED, "[engine]\n# keep me\n", 0o640);
        host.put(DELETED, "{\"version\": \"1.0.0\"}\n", 0o644);
        let modified = host.real(MODIFIED);
        if is_root() {
            std::os::unix::fs::chown(&modified, Some(1234), Some(4321)).unwrap();
        }
        // user.* attributes stand in for security.selinux, which needs an
        // SELinux host; skip that check where the filesystem has none.
        let xattrs = xattr::set(&modified, "user.gpu-setup-test", b"label\0").is_ok();
        Host { xattrs, ..host }
    }

    fn root(&self) -> &Path {
        self.dir.path()
    }

    fn real(&self, p: &str) -> PathBuf {
        tp(p).under(self.root())
    }

    fn put(&self, p: &str, text: &str, mode: u32) {
        let real = self.real(p);
        fs::create_dir_all(real.parent().unwrap()).unwrap();
        fs::write(&real, text).unwrap();
        fs::set_permissions(&real, fs::Permissions::from_mode(mode)).unwrap();
    }

    fn opened(&self) -> Root {
        Root::open(self.root()).unwrap()
    }

    fn state(&self) -> StateDir {
        StateDir::new(&self.opened(), &tp(STATE))
    }

    /// The directory of transaction `id` on disk.
    fn tx_dir(&self, id: u64) -> PathBuf {
        self.real(&format!("{STATE}/transactions/{id}"))
    }

    /// Every node outside the state dir: mode, owner, content, xattrs.
    fn snapshot(&self) -> BTreeMap<PathBuf, String> {
        let mut out = BTreeMap::new();
        let state = self.real(STATE);
        let mut stack = vec![self.root().to_path_buf()];
        while let Some(dir) = stack.pop() {
            for entry in fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                // The state dir and the parents made for it are not targets.
                if path.starts_with(&state) || state.starts_with(&path) {
                    continue;
                }
                let m = fs::symlink_metadata(&path).unwrap();
                let mut desc = format!("{:o} {}:{}", m.mode(), m.uid(), m.gid());
                if m.is_dir() {
                    stack.push(path.clone());
                } else {
                    desc.push_str(&format!(" {:?}", fs::read_to_string(&path).unwrap()));
                    for name in xattr::list(&path).unwrap() {
                        let value = xattr::get(&path, &name).unwrap();
                        desc.push_str(&format!(" {name:?}={value:?}"));
                    }
                }
                out.insert(path.strip_prefix(self.root()).unwrap().to_owned(), desc);
            }
        }
        out
    }

    /// The three-file transaction, planned against the files as they are.
    fn ops(&self) -> Vec<Op> {
        let expect = |p: &str| {
            let real = self.real(p);
            let m = fs::metadata(&real).unwrap();
            Expect::File {
                sha256: gpu_setup_plan::sha256(&fs::read(&real).unwrap()),
                meta: Some((m.mode() & 0o7777, m.uid(), m.gid())),
            }
        };
        vec![
            Op {
                path: tp(MODIFIED),
                expect: expect(MODIFIED),
                after: Some(
                    b"[engine]\n# keep me\n[engine.runtimes]\nnvidia = [\"/x\"]\n".to_vec(),
                ),
                attrs: None,
                owner_to_caller: false,
            },
            Op {
                path: tp(CREATED),
                expect: Expect::Absent,
                after: Some(b"[nvidia-container-cli]\nno-cgroups = true\n".to_vec()),
                attrs: None,
                owner_to_caller: false,
            },
            Op {
                path: tp(DELETED),
                expect: expect(DELETED),
                after: None,
                attrs: None,
                owner_to_caller: false,
            },
        ]
    }

    fn apply(&self, fault: Option<Fault>) -> (Result<Manifest, ApplyError>, usize) {
        let ops = self.ops();
        let (result, log) = self.run(fault, |ctx| {
            transaction::execute(ctx, TxKind::Apply, None, &ops, &[])
        });
        (result, log.len())
    }

    fn with_ctx<T>(&self, fault: Option<Fault>, f: impl FnOnce(&Ctx<'_>) -> T) -> T {
        self.run(fault, f).0
    }

    /// Runs `f` with a context on this host; returns its result and the
    /// steps taken.
    fn run<T>(&self, fault: Option<Fault>, f: impl FnOnce(&Ctx<'_>) -> T) -> (T, Vec<String>) {
        let fs = FaultyFs::new(OsFs, fault, None);
        let root = self.opened();
        let state = StateDir::new(&root, &tp(STATE));
        let actor = actor();
        let out = f(&Ctx {
            fs: &fs,
            root: &root,
            state: &state,
            actor: &actor,
        });
        (out, fs.log())
    }
}

fn actor() -> Actor {
    Actor {
        user: "tester".to_owned(),
        uid: nix::unistd::geteuid().as_raw(),
        gid: nix::unistd::getegid().as_raw(),
        sudo_user: None,
        command: vec!["gpu-setup".to_owned(), "apply".to_owned()],
    }
}

fn steps_of_a_clean_apply() -> usize {
    let host = Host::new();
    let (result, steps) = host.apply(None);
    result.unwrap();
    steps
}

#[test]
fn a_transaction_changes_every_file_and_keeps_mode_owner_and_xattrs() {
    let host = Host::new();
    let before = fs::metadata(host.real(MODIFIED)).unwrap();
    let (result, _) = host.apply(None);
    let manifest = result.unwrap();
    assert_eq!(manifest.status, Status::Applied);

    let m = fs::metadata(host.real(MODIFIED)).unwrap();
    assert_eq!(
        (m.mode() & 0o7777, m.uid(), m.gid()),
        (0o640, before.uid(), before.gid())
    );
    assert_ne!(
        m.ino(),
        before.ino(),
        "replaced by rename, not rewritten in place"
    );
    if host.xattrs {
        assert_eq!(
            xattr::get(host.real(MODIFIED), "user.gpu-setup-test").unwrap(),
            Some(b"label\0".to_vec())
        );
    }
    let created = fs::metadata(host.real(CREATED)).unwrap();
    assert_eq!(created.mode() & 0o7777, 0o644);
    assert_eq!(created.uid(), nix::unistd::geteuid().as_raw());
    for dir in [
        "/etc/nvidia-container-runtime",
        "/etc/nvidia-container-runtime/sub",
    ] {
        let d = fs::metadata(host.real(dir)).unwrap();
        assert_eq!(d.mode() & 0o7777, 0o755, "{dir}");
    }
    assert_eq!(
        manifest.created_dirs,
        [
            tp("/etc/nvidia-container-runtime"),
            tp("/etc/nvidia-container-runtime/sub")
        ]
    );
    assert!(!host.real(DELETED).exists());

    // The journal: root-only, with copies of every version.
    let state = host.real(STATE);
    assert_eq!(fs::metadata(&state).unwrap().mode() & 0o777, 0o700);
    let tx = host.tx_dir(manifest.id);
    let mut names: Vec<String> = fs::read_dir(&tx)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "0.after",
            "0.before",
            "1.after",
            "2.before",
            "manifest.json"
        ]
    );
    for name in &names {
        assert_eq!(
            fs::metadata(tx.join(name)).unwrap().mode() & 0o777,
            0o600,
            "{name}"
        );
    }
    assert_eq!(host.state().history().unwrap(), [manifest]);
}

#[test]
fn a_failure_at_any_step_leaves_every_file_as_it_was() {
    let total = steps_of_a_clean_apply();
    assert!(total > 20, "only {total} steps counted");
    for n in 0..total {
        let host = Host::new();
        let before = host.snapshot();
        let (result, _) = host.apply(Some(Fault::FailAt(n)));
        let err = result.expect_err("an injected failure must fail the transaction");
        assert_eq!(host.snapshot(), before, "step {n}: {err}");
        // Failures after the journal entry is written are recorded.
        let history = host.state().history().unwrap();
        if let ApplyError::Failed { id, source } = &err {
            assert_eq!(history[0].id, *id);
            assert_eq!(history[0].status, Status::Failed, "step {n}");
            assert!(
                history[0].error.as_deref().unwrap().contains("injected"),
                "step {n}"
            );
            assert!(source.to_string().starts_with("cannot "), "{source}");
        } else {
            assert!(matches!(err, ApplyError::Step(_)), "step {n}: {err:?}");
            assert!(history.iter().all(|m| m.status != Status::Pending));
        }
        // And the next run goes through.
        host.apply(None).0.unwrap();
    }
}

#[test]
fn a_crash_at_any_step_is_undone_by_the_next_run() {
    let total = steps_of_a_clean_apply();
    let after = {
        let host = Host::new();
        host.apply(None).0.unwrap();
        host.snapshot()
    };
    for n in 0..total {
        let host = Host::new();
        let before = host.snapshot();
        // Every step from n on fails, the undo included: what a crash or a
        // vanished disk leaves behind.
        let (result, _) = host.apply(Some(Fault::FailFrom(n)));
        assert!(result.is_err());
        let recovered = host.with_ctx(None, transaction::recover).unwrap();
        let history = host.state().history().unwrap();
        assert!(
            history.iter().all(|m| m.status != Status::Pending),
            "step {n}"
        );
        // All or nothing: every file as before, or (when the disk went away
        // after the applied status was durable) every file as planned.
        let now = host.snapshot();
        if now == before {
            host.apply(None).0.unwrap();
        } else {
            assert_eq!(now, after, "step {n}");
            assert_eq!(history[0].status, Status::Applied, "step {n}");
        }
        for r in recovered {
            let m = history.iter().find(|m| m.id == r.id).unwrap();
            assert_eq!(m.status, Status::Recovered);
        }
    }
}

#[test]
fn rollback_restores_bytes_modes_owners_and_directories() {
    let host = Host::new();
    let before = host.snapshot();
    let applied = host.apply(None).0.unwrap();
    let undone = host
        .with_ctx(None, |ctx| transaction::rollback(ctx, &applied, false))
        .unwrap();
    assert_eq!(undone.kind, TxKind::Rollback);
    assert_eq!(undone.rolls_back, Some(applied.id));
    assert_eq!(undone.removed_dirs.len(), 2);
    assert_eq!(host.snapshot(), before);
    let history = host.state().history().unwrap();
    assert_eq!(history[1].status, Status::RolledBack);
    let err = transaction::rollback_target(&host.state(), None).unwrap_err();
    assert!(matches!(err, ApplyError::NothingToRollBack { .. }), "{err}");
}

#[test]
fn a_failed_rollback_leaves_the_applied_state() {
    let log = {
        let host = Host::new();
        let applied = host.apply(None).0.unwrap();
        let (result, log) = host.run(None, |ctx| transaction::rollback(ctx, &applied, false));
        result.unwrap();
        log
    };
    for (n, step) in log.iter().enumerate() {
        let host = Host::new();
        let before = host.snapshot();
        let applied = host.apply(None).0.unwrap();
        let after_apply = host.snapshot();
        let result = host.with_ctx(Some(Fault::FailAt(n)), |ctx| {
            transaction::rollback(ctx, &applied, false)
        });
        match result {
            Err(e) => assert_eq!(host.snapshot(), after_apply, "step {n}: {e}"),
            // Only the last steps, marking the old transaction rolled back,
            // may fail without failing the rollback: its own entry is the
            // record.
            Ok(_) => {
                let target_dir = format!("/transactions/{}", applied.id);
                assert!(
                    step.ends_with(&target_dir) || step.contains(&format!("{target_dir}/")),
                    "step {n}: {step}"
                );
                assert_eq!(host.snapshot(), before);
                assert_eq!(
                    host.state().history().unwrap()[1].status,
                    Status::RolledBack
                );
            }
        }
    }
}

#[test]
fn rollback_refuses_drift_unless_forced() {
    let host = Host::new();
    let before = host.snapshot();
    let applied = host.apply(None).0.unwrap();
    fs::write(host.real(CREATED), "edited by hand\n").unwrap();
    let drifted = host.snapshot();
    let err = host
        .with_ctx(None, |ctx| transaction::rollback(ctx, &applied, false))
        .unwrap_err();
    let ApplyError::Drifted { id, files } = &err else {
        panic!("{err:?}")
    };
    assert_eq!(*id, applied.id);
    assert_eq!(files.len(), 1);
    assert_eq!(files[0].path, CREATED);
    assert!(
        files[0].diff.contains("+edited by hand"),
        "{}",
        files[0].diff
    );
    assert!(
        files[0].diff.contains("-no-cgroups = true"),
        "{}",
        files[0].diff
    );
    assert_eq!(
        err.to_string(),
        format!(
            "cannot roll back transaction {}: 1 file changed since it was applied: `{CREATED}`",
            applied.id
        )
    );
    assert_eq!(host.snapshot(), drifted);

    let undone = host
        .with_ctx(None, |ctx| transaction::rollback(ctx, &applied, true))
        .unwrap();
    assert_eq!(host.snapshot(), before);
    // The hand edit is kept in the rollback's journal entry.
    let rec = undone
        .files
        .iter()
        .find(|f| f.path.as_str() == CREATED)
        .unwrap();
    let kept = host
        .state()
        .read_copy(undone.id, rec.before.as_ref().unwrap())
        .unwrap();
    assert_eq!(kept, b"edited by hand\n");
}

#[test]
fn a_stale_file_is_refused_before_anything_is_written() {
    let host = Host::new();
    let ops = host.ops();
    fs::write(host.real(MODIFIED), "changed meanwhile\n").unwrap();
    let before = host.snapshot();
    let err = host
        .with_ctx(None, |ctx| {
            transaction::execute(ctx, TxKind::Apply, None, &ops, &[])
        })
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("`{MODIFIED}` changed since it was planned: its content differs")
    );
    assert_eq!(host.snapshot(), before);
    assert!(
        !host.real(STATE).exists(),
        "nothing written, not even the state dir"
    );
}

#[test]
fn temp_files_are_invisible_to_podman() {
    let host = Host::new();
    let ops = host.ops();
    let (result, log) = host.run(None, |ctx| {
        transaction::execute(ctx, TxKind::Apply, None, &ops, &[])
    });
    result.unwrap();
    let writes: Vec<&String> = log
        .iter()
        .filter(|l| l.starts_with("write ") && !l.contains("/var/lib/gpu-setup/"))
        .collect();
    assert_eq!(writes.len(), 2, "{log:#?}");
    for w in writes {
        let name = Path::new(w).file_name().unwrap().to_str().unwrap();
        assert!(name.starts_with('.') && name.ends_with('~'), "{name}");
    }
    // systemd's order for each file: write, fsync, (chown), chmod, rename,
    // fsync the directory.
    let target = host.real(MODIFIED);
    let steps: Vec<&str> = log
        .iter()
        .filter(|l| {
            let p = l.split_once(' ').unwrap().1;
            p.contains(".containers.conf.gpu-setup")
                || p == target.to_str().unwrap()
                || p == target.parent().unwrap().to_str().unwrap()
        })
        .map(|l| l.split_once(' ').unwrap().0)
        .collect();
    let expected: &[&str] = match (is_root(), host.xattrs) {
        (true, true) => &[
            "write",
            "fsync",
            "chown",
            "chmod",
            "setxattr",
            "rename",
            "fsync-dir",
        ],
        (true, false) => &["write", "fsync", "chown", "chmod", "rename", "fsync-dir"],
        (false, true) => &["write", "fsync", "chmod", "setxattr", "rename", "fsync-dir"],
        (false, false) => &["write", "fsync", "chmod", "rename", "fsync-dir"],
    };
    assert_eq!(steps, expected);
}

#[test]
fn a_corrupt_manifest_is_an_error_naming_the_file_and_line() {
    let host = Host::new();
    let applied = host.apply(None).0.unwrap();
    let path = host.tx_dir(applied.id).join("manifest.json");
    fs::write(&path, "{\n  \"format\": 1,\n  oops\n}\n").unwrap();
    let err = host.state().history().unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "corrupt journal entry `{STATE}/transactions/{}/manifest.json`: line 3, column 3: key must be a string at line 3 column 3",
            applied.id
        )
    );
    assert!(err
        .hint()
        .unwrap()
        .contains("move the broken transaction directory"));
}

#[test]
fn a_failed_undo_says_so_and_leaves_the_entry_for_recovery() {
    let host = Host::new();
    let before = host.snapshot();
    // Fail from the first target write on: the undo fails too.
    let first_target = {
        let probe = Host::new();
        let ops = probe.ops();
        let (_, log) = probe.run(None, |ctx| {
            transaction::execute(ctx, TxKind::Apply, None, &ops, &[])
        });
        log.iter()
            .position(|l| l.starts_with("write ") && !l.contains(STATE))
            .unwrap()
    };
    let (result, _) = host.apply(Some(Fault::FailFrom(first_target + 2)));
    let err = result.unwrap_err();
    assert!(
        matches!(err, ApplyError::UndoFailed { id: 1, .. }),
        "{err:?}"
    );
    assert!(
        err.to_string()
            .starts_with("transaction 1 failed, and undoing it failed too: cannot "),
        "{err}"
    );
    // Every file that could not be put back is named, not just the first.
    assert!(err.to_string().contains("; cannot "), "{err}");
    assert_eq!(
        err.hint().unwrap(),
        "fix the cause, then run `gpu-setup plan`: it finishes the recovery first"
    );
    assert_eq!(host.state().history().unwrap()[0].status, Status::Pending);
    host.with_ctx(None, transaction::recover).unwrap();
    assert_eq!(host.snapshot(), before);
}

#[test]
fn a_corrupt_backup_stops_rollback_before_anything_changes() {
    let host = Host::new();
    let applied = host.apply(None).0.unwrap();
    let tx = host.tx_dir(applied.id);
    fs::write(tx.join("0.before"), "tampered\n").unwrap();
    let after_apply = host.snapshot();
    let err = host
        .with_ctx(None, |ctx| transaction::rollback(ctx, &applied, false))
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "corrupt journal entry `{STATE}/transactions/{}/0.before`: the copy does not match the hash recorded in the manifest",
            applied.id
        )
    );
    assert_eq!(host.snapshot(), after_apply);
}
