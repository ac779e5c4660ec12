//! The attacks of the security review (issue 13), each performed against
//! the real binary and shown to fail with a clear message and nothing
//! written. docs/security.md names these tests beside the rules they check.

use std::fs;
use std::os::unix::fs::{chown, lchown, symlink, MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::Command as StdCommand;
use std::time::Duration;

use serde_json::{json, Value};

use crate::util::*;

fn mode_of(p: &Path) -> u32 {
    fs::symlink_metadata(p).unwrap().mode() & 0o7777
}

/// A journal entry written by hand, as an attacker would: transaction `id`
/// pending, one file record whose before-copy holds `before` with `attrs`
/// (mode, uid, gid), and whose after-state is "absent" (so undoing it
/// writes the before-copy back).
fn forge_pending_entry(tree: &Tree, id: u64, path: &str, before: &str, attrs: (u32, u32, u32)) {
    let dir = tree.real(&format!("{STATE_DIR}/transactions/{id}"));
    fs::create_dir_all(&dir).unwrap();
    fs::write(dir.join("0.before"), before).unwrap();
    let name = path.rsplit('/').next().unwrap();
    let manifest = json!({
        "format": 1,
        "id": id,
        "kind": "apply",
        "time": "2026-01-01T00:00:00Z",
        "user": "root",
        "uid": 0,
        "command": ["gpu-setup", "apply"],
        "status": "pending",
        "files": [{
            "path": path,
            "action": "delete",
            "before": {
                "sha256": gpu_setup_plan::sha256(before.as_bytes()),
                "mode": attrs.0, "uid": attrs.1, "gid": attrs.2,
                "copy": "0.before"
            },
            "after": null,
            "temp": format!(".{name}.gpu-setup-{id}~"),
        }],
        "created_dirs": [],
    });
    fs::write(dir.join("manifest.json"), manifest.to_string()).unwrap();
    for d in [
        tree.real(STATE_DIR),
        dir.clone(),
        dir.parent().unwrap().to_owned(),
    ] {
        fs::set_permissions(d, fs::Permissions::from_mode(0o700)).unwrap();
    }
}

// 1. A read-only command becomes a root `apply`.

/// Runs `gpu-setup ARGS` with no `--root`, from `cwd`, in a private mount
/// namespace whose /etc, /usr/share and /var/lib are empty tmpfs mounts:
/// whatever it writes vanishes with the namespace.
fn hermetic(cwd: &Path, args: &str) -> (Option<i32>, String, String) {
    let bin = crate::util::bin();
    let script = format!(
        "set -e\nfor d in /etc /usr/share /var/lib; do mount -t tmpfs -o mode=0755 tmpfs \"$d\"; done\ncd \"$CWD\"\nexec \"$BIN\" --color never {args}\n"
    );
    let out = StdCommand::new("unshare")
        .args(["-m", "--propagation", "private", "sh", "-c", &script])
        .env("CWD", cwd)
        .env("BIN", bin)
        .env_remove("GPU_SETUP_LOG")
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_file_named_like_a_subcommand_never_turns_it_into_a_module_run() {
    if !need_root("a private mount namespace") {
        return;
    }
    // The attacker's tree and a working directory holding files named
    // `plan` and `apply` that hold module arguments.
    let tree = Tree::stock();
    let before = tree.snapshot();
    let cwd = tempfile::tempdir().unwrap();
    let evil = json!({"root": tree.root(), "hook_path": "/tmp/evil"}).to_string();
    for name in ["plan", "apply", "history", "doctor"] {
        fs::write(cwd.path().join(name), &evil).unwrap();
    }
    let (code, out, err) = hermetic(cwd.path(), "plan");
    assert_eq!(code, Some(0), "{err}");
    // The real root, bare: the drop-in and the hook (no config.toml: the
    // toolkit is not installed).
    assert!(
        out.contains("Plan: 2 to create, 0 to modify, 0 to delete."),
        "{out}"
    );
    assert!(!out.contains("\"changed\""), "not a module result: {out}");
    let (code, out, err) = hermetic(cwd.path(), "apply");
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("Applied transaction 1"), "{out}");
    // The attacker's root was never used: no hook runs /tmp/evil.
    assert_same(&tree.snapshot(), &before);
}

// 2. A forged journal restores a setuid-root file.

#[test]
fn a_state_dir_owned_by_another_user_is_refused() {
    if !need_root("a state dir owned by another user") {
        return;
    }
    let tree = Tree::stock();
    forge_pending_entry(
        &tree,
        1,
        "/usr/local/bin/rootsh",
        "#!/bin/sh\nexec /bin/sh\n",
        (0o6755, 0, 0),
    );
    fs::create_dir_all(tree.real("/usr/local/bin")).unwrap();
    for entry in walk(&tree.real(STATE_DIR)) {
        lchown(&entry, Some(1000), Some(1000)).unwrap();
    }
    let before = tree.snapshot();
    for cmd in ["plan", "apply", "history", "rollback"] {
        let err = fails(&mut tree.cmd(&[cmd]));
        assert!(
            err.contains("error: cannot use state directory `/var/lib/gpu-setup`\n  caused by: it is owned by user 1000, not root: that user could forge the journal that recovery and rollback follow"),
            "{cmd}: {err}"
        );
        assert_same(&tree.snapshot(), &before);
    }
    assert!(!tree.real("/usr/local/bin/rootsh").exists());
}

/// Every path under `dir`, `dir` first.
fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = vec![dir.to_owned()];
    if fs::symlink_metadata(dir).unwrap().is_dir() {
        for e in fs::read_dir(dir).unwrap() {
            out.extend(walk(&e.unwrap().path()));
        }
    }
    out
}

