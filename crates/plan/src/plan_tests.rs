//! Planner tests: given a host, when planning a desired state, then these
//! changes and warnings.

use crate::desired::{Presence, Settings};
use crate::{
    plan, plan_with, Action, DesiredState, HostFacts, MemHost, Plan, PlanError, TargetPath,
};

const STOCK_CONF: &str = "[engine]\n#hooks_dir = []\n\n[engine.runtimes]\n#crun = [\n#  \"/usr/bin/crun\",\n#]\n\n[engine.volume_plugins]\n\n[machine]\n";
const STOCK_NV: &str = "[nvidia-container-cli]\nload-kmods = true\n#no-cgroups = false\n";

fn stock() -> MemHost {
    MemHost::new()
        .with_file("/usr/share/containers/containers.conf", STOCK_CONF)
        .with_file("/etc/nvidia-container-runtime/config.toml", STOCK_NV)
        .with_exe("/usr/bin/nvidia-container-runtime")
        .with_exe("/usr/bin/nvidia-container-toolkit")
}

fn desired(s: Settings) -> DesiredState {
    DesiredState::from_settings(&s).unwrap()
}

fn codes(p: &Plan) -> Vec<&str> {
    p.warnings.iter().map(|w| w.code.as_ref()).collect()
}

fn summary(p: &Plan) -> Vec<(String, Action)> {
    p.changes
        .iter()
        .map(|c| (c.path.to_string(), c.action))
        .collect()
}

#[test]
fn stock_host_gets_three_changes_then_nothing() {
    let mut host = stock();
    let p = plan(&DesiredState::default(), &host).unwrap();
    assert_eq!(
        summary(&p),
        [
            (
                "/etc/containers/containers.conf.d/99-nvidia.conf".to_owned(),
                Action::Create
            ),
            (
                "/etc/nvidia-container-runtime/config.toml".to_owned(),
                Action::Modify
            ),
            (
                "/usr/share/containers/oci/hooks.d/oci-nvidia-hook.json".to_owned(),
                Action::Create
            ),
        ]
    );
    assert_eq!(codes(&p), ["no-cgroups-rootful"]);
    host.apply(&p);
    let again = plan(&DesiredState::default(), &host).unwrap();
    assert!(again.is_empty(), "{:?}", summary(&again));
}

#[test]
fn absent_removes_what_present_added() {
    let mut host = stock();
    host.apply(&plan(&DesiredState::default(), &host).unwrap());
    let absent = desired(Settings {
        state: Some(Presence::Absent),
        ..Settings::default()
    });
    let p = plan(&absent, &host).unwrap();
    assert_eq!(
        summary(&p),
        [
            (
                "/etc/containers/containers.conf.d/99-nvidia.conf".to_owned(),
                Action::Delete
            ),
            (
                "/etc/nvidia-container-runtime/config.toml".to_owned(),
                Action::Modify
            ),
            (
                "/usr/share/containers/oci/hooks.d/oci-nvidia-hook.json".to_owned(),
                Action::Delete
            ),
        ]
    );
    host.apply(&p);
    assert!(plan(&absent, &host).unwrap().is_empty());
    // Nothing managed is left; an absent host needs no config.toml created.
    assert!(plan(&absent, &MemHost::new()).unwrap().is_empty());
}

#[test]
fn dropin_with_admin_settings_is_kept_on_removal() {
    let text =
        "[engine.runtimes]\nnvidia = [\"/usr/bin/nvidia-container-runtime\"]\n\n[engine]\nmy = 1\n";
    let host = stock().with_file("/etc/containers/containers.conf.d/99-nvidia.conf", text);
    let absent = desired(Settings {
        state: Some(Presence::Absent),
        ..Settings::default()
    });
    let p = plan(&absent, &host).unwrap();
    let conf = &p.changes[0];
    assert_eq!(conf.action, Action::Modify);
    assert_eq!(
        conf.after.as_deref(),
        Some(&b"[engine.runtimes]\n\n[engine]\nmy = 1\n"[..])
    );
}

#[test]
fn hook_differing_only_in_layout_is_unchanged() {
    let host = stock().with_file(
        "/usr/share/containers/oci/hooks.d/oci-nvidia-hook.json",
        r#"{"stages":["prestart"],"when":{"commands":[".*"],"always":true},"version":"1.0.0",
            "hook":{"env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
            "args":["nvidia-container-toolkit","prestart"],"path":"/usr/bin/nvidia-container-toolkit"}}"#,
    );
    let p = plan(&DesiredState::default(), &host).unwrap();
    assert!(!p.changes.iter().any(|c| c.path.as_str().ends_with(".json")));
}

