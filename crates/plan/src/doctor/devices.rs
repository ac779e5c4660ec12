//! GPU device nodes, cgroups and the driver's files: the `gpu-devices`,
//! `cgroups` and `mounts` checks.

use std::collections::BTreeMap;

use super::toolkit::ConfigResult;
use super::{Check, Context, Status};
use crate::observe::{Kind, Observe, Observed};
use crate::paths::TargetPath;
use crate::podman;
use crate::toml_doc::Expect;

/// Group ID -> name, from the root's /etc/group.
fn group_names(host: &dyn Observe) -> BTreeMap<u32, String> {
    let Ok(path) = TargetPath::new("/etc/group") else {
        return BTreeMap::new();
    };
    let Ok(Observed::File { bytes, .. }) = host.file(&path) else {
        return BTreeMap::new();
    };
    String::from_utf8_lossy(&bytes)
        .lines()
        .filter_map(|l| {
            let mut f = l.split(':');
            let name = f.next()?;
            let gid = f.nth(1)?.parse().ok()?;
            Some((gid, name.to_owned()))
        })
        .collect()
}

/// The name of the runtime a path or name stands for (`/usr/bin/crun` is
/// crun).
fn runtime_kind(name: &str, path: Option<&TargetPath>) -> String {
    path.map(|p| p.file_name().to_owned())
        .unwrap_or_else(|| name.rsplit('/').next().unwrap_or(name).to_owned())
}

/// The low-level runtime the NVIDIA runtime runs (`--runtime nvidia`): the
/// first of `[nvidia-container-runtime] runtimes` found (default
/// `["docker-runc", "runc", "crun"]`, toolkit `internal/config/runtime.go`).
fn nvidia_low_level(cx: &Context<'_>, config: &ConfigResult) -> Option<String> {
    let listed: Vec<String> = match config {
        Ok(Some(cfg)) => match cfg.get("nvidia-container-runtime", "runtimes", Expect::StrArray) {
            Ok(Some(v)) => v
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|s| s.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default(),
            _ => Vec::new(),
        },
        _ => Vec::new(),
    };
    let listed = if listed.is_empty() {
        vec![
            "docker-runc".to_owned(),
            "runc".to_owned(),
            "crun".to_owned(),
        ]
    } else {
        listed
    };
    let dirs = cx.path_dirs();
    listed.into_iter().find_map(|r| {
        if r.starts_with('/') {
            TargetPath::new(&r)
                .ok()
                .filter(|t| matches!(cx.host.meta(t), Ok(Some(_))))
                .map(|t| t.file_name().to_owned())
        } else {
            podman::look_path(cx.host, &r, &dirs).map(|_| r)
        }
    })
}

pub(crate) fn gpu_devices_check(cx: &Context<'_>, config: &ConfigResult) -> Check {
    let host = cx.host;
    let Ok(dev) = TargetPath::new("/dev") else {
        return Check::new("gpu-devices", Status::Skip, "no /dev");
    };
    let names: Vec<String> = match host.list(&dev) {
        Ok(Some(n)) => n.into_iter().filter(|n| n.starts_with("nvidia")).collect(),
        Ok(None) => return Check::new("gpu-devices", Status::Skip, "no /dev under the root"),
        Err(e) => return Check::error("gpu-devices", &e),
    };
    if names.is_empty() {
        return Check::new(
            "gpu-devices",
            Status::Warn,
            "no /dev/nvidia* device nodes: no NVIDIA GPU here, or its driver is not loaded",
        )
        .hint("check the driver with `nvidia-smi`; load it with `modprobe nvidia`");
    }
    let groups = group_names(host);
    let mut details = Vec::new();
    let mut group_only = Vec::new();
    for name in &names {
        let Ok(path) = dev.join(name) else { continue };
        let Ok(Some(m)) = host.meta(&path) else {
            continue;
        };
        let group = groups
            .get(&m.gid)
            .cloned()
            .unwrap_or_else(|| m.gid.to_string());
        details.push(format!(
            "{path}: mode {:04o}, owner {}, group {group}",
            m.mode, m.uid
        ));
        // Only a device others cannot read and write needs the group: a
        // 0666 device works for anyone, whatever its group.
        if m.gid != 0 && m.kind == Kind::Other && m.mode & 0o006 != 0o006 {
            group_only.push(format!("{path} ({group})"));
        }
    }
    let default = cx.default_runtime.as_ref();
    let default_kind = default.map(|d| runtime_kind(&d.name, d.path.as_ref()));
    if let Some(low) = nvidia_low_level(cx, config) {
        details.push(format!("containers run with --runtime nvidia use {low} (the first of [nvidia-container-runtime] runtimes found)"));
    }
    if !group_only.is_empty() && default_kind.as_deref() != Some("crun") {
        let runtime = default_kind.unwrap_or_else(|| "unknown".to_owned());
        let hint = if crun_refuses_hybrid(host) {
            "use crun with `--group-add keep-groups`; crun needs cgroup v2 on this hybrid-cgroup host: boot with systemd.unified_cgroup_hierarchy=1, then set `[engine] runtime = \"crun\"`"
        } else {
            "use crun (`[engine] runtime = \"crun\"` in containers.conf) and run containers with `--group-add keep-groups`"
        };
        return Check::new(
            "gpu-devices",
            Status::Warn,
            format!(
                "{} usable only by its group, while the default runtime is {runtime}: rootless containers see them as nobody:nogroup (only crun keeps the caller's groups with --group-add keep-groups)",
                group_only.join(", ")
            ),
        )
        .hint(hint)
        .details(details);
    }
    Check::new(
        "gpu-devices",
        Status::Ok,
        format!("{} NVIDIA device node(s)", names.len()),
    )
    .details(details)
}

