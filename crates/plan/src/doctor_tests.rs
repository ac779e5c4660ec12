//! Each doctor check on in-memory hosts: the good case and every way it
//! goes wrong.

use super::*;
use crate::desired::Settings;
use crate::observe::MemHost;

const DEBIAN_CONF: &str =
    include_str!("../../../tests/fixtures/containers.conf/debian-bookworm-0.50.1+ds1-4.conf");
const UBUNTU_NV: &str = include_str!(
    "../../../tests/fixtures/nvidia-config.toml/nvidia-container-toolkit-v1.13.5-ubuntu.toml"
);
const NVIDIA_HOOK_1_13: &str = include_str!(
    "../../../tests/fixtures/hooks/nvidia-container-toolkit-v1.13.5-oci-nvidia-hook.json"
);
const SECCOMP_HOOK: &str = include_str!(
    "../../../tests/fixtures/hooks/oci-seccomp-bpf-hook-v1.3.0-oci-seccomp-bpf-hook.json"
);
const HOOK: &str = "/usr/share/containers/oci/hooks.d/oci-nvidia-hook.json";
const DROPIN: &str = "/etc/containers/containers.conf.d/99-nvidia.conf";
const NV: &str = "/etc/nvidia-container-runtime/config.toml";

fn desired() -> DesiredState {
    DesiredState::from_settings(&Settings::default()).unwrap()
}

/// A host gpu-setup configured, with the whole toolkit, Podman 4.3.1's
/// files, cgroup v2 and one GPU.
fn configured() -> MemHost {
    let mut host = MemHost::new()
        .with_file("/usr/share/containers/containers.conf", DEBIAN_CONF)
        .with_file(
            NV,
            UBUNTU_NV.replace("mode = \"auto\"", "mode = \"legacy\""),
        )
        .with_exe("/usr/bin/podman")
        .with_exe("/usr/bin/crun")
        .with_exe("/usr/sbin/runc")
        .with_file("/sys/fs/cgroup/cgroup.controllers", "cpu memory pids\n")
        .with_file("/etc/group", "root:x:0:\nvideo:x:44:alice\n")
        .with_meta("/dev/nvidia0", device(0o660, 44))
        .with_meta("/dev/nvidiactl", device(0o666, 0));
    for bin in TOOLKIT_BINARIES {
        host = host.with_exe(&format!("/usr/bin/{bin}"));
    }
    let plan = crate::plan(&desired(), &host).unwrap();
    host.apply(&plan);
    host
}

fn device(mode: u32, gid: u32) -> Meta {
    Meta {
        kind: Kind::Other,
        mode,
        uid: 0,
        gid,
    }
}

fn probes() -> Probes {
    Probes {
        podman_version: Some("podman version 4.3.1".to_owned()),
        ..Probes::default()
    }
}

fn check(host: &MemHost, probes: &Probes, id: &str) -> Check {
    run(&desired(), &HostFacts::default(), host, probes)
        .into_iter()
        .find(|c| c.id == id)
        .unwrap()
}

#[track_caller]
fn assert_check(c: &Check, status: Status, message_start: &str) {
    assert_eq!(c.status, status, "{c:#?}");
    assert!(c.message.starts_with(message_start), "{c:#?}");
    match status {
        Status::Ok => assert!(c.hint.is_none(), "{c:#?}"),
        Status::Warn | Status::Fail => assert!(c.hint.is_some(), "{c:#?}"),
        Status::Skip => {}
    }
}