#[test]
fn a_different_hook_is_replaced() {
    let host = stock().with_file(
        "/usr/share/containers/oci/hooks.d/oci-nvidia-hook.json",
        include_str!(
            "../../../tests/fixtures/hooks/nvidia-container-toolkit-v1.13.5-oci-nvidia-hook.json"
        ),
    );
    let p = plan(&DesiredState::default(), &host).unwrap();
    let hook = p
        .changes
        .iter()
        .find(|c| c.path.as_str().ends_with(".json"))
        .unwrap();
    assert_eq!(hook.action, Action::Modify);
    assert_eq!(
        hook.after.as_deref(),
        Some(crate::hook::TEMPLATE.as_bytes())
    );
}

#[test]
fn missing_executables_are_warned_with_the_modern_hook_hint() {
    let host = MemHost::new().with_exe("/usr/bin/nvidia-container-runtime-hook");
    let p = plan(&DesiredState::default(), &host).unwrap();
    assert_eq!(
        codes(&p),
        [
            "runtime-missing",
            "hook-executable-missing",
            "no-cgroups-rootful"
        ]
    );
    let hint = p.warnings[1].hint.as_deref().unwrap();
    assert!(
        hint.contains("--hook-path /usr/bin/nvidia-container-runtime-hook"),
        "{hint}"
    );
}

#[test]
fn later_dropin_overriding_our_runtime_is_warned() {
    let host = stock().with_file(
        "/etc/containers/containers.conf.d/zz-local.conf",
        "[engine.runtimes]\nnvidia = [\"/opt/other\"]\n",
    );
    let p = plan(&DesiredState::default(), &host).unwrap();
    assert!(codes(&p).contains(&"runtime-overridden"), "{:?}", codes(&p));
    let w = p
        .warnings
        .iter()
        .find(|w| w.code == "runtime-overridden")
        .unwrap();
    assert!(w
        .message
        .contains("/etc/containers/containers.conf.d/zz-local.conf"));
    // An earlier drop-in is overridden by ours: no warning.
    let host = stock().with_file(
        "/etc/containers/containers.conf.d/00-local.conf",
        "[engine.runtimes]\nnvidia = [\"/opt/other\"]\n",
    );
    assert!(!codes(&plan(&DesiredState::default(), &host).unwrap()).contains(&"runtime-overridden"));
}

#[test]
fn hooks_dir_that_misses_our_hook_is_warned() {
    let host = stock().with_file(
        "/etc/containers/containers.conf",
        "[engine]\nhooks_dir = [\"/etc/containers/oci/hooks.d\"]\n",
    );
    let p = plan(&DesiredState::default(), &host).unwrap();
    assert!(codes(&p).contains(&"hook-dir-not-read"), "{:?}", codes(&p));
}

#[test]
fn same_named_hook_in_higher_priority_dir_is_warned() {
    let host = stock()
        .with_file(
            "/etc/containers/containers.conf",
            "[engine]\nhooks_dir = [\"/usr/share/containers/oci/hooks.d\", \"/etc/containers/oci/hooks.d\"]\n",
        )
        .with_file("/etc/containers/oci/hooks.d/oci-nvidia-hook.json", "{}");
    let p = plan(&DesiredState::default(), &host).unwrap();
    assert!(codes(&p).contains(&"hook-masked"), "{:?}", codes(&p));
}

#[test]
fn nvidia_cdi_spec_is_warned() {
    let host = stock()
        .with_file(
            "/etc/cdi/nvidia.yaml",
            "cdiVersion: 0.5.0\nkind: nvidia.com/gpu\n",
        )
        .with_file("/etc/cdi/other.yaml", "kind: example.com/thing\n");
    let p = plan(&DesiredState::default(), &host).unwrap();
    let cdi: Vec<_> = p
        .warnings
        .iter()
        .filter(|w| w.code == "cdi-conflict")
        .collect();
    assert_eq!(cdi.len(), 1);
    assert!(cdi[0].message.contains("/etc/cdi/nvidia.yaml"));
}

#[test]
fn conf_podman_does_not_read_is_warned() {
    let s = Settings {
        containers_conf: Some("/etc/containers/nvidia.conf".into()),
        ..Settings::default()
    };
    let p = plan(&desired(s), &stock()).unwrap();
    assert!(
        codes(&p).contains(&"containers-conf-not-read"),
        "{:?}",
        codes(&p)
    );
}

#[test]
fn removing_the_default_runtime_is_warned() {
    let host = stock().with_file(
        "/etc/containers/containers.conf",
        "[engine]\nruntime = \"nvidia\"\n[engine.runtimes]\nnvidia = [\"/usr/bin/nvidia-container-runtime\"]\n",
    );
    let s = Settings {
        state: Some(Presence::Absent),
        containers_conf: Some("/etc/containers/containers.conf".into()),
        ..Settings::default()
    };
    let p = plan(&desired(s), &host).unwrap();
    assert!(
        codes(&p).contains(&"default-runtime-removed"),
        "{:?}",
        codes(&p)
    );
}