#[test]
fn an_image_tree_owned_by_another_user_is_refused() {
    if !need_root("a tree owned by another user") {
        return;
    }
    let tree = Tree::stock();
    forge_pending_entry(
        &tree,
        1,
        "/etc/containers/containers.conf.d/99-nvidia.conf",
        "[engine.runtimes]\nnvidia = [\"/tmp/evil\"]\n",
        (0o644, 0, 0),
    );
    for entry in walk(tree.root()) {
        lchown(&entry, Some(1000), Some(1000)).unwrap();
    }
    let before = tree.snapshot();
    for cmd in ["plan", "apply"] {
        let err = fails(&mut tree.cmd(&[cmd]));
        // Refused when --root is opened (R14), before anything is read.
        assert!(
            err.starts_with(&format!(
                "error: cannot use root `{}`\n  caused by: `{}` is owned by user 1000, not root or you\n",
                tree.root().display(),
                fs::canonicalize(tree.root()).unwrap().display()
            )),
            "{cmd}: {err}"
        );
        assert_same(&tree.snapshot(), &before);
    }
}

#[test]
fn a_forged_manifest_naming_a_file_gpu_setup_does_not_manage_is_refused() {
    let tree = Tree::stock();
    fs::create_dir_all(tree.real("/usr/local/bin")).unwrap();
    forge_pending_entry(
        &tree,
        1,
        "/usr/local/bin/rootsh",
        "#!/bin/sh\nexec /bin/sh\n",
        (0o6755, 0, 0),
    );
    let before = tree.snapshot();
    let err = fails(&mut tree.cmd(&["plan"]));
    assert!(
        err.contains("error: corrupt journal entry `/var/lib/gpu-setup/transactions/1/manifest.json`: `/usr/local/bin/rootsh` is not a file gpu-setup manages: its name does not end in .conf, .toml, .json, .yaml\n"),
        "{err}"
    );
    assert!(err.contains("hint: inspect the file"), "{err}");
    assert_same(&tree.snapshot(), &before);
    assert!(!tree.real("/usr/local/bin/rootsh").exists());
}