/// The cgroup version from /sys/fs/cgroup under the root, if mounted.
fn cgroup_version(host: &dyn Observe) -> Option<&'static str> {
    let meta = |p: &str| {
        TargetPath::new(p)
            .ok()
            .and_then(|t| host.meta(&t).ok().flatten())
    };
    match (
        meta("/sys/fs/cgroup/cgroup.controllers"),
        meta("/sys/fs/cgroup/unified"),
        meta("/sys/fs/cgroup"),
    ) {
        (Some(_), _, _) => Some("v2 (unified)"),
        (None, Some(m), _) if m.kind == Kind::Dir => Some("hybrid (v1 with a v2 mount)"),
        (None, _, Some(m)) if m.kind == Kind::Dir => Some("v1"),
        _ => None,
    }
}

/// Whether crun refuses this host's cgroups: hybrid, with controllers
/// enabled on the v2 mount (`/sys/fs/cgroup/unified/cgroup.controllers`
/// not empty; crun `src/libcrun/cgroup.c`).
fn crun_refuses_hybrid(host: &dyn Observe) -> bool {
    if !cgroup_version(host).is_some_and(|v| v.starts_with("hybrid")) {
        return false;
    }
    let Ok(path) = TargetPath::new("/sys/fs/cgroup/unified/cgroup.controllers") else {
        return false;
    };
    matches!(host.kernel_file(&path, 4096), Ok(Some(b)) if !String::from_utf8_lossy(&b).trim().is_empty())
}

pub(crate) fn cgroups_check(cx: &Context<'_>) -> Check {
    let host = cx.host;
    let Some(version) = cgroup_version(host) else {
        return Check::new("cgroups", Status::Skip, "no /sys/fs/cgroup under the root");
    };
    let probes = cx.probes;
    let who = if !probes.real_root {
        "user unknown under --root"
    } else if probes.rootless {
        "running rootless"
    } else {
        "running as root"
    };
    let default_kind = cx
        .default_runtime
        .as_ref()
        .map(|d| runtime_kind(&d.name, d.path.as_ref()));
    if default_kind.as_deref() == Some("crun") && crun_refuses_hybrid(host) {
        return Check::new(
            "cgroups",
            Status::Warn,
            format!("cgroup {version} with controllers on the v2 mount, {who}: crun, the default runtime, refuses such hosts, so containers do not start"),
        )
        .hint("set `[engine] runtime = \"runc\"` in containers.conf, or boot with cgroup v2 (systemd.unified_cgroup_hierarchy=1)");
    }
    if version != "v2 (unified)" && !cx.rules.supports_cgroup_v1() {
        return Check::new(
            "cgroups",
            Status::Fail,
            format!("cgroup {version}, {who}: {} does not run on cgroup v1 (6.0 dropped it; provisional)", cx.rules.describe()),
        )
        .hint("boot with cgroup v2 (systemd.unified_cgroup_hierarchy=1), or keep Podman 5.x");
    }
    if probes.rootless && version != "v2 (unified)" {
        return Check::new(
            "cgroups",
            Status::Warn,
            format!("cgroup {version}, {who}: rootless Podman cannot use cgroups here"),
        )
        .hint("keep no-cgroups = true for rootless GPU containers, or boot with cgroup v2 (systemd.unified_cgroup_hierarchy=1)");
    }
    Check::new("cgroups", Status::Ok, format!("cgroup {version}, {who}"))
}

