//! `gpu-setup doctor` through the real binary: on test trees (with real
//! device nodes when root) and on this machine itself (read-only).

use std::os::unix::fs::PermissionsExt;

use serde_json::Value;

use crate::util::*;

/// A stock tree with the whole toolkit and Podman, configured by apply.
fn configured() -> Tree {
    let tree = Tree::stock();
    for bin in [
        "/usr/bin/podman",
        "/usr/bin/crun",
        "/usr/sbin/runc",
        "/usr/bin/nvidia-container-runtime-hook",
        "/usr/bin/nvidia-container-cli",
        "/usr/bin/nvidia-ctk",
        // Ubuntu's config.toml names Ubuntu's ldconfig.
        "/sbin/ldconfig.real",
    ] {
        tree.exe(bin);
    }
    ok_stdout(&mut tree.cmd(&["apply"]));
    tree
}

fn doctor_json(tree: &Tree, args: &[&str]) -> (Option<i32>, Vec<Value>) {
    let mut all = vec!["doctor", "--format", "json"];
    all.extend(args);
    let out = tree.cmd(&all).output().unwrap();
    let v: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)));
    (out.status.code(), v["checks"].as_array().unwrap().clone())
}

fn status_of<'a>(checks: &'a [Value], id: &str) -> &'a Value {
    let c = checks.iter().find(|c| c["id"] == id).unwrap();
    &c["status"]
}