#[test]
fn unsafe_log_dir_is_an_error_unless_allowed() {
    let host = stock().with_dir("/tmp", 0o1777);
    let s = Settings {
        cli_debug_log: Some("/tmp/nv.log".into()),
        ..Settings::default()
    };
    let err = plan(&desired(s.clone()), &host).unwrap_err();
    assert!(matches!(err, PlanError::UnsafeLogPath { .. }));
    assert_eq!(
        err.to_string(),
        "debug log `/tmp/nv.log` is unsafe: `/tmp` is writable by group or others (mode 1777)"
    );
    let allowed = Settings {
        allow_unsafe_log_path: Some(true),
        ..s
    };
    let p = plan(&desired(allowed), &host).unwrap();
    assert!(codes(&p).contains(&"unsafe-log-path"));
    let safe = Settings {
        cli_debug_log: Some("/var/log/nv.log".into()),
        ..Settings::default()
    };
    let host = stock().with_dir("/var/log", 0o755);
    assert!(!codes(&plan(&desired(safe), &host).unwrap()).contains(&"unsafe-log-path"));
}

#[test]
fn broken_other_conf_is_an_error() {
    let host = stock().with_file("/etc/containers/containers.conf", "[engine\n");
    let err = plan(&DesiredState::default(), &host).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("`/etc/containers/containers.conf` line 1, column 8:"),
        "{err}"
    );
}

#[test]
fn containers_conf_env_is_the_only_file_podman_reads() {
    // containers/common v0.58.0 pkg/config/new.go systemConfigs: with
    // $CONTAINERS_CONF set, that file alone is read (no drop-ins).
    let host = stock().with_file("/etc/custom.conf", "[engine]\n");
    let facts = HostFacts {
        containers_conf_env: Some(TargetPath::new("/etc/custom.conf").unwrap()),
        ..HostFacts::default()
    };
    let p = plan_with(&DesiredState::default(), &facts, &host).unwrap();
    let w = p
        .warnings
        .iter()
        .find(|w| w.code == "containers-conf-not-read")
        .unwrap();
    assert_eq!(
        w.hint.as_deref(),
        Some("$CONTAINERS_CONF is set to `/etc/custom.conf`: Podman then reads that file alone (no drop-ins); unset it, or pass --containers-conf /etc/custom.conf")
    );
    // Editing that very file is read.
    let s = Settings {
        containers_conf: Some("/etc/custom.conf".into()),
        ..Settings::default()
    };
    let p = plan_with(&desired(s), &facts, &host).unwrap();
    assert!(
        !codes(&p).contains(&"containers-conf-not-read"),
        "{:?}",
        codes(&p)
    );
}

#[test]
fn rootless_user_files_are_read_last() {
    let host = stock().with_file(
        "/home/u/.config/containers/containers.conf.d/gpu.conf",
        "[engine.runtimes]\nnvidia = [\"/home/u/bin/runtime\"]\n",
    );
    let facts = HostFacts {
        user_config_dir: Some(TargetPath::new("/home/u/.config/containers").unwrap()),
        ..HostFacts::default()
    };
    let p = plan_with(&DesiredState::default(), &facts, &host).unwrap();
    let w = p
        .warnings
        .iter()
        .find(|w| w.code == "runtime-overridden")
        .unwrap();
    assert!(
        w.message
            .contains("/home/u/.config/containers/containers.conf.d/gpu.conf"),
        "{}",
        w.message
    );
    // Root does not read them.
    assert!(!codes(&plan(&DesiredState::default(), &host).unwrap()).contains(&"runtime-overridden"));
}

#[test]
fn managed_files_must_have_the_names_their_readers_read() {
    let refused = |s: Settings| DesiredState::from_settings(&s).unwrap_err().to_string();
    assert_eq!(
        refused(Settings {
            hook_file: Some("/usr/share/containers/oci/hooks.d/nvidia.hook".into()),
            ..Settings::default()
        }),
        "invalid hook file: `/usr/share/containers/oci/hooks.d/nvidia.hook` does not end in `.json`: Podman reads only `*.json` hook files"
    );
    assert_eq!(
        refused(Settings {
            containers_conf: Some("/etc/containers/podman.toml".into()),
            ..Settings::default()
        }),
        "invalid containers.conf path: `/etc/containers/podman.toml` does not end in `.conf`: Podman reads only `*.conf` drop-ins and containers.conf files"
    );
    assert_eq!(
        refused(Settings {
            nvidia_config: Some("/proc/self/x.toml".into()),
            ..Settings::default()
        }),
        "invalid NVIDIA config path: `/proc/self/x.toml`: it is under /proc, a kernel filesystem"
    );
}

#[test]
fn vendor_main_file_hidden_by_etc_main_file_is_noted_for_podman_6() {
    let host = stock().with_file("/etc/containers/containers.conf", "[engine]\n");
    let s = Settings {
        containers_conf: Some("/usr/share/containers/containers.conf".into()),
        ..Settings::default()
    };
    let p = plan(&desired(s.clone()), &host).unwrap();
    assert!(codes(&p).contains(&"main-conf-shadowed"), "{:?}", codes(&p));
    assert!(!codes(&plan(&desired(s), &stock()).unwrap()).contains(&"main-conf-shadowed"));
}