pub(crate) fn mounts_check(cx: &Context<'_>) -> Check {
    let probes = cx.probes;
    match &probes.cli_list {
        None if !probes.real_root => Check::new(
            "mounts",
            Status::Skip,
            "nvidia-container-cli is not run under --root",
        ),
        None => Check::new("mounts", Status::Skip, "nvidia-container-cli is not installed"),
        Some(Ok(files)) => Check::new(
            "mounts",
            Status::Ok,
            format!("nvidia-container-cli would mount {} file(s) into GPU containers (--verbose lists them)", files.len()),
        )
        .details(files.clone()),
        Some(Err(e)) => Check::new(
            "mounts",
            Status::Warn,
            format!("`nvidia-container-cli -k list` failed: {e}"),
        )
        .hint("check the driver with `nvidia-smi`; run `nvidia-container-cli -k -d /dev/tty info` for details"),
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;

    fn runc_default() -> MemHost {
        let mut host = configured();
        host.remove(&tp("/usr/bin/crun"));
        host
    }

    fn hybrid(mut host: MemHost, controllers: &str) -> MemHost {
        host.remove(&tp("/sys/fs/cgroup/cgroup.controllers"));
        host.with_file("/sys/fs/cgroup/unified/cgroup.controllers", controllers)
    }

    #[test]
    fn gpu_devices_and_group_ownership() {
        // crun is the default (first installed) and keeps groups: fine.
        assert_check(
            &check(&configured(), &probes(), "gpu-devices"),
            Status::Ok,
            "4 NVIDIA device node(s)",
        );
        let c = check(&runc_default(), &probes(), "gpu-devices");
        assert_check(
            &c,
            Status::Warn,
            "/dev/nvidia0 (video) usable only by its group, while the default runtime is runc",
        );
        assert!(c.hint.unwrap().contains("--group-add keep-groups"));
        // A 0666 device works for anyone, whatever its group.
        let open = runc_default().with_meta("/dev/nvidia0", device(0o666, 44));
        assert_check(
            &check(&open, &probes(), "gpu-devices"),
            Status::Ok,
            "4 NVIDIA device node(s)",
        );
        // On hybrid cgroups with v2 controllers crun needs cgroup v2 first.
        let c = check(
            &hybrid(runc_default(), "cpu memory\n"),
            &probes(),
            "gpu-devices",
        );
        assert!(
            c.hint
                .as_deref()
                .unwrap()
                .contains("crun needs cgroup v2 on this hybrid-cgroup host"),
            "{c:#?}"
        );
        let c = check(&hybrid(runc_default(), ""), &probes(), "gpu-devices");
        assert!(!c.hint.as_deref().unwrap().contains("hybrid"), "{c:#?}");
        // --runtime nvidia runs the toolkit's low-level runtime.
        assert!(c.details.iter().any(|d| d == "containers run with --runtime nvidia use runc (the first of [nvidia-container-runtime] runtimes found)"), "{c:#?}");

        let mut no_gpu = configured();
        for node in ["nvidia0", "nvidiactl", "nvidia-uvm", "nvidia-uvm-tools"] {
            no_gpu.remove(&tp(&format!("/dev/{node}")));
        }
        assert_check(
            &check(&no_gpu, &probes(), "gpu-devices"),
            Status::Warn,
            "no /dev/nvidia* device nodes",
        );
        no_gpu.remove(&tp("/dev"));
        assert_check(
            &check(&no_gpu, &probes(), "gpu-devices"),
            Status::Skip,
            "no /dev under the root",
        );
    }

    #[test]
    fn cgroup_versions() {
        let root = Probes {
            real_root: true,
            ..probes()
        };
        assert_check(
            &check(&configured(), &root, "cgroups"),
            Status::Ok,
            "cgroup v2 (unified), running as root",
        );
        // crun refuses hybrid cgroups only with controllers on the v2
        // mount (crun src/libcrun/cgroup.c).
        let c = check(&hybrid(configured(), "cpu memory pids\n"), &root, "cgroups");
        assert_check(&c, Status::Warn, "cgroup hybrid (v1 with a v2 mount) with controllers on the v2 mount, running as root: crun, the default runtime, refuses");
        assert_check(
            &check(&hybrid(configured(), "\n"), &root, "cgroups"),
            Status::Ok,
            "cgroup hybrid",
        );
        assert_check(
            &check(&hybrid(runc_default(), "cpu\n"), &root, "cgroups"),
            Status::Ok,
            "cgroup hybrid",
        );
        let mut v1 = runc_default();
        v1.remove(&tp("/sys/fs/cgroup/cgroup.controllers"));
        let v1 = v1.with_dir("/sys/fs/cgroup", 0o755);
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
                "nvidia-container-cli: initialization error: nvml error: driver not loaded"
                    .to_owned(),
            )),
            ..probes()
        };
        assert_check(
            &check(&host, &failed, "mounts"),
            Status::Warn,
            "`nvidia-container-cli -k list` failed: nvidia-container-cli: initialization error",
        );
    }
}
