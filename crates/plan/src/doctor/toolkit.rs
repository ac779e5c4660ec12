//! The NVIDIA Container Toolkit and its config.toml: the `toolkit`,
//! `nvidia-config`, `runtime-mode` and `debug-logs` checks.

use std::collections::BTreeMap;

use toml_edit::DocumentMut;

use super::{find_executable, Check, Context, Status, TOOLKIT_BINARIES};
use crate::desired::DesiredState;
use crate::error::{decode, PlanError};
use crate::observe::{Meta, Observe, Observed};
use crate::paths::TargetPath;
use crate::toml_doc::{self, Expect};
use crate::upstream::RUNTIME_MODES;

pub(crate) fn toolkit_check(cx: &Context<'_>) -> Check {
    let mut details = Vec::new();
    let mut found = BTreeMap::new();
    for name in TOOLKIT_BINARIES {
        match find_executable(cx.host, name) {
            Some(p) => {
                let version = cx
                    .probes
                    .tool_versions
                    .get(name)
                    .map(|v| format!(": {v}"))
                    .unwrap_or_default();
                details.push(format!("{p}{version}"));
                found.insert(name, p);
            }
            None => details.push(format!("{name}: not found")),
        }
    }
    let has = |n: &str| found.contains_key(n);
    let hint = "install the NVIDIA Container Toolkit (package nvidia-container-toolkit, from NVIDIA's repository)";
    if cx.desired.strategy == crate::Strategy::Cdi {
        // CDI needs only what makes the spec: nvidia-ctk, or NVIDIA's
        // refresh units (which run it); not the runtime, hook or CLI.
        if has("nvidia-ctk") || cx.refresh.installed() {
            let version = cx
                .probes
                .tool_versions
                .get("nvidia-ctk")
                .map(|v| format!(" ({v})"))
                .unwrap_or_default();
            return Check::new(
                "toolkit",
                Status::Ok,
                format!(
                    "NVIDIA Container Toolkit installed{version}: nvidia-ctk makes the CDI spec"
                ),
            )
            .details(details);
        }
        return Check::new(
            "toolkit",
            Status::Fail,
            "nvidia-ctk is not installed: nothing can generate the CDI spec",
        )
        .hint(format!("{hint}; version 1.12 or later ships nvidia-ctk"))
        .details(details);
    }
    if !has("nvidia-container-runtime")
        && !has("nvidia-container-runtime-hook")
        && !has("nvidia-container-toolkit")
    {
        return Check::new(
            "toolkit",
            Status::Fail,
            "the NVIDIA Container Toolkit is not installed",
        )
        .hint(hint)
        .details(details);
    }
    let missing: Vec<&str> = ["nvidia-container-runtime", "nvidia-container-cli"]
        .into_iter()
        .filter(|n| !has(n))
        .chain(
            (!has("nvidia-container-runtime-hook") && !has("nvidia-container-toolkit"))
                .then_some("nvidia-container-runtime-hook"),
        )
        .collect();
    if !missing.is_empty() {
        return Check::new(
            "toolkit",
            Status::Fail,
            format!(
                "the NVIDIA Container Toolkit is incomplete: {} missing",
                missing.join(", ")
            ),
        )
        .hint(format!(
            "{hint}; nvidia-container-cli comes with libnvidia-container-tools"
        ))
        .details(details);
    }
    let version = cx
        .probes
        .tool_versions
        .get("nvidia-container-runtime")
        .map(|v| format!(" ({v})"))
        .unwrap_or_default();
    Check::new(
        "toolkit",
        Status::Ok,
        format!("NVIDIA Container Toolkit installed{version}"),
    )
    .details(details)
}

/// The NVIDIA config as far as doctor needs it.
pub(crate) struct NvidiaConfig {
    pub path: TargetPath,
    text: String,
    doc: DocumentMut,
}

pub(crate) fn read_nvidia_config(
    desired: &DesiredState,
    host: &dyn Observe,
) -> Result<Option<NvidiaConfig>, PlanError> {
    let path = desired.nvidia_config.clone();
    let bytes = match host.file(&path)? {
        Observed::Absent => return Ok(None),
        Observed::File { bytes, .. } => bytes,
    };
    let text = decode(&path, &bytes)?.to_owned();
    let doc = toml_doc::parse_mut(&path, &text)?;
    Ok(Some(NvidiaConfig { path, text, doc }))
}