const SPEC: &str =
    "cdiVersion: \"0.5.0\"\nkind: nvidia.com/gpu\ndevices:\n- name: all\n  containerEdits: {}\n";
const CDI: &str = "/etc/cdi/nvidia.yaml";
const HOOK: &str = "/usr/share/containers/oci/hooks.d/oci-nvidia-hook.json";

fn cdi(generated: &str) -> DesiredState {
    let mut d = desired(Settings {
        strategy: Some(crate::Strategy::Cdi),
        ..Settings::default()
    });
    d.cdi_generated = Some(generated.as_bytes().to_vec());
    d
}

#[test]
fn cdi_strategy_writes_the_generated_spec_removes_the_hook_and_leaves_the_rest() {
    let mut host = stock();
    host.apply(&plan(&DesiredState::default(), &host).unwrap());
    let p = plan(&cdi(SPEC), &host).unwrap();
    assert_eq!(
        summary(&p),
        [
            (HOOK.to_owned(), Action::Delete),
            (CDI.to_owned(), Action::Create)
        ]
    );
    let spec = p.changes[1].after.as_deref().unwrap();
    assert_eq!(spec, format!("{}{SPEC}", crate::cdi::MARKER).as_bytes());
    host.apply(&p);
    assert!(plan(&cdi(SPEC), &host).unwrap().is_empty());
    // A driver upgrade: the spec nvidia-ctk prints changes, and so does the plan.
    let newer = SPEC.replace("all", "gpu0");
    let p = plan(&cdi(&newer), &host).unwrap();
    assert_eq!(summary(&p), [(CDI.to_owned(), Action::Modify)]);
    // Back to the hook: one plan writes the hook and removes our spec.
    let p = plan(&DesiredState::default(), &host).unwrap();
    assert_eq!(
        summary(&p),
        [
            (HOOK.to_owned(), Action::Create),
            (CDI.to_owned(), Action::Delete)
        ]
    );
}

#[test]
fn cdi_strategy_leaves_the_spec_to_nvidias_refresh_units() {
    let host = stock()
        .with_file(
            "/usr/lib/systemd/system/nvidia-cdi-refresh.path",
            "[Path]\n",
        )
        .with_file("/var/run/cdi/nvidia.yaml", SPEC);
    let p = plan(&cdi(SPEC), &host).unwrap();
    assert!(
        p.changes.iter().all(|c| c.path.as_str() != CDI),
        "{:?}",
        summary(&p)
    );
    assert!(codes(&p).contains(&"cdi-refresh-managed"));
    assert!(codes(&p).contains(&"cdi-refresh-disabled"));
    // A spec gpu-setup wrote before the units came is removed.
    let ours = host
        .clone()
        .with_file(CDI, format!("{}{SPEC}", crate::cdi::MARKER));
    let p = plan(&cdi(SPEC), &ours).unwrap();
    assert!(summary(&p).contains(&(CDI.to_owned(), Action::Delete)));
}

#[test]
fn hook_strategy_hints_at_the_refresh_units_that_bring_a_spec_back() {
    let host = stock().with_file("/var/run/cdi/nvidia.yaml", SPEC);
    let p = plan(&DesiredState::default(), &host).unwrap();
    let w = p
        .warnings
        .iter()
        .find(|w| w.code == "cdi-conflict")
        .unwrap();
    assert!(w
        .hint
        .as_deref()
        .unwrap()
        .starts_with("remove `/var/run/cdi/nvidia.yaml`"));
    let refreshed = host.with_file("/lib/systemd/system/nvidia-cdi-refresh.path", "[Path]\n");
    let p = plan(&DesiredState::default(), &refreshed).unwrap();
    let w = p
        .warnings
        .iter()
        .find(|w| w.code == "cdi-conflict")
        .unwrap();
    assert!(
        w.hint.as_deref().unwrap().starts_with("NVIDIA's refresh units regenerate it at every boot, and their package turns them back on at every upgrade (docs/heal.md): point them elsewhere with NVIDIA_CTK_CDI_OUTPUT_FILE_PATH in /etc/nvidia-container-toolkit/nvidia-cdi-refresh.env"),
        "{w:?}"
    );
}