#[test]
fn a_forged_manifest_cannot_restore_set_id_bits_or_give_a_file_away() {
    if !need_root("files owned by root and another user") {
        return;
    }
    let tree = Tree::stock();
    let path = "/etc/containers/containers.conf.d/99-nvidia.conf";
    fs::create_dir_all(tree.real("/etc/containers/containers.conf.d")).unwrap();
    forge_pending_entry(&tree, 1, path, "[engine]\n", (0o6777, 1000, 1000));
    let out = tree.cmd(&["plan"]).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("recovered: transaction 1 was interrupted"),
        "{err}"
    );
    let real = tree.real(path);
    let m = fs::metadata(&real).unwrap();
    // Content restored; no set-ID or sticky bit; not handed to user 1000.
    assert_eq!(fs::read_to_string(&real).unwrap(), "[engine]\n");
    assert_eq!(m.mode() & 0o7777, 0o777);
    assert_eq!((m.uid(), m.gid()), (0, 0));
}

#[test]
fn a_forged_manifest_cannot_reach_outside_the_root_through_a_link() {
    let tree = Tree::stock();
    let outside = tempfile::tempdir().unwrap();
    fs::create_dir_all(tree.real("/etc")).unwrap();
    // A link inside the image that leads out of it.
    symlink(outside.path(), tree.real("/etc/cron.conf.d")).unwrap();
    forge_pending_entry(
        &tree,
        1,
        "/etc/cron.conf.d/evil.conf",
        "* * * * * root /tmp/evil\n",
        (0o644, 0, 0),
    );
    let out = tree.cmd(&["plan"]).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("note: `/etc/cron.conf.d/evil.conf` now is or sits behind a symbolic link; left as it is"),
        "{err}"
    );
    assert!(fs::read_dir(outside.path()).unwrap().next().is_none());
}

// 3. Saved plans write anywhere, and `plan --out` is unsafe.

fn saved_plan(tree: &Tree) -> (std::path::PathBuf, Value) {
    let file = tree.real("/plan.json");
    ok_stdout(&mut tree.cmd(&["plan", "--out", file.to_str().unwrap()]));
    let v = serde_json::from_str(&fs::read_to_string(&file).unwrap()).unwrap();
    (file, v)
}

#[test]
fn an_edited_saved_plan_is_refused() {
    let tree = Tree::stock();
    let (file, plan) = saved_plan(&tree);
    let arg = file.to_str().unwrap();
    // A change added for a file gpu-setup does not manage.
    let mut added = plan.clone();
    added["changes"].as_array_mut().unwrap().push(json!({
        "path": "/etc/sudoers.d/x", "action": "create", "before": null,
        "after": "attacker ALL=(ALL) NOPASSWD: ALL\n", "reasons": [],
    }));
    // The hook's content pointed at another program.
    let mut edited = plan.clone();
    for c in edited["changes"].as_array_mut().unwrap() {
        if c["path"] == HOOK {
            let after = c["after"]
                .as_str()
                .unwrap()
                .replace("/usr/bin/nvidia-container-toolkit", "/tmp/evil");
            c["after"] = after.into();
        }
    }
    for (v, named) in [
        (added, "`/etc/sudoers.d/x`"),
        (edited, &format!("`{HOOK}`")[..]),
    ] {
        fs::write(&file, v.to_string()).unwrap();
        let before = tree.snapshot();
        let err = fails(&mut tree.cmd(&["apply", arg]));
        assert!(
            err.contains(&format!("error: plan `{arg}` does not match what its settings give on this host: {named} differ (the plan was edited, or names files gpu-setup does not manage)\n")),
            "{err}"
        );
        assert_same(&tree.snapshot(), &before);
    }
    // Settings edited to name another file are held to the managed-path rule.
    let mut settings = plan.clone();
    settings["settings"]["hook_file"] = "/etc/sudoers.d/x".into();
    fs::write(&file, settings.to_string()).unwrap();
    let before = tree.snapshot();
    let err = fails(&mut tree.cmd(&["apply", arg]));
    assert!(
        err.contains("caused by: invalid hook file: `/etc/sudoers.d/x` does not end in `.json`"),
        "{err}"
    );
    assert_same(&tree.snapshot(), &before);
    assert!(!tree.real("/etc/sudoers.d/x").exists());
}