impl NvidiaConfig {
    pub(crate) fn get(
        &self,
        table: &str,
        key: &str,
        expect: Expect,
    ) -> Result<Option<&toml_edit::Value>, PlanError> {
        toml_doc::get(
            &self.path,
            &self.text,
            self.doc.as_item(),
            &[table],
            key,
            expect,
        )
    }
}

pub(crate) type ConfigResult = Result<Option<NvidiaConfig>, PlanError>;

pub(crate) fn nvidia_config_check(cx: &Context<'_>, config: &ConfigResult) -> Check {
    let cfg = match config {
        Err(e) => return Check::error("nvidia-config", e),
        Ok(None) => {
            return Check::new(
                "nvidia-config",
                Status::Fail,
                format!("`{}` does not exist", cx.desired.nvidia_config),
            )
            .hint("install the NVIDIA Container Toolkit, then gpu-setup apply")
        }
        Ok(Some(c)) => c,
    };
    let no_cgroups = match cfg.get("nvidia-container-cli", "no-cgroups", Expect::Bool) {
        Ok(v) => v.and_then(toml_edit::Value::as_bool).unwrap_or(false),
        Err(e) => return Check::error("nvidia-config", &e),
    };
    let path = &cfg.path;
    match (cx.probes.rootless, no_cgroups) {
        (true, false) => Check::new(
            "nvidia-config",
            Status::Fail,
            format!("`{path}` has no-cgroups = false: rootless Podman cannot set up the GPU's device cgroup"),
        )
        .hint("gpu-setup apply --no-cgroups true"),
        (true, true) => Check::new(
            "nvidia-config",
            Status::Ok,
            format!("`{path}` has no-cgroups = true, as rootless Podman needs"),
        ),
        (false, true) => Check::new(
            "nvidia-config",
            Status::Ok,
            format!("`{path}` has no-cgroups = true: right for rootless Podman; rootful GPU containers need false"),
        ),
        (false, false) => Check::new(
            "nvidia-config",
            Status::Ok,
            format!("`{path}` has no-cgroups = false: right for rootful Podman; rootless GPU containers need true"),
        ),
    }
}

/// `[nvidia-container-runtime] mode` against the hook path gpu-setup sets
/// up (NVIDIA/nvidia-container-toolkit `internal/info/auto.go`,
/// `cmd/nvidia-container-runtime-hook/hook_config.go` `assertModeIsLegacy`,
/// `internal/modifier/hook_remover.go`): the hook binary (v1.11+) panics
/// for GPU containers unless ITS mode resolves to legacy, which `auto`
/// does on NVML and WSL hosts (it defaults to legacy; csv on Tegra); an
/// explicit cdi, jit-cdi or csv mode breaks it unless
/// `[nvidia-container-runtime-hook] skip-mode-detection = true` (v1.13+).
/// The runtime (`--runtime nvidia`) resolves `auto` to legacy up to v1.17
/// and jit-cdi from v1.18, and strips NVIDIA prestart hooks in
/// non-legacy modes; Podman 5.0+ passes hooks.d hooks as createRuntime,
/// which it never strips.
pub(crate) fn runtime_mode_check(cx: &Context<'_>, config: &ConfigResult) -> Check {
    let Ok(Some(cfg)) = config else {
        return Check::new(
            "runtime-mode",
            Status::Skip,
            "no readable config.toml (see nvidia-config)",
        );
    };
    let mode = match cfg.get("nvidia-container-runtime", "mode", Expect::Str) {
        Ok(v) => v
            .and_then(toml_edit::Value::as_str)
            .unwrap_or("auto")
            .to_owned(),
        Err(e) => return Check::error("runtime-mode", &e),
    };
    let skip = matches!(
        cfg.get("nvidia-container-runtime-hook", "skip-mode-detection", Expect::Bool),
        Ok(Some(v)) if v.as_bool() == Some(true)
    ) && cx.toolkit.has_skip_mode_detection();
    let tk = cx.toolkit;
    let version = tk
        .version
        .map_or("unknown version".to_owned(), |v| v.to_string());
    let runtime_mode = if mode == "auto" {
        tk.runtime_auto_mode()
    } else {
        mode.as_str()
    };
    let mut details = vec![
        format!("[nvidia-container-runtime] mode = {mode:?} (toolkit {version})"),
        format!("containers run with --runtime nvidia use mode {runtime_mode}"),
    ];
    if tk.runtime_strips_hooks(runtime_mode) {
        details.push(if cx.rules.hooks_as_create_runtime() {
            "in that mode the runtime strips NVIDIA prestart hooks, but Podman 5.0+ passes hooks.d hooks as createRuntime, which it keeps".to_owned()
        } else {
            "in that mode the runtime strips the NVIDIA prestart hook and injects the GPU itself (CDI)".to_owned()
        });
    }
    if !RUNTIME_MODES.contains(&mode.as_str()) {
        return Check::new(
            "runtime-mode",
            Status::Fail,
            format!("runtime mode {mode:?} is not one the NVIDIA toolkit knows ({}): the runtime and the hook fail", RUNTIME_MODES.join(", ")),
        )
        .hint(format!("set `mode = \"auto\"` under [nvidia-container-runtime] in {}", cfg.path))
        .details(details);
    }
    if mode != "auto" && mode != "legacy" && tk.hook_requires_legacy() && !skip {
        return Check::new(
            "runtime-mode",
            Status::Fail,
            format!("runtime mode is {mode}: the NVIDIA hook (toolkit 1.11 and later) refuses GPU containers unless its mode is legacy, so the OCI hook gpu-setup installs fails them"),
        )
        .hint(format!(
            "set `mode = \"auto\"` (or \"legacy\") under [nvidia-container-runtime] in {}, or use CDI instead of the hook",
            cfg.path
        ))
        .details(details);
    }
    let why = match mode.as_str() {
        "legacy" => "the NVIDIA hook runs".to_owned(),
        "auto" => "the NVIDIA hook resolves it to legacy on hosts with NVML, and runs".to_owned(),
        _ => "skip-mode-detection lets the NVIDIA hook run".to_owned(),
    };
    Check::new(
        "runtime-mode",
        Status::Ok,
        format!("runtime mode is {mode}: {why}"),
    )
    .details(details)
}