#[test]
fn hook_strategy_notices_refresh_units_an_upgrade_turned_back_on() {
    let units = stock().with_file(
        "/usr/lib/systemd/system/nvidia-cdi-refresh.path",
        "[Path]\n",
    );
    // Installed but disabled (the admin's `systemctl disable`): quiet.
    let p = plan(&DesiredState::default(), &units).unwrap();
    assert!(
        !codes(&p).contains(&"cdi-refresh-enabled"),
        "{:?}",
        codes(&p)
    );
    // The upgrade's `systemctl enable --now` is back: no spec yet, but the
    // next boot writes one where Podman reads.
    let enabled = units.with_file(
        "/etc/systemd/system/multi-user.target.wants/nvidia-cdi-refresh.path",
        "",
    );
    let p = plan(&DesiredState::default(), &enabled).unwrap();
    let w = p
        .warnings
        .iter()
        .find(|w| w.code == "cdi-refresh-enabled")
        .unwrap();
    assert_eq!(w.level, crate::Level::Warning);
    assert_eq!(w.message, "nvidia-cdi-refresh.path is enabled (a toolkit upgrade turns it back on): at the next boot or driver change it writes `/var/run/cdi/nvidia.yaml`, which Podman reads, and NVIDIA documents CDI as conflicting with the OCI hook");
    assert!(
        w.hint.as_deref().unwrap().starts_with("set NVIDIA_CTK_CDI_OUTPUT_FILE_PATH=/var/lib/nvidia-cdi/nvidia.yaml (a directory Podman does not read) in /etc/nvidia-container-toolkit/nvidia-cdi-refresh.env"),
        "{w:?}"
    );
    // The advice that lasts: the env file moves the output out of Podman's dirs.
    let moved = enabled.clone().with_file(
        crate::paths::well_known::REFRESH_ENV,
        "NVIDIA_CTK_CDI_OUTPUT_FILE_PATH=/var/lib/nvidia-cdi/nvidia.yaml\n",
    );
    let p = plan(&DesiredState::default(), &moved).unwrap();
    assert!(
        !codes(&p).contains(&"cdi-refresh-enabled"),
        "{:?}",
        codes(&p)
    );
    // The spec is there already: the conflict warning says it, once.
    let there = enabled.with_file("/var/run/cdi/nvidia.yaml", SPEC);
    let p = plan(&DesiredState::default(), &there).unwrap();
    assert!(!codes(&p).contains(&"cdi-refresh-enabled"));
    assert!(codes(&p).contains(&"cdi-conflict"));
}

#[test]
fn cdi_strategy_follows_the_refresh_units_env_file() {
    let host = stock()
        .with_file(
            "/usr/lib/systemd/system/nvidia-cdi-refresh.path",
            "[Path]\n",
        )
        .with_file(
            "/etc/systemd/system/multi-user.target.wants/nvidia-cdi-refresh.path",
            "",
        )
        .with_file(
            crate::paths::well_known::REFRESH_ENV,
            "NVIDIA_CTK_CDI_OUTPUT_FILE_PATH=/var/lib/nvidia-cdi/nvidia.yaml\n",
        );
    let p = plan(&cdi(SPEC), &host).unwrap();
    let w = p
        .warnings
        .iter()
        .find(|w| w.code == "cdi-spec-not-read")
        .unwrap();
    assert!(
        w.message.contains("does not include `/var/lib/nvidia-cdi`"),
        "{w:?}"
    );
}

#[test]
fn cdi_strategy_warns_about_another_nvidia_hook() {
    let host = stock().with_file(
        "/usr/share/containers/oci/hooks.d/nvidia.json",
        r#"{"version": "1.0.0", "hook": {"path": "/usr/bin/nvidia-container-runtime-hook"}, "stages": ["prestart"]}"#,
    );
    let p = plan(&cdi(SPEC), &host).unwrap();
    assert!(
        codes(&p).contains(&"nvidia-hook-remains"),
        "{:?}",
        codes(&p)
    );
}

const HOOK_FILE: &str = "/usr/share/containers/oci/hooks.d/oci-nvidia-hook.json";
const HOOK_1_10: &str = include_str!(
    "../../../tests/fixtures/hooks/nvidia-container-toolkit-v1.10.0-oci-nvidia-hook.json"
);
const HOOK_1_13: &str = include_str!(
    "../../../tests/fixtures/hooks/nvidia-container-toolkit-v1.13.5-oci-nvidia-hook.json"
);

/// A host configured by gpu-setup except for the hook, with the toolkit's
/// binaries laid out as each version's packages do: up to v1.10 the binary
/// is `nvidia-container-toolkit` and `nvidia-container-runtime-hook` links
/// to it (the v1.10.0 rpm spec's %posttrans, the deb's postinst); from
/// v1.11 the binary is `nvidia-container-runtime-hook` and
/// `nvidia-container-toolkit` links to it (v1.13.5's %posttrans, postinst).
fn toolkit_layout(version: &str, hook_file: &str) -> MemHost {
    let mut host = stock();
    host.apply(&plan(&DesiredState::default(), &host).unwrap());
    host.remove(&TargetPath::new("/usr/bin/nvidia-container-toolkit").unwrap());
    let host = if version == "1.10" {
        host.with_exe("/usr/bin/nvidia-container-toolkit")
            .with_link(
                "/usr/bin/nvidia-container-runtime-hook",
                "/usr/bin/nvidia-container-toolkit",
            )
    } else {
        host.with_exe("/usr/bin/nvidia-container-runtime-hook")
            .with_link(
                "/usr/bin/nvidia-container-toolkit",
                "/usr/bin/nvidia-container-runtime-hook",
            )
    };
    host.with_file(HOOK_FILE, hook_file)
}