#[test]
fn a_configured_host_passes_every_check() {
    let checks = run(&desired(), &HostFacts::default(), &configured(), &probes());
    let ids: Vec<&str> = checks.iter().map(|c| c.id).collect();
    assert_eq!(
        ids,
        [
            "podman",
            "runtimes",
            "hooks",
            "toolkit",
            "nvidia-config",
            "runtime-mode",
            "debug-logs",
            "gpu-devices",
            "cgroups",
            "cdi",
            "mounts",
            "desired-state"
        ]
    );
    for c in &checks {
        let expected = if c.id == "mounts" {
            Status::Skip
        } else {
            Status::Ok
        };
        assert_eq!(c.status, expected, "{c:#?}");
    }
    let hooks = checks.iter().find(|c| c.id == "hooks").unwrap();
    assert_eq!(
        hooks.message,
        format!("NVIDIA hook `{HOOK}` runs `/usr/bin/nvidia-container-toolkit` (prestart)")
    );
    let runtimes = checks.iter().find(|c| c.id == "runtimes").unwrap();
    assert_eq!(
        runtimes.message,
        format!("`nvidia` runs `/usr/bin/nvidia-container-runtime` (from {DROPIN}); default runtime crun")
    );
    let devices = checks.iter().find(|c| c.id == "gpu-devices").unwrap();
    assert_eq!(
        devices.details,
        [
            "/dev/nvidia0: mode 0660, owner 0, group video",
            "/dev/nvidiactl: mode 0666, owner 0, group root"
        ]
    );
}

#[test]
fn podman_missing_unknown_old_and_new() {
    let host = configured();
    let mut no_podman = host.clone();
    no_podman.remove(&TargetPath::new("/usr/bin/podman").unwrap());
    let c = check(&no_podman, &Probes::default(), "podman");
    assert_check(&c, Status::Fail, "Podman is not installed");
    assert!(c.hint.unwrap().contains("apt-get install podman"));

    let c = check(&host, &Probes::default(), "podman");
    assert_check(
        &c,
        Status::Skip,
        "`/usr/bin/podman` is installed; its version is unknown",
    );
    let broken = Probes {
        podman_version_error: Some("podman exited with signal 9".to_owned()),
        ..Probes::default()
    };
    let c = check(&host, &broken, "podman");
    assert_check(
        &c,
        Status::Warn,
        "`/usr/bin/podman` is installed but its version is unknown: podman exited",
    );

    let old = Probes {
        podman_version: Some("3.2.3".to_owned()),
        ..Probes::default()
    };
    let c = check(&host, &old, "podman");
    assert_check(
        &c,
        Status::Warn,
        "Podman 3.2.3 does not read containers.conf.d drop-ins",
    );
    assert!(c
        .hint
        .unwrap()
        .contains("--containers-conf /etc/containers/containers.conf"));
    // ... and so the drop-in's runtime does not count.
    assert_check(
        &check(&host, &old, "runtimes"),
        Status::Fail,
        "no `nvidia` runtime",
    );

    // Podman 6 reads only the first main file that exists.
    let six = Probes {
        podman_version: Some("6.0.0".to_owned()),
        ..Probes::default()
    };
    let host6 = host
        .clone()
        .with_file("/etc/containers/containers.conf", "[engine]\n");
    let c = check(&host6, &six, "podman");
    assert_check(
        &c,
        Status::Ok,
        "Podman 6.0.0: reads one main containers.conf plus drop-ins",
    );
    assert!(
        c.details
            .contains(&"reads /etc/containers/containers.conf".to_owned()),
        "{c:#?}"
    );
    assert!(
        !c.details
            .contains(&"reads /usr/share/containers/containers.conf".to_owned()),
        "{c:#?}"
    );
    assert!(c.details.contains(&format!("reads {DROPIN}")), "{c:#?}");
}

#[test]
fn runtime_problems() {
    let host = configured();
    let broken = host
        .clone()
        .with_file("/etc/containers/containers.conf.d/50-bad.conf", "[engine\n");
    let c = check(&broken, &probes(), "runtimes");
    assert_check(
        &c,
        Status::Fail,
        "Podman cannot read its configuration: `/etc/containers/containers.conf.d/50-bad.conf` line 1, column 8",
    );
    assert!(c
        .hint
        .unwrap()
        .starts_with("every podman command fails until this is fixed"));

    let kata = host.clone().with_file(
        "/etc/containers/containers.conf.d/10-kata.conf",
        "[engine]\nruntime = \"kata\"\n",
    );
    let c = check(&kata, &probes(), "runtimes");
    assert_check(
        &c,
        Status::Fail,
        "the default runtime `kata` (set in /etc/containers/containers.conf.d/10-kata.conf) is not installed",
    );

    let mut gone = host.clone();
    gone.remove(&TargetPath::new("/usr/bin/nvidia-container-runtime").unwrap());
    let c = check(&gone, &probes(), "runtimes");
    assert_check(
        &c,
        Status::Fail,
        "`nvidia` lists [\"/usr/bin/nvidia-container-runtime\"]",
    );
    assert_eq!(
        c.hint.as_deref(),
        Some("install the NVIDIA Container Toolkit (package nvidia-container-toolkit)")
    );

    // A later drop-in overrides the entry: later files win per runtime name.
    let later = host.clone().with_exe("/opt/nv").with_file(
        "/etc/containers/containers.conf.d/zz.conf",
        "[engine.runtimes]\nnvidia = [\"/opt/nv\"]\n",
    );
    let c = check(&later, &probes(), "runtimes");
    assert_check(
        &c,
        Status::Ok,
        "`nvidia` runs `/opt/nv` (from /etc/containers/containers.conf.d/zz.conf)",
    );
}