#[test]
fn a_saved_plan_others_could_change_is_refused() {
    let tree = Tree::stock();
    let (file, _) = saved_plan(&tree);
    let arg = file.to_str().unwrap();
    fs::set_permissions(&file, fs::Permissions::from_mode(0o666)).unwrap();
    let before = tree.snapshot();
    let err = fails(&mut tree.cmd(&["apply", arg]));
    assert!(
        err.contains(&format!("error: cannot use plan `{arg}`\n  caused by: refusing `{arg}`: it is writable by group or others (mode 0666), so another user could change what root does\n")),
        "{err}"
    );
    assert!(err.contains("hint: make one with `gpu-setup plan --out FILE` in a directory only you (or root) can write"), "{err}");
    assert_same(&tree.snapshot(), &before);

    // In a directory others can write (a shared /tmp).
    let shared = tree.real("/shared");
    fs::create_dir(&shared).unwrap();
    fs::set_permissions(&file, fs::Permissions::from_mode(0o600)).unwrap();
    fs::rename(&file, shared.join("plan.json")).unwrap();
    fs::set_permissions(&shared, fs::Permissions::from_mode(0o1777)).unwrap();
    let moved = shared.join("plan.json");
    let before = tree.snapshot();
    let err = fails(&mut tree.cmd(&["apply", moved.to_str().unwrap()]));
    assert!(
        err.contains("its directory is writable by group or others (mode 1777)"),
        "{err}"
    );
    assert_same(&tree.snapshot(), &before);

    if is_root() {
        // Owned by another user.
        fs::set_permissions(&shared, fs::Permissions::from_mode(0o755)).unwrap();
        chown(&moved, Some(1000), Some(1000)).unwrap();
        let before = tree.snapshot();
        let err = fails(&mut tree.cmd(&["apply", moved.to_str().unwrap()]));
        assert!(
            err.contains("it is owned by user 1000, not root or you"),
            "{err}"
        );
        assert_same(&tree.snapshot(), &before);
    }
}

#[test]
fn plan_out_writes_a_new_private_file_never_through_a_link() {
    let tree = Tree::stock();
    let dir = tree.real("/plans");
    fs::create_dir(&dir).unwrap();
    // A link to a root-only file, planted where the plan will be saved.
    tree.write("/etc/shadow", "root:secret\n");
    symlink(tree.real("/etc/shadow"), dir.join("plan.json")).unwrap();
    let bin = crate::util::bin();
    let out = StdCommand::new("sh")
        .args([
            "-c",
            "umask 000; exec \"$0\" --root \"$1\" plan --out \"$2\"",
            bin.to_str().unwrap(),
        ])
        .arg(tree.root())
        .arg(dir.join("plan.json"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        fs::read_to_string(tree.real("/etc/shadow")).unwrap(),
        "root:secret\n"
    );
    let saved = dir.join("plan.json");
    assert!(fs::symlink_metadata(&saved).unwrap().is_file());
    // 0600 even under umask 000: the plan holds the managed files' text.
    assert_eq!(mode_of(&saved), 0o600);
    if is_root() {
        // A file another user made there first is replaced, not reused.
        fs::remove_file(&saved).unwrap();
        fs::write(&saved, "{}").unwrap();
        chown(&saved, Some(1000), Some(1000)).unwrap();
        fs::set_permissions(&saved, fs::Permissions::from_mode(0o644)).unwrap();
        let ino = fs::metadata(&saved).unwrap().ino();
        ok_stdout(&mut tree.cmd(&["plan", "--out", saved.to_str().unwrap()]));
        let m = fs::metadata(&saved).unwrap();
        assert_ne!(m.ino(), ino);
        assert_eq!((m.uid(), m.mode() & 0o7777), (0, 0o600));
    }
    // A directory others can write is refused before anything is saved.
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o1777)).unwrap();
    let err = fails(&mut tree.cmd(&["plan", "--out", dir.join("other.json").to_str().unwrap()]));
    assert!(
        err.contains("its directory is writable by group or others (mode 1777)"),
        "{err}"
    );
    assert!(!dir.join("other.json").exists());
}