#[test]
fn a_package_hook_running_the_same_binary_is_left_alone() {
    // v1.10's file is gpu-setup's own hook, byte for byte in meaning.
    let p = plan(&DesiredState::default(), &toolkit_layout("1.10", HOOK_1_10)).unwrap();
    assert!(p.is_empty(), "{:?}", summary(&p));
    // v1.13.5's runs nvidia-container-runtime-hook, which
    // /usr/bin/nvidia-container-toolkit links to: the same file, the same
    // stages, `when`, env and args but argv[0].
    let host = toolkit_layout("1.13", HOOK_1_13);
    let p = plan(&DesiredState::default(), &host).unwrap();
    assert!(p.is_empty(), "{:?}", summary(&p));
    assert!(
        !codes(&p).contains(&"hook-executable-missing"),
        "{:?}",
        codes(&p)
    );
    // An explicit --hook-path means exactly that path.
    let exact = desired(Settings {
        hook_path: Some("/usr/bin/nvidia-container-toolkit".into()),
        ..Settings::default()
    });
    assert_eq!(
        summary(&plan(&exact, &host).unwrap()),
        [(HOOK_FILE.to_owned(), Action::Modify)]
    );
    // v1.13.5's file on a v1.10 layout: nvidia-container-runtime-hook is a
    // link to nvidia-container-toolkit, so the same file too.
    let p = plan(&DesiredState::default(), &toolkit_layout("1.10", HOOK_1_13)).unwrap();
    assert!(p.is_empty(), "{:?}", summary(&p));
}

#[test]
fn a_hook_that_differs_in_more_than_its_executable_is_rewritten() {
    let host = toolkit_layout("1.13", HOOK_1_13);
    let differ = |text: String| {
        let host = host.clone().with_file(HOOK_FILE, text);
        summary(&plan(&DesiredState::default(), &host).unwrap())
    };
    let rewritten = [(HOOK_FILE.to_owned(), Action::Modify)];
    // Another binary.
    let other = host.clone().with_exe("/opt/hook").with_file(
        HOOK_FILE,
        HOOK_1_13.replace("/usr/bin/nvidia-container-runtime-hook", "/opt/hook"),
    );
    assert_eq!(
        summary(&plan(&DesiredState::default(), &other).unwrap()),
        rewritten
    );
    // Another stage, environment, condition or argument.
    assert_eq!(
        differ(HOOK_1_13.replace("\"prestart\"]\n}", "\"poststop\"]\n}")),
        rewritten
    );
    assert_eq!(
        differ(HOOK_1_13.replace("PATH=/usr/local/sbin:", "PATH=")),
        rewritten
    );
    assert_eq!(
        differ(HOOK_1_13.replace("\"always\": true", "\"always\": false")),
        rewritten
    );
    assert_eq!(
        differ(HOOK_1_13.replace("\"prestart\"],\n", "\"poststart\"],\n")),
        rewritten
    );
    // The same binary but missing: nothing the same file can be.
    let mut gone = host.clone();
    gone.remove(&TargetPath::new("/usr/bin/nvidia-container-runtime-hook").unwrap());
    assert_eq!(
        summary(&plan(&DesiredState::default(), &gone).unwrap()),
        rewritten
    );
}

#[test]
fn a_runtime_entry_whose_first_existing_path_is_the_runtime_is_left_alone() {
    let conf = "/etc/containers/containers.conf";
    let host = stock()
        .with_exe("/usr/local/nvidia/toolkit/nvidia-container-runtime.real")
        .with_link(
            "/usr/local/nvidia/toolkit/nvidia-container-runtime",
            "/usr/bin/nvidia-container-runtime",
        )
        .with_file(
            conf,
            "[engine.runtimes]\nnvidia = [\"/opt/missing/nvidia-container-runtime\", \"/usr/local/nvidia/toolkit/nvidia-container-runtime\"]\n",
        );
    let in_place = |s: Settings| {
        let d = desired(Settings {
            containers_conf: Some(conf.into()),
            ..s
        });
        summary(&plan(&d, &host).unwrap())
            .into_iter()
            .filter(|(p, _)| p == conf)
            .collect::<Vec<_>>()
    };
    assert_eq!(in_place(Settings::default()), []);
    // Explicit: exactly that path.
    assert_eq!(
        in_place(Settings {
            runtime_path: Some("/usr/bin/nvidia-container-runtime".into()),
            ..Settings::default()
        }),
        [(conf.to_owned(), Action::Modify)]
    );
    // The first existing path is another binary: rewritten.
    let other = host.clone().with_file(
        conf,
        "[engine.runtimes]\nnvidia = [\"/usr/local/nvidia/toolkit/nvidia-container-runtime.real\"]\n",
    );
    let d = desired(Settings {
        containers_conf: Some(conf.into()),
        ..Settings::default()
    });
    assert!(summary(&plan(&d, &other).unwrap()).contains(&(conf.to_owned(), Action::Modify)));
}

