//! The security rules of docs/security.md, each performed as an attack
//! against the real binary and shown to fail with a clear message and
//! nothing written: symbolic links under the root, swapped directories,
//! forged journals and image trees, saved plans, module mode, modes of
//! written files, the state dir, debug log paths, limits, and `--sudo` with
//! Debian's real sudo. Each test is named after its rule (`r4_...`), and
//! docs/security.md names the tests beside the rules.

use std::fs;
use std::os::unix::fs::{chown, lchown, symlink, MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::Command as StdCommand;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::util::*;

fn mode_of(p: &Path) -> u32 {
    fs::symlink_metadata(p).unwrap().mode() & 0o7777
}

/// `plan` and `apply` both refuse with `message` (and `hint`), and no file
/// changes.
#[track_caller]
fn refused(tree: &Tree, extra: &[&str], message: &str, hint: &str) {
    let before = tree.snapshot();
    for cmd in ["plan", "apply"] {
        let mut args = vec![cmd];
        args.extend(extra);
        let err = fails(&mut tree.cmd(&args));
        assert!(err.contains(&format!("error: {message}\n")), "{cmd}: {err}");
        assert!(err.contains(&format!("hint: {hint}")), "{cmd}: {err}");
        assert_same(&tree.snapshot(), &before);
    }
}

#[test]
fn r4_a_symlink_at_the_target_is_refused_by_default() {
    let tree = Tree::stock();
    tree.write(
        "/etc/nvidia-container-runtime/real.toml",
        fixture(UBUNTU_NV),
    );
    fs::remove_file(tree.real(NV_CONFIG)).unwrap();
    symlink("real.toml", tree.real(NV_CONFIG)).unwrap();
    refused(
        &tree,
        &[],
        "`/etc/nvidia-container-runtime/config.toml` is a symbolic link (to `real.toml`): gpu-setup does not write through links by default",
        "replace the link with the file it points to, or pass --follow-symlinks",
    );
}

#[test]
fn r4_follow_symlinks_writes_through_a_link_inside_the_root() {
    let tree = Tree::stock();
    tree.write(
        "/etc/nvidia-container-runtime/real.toml",
        fixture(UBUNTU_NV),
    );
    fs::remove_file(tree.real(NV_CONFIG)).unwrap();
    symlink(
        "/etc/nvidia-container-runtime/real.toml",
        tree.real(NV_CONFIG),
    )
    .unwrap();
    let out = ok_stdout(&mut tree.cmd(&["apply", "--follow-symlinks"]));
    assert!(
        out.contains("modify /etc/nvidia-container-runtime/real.toml"),
        "{out}"
    );
    // The link is kept; its target holds the edit.
    assert!(fs::symlink_metadata(tree.real(NV_CONFIG))
        .unwrap()
        .file_type()
        .is_symlink());
    let edited = fs::read_to_string(tree.real("/etc/nvidia-container-runtime/real.toml")).unwrap();
    assert!(edited.contains("\nno-cgroups = true\n"), "{edited}");
    let again = ok_stdout(&mut tree.cmd(&["plan", "--follow-symlinks", "--detailed-exitcode"]));
    assert!(again.contains("nothing to change"), "{again}");
}

#[test]
fn r4_follow_symlinks_refuses_a_link_out_of_the_root() {
    let tree = Tree::stock();
    fs::remove_file(tree.real(NV_CONFIG)).unwrap();
    symlink("../../../../../../etc/passwd", tree.real(NV_CONFIG)).unwrap();
    refused(
        &tree,
        &["--follow-symlinks"],
        "`/etc/nvidia-container-runtime/config.toml` is a symbolic link to `../../../../../../etc/passwd`, which leads outside the root",
        "gpu-setup writes only inside the root",
    );
}

#[test]
fn r4_an_absolute_link_never_reaches_the_machines_own_files() {
    // `/etc/containers -> /etc` means the tree's /etc, not the machine's.
    let tree = Tree::stock();
    fs::create_dir_all(tree.real("/etc")).unwrap();
    symlink("/srv/containers", tree.real("/etc/containers")).unwrap();
    fs::create_dir_all(tree.real("/srv/containers")).unwrap();
    ok_stdout(&mut tree.cmd(&["apply"]));
    assert!(tree
        .real("/srv/containers/containers.conf.d/99-nvidia.conf")
        .is_file());
    assert!(!Path::new("/srv/containers/containers.conf.d/99-nvidia.conf").exists());
}

#[test]
fn r3_a_parent_directory_link_out_of_the_root_is_refused() {
    let tree = Tree::stock();
    fs::create_dir_all(tree.real("/etc")).unwrap();
    symlink("../../../../../../../tmp", tree.real("/etc/containers")).unwrap();
    refused(
        &tree,
        &[],
        "`/etc/containers` is a symbolic link to `../../../../../../../tmp`, which leads outside the root",
        "gpu-setup writes only inside the root",
    );
}

#[test]
fn r3_a_parent_directory_link_to_a_world_writable_directory_is_refused() {
    let tree = Tree::stock();
    fs::create_dir_all(tree.real("/tmp")).unwrap();
    fs::set_permissions(tree.real("/tmp"), fs::Permissions::from_mode(0o1777)).unwrap();
    symlink("/tmp", tree.real("/etc/containers")).unwrap();
    refused(
        &tree,
        &[],
        "`/etc/containers` is a symbolic link to `/tmp`, a directory writable by group or others (mode 1777)",
        "make the directory writable by its owner only",
    );
}

#[test]
fn r3_a_parent_directory_link_owned_by_another_user_is_refused() {
    if !need_root("a symbolic link owned by another user") {
        return;
    }
    let tree = Tree::stock();
    fs::create_dir_all(tree.real("/srv/c")).unwrap();
    symlink("/srv/c", tree.real("/etc/containers")).unwrap();
    std::os::unix::fs::lchown(tree.real("/etc/containers"), Some(1000), Some(1000)).unwrap();
    refused(
        &tree,
        &[],
        "`/etc/containers` is a symbolic link (to `/srv/c`) owned by user 1000, not root: another user could point it anywhere",
        "replace the link with a real directory or file owned by root",
    );
}

#[test]
fn r2_a_target_swapped_for_a_symlink_after_plan_is_refused() {
    let tree = Tree::stock();
    let saved = tree.root().join("plan.json");
    ok_stdout(&mut tree.cmd(&["plan", "--out", saved.to_str().unwrap()]));
    // The attacker's swap: config.toml becomes a link to a file it wants
    // root to rewrite.
    tree.write("/etc/shadow", "root:secret\n");
    fs::remove_file(tree.real(NV_CONFIG)).unwrap();
    symlink("/etc/shadow", tree.real(NV_CONFIG)).unwrap();
    let before = tree.snapshot();
    let err = fails(&mut tree.cmd(&["apply", saved.to_str().unwrap()]));
    assert!(
        err.contains("error: `/etc/nvidia-container-runtime/config.toml` is a symbolic link (to `/etc/shadow`)"),
        "{err}"
    );
    assert_same(&tree.snapshot(), &before);
    // Planning afresh refuses too.
    let err = fails(&mut tree.cmd(&["apply"]));
    assert!(
        err.contains("is a symbolic link (to `/etc/shadow`)"),
        "{err}"
    );
    assert_same(&tree.snapshot(), &before);
}

#[test]
fn r2_a_target_swapped_for_a_symlink_during_apply_never_writes_through_it() {
    let tree = Tree::stock();
    tree.write("/etc/shadow", "root:secret\n");
    let mut child = StdCommand::new(crate::util::bin())
        .arg("--root")
        .arg(tree.root())
        .arg("apply")
        .env("GPU_SETUP_TEST_STEP_DELAY_MS", "30")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Swap while the transaction runs (wherever it is: the result must be
    // safe at every moment).
    std::thread::sleep(Duration::from_millis(150));
    let _ = fs::remove_file(tree.real(NV_CONFIG));
    let _ = symlink("/etc/shadow", tree.real(NV_CONFIG));
    child.wait().unwrap();
    assert_eq!(
        fs::read_to_string(tree.real("/etc/shadow")).unwrap(),
        "root:secret\n"
    );
    assert!(tree.temp_files().is_empty(), "{:?}", tree.temp_files());
}

#[test]
fn r7_written_files_are_never_group_or_world_writable() {
    let tree = Tree::stock();
    fs::set_permissions(tree.real(NV_CONFIG), fs::Permissions::from_mode(0o666)).unwrap();
    // umask 0: new files would be 0666 if gpu-setup trusted it.
    let bin = crate::util::bin();
    let out = StdCommand::new("sh")
        .args([
            "-c",
            "umask 0; exec \"$0\" --root \"$1\" apply",
            bin.to_str().unwrap(),
        ])
        .arg(tree.root())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(mode_of(&tree.real(NV_CONFIG)), 0o644);
    assert_eq!(mode_of(&tree.real(DROPIN)), 0o644);
    assert_eq!(mode_of(&tree.real(HOOK)), 0o644);
    assert_eq!(
        mode_of(&tree.real("/etc/containers/containers.conf.d")),
        0o755
    );
    // The journal is root-only.
    assert_eq!(mode_of(&tree.real(STATE_DIR)), 0o700);
    for entry in fs::read_dir(tree.real(&format!("{STATE_DIR}/transactions/1"))).unwrap() {
        assert_eq!(mode_of(&entry.unwrap().path()), 0o600);
    }
    // Rollback restores the exact mode it found.
    ok_stdout(&mut tree.cmd(&["rollback"]));
    assert_eq!(mode_of(&tree.real(NV_CONFIG)), 0o666);
}

#[test]
fn r5_a_state_dir_open_to_others_is_refused() {
    let tree = Tree::stock();
    fs::create_dir_all(tree.real(STATE_DIR)).unwrap();
    fs::set_permissions(tree.real(STATE_DIR), fs::Permissions::from_mode(0o755)).unwrap();
    let before = tree.snapshot();
    let err = fails(&mut tree.cmd(&["apply"]));
    assert!(
        err.contains("error: cannot use state directory `/var/lib/gpu-setup`\n  caused by: it is open to group or others (mode 0755), and it holds copies of the managed files; run `chmod 700` on it\n"),
        "{err}"
    );
    assert_same(&tree.snapshot(), &before);
}

#[test]
fn r11_debug_logs_in_world_writable_or_user_owned_directories_are_refused() {
    let tree = Tree::stock();
    fs::create_dir_all(tree.real("/tmp")).unwrap();
    fs::set_permissions(tree.real("/tmp"), fs::Permissions::from_mode(0o1777)).unwrap();
    refused(
        &tree,
        &["--cli-debug-log", "/tmp/nvidia.log"],
        "debug log `/tmp/nvidia.log` is unsafe: `/tmp` is writable by group or others (mode 1777)",
        "the NVIDIA runtime opens its log as root without O_NOFOLLOW",
    );
    if is_root() {
        fs::create_dir_all(tree.real("/home/user")).unwrap();
        std::os::unix::fs::chown(tree.real("/home/user"), Some(1000), Some(1000)).unwrap();
        refused(
            &tree,
            &["--runtime-debug-log", "/home/user/logs/runtime.log"],
            "debug log `/home/user/logs/runtime.log` is unsafe: `/home/user` is owned by user 1000, not root",
            "the NVIDIA runtime opens its log as root without O_NOFOLLOW",
        );
    }
    // --allow-unsafe-log-path turns the refusal into a warning.
    let out = ok_stdout(&mut tree.cmd(&[
        "plan",
        "--cli-debug-log",
        "/tmp/nvidia.log",
        "--allow-unsafe-log-path",
    ]));
    assert!(out.contains("set [nvidia-container-cli] debug"), "{out}");
}

#[test]
fn r11_a_root_only_log_path_warns_for_rootless_use() {
    if !need_root("directories owned by root") {
        return;
    }
    let tree = Tree::stock();
    fs::create_dir_all(tree.real("/var/log")).unwrap();
    let out = tree
        .cmd(&[
            "plan",
            "--cli-debug-log",
            "/var/log/nvidia-container-toolkit.log",
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("warning[log-not-writable-rootless]: debug log `/var/log/nvidia-container-toolkit.log` is in a root-only directory: with `no-cgroups = true` (rootless Podman) the NVIDIA hook runs as the user and cannot write it"),
        "{err}"
    );
    let out = tree
        .cmd(&[
            "plan",
            "--no-cgroups",
            "false",
            "--cli-debug-log",
            "/var/log/nvidia-container-toolkit.log",
        ])
        .output()
        .unwrap();
    assert!(!String::from_utf8_lossy(&out.stderr).contains("log-not-writable-rootless"));
}

#[test]
fn r9_sudo_as_root_does_nothing_more() {
    if !need_root("--sudo is a no-op only for root") {
        return;
    }
    let tree = Tree::stock();
    let out = ok_stdout(
        tree.cmd(&["apply", "--sudo"]).env("PATH", "/nonexistent"), // sudo is not even looked for
    );
    assert!(out.contains("Applied transaction 1"), "{out}");
}

/// A copy of the binary in a fresh directory (0755, root's when run as
/// root) with `mode`, for `--sudo` tests run as another user.
fn installed_binary(mode: u32) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = root_only_tempdir();
    let bin = dir.path().join("gpu-setup");
    fs::copy(crate::util::bin(), &bin).unwrap();
    fs::set_permissions(&bin, fs::Permissions::from_mode(mode)).unwrap();
    (dir, bin)
}

/// `BIN --root T ARGS` as `nobody`, with `PATH`.
fn nobody(bin: &Path, tree: &Tree, path: &str, args: &[&str]) -> (Option<i32>, String) {
    let out = StdCommand::new("/usr/bin/setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(bin)
        .args(["--color", "never", "--root"])
        .arg(tree.root())
        .args(args)
        .env("PATH", path)
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn r9_sudo_refuses_a_binary_others_can_replace() {
    if !need_root("switching to the nobody user with setpriv") {
        return;
    }
    let tree = Tree::stock();
    let before = tree.snapshot();
    // A writable binary, then a writable directory holding it.
    for (bin_mode, dir_mode) in [(0o777, 0o755), (0o755, 0o777)] {
        let (dir, bin) = installed_binary(bin_mode);
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(dir_mode)).unwrap();
        let (code, err) = nobody(&bin, &tree, "/usr/bin:/bin", &["apply", "--sudo"]);
        assert_eq!(code, Some(1), "{err}");
        let (what, path) = if bin_mode == 0o777 {
            ("binary", bin.clone())
        } else {
            ("directory", dir.path().to_path_buf())
        };
        assert!(
            err.contains(&format!(
                "error: refusing --sudo: the {what} `{}` is writable by group or others (mode 0777), so running it as root would give root to whoever can change it",
                path.display()
            )),
            "{err}"
        );
        assert!(
            err.contains("hint: install gpu-setup owned by root"),
            "{err}"
        );
        assert_same(&tree.snapshot(), &before);
    }
}

#[test]
fn r9_sudo_missing_is_a_clear_error() {
    if !need_root("switching to the nobody user with setpriv") {
        return;
    }
    let tree = Tree::stock();
    let (_dir, bin) = installed_binary(0o755);
    let before = tree.snapshot();
    let (code, err) = nobody(&bin, &tree, "/nonexistent", &["rollback", "--sudo"]);
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains("error: --sudo needs `sudo`, which is not installed (or not on PATH)\nhint: install sudo (apt-get install sudo), or run gpu-setup as root\n"),
        "{err}"
    );
    assert_same(&tree.snapshot(), &before);
}

/// A lab for real sudo: in a private mount namespace, copies of
/// /etc/passwd, /etc/group and /etc/shadow with a test user added, and a
/// sudoers.d holding `rule` (if any), bind-mounted over the real ones; the
/// machine's own files are never written.
fn with_real_sudo(
    tree: &Tree,
    rule: Option<&str>,
    args: &[&str],
) -> (Option<i32>, String, String, Duration) {
    let lab = root_only_tempdir();
    let l = |n: &str| lab.path().join(n);
    let user = "gpusetuptest:x:64123:64123::/nonexistent:/bin/sh\n";
    let add = |src: &str, name: &str, line: &str| {
        let mut text = fs::read_to_string(src).unwrap();
        text.push_str(line);
        fs::write(l(name), text).unwrap();
    };
    add("/etc/passwd", "passwd", user);
    add("/etc/group", "group", "gpusetuptest:x:64123:\n");
    add(
        "/etc/shadow",
        "shadow",
        "gpusetuptest:*:19000:0:99999:7:::\n",
    );
    fs::create_dir(l("sudoers.d")).unwrap();
    fs::set_permissions(l("sudoers.d"), fs::Permissions::from_mode(0o755)).unwrap();
    fs::create_dir(l("run")).unwrap();
    fs::create_dir(l("bin")).unwrap();
    fs::set_permissions(l("bin"), fs::Permissions::from_mode(0o755)).unwrap();
    let bin = l("bin/gpu-setup");
    fs::copy(crate::util::bin(), &bin).unwrap();
    if let Some(rule) = rule {
        let rule = rule.replace("BIN", bin.to_str().unwrap());
        fs::write(l("sudoers.d/gpusetuptest"), format!("{rule}\n")).unwrap();
        fs::set_permissions(
            l("sudoers.d/gpusetuptest"),
            fs::Permissions::from_mode(0o440),
        )
        .unwrap();
    }
    let script = "set -e
for f in passwd group shadow sudoers.d; do mount --bind \"$L/$f\" \"/etc/$f\"; done
mount --bind \"$L/run\" /run
exec setpriv --reuid=64123 --regid=64123 --clear-groups \"$@\"
";
    let start = Instant::now();
    let out = StdCommand::new("unshare")
        .args(["-m", "--propagation", "private", "sh", "-c", script, "sh"])
        .arg(&bin)
        .args(["--color", "never", "--root"])
        .arg(tree.root())
        .args(args)
        .env("L", lab.path())
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        start.elapsed(),
    )
}

fn real_sudo_available() -> bool {
    if !need_root("a test user and a sudoers rule in a private mount namespace") {
        return false;
    }
    let present = Path::new("/usr/bin/sudo").exists();
    assert!(
        present || std::env::var_os("GPU_SETUP_REQUIRE_ROOT_TESTS").is_none(),
        "CI must install sudo (apt-get install sudo)"
    );
    if !present {
        eprintln!("skipped: needs Debian's sudo (apt-get install sudo)");
    }
    present
}

#[test]
fn r9_apply_and_rollback_through_real_sudo() {
    if !real_sudo_available() {
        return;
    }
    let tree = Tree::stock();
    let rule = "gpusetuptest ALL=(root) NOPASSWD: BIN";
    let (code, out, err, _) =
        with_real_sudo(&tree, Some(rule), &["apply", "--sudo", "--format", "json"]);
    assert_eq!(code, Some(0), "{err}");
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(json["transaction"], 1, "{json}");
    assert!(tree.real(HOOK).is_file());
    // Files are root's, and the journal says who asked.
    assert_eq!(fs::metadata(tree.real(HOOK)).unwrap().uid(), 0);
    let manifest =
        fs::read_to_string(tree.real(&format!("{STATE_DIR}/transactions/1/manifest.json")))
            .unwrap();
    let manifest: serde_json::Value = serde_json::from_str(&manifest).unwrap();
    assert_eq!(manifest["user"], "root");
    assert_eq!(manifest["sudo_user"], "gpusetuptest");
    assert!(
        !manifest["command"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a == "--sudo"),
        "{manifest}"
    );

    let (code, _, err, _) = with_real_sudo(&tree, Some(rule), &["rollback", "--sudo"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(!tree.real(HOOK).exists());
}

#[test]
fn r9_without_a_sudo_rule_sudo_refuses_at_once_instead_of_prompting() {
    if !real_sudo_available() {
        return;
    }
    let tree = Tree::stock();
    let before = tree.snapshot();
    let (code, _, err, took) = with_real_sudo(&tree, None, &["apply", "--sudo"]);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("sudo: a password is required"), "{err}");
    // No prompt waited for input (stdin is not a terminal, so -n was
    // passed); a generous bound that only a hang would exceed.
    assert!(took < Duration::from_secs(30), "{took:?}");
    assert_same(&tree.snapshot(), &before);
}

#[test]
fn r9_a_plan_file_is_checked_again_after_sudo() {
    if !real_sudo_available() {
        return;
    }
    let tree = Tree::stock();
    let saved = tree.root().join("plan.json");
    ok_stdout(&mut tree.cmd(&["plan", "--out", saved.to_str().unwrap()]));
    // The file changes between the review and the elevated apply.
    tree.write(NV_CONFIG, "[nvidia-container-cli]\nno-cgroups = false\n");
    let before = tree.snapshot();
    let rule = "gpusetuptest ALL=(root) NOPASSWD: BIN";
    let (code, _, err, _) = with_real_sudo(
        &tree,
        Some(rule),
        &["apply", "--sudo", saved.to_str().unwrap()],
    );
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains(
            "error: `/etc/nvidia-container-runtime/config.toml` changed since it was planned: its content differs\nhint: run `gpu-setup plan --out FILE` again"
        ),
        "{err}"
    );
    assert_same(&tree.snapshot(), &before);
}

#[test]
fn r6_a_saved_plan_whose_path_now_leads_elsewhere_is_stale() {
    let tree = Tree::stock();
    let saved = tree.root().join("plan.json");
    ok_stdout(&mut tree.cmd(&["plan", "--out", saved.to_str().unwrap()]));
    // Same content, but the directory is now a link to another one.
    fs::rename(
        tree.real("/etc/nvidia-container-runtime"),
        tree.real("/etc/nvidia-elsewhere"),
    )
    .unwrap();
    symlink(
        "nvidia-elsewhere",
        tree.real("/etc/nvidia-container-runtime"),
    )
    .unwrap();
    let before = tree.snapshot();
    let err = fails(&mut tree.cmd(&["apply", saved.to_str().unwrap()]));
    assert!(
        err.contains("error: `/etc/nvidia-container-runtime/config.toml` changed since it was planned: it now leads to `/etc/nvidia-elsewhere/config.toml` through a symbolic link\n"),
        "{err}"
    );
    assert_same(&tree.snapshot(), &before);
}

#[test]
fn r5_a_state_dir_that_is_a_symlink_is_refused() {
    let tree = Tree::stock();
    fs::create_dir_all(tree.real("/srv/state")).unwrap();
    fs::set_permissions(tree.real("/srv/state"), fs::Permissions::from_mode(0o700)).unwrap();
    fs::create_dir_all(tree.real("/var/lib")).unwrap();
    symlink("/srv/state", tree.real(STATE_DIR)).unwrap();
    let before = tree.snapshot();
    let err = fails(&mut tree.cmd(&["apply"]));
    assert!(
        err.contains("error: cannot use state directory `/var/lib/gpu-setup`\n  caused by: it is not a directory (a symbolic link?)\n"),
        "{err}"
    );
    assert_same(&tree.snapshot(), &before);
}

/// A directory owned by user 1000 (who can rename what is in it), holding
/// a root-owned image tree: the admin's `/srv/build/mal/img`.
fn image_below_a_user_dir() -> (Tree, tempfile::TempDir, std::path::PathBuf) {
    let tree = Tree::stock();
    let outer = tempfile::Builder::new()
        .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
        .unwrap();
    fs::set_permissions(outer.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let mal = outer.path().join("mal");
    fs::create_dir(&mal).unwrap();
    nix::unistd::chown(&mal, Some(1000.into()), Some(1000.into())).unwrap();
    let img = mal.join("img");
    symlink(tree.root(), &img).unwrap();
    (tree, outer, img)
}

#[test]
fn r14_a_root_below_a_directory_another_user_owns_is_refused() {
    if !need_root("chown to another user") {
        return;
    }
    // The attack: the user owning `mal/` runs `mv img img.orig && ln -s /
    // img`; root's `--root .../mal/img apply` would then write the host's
    // /etc. Whatever `img` is now, a root reached through a directory
    // another user owns is refused, and nothing is written.
    let (tree, _outer, img) = image_below_a_user_dir();
    let before = tree.snapshot();
    for cmd in ["plan", "apply"] {
        let err = fails(
            gpu_setup()
                .args(["--color", "never", "--root"])
                .arg(&img)
                .arg(cmd),
        );
        let mal = fs::canonicalize(img.parent().unwrap()).unwrap();
        assert_eq!(
            err,
            format!(
                "error: cannot use root `{}`\n  caused by: `{}` is owned by user 1000, not root or you\nhint: every directory from `/` down to --root must belong to root (or you) and be writable by no one else: another user could swap the tree for a link to the real `/`\n",
                img.display(),
                mal.display()
            ),
            "{cmd}"
        );
    }
    assert_same(&tree.snapshot(), &before);
}

#[test]
fn r14_a_root_that_is_a_link_to_slash_is_the_real_root() {
    if !need_root("reads the machine's package database as the real root") {
        return;
    }
    // A trusted link to `/` (root's, in a root-owned directory) names the
    // machine itself: gpu-setup then treats it as the real root (the
    // environment counts, programs may be run), not as an image. Seen in
    // what plan says about the Podman version: from this machine's own
    // dpkg database (Debian's Podman here), where an image tree without
    // one would say `version-unknown`.
    let dir = root_only_tempdir();
    let link = dir.path().join("slash");
    symlink("/", &link).unwrap();
    let out = gpu_setup()
        .args(["--color", "never", "--log-level", "debug", "--root"])
        .arg(&link)
        .args(["plan", "--format", "json"])
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    let real = gpu_setup()
        .args([
            "--color",
            "never",
            "--log-level",
            "debug",
            "plan",
            "--format",
            "json",
        ])
        .output()
        .unwrap();
    let real_log = String::from_utf8_lossy(&real.stderr);
    let versions = |l: &str| {
        l.lines()
            .find(|l| l.contains("versions podman="))
            .map(str::to_owned)
    };
    assert!(versions(&real_log).is_some(), "{real_log}");
    assert_eq!(versions(&log), versions(&real_log), "{log}");
}

#[test]
fn r15_plan_out_apply_file_and_profile_check_every_directory_above_them() {
    if !need_root("chown to another user") {
        return;
    }
    // A user-owned ancestor could be swapped for a link: root's write of a
    // plan would land in a directory of the attacker's choosing (apt.conf.d
    // parses every file), or root would read any root-owned file as a plan
    // or a profile. The file's own directory is root's here; one above it
    // is not.
    let tree = Tree::stock();
    let (_, _outer, img) = image_below_a_user_dir();
    let user_dir = img.parent().unwrap().to_path_buf();
    let inner = user_dir.join("inner");
    fs::create_dir(&inner).unwrap();
    let plan = inner.join("plan.json");
    let profile = inner.join("gpu-setup.toml");
    fs::write(&profile, "no_cgroups = false\n").unwrap();
    fs::set_permissions(&profile, fs::Permissions::from_mode(0o600)).unwrap();
    let before = tree.snapshot();
    let shown = fs::canonicalize(&user_dir).unwrap();
    let expect = |what: &Path, err: &str| {
        assert!(
            err.contains(&format!(
                "refusing `{}`: `{}` on the way to it is owned by user 1000, not root or you, so another user could change what root does",
                what.display(),
                shown.display()
            )),
            "{err}"
        );
    };
    let err = fails(&mut tree.cmd(&["plan", "--out", plan.to_str().unwrap()]));
    expect(&plan, &err);
    assert!(!plan.exists());
    let err = fails(&mut tree.cmd(&["plan", "--profile", profile.to_str().unwrap()]));
    expect(&profile, &err);
    fs::write(&plan, "{}").unwrap();
    fs::set_permissions(&plan, fs::Permissions::from_mode(0o600)).unwrap();
    let err = fails(&mut tree.cmd(&["apply", plan.to_str().unwrap()]));
    expect(&plan, &err);
    assert_same(&tree.snapshot(), &before);
}

#[test]
fn r16_a_managed_file_another_user_owns_is_given_to_root() {
    if !need_root("chown to another user") {
        return;
    }
    // config.toml owned by user 1000: that user could add `path = ...`, a
    // program NVIDIA's hook runs as root. Already as desired, it still
    // gets a change: the same bytes, written as root's.
    let tree = Tree::stock();
    ok_stdout(&mut tree.cmd(&["apply"]));
    let cfg = tree.real(NV_CONFIG);
    let bytes = fs::read(&cfg).unwrap();
    nix::unistd::chown(&cfg, Some(1000.into()), Some(1000.into())).unwrap();
    let out = tree.cmd(&["plan", "--detailed-exitcode"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("warning[managed-file-owner]: `{NV_CONFIG}` is owned by user 1000, not root: that user can change what root runs through it\n")),
        "{err}"
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(&format!(
            "# give `{NV_CONFIG}` to root: it is owned by user 1000, who could change what root runs"
        )),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    ok_stdout(&mut tree.cmd(&["apply"]));
    let m = fs::metadata(&cfg).unwrap();
    assert_eq!((m.uid(), fs::read(&cfg).unwrap()), (0, bytes));
    let out = tree.cmd(&["plan", "--detailed-exitcode"]).output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Rollback restores the bytes, never the other user's ownership.
    ok_stdout(&mut tree.cmd(&["rollback"]));
    assert_eq!(fs::metadata(&cfg).unwrap().uid(), 0);
}

#[test]
fn r17_terminal_escapes_in_host_names_are_shown_not_obeyed() {
    // A dpkg list whose package name retitles the terminal and erases the
    // line above, owning the managed config.toml.
    let tree = Tree::stock();
    let evil = "evil\u{1b}]0;PWNED\u{7}\u{1b}[1A\u{1b}[2K";
    tree.write(
        &format!("/var/lib/dpkg/info/{evil}.list"),
        format!("{NV_CONFIG}\n"),
    );
    let out = tree.cmd(&["plan"]).output().unwrap();
    assert!(out.status.success());
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(!err.contains('\u{1b}') && !err.contains('\u{7}'), "{err:?}");
    assert!(
        err.contains("belongs to package evil\\x1b]0;PWNED\\x07\\x1b[1A\\x1b[2K (dpkg)"),
        "{err}"
    );
    // JSON keeps the name exact (escaped as JSON escapes it).
    let out = tree.cmd(&["plan", "--format", "json"]).output().unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["files"][1]["package"]["package"], evil, "{v:#}");
}

#[test]
fn r13_doctor_runs_no_probe_another_user_could_have_replaced() {
    if !need_root("a private mount namespace with overlays on /usr") {
        return;
    }
    // The review: a user-owned /usr/local/bin/nvidia-ctk was refused by
    // --strategy cdi but run as root by doctor (its --version probe). On
    // this machine (in a namespace, /usr an overlay), such a program is
    // put where doctor looks; doctor must not run it.
    let ov = Overlay::new();
    let marker = ov.path().join("ran");
    let bin = crate::util::bin();
    let script = format!(
        "mkdir -p /usr/local/bin
printf '#!/bin/sh\\ntouch {}\\necho 1.0\\n' > /usr/local/bin/nvidia-ctk
chmod 0755 /usr/local/bin/nvidia-ctk
chown 1000:1000 /usr/local/bin/nvidia-ctk
\"$BIN\" --color never doctor --format json > \"$H/doctor.json\" || true
",
        marker.display()
    );
    let out = ov.sh(&script, &[("BIN", bin.as_os_str())]);
    assert!(out.status.success(), "{out:?}");
    assert!(!marker.exists(), "doctor ran a program user 1000 owns");
    let doctor: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(ov.path().join("doctor.json")).unwrap()).unwrap();
    assert!(doctor["checks"].is_array(), "{doctor:#}");
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
    outcome(&out)
}

#[test]
fn r1_a_file_named_like_a_subcommand_never_turns_it_into_a_module_run() {
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
fn r5_a_state_dir_owned_by_another_user_is_refused() {
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
fn r3_an_image_tree_owned_by_another_user_is_refused() {
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
fn r5_a_forged_manifest_naming_a_file_gpu_setup_does_not_manage_is_refused() {
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
fn r5_a_forged_manifest_cannot_restore_set_id_bits_or_give_a_file_away() {
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
fn r5_a_forged_manifest_cannot_reach_outside_the_root_through_a_link() {
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
fn r6_an_edited_saved_plan_is_refused() {
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
fn r6_a_saved_plan_others_could_change_is_refused() {
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
fn r6_plan_out_writes_a_new_private_file_never_through_a_link() {
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
fn r2_a_directory_swapped_during_apply_cannot_redirect_its_writes() {
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
fn r8_an_append_only_hooks_dir_fails_cleanly_and_every_other_file_is_undone() {
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
fn r9_sudo_refuses_a_binary_below_a_directory_another_user_owns() {
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
fn r4_follow_symlinks_refuses_a_link_to_a_file_another_user_controls() {
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
fn r10_transaction_ids_that_would_wrap_are_refused() {
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
fn r10_files_larger_than_gpu_setup_reads_are_refused() {
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
fn r10_endless_and_special_files_are_refused_without_hanging() {
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