#[test]
fn hook_problems() {
    let host = configured();
    let mut none = host.clone();
    none.remove(&TargetPath::new(HOOK).unwrap());
    assert_check(
        &check(&none, &probes(), "hooks"),
        Status::Fail,
        "no NVIDIA OCI hook",
    );

    // Another hook file that is invalid breaks every container.
    let bad = host.clone().with_file(
        "/usr/share/containers/oci/hooks.d/seccomp.json",
        SECCOMP_HOOK.replace("prestart", "prestrat"),
    );
    let c = check(&bad, &probes(), "hooks");
    assert_check(
        &c,
        Status::Fail,
        "invalid hook file `/usr/share/containers/oci/hooks.d/seccomp.json`: unknown stage \"prestrat\"",
    );
    assert!(c
        .message
        .ends_with("Podman refuses to create any container while it exists"));
    let half = host.clone().with_file(
        "/usr/share/containers/oci/hooks.d/x.json",
        "{\"version\": \"1.0",
    );
    let c = check(&half, &probes(), "hooks");
    assert!(
        c.message
            .contains("`/usr/share/containers/oci/hooks.d/x.json` line 1, column 16"),
        "{c:#?}"
    );
    // A valid foreign hook is fine; files not ending in .json are ignored.
    let fine = host
        .clone()
        .with_file(
            "/usr/share/containers/oci/hooks.d/seccomp.json",
            SECCOMP_HOOK,
        )
        .with_file("/usr/share/containers/oci/hooks.d/notes.txt", "{");
    assert_check(&check(&fine, &probes(), "hooks"), Status::Ok, "NVIDIA hook");

    // A higher-priority dir masks the hook with a same-named file.
    let masked = host
        .clone()
        .with_file(
            "/etc/containers/containers.conf.d/20-hooks.conf",
            "[engine]\nhooks_dir = [\"/usr/share/containers/oci/hooks.d\", \"/etc/containers/oci/hooks.d\"]\n",
        )
        .with_file("/etc/containers/oci/hooks.d/oci-nvidia-hook.json", SECCOMP_HOOK);
    let c = check(&masked, &probes(), "hooks");
    assert_check(
        &c,
        Status::Fail,
        &format!("`{HOOK}` is masked by a file of the same name"),
    );

    // NVIDIA's own hook (v1.13.5) runs nvidia-container-runtime-hook.
    let mut vendor = host.clone();
    vendor.put(
        &TargetPath::new(HOOK).unwrap(),
        NVIDIA_HOOK_1_13.as_bytes().to_vec(),
    );
    assert_check(
        &check(&vendor, &probes(), "hooks"),
        Status::Ok,
        "NVIDIA hook",
    );
    vendor.remove(&TargetPath::new("/usr/bin/nvidia-container-runtime-hook").unwrap());
    let c = check(&vendor, &probes(), "hooks");
    assert_check(&c, Status::Fail, &format!("the NVIDIA hook `{HOOK}` runs `/usr/bin/nvidia-container-runtime-hook`, which is not an executable file"));

    // The old 0.1.0 schema.
    let mut old = host.clone();
    old.put(
        &TargetPath::new(HOOK).unwrap(),
        br#"{"hook": "/usr/bin/nvidia-container-toolkit", "arguments": ["prestart"], "stage": ["prestart"]}"#.to_vec(),
    );
    let c = check(&old, &probes(), "hooks");
    assert_check(&c, Status::Ok, "NVIDIA hook");
    assert!(
        c.details.iter().any(|d| d.ends_with("(schema 0.1.0)")),
        "{c:#?}"
    );
}