/// Facts for a host whose dpkg database names Podman `version`.
fn podman(version: &str) -> HostFacts {
    HostFacts {
        podman_version: crate::PodmanVersion::parse(version),
        podman_source: Some(crate::facts::VersionSource::Dpkg(format!(
            "podman {version}"
        ))),
        ..HostFacts::default()
    }
}

#[test]
fn podman_before_3_3_gets_the_entry_in_the_main_file_it_reads() {
    // containers/common v0.40 (Podman 3.3) brought drop-ins; 3.0.1 opens
    // only /usr/share's and /etc's containers.conf (seen here).
    let facts = podman("3.0.1");
    let d = DesiredState::resolve(&Settings::default(), &facts).unwrap();
    assert_eq!(
        d.containers_conf.as_str(),
        "/etc/containers/containers.conf"
    );
    let host = stock();
    let p = plan_with(&d, &facts, &host).unwrap();
    assert_eq!(
        summary(&p)[0],
        ("/etc/containers/containers.conf".to_owned(), Action::Create)
    );
    assert!(
        !codes(&p).contains(&"containers-conf-not-read"),
        "{:?}",
        codes(&p)
    );
    let text = String::from_utf8(p.changes[0].after.clone().unwrap()).unwrap();
    assert_eq!(
        text,
        "[engine.runtimes]\nnvidia = [\"/usr/bin/nvidia-container-runtime\"]\n"
    );
    // Asked for the drop-in anyway: warned, with a hint this version reads.
    let s = Settings {
        containers_conf: Some("/etc/containers/containers.conf.d/99-nvidia.conf".into()),
        ..Settings::default()
    };
    let d = DesiredState::resolve(&s, &facts).unwrap();
    let p = plan_with(&d, &facts, &host).unwrap();
    let w = p
        .warnings
        .iter()
        .find(|w| w.code == "containers-conf-not-read")
        .unwrap();
    assert_eq!(
        w.hint.as_deref(),
        Some("Podman 3.0.1 reads no drop-ins (3.3 and later do): pass --containers-conf /etc/containers/containers.conf (the default for this version), or upgrade Podman")
    );
    // From 3.3 on, the drop-in.
    let d = DesiredState::resolve(&Settings::default(), &podman("3.3.0")).unwrap();
    assert_eq!(
        d.containers_conf.as_str(),
        "/etc/containers/containers.conf.d/99-nvidia.conf"
    );
}

const NVIDIA_SPEC: &str = "cdiVersion: 0.5.0\nkind: nvidia.com/gpu\ndevices:\n- name: \"0\"\n  containerEdits: {}\n- name: all\n  containerEdits: {}\n";

#[test]
fn cdi_is_refused_where_podman_cannot_use_nvidia_specs() {
    let host = stock();
    for (version, why) in [
        ("3.0.1", "it does not read CDI specs at all (3.2 and later do)"),
        ("4.2.0", "it reads only CDI specs older than the 0.5.0 that NVIDIA's device names (`0`, `1`) need"),
    ] {
        let err = plan_with(&cdi(NVIDIA_SPEC), &podman(version), &host).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("--strategy cdi needs Podman 4.3 or later, and this host has Podman {version} (dpkg: podman {version}): {why}, so `--device nvidia.com/gpu=all` would fail and the working hook would be gone")
        );
        assert_eq!(
            err.hint().as_deref(),
            Some("keep the hook (gpu-setup apply --strategy hook), or upgrade Podman to 4.3 or later first")
        );
    }
    // 4.3.1 takes cdiVersion 0.5.0, not 0.6.0 (its CDI library's newest).
    assert!(plan_with(&cdi(NVIDIA_SPEC), &podman("4.3.1"), &host).is_ok());
    let newer = NVIDIA_SPEC.replace("0.5.0", "0.6.0");
    let err = plan_with(&cdi(&newer), &podman("4.3.1"), &host).unwrap_err();
    assert_eq!(
        err.to_string(),
        "the CDI spec nvidia-ctk generated declares cdiVersion 0.6.0, and Podman 4.3.1 (dpkg: podman 4.3.1) accepts at most 0.5.0: Podman would refuse the spec"
    );
    assert!(plan_with(&cdi(&newer), &podman("4.7.0"), &host).is_ok());
    // Unknown version: nothing refused. The hook and absent: never.
    assert!(plan_with(&cdi(&newer), &HostFacts::default(), &host).is_ok());
    assert!(plan_with(&DesiredState::default(), &podman("3.0.1"), &host).is_ok());
}

