//! Rootless Podman, the seed's own case, on this machine's Podman (Debian
//! 12's 4.3.1): a local test user runs containers through the real NVIDIA
//! runtime and hook (toolkit v1.20.0) after `gpu-setup apply`, and what the
//! hook does with `no-cgroups` is compared with what doctor told that user.
//! All of it in a private mount namespace whose /etc, /usr and /var are
//! overlays (`tests/rootless/rootless.sh`): the test user, the toolkit and
//! gpu-setup's files never reach the machine.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use serde_json::Value;

use crate::util::*;

fn check(doctor: &str, id: &str) -> Value {
    let v: Value = serde_json::from_str(doctor).unwrap_or_else(|e| panic!("{e}: {doctor}"));
    doctor_check(&v, id)
}

#[test]
fn a_rootless_user_runs_the_nvidia_runtime_and_hook_with_no_cgroups() {
    if !need_root("a test user and overlays in a private mount namespace") {
        return;
    }
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let toolkit = repo.join("../shared/tools/nvidia-container-toolkit/v1.20.0");
    let mut missing = Vec::new();
    for tool in [
        "/usr/bin/podman",
        "/usr/bin/newuidmap",
        "/usr/sbin/useradd",
        "/usr/sbin/runc",
    ] {
        if !Path::new(tool).exists() {
            missing.push(tool);
        }
    }
    if !toolkit.join("nvidia-ctk").exists() {
        missing.push("../shared/tools/nvidia-container-toolkit");
    }
    if !missing.is_empty() {
        assert!(
            std::env::var_os("GPU_SETUP_REQUIRE_E2E").is_none(),
            "GPU_SETUP_REQUIRE_E2E is set: {missing:?} must be installed (.ci/run)"
        );
        eprintln!("skipped: the rootless case needs {missing:?}");
        return;
    }
    // The scratch dir holds the overlays' upper layers (not on an
    // overlay itself), and the user must reach its log dir.
    let w = tempfile::Builder::new()
        .prefix("gpu-setup-rootless.")
        .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
        .unwrap();
    fs::set_permissions(w.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let out = Command::new("unshare")
        .args(["-m", "--propagation", "private", "bash"])
        .arg(repo.join("tests/rootless/rootless.sh"))
        .env("W", w.path())
        .env("GPU_SETUP_BIN", bin())
        .env("NVIDIA_TOOLKIT", &toolkit)
        .env("NVIDIA_CONFIG", toolkit_config())
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let o = w.path().join("out");
    let read = |name: &str| fs::read_to_string(o.join(name)).unwrap_or_default();
    let rc = |step: &str| read(&format!("{step}.rc")).trim().to_owned();
    let shown = |step: &str| {
        format!(
            "{step}: rc {}\n{}\n{}",
            rc(step),
            read(&format!("{step}.out")),
            read(&format!("{step}.err"))
        )
    };
    for step in [
        "apply",
        "import",
        "runtime",
        "hook",
        "apply_false",
        "hook_false",
    ] {
        assert_eq!(rc(step), "0", "{}", shown(step));
    }
    // The user's containers ran through the real nvidia runtime, and the
    // real hook ran for a GPU container.
    assert_eq!(read("runtime.out"), "ok\n");
    assert_eq!(read("hook.out"), "ok\n");
    // no-cgroups = true: doctor tells the rootless user it is right, and
    // the hook passes --no-cgroups (an unprivileged hook cannot write the
    // device cgroup), running in the user's namespace.
    let c = check(&read("doctor.out"), "nvidia-config");
    assert_eq!(c["status"], "ok", "{c:#}");
    assert!(
        c["message"]
            .as_str()
            .unwrap()
            .ends_with("has no-cgroups = true, as rootless Podman needs"),
        "{c:#}"
    );
    let cli = read("cli-true.log");
    assert!(cli.contains(" --no-cgroups "), "{cli}");
    // no-cgroups = false (for rootful containers): doctor fails it for
    // the rootless user, and the hook indeed asks for cgroups.
    let c = check(&read("doctor_false.out"), "nvidia-config");
    assert_eq!(c["status"], "fail", "{c:#}");
    assert!(
        c["message"]
            .as_str()
            .unwrap()
            .contains("rootless Podman cannot set up the GPU's device cgroup"),
        "{c:#}"
    );
    let cli = read("cli-false.log");
    assert!(
        cli.contains("configure") && !cli.contains("--no-cgroups"),
        "{cli}"
    );
}