#[test]
fn toolkit_problems() {
    let host = configured();
    let mut no_cli = host.clone();
    no_cli.remove(&TargetPath::new("/usr/bin/nvidia-container-cli").unwrap());
    let c = check(&no_cli, &probes(), "toolkit");
    assert_check(
        &c,
        Status::Fail,
        "the NVIDIA Container Toolkit is incomplete: nvidia-container-cli missing",
    );
    let mut none = host.clone();
    for bin in TOOLKIT_BINARIES {
        none.remove(&TargetPath::new(&format!("/usr/bin/{bin}")).unwrap());
    }
    assert_check(
        &check(&none, &probes(), "toolkit"),
        Status::Fail,
        "the NVIDIA Container Toolkit is not installed",
    );
    let versions = Probes {
        tool_versions: [(
            "nvidia-container-runtime".to_owned(),
            "NVIDIA Container Runtime version 1.13.5".to_owned(),
        )]
        .into_iter()
        .collect(),
        ..probes()
    };
    let c = check(&host, &versions, "toolkit");
    assert_check(
        &c,
        Status::Ok,
        "NVIDIA Container Toolkit installed (NVIDIA Container Runtime version 1.13.5)",
    );
    assert!(c.details.contains(
        &"/usr/bin/nvidia-container-runtime: NVIDIA Container Runtime version 1.13.5".to_owned()
    ));
}

#[test]
fn nvidia_config_problems() {
    let host = configured();
    let nv = TargetPath::new(NV).unwrap();
    let mut missing = host.clone();
    missing.remove(&nv);
    assert_check(
        &check(&missing, &probes(), "nvidia-config"),
        Status::Fail,
        &format!("`{NV}` does not exist"),
    );
    assert_check(
        &check(&missing, &probes(), "runtime-mode"),
        Status::Skip,
        "no readable config.toml",
    );

    let mut broken = host.clone();
    broken.put(&nv, b"[nvidia-container-cli\n".to_vec());
    assert_check(
        &check(&broken, &probes(), "nvidia-config"),
        Status::Fail,
        &format!("`{NV}` line 1, column 22"),
    );
    let mut typed = host.clone();
    typed.put(
        &nv,
        b"[nvidia-container-cli]\nno-cgroups = \"yes\"\n".to_vec(),
    );
    assert_check(
        &check(&typed, &probes(), "nvidia-config"),
        Status::Fail,
        &format!("`{NV}` line 2, column 14"),
    );

    // Rootless Podman needs no-cgroups = true.
    let rootless = Probes {
        rootless: true,
        ..probes()
    };
    assert_check(
        &check(&host, &rootless, "nvidia-config"),
        Status::Ok,
        &format!("`{NV}` has no-cgroups = true, as rootless"),
    );
    let mut off = host.clone();
    off.put(
        &nv,
        b"[nvidia-container-cli]\nno-cgroups = false\n".to_vec(),
    );
    let c = check(&off, &rootless, "nvidia-config");
    assert_check(
        &c,
        Status::Fail,
        &format!("`{NV}` has no-cgroups = false: rootless Podman cannot"),
    );
    assert_eq!(c.hint.as_deref(), Some("gpu-setup apply --no-cgroups true"));
    assert_check(
        &check(&off, &probes(), "nvidia-config"),
        Status::Ok,
        &format!("`{NV}` has no-cgroups = false: right for rootful"),
    );
}