#[test]
fn refresh_units_on_podman_5_5_0_to_5_5_2_are_warned_about() {
    // containers/common v0.63.x default.go: /etc/cdi only (podman#26569).
    let host = stock().with_file(
        "/usr/lib/systemd/system/nvidia-cdi-refresh.path",
        "[Path]\n",
    );
    let d = desired(Settings {
        strategy: Some(crate::Strategy::Cdi),
        ..Settings::default()
    });
    let p = plan_with(&d, &podman("5.5.1"), &host).unwrap();
    let w = p
        .warnings
        .iter()
        .find(|w| w.code == "cdi-spec-not-read")
        .unwrap();
    assert_eq!(w.level, crate::Level::Warning);
    assert!(w.message.starts_with("Podman 5.5.1 reads CDI specs from [\"/etc/cdi\"], which does not include `/var/run/cdi`"), "{w:?}");
    let p = plan_with(&d, &podman("5.5.3"), &host).unwrap();
    assert!(!codes(&p).contains(&"cdi-spec-not-read"), "{:?}", codes(&p));
}

#[test]
fn files_an_older_podman_does_not_read_are_noted() {
    let host = stock().with_file("/root/.config/containers/containers.conf", "[engine]\n");
    let facts = HostFacts {
        containers_conf_override_env: Some(TargetPath::new("/etc/override.conf").unwrap()),
        user_config_dir: Some(TargetPath::new("/root/.config/containers").unwrap()),
        ..podman("4.3.1")
    };
    let p = plan_with(&DesiredState::default(), &facts, &host).unwrap();
    let c = codes(&p);
    assert!(
        c.contains(&"conf-override-ignored") && c.contains(&"user-config-ignored"),
        "{c:?}"
    );
    // Podman 5.0 reads both (4.5: the override; 5.0: root's user files).
    let facts = HostFacts {
        podman_version: crate::PodmanVersion::parse("5.0.0"),
        ..facts
    };
    let p = plan_with(&DesiredState::default(), &facts, &host).unwrap();
    let c = codes(&p);
    assert!(
        !c.contains(&"conf-override-ignored") && !c.contains(&"user-config-ignored"),
        "{c:?}"
    );
    assert!(c.contains(&"gpus-flag-is-cdi"), "{c:?}");
}

#[test]
fn what_would_break_every_podman_command_is_found() {
    // Podman 5.7+ refuses runtimes_flags for a runtime without an entry.
    let host = stock().with_file(
        "/etc/containers/containers.conf.d/50-flags.conf",
        "[engine.runtimes_flags]\nnvidia = [\"--debug\"]\n",
    );
    let b = crate::warnings::breakage(&podman("5.8.6"), &host);
    assert_eq!(b.len(), 1, "{b:?}");
    assert_eq!(b[0].code, "runtime-flags-orphaned");
    assert!(crate::warnings::breakage(&podman("5.6.0"), &host).is_empty());
    // With the entry (an overlay of what a change would leave): fine.
    let entry = crate::Overlay::new(
        &host,
        [(
            TargetPath::new("/etc/containers/containers.conf.d/99-nvidia.conf").unwrap(),
            Some(b"[engine.runtimes]\nnvidia = [\"/usr/bin/nvidia-container-runtime\"]\n".to_vec()),
        )]
        .into_iter()
        .collect(),
    );
    assert!(crate::warnings::breakage(&podman("5.8.6"), &entry).is_empty());
    let bad = stock().with_file("/etc/containers/containers.conf", "[engine\n");
    assert_eq!(
        crate::warnings::breakage(&podman("4.3.1"), &bad)[0].code,
        "containers-conf-invalid"
    );
}

#[test]
fn field_failures_a_configured_host_would_still_have_are_warned() {
    let host = stock()
        .with_file("/sys/fs/selinux/enforce", "1")
        .with_file("/sys/fs/selinux/booleans/container_use_devices", "0 0")
        .with_meta(
            "/dev/nvidia0",
            crate::observe::Meta {
                kind: crate::observe::Kind::Other,
                mode: 0o666,
                uid: 0,
                gid: 0,
            },
        );
    let p = plan_with(&DesiredState::default(), &HostFacts::default(), &host).unwrap();
    let c = codes(&p);
    assert!(
        c.contains(&"selinux-blocks-devices") && c.contains(&"uvm-devices-missing"),
        "{c:?}"
    );
    let w = p
        .warnings
        .iter()
        .find(|w| w.code == "selinux-blocks-devices")
        .unwrap();
    assert_eq!(w.level, crate::Level::Warning);
    let ok = stock().with_file("/sys/fs/selinux/enforce", "0");
    let p = plan_with(&DesiredState::default(), &HostFacts::default(), &ok).unwrap();
    assert!(!codes(&p).contains(&"selinux-blocks-devices"));
}