// 4. Check-then-write race.

#[test]
fn a_directory_swapped_during_apply_cannot_redirect_its_writes() {
    let tree = Tree::stock();
    let outside = tempfile::tempdir().unwrap();
    fs::write(outside.path().join("config.toml"), "precious\n").unwrap();
    let mut child = StdCommand::new(crate::util::bin())
        .arg("--root")
        .arg(tree.root())
        .arg("apply")
        .env("GPU_SETUP_TEST_STEP_DELAY_MS", "40")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // While the transaction runs (its journal is being written), the
    // directories holding the targets are swapped for links out of the
    // root.
    std::thread::sleep(Duration::from_millis(250));
    for dir in [
        "/etc/nvidia-container-runtime",
        "/usr/share/containers",
        "/etc/containers",
    ] {
        let real = tree.real(dir);
        if real.exists() {
            fs::rename(&real, real.with_extension("moved")).unwrap();
        }
        symlink(outside.path(), &real).unwrap();
    }
    child.wait().unwrap();
    let names: Vec<String> = fs::read_dir(outside.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(names, ["config.toml"], "nothing written outside the root");
    assert_eq!(
        fs::read_to_string(outside.path().join("config.toml")).unwrap(),
        "precious\n"
    );
}

// 5. Undo stops at its first error.

/// Clears `chattr +a` on drop, so a failing test still cleans up.
struct AppendOnly(std::path::PathBuf);

impl AppendOnly {
    fn set(dir: std::path::PathBuf) -> Option<Self> {
        let ok = StdCommand::new("chattr")
            .arg("+a")
            .arg(&dir)
            .status()
            .is_ok_and(|s| s.success());
        ok.then_some(AppendOnly(dir))
    }
    fn clear(&self) {
        let _ = StdCommand::new("chattr").arg("-a").arg(&self.0).status();
    }
}

impl Drop for AppendOnly {
    fn drop(&mut self) {
        self.clear();
    }
}

#[test]
fn an_append_only_hooks_dir_fails_cleanly_and_every_other_file_is_undone() {
    if !need_root("chattr +a") {
        return;
    }
    let tree = Tree::stock();
    fs::create_dir_all(tree.real("/usr/share/containers/oci/hooks.d")).unwrap();
    let start = tree.targets();
    let Some(guard) = AppendOnly::set(tree.real("/usr/share/containers/oci/hooks.d")) else {
        assert!(
            std::env::var_os("GPU_SETUP_REQUIRE_ROOT_TESTS").is_none(),
            "CI's filesystem must support chattr +a"
        );
        eprintln!("skipped: this filesystem has no append-only directories");
        return;
    };
    let err = fails(&mut tree.cmd(&["apply"]));
    assert!(
        err.contains("error: transaction 1 failed, and undoing it failed too: cannot remove temp file `/usr/share/containers/oci/hooks.d/.oci-nvidia-hook.json.gpu-setup-1~`: Operation not permitted (os error 1)\n  caused by: cannot rename `/usr/share/containers/oci/hooks.d/oci-nvidia-hook.json`\n  caused by: Operation not permitted (os error 1)\n"),
        "{err}"
    );
    // The hint names the real cause, not "run as root".
    assert!(
        err.contains("hint: root was refused: `/usr/share/containers/oci/hooks.d/.oci-nvidia-hook.json.gpu-setup-1~` or its directory may be immutable or append-only (see `lsattr -d`; `chattr -i -a` clears it), or a security module (SELinux, AppArmor) denies it; then run `gpu-setup plan`: it finishes the recovery first\n"),
        "{err}"
    );
    // Every other file is back as it was; only the stuck temp file is left.
    let now = tree.targets();
    let temp = Path::new("usr/share/containers/oci/hooks.d/.oci-nvidia-hook.json.gpu-setup-1~");
    let differ: Vec<_> = now
        .keys()
        .chain(start.keys())
        .filter(|p| now.get(*p) != start.get(*p))
        .collect();
    assert_eq!(differ, [temp], "only the temp file differs");
    let history = ok_stdout(&mut tree.cmd(&["history"]));
    assert!(
        history.lines().nth(1).unwrap().ends_with(" pending"),
        "{history}"
    );
    // Still append-only: the next run says why it cannot finish.
    let err = fails(&mut tree.cmd(&["plan"]));
    assert!(
        err.contains(
            "error: cannot finish undoing interrupted transaction 1: cannot remove temp file"
        ),
        "{err}"
    );
    assert!(err.contains("hint: root was refused"), "{err}");
    // Cleared: the next run finishes the recovery.
    guard.clear();
    let out = tree.cmd(&["plan"]).output().unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("recovered: transaction 1"));
    assert_same(&tree.targets(), &start);
}