#[test]
fn runtime_mode_and_debug_logs() {
    let host = configured();
    let nv = TargetPath::new(NV).unwrap();
    let mut auto = host.clone();
    auto.put(&nv, UBUNTU_NV.as_bytes().to_vec());
    let c = check(&auto, &probes(), "runtime-mode");
    assert_check(&c, Status::Warn, "runtime mode is auto:");
    assert!(c
        .hint
        .unwrap()
        .starts_with("set `mode = \"legacy\"` under [nvidia-container-runtime]"));
    let mut unset = host.clone();
    unset.put(&nv, b"[nvidia-container-cli]\nno-cgroups = true\n".to_vec());
    assert_check(
        &check(&unset, &probes(), "runtime-mode"),
        Status::Warn,
        "runtime mode is auto (the default)",
    );

    assert_check(
        &check(&host, &probes(), "debug-logs"),
        Status::Ok,
        "no debug log is set",
    );
    let mut tmp = host.clone().with_dir("/tmp", 0o1777);
    tmp.put(
        &nv,
        b"[nvidia-container-cli]\ndebug = \"/tmp/nv.log\"\n".to_vec(),
    );
    let c = check(&tmp, &probes(), "debug-logs");
    assert_check(
        &c,
        Status::Fail,
        "debug log `/tmp/nv.log` is unsafe: `/tmp` is writable by group or others (mode 1777); the runtime opens the log as root",
    );
    // A directory another user owns is as unsafe as a writable one, for
    // doctor as for plan.
    let mut home = host.clone().with_meta(
        "/home/user",
        Meta {
            kind: Kind::Dir,
            mode: 0o755,
            uid: 1000,
            gid: 1000,
        },
    );
    home.put(
        &nv,
        b"[nvidia-container-cli]\ndebug = \"/home/user/nv.log\"\n".to_vec(),
    );
    assert_check(
        &check(&home, &probes(), "debug-logs"),
        Status::Fail,
        "debug log `/home/user/nv.log` is unsafe: `/home/user` is owned by user 1000, not root",
    );
    let mut var_log = host.clone().with_dir("/var/log", 0o755);
    var_log.put(
        &nv,
        b"[nvidia-container-cli]\nno-cgroups = true\ndebug = \"/var/log/nv.log\"\n".to_vec(),
    );
    let c = check(&var_log, &probes(), "debug-logs");
    assert_check(
        &c,
        Status::Warn,
        "no-cgroups = true (rootless use), but debug log `/var/log/nv.log` is in `/var/log`",
    );
    var_log.put(
        &nv,
        b"[nvidia-container-cli]\nno-cgroups = false\ndebug = \"/var/log/nv.log\"\n".to_vec(),
    );
    assert_check(
        &check(&var_log, &probes(), "debug-logs"),
        Status::Ok,
        "1 debug log(s) set, in safe directories",
    );
}

#[test]
fn gpu_devices_and_group_ownership() {
    let host = configured();
    let runc = host.clone().with_file(
        "/etc/containers/containers.conf.d/01-runc.conf",
        "[engine]\nruntime = \"runc\"\n",
    );
    let c = check(&runc, &probes(), "gpu-devices");
    assert_check(
        &c,
        Status::Warn,
        "/dev/nvidia0 (video) owned by a non-root group while the default runtime is runc",
    );
    assert!(c.hint.unwrap().contains("--group-add keep-groups"));
    // On hybrid cgroups crun needs cgroup v2 first: the hint says so.
    let mut hybrid = runc.clone().with_dir("/sys/fs/cgroup/unified", 0o555);
    hybrid.remove(&TargetPath::new("/sys/fs/cgroup/cgroup.controllers").unwrap());
    let c = check(&hybrid, &probes(), "gpu-devices");
    assert!(
        c.hint
            .as_deref()
            .unwrap()
            .contains("crun needs cgroup v2 on this hybrid-cgroup host"),
        "{c:#?}"
    );

    let mut no_gpu = host.clone();
    no_gpu.remove(&TargetPath::new("/dev/nvidia0").unwrap());
    no_gpu.remove(&TargetPath::new("/dev/nvidiactl").unwrap());
    assert_check(
        &check(&no_gpu, &probes(), "gpu-devices"),
        Status::Warn,
        "no /dev/nvidia* device nodes",
    );
    no_gpu.remove(&TargetPath::new("/dev").unwrap());
    assert_check(
        &check(&no_gpu, &probes(), "gpu-devices"),
        Status::Skip,
        "no /dev under the root",
    );
}