pub(crate) fn debug_logs_check(cx: &Context<'_>, config: &ConfigResult) -> Check {
    let Ok(Some(cfg)) = config else {
        return Check::new(
            "debug-logs",
            Status::Skip,
            "no readable config.toml (see nvidia-config)",
        );
    };
    let rootless_use = matches!(
        cfg.get("nvidia-container-cli", "no-cgroups", Expect::Bool),
        Ok(Some(v)) if v.as_bool() == Some(true)
    );
    let mut logs = Vec::new();
    for table in ["nvidia-container-cli", "nvidia-container-runtime"] {
        match cfg.get(table, "debug", Expect::Str) {
            Ok(Some(v)) => {
                if let Some(s) = v.as_str() {
                    logs.push((table, s.to_owned()));
                }
            }
            Ok(None) => {}
            Err(e) => return Check::error("debug-logs", &e),
        }
    }
    if logs.is_empty() {
        return Check::new("debug-logs", Status::Ok, "no debug log is set");
    }
    let details: Vec<String> = logs
        .iter()
        .map(|(t, l)| format!("[{t}] debug = {l:?}"))
        .collect();
    for (table, log) in &logs {
        let Ok(log_path) = TargetPath::file(log) else {
            return Check::new(
                "debug-logs",
                Status::Fail,
                format!("[{table}] debug = {log:?} is not an absolute file path"),
            )
            .hint("set an absolute path such as /var/log/nvidia-container-toolkit.log")
            .details(details);
        };
        match crate::warnings::unsafe_log_path(cx.host, &log_path) {
            Ok(None) => {}
            Ok(Some(unsafe_path)) => {
                return Check::new(
                    "debug-logs",
                    Status::Fail,
                    format!("{unsafe_path}; the runtime opens the log as root, following symlinks"),
                )
                .hint("use a log path under a root-owned directory such as /var/log")
                .details(details)
            }
            Err(e) => return Check::error("debug-logs", &e),
        }
        let metas: Vec<(TargetPath, Meta)> = log_path
            .ancestors()
            .into_iter()
            .filter_map(|d| cx.host.meta(&d).ok().flatten().map(|m| (d, m)))
            .collect();
        if rootless_use {
            if let Some((dir, m)) = metas.last() {
                if m.uid == 0 && m.mode & 0o002 == 0 {
                    return Check::new(
                        "debug-logs",
                        Status::Warn,
                        format!("no-cgroups = true (rootless use), but debug log `{log_path}` is in `{dir}`, which an unprivileged hook cannot write"),
                    )
                    .hint(format!("unset [{table}] debug, or point it at a directory the container user owns"))
                    .details(details);
                }
            }
        }
    }
    Check::new(
        "debug-logs",
        Status::Ok,
        format!("{} debug log(s) set, in safe directories", logs.len()),
    )
    .details(details)
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use crate::observe::Kind;

    #[test]
    fn toolkit_problems() {
        let host = configured();
        let mut no_cli = host.clone();
        no_cli.remove(&tp("/usr/bin/nvidia-container-cli"));
        assert_check(
            &check(&no_cli, &probes(), "toolkit"),
            Status::Fail,
            "the NVIDIA Container Toolkit is incomplete: nvidia-container-cli missing",
        );
        let mut none = host.clone();
        for bin in TOOLKIT_BINARIES {
            none.remove(&tp(&format!("/usr/bin/{bin}")));
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
            &"/usr/bin/nvidia-container-runtime: NVIDIA Container Runtime version 1.13.5"
                .to_owned()
        ));
    }

    #[test]
    fn nvidia_config_problems() {
        let host = configured();
        let nv = tp(NV);
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

    fn with_mode(toml: &str) -> MemHost {
        let mut host = configured();
        host.put(&tp(NV), toml.as_bytes().to_vec());
        host
    }

    #[test]
    fn runtime_modes_follow_the_toolkit_sources() {
        // internal/info/auto.go: the hook resolves auto to legacy (its
        // default) on NVML hosts, so auto and legacy are fine for the hook.
        let c = check(&configured(), &toolkit("1.18.0"), "runtime-mode");
        assert_check(
            &c,
            Status::Ok,
            "runtime mode is auto: the NVIDIA hook resolves it to legacy",
        );
        // The runtime resolves auto to jit-cdi from 1.18, legacy before.
        assert!(
            c.details
                .contains(&"containers run with --runtime nvidia use mode jit-cdi".to_owned()),
            "{c:#?}"
        );
        let c = check(&configured(), &toolkit("1.17.4"), "runtime-mode");
        assert!(
            c.details
                .contains(&"containers run with --runtime nvidia use mode legacy".to_owned()),
            "{c:#?}"
        );
        assert_check(
            &check(
                &with_mode("[nvidia-container-cli]\n"),
                &toolkit("1.13.5"),
                "runtime-mode",
            ),
            Status::Ok,
            "runtime mode is auto",
        );
        // hook_config.go assertModeIsLegacy: an explicit cdi mode breaks
        // the hook (v1.11+) unless skip-mode-detection (v1.13+).
        let cdi = with_mode("[nvidia-container-runtime]\nmode = \"cdi\"\n");
        let c = check(&cdi, &toolkit("1.13.5"), "runtime-mode");
        assert_check(
            &c,
            Status::Fail,
            "runtime mode is cdi: the NVIDIA hook (toolkit 1.11 and later) refuses GPU containers",
        );
        assert!(c
            .hint
            .unwrap()
            .starts_with("set `mode = \"auto\"` (or \"legacy\")"));
        let skip = with_mode("[nvidia-container-runtime]\nmode = \"cdi\"\n[nvidia-container-runtime-hook]\nskip-mode-detection = true\n");
        assert_check(
            &check(&skip, &toolkit("1.13.5"), "runtime-mode"),
            Status::Ok,
            "runtime mode is cdi: skip-mode-detection",
        );
        assert_check(
            &check(&cdi, &toolkit("1.10.0"), "runtime-mode"),
            Status::Ok,
            "runtime mode is cdi",
        );
        // Valid modes: auto, legacy, csv, cdi, jit-cdi.
        assert_check(
            &check(
                &with_mode("[nvidia-container-runtime]\nmode = \"magic\"\n"),
                &toolkit("1.18.0"),
                "runtime-mode",
            ),
            Status::Fail,
            "runtime mode \"magic\" is not one the NVIDIA toolkit knows",
        );
        // Podman 5.0+ passes the hook as createRuntime: never stripped.
        let p5 = Probes {
            podman_version: Some("5.0.0".into()),
            ..toolkit("1.18.0")
        };
        let c = check(&configured(), &p5, "runtime-mode");
        assert!(
            c.details
                .iter()
                .any(|d| d.contains("createRuntime, which it keeps")),
            "{c:#?}"
        );
    }

    #[test]
    fn debug_logs() {
        let host = configured();
        let nv = tp(NV);
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
        assert_check(
            &check(&tmp, &probes(), "debug-logs"),
            Status::Fail,
            "debug log `/tmp/nv.log` is unsafe: `/tmp` is writable by group or others (mode 1777); the runtime opens the log as root",
        );
        // A directory another user owns is as unsafe as a writable one.
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
        assert_check(
            &check(&var_log, &probes(), "debug-logs"),
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
}