// 6. `--sudo` trusts a path an attacker can swap.

#[test]
fn sudo_refuses_a_binary_below_a_directory_another_user_owns() {
    if !need_root("a directory owned by another user, and the nobody user") {
        return;
    }
    let tree = Tree::stock();
    let top = root_only_tempdir();
    let theirs = top.path().join("shared");
    fs::create_dir_all(theirs.join("bin")).unwrap();
    fs::set_permissions(&theirs, fs::Permissions::from_mode(0o755)).unwrap();
    fs::set_permissions(theirs.join("bin"), fs::Permissions::from_mode(0o755)).unwrap();
    chown(&theirs, Some(1000), Some(1000)).unwrap();
    let bin = theirs.join("bin/gpu-setup");
    fs::copy(crate::util::bin(), &bin).unwrap();
    fs::set_permissions(&bin, fs::Permissions::from_mode(0o755)).unwrap();
    let before = tree.snapshot();
    let out = StdCommand::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(&bin)
        .args(["--color", "never", "--root"])
        .arg(tree.root())
        .args(["apply", "--sudo"])
        .env("PATH", "/usr/bin:/bin")
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!(
            "error: refusing --sudo: the directory `{}` is owned by user 1000, not root, so running it as root would give root to whoever can change it\n",
            theirs.display()
        )),
        "{err}"
    );
    assert_same(&tree.snapshot(), &before);
}

// 7. `--follow-symlinks` trusts any target.

#[test]
fn follow_symlinks_refuses_a_link_to_a_file_another_user_controls() {
    if !need_root("a file owned by another user") {
        return;
    }
    let tree = Tree::stock();
    // In a world-writable directory...
    fs::create_dir_all(tree.real("/tmp")).unwrap();
    fs::set_permissions(tree.real("/tmp"), fs::Permissions::from_mode(0o1777)).unwrap();
    tree.write("/tmp/config.toml", fixture(UBUNTU_NV));
    chown(tree.real("/tmp/config.toml"), Some(1000), Some(1000)).unwrap();
    fs::remove_file(tree.real(NV_CONFIG)).unwrap();
    symlink("/tmp/config.toml", tree.real(NV_CONFIG)).unwrap();
    let before = tree.snapshot();
    let err = fails(&mut tree.cmd(&["apply", "--follow-symlinks"]));
    assert!(
        err.contains("error: `/etc/nvidia-container-runtime/config.toml` is a symbolic link to `/tmp/config.toml`, which leads through `/tmp`, a directory writable by group or others (mode 1777)\n"),
        "{err}"
    );
    assert_same(&tree.snapshot(), &before);
    // ...or in a root-only one: the file itself is another user's.
    fs::create_dir_all(tree.real("/srv")).unwrap();
    tree.write("/srv/config.toml", fixture(UBUNTU_NV));
    chown(tree.real("/srv/config.toml"), Some(1000), Some(1000)).unwrap();
    fs::remove_file(tree.real(NV_CONFIG)).unwrap();
    symlink("/srv/config.toml", tree.real(NV_CONFIG)).unwrap();
    let before = tree.snapshot();
    let err = fails(&mut tree.cmd(&["apply", "--follow-symlinks"]));
    assert!(
        err.contains("error: `/etc/nvidia-container-runtime/config.toml` is a symbolic link to `/srv/config.toml`, which is owned by user 1000, not root\n"),
        "{err}"
    );
    assert_same(&tree.snapshot(), &before);
}