#[test]
fn a_configured_tree_passes_and_shows_a_table() {
    let tree = configured();
    let before = tree.snapshot();
    let (code, checks) = doctor_json(&tree, &["--podman-version", "4.3.1"]);
    assert_eq!(code, Some(0), "{checks:#?}");
    let statuses: Vec<(String, String)> = checks
        .iter()
        .map(|c| {
            (
                c["id"].as_str().unwrap().to_owned(),
                c["status"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let expect = [
        ("podman", "ok"),
        ("runtimes", "ok"),
        ("hooks", "ok"),
        ("toolkit", "ok"),
        ("nvidia-config", "ok"),
        ("runtime-mode", "ok"), // auto: the hook resolves it to legacy
        ("debug-logs", "ok"),
        ("ldconfig", "ok"),      // Ubuntu's config.toml, Ubuntu's ldconfig.real
        ("gpu-devices", "skip"), // no /dev in the tree
        ("uvm", "skip"),
        ("cgroups", "skip"),
        ("selinux", "ok"), // no /sys/fs/selinux in the tree
        ("cdi", "ok"),
        ("cdi-devices", "skip"),
        ("strategy", "ok"), // hook: the NVIDIA hook, no CDI spec
        ("mounts", "skip"),
        ("desired-state", "ok"),
    ];
    let expect: Vec<(String, String)> = expect
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
    assert_eq!(statuses, expect);
    for c in &checks {
        let keys: Vec<&String> = c.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["id", "status", "message", "hint", "details"]);
    }
    // Podman's view, for scripts: the default runtime is the first
    // installed (crun), the files read, the hooks dirs.
    let out = tree
        .cmd(&["doctor", "--format", "json", "--podman-version", "4.3.1"])
        .output()
        .unwrap();
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["podman"]["default_runtime"]["name"], "crun");
    assert_eq!(v["podman"]["default_runtime"]["path"], "/usr/bin/crun");
    assert_eq!(
        v["podman"]["config_files"],
        serde_json::json!([USR_CONF, DROPIN])
    );
    assert_eq!(v["podman"]["rules"], "4.3.1");

    let text = ok_stdout(&mut tree.cmd(&["doctor", "--podman-version", "4.3.1"]));
    assert!(
        text.starts_with("ok    podman         Podman 4.3.1: merges every containers.conf it finds (up to 5.x), drop-ins read\n"),
        "{text}"
    );
    assert!(
        text.contains(
            "\nok    runtime-mode   runtime mode is auto: the NVIDIA hook resolves it to legacy"
        ),
        "{text}"
    );
    assert!(!text.contains("hint:"), "{text}");
    assert!(
        text.ends_with("\n12 ok, 0 warn, 0 fail, 5 skip.\n"),
        "{text}"
    );
    assert!(
        !text.contains("reads /usr/share/containers/containers.conf"),
        "details need --verbose"
    );
    let verbose = ok_stdout(&mut tree.cmd(&["doctor", "--podman-version", "4.3.1", "--verbose"]));
    assert!(
        verbose.contains("                     reads /usr/share/containers/containers.conf\n"),
        "{verbose}"
    );
    assert_eq!(tree.snapshot(), before, "doctor is read-only");
}

#[test]
fn a_failing_check_exits_1() {
    let tree = Tree::stock();
    let before = tree.snapshot();
    let (code, checks) = doctor_json(&tree, &[]);
    assert_eq!(code, Some(1));
    assert_eq!(status_of(&checks, "podman"), "fail");
    assert_eq!(status_of(&checks, "runtimes"), "fail");
    assert_eq!(status_of(&checks, "hooks"), "fail");
    assert_eq!(status_of(&checks, "toolkit"), "fail");
    assert_eq!(status_of(&checks, "desired-state"), "warn");
    let out = tree.cmd(&["doctor"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("fail  podman         Podman is not installed\n"),
        "{text}"
    );
    assert!(text.contains("hint: gpu-setup apply\n"), "{text}");
    assert_eq!(tree.snapshot(), before);
}

#[test]
fn doctor_errors_are_clear() {
    let tree = Tree::stock();
    let err = fails(&mut tree.cmd(&["doctor", "--runtime-path", "relative"]));
    assert!(
        err.starts_with(
            "error: invalid runtime path\n  caused by: `relative` is not an absolute path\n"
        ),
        "{err}"
    );
    let err = fails(&mut tree.cmd(&["doctor", "--podman-version", "latest"]));
    assert_eq!(
        err,
        "error: invalid --podman-version `latest`\nhint: give a version such as 4.9.3\n"
    );
    let mut cmd = crate::util::gpu_setup();
    cmd.args(["--root", "/nonexistent-gpu-setup-root", "doctor"]);
    let err = fails(&mut cmd);
    assert!(
        err.starts_with("error: cannot use root `/nonexistent-gpu-setup-root`"),
        "{err}"
    );
}

#[test]
fn gpus_owned_by_video_warn_with_runc() {
    if !need_root("mknod and chown of device nodes in a temp root") {
        return;
    }
    let tree = configured();
    tree.write("/etc/group", "root:x:0:\nvideo:x:44:alice\n");
    std::fs::create_dir_all(tree.real("/dev")).unwrap();
    for (name, minor) in [("nvidia0", 0), ("nvidiactl", 255)] {
        let path = tree.real(&format!("/dev/{name}"));
        nix::sys::stat::mknod(
            &path,
            nix::sys::stat::SFlag::S_IFCHR,
            nix::sys::stat::Mode::from_bits_truncate(0o660),
            nix::sys::stat::makedev(195, minor),
        )
        .unwrap();
        std::os::unix::fs::chown(&path, Some(0), Some(44)).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o660)).unwrap();
    }
    // crun (the default) keeps groups with --group-add keep-groups: fine.
    let (_, checks) = doctor_json(&tree, &["--podman-version", "4.3.1", "--verbose"]);
    let c = checks.iter().find(|c| c["id"] == "gpu-devices").unwrap();
    assert_eq!(c["status"], "ok", "{c:#}");
    assert_eq!(c["message"], "2 NVIDIA device node(s)");
    assert_eq!(
        c["details"],
        serde_json::json!([
            "/dev/nvidia0: mode 0660, owner 0, group video",
            "/dev/nvidiactl: mode 0660, owner 0, group video",
            "containers run with --runtime nvidia use runc (the first of [nvidia-container-runtime] runtimes found)"
        ])
    );
    // runc: rootless containers see the GPUs as nobody:nogroup.
    tree.write(
        "/etc/containers/containers.conf",
        "[engine]\nruntime = \"runc\"\n",
    );
    let (code, checks) = doctor_json(&tree, &["--podman-version", "4.3.1"]);
    assert_eq!(code, Some(0));
    let c = checks.iter().find(|c| c["id"] == "gpu-devices").unwrap();
    assert_eq!(c["status"], "warn", "{c:#}");
    assert_eq!(
        c["message"],
        "/dev/nvidia0 (video), /dev/nvidiactl (video) usable only by its group, while the default runtime is runc: rootless containers see them as nobody:nogroup (only crun keeps the caller's groups with --group-add keep-groups)"
    );
    assert_eq!(
        c["hint"],
        "use crun (`[engine] runtime = \"crun\"` in containers.conf) and run containers with `--group-add keep-groups`"
    );
}

#[test]
fn doctor_on_this_machine_is_sensible() {
    // Read-only: doctor never writes, and here it reads the real host.
    let mut cmd = crate::util::gpu_setup();
    cmd.env_remove("GPU_SETUP_LOG")
        .args(["doctor", "--format", "json", "--verbose"]);
    let out = cmd.output().unwrap();
    assert!(
        matches!(out.status.code(), Some(0) | Some(1)),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let checks = v["checks"].as_array().unwrap();
    assert_eq!(checks.len(), 17);
    for c in checks {
        let status = c["status"].as_str().unwrap();
        assert!(["ok", "warn", "fail", "skip"].contains(&status), "{c:#}");
        assert!(!c["message"].as_str().unwrap().is_empty(), "{c:#}");
        if status == "warn" || status == "fail" {
            assert!(c["hint"].is_string(), "{c:#}");
        }
    }
    let has_gpu = std::fs::read_dir("/dev").unwrap().any(|e| {
        e.unwrap()
            .file_name()
            .to_string_lossy()
            .starts_with("nvidia")
    });
    if !has_gpu {
        assert_eq!(status_of(checks, "gpu-devices"), "warn");
    }
    let podman = std::path::Path::new("/usr/bin/podman").exists();
    if std::env::var_os("GPU_SETUP_REQUIRE_ROOT_TESTS").is_some() {
        assert!(podman, "CI installs Podman (.ci/run)");
    }
    let c = checks.iter().find(|c| c["id"] == "podman").unwrap();
    if podman {
        assert_eq!(c["status"], "ok", "{c:#}");
        assert!(
            c["message"].as_str().unwrap().starts_with("Podman "),
            "{c:#}"
        );
    } else {
        assert_eq!(c["status"], "fail", "{c:#}");
    }
    assert_ne!(
        status_of(checks, "cgroups"),
        "skip",
        "this machine has /sys/fs/cgroup"
    );
}
