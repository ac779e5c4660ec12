//! Safe writing of root-owned files (docs/security.md): symbolic links
//! under the root, modes of written files, the state dir, debug log paths,
//! and `--sudo` with Debian's real sudo.

use std::fs;
use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::Command as StdCommand;
use std::time::{Duration, Instant};

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
fn a_symlink_at_the_target_is_refused_by_default() {
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
fn follow_symlinks_writes_through_a_link_inside_the_root() {
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
fn follow_symlinks_refuses_a_link_out_of_the_root() {
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
fn an_absolute_link_never_reaches_the_machines_own_files() {
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
fn a_parent_directory_link_out_of_the_root_is_refused() {
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
fn a_parent_directory_link_to_a_world_writable_directory_is_refused() {
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
fn a_parent_directory_link_owned_by_another_user_is_refused() {
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
fn a_target_swapped_for_a_symlink_after_plan_is_refused() {
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
fn a_target_swapped_for_a_symlink_during_apply_never_writes_through_it() {
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
fn written_files_are_never_group_or_world_writable() {
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
fn a_state_dir_open_to_others_is_refused() {
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
fn debug_logs_in_world_writable_or_user_owned_directories_are_refused() {
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
fn a_root_only_log_path_warns_for_rootless_use() {
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
fn sudo_as_root_does_nothing_more() {
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
fn sudo_refuses_a_binary_others_can_replace() {
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
fn sudo_missing_is_a_clear_error() {
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
fn apply_and_rollback_through_real_sudo() {
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
fn without_a_sudo_rule_sudo_refuses_at_once_instead_of_prompting() {
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
fn a_plan_file_is_checked_again_after_sudo() {
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
fn a_saved_plan_whose_path_now_leads_elsewhere_is_stale() {
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
fn a_state_dir_that_is_a_symlink_is_refused() {
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