#[test]
fn cgroup_versions() {
    let v2 = configured();
    let root = Probes {
        real_root: true,
        ..probes()
    };
    assert_check(
        &check(&v2, &root, "cgroups"),
        Status::Ok,
        "cgroup v2 (unified), running as root",
    );
    let mut hybrid = configured().with_dir("/sys/fs/cgroup/unified", 0o555);
    hybrid.remove(&TargetPath::new("/sys/fs/cgroup/cgroup.controllers").unwrap());
    let c = check(&hybrid, &root, "cgroups");
    assert_check(
        &c,
        Status::Warn,
        "cgroup hybrid (v1 with a v2 mount), running as root: crun, the default runtime, refuses",
    );
    let hybrid_runc = hybrid.clone().with_file(
        "/etc/containers/containers.conf.d/01-runc.conf",
        "[engine]\nruntime = \"runc\"\n",
    );
    assert_check(
        &check(&hybrid_runc, &root, "cgroups"),
        Status::Ok,
        "cgroup hybrid",
    );
    let mut v1 = hybrid_runc.clone();
    v1.remove(&TargetPath::new("/sys/fs/cgroup/unified").unwrap());
    let rootless = Probes {
        rootless: true,
        real_root: true,
        ..probes()
    };
    assert_check(
        &check(&v1, &rootless, "cgroups"),
        Status::Warn,
        "cgroup v1, running rootless: rootless Podman cannot use cgroups",
    );
    assert_check(
        &check(&MemHost::new(), &root, "cgroups"),
        Status::Skip,
        "no /sys/fs/cgroup",
    );
}

#[test]
fn cdi_and_the_hook() {
    let host = configured();
    let spec = "{\"cdiVersion\": \"0.5.0\", \"kind\": \"nvidia.com/gpu\", \"devices\": []}";
    let both = host.clone().with_file("/etc/cdi/nvidia.json", spec);
    let c = check(&both, &probes(), "cdi");
    assert_check(
        &c,
        Status::Warn,
        &format!("NVIDIA CDI specs exist and so does the NVIDIA hook `{HOOK}`"),
    );
    assert_eq!(c.details, ["/etc/cdi/nvidia.json"]);
    let mut cdi_only = both.clone();
    cdi_only.remove(&TargetPath::new(HOOK).unwrap());
    assert_check(
        &check(&cdi_only, &probes(), "cdi"),
        Status::Ok,
        "NVIDIA CDI specs present",
    );
    let other = host
        .clone()
        .with_file("/var/run/cdi/vendor.yaml", "kind: vendor.com/x\n");
    assert_check(
        &check(&other, &probes(), "cdi"),
        Status::Ok,
        "no NVIDIA CDI spec",
    );
}

#[test]
fn mounts_from_nvidia_container_cli() {
    let host = configured();
    assert_check(
        &check(&host, &probes(), "mounts"),
        Status::Skip,
        "nvidia-container-cli is not run under --root",
    );
    let listed = Probes {
        real_root: true,
        cli_list: Some(Ok(vec![
            "/dev/nvidia0".to_owned(),
            "/usr/bin/nvidia-smi".to_owned(),
        ])),
        ..probes()
    };
    let c = check(&host, &listed, "mounts");
    assert_check(&c, Status::Ok, "nvidia-container-cli would mount 2 file(s)");
    assert_eq!(c.details, ["/dev/nvidia0", "/usr/bin/nvidia-smi"]);
    let failed = Probes {
        real_root: true,
        cli_list: Some(Err(
            "nvidia-container-cli: initialization error: nvml error: driver not loaded".to_owned(),
        )),
        ..probes()
    };
    assert_check(
        &check(&host, &failed, "mounts"),
        Status::Warn,
        "`nvidia-container-cli -k list` failed: nvidia-container-cli: initialization error",
    );
}

#[test]
fn desired_state_matches_plan() {
    let host = configured();
    assert_check(
        &check(&host, &probes(), "desired-state"),
        Status::Ok,
        "the host matches",
    );
    let mut drifted = host.clone();
    drifted.remove(&TargetPath::new(HOOK).unwrap());
    let c = check(&drifted, &probes(), "desired-state");
    assert_check(
        &c,
        Status::Warn,
        &format!("1 file(s) differ from gpu-setup's desired state: create {HOOK}"),
    );
    let mut broken = host.clone();
    broken.put(&TargetPath::new(DROPIN).unwrap(), b"[engine\n".to_vec());
    assert_check(
        &check(&broken, &probes(), "desired-state"),
        Status::Fail,
        &format!("cannot plan: `{DROPIN}` line 1, column 8"),
    );
}