// 8. Limits.

#[test]
fn transaction_ids_that_would_wrap_are_refused() {
    let tree = Tree::stock();
    let id = u64::MAX;
    let dir = tree.real(&format!("{STATE_DIR}/transactions/{id}"));
    fs::create_dir_all(&dir).unwrap();
    let manifest = json!({
        "format": 1, "id": id, "kind": "apply", "time": "2026-01-01T00:00:00Z",
        "user": "root", "uid": 0, "command": [], "status": "applied", "files": [],
    });
    fs::write(dir.join("manifest.json"), manifest.to_string()).unwrap();
    fs::set_permissions(tree.real(STATE_DIR), fs::Permissions::from_mode(0o700)).unwrap();
    let before = tree.targets();
    let err = fails(&mut tree.cmd(&["apply"]));
    assert!(
        err.contains("error: no transaction ID is left after 18446744073709551615 in `/var/lib/gpu-setup`\nhint: a transaction directory with an absurd number was put in `/var/lib/gpu-setup/transactions`: look at it, then move it out\n"),
        "{err}"
    );
    assert_same(&tree.targets(), &before);
}

#[test]
fn files_larger_than_gpu_setup_reads_are_refused() {
    let tree = Tree::stock();
    // 8.5 MB of valid TOML: parsing it would take about 500 MB.
    let mut big = fixture(UBUNTU_NV);
    while big.len() < 8_500_000 {
        big.push_str("# padding padding padding padding padding padding padding\n");
    }
    for path in [NV_CONFIG, "/etc/containers/containers.conf.d/50-big.conf"] {
        let t = Tree::stock();
        t.write(path, &big);
        let before = t.snapshot();
        let err = fails(&mut t.cmd(&["plan"]));
        assert!(
            err.contains(&format!(
                "error: `{path}` is {} bytes, more than the 1048576 bytes gpu-setup reads\n",
                big.len()
            )),
            "{err}"
        );
        assert!(
            err.contains("hint: no configuration file gpu-setup reads is this large"),
            "{err}"
        );
        assert_same(&t.snapshot(), &before);
    }
    drop(tree);
}

#[test]
fn endless_and_special_files_are_refused_without_hanging() {
    // A FIFO where a drop-in should be: opened without blocking, refused.
    let tree = Tree::stock();
    fs::create_dir_all(tree.real("/etc/containers/containers.conf.d")).unwrap();
    nix::unistd::mkfifo(
        &tree.real("/etc/containers/containers.conf.d/50-fifo.conf"),
        nix::sys::stat::Mode::from_bits_truncate(0o644),
    )
    .unwrap();
    let err = fails(tree.cmd(&["plan"]).timeout(Duration::from_secs(30)));
    assert!(
        err.contains(
            "error: `/etc/containers/containers.conf.d/50-fifo.conf` is not a regular file\n"
        ),
        "{err}"
    );
    if !need_root("procfs bind-mounted into a tree in a private mount namespace") {
        return;
    }
    // A link to /proc/kmsg (which never ends) with procfs in the tree.
    let tree = Tree::stock();
    fs::create_dir_all(tree.real("/proc")).unwrap();
    fs::create_dir_all(tree.real("/etc/containers/containers.conf.d")).unwrap();
    symlink(
        "/proc/kmsg",
        tree.real("/etc/containers/containers.conf.d/50-kmsg.conf"),
    )
    .unwrap();
    let bin = crate::util::bin();
    let out = StdCommand::new("timeout")
        .args([
            "60",
            "unshare",
            "-m",
            "--propagation",
            "private",
            "sh",
            "-c",
        ])
        .arg("mount --bind /proc \"$T/proc\" && exec \"$BIN\" --root \"$T\" --color never plan")
        .env("T", tree.root())
        .env("BIN", bin)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("error: `/etc/containers/containers.conf.d/50-kmsg.conf` is on procfs, a kernel interface, not a configuration file\n"),
        "{err}"
    );
}
