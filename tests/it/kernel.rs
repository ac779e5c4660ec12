//! Black-box runs where the kernel refuses: a full tmpfs (ENOSPC), a
//! read-only bind mount (EROFS), and a user without permission (EACCES).
//! The mounts live in a private mount namespace (`unshare -m`), so they
//! vanish with the test's process and never touch the machine.

use std::process::Command as StdCommand;

use crate::util::*;

/// Runs `gpu-setup --root T --color never ARGS` after `setup` (shell, with
/// `$T` set to the tree) in a private mount namespace. Returns (exit code,
/// stderr).
fn in_namespace(tree: &Tree, setup: &str, args: &str) -> (Option<i32>, String) {
    let bin = crate::util::bin();
    let script = format!("set -e\n{setup}\nexec \"$BIN\" --root \"$T\" --color never {args}\n");
    let out = StdCommand::new("unshare")
        .args(["-m", "--propagation", "private", "sh", "-c", &script])
        .env("T", tree.root())
        .env("BIN", bin)
        .env_remove("GPU_SETUP_LOG")
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Runs `apply` on a stock tree after `setup` (in a private mount
/// namespace) makes the kernel refuse the hook, written last; checks that
/// the transaction was undone and returns stderr.
fn apply_refused_at_the_hook(setup: &str) -> String {
    let tree = Tree::stock();
    tree.write("/usr/share/containers/oci/hooks.d/.keep", "");
    let start = tree.targets();
    let (code, err) = in_namespace(&tree, setup, "apply");
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains(
            "error: transaction 1 failed and was undone: every file is as it was before\n"
        ),
        "{err}"
    );
    assert!(
        err.contains("caused by: cannot write `/usr/share/containers/oci/hooks.d/.oci-nvidia-hook.json.gpu-setup-1~`"),
        "{err}"
    );
    // The drop-in and config.toml, written before the hook, are restored.
    assert_same(&tree.targets(), &start);
    assert!(tree.temp_files().is_empty(), "{:?}", tree.temp_files());
    let history = ok_stdout(&mut tree.cmd(&["history"]));
    assert!(
        history.lines().nth(1).unwrap().ends_with(" failed"),
        "{history}"
    );
    err
}

#[test]
fn a_read_only_filesystem_mid_transaction_restores_what_was_written() {
    if !need_root("bind mounts in a private mount namespace") {
        return;
    }
    // /etc stays writable; /usr is read-only.
    let err = apply_refused_at_the_hook(
        "mount --bind \"$T/usr\" \"$T/usr\"\nmount -o remount,bind,ro \"$T/usr\"",
    );
    assert!(
        err.contains("caused by: Read-only file system (os error 30)"),
        "{err}"
    );
    assert!(
        err.contains("hint: the filesystem is mounted read-only"),
        "{err}"
    );
}

#[test]
fn a_full_filesystem_mid_transaction_restores_what_was_written() {
    if !need_root("a tmpfs mount in a private mount namespace") {
        return;
    }
    // A one-page tmpfs over hooks.d, filled up.
    let err = apply_refused_at_the_hook(
        "D=\"$T/usr/share/containers/oci/hooks.d\"\n\
         mount -t tmpfs -o size=4k,mode=0755 tmpfs \"$D\"\n\
         dd if=/dev/zero of=\"$D/fill\" bs=1k count=64 2>/dev/null || true",
    );
    assert!(
        err.contains("caused by: No space left on device (os error 28)"),
        "{err}"
    );
    assert!(
        err.contains("hint: free some space on that filesystem and run again"),
        "{err}"
    );
}

#[test]
fn a_full_state_dir_stops_apply_before_any_target_changes() {
    if !need_root("a tmpfs mount in a private mount namespace") {
        return;
    }
    let tree = Tree::stock();
    tree.write("/var/lib/gpu-setup/.keep", "");
    let start = tree.targets();
    let (code, err) = in_namespace(
        &tree,
        "D=\"$T/var/lib/gpu-setup\"\n\
         mount -t tmpfs -o size=4k,mode=0700 tmpfs \"$D\"\n\
         dd if=/dev/zero of=\"$D/fill\" bs=1k count=64 2>/dev/null || true",
        "apply",
    );
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("No space left on device"), "{err}");
    assert!(err.contains("/var/lib/gpu-setup/"), "{err}");
    assert_same(&tree.targets(), &start);
}

#[test]
fn a_user_without_permission_gets_a_clear_error_and_nothing_changes() {
    if !need_root("switching to the nobody user with setpriv") {
        return;
    }
    let tree = Tree::stock();
    let mut cmd = as_nobody(&tree, &["apply"]);
    let before = tree.snapshot();
    let err = fails(&mut cmd);
    assert!(
        err.contains(
            "error: cannot create directory `/var`\n  caused by: Permission denied (os error 13)\n"
        ),
        "{err}"
    );
    assert!(
        err.contains(
            "hint: run as root, or add --sudo: the managed files and the journal belong to root"
        ),
        "{err}"
    );
    assert_eq!(tree.snapshot(), before);
}

#[test]
fn a_user_who_cannot_read_the_journal_can_still_plan() {
    if !need_root("switching to the nobody user with setpriv") {
        return;
    }
    let tree = Tree::stock();
    ok_stdout(&mut tree.cmd(&["apply"]));
    let as_nobody = |args: &[&str]| as_nobody(&tree, args);
    as_nobody(&[]); // copies the binary before the snapshot
    let before = tree.snapshot();
    // The journal is root-only (0700): plan still works and says it could
    // not check for an interrupted transaction.
    let out = as_nobody(&["plan", "--detailed-exitcode"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("cannot check the journal for an interrupted transaction"),
        "{stderr}"
    );
    // Reading the journal itself needs root.
    let err = fails(&mut as_nobody(&["history"]));
    assert!(
        err.starts_with(
            "error: cannot open `/var/lib/gpu-setup/transactions`\n  caused by: Permission denied"
        ),
        "{err}"
    );
    // `history` has no --sudo: the hint does not name it.
    assert!(
        err.contains("hint: run as root: the managed files and the journal belong to root\n"),
        "{err}"
    );
    assert_eq!(tree.snapshot(), before);
}
